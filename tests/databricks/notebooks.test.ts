/**
 * The notebooks: they compile, and the SQL they hand to Spark is the SQL the local lakehouse
 * renders from the same notebooks/sql files (and runs on DuckDB in tests/lakehouse).
 *
 * There is no Spark here (no JVM, no PyPI), so notebook_runner.py runs each notebook with
 * recording stand-ins for spark/dbutils/pyspark: it shows the statements and stream settings a
 * notebook produces, not that Spark accepts them.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { renderAddColumns, renderGold, renderSilverMerge, renderSilverSetup, renderSilverView, SilverSpec } from "../../lakehouse/src/sql/render";

const REPO = path.resolve(__dirname, "..", "..");
const NOTEBOOKS = ["01_bronze_ingestion", "02_silver_merge", "03_gold_aggregation"].map((n) => path.join(REPO, "notebooks", `${n}.py`));

interface Stream {
  format: string | null;
  options: Record<string, string>;
  columns: Record<string, string>;
  path?: string;
  table?: string;
  sink: {
    options: Record<string, string>;
    trigger?: Record<string, unknown>;
    table?: string;
    queryName?: string;
    foreachBatch?: boolean;
    foreachBatchGlobals?: string[];
    foreachBatchCaptures?: string[];
  };
}
interface NotebookRun {
  sql: string[];
  streams: Stream[];
  conf: Record<string, string>;
  temp_views: string[];
  printed: string[];
  stopped_waiting?: boolean;
}

const WIDGETS = {
  landing_url: "s3://cdc-prod-landing/landing",
  catalog: "cdc",
  bronze_schema: "bronze",
  silver_schema: "silver",
  gold_schema: "gold",
  checkpoint_root: "/Volumes/cdc/bronze/cdc_checkpoints",
  tables: JSON.stringify([
    { name: "public.orders", primary_key: ["order_id"], schema_hints: "unit_price DECIMAL(12,2)" },
    { name: "public.users", primary_key: ["user_id"], schema_hints: "" },
  ]),
  // The uploaded folder holds medallion_sql.py and sql/ exactly like notebooks/ in the repository.
  workspace_dir: path.join(REPO, "notebooks"),
  trigger: "available_now",
  trigger_interval: "1 minute",
  gold_interval_minutes: "15",
};

function runNotebook(notebook: string, fixture: Record<string, unknown> = {}, widgets: Record<string, string> = WIDGETS): NotebookRun {
  const out = execFileSync("python3", [path.join(__dirname, "notebook_runner.py"), notebook, JSON.stringify({ widgets, fixture })], {
    env: { PATH: process.env.PATH, PYTHONDONTWRITEBYTECODE: "1" },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  return JSON.parse(out) as NotebookRun;
}

describe("databricks: notebooks", () => {
  it("are Databricks source-format Python notebooks that compile", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "dbx-pyc-"));
    try {
      for (const nb of NOTEBOOKS) {
        assert.ok(readFileSync(nb, "utf8").startsWith("# Databricks notebook source\n"), `${nb} is not in source format`);
        execFileSync("python3", ["-m", "py_compile", nb], { env: { PATH: process.env.PATH, PYTHONPYCACHEPREFIX: dir } });
      }
      assert.throws(() => execFileSync("python3", ["-m", "py_compile", "/dev/stdin"], { input: "def broken(:\n", stdio: ["pipe", "ignore", "ignore"] }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("contain no SQL of their own: silver and gold come from medallion_sql.py", () => {
    for (const nb of NOTEBOOKS) {
      const source = readFileSync(nb, "utf8");
      assert.ok(!/\bMERGE\s+INTO\b/i.test(source), `${path.basename(nb)} has inline MERGE SQL`);
      assert.ok(!/CREATE\s+(OR\s+REPLACE\s+)?(TABLE|VIEW)/i.test(source), `${path.basename(nb)} has inline DDL`);
    }
  });

  it("bronze: one Auto Loader stream per landed table, with typed CDC columns, schema evolution, rescued data and file metadata", () => {
    const run = runNotebook(NOTEBOOKS[0], { landed: ["public.orders"] });
    assert.equal(run.streams.length, 1, "a table with no landing files yet is skipped");
    assert.ok(run.printed.some((p) => /public\.users has no landing files yet/.test(p)));
    const [s] = run.streams;
    assert.equal(s.format, "cloudFiles");
    assert.equal(s.path, "s3://cdc-prod-landing/landing/cdc.public.orders");
    assert.equal(s.options["cloudFiles.format"], "json");
    assert.equal(s.options["cloudFiles.inferColumnTypes"], "true");
    assert.equal(s.options["cloudFiles.schemaEvolutionMode"], "addNewColumns");
    assert.equal(s.options["cloudFiles.schemaLocation"], "/Volumes/cdc/bronze/cdc_checkpoints/bronze/public.orders/schema");
    assert.equal(s.options["cloudFiles.partitionColumns"], "");
    assert.equal(s.options.rescuedDataColumn, "_rescued_data");
    assert.match(s.options["cloudFiles.schemaHints"], /__lsn BIGINT, __seq BIGINT, __ts_ms BIGINT, __unchanged ARRAY<STRING>, unit_price DECIMAL\(12,2\)$/);
    // The same ingestion columns as the local lakehouse's bronze (lakehouse/src/runner.ts).
    assert.equal(s.columns.__source_file, "_metadata.file_path");
    assert.equal(s.columns.__ingested_at, "current_timestamp()");
    assert.equal(s.sink.table, "cdc.bronze.public_orders");
    assert.equal(s.sink.options.checkpointLocation, "/Volumes/cdc/bronze/cdc_checkpoints/bronze/public.orders/checkpoint");
    assert.deepEqual(s.sink.trigger, { availableNow: true });

    // Continuous mode: processing-time streams, then the notebook keeps watching them (the
    // stand-in ends it at its first wait).
    const continuous = runNotebook(NOTEBOOKS[0], { landed: ["public.orders", "public.users"] }, { ...WIDGETS, trigger: "processing_time", trigger_interval: "30 seconds" });
    assert.equal(continuous.streams.length, 2);
    for (const st of continuous.streams) assert.deepEqual(st.sink.trigger, { processingTime: "30 seconds" });
    assert.equal(continuous.stopped_waiting, true);
  });

  it("silver: runs exactly the statements the shared renderer builds from notebooks/sql, per batch, with MERGE schema evolution", () => {
    const columns = [["order_id", "bigint"], ["user_id", "bigint"], ["unit_price", "decimal(12,2)"], ["coupon", "string"], ["__op", "string"], ["__lsn", "bigint"], ["__seq", "bigint"], ["__ts_ms", "bigint"], ["__deleted", "string"], ["_rescued_data", "string"], ["__source_file", "string"], ["__source_file_modified", "timestamp"], ["__ingested_at", "timestamp"]];
    const run = runNotebook(NOTEBOOKS[1], {
      existing_tables: ["cdc.bronze.public_orders"],
      // The state table predates the "coupon" column, which bronze just gained.
      batches: { "public.orders": { columns, state_columns: columns.filter(([n]) => n !== "coupon") } },
    });
    assert.equal(run.conf["spark.databricks.delta.schema.autoMerge.enabled"], "true");
    assert.equal(run.streams.length, 1, "users has no bronze table yet");
    assert.equal(run.streams[0].table, "cdc.bronze.public_orders");
    assert.equal(run.streams[0].sink.foreachBatch, true);
    // On Spark Connect the foreachBatch function runs in a server-side worker that cannot import
    // medallion_sql: it must carry rendered SQL text only.
    assert.ok(!run.streams[0].sink.foreachBatchGlobals!.includes("medallion_sql"), run.streams[0].sink.foreachBatchGlobals!.join());
    assert.deepEqual([...new Set(run.streams[0].sink.foreachBatchCaptures!)].sort(), ["list", "str"]);
    assert.deepEqual(run.streams[0].sink.trigger, { availableNow: true });
    assert.equal(run.streams[0].sink.options.checkpointLocation, "/Volumes/cdc/bronze/cdc_checkpoints/silver/public.orders/checkpoint");

    const spec: SilverSpec = {
      source: run.temp_views[0],
      bronzeTable: "cdc.bronze.public_orders",
      silverTable: "cdc.silver.public_orders",
      keys: ["order_id"],
      columns: ["order_id", "user_id", "unit_price", "coupon"],
    };
    const expected = [
      ...renderSilverSetup(spec),
      ...renderAddColumns("cdc.silver.public_orders__cdc_state", [{ name: "coupon", type: "string" }]),
      renderSilverView(spec),
      // per micro-batch, inside foreachBatch:
      ...renderSilverMerge(spec),
    ];
    assert.deepEqual(run.sql, expected);
    assert.ok(run.sql.some((s) => s.startsWith("-- Silver, step 5") && s.includes("MERGE INTO cdc.silver.public_orders__cdc_state")));

    // Serverless refuses most Spark configs: the same statements run, new columns still arrive by ALTER TABLE.
    const serverless = runNotebook(NOTEBOOKS[1], {
      existing_tables: ["cdc.bronze.public_orders"],
      unavailable_confs: ["spark.databricks.delta.schema.autoMerge.enabled"],
      batches: { "public.orders": { columns, state_columns: columns.filter(([n]) => n !== "coupon") } },
    });
    assert.deepEqual(serverless.sql, expected);
    assert.ok(serverless.printed.some((p) => /schema evolution not settable/.test(p)));
  });

  it("silver: stops with a clear message instead of merging records whose values were rescued (their columns are NULL)", () => {
    const columns = [["order_id", "bigint"], ["weight", "bigint"], ["__op", "string"], ["__lsn", "bigint"], ["__seq", "bigint"], ["__ts_ms", "bigint"], ["_rescued_data", "string"]];
    assert.throws(
      () => runNotebook(NOTEBOOKS[1], { existing_tables: ["cdc.bronze.public_orders"], batches: { "public.orders": { columns, rescued_rows: 1 } } }),
      /silver: public\.orders has bronze records whose values did not fit the inferred column types \(kept in _rescued_data.*schema hint/s,
    );
    const clean = runNotebook(NOTEBOOKS[1], { existing_tables: ["cdc.bronze.public_orders"], batches: { "public.orders": { columns } } });
    assert.ok(clean.sql.some((s) => s.includes("MERGE INTO cdc.silver.public_orders__cdc_state")));
  });

  it("gold: runs exactly the shared gold statements, skipping those whose silver inputs are not captured", () => {
    const expected = renderGold({ silverSchema: "cdc.silver", goldSchema: "cdc.gold" }).map((g) => g.sql);
    assert.deepEqual(runNotebook(NOTEBOOKS[2]).sql, expected);

    const partial = runNotebook(NOTEBOOKS[2], { existing_tables: ["cdc.silver.public_users", "cdc.silver.public_orders", "cdc.silver.public_products", "cdc.gold.user_lifetime_value"] });
    assert.deepEqual(partial.sql, expected.slice(1));
    assert.ok(partial.printed.some((p) => /cdc\.gold\.remaining_stock skipped: cdc\.silver\.warehouse_stock_item, cdc\.silver\.warehouse_stock_movement not present/.test(p)));
  });

  it("refuse to run without the job's parameters", () => {
    assert.throws(() => runNotebook(NOTEBOOKS[1], {}, { ...WIDGETS, catalog: "" }), /job parameter\(s\) catalog not set/);
  });
});
