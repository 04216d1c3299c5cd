# Databricks notebook source
# MAGIC %md
# MAGIC # Bronze: CDC landing objects → bronze Delta tables (Auto Loader), typed by the schema manifests
# MAGIC
# MAGIC One Auto Loader stream per captured table reads the engine's NDJSON objects under
# MAGIC `<landing_url>/cdc.<schema>.<table>/date=…/hour=…/` and appends every record to
# MAGIC `<catalog>.<bronze_schema>.<schema>_<table>`, plus where it came from (`__source_file`,
# MAGIC `__source_file_modified`) and when it was ingested (`__ingested_at`).
# MAGIC
# MAGIC * **Types come from the engine's schema manifests** (`cdc.<schema>.<table>/_schema/*.json`, written before
# MAGIC   the data they describe), never from inference: each record is read as text and every value converted to
# MAGIC   its manifest type — exact decimals, `int8` as BIGINT (exact beyond 2^53), `json`/`jsonb` as a JSON text
# MAGIC   STRING, timestamps as TIMESTAMP / TIMESTAMP_NTZ (PostgreSQL's ±infinity as the type's extremes), `bytea` as
# MAGIC   BINARY, arrays as arrays. The manifests are read again for every micro-batch, so a table that gains
# MAGIC   columns gets them in bronze without a restart or a manual step.
# MAGIC * **Exactly once per object**: Auto Loader reads each path once (`cloudFiles.allowOverwrites` stays off) — right
# MAGIC   because landing object names are immutable (docs/engine.md) — and each micro-batch is an idempotent Delta
# MAGIC   write (`txnAppId`/`txnVersion`), so a retried batch adds nothing twice.
# MAGIC * A value that does not fit its type, or a field no manifest names, is kept in `_rescued_data` (and silver stops
# MAGIC   for that table, naming it), never dropped.
# MAGIC * Column names are kept as they are in PostgreSQL (Delta column mapping by name: spaces, punctuation,
# MAGIC   non-ASCII). One table's failure does not stop the others: every failed table is reported at the end.
# MAGIC * ANSI mode and the session time zone (UTC) are pinned, so serverless and classic compute agree.
# MAGIC
# MAGIC All names and paths come from the job parameters (widgets); nothing here is specific to a stack.
# MAGIC
# MAGIC **Kafka variant** (the stack's engine publishes to Kafka, `kafka_bootstrap` set): each table's stream reads
# MAGIC the topic `<kafka_topic_prefix>.<schema>.<table>` with Structured Streaming's `kafka` source from the
# MAGIC earliest offset instead of Auto Loader; a message's value is the landing record, so bronze gets the same
# MAGIC rows and table shape (`__source_file` is `kafka:<topic>:<partition>:<offset>`, `__source_file_modified`
# MAGIC the message timestamp), tombstones are skipped, and silver/gold are unchanged. The manifests come from the
# MAGIC compacted `<prefix>._schema` topic (keyed by table, ordered by their `__lsn`/`__seq` headers), read again
# MAGIC for every micro-batch; at each run they are also written as files under `landing_url`
# MAGIC (`cdc.<schema>.<table>/_schema/<position>.json`, the landing layout), where silver reads its keys. Kafka
# MAGIC may deliver a message twice (a replay after an engine crash; a `t`/`b` barrier is sent to every
# MAGIC partition): silver's MERGE applies each key's latest `(__lsn, __seq)` once, so duplicates change nothing.
# MAGIC `kafka_options` (JSON) adds the source's options, e.g. `kafka.security.protocol`/`kafka.sasl.*`.

# COMMAND ----------

import hashlib
import json
import sys

from pyspark.sql import functions as F

PARAMETERS = [
    "landing_url",
    "catalog",
    "bronze_schema",
    "checkpoint_root",
    "tables",
    "workspace_dir",
    "trigger",
    "trigger_interval",
    "kafka_bootstrap",
    "kafka_topic_prefix",
    "kafka_options",
]
OPTIONAL = {"trigger_interval", "kafka_bootstrap", "kafka_topic_prefix", "kafka_options"}
for name in PARAMETERS:
    dbutils.widgets.text(name, "")
params = {name: dbutils.widgets.get(name).strip() for name in PARAMETERS}
missing = [name for name in PARAMETERS if not params[name] and name not in OPTIONAL]
if missing:
    raise ValueError(f"job parameter(s) {', '.join(missing)} not set: run this notebook from the job the stack deploys")

LANDING_URL = params["landing_url"].rstrip("/")
CATALOG = params["catalog"]
BRONZE_SCHEMA = params["bronze_schema"]
CHECKPOINT_ROOT = params["checkpoint_root"].rstrip("/")
TABLES = json.loads(params["tables"])
CONTINUOUS = params["trigger"] == "processing_time"
TRIGGER_INTERVAL = params["trigger_interval"] or "1 minute"
# The Kafka variant: the records come from topics; landing_url then holds only the manifests' mirror.
KAFKA = bool(params["kafka_bootstrap"])
KAFKA_TOPIC_PREFIX = params["kafka_topic_prefix"] or "cdc"
KAFKA_OPTIONS = {"kafka.bootstrap.servers": params["kafka_bootstrap"], **json.loads(params["kafka_options"] or "{}")} if KAFKA else {}

# The shared module uploaded next to this notebook (the session settings every notebook pins).
sys.path.insert(0, params["workspace_dir"])
import medallion_sql  # noqa: E402

# Every compute gives the same result: ANSI semantics, UTC and the proleptic calendar, whatever its defaults.
medallion_sql.pin_session(spark)

# The landing contract's own fields, and what bronze adds.
RECORD_META = [("__op", "STRING"), ("__deleted", "STRING"), ("__lsn", "BIGINT"), ("__seq", "BIGINT"), ("__ts_ms", "BIGINT"), ("__unchanged", "ARRAY<STRING>")]
BRONZE_EXTRA = [("_rescued_data", "STRING"), ("__source_file", "STRING"), ("__source_file_modified", "TIMESTAMP"), ("__ingested_at", "TIMESTAMP")]
RESCUED_DATA = "_rescued_data"
DELTA_OPTIONS = "TBLPROPERTIES ('delta.columnMapping.mode' = 'name', 'delta.minReaderVersion' = '2', 'delta.minWriterVersion' = '5')"

# COMMAND ----------


def q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def lit(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def bronze_table(table_name: str) -> str:
    schema, table = table_name.split(".", 1)
    return f"{CATALOG}.{BRONZE_SCHEMA}.{schema}_{table}"


def landing_folder(table_name: str) -> str:
    return f"{LANDING_URL}/cdc.{table_name}"


def checkpoint_dir(table_name: str) -> str:
    return f"{CHECKPOINT_ROOT}/bronze/{table_name}"


def not_found(err: Exception) -> bool:
    text = str(err)
    return "FileNotFoundException" in text or "does not exist" in text or "NOT_FOUND" in text or "PATH_NOT_FOUND" in text


def manifest_position(lsn: int, seq: int) -> str:
    """A manifest's landing name: the position it applies from (docs/engine.md, "Schema manifests")."""
    return f"{lsn:016X}-{seq:010d}"


def read_kafka_manifests(session, table_name: str) -> list:
    """(position, manifest) of the table from the compacted `_schema` topic, oldest first, each once."""
    rows = (
        session.read.format("kafka").options(**KAFKA_OPTIONS)
        .option("subscribe", f"{KAFKA_TOPIC_PREFIX}._schema").option("startingOffsets", "earliest").option("endingOffsets", "latest")
        .option("includeHeaders", "true").load()
        .where(F.col("key").cast("string") == table_name).where(F.col("value").isNotNull())
        .select(F.col("value").cast("string").alias("value"), "headers").collect()
    )
    found = {}
    for r in rows:
        headers = {h.key: bytes(h.value).decode() for h in (r.headers or [])}
        if "__lsn" not in headers or "__seq" not in headers:
            continue
        found[manifest_position(int(headers["__lsn"]), int(headers["__seq"]))] = json.loads(r.value)
    return sorted(found.items())


def mirror_kafka_manifests(table_name: str) -> int:
    """Writes the table's manifests from `_schema` as landing-layout files under landing_url (silver reads its keys there)."""
    manifests = read_kafka_manifests(spark, table_name)
    for position, manifest in manifests:
        dbutils.fs.put(f"{landing_folder(table_name)}/_schema/{position}.json", json.dumps(manifest), True)
    return len(manifests)


def read_manifests(session, table_name: str) -> list:
    """The table's schema manifests, oldest first (their names sort by the position they apply from).

    Runs inside foreachBatch with the batch's own session only: on Spark Connect (serverless, standard
    access mode) that function runs in a server-side Python process without the notebook's spark/dbutils."""
    if KAFKA:
        return [m for _, m in read_kafka_manifests(session, table_name)]
    try:
        rows = session.read.option("wholetext", "true").text(f"{landing_folder(table_name)}/_schema/*.json").select("value", F.col("_metadata.file_path").alias("path")).collect()
    except Exception as err:  # noqa: BLE001
        if not_found(err):
            return []
        raise
    texts = {}
    for r in rows:  # one row per file with wholetext; lines of one file joined again otherwise
        texts.setdefault(r.path, []).append(r.value)
    names = sorted((p for p in texts if not p.rsplit("/", 1)[-1].startswith(".")), key=lambda p: p.rsplit("/", 1)[-1])
    return [json.loads("\n".join(texts[p])) for p in names]


def bronze_columns(table_name: str, manifests: list) -> list:
    """(name, Spark type) of every column of every manifest version, in order of first appearance, newest type."""
    order, types = [], {}
    for m in manifests:
        for c in m["columns"]:
            if c["name"] not in types:
                order.append(c["name"])
            types[c["name"]] = c["spark_type"]
    seen = {}
    for name in order:
        if name.startswith("__") or name.lower() == RESCUED_DATA:
            raise ValueError(f'bronze: {table_name}: column "{name}" collides with the CDC metadata columns; rename it in PostgreSQL or leave it out of the publication (a column list)')
        other = seen.get(name.lower())
        if other is not None:
            raise ValueError(
                f'bronze: {table_name}: columns "{other}" and "{name}" differ only in case, which Spark cannot tell apart; '
                "rename one of them in PostgreSQL or leave one out of the publication (a column list)"
            )
        seen[name.lower()] = name
    return [(name, types[name]) for name in order]


def convert(raw: str, spark_type: str) -> str:
    """SQL turning a value's landing text into its manifest type; NULL when it does not convert."""
    if spark_type == "STRING":
        return raw
    if spark_type == "BINARY":
        return f"try_to_binary({raw}, 'base64')"
    if spark_type.startswith("ARRAY<"):
        return f"from_json({raw}, {lit(spark_type)})"
    if spark_type == "DATE":
        return f"CASE {raw} WHEN 'infinity' THEN DATE '9999-12-31' WHEN '-infinity' THEN DATE '0001-01-01' ELSE try_cast({raw} AS DATE) END"
    if spark_type == "TIMESTAMP":
        return f"CASE {raw} WHEN 'infinity' THEN TIMESTAMP '9999-12-31 23:59:59.999999' WHEN '-infinity' THEN TIMESTAMP '0001-01-01 00:00:00' ELSE try_cast({raw} AS TIMESTAMP) END"
    if spark_type == "TIMESTAMP_NTZ":
        return f"CASE {raw} WHEN 'infinity' THEN TIMESTAMP_NTZ '9999-12-31 23:59:59.999999' WHEN '-infinity' THEN TIMESTAMP_NTZ '0001-01-01 00:00:00' ELSE try_cast({raw} AS TIMESTAMP_NTZ) END"
    return f"try_cast({raw} AS {spark_type})"


def ensure_bronze_table(session, table_name: str, columns: list) -> dict:
    """Creates the bronze table, or adds the columns a newer manifest introduced; returns its column types."""
    target = bronze_table(table_name)
    if not session.catalog.tableExists(target):
        ddl = ", ".join(f"{q(n)} {t}" for n, t in RECORD_META + columns + BRONZE_EXTRA)
        session.sql(f"CREATE TABLE IF NOT EXISTS {target} ({ddl}) USING DELTA {DELTA_OPTIONS}")
    existing = {f.name: f.dataType.simpleString().upper() for f in session.table(target).schema.fields}
    added = [(n, t) for n, t in columns if n not in existing]
    if added:
        session.sql(f"ALTER TABLE {target} ADD COLUMNS ({', '.join(f'{q(n)} {t}' for n, t in added)})")
        print(f"bronze: {table_name} gained column(s) {', '.join(n for n, _ in added)}")
        existing.update({n: t for n, t in added})
    return existing


def typed_records_sql(batch_view: str, columns: list, bronze_types: dict) -> str:
    """The batch's lines → bronze rows. A column keeps the type bronze gave it first: a later manifest
    that retypes it converts into that type, and values that do not fit are rescued (silver stops, naming them)."""
    typed = [(n, bronze_types.get(n, t)) for n, t in columns]
    known = "array(" + ", ".join(lit(n) for n, _ in RECORD_META + columns) + ")"
    parsed = ", ".join(f"{convert(f'm[{lit(n)}]', t)} AS {q(n)}" for n, t in typed)
    failed = "filter(array(" + ", ".join(f"CASE WHEN m[{lit(n)}] IS NOT NULL AND {q(n)} IS NULL THEN {lit(n)} END" for n, _ in typed) + "), x -> x IS NOT NULL)" if typed else "CAST(array() AS ARRAY<STRING>)"
    columns_out = ", ".join(q(n) for n, _ in typed)
    return f"""
SELECT
  m['__op'] AS __op, m['__deleted'] AS __deleted, try_cast(m['__lsn'] AS BIGINT) AS __lsn, try_cast(m['__seq'] AS BIGINT) AS __seq,
  try_cast(m['__ts_ms'] AS BIGINT) AS __ts_ms, from_json(m['__unchanged'], 'ARRAY<STRING>') AS __unchanged,
  {columns_out + "," if typed else ""}
  CASE
    WHEN m IS NULL THEN value
    WHEN size(__failed) > 0 OR size(map_filter(m, (k, v) -> NOT array_contains({known}, k))) > 0
      THEN to_json(map_filter(m, (k, v) -> NOT array_contains({known}, k) OR array_contains(__failed, k)))
  END AS _rescued_data,
  __source_file, __source_file_modified, current_timestamp() AS __ingested_at
FROM (
  SELECT *, {failed} AS __failed
  FROM (
    SELECT m, value, __source_file, __source_file_modified{", " + parsed if typed else ""}
    FROM (SELECT from_json(value, 'MAP<STRING,STRING>') AS m, value, __source_file, __source_file_modified FROM {batch_view})
  )
)"""


def write_batch(table_name: str, app_id: str):
    """The foreachBatch function: types the micro-batch by the manifests and appends it, idempotently.
    It uses only the batch's session (see read_manifests)."""

    def process(batch_df, batch_id):
        session = batch_df.sparkSession
        manifests = read_manifests(session, table_name)
        if not manifests:
            where = f"the topic {KAFKA_TOPIC_PREFIX}._schema (key {table_name})" if KAFKA else f"{landing_folder(table_name)}/_schema/"
            raise ValueError(
                f"bronze: {table_name} has landing objects but no schema manifest in {where}; "
                "the engine (0.2 or later) writes one before a table's first object — restart it once to write it"
            )
        columns = bronze_columns(table_name, manifests)
        bronze_types = ensure_bronze_table(session, table_name, columns)
        view = f"cdc_bronze_batch_{hashlib.sha1(table_name.encode()).hexdigest()[:12]}"
        batch_df.createOrReplaceTempView(view)
        rows = session.sql(typed_records_sql(view, columns, bronze_types))
        (
            rows.write.format("delta")
            .mode("append")
            .option("txnAppId", app_id)
            .option("txnVersion", batch_id)
            .saveAsTable(bronze_table(table_name))
        )

    return process


def has_landed(table_name: str) -> bool:
    if KAFKA:
        # The engine publishes a table's manifest before its first record.
        return mirror_kafka_manifests(table_name) > 0
    try:
        return len(dbutils.fs.ls(landing_folder(table_name))) > 0
    except Exception as err:  # noqa: BLE001
        if not_found(err):
            return False
        raise


def kafka_lines(table_name: str):
    """The table's topic from its first offset: the value is the landing record; tombstones (null values) are skipped."""
    return (
        spark.readStream.format("kafka").options(**KAFKA_OPTIONS)
        .option("subscribe", f"{KAFKA_TOPIC_PREFIX}.{table_name}")
        .option("startingOffsets", "earliest")
        .load()
        .where(F.col("value").isNotNull())
        .select(
            F.col("value").cast("string").alias("value"),
            F.concat_ws(":", F.lit("kafka"), F.col("topic"), F.col("partition").cast("string"), F.col("offset").cast("string")).alias("__source_file"),
            F.col("timestamp").alias("__source_file_modified"),
        )
    )


def start_stream(table: dict):
    name = table["name"]
    lines = kafka_lines(name) if KAFKA else (
        spark.readStream.format("cloudFiles")
        .option("cloudFiles.format", "text")
        .option("cloudFiles.schemaLocation", f"{checkpoint_dir(name)}/schema")
        # date=/hour= are the landing layout, not data: no partition columns from the path.
        .option("cloudFiles.partitionColumns", "")
        .option("cloudFiles.includeExistingFiles", "true")
        # Landing names are immutable, so each path is read once (Auto Loader's default).
        .option("cloudFiles.allowOverwrites", "false")
        # .ndjson and .ndjson.gz objects only; temp files (".…"), _schema/ and _cdc_state/ never match.
        .option("pathGlobFilter", "*.ndjson*")
        .load(landing_folder(name))
        .select("value", F.col("_metadata.file_path").alias("__source_file"), F.col("_metadata.file_modification_time").alias("__source_file_modified"))
    )
    # A Kafka stream keeps offsets, Auto Loader file lists: each its own checkpoint, so switching a stack's sink starts clean.
    checkpoint = f"{checkpoint_dir(name)}/kafka-checkpoint" if KAFKA else f"{checkpoint_dir(name)}/checkpoint"
    app_id = "cdc-bronze-" + hashlib.sha1((checkpoint if KAFKA else checkpoint_dir(name)).encode()).hexdigest()
    writer = (
        lines.writeStream.queryName(f"bronze {name}")
        .option("checkpointLocation", checkpoint)
        .foreachBatch(write_batch(name, app_id))
    )
    writer = writer.trigger(processingTime=TRIGGER_INTERVAL) if CONTINUOUS else writer.trigger(availableNow=True)
    return writer.start()


def landed(table: dict) -> bool:
    if has_landed(table["name"]):
        return True
    where = f"no manifest in {KAFKA_TOPIC_PREFIX}._schema" if KAFKA else f"no landing objects yet ({landing_folder(table['name'])})"
    print(f"bronze: {table['name']} has {where}; skipped")
    return False


def start(table: dict):
    query = start_stream(table)
    print(f"bronze: {table['name']} → {bronze_table(table['name'])}")
    return query


# COMMAND ----------

spark.catalog.setCurrentCatalog(CATALOG)
medallion_sql.run_streams("bronze", TABLES, landed, start, CONTINUOUS)
