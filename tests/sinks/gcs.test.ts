/**
 * The gs:// sink through @google-cloud/storage against a STAND-IN GCS JSON-API server written for
 * these tests (tests/sinks/support/gcs-stand-in.ts; no GCS emulator runs from npm here), reached
 * through GCS_ENDPOINT. It proves the sink's requests, hash verification, retry and error
 * classification against the API's documented behaviour, not against Google's implementation.
 */
import assert from "node:assert/strict";
import { openSink, recordingLogger, sinkContract, type ContractTarget } from "./support/contract";
import { startGcsStandIn, type StorageServer } from "./support/emulators";

describe("sinks: gs:// against a GCS JSON-API stand-in", function () {
  this.timeout(60_000);
  let server: StorageServer;

  before(async () => {
    server = await startGcsStandIn(["landing"], { deniedBuckets: ["locked"] });
  });
  after(async () => {
    await server?.dispose();
  });

  const target: ContractTarget = {
    server: () => server,
    url: "gs://landing/cdc/prod",
    rootUrl: "gs://landing",
    prefix: "cdc/prod",
    env: (port) => ({ GCS_ENDPOINT: `http://127.0.0.1:${port}` }),
  };
  sinkContract(target);

  it("names the missing IAM permission and role when the service account may not write", async () => {
    const logger = recordingLogger();
    const sink = await openSink(target, "gs://locked/cdc", server.port, logger);
    await assert.rejects(sink.put("cdc.public.t/date=2026-11-21/hour=00/x.ndjson", Buffer.from("{}\n")), {
      name: "SinkPermanentError",
      message:
        "sink gs://locked/cdc: storage.objects.create (and storage.objects.delete, which overwriting a replayed object needs) denied on gs://locked/cdc/* (object cdc/cdc.public.t/date=2026-11-21/hour=00/x.ndjson): grant the Cloud Run service account roles/storage.objectUser on bucket locked",
    });
    assert.equal(logger.warnings.length, 0, "a permanent error is not retried");
    await sink.close();
  });

  it("names a missing bucket", async () => {
    const sink = await openSink(target, "gs://absent-bucket/cdc", server.port);
    await assert.rejects(sink.put("cdc.public.t/x.ndjson", Buffer.from("{}\n")), {
      name: "SinkPermanentError",
      message: `sink gs://absent-bucket/cdc: bucket absent-bucket does not exist at http://127.0.0.1:${server.port}: create it or fix SINK_URL`,
    });
    await sink.close();
  });
});
