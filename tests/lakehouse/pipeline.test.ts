/**
 * The whole pipeline: a randomized concurrent workload on a real PostgreSQL, through the REAL CDC
 * engine into file:// landing files, through the local lakehouse (DuckDB, the shared SQL):
 * every silver table equals its source table row for row, every gold table equals the same
 * aggregation run on PostgreSQL — also after replaying every landing file and after ingesting the
 * files in a shuffled order into a fresh database.
 */
import assert from "node:assert/strict";
import { cp, mkdir, readdir, rm, stat, utimes } from "node:fs/promises";
import { join, dirname } from "node:path";
import type { Client } from "pg";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { loadConfig } from "../../container/src/config";
import { runEngine } from "../../container/src/engine";
import { createLogger } from "../../container/src/ops/logger";
import type { EngineMetrics } from "../../container/src/ops/metrics";
import { createDemoSchema, DEMO_KEYS, DEMO_TABLES } from "../../lakehouse/src/demo/schema";
import { prng, runWorkload } from "../../lakehouse/src/demo/workload";
import { Duck } from "../../lakehouse/src/duck";
import { scanLanding } from "../../lakehouse/src/landing";
import { refresh } from "../../lakehouse/src/runner";
import { compareGold, compareSilver, textClient } from "./compare";
import { tempDir } from "./helpers";

const quietMetrics = (): EngineMetrics & { phases: string[] } => {
  const m = { phases: [] as string[], eventsWritten: () => undefined, fileWritten: () => undefined, flushed: () => undefined, confirmedLsn: () => undefined, replicationLagBytes: () => undefined, phase: (p: string) => void m.phases.push(p) };
  return m;
};

async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

async function assertLakehouseEqualsSource(client: Client, db: string, label: string): Promise<void> {
  const duck = await Duck.open(db);
  try {
    for (const table of DEMO_TABLES) {
      const d = await compareSilver(client, (sql) => duck.all(sql), table);
      assert.equal(d, undefined, `${label}: silver ${table} differs from the source: ${JSON.stringify(d, null, 1)}`);
    }
    const gold = await compareGold(client, (sql) => duck.all(sql));
    assert.deepEqual(gold, [], `${label}: gold differs from the same aggregation on PostgreSQL: ${JSON.stringify(gold, null, 1)}`);
  } finally {
    duck.close();
  }
}

describe("lakehouse pipeline: PostgreSQL → engine → landing → DuckDB medallion", function () {
  this.timeout(180_000);
  let pg: TestPostgres;
  let root: string;
  before(async () => {
    pg = await startPostgres();
    root = await tempDir("cdc-pipeline-");
  });
  after(async () => {
    await pg?.stop();
    if (root && !process.env.KEEP_LAKEHOUSE_TEST_DIR) await rm(root, { recursive: true, force: true });
    else if (root) console.log(`kept ${root}`);
  });

  it("keeps silver equal to the source and gold equal to PostgreSQL's aggregation, under replay and out-of-order ingestion", async () => {
    const landing = join(root, "landing");
    await mkdir(landing);
    const db = join(root, "lake.duckdb");
    const admin = await pg.connect();
    await createDemoSchema(admin);
    const connect = () => pg.connect();

    const controller = new AbortController();
    const metrics = quietMetrics();
    const config = loadConfig({
      ...pg.env,
      SINK_URL: `file://${landing}`,
      TABLE_INCLUDE: DEMO_TABLES.join(","),
      PG_SLOT: "lakehouse_slot",
      PG_PUBLICATION: "lakehouse_pub",
      HTTP_PORT: "0",
      LOG_LEVEL: "silent",
      BATCH_MAX_SIZE: "120",
      BATCH_MAX_WAIT_MS: "200",
      HEARTBEAT_INTERVAL_MS: "300",
    });
    // Writes run while the snapshot is taken, then while streaming.
    const during = runWorkload(connect, { clients: 3, transactionsPerClient: 25, seed: 11 });
    const engine = runEngine(config, { logger: createLogger({ level: "silent" }), metrics, signal: controller.signal });
    engine.catch(() => undefined);
    try {
      await during;
      await until("the engine to stream", async () => metrics.phases.includes("streaming"));
      const refreshes: Promise<unknown>[] = [];
      const first = await runWorkload(connect, { clients: 4, transactionsPerClient: 60, seed: 12 });
      // Incremental refreshes while changes are still landing.
      refreshes.push(refresh({ landing, db, keys: DEMO_KEYS }));
      await refreshes.pop();
      // A column added mid-stream, then used; a TRUNCATE; and more concurrent work on top.
      await admin.query("ALTER TABLE public.users ADD COLUMN loyalty_tier text");
      await admin.query("ALTER TABLE public.products ADD COLUMN weight_kg integer");
      await admin.query("UPDATE public.users SET loyalty_tier = CASE WHEN user_id % 3 = 0 THEN 'gold' ELSE 'silver' END WHERE user_id % 2 = 0");
      await admin.query("UPDATE public.products SET weight_kg = product_id % 7 WHERE product_id % 2 = 1");
      await refresh({ landing, db, keys: DEMO_KEYS });
      await admin.query("TRUNCATE warehouse.stock_movement");
      const second = await runWorkload(connect, { clients: 4, transactionsPerClient: 80, seed: 13 });
      assert.ok(first.committed + second.committed > 200, `the workload committed ${first.committed + second.committed} transactions`);
      // The insert position, not pg_current_wal_lsn(): with synchronous_commit=off the last commits
      // may still sit in WAL buffers, past the write position.
      const end = (await admin.query<{ lsn: string }>("SELECT (pg_current_wal_insert_lsn() - '0/0')::text AS lsn")).rows[0].lsn;
      await until("the engine to confirm everything", async () => {
        const r = await admin.query<{ lsn: string | null }>("SELECT (confirmed_flush_lsn - '0/0')::text AS lsn FROM pg_replication_slots WHERE slot_name = 'lakehouse_slot'");
        return r.rows[0]?.lsn != null && BigInt(r.rows[0].lsn) >= BigInt(end);
      });
    } finally {
      controller.abort();
      await engine;
    }
    await admin.end();

    // The landing zone has every kind of change the lakehouse must handle.
    const ops = new Set<string>();
    let unchanged = 0;
    const duckScan = await Duck.open(":memory:");
    try {
      for (const row of await duckScan.all<{ op: string; u: string }>(
        `SELECT json->>'__op' AS op, count(*) FILTER (WHERE (json->'__unchanged') IS NOT NULL) AS u FROM read_ndjson_objects('${landing}/cdc.*/*/*/*.ndjson') GROUP BY 1`,
      )) {
        ops.add(row.op);
        unchanged += Number(row.u);
      }
    } finally {
      duckScan.close();
    }
    assert.deepEqual([...ops].sort(), ["b", "c", "d", "r", "t", "u"]);
    assert.ok(unchanged > 0, "some updates left TOASTed values unchanged");
    // A delete and an insert in one transaction: PK changes (stock_movement) and re-inserts (users).
    const duckPairs = await Duck.open(":memory:");
    try {
      for (const table of ["warehouse.stock_movement", "public.users"]) {
        const [pairs] = await duckPairs.all<{ n: string }>(
          `SELECT count(*) AS n FROM (SELECT json->>'__lsn' AS lsn FROM read_ndjson_objects('${landing}/cdc.${table}/*/*/*.ndjson') GROUP BY 1 HAVING bool_or(json->>'__op' = 'd') AND bool_or(json->>'__op' = 'c'))`,
        );
        assert.ok(Number(pairs.n) > 0, `${table}: a transaction with a delete and an insert`);
      }
      const [sameKey] = await duckPairs.all<{ n: string }>(
        `SELECT count(*) AS n FROM (SELECT json->>'__lsn', json->>'order_id' FROM read_ndjson_objects('${landing}/cdc.public.orders/*/*/*.ndjson') WHERE json->>'__op' <> 'r' GROUP BY 1, 2 HAVING count(*) >= 3)`,
      );
      assert.ok(Number(sameKey.n) > 0, "several changes to one order in one transaction");
    } finally {
      duckPairs.close();
    }

    const client = await textClient(pg);
    try {
      const result = await refresh({ landing, db, keys: DEMO_KEYS });
      assert.deepEqual(result.goldSkipped, []);
      await assertLakehouseEqualsSource(client, db, "incremental refreshes");

      // Replay: every landing file rewritten (as an engine replay would) and ingested again.
      const tables = await scanLanding(landing);
      const later = new Date(Date.now() + 60_000);
      for (const t of tables) for (const f of t.files) await utimes(f.path, later, later);
      const replay = await refresh({ landing, db });
      assert.equal(replay.tables.reduce((n, t) => n + t.newFiles, 0), tables.reduce((n, t) => n + t.files.length, 0), "every file was ingested again");
      assert.equal(replay.tables.reduce((n, t) => n + t.newRecords, 0), 0, "bronze gained no duplicates");
      await assertLakehouseEqualsSource(client, db, "after replaying every file");

      // Out of order: a fresh database fed the same files in shuffled batches.
      const shuffledLanding = join(root, "shuffled");
      const shuffledDb = join(root, "shuffled.duckdb");
      const files = tables.flatMap((t) => t.files);
      const rnd = prng(7);
      for (let i = files.length - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        [files[i], files[j]] = [files[j], files[i]];
      }
      // The engine writes a table's manifests before its data, so a reader always has them first.
      for (const t of tables) await cp(join(landing, `cdc.${t.name}`, "_schema"), join(shuffledLanding, `cdc.${t.name}`, "_schema"), { recursive: true });
      const batches = 8;
      for (let b = 0; b < batches; b++) {
        for (const f of files.slice(Math.floor((b * files.length) / batches), Math.floor(((b + 1) * files.length) / batches))) {
          const target = join(shuffledLanding, f.key);
          await mkdir(dirname(target), { recursive: true });
          await cp(f.path, target);
        }
        await refresh({ landing: shuffledLanding, db: shuffledDb, keys: DEMO_KEYS, gold: b === batches - 1 });
      }
      assert.ok((await stat(shuffledDb)).size > 0);
      assert.ok((await readdir(shuffledLanding)).length === DEMO_TABLES.length);
      await assertLakehouseEqualsSource(client, shuffledDb, "after shuffled ingestion");
    } finally {
      await client.end();
    }
  });
});
