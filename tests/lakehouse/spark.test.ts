/**
 * The Databricks notebooks themselves, on real Apache Spark + Delta Lake (local, PySpark from PyPI,
 * Delta jars from Maven Central, set up once by ensureSparkEnv). Only what exists on Databricks
 * alone — dbutils, the job parameters and Auto Loader — comes from the stand-in harness
 * (lakehouse/spark/databricks_harness.py); Spark SQL, Delta MERGE, column mapping, streaming
 * checkpoints and foreachBatch are real.
 *
 * 1. Every silver rule (silver-cases.ts) holds on Spark, and DuckDB gives the same silver.
 * 2. The full path: PostgreSQL → the real engine (kill -9 in the middle of its snapshot and of its
 *    stream) → landing → bronze/silver/gold notebooks → silver equals the source row for row and
 *    gold equals PostgreSQL's own aggregation; the DuckDB lakehouse over the same landing agrees.
 */
import assert from "node:assert/strict";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { SparkDriver } from "../../lakehouse/src/spark/driver";
import { refresh, RefreshError } from "../../lakehouse/src/runner";
import { Duck } from "../../lakehouse/src/duck";
import { createDemoSchema, DEMO_KEYS, DEMO_TABLES } from "../../lakehouse/src/demo/schema";
import { runWorkload } from "../../lakehouse/src/demo/workload";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { engineEnv, spawnEngine, waitFor, type ChildEngine } from "../engine/fixtures/harness";
import { readLanding } from "../engine/fixtures/landing";
import { compareGold, compareSilver, textClient } from "./compare";
import { land, landManifest, rec, silverRows, tempDir, waitUntilSlotConfirmsAll } from "./helpers";
import { main } from "../../lakehouse/src/cli";
import { normalizeRows, SILVER_SCENARIOS } from "./silver-cases";
import { sharedSpark } from "./shared-spark";

describe("Databricks notebooks on local Spark + Delta Lake", function () {
  this.timeout(30 * 60_000);
  let root: string;
  let spark: SparkDriver;

  before(async function () {
    root = await tempDir("cdc-spark-");
    // The first run on a machine installs PySpark and the Delta jars (.cache/spark), then reuses them.
    process.stdout.write("      (starting local Spark; the first run on a machine installs PySpark and Delta Lake first)\n");
    spark = await sharedSpark();
  });
  after(async () => {
    if (root && !process.env.KEEP_SPARK_TEST_DIR) await rm(root, { recursive: true, force: true });
  });

  it("applies every silver rule on Spark exactly as on DuckDB (one table's failure stops no other)", async () => {
    await spark.reset();
    const landing = join(root, "rules");
    const db = join(root, "rules.duckdb");
    await mkdir(landing, { recursive: true });
    const keys = Object.fromEntries(SILVER_SCENARIOS.map((s) => [s.table, s.key]));
    for (const s of SILVER_SCENARIOS) if (s.manifest) await landManifest(landing, s.table, s.manifest, { key: s.key });
    const steps = Math.max(...SILVER_SCENARIOS.map((s) => s.steps.length));
    for (let step = 0; step < steps; step++) {
      for (const s of SILVER_SCENARIOS) for (const records of s.steps[step] ?? []) await land(landing, s.table, records);
      const { errors } = await spark.run(landing, { keys, layers: ["bronze", "silver"] });
      const duckErrors = await refresh({ landing, db, keys, gold: false }).then(
        () => "",
        (err: unknown) => {
          if (!(err instanceof RefreshError)) throw err;
          return err.message;
        },
      );
      for (const s of SILVER_SCENARIOS.filter((x) => x.fails)) {
        assert.match(errors.bronze ?? "", new RegExp(`${s.table.replace(".", "\\.")}: .*${s.fails!.source}`), `Spark names ${s.table}'s problem`);
        assert.match(duckErrors, s.fails!, `DuckDB names ${s.table}'s problem`);
      }
      assert.equal(errors.silver, undefined, `silver on Spark: ${errors.silver}`);
      for (const s of SILVER_SCENARIOS) {
        for (const e of s.expect.filter((x) => (x.afterStep ?? s.steps.length - 1) === step)) {
          const [schema, table] = s.table.split(".");
          const order = s.key.map((k) => "`" + k + "`").join(", ");
          const onSpark = normalizeRows((await spark.query(`SELECT * FROM silver.${schema}_${table} ORDER BY ${order}`)).rows);
          const onDuck = normalizeRows(await silverRows(db, `silver.${schema}_${table}`, s.key.map((k) => `"${k}"`).join(", ")));
          assert.deepEqual(onSpark, normalizeRows(e.rows), `Spark, ${s.rule} (after step ${step})`);
          assert.deepEqual(onDuck, onSpark, `DuckDB equals Spark, ${s.rule} (after step ${step})`);
        }
      }
    }
  });

  it("runs and queries from the command line: cdc-lakehouse spark run | query", async () => {
    const landing = join(root, "cli-landing");
    const warehouse = join(root, "cli-warehouse");
    await land(landing, "public.cli_items", [rec("c", 100, 0, { id: 1, "Unit Price": 2.5 }), rec("c", 100, 1, { id: 2, "Unit Price": 4 }), rec("d", 200, 0, { id: 2 })]);
    const out: string[] = [];
    const err: string[] = [];
    const cli = (...args: string[]) => main(args, (l) => out.push(l), (l) => err.push(l));
    assert.equal(await cli("spark", "run", "--landing", landing, "--warehouse", warehouse, "--key", "public.cli_items=id"), 0, err.join("\n"));
    assert.match(out.join("\n"), /spark: bronze → silver → gold done/);
    out.length = 0;
    assert.equal(await cli("spark", "query", "--warehouse", warehouse, "SELECT id, `Unit Price` FROM silver.public_cli_items ORDER BY id"), 0, err.join("\n"));
    assert.deepEqual(out.map((l) => JSON.parse(l)), [{ id: 1, "Unit Price": 2.5 }]);
    err.length = 0;
    assert.equal(await cli("spark", "run", "--warehouse", warehouse), 2);
    assert.match(err.join("\n"), /spark run needs --landing DIR/);
  });

  describe("the full path from PostgreSQL", () => {
    let pg: TestPostgres;
    before(async () => {
      pg = await startPostgres();
    });
    after(async () => {
      await pg?.stop();
    });

    it("keeps silver equal to the source and gold equal to PostgreSQL's aggregation across kill -9, a second snapshot and real-world types", async () => {
      await spark.reset();
      const landing = join(root, "landing");
      await mkdir(landing, { recursive: true });
      const admin = await pg.connect();
      admin.on("error", () => undefined); // the server may stop first when the test fails
      let engine: ChildEngine | undefined;
      try {
      await createDemoSchema(admin);
      await admin.query(ODD_TABLE_SQL);
      await admin.query(`INSERT INTO public.odd_types ("Key Part", region, id, "Value Col", "Ünïcode", doc, meta, f8, big, at, local_at, day, raw, tags, nums, note)
        SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, 'not-the-key-' || g, (g * 1.000000000001)::numeric(30,12), 'ü' || g,
               ('{\n  "n": ' || g || ',\n  "nested": {"a b": [1, 2]}\n}')::json, jsonb_build_object('g', g, 'deep', jsonb_build_object('x', g)),
               g::float8, 9007199254740993 + g, CASE WHEN g % 50 = 0 THEN 'infinity'::timestamptz ELSE '2026-11-21 12:00:00.123456+00'::timestamptz + g * interval '1 minute' END,
               '2026-11-21 12:00:00.5'::timestamp, CASE WHEN g % 70 = 0 THEN '-infinity'::date ELSE '2026-11-21'::date END, decode(lpad(to_hex(g), 8, '0'), 'hex'),
               ARRAY['t' || g, NULL], ARRAY[g, NULL, -g], CASE WHEN g % 10 = 0 THEN repeat('long note ', 1000) ELSE 'short' END
          FROM generate_series(1, 3000) g`);
      const env = engineEnv(pg, landing, {
        TABLE_INCLUDE: [...DEMO_TABLES, "public.odd_types"].join(","),
        PG_SLOT: "spark_slot",
        PG_PUBLICATION: "spark_pub",
        BATCH_MAX_SIZE: "100",
        BATCH_MAX_WAIT_MS: "200",
        HEARTBEAT_INTERVAL_MS: "300",
        LOG_LEVEL: "info", // the test waits for the engine's "streaming changes" line
      });
      const connect = () => pg.connect();

      // 1. kill -9 in the middle of the initial snapshot; bronze ingests the partial snapshot.
      engine = spawnEngine(env);
      await waitFor("part of the snapshot to land", async () => (await readLanding(landing, "public.odd_types")).length >= 3, 60_000, 20);
      engine.child.kill("SIGKILL");
      await engine.exited;
      const partial = await spark.run(landing, { keys: DEMO_KEYS, layers: ["bronze", "silver"] });
      assert.deepEqual(partial.errors, {});
      // Rows deleted before the snapshot is taken again: only the re-snapshot barrier removes them from silver.
      await admin.query(`DELETE FROM public.odd_types WHERE "Key Part" <= 200`);

      // 2. The snapshot again, then streaming with a workload, a kill -9 while it flushes, a new column, a truncate.
      engine = spawnEngine(env);
      await waitFor("streaming", async () => engine!.logs.join("").includes("streaming changes"), 120_000);
      const during = runWorkload(connect, { clients: 3, transactionsPerClient: 40, seed: 21 });
      await admin.query(`UPDATE public.odd_types SET "Value Col" = "Value Col" + 0.5, f8 = f8 + 0.25, meta = meta || '{"u": true}' WHERE "Key Part" % 7 = 0`);
      await admin.query(`UPDATE public.odd_types SET "Ünïcode" = 'toast untouched' WHERE "Key Part" % 10 = 0`);
      await admin.query(`UPDATE public.odd_types SET "Key Part" = "Key Part" + 100000 WHERE "Key Part" % 11 = 0`);
      await new Promise((r) => setTimeout(r, 300));
      engine.child.kill("SIGKILL");
      await engine.exited;
      await during;
      engine = spawnEngine(env);
      await waitFor("streaming again", async () => engine!.logs.join("").includes("streaming changes"), 120_000);
      await admin.query("ALTER TABLE public.users ADD COLUMN loyalty_tier text");
      await admin.query("UPDATE public.users SET loyalty_tier = 'gold' WHERE user_id % 3 = 0");
      await admin.query("ALTER TABLE public.odd_types ADD COLUMN \"Added Later\" numeric(8,3)");
      await admin.query(`UPDATE public.odd_types SET "Added Later" = 1.5 WHERE "Key Part" % 5 = 0`);
      const mid = await spark.run(landing, { keys: DEMO_KEYS });
      assert.deepEqual(mid.errors, {});
      await admin.query("TRUNCATE warehouse.stock_movement");
      await runWorkload(connect, { clients: 3, transactionsPerClient: 40, seed: 22 });
      await waitUntilSlotConfirmsAll(admin, "spark_slot");
      engine.child.kill("SIGTERM");
      await engine.exited;
      } finally {
        if (engine && engine.child.exitCode === null) engine.child.kill("SIGKILL");
        await admin.end().catch(() => undefined);
      }

      // 3. The notebooks on Spark, and the DuckDB lakehouse, over the same landing zone.
      const last = await spark.run(landing, { keys: DEMO_KEYS });
      assert.deepEqual(last.errors, {});
      const db = join(root, "lake.duckdb");
      await refresh({ landing, db, keys: DEMO_KEYS });
      const client = await textClient(pg);
      const duck = await Duck.open(db);
      try {
        const onSpark = async (sql: string) => (await spark.query(sql)).rows;
        for (const table of [...DEMO_TABLES, "public.odd_types"]) {
          assert.equal(await compareSilver(client, onSpark, table, "spark"), undefined, `Spark silver ${table} equals the source`);
          assert.equal(await compareSilver(client, (sql) => duck.all(sql), table, "duckdb"), undefined, `DuckDB silver ${table} equals the source`);
        }
        const ghosts = await spark.query('SELECT count(*) AS n FROM silver.public_odd_types WHERE `Key Part` <= 200');
        assert.equal(Number(ghosts.rows[0].n), 0, "no row deleted between the two snapshots survives in silver");
        assert.deepEqual(await compareGold(client, onSpark), [], "Spark gold equals PostgreSQL's aggregation");
        assert.deepEqual(await compareGold(client, (sql) => duck.all(sql)), [], "DuckDB gold equals PostgreSQL's aggregation");
      } finally {
        duck.close();
        await client.end();
      }
    });
  });
});

/** Names and types that real schemas have (quoted mixed case, spaces, non-ASCII, a non-key `id`). */
const ODD_TABLE_SQL = `CREATE TABLE public.odd_types (
  "Key Part" int NOT NULL, region text NOT NULL, id text, "Value Col" numeric(30,12), "Ünïcode" text, doc json, meta jsonb,
  f8 float8, big int8, at timestamptz, local_at timestamp, day date, raw bytea, tags text[], nums int[], note text,
  PRIMARY KEY ("Key Part", region))`;
