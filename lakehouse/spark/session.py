"""A local, Delta-enabled SparkSession for the lakehouse notebooks and tests.

Run it with the virtualenv and environment that lakehouse/src/spark/env.ts
(ensureSparkEnv) prepares: they provide pyspark, JAVA_HOME and CDC_SPARK_JARS,
the Delta jars downloaded once, so a session starts without network.

    from session import create_session
    spark = create_session("/path/to/warehouse")

Tables persist in the warehouse directory across separate runs. Spark's default
in-memory catalog forgets every database and table when the process ends, although
the Delta files stay; so at start the session registers again each Delta table it
finds at <warehouse>/<database>.db/<table>/_delta_log (where managed tables go).
A Delta table keeps its schema and properties in its log, so nothing is lost, but
re-registered tables are EXTERNAL: DROP TABLE keeps the files (and the table comes
back next run), so drop with `DROP TABLE` plus deleting the directory, or use
CREATE OR REPLACE. Views and functions are not persisted.

catalog="hive" is the alternative: Spark's Hive catalog on an embedded Derby metastore
kept in <warehouse>/metastore_db. Tables stay MANAGED and views persist, but it adds
15-35 s to every process on two cores (measured: 31-50 s vs 12-15 s for a small job)
and embedded Derby admits one process per warehouse at a time.
"""

from __future__ import annotations

import glob
import os
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
LOCAL_CORES = 2
DRIVER_MEMORY = "2g"


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def delta_jars() -> list[str]:
    """The local Delta jars: $CDC_SPARK_JARS (set by ensureSparkEnv), else the cache's jars/ directory."""
    listed = os.environ.get("CDC_SPARK_JARS", "")
    if listed:
        jars = [jar for jar in listed.split(",") if jar]
    else:
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        cache = os.environ.get("CDC_SPARK_HOME") or os.path.join(repo, ".cache", "spark")
        jars = sorted(glob.glob(os.path.join(cache, "jars", "delta-*.jar")))
    missing = [jar for jar in jars if not os.path.isfile(jar)]
    if not jars or missing:
        raise RuntimeError(
            "spark: the Delta jars are missing"
            + (f" ({', '.join(missing)})" if missing else "")
            + "; set up the local Spark environment with ensureSparkEnv() from lakehouse/src/spark/env.ts"
            + " (the lakehouse tests and `cdc-lakehouse spark` do it), which downloads them into .cache/spark/jars"
        )
    return jars


def register_warehouse_tables(spark: "SparkSession", warehouse: str) -> list[str]:
    """Registers each <warehouse>/<db>.db/<table> Delta table (and its database) in the session's catalog."""
    registered = []
    for log_dir in sorted(glob.glob(os.path.join(glob.escape(warehouse), "*.db", "*", "_delta_log"))):
        table_dir = os.path.dirname(log_dir)
        database = os.path.basename(os.path.dirname(table_dir))[: -len(".db")]
        table = os.path.basename(table_dir)
        location = table_dir.replace("'", "\\'")
        spark.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
        spark.sql(f"CREATE TABLE IF NOT EXISTS `{database}`.`{table}` USING delta LOCATION '{location}'")
        registered.append(f"{database}.{table}")
    return registered


def create_session(warehouse_dir: str, app_name: str = "cdc-lakehouse", catalog: str = "in-memory") -> "SparkSession":
    """A local[2] Delta session whose databases and tables live in warehouse_dir and survive restarts.

    catalog: "in-memory" (default; re-registers the warehouse's tables at start) or "hive" (Derby metastore).
    """
    if catalog not in ("in-memory", "hive"):
        raise ValueError(f'spark: catalog must be "in-memory" or "hive", not {catalog!r}')
    from pyspark.sql import SparkSession

    started = time.monotonic()
    warehouse = os.path.abspath(warehouse_dir)
    os.makedirs(warehouse, exist_ok=True)
    _log(f"spark: starting local session (warehouse {warehouse})…")

    # derby.log would otherwise land in the current directory.
    java_options = f"-Dderby.system.home={warehouse} -XX:+UseG1GC"
    builder = (
        SparkSession.builder.appName(app_name)
        .master(f"local[{LOCAL_CORES}]")
        .config("spark.driver.memory", DRIVER_MEMORY)
        .config("spark.driver.extraJavaOptions", java_options)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(LOCAL_CORES))
        .config("spark.default.parallelism", str(LOCAL_CORES))
        # Delta rebuilds table snapshots with 50 partitions by default, slow on two cores.
        .config("spark.databricks.delta.snapshotPartitions", str(LOCAL_CORES))
        .config("spark.jars", ",".join(delta_jars()))
        .config("spark.sql.extensions", DELTA_EXTENSION)
        .config("spark.sql.catalog.spark_catalog", DELTA_CATALOG)
        .config("spark.sql.warehouse.dir", warehouse)
        # Tiny local batches: interpreting beats compiling the wide MERGE plans (whole-stage codegen of
        # a 60-column MERGE runs past Janino's limits and falls back anyway, after seconds of trying).
        .config("spark.sql.codegen.wholeStage", "false")
        # For the same reason, expressions are interpreted instead of compiled one by one with Janino:
        # on these many small, each-slightly-different queries (19 tables x bronze + silver per run)
        # compiling was a quarter of the driver's CPU, and NO_CODEGEN cut a run's CPU by ~30 %.
        # (An internal Spark setting, used by Spark's own test suites; results are the same.)
        .config("spark.sql.codegen.factoryMode", "NO_CODEGEN")
        # Without Hadoop's native library (pyspark has none), a rename through Hadoop's FileContext forks
        # `readlink`: ~1,700 processes per run of the silver rules for the streams' checkpoint files
        # alone. Spark's FileSystem-based manager renames without forking; one query owns a checkpoint.
        .config("spark.sql.streaming.checkpointFileManagerClass", "org.apache.spark.sql.execution.streaming.FileSystemBasedCheckpointFileManager")
        # Databricks' default table format; the shared gold SQL says CREATE OR REPLACE TABLE without USING.
        .config("spark.sql.sources.default", "delta")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.ansi.enabled", "true")
    )
    if catalog == "hive":
        builder = builder.config("spark.sql.catalogImplementation", "hive").config(
            "spark.hadoop.javax.jdo.option.ConnectionURL",
            f"jdbc:derby:;databaseName={os.path.join(warehouse, 'metastore_db')};create=true",
        )
    else:
        builder = builder.config("spark.sql.catalogImplementation", "in-memory")
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    if catalog == "in-memory":
        registered = register_warehouse_tables(spark, warehouse)
        if registered:
            _log(f"spark: registered {len(registered)} table(s) found in the warehouse")
    _log(f"spark: ready in {time.monotonic() - started:.1f} s (Spark {spark.version})")
    return spark
