import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { createLogger } from "../ops/logger";
import type { EngineConfig, SinkLocation } from "../config";
import type { LandingSink } from "./types";
import { FileSink } from "./file";
import { RetryingSink } from "./retrying";
import type { RetryOptions, SinkLogger } from "./retrying";
import { SinkPermanentError } from "./types";

export type { LandingSink } from "./types";
export { SinkPermanentError } from "./types";
export { RetryingSink, SinkRetryAbortedError, describeError } from "./retrying";
export type { RetryOptions, SinkLogger } from "./retrying";

export interface CreateSinkOptions extends Omit<RetryOptions, "logger"> {
  /** Where retries are logged; a pino logger at LOG_LEVEL on stdout when omitted. */
  logger?: SinkLogger;
}

/**
 * The sink SINK_URL selects, wrapped in the RetryingSink: transient failures are retried with
 * backoff for as long as the engine runs (a put that cannot land simply does not resolve, which is
 * the engine's backpressure), permanent ones reject with SinkPermanentError. Cloud SDKs are loaded
 * only for the scheme in use, so a file:// engine never pays for them at start-up.
 */
export async function createSink(config: EngineConfig, options: CreateSinkOptions = {}): Promise<LandingSink> {
  const logger = options.logger ?? defaultLogger(config);
  if (config.sink.kind === "kafka") {
    // It retries inside put() itself, in order per topic (see kafka.ts): no RetryingSink around it.
    const { KafkaSink } = await import("./kafka.js");
    return new KafkaSink({ url: config.sink.url, brokers: config.sink.brokers, tls: config.sink.tls, settings: config.kafka, logger, initialDelayMs: options.initialDelayMs, maxDelayMs: options.maxDelayMs });
  }
  const inner = await openSink(config.sink, config);
  return new RetryingSink(inner, { ...options, logger });
}

/** The bare sink for a location, without retries (doctor's probe wants one attempt and its error). */
export async function openSink(location: SinkLocation, config: Pick<EngineConfig, "s3" | "azure" | "gcs" | "kafka">): Promise<LandingSink> {
  switch (location.kind) {
    case "file":
      return new FileSink(location.url, location.directory);
    case "s3": {
      const { S3Sink } = await import("./s3.js");
      return new S3Sink({ url: location.url, bucket: location.bucket, prefix: location.prefix, endpoint: config.s3.endpoint, forcePathStyle: config.s3.forcePathStyle });
    }
    case "abfss": {
      const { AzureBlobSink } = await import("./azure.js");
      return new AzureBlobSink({ url: location.url, account: location.account, container: location.container, prefix: location.prefix, connectionString: config.azure.connectionString });
    }
    case "gs": {
      const { GcsSink } = await import("./gcs.js");
      return new GcsSink({ url: location.url, bucket: location.bucket, prefix: location.prefix, endpoint: config.gcs.endpoint });
    }
    case "kafka": {
      const { KafkaSink } = await import("./kafka.js");
      return new KafkaSink({ url: location.url, brokers: location.brokers, tls: location.tls, settings: config.kafka });
    }
  }
}

export interface SinkProbeResult {
  ok: boolean;
  /** One line: what was checked, or what is wrong and how to fix it. */
  message: string;
}

/**
 * For `cdc-engine doctor`: writes a small probe object, reads it back, deletes it, each once
 * (no retries) and within `timeoutMs`. Landing readers skip it: it lives under `_cdc_probe/`, not
 * under a `cdc.<schema>.<table>/` directory.
 */
export async function probeSink(config: Pick<EngineConfig, "sink" | "s3" | "azure" | "gcs" | "kafka"> & Partial<Pick<EngineConfig, "tables">>, timeoutMs = 15_000): Promise<SinkProbeResult> {
  if (config.sink.kind === "kafka") {
    const { probeKafka } = await import("./kafka.js");
    return probeKafka(config.sink, config.kafka, config.tables ?? [], timeoutMs);
  }
  const sink = await openSink(config.sink, config);
  const key = `_cdc_probe/${hostname().replace(/[^A-Za-z0-9_.-]/g, "_")}-${randomBytes(6).toString("hex")}.txt`;
  const body = Buffer.from(`cdc-engine doctor probe ${new Date().toISOString()}\n`);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms; check the network path to the storage service`)), timeoutMs);
  });
  try {
    await Promise.race([
      (async () => {
        await sink.put(key, body, "text/plain");
        const read = await sink.get(key);
        if (read === undefined || !Buffer.from(read).equals(body)) throw new Error(`the probe object ${key} did not read back as written`);
        await sink.delete(key);
      })(),
      deadline,
    ]);
    return { ok: true, message: `sink ${config.sink.url} is writable (wrote, read back and deleted ${key})` };
  } catch (err) {
    if (err instanceof SinkPermanentError) return { ok: false, message: err.message };
    return { ok: false, message: `sink ${config.sink.url}: probe write failed: ${(err as Error).message}` };
  } finally {
    clearTimeout(timer);
    await sink.close().catch(() => undefined);
  }
}

function defaultLogger(config: EngineConfig): SinkLogger {
  return createLogger({ level: config.logLevel, secrets: [config.pg.password, config.azure.connectionString, config.kafka.password] }).child({ component: "sink" });
}
