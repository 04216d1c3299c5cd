/**
 * The local PySpark + Delta environment (lakehouse/src/spark/env.ts, lakehouse/spark/session.py):
 * the first ensureSparkEnv() on a machine installs it into .cache/spark (minutes), later calls
 * reuse the stamp; a real session writes a Delta table into a warehouse directory and a second
 * process finds the table again.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ensureSparkEnv, sparkPaths, type SparkEnv } from "../../lakehouse/src/spark/env";
import { tempDir } from "./helpers";

/** Writes rows into bronze.orders when the table is new, then prints the table as JSON on the last stdout line. */
const ROUND_TRIP_PY = `
import json, sys
from decimal import Decimal
from session import create_session

spark = create_session(sys.argv[1], app_name="spark-env-test")
existed = spark.catalog.tableExists("bronze.orders")
if not existed:
    spark.sql("CREATE DATABASE IF NOT EXISTS bronze")
    spark.sql("CREATE TABLE bronze.orders (order_id BIGINT, status STRING, unit_price DECIMAL(12,2), placed_at TIMESTAMP) USING delta")
    spark.sql("""INSERT INTO bronze.orders VALUES
        (1, 'placed', CAST('9.50' AS DECIMAL(12,2)), TIMESTAMP'2026-11-21 12:00:00.123456Z'),
        (2, 'paid', CAST('120.5' AS DECIMAL(12,2)), TIMESTAMP'2026-11-21 13:30:00Z')""")
rows = [
    {"order_id": r.order_id, "status": r.status, "unit_price": str(r.unit_price), "placed_at": r.placed_at_text}
    for r in spark.sql("SELECT *, date_format(placed_at, \\"yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'\\") AS placed_at_text FROM bronze.orders ORDER BY order_id").collect()
]
provider = spark.sql("DESCRIBE DETAIL bronze.orders").first().format
spark.stop()
print(json.dumps({"existed": existed, "provider": provider, "rows": rows}))
`;

function runPython(env: SparkEnv, script: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(env.python, [script, ...args], { env: env.env, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${env.python} ${script} failed: ${err.message}\n${stderr.split("\n").slice(-30).join("\n")}`));
      else resolve({ stdout, stderr });
    });
  });
}

describe("local Spark environment", function () {
  let sparkEnv: SparkEnv;
  let root: string;
  const setupLog: string[] = [];

  before(async function () {
    // The first run on a machine creates the venv, pip-installs pyspark (~300 MB) and fetches the Delta jars.
    this.timeout(15 * 60 * 1000);
    root = await tempDir("cdc-spark-env-");
    const started = Date.now();
    sparkEnv = await ensureSparkEnv({ log: (line) => setupLog.push(line) });
    setupLog.push(`(ensureSparkEnv took ${Date.now() - started} ms)`);
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("provides a venv python, Java, the Delta jars and Spark's Kafka source with the dependencies pyspark lacks", async () => {
    assert.equal(sparkEnv.python, sparkPaths().python);
    assert.ok(sparkEnv.env.JAVA_HOME, "JAVA_HOME is set");
    assert.equal(sparkEnv.env.PYSPARK_PYTHON, sparkEnv.python);
    assert.deepEqual(
      sparkEnv.jars.map((jar) => jar.split("/").pop()),
      ["delta-spark_2.12-3.3.2.jar", "delta-storage-3.3.2.jar", "commons-pool2-2.11.1.jar", "kafka-clients-3.4.1.jar", "spark-sql-kafka-0-10_2.12-3.5.3.jar", "spark-token-provider-kafka-0-10_2.12-3.5.3.jar"],
    );
    // What pyspark ships (hadoop-client-*, lz4, snappy, zstd, antlr4-runtime) is not loaded a second time.
    const shipped = new Set((await readdir(join(sparkEnv.env.SPARK_HOME!, "jars"))).map((jar) => jar.replace(/-\d[\w.-]*\.jar$/, "")));
    for (const jar of sparkEnv.jars) assert.ok(!shipped.has(jar.split("/").pop()!.replace(/-\d[\w.-]*\.jar$/, "")), `${jar} duplicates a pyspark jar`);
    for (const jar of sparkEnv.jars) assert.ok((await stat(jar)).size > 0, `${jar} exists`);
  });

  it("writes a Delta table in a warehouse and reads it back, also from a second process", async function () {
    this.timeout(5 * 60 * 1000);
    const script = join(root, "round_trip.py");
    await writeFile(script, ROUND_TRIP_PY);
    const warehouse = join(root, "warehouse");
    const expectedRows = [
      { order_id: 1, status: "placed", unit_price: "9.50", placed_at: "2026-11-21T12:00:00.123456Z" },
      { order_id: 2, status: "paid", unit_price: "120.50", placed_at: "2026-11-21T13:30:00.000000Z" },
    ];

    const first = await runPython(sparkEnv, script, [warehouse]);
    assert.match(first.stderr, /spark: ready in [\d.]+ s/);
    const written = JSON.parse(first.stdout.trim().split("\n").pop()!);
    assert.deepEqual(written, { existed: false, provider: "delta", rows: expectedRows });

    // A new process starts with an empty in-memory catalog; the session registers the warehouse's tables again.
    const second = await runPython(sparkEnv, script, [warehouse]);
    const reread = JSON.parse(second.stdout.trim().split("\n").pop()!);
    assert.deepEqual(reread, { existed: true, provider: "delta", rows: expectedRows });
  });

  it("reuses the stamp on a second call instead of reinstalling", async () => {
    const stampPath = join(sparkPaths().cache, "stamp.json");
    const stampBefore = await readFile(stampPath, "utf8");
    const log: string[] = [];
    const started = Date.now();
    const again = await ensureSparkEnv({ log: (line) => log.push(line) });
    const elapsed = Date.now() - started;
    assert.deepEqual(log, [], "a ready environment logs no setup steps");
    assert.ok(elapsed < 5000, `second call took ${elapsed} ms`);
    assert.equal(await readFile(stampPath, "utf8"), stampBefore);
    assert.equal(again.python, sparkEnv.python);
    assert.deepEqual(again.jars, sparkEnv.jars);
  });
});
