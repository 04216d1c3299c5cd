import type { EngineConfig } from "../config";
import type { LandingSink } from "./types";
import { FileSink } from "./file";

export type { LandingSink } from "./types";
export { SinkPermanentError } from "./types";

/**
 * The sink SINK_URL selects. Cloud SDKs are loaded only for the scheme in use, so a file:// engine
 * never pays for them at start-up.
 */
export async function createSink(config: EngineConfig): Promise<LandingSink> {
  const sink = config.sink;
  switch (sink.kind) {
    case "file":
      return new FileSink(sink.url, sink.directory);
    case "s3":
    case "abfss":
    case "gs":
      // Cloud sinks land with the cloud-sinks issue (#4), behind this same interface.
      throw new Error(`SINK_URL scheme ${sink.kind}:// is not available in this build yet`);
  }
}
