# Databricks notebook source
# MAGIC %md
# MAGIC # Silver: bronze changes → one row per primary key (MERGE)
# MAGIC
# MAGIC One stream per table reads its bronze table and, in `foreachBatch`, runs the **shared silver SQL**:
# MAGIC the statements `medallion_sql.py` renders from `sql/silver/*.sql` — the same files, rendered by the
# MAGIC same function as the local lakehouse's TypeScript twin, that `npm test` runs on DuckDB. Both files sit
# MAGIC next to this notebook in the workspace (uploaded by the stack from the repository).
# MAGIC
# MAGIC Per table, silver is a state table `<silver>.<schema>_<table>__cdc_state` (current rows plus tombstones
# MAGIC that stop late changes from resurrecting deleted keys), a truncate watermark, and the view
# MAGIC `<silver>.<schema>_<table>` that readers query. Changes are ordered by `(__lsn, __seq)`, never by
# MAGIC arrival, so replays and out-of-order batches leave silver unchanged.
# MAGIC
# MAGIC Keys come from the engine's schema manifests (the primary key, or the replica identity index); the job's
# MAGIC `tables` parameter may override them per table. A table without any key is refused with one clear error.
# MAGIC One table's failure does not stop the others: every failed table is reported at the end of the run.
# MAGIC ANSI mode and the session time zone (UTC) are pinned, so serverless and classic compute agree.
# MAGIC
# MAGIC New bronze columns: when a stream starts (and bronze gaining a column restarts it once), the state
# MAGIC table gets every new column (`ALTER TABLE … ADD COLUMN`, rendered by the shared renderer) and the view
# MAGIC is re-created; MERGE schema evolution is on where the compute allows it.

# COMMAND ----------

import hashlib
import json
import sys

from pyspark.sql import functions as F

PARAMETERS = [
    "landing_url",
    "catalog",
    "bronze_schema",
    "silver_schema",
    "checkpoint_root",
    "tables",
    "workspace_dir",
    "trigger",
    "trigger_interval",
]
for name in PARAMETERS:
    dbutils.widgets.text(name, "")
params = {name: dbutils.widgets.get(name).strip() for name in PARAMETERS}
missing = [name for name in PARAMETERS if not params[name] and name != "trigger_interval"]
if missing:
    raise ValueError(f"job parameter(s) {', '.join(missing)} not set: run this notebook from the job the stack deploys")

LANDING_URL = params["landing_url"].rstrip("/")
CATALOG = params["catalog"]
BRONZE_SCHEMA = params["bronze_schema"]
SILVER_SCHEMA = params["silver_schema"]
CHECKPOINT_ROOT = params["checkpoint_root"].rstrip("/")
TABLES = json.loads(params["tables"])
CONTINUOUS = params["trigger"] == "processing_time"
TRIGGER_INTERVAL = params["trigger_interval"] or "1 minute"

# The shared renderer and its SQL files, uploaded next to this notebook.
sys.path.insert(0, params["workspace_dir"])
import medallion_sql  # noqa: E402

# Every compute gives the same result: ANSI semantics, UTC and the proleptic calendar, whatever its defaults.
medallion_sql.pin_session(spark)

# New bronze columns reach the state table by ALTER TABLE when its stream starts (prepare, below),
# and by MERGE schema evolution where the compute allows setting it (serverless only accepts a few Spark
# configs and answers CONFIG_NOT_AVAILABLE; the ALTER TABLE path alone is then enough).
try:
    spark.conf.set("spark.databricks.delta.schema.autoMerge.enabled", "true")
except Exception as err:  # noqa: BLE001
    print(f"silver: MERGE schema evolution not settable on this compute ({type(err).__name__}); new columns are added by ALTER TABLE")

# Bronze columns that are not source data: the CDC and ingestion columns all start with "__"
# (__op, __lsn, __source_file, __ingested_at, … — the same names as the local lakehouse's bronze),
# plus Auto Loader's rescued-data column.
RESCUED_DATA = "_rescued_data"

# COMMAND ----------


def bronze_table(table_name: str) -> str:
    schema, table = table_name.split(".", 1)
    return f"{CATALOG}.{BRONZE_SCHEMA}.{schema}_{table}"


def silver_table(table_name: str) -> str:
    schema, table = table_name.split(".", 1)
    return medallion_sql.silver_table_name(schema, table, f"{CATALOG}.{SILVER_SCHEMA}")


def data_columns(fields) -> list:
    return [f.name for f in fields if not f.name.startswith("__") and f.name != RESCUED_DATA]


def manifest_key(table_name: str) -> list:
    """The newest schema manifest's key (the engine writes it: primary key, else replica identity index)."""
    folder = f"{LANDING_URL}/cdc.{table_name}/_schema"
    try:
        names = sorted(f.path for f in dbutils.fs.ls(folder) if f.name.endswith(".json") and not f.name.startswith("."))
    except Exception as err:  # noqa: BLE001
        if "FileNotFoundException" in str(err) or "does not exist" in str(err) or "NOT_FOUND" in str(err):
            return []
        raise
    if not names:
        return []
    text = "\n".join(r[0] for r in spark.read.option("wholetext", "true").text(names[-1]).collect())
    return json.loads(text).get("key", [])


def table_key(table: dict) -> list:
    key = table.get("primary_key") or manifest_key(table["name"])
    if not key:
        raise ValueError(
            f"silver: {table['name']} has no primary key and no replica identity index (its schema manifest names no key), "
            "so its rows cannot be told apart; add a primary key in PostgreSQL, or configure one in the stack "
            f"(databricks.primaryKeys[\"{table['name']}\"])"
        )
    return key


def prepare(table: dict) -> tuple:
    """Brings the table's silver objects up to bronze's columns; returns the micro-batch's view name
    and the per-batch statements.

    Runs on the driver when the stream starts. Bronze gaining a column stops the stream (the Delta
    source reports the schema change) and the task's retry comes back here, so the state table
    always has every bronze column before a batch is merged.
    """
    name = table["name"]
    schema, short = name.split(".", 1)
    bronze, target = bronze_table(name), silver_table(name)
    state_table = f"{target}__cdc_state"
    bronze_fields = spark.table(bronze).schema.fields
    columns = data_columns(bronze_fields)
    batch_view = "cdc_silver_batch_" + hashlib.sha1(name.encode()).hexdigest()[:12]
    spec = dict(dialect="spark", source=batch_view, bronze_table=bronze, silver_table=target, keys=table_key(table), columns=columns)

    for statement in medallion_sql.render_silver_setup(**spec):
        spark.sql(statement)
    existing = {f.name.lower() for f in spark.table(state_table).schema.fields}
    added = [(f.name, f.dataType.simpleString()) for f in bronze_fields if f.name in columns and f.name.lower() not in existing]
    for statement in medallion_sql.render_add_columns(state_table, added, "spark"):
        spark.sql(statement)
    if added:
        print(f"silver: {name} gained column(s) {', '.join(c for c, _ in added)}")
    spark.sql(medallion_sql.render_silver_view(**spec))
    return spec["source"], medallion_sql.render_silver_merge(**spec)


def merge_batch(table_name: str, batch_view: str, statements: list):
    """The foreachBatch function. It captures only strings: on Spark Connect (serverless, standard
    access mode) it runs in a server-side Python process, which cannot import medallion_sql."""

    def process(batch_df, batch_id):
        # One pass over the batch for what decides the statements: rescued values, whether a
        # truncate or re-snapshot barrier moves the watermark (else its two MERGEs have nothing to do),
        # and whether a key change's new row lacks unchanged TOAST values (else step 5b has none).
        rescued = F.max(F.col(RESCUED_DATA).isNotNull().cast("int")) if RESCUED_DATA in batch_df.columns else F.lit(0)
        key_change = F.max(((F.col("__op") == "c") & F.col("__unchanged").isNotNull()).cast("int")) if "__unchanged" in batch_df.columns else F.lit(0)
        facts = batch_df.agg(rescued.alias("rescued"), F.max(F.col("__op").isin("t", "b").cast("int")).alias("watermark"), key_change.alias("key_change")).collect()[0]
        # A value that did not fit bronze's column type sits in _rescued_data and its column is NULL:
        # merging it would make silver silently differ from the source. Stop, and say how to fix it.
        if facts["rescued"]:
            sample = batch_df.where(F.col(RESCUED_DATA).isNotNull()).select(RESCUED_DATA).limit(1).collect()[0][0]
            raise ValueError(
                f"silver: {table_name} has bronze records whose values did not fit their column types (from the schema manifests) "
                f"(kept in {RESCUED_DATA}, e.g. {sample}); merging them would lose those values. See "
                f"docs/databricks.md, Operations: \"A value did not fit its type\"."
            )
        if "__unchanged" not in batch_df.columns:  # no TOAST-unchanged value has landed yet
            batch_df = batch_df.withColumn("__unchanged", F.lit(None).cast("array<string>"))
        batch_df.createOrReplaceTempView(batch_view)
        merge_watermark, apply_watermark, merge_changes, fill_key_changes = statements
        for statement in ([merge_watermark, apply_watermark] if facts["watermark"] else []) + [merge_changes] + ([fill_key_changes] if facts["key_change"] else []):
            batch_df.sparkSession.sql(statement)

    return process


def start_stream(table: dict):
    name = table["name"]
    batch_view, statements = prepare(table)
    writer = (
        spark.readStream.table(bronze_table(name))
        .writeStream.queryName(f"silver {name}")
        .option("checkpointLocation", f"{CHECKPOINT_ROOT}/silver/{name}/checkpoint")
        .foreachBatch(merge_batch(name, batch_view, statements))
    )
    writer = writer.trigger(processingTime=TRIGGER_INTERVAL) if CONTINUOUS else writer.trigger(availableNow=True)
    return writer.start()


def bronze_ready(table: dict) -> bool:
    """A table starts once bronze has it (its first landing objects were ingested)."""
    if spark.catalog.tableExists(bronze_table(table["name"])):
        return True
    print(f"silver: {bronze_table(table['name'])} does not exist yet; skipped")
    return False


def start(table: dict):
    query = start_stream(table)
    print(f"silver: {bronze_table(table['name'])} → {silver_table(table['name'])}")
    return query


# COMMAND ----------

spark.catalog.setCurrentCatalog(CATALOG)
medallion_sql.run_streams("silver", TABLES, bronze_ready, start, CONTINUOUS)
