/**
 * Two engine instances at once, end to end on each cloud sink (issue 10, item 3), against servers
 * that enforce conditional writes: moto (S3), Azurite, fake-gcs-server (GCS). As in
 * tests/engine/fencing.test.ts: the old instance's write hangs while it loses its replication
 * connection, the new instance takes the slot and the sink over, and the old write, when it finally
 * arrives, is refused — the old engine stops with WriterFencedError and the store is unchanged.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { loadConfig } from "../../container/src/config";
import { runEngine } from "../../container/src/engine";
import { openSink } from "../../container/src/sink";
import { WriterFencedError } from "../../container/src/sink/types";
import { EngineState } from "../../container/src/batching/state";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { engineEnv, startEngine, waitFor } from "../engine/fixtures/harness";
import { readRecords, type LandingRecord } from "../engine/fixtures/landing";
import { noopMetrics } from "../engine/fixtures/metrics";
import { DelayedSink } from "../engine/fixtures/delayed-sink";
import { azuriteConnectionString, startAzurite, type StorageServer } from "./support/emulators";
import { listAzureBlobs, listGcsObjects, listS3Objects, type StoredObjects, writeObjects } from "./support/store-listing";
import { ensureFakeGcsServer, ensureMoto, MOTO_CREDENTIALS, startFakeGcsServer, startMoto } from "./support/conditional-servers";

const PREFIX = "cdc/fenced";

interface Store {
  name: string;
  start(): Promise<StorageServer>;
  sinkUrl: string;
  env(server: StorageServer): Record<string, string>;
  /** Every object under PREFIX (keys relative to it) with its bytes. */
  list(server: StorageServer): Promise<StoredObjects>;
  /** fake-gcs-server answers a missing object like a missing bucket: the state object is seeded. */
  seedState?: boolean;
}

const STORES: Store[] = [
  {
    name: "s3:// (moto)",
    start: () => startMoto(["landing"]),
    sinkUrl: `s3://landing/${PREFIX}`,
    env: (server) => ({ S3_ENDPOINT: server.endpoint, ...MOTO_CREDENTIALS }),
    list: (server) => listS3Objects(server.endpoint, { accessKeyId: "moto", secretAccessKey: "moto" }, "landing", PREFIX),
  },
  {
    name: "abfss:// (Azurite)",
    start: () => startAzurite(["landing"]),
    sinkUrl: `abfss://landing@cdcdata.dfs.core.windows.net/${PREFIX}`,
    env: (server) => ({ AZURE_STORAGE_CONNECTION_STRING: azuriteConnectionString(server.port) }),
    list: (server) => listAzureBlobs(azuriteConnectionString(server.port), "landing", PREFIX),
  },
  {
    name: "gs:// (fake-gcs-server)",
    start: () => startFakeGcsServer(["landing"]),
    sinkUrl: `gs://landing/${PREFIX}`,
    env: (server) => ({ GCS_ENDPOINT: server.endpoint }),
    list: (server) => listGcsObjects(server.endpoint, "landing", PREFIX),
    seedState: true,
  },
];

async function recordsOf(objects: StoredObjects, table: string): Promise<LandingRecord[]> {
  const dir = await mkdtemp(join(tmpdir(), "cdc-fence-download-"));
  try {
    await writeObjects(objects, dir);
    return await readRecords(dir, table);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe("sinks: two engine instances at once on each cloud sink (writer fencing)", function () {
  // moto and fake-gcs-server are set up once under .cache/ (see fencing.test.ts for the first run's time).
  this.timeout(1_800_000);
  let pg: TestPostgres;
  before(async () => {
    // On a first run, moto's pip install (network) and fake-gcs-server's build (CPU) overlap.
    await Promise.all([ensureMoto(), ensureFakeGcsServer()]);
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.stop();
  });

  for (const [i, store] of STORES.entries()) {
    describe(store.name, () => {
      let server: StorageServer;
      before(async () => {
        server = await store.start();
      });
      after(() => server?.dispose());

      it("the old instance's delayed write after a takeover is refused; it stops and the store is unchanged", async function () {
        this.timeout(120_000);
        const table = `fenced_${i}`;
        const slot = `fenced_cloud_${i}`;
        await pg.query(`CREATE TABLE public.${table} (id int PRIMARY KEY, v text); INSERT INTO public.${table} SELECT g, 'v' || g FROM generate_series(1, 10) g`);
        const env = engineEnv(pg, "unused", { SINK_URL: store.sinkUrl, ...store.env(server), TABLE_INCLUDE: `public.${table}`, PG_SLOT: slot, PG_PUBLICATION: `fenced_pub_${i}` });
        const saved = Object.fromEntries(Object.keys(MOTO_CREDENTIALS).map((k) => [k, process.env[k]]));
        Object.assign(process.env, MOTO_CREDENTIALS);
        const config = loadConfig(env);
        const bare = await openSink(config.sink, config);
        if (store.seedState) await bare.put(EngineState.key(slot), Buffer.from(JSON.stringify({ version: 1, slot, tables: {}, intents: [], snapshot: null })), "application/json");
        const oldSink = new DelayedSink(bare);
        const controller = new AbortController();
        const oldMetrics = noopMetrics();
        const old = runEngine(config, { logger: pino({ level: "silent" }), metrics: oldMetrics, signal: controller.signal, sink: oldSink });
        old.catch(() => undefined);
        let fresh: ReturnType<typeof startEngine> | undefined;
        const landed = async (n: number) => waitFor(`${n} records`, async () => (await recordsOf(await store.list(server), `public.${table}`)).length >= n && true);
        try {
          await waitFor("the old instance streams", async () => oldMetrics.phases.includes("streaming"));
          await landed(10);

          oldSink.hold();
          await pg.query(`INSERT INTO public.${table} VALUES (11, 'during the rollout')`);
          await waitFor("the old instance's write is held", async () => oldSink.held > 0);
          await pg.query("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1", [slot]);

          fresh = startEngine(env);
          await waitFor("the new instance streams", async () => fresh!.metrics.phases.includes("streaming"));
          await landed(11);
          const before = await store.list(server);
          assert.equal((JSON.parse(before.get(EngineState.key(slot))!.toString()) as { epoch: number }).epoch, 2);

          oldSink.release();
          await assert.rejects(old, (err: Error) => {
            assert.ok(err instanceof WriterFencedError, String(err));
            assert.match(err.message, new RegExp(`^another instance took over sink ${store.sinkUrl.replace(/[/.]/g, "\\$&")} for slot ${slot} \\(writer epoch 2 > ours 1`));
            return true;
          });
          assert.deepEqual(await store.list(server), before, "the old instance changed nothing in the store");

          await pg.query(`INSERT INTO public.${table} VALUES (12, 'after the takeover')`);
          await landed(12);
          const records = await recordsOf(await store.list(server), `public.${table}`);
          assert.deepEqual(records.filter((r) => r.__op === "c").map((r) => r.v), ["during the rollout", "after the takeover"]);
        } finally {
          oldSink.release();
          controller.abort();
          await old.catch(() => undefined);
          await fresh?.stop();
          await bare.close();
          for (const [k, v] of Object.entries(saved)) {
            if (v === undefined) delete process.env[k];
            else process.env[k] = v;
          }
        }
      });
    });
  }
});
