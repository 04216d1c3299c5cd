/**
 * The whole engine (runEngine, real embedded PostgreSQL) landing into each cloud sink's server:
 * s3rver, Azurite, and the GCS JSON-API stand-in (see support/gcs-stand-in.ts). The landing objects
 * are downloaded into a directory, which the local lakehouse (`cdc-lakehouse refresh`, DuckDB)
 * must read back into a silver table equal to the source; an outage
 * of the storage server in the middle of streaming loses nothing, and while it lasts the slot's
 * confirmed_flush_lsn never passes a transaction that is not yet in the sink.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main as lakehouse } from "../../lakehouse/src/cli";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { confirmedFlush, startEngine, waitFor } from "../engine/fixtures/harness";
import { rebuildTable } from "../engine/fixtures/landing";
import { azuriteConnectionString, startAzurite, startGcsStandIn, startS3rver, type StorageServer, useS3rverCredentials } from "./support/emulators";
import type { GcsStandIn } from "./support/gcs-stand-in";
import { listAzureBlobs, listGcsStandIn, listS3Objects, type StoredObjects, writeObjects } from "./support/store-listing";

interface CloudCase {
  name: string;
  start(): Promise<StorageServer>;
  sinkUrl: string;
  env(server: StorageServer): Record<string, string>;
  /** Every object under the SINK_URL's prefix (keys relative to the prefix). */
  list(server: StorageServer): Promise<StoredObjects>;
}

const PREFIX = "cdc/landing";

const CASES: CloudCase[] = [
  {
    name: "s3:// (s3rver)",
    start: () => startS3rver(["landing"]),
    sinkUrl: `s3://landing/${PREFIX}`,
    env: (server) => ({ S3_ENDPOINT: server.endpoint }),
    list: (server) => listS3Objects(server.endpoint, { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" }, "landing", PREFIX),
  },
  {
    name: "abfss:// (Azurite)",
    start: () => startAzurite(["landing"]),
    sinkUrl: `abfss://landing@cdcdata.dfs.core.windows.net/${PREFIX}`,
    env: (server) => ({ AZURE_STORAGE_CONNECTION_STRING: azuriteConnectionString(server.port) }),
    list: (server) => listAzureBlobs(azuriteConnectionString(server.port), "landing", PREFIX),
  },
  {
    name: "gs:// (GCS JSON-API stand-in)",
    start: () => startGcsStandIn(["landing"]),
    sinkUrl: `gs://landing/${PREFIX}`,
    env: (server) => ({ GCS_ENDPOINT: server.endpoint }),
    list: async (server) => listGcsStandIn((server as StorageServer & { standIn: GcsStandIn }).standIn, "landing", PREFIX),
  },
];

describe("sinks: the full engine landing into each cloud sink", function () {
  this.timeout(120_000);
  let pg: TestPostgres;
  let restoreEnv: (() => void) | undefined;

  before(async () => {
    restoreEnv = useS3rverCredentials();
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.stop();
    restoreEnv?.();
  });

  for (const [i, cloud] of CASES.entries()) {
    describe(cloud.name, () => {
      let server: StorageServer;
      const table = `items_${i}`;
      before(async () => {
        server = await cloud.start();
      });
      after(async () => {
        await server?.dispose();
      });

      const sourceRows = async () =>
        new Map(
          (await pg.query<{ id: number; name: string; qty: number }>(`SELECT id, name, qty FROM public.${table} ORDER BY id`)).map((r) => [JSON.stringify([r.id]), { id: r.id, name: r.name, qty: r.qty }]),
        );

      /** Downloads the landing zone and rebuilds the table from it. */
      const landed = async () => {
        const dir = await mkdtemp(join(tmpdir(), "cdc-sink-download-"));
        try {
          await writeObjects(await cloud.list(server), dir);
          return await rebuildTable(dir, `public.${table}`, ["id"]);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      };

      const landedEqualsSource = async () => {
        const [source, rebuilt] = await Promise.all([sourceRows(), landed()]);
        return rebuilt.size === source.size && [...source].every(([k, row]) => JSON.stringify(rebuilt.get(k)) === JSON.stringify(row));
      };

      it("lands snapshot and stream that the local lakehouse reads back equal to the source, and rides out a storage outage without losing or confirming anything early", async () => {
        await pg.query(`CREATE TABLE public.${table} (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL)`);
        await pg.query(`INSERT INTO public.${table} SELECT g, 'item ' || g, g FROM generate_series(1, 300) g`);
        const slot = `sink_slot_${i}`;
        const engine = startEngine({
          ...pg.env,
          SINK_URL: cloud.sinkUrl,
          ...cloud.env(server),
          TABLE_INCLUDE: `public.${table}`,
          PG_SLOT: slot,
          PG_PUBLICATION: `sink_pub_${i}`,
          HTTP_PORT: "0",
          LOG_LEVEL: process.env.ENGINE_TEST_LOG_LEVEL ?? "silent",
          BATCH_MAX_WAIT_MS: "200",
          HEARTBEAT_INTERVAL_MS: "0",
        });
        try {
          await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"), 60_000);
          await pg.query(`INSERT INTO public.${table} SELECT g, 'new ' || g, 0 FROM generate_series(301, 400) g`);
          await pg.query(`UPDATE public.${table} SET qty = qty + 1000 WHERE id % 7 = 0`);
          await pg.query(`DELETE FROM public.${table} WHERE id % 11 = 0`);
          await waitFor("snapshot and first changes landed equal to the source", landedEqualsSource, 60_000, 300);

          // Outage: the storage server goes away in the middle of streaming.
          await server.stop();
          const client = await pg.connect();
          let insideOutageTxn: bigint;
          try {
            await client.query("BEGIN");
            await client.query(`INSERT INTO public.${table} SELECT g, 'during outage ' || g, g FROM generate_series(401, 600) g`);
            await client.query(`UPDATE public.${table} SET name = 'renamed during outage' WHERE id BETWEEN 1 AND 50`);
            await client.query(`DELETE FROM public.${table} WHERE id BETWEEN 51 AND 60`);
            const rows = await client.query<{ lsn: string }>("SELECT (pg_current_wal_insert_lsn() - '0/0')::text AS lsn");
            insideOutageTxn = BigInt(rows.rows[0].lsn);
            await client.query("COMMIT");
          } finally {
            await client.end();
          }
          // Give the engine time to decode the transaction and try (and fail) to land it.
          for (let waited = 0; waited < 3000; waited += 500) {
            await new Promise((r) => setTimeout(r, 500));
            const confirmed = await confirmedFlush(pg, slot);
            assert.ok(confirmed < insideOutageTxn, `confirmed_flush_lsn ${confirmed} passed the transaction ${insideOutageTxn} that is not in the sink`);
          }

          await server.start();
          await waitFor("everything landed after the outage, equal to the source", landedEqualsSource, 90_000, 500);
          await waitFor("the slot confirmed past the outage transaction once it was durable", async () => (await confirmedFlush(pg, slot)) > insideOutageTxn, 30_000, 200);
          const rebuilt = await landed();
          assert.equal(rebuilt.size, 600 - 10 - Math.floor(400 / 11) + [...Array(10)].map((_, k) => 51 + k).filter((id) => id % 11 === 0).length);
          assert.deepEqual(rebuilt.get("[20]"), { id: 20, name: "renamed during outage", qty: 20 });

          // The local lakehouse reads the downloaded landing zone back: silver equals the source.
          const lake = await mkdtemp(join(tmpdir(), "cdc-sink-lake-"));
          try {
            const objects = await writeObjects(await cloud.list(server), join(lake, "landing"));
            assert.ok(objects > 0);
            const out: string[] = [];
            const err: string[] = [];
            const run = (...args: string[]) => lakehouse(args, (l) => out.push(l), (l) => err.push(l));
            assert.equal(await run("refresh", "--landing", join(lake, "landing"), "--db", join(lake, "lake.duckdb"), "--tables", `public.${table}`, "--key", `public.${table}=id`, "--no-gold"), 0, err.join("\n"));
            out.length = 0;
            assert.equal(await run("query", "--db", join(lake, "lake.duckdb"), "--json", `SELECT id, name, qty FROM silver.public_${table} ORDER BY id`), 0, err.join("\n"));
            const silver = out.map((l) => JSON.parse(l) as { id: number; name: string; qty: number }).map((r) => ({ id: Number(r.id), name: r.name, qty: Number(r.qty) }));
            assert.deepEqual(silver, [...(await sourceRows()).values()]);
          } finally {
            await rm(lake, { recursive: true, force: true });
          }
        } finally {
          await engine.stop();
        }
      });
    });
  }
});
