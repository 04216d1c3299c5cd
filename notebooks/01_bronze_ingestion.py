# Databricks notebook source
# MAGIC %md
# MAGIC # Bronze: CDC landing files → bronze Delta tables (Auto Loader)
# MAGIC
# MAGIC One Auto Loader stream per captured table reads the engine's NDJSON files under
# MAGIC `<landing_url>/cdc.<schema>.<table>/date=…/hour=…/` and appends every record, as it is, to
# MAGIC `<catalog>.<bronze_schema>.<schema>_<table>`, plus where it came from (`__source_file`,
# MAGIC `__source_file_modified`) and when it was ingested (`__ingested_at`).
# MAGIC
# MAGIC * Exactly once per file: Auto Loader's checkpoint remembers every ingested file, so a run that
# MAGIC   is retried, or a file the engine rewrites on replay (same name, same content), adds no rows twice.
# MAGIC * Types: `inferColumnTypes`, with hints for the CDC columns and the table's own hints. PostgreSQL
# MAGIC   `numeric` values land as strings with their exact digits: a `DECIMAL(p,s)` hint types them
# MAGIC   exactly; without one they stay exact strings. Nothing is ever read as a float by accident.
# MAGIC * New columns: `addNewColumns` — the stream stops once when a new column shows up, the schema
# MAGIC   location records it, and the job's retry restarts the task with the wider schema.
# MAGIC * Values that do not fit the schema are kept in `_rescued_data`, never dropped.
# MAGIC
# MAGIC All names and paths come from the job parameters (widgets); nothing here is specific to a stack.

# COMMAND ----------

import json
import time

from pyspark.sql import functions as F

PARAMETERS = [
    "landing_url",
    "catalog",
    "bronze_schema",
    "checkpoint_root",
    "tables",
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
CHECKPOINT_ROOT = params["checkpoint_root"].rstrip("/")
TABLES = json.loads(params["tables"])
CONTINUOUS = params["trigger"] == "processing_time"
TRIGGER_INTERVAL = params["trigger_interval"] or "1 minute"

# The landing contract's own columns, typed once here so inference never guesses them.
CDC_SCHEMA_HINTS = "__op STRING, __deleted STRING, __lsn BIGINT, __seq BIGINT, __ts_ms BIGINT, __unchanged ARRAY<STRING>"

# COMMAND ----------


def bronze_table(table_name: str) -> str:
    schema, table = table_name.split(".", 1)
    return f"{CATALOG}.{BRONZE_SCHEMA}.{schema}_{table}"


def landing_folder(table_name: str) -> str:
    return f"{LANDING_URL}/cdc.{table_name}"


def checkpoint_dir(table_name: str) -> str:
    return f"{CHECKPOINT_ROOT}/bronze/{table_name}"


def has_landed(table_name: str) -> bool:
    """Auto Loader cannot infer a schema from an empty folder: a table starts once its first file lands."""
    try:
        return len(dbutils.fs.ls(landing_folder(table_name))) > 0
    except Exception as err:  # the folder does not exist yet
        if "FileNotFoundException" in str(err) or "does not exist" in str(err) or "NOT_FOUND" in str(err):
            return False
        raise


def start_stream(table: dict):
    name = table["name"]
    hints = CDC_SCHEMA_HINTS + (", " + table["schema_hints"] if table.get("schema_hints") else "")
    records = (
        spark.readStream.format("cloudFiles")
        .option("cloudFiles.format", "json")
        .option("cloudFiles.schemaLocation", f"{checkpoint_dir(name)}/schema")
        .option("cloudFiles.inferColumnTypes", "true")
        .option("cloudFiles.schemaHints", hints)
        .option("cloudFiles.schemaEvolutionMode", "addNewColumns")
        # date=/hour= are the landing layout, not data: no partition columns from the path.
        .option("cloudFiles.partitionColumns", "")
        .option("cloudFiles.includeExistingFiles", "true")
        .option("rescuedDataColumn", "_rescued_data")
        # .ndjson and .ndjson.gz objects only; temp files (".…") and _cdc_state/ are never matched
        .option("pathGlobFilter", "*.ndjson*")
        .load(landing_folder(name))
    )
    rows = (
        records.withColumn("__source_file", F.col("_metadata.file_path"))
        .withColumn("__source_file_modified", F.col("_metadata.file_modification_time"))
        .withColumn("__ingested_at", F.current_timestamp())
    )
    writer = (
        rows.writeStream.queryName(f"bronze {name}")
        .option("checkpointLocation", f"{checkpoint_dir(name)}/checkpoint")
        .option("mergeSchema", "true")
        .outputMode("append")
    )
    writer = writer.trigger(processingTime=TRIGGER_INTERVAL) if CONTINUOUS else writer.trigger(availableNow=True)
    return writer.toTable(bronze_table(name))


def stop_all(queries):
    for q in queries:
        try:
            q.stop()
        except Exception:  # already stopped
            pass


# COMMAND ----------

spark.sql(f"USE CATALOG {CATALOG}")
started = {}
waiting = [t for t in TABLES]


def start_landed():
    global waiting
    still_waiting = []
    for table in waiting:
        if has_landed(table["name"]):
            started[table["name"]] = start_stream(table)
            print(f"bronze: {table['name']} → {bronze_table(table['name'])}")
        else:
            still_waiting.append(table)
    waiting = still_waiting
    for table in waiting:
        print(f"bronze: {table['name']} has no landing files yet ({landing_folder(table['name'])}); skipped")


try:
    start_landed()
    if CONTINUOUS:
        # Always-on: watch the streams, and start tables whose first files land later.
        while True:
            for name, q in started.items():
                if q.exception() is not None:
                    raise RuntimeError(f"bronze stream for {name} failed: {q.exception()}")
            if waiting:
                start_landed()
            time.sleep(60)
    else:
        for name, q in started.items():
            q.awaitTermination()
            print(f"bronze: {name} drained ({q.lastProgress and q.lastProgress.get('numInputRows')} rows in the last batch)")
except Exception:
    # A new column stops its stream once (UnknownFieldException): fail the task so the job's retry
    # restarts it with the schema the schema location now records.
    stop_all(started.values())
    raise
