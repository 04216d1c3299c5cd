/**
 * The lakehouse reading from Kafka: the real bronze notebook's Kafka variant (Structured
 * Streaming's `kafka` source, org.apache.spark:spark-sql-kafka-0-10 from Maven Central) on local
 * Spark + Delta Lake, against a real Apache Kafka broker (KRaft, the test suite's) that the real
 * engine publishes to from PostgreSQL. Silver and gold are the unchanged notebooks. Only dbutils
 * and the job parameters come from the stand-in harness (lakehouse/spark/databricks_harness.py).
 *
 * The engine is killed with -9 while it publishes (so the topics hold replayed duplicates) and a
 * TRUNCATE sends its barrier to every partition; silver must still equal the source row for row,
 * and gold PostgreSQL's own aggregation. One Spark session, shared with spark.test.ts (shared-spark.ts); progress is printed (Spark is slow).
 */
import assert from "node:assert/strict";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { SparkDriver } from "../../lakehouse/src/spark/driver";
import { createDemoSchema, DEMO_KEYS, DEMO_TABLES } from "../../lakehouse/src/demo/schema";
import { runWorkload } from "../../lakehouse/src/demo/workload";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { engineEnv, spawnEngine, waitFor, type ChildEngine } from "../engine/fixtures/harness";
import { startKafka, type KafkaBroker } from "../sinks/support/kafka-broker";
import { compareGold, compareSilver, textClient } from "./compare";
import { tempDir, waitUntilSlotConfirmsAll } from "./helpers";
import { sharedSpark } from "./shared-spark";

const progress = (line: string) => process.stdout.write(`      ${line}\n`);

describe("Databricks notebooks reading the engine's Kafka topics (local Spark + a real Kafka broker)", function () {
  this.timeout(15 * 60_000);
  let root: string;
  let spark: SparkDriver;
  let pg: TestPostgres;
  let broker: KafkaBroker;

  before(async function () {
    root = await tempDir("cdc-spark-kafka-");
    progress("(starting local Spark, a Kafka broker and PostgreSQL; the first run on a machine installs PySpark, Delta Lake and the Kafka source first)");
    [spark, pg, broker] = await Promise.all([sharedSpark(), startPostgres(), startKafka()]);
  });
  after(async () => {
    await broker?.dispose();
    await pg?.stop();
    if (root && !process.env.KEEP_SPARK_TEST_DIR) await rm(root, { recursive: true, force: true });
  });

  it("bronze from the topics (same table shape), unchanged silver equal to the source and gold to PostgreSQL's aggregation, through a kill -9 of the engine and a TRUNCATE", async () => {
    // Bronze mirrors the manifests here for silver; no record is ever written to it.
    const landing = join(root, "kafka-landing");
    const kafka = { bootstrap: broker.bootstrap, topicPrefix: "cdc" };
    const admin = await pg.connect();
    admin.on("error", () => undefined);
    let engine: ChildEngine | undefined;
    try {
      await createDemoSchema(admin);
      const env = engineEnv(pg, landing, {
        SINK_URL: `kafka://${broker.bootstrap}`,
        KAFKA_TOPIC_PARTITIONS: "3",
        TABLE_INCLUDE: DEMO_TABLES.join(","),
        PG_SLOT: "spark_kafka_slot",
        PG_PUBLICATION: "spark_kafka_pub",
        BATCH_MAX_SIZE: "100",
        BATCH_MAX_WAIT_MS: "200",
        HEARTBEAT_INTERVAL_MS: "300",
        LOG_LEVEL: "info", // the test waits for the engine's "streaming changes" line
      });
      const connect = () => pg.connect();

      progress("engine: snapshot, then a workload with a kill -9 while it publishes");
      engine = spawnEngine(env);
      await waitFor("streaming", async () => engine!.logs.join("").includes("streaming changes"), 120_000);
      const during = runWorkload(connect, { clients: 3, transactionsPerClient: 40, seed: 31 });
      await new Promise((r) => setTimeout(r, 400));
      engine.child.kill("SIGKILL");
      await engine.exited;
      await during;
      engine = spawnEngine(env);
      await waitFor("streaming again", async () => engine!.logs.join("").includes("streaming changes"), 120_000);

      progress("spark: bronze (Kafka) → silver, mid-stream");
      const mid = await spark.run(landing, { tables: [...DEMO_TABLES], keys: DEMO_KEYS, kafka, layers: ["bronze", "silver"] });
      assert.deepEqual(mid.errors, {});

      progress("engine: a new column, a TRUNCATE (its barrier goes to every partition), more workload");
      await admin.query("ALTER TABLE public.users ADD COLUMN loyalty_tier text");
      await admin.query("UPDATE public.users SET loyalty_tier = 'gold' WHERE user_id % 3 = 0");
      await admin.query("TRUNCATE warehouse.stock_movement");
      await runWorkload(connect, { clients: 3, transactionsPerClient: 40, seed: 32 });
      await waitUntilSlotConfirmsAll(admin, "spark_kafka_slot");
      engine.child.kill("SIGTERM");
      await engine.exited;
    } finally {
      if (engine && engine.child.exitCode === null) engine.child.kill("SIGKILL");
      await admin.end().catch(() => undefined);
    }

    progress("spark: bronze (Kafka) → silver → gold, after the engine confirmed everything");
    const last = await spark.run(landing, { tables: [...DEMO_TABLES], keys: DEMO_KEYS, kafka });
    assert.deepEqual(last.errors, {});

    // The same bronze shape as the Auto Loader path: the landing record's fields, the data columns, what bronze adds,
    // then the columns a later manifest introduced (ALTER TABLE … ADD COLUMNS appends them).
    const columns = (await spark.query("SELECT * FROM bronze.public_users LIMIT 1")).columns;
    assert.deepEqual(columns.slice(0, 6), ["__op", "__deleted", "__lsn", "__seq", "__ts_ms", "__unchanged"]);
    assert.deepEqual(columns.slice(-5), ["_rescued_data", "__source_file", "__source_file_modified", "__ingested_at", "loyalty_tier"], "a column added in PostgreSQL reached bronze from the _schema topic");
    const sources = await spark.query("SELECT __source_file FROM bronze.public_users WHERE __source_file_modified IS NULL OR __source_file NOT RLIKE '^kafka:cdc\\\\.public\\\\.users:[0-2]:[0-9]+$' LIMIT 3");
    assert.deepEqual(sources.rows, [], "every bronze row names its topic, partition and offset, and has the message's timestamp");
    const copies = await spark.query("SELECT count(*) AS n, count(DISTINCT __lsn, __seq) AS distinct_positions FROM bronze.warehouse_stock_movement");
    progress(`bronze.warehouse_stock_movement: ${copies.rows[0].n} rows, ${copies.rows[0].distinct_positions} distinct positions (replays and per-partition barriers)`);
    assert.ok(Number(copies.rows[0].n) > Number(copies.rows[0].distinct_positions), "the topics hold duplicates (the barrier on every partition, the replay after kill -9) that silver must absorb");
    for (const table of DEMO_TABLES) {
      const files = (await readdir(join(landing, `cdc.${table}`, "_schema"))).filter((f) => /^[0-9A-F]{16}-\d{10}\.json$/.test(f));
      assert.ok(files.length >= 1, `the manifests of ${table} are mirrored for silver`);
    }

    progress("comparing silver with PostgreSQL, gold with its aggregation");
    const client = await textClient(pg);
    try {
      const onSpark = async (sql: string) => (await spark.query(sql)).rows;
      for (const table of DEMO_TABLES) assert.equal(await compareSilver(client, onSpark, table, "spark"), undefined, `Spark silver ${table} equals the source`);
      assert.deepEqual(await compareGold(client, onSpark), [], "Spark gold equals PostgreSQL's aggregation");
    } finally {
      await client.end();
    }
  });
});
