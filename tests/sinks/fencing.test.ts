/**
 * Writer fencing on every sink (issue 10, item 3), each against a server that enforces the
 * conditions: a local directory; moto (S3; s3rver ignores conditional headers); Azurite;
 * fake-gcs-server (GCS uploads' generation preconditions) and the GCS stand-in (labelled: for the
 * conditional delete and missing-object reads, which fake-gcs-server does not implement as GCS does).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { EngineState } from "../../container/src/batching/state";
import { openSink, RetryingSink } from "../../container/src/sink";
import { FileSink } from "../../container/src/sink/file";
import { sinkConfig } from "./support/contract";
import { fencingContract } from "./support/fencing";
import { azuriteConnectionString, startAzurite, startGcsStandIn, type StorageServer } from "./support/emulators";
import { ensureFakeGcsServer, ensureMoto, MOTO_CREDENTIALS, startFakeGcsServer, startMoto } from "./support/conditional-servers";

describe("sinks: writer fencing", function () {
  this.timeout(60_000);
  before(async function () {
    // On a first run, moto's pip install (network) and fake-gcs-server's build (CPU) overlap.
    this.timeout(1_800_000);
    await Promise.all([ensureMoto(), ensureFakeGcsServer()]);
  });

  describe("file:// (a local directory)", () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "cdc-fence-"));
    });
    after(() => rm(dir, { recursive: true, force: true }));
    fencingContract({ open: async () => new FileSink(`file://${dir}`, dir), conditionalDelete: true, missingReads: true });

    it("a state write whose answer was lost is recognised as its own when the retry finds the condition changed", async () => {
      // The write lands, then the connection fails before the answer (as a timeout would).
      class LostAnswer extends FileSink {
        lose = 0;
        override async replace(key: string, body: Uint8Array, expected: string | null): Promise<string> {
          const version = await super.replace(key, body, expected);
          if (this.lose-- > 0) throw Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
          return version;
        }
      }
      const inner = new LostAnswer(`file://${dir}`, dir);
      const sink = new RetryingSink(inner, { initialDelayMs: 1, maxDelayMs: 2 });
      const state = await EngineState.load(sink, "lost_answer_slot");
      sink.setFence(() => state.checkFence());
      inner.lose = 1;
      state.advance("public.items", { lsn: 500n, seq: 1 });
      await state.save([]);
      assert.equal(inner.lose, 0, "the first attempt's answer was lost and the write retried");
      await state.save([]);
      const reread = await EngineState.open(inner, "lost_answer_slot");
      assert.deepEqual(reread.highWater.get("public.items"), { lsn: 500n, seq: 1 });
    });
  });

  describe("s3:// (moto server mode)", function () {
    // The first run installs moto into .cache/moto (about 2 min); later runs reuse it.
    this.timeout(600_000);
    let server: StorageServer;
    const saved: Record<string, string | undefined> = {};
    before(async () => {
      for (const [k, v] of Object.entries(MOTO_CREDENTIALS)) {
        saved[k] = process.env[k];
        process.env[k] = v;
      }
      server = await startMoto(["landing"]);
    });
    after(async () => {
      await server?.dispose();
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    });
    const config = () => sinkConfig("s3://landing/cdc/fence", { S3_ENDPOINT: server.endpoint });
    fencingContract({ open: () => openSink(config().sink, config()), conditionalDelete: true, missingReads: true });
  });

  describe("abfss:// (Azurite)", () => {
    let server: StorageServer;
    before(async () => {
      server = await startAzurite(["landing"]);
    });
    after(() => server?.dispose());
    const config = () => sinkConfig("abfss://landing@cdcdata.dfs.core.windows.net/cdc/fence", { AZURE_STORAGE_CONNECTION_STRING: azuriteConnectionString(server.port) });
    fencingContract({ open: () => openSink(config().sink, config()), conditionalDelete: true, missingReads: true });
  });

  describe("gs:// (fake-gcs-server)", function () {
    // The first run builds fake-gcs-server into .cache/fake-gcs-server: about 7 min on 2 cores, up
    // to 16 min measured while other builds ran; later runs reuse it and start it in a second.
    this.timeout(1_800_000);
    let server: StorageServer;
    before(async () => {
      server = await startFakeGcsServer(["landing"]);
    });
    after(() => server?.dispose());
    const config = () => sinkConfig("gs://landing/cdc/fence", { GCS_ENDPOINT: server.endpoint });
    fencingContract({ open: () => openSink(config().sink, config()), conditionalDelete: false, missingReads: false });
  });

  describe("gs:// (the GCS stand-in, for conditional deletes and missing objects)", () => {
    let server: StorageServer;
    before(async () => {
      server = await startGcsStandIn(["landing"]);
    });
    after(() => server?.dispose());
    const config = () => sinkConfig("gs://landing/cdc/fence", { GCS_ENDPOINT: server.endpoint });
    fencingContract({ open: () => openSink(config().sink, config()), conditionalDelete: true, missingReads: true });
  });
});
