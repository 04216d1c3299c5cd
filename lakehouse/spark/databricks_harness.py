"""Runs the Databricks notebooks (notebooks/0*.py) on local Apache Spark + Delta Lake.

A STAND-IN HARNESS for what only Databricks has; everything else is real Spark SQL, Delta MERGE,
streaming checkpoints and foreachBatch:

* `dbutils.widgets` — the job parameters, given by the caller;
* `dbutils.fs.ls` and `dbutils.fs.put` — the local file system (file:// or plain paths);
* Auto Loader (`spark.readStream.format("cloudFiles")`) — mapped onto Spark's file stream source
  with the Auto Loader semantics the notebooks rely on: each path is read once (the file source's
  log, like Auto Loader's default `cloudFiles.allowOverwrites=false`; `true` is refused here),
  `cloudFiles.format` text/json, no partition columns from `date=`/`hour=` folders
  (recursiveFileLookup), `pathGlobFilter`, existing files included; `cloudFiles.schemaLocation`
  is Auto Loader's own schema store and has no equivalent (the notebooks take types from the
  schema manifests, not from it);
* a persistent catalog — Spark's in-memory catalog forgets views between processes, so the views
  the notebooks create are recorded under <warehouse>/_harness/views.json and re-created when a
  session starts (tables are re-registered from their Delta logs by session.create_session).
"""
from __future__ import annotations

import json
import os
import re
import sys
from datetime import datetime, timezone
from types import SimpleNamespace
from urllib.parse import urlparse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from session import create_session  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
NOTEBOOKS = os.path.join(REPO, "notebooks")
VIEW_DDL = re.compile(r"^\s*CREATE\s+OR\s+REPLACE\s+VIEW\s+(\S+)\s+AS\b", re.IGNORECASE)


def local_path(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return parsed.path if parsed.scheme else url
    raise ValueError(f"harness: {url} is not a local path; the local harness reads file:// landing zones only")


class Widgets:
    def __init__(self, values: dict):
        self._values = {k: str(v) for k, v in values.items()}

    def text(self, name, default_value="", label=None):
        self._values.setdefault(name, default_value)

    def get(self, name):
        if name not in self._values:
            raise ValueError(f"harness: widget {name} was never defined")
        return self._values[name]


class Fs:
    def ls(self, url: str):
        path = local_path(url)
        if not os.path.exists(path):
            raise FileNotFoundError(f"java.io.FileNotFoundException: File {url} does not exist.")
        out = []
        for entry in sorted(os.scandir(path), key=lambda e: e.name):
            info = entry.stat()
            suffix = "/" if entry.is_dir() else ""
            out.append(SimpleNamespace(path=f"file:{entry.path}{suffix}", name=entry.name + suffix, size=0 if entry.is_dir() else info.st_size, modificationTime=int(info.st_mtime * 1000)))
        return out

    def put(self, url: str, contents: str, overwrite: bool = False):
        path = local_path(url)
        if os.path.exists(path) and not overwrite:
            raise FileExistsError(f"java.io.IOException: File {url} already exists")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(contents)
        return True


class AutoLoaderReader:
    """`spark.readStream` whose format("cloudFiles") becomes Spark's file stream source (see module doc)."""

    def __init__(self, reader):
        self._reader = reader
        self._cloud_files = False
        self._options = {}

    def format(self, source):
        if source == "cloudFiles":
            self._cloud_files = True
            return self
        self._reader = self._reader.format(source)
        return self

    def option(self, key, value):
        if self._cloud_files:
            self._options[key] = str(value)
        else:
            self._reader = self._reader.option(key, value)
        return self

    def schema(self, schema):
        self._reader = self._reader.schema(schema)
        return self

    def __getattr__(self, name):  # table(), schema(), … of the real reader
        return getattr(self._reader, name)

    def load(self, path=None):
        if not self._cloud_files:
            return self._reader.load(path)
        options = dict(self._options)
        fmt = options.pop("cloudFiles.format", None)
        if fmt not in ("text", "json"):
            raise ValueError(f"harness: cloudFiles.format {fmt!r} is not supported by the local Auto Loader stand-in (text, json)")
        if options.pop("cloudFiles.allowOverwrites", "false").lower() == "true":
            raise ValueError("harness: cloudFiles.allowOverwrites=true is not supported: Spark's file source reads each path once")
        for ignored in ("cloudFiles.schemaLocation", "cloudFiles.partitionColumns", "cloudFiles.includeExistingFiles"):
            options.pop(ignored, None)
        unknown = [k for k in options if k.startswith("cloudFiles.")]
        if unknown:
            raise ValueError(f"harness: Auto Loader option(s) {', '.join(unknown)} have no local stand-in")
        reader = self._reader.format(fmt).option("recursiveFileLookup", "true")
        for key, value in options.items():
            reader = reader.option(key, value)
        return reader.load(local_path(path))


class SparkProxy:
    """The real SparkSession, with Auto Loader and the view store of the harness in front."""

    def __init__(self, spark, warehouse: str):
        self._spark = spark
        self._views_file = os.path.join(warehouse, "_harness", "views.json")

    @property
    def readStream(self):  # noqa: N802 (Spark's name)
        return AutoLoaderReader(self._spark.readStream)

    def sql(self, statement, *args, **kwargs):
        result = self._spark.sql(statement, *args, **kwargs)
        m = VIEW_DDL.match(re.sub(r"^\s*--[^\n]*\n", "", statement, flags=re.MULTILINE))
        if m:
            views = load_views(self._views_file)
            views[m.group(1)] = statement
            os.makedirs(os.path.dirname(self._views_file), exist_ok=True)
            with open(self._views_file, "w", encoding="utf-8") as f:
                json.dump(views, f)
        return result

    def __getattr__(self, name):
        return getattr(self._spark, name)


def load_views(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def open_session(warehouse: str):
    """A local session over `warehouse`, with the views recorded there re-created."""
    spark = create_session(warehouse)
    for name, statement in load_views(os.path.join(os.path.abspath(warehouse), "_harness", "views.json")).items():
        try:
            spark.sql(statement)
        except Exception as err:  # noqa: BLE001 — a view over a table that is gone
            print(f"harness: view {name} not restored: {str(err).splitlines()[0]}", file=sys.stderr)
    return spark


def run_notebook(spark, warehouse: str, notebook: str, widgets: dict) -> None:
    """Executes one notebook source file with `spark`, `dbutils` and the job parameters `widgets`."""
    path = os.path.join(NOTEBOOKS, notebook)
    with open(path, encoding="utf-8") as f:
        source = f.read()
    # Each job task is a fresh Python process on Databricks: no module imported by an earlier notebook lingers.
    sys.modules.pop("medallion_sql", None)
    dbutils = SimpleNamespace(widgets=Widgets(widgets), fs=Fs())
    scope = {"__name__": "__main__", "__file__": path, "spark": SparkProxy(spark, os.path.abspath(warehouse)), "dbutils": dbutils, "display": print}
    exec(compile(source, path, "exec"), scope)  # noqa: S102 — the notebooks are this repository's own code


def discover_tables(landing: str) -> list:
    """The captured tables of a landing directory: its cdc.<schema>.<table> folders."""
    out = []
    for entry in sorted(os.listdir(landing)):
        m = re.match(r"^cdc\.([^.]+)\.(.+)$", entry)
        if m and os.path.isdir(os.path.join(landing, entry)):
            out.append(f"{m.group(1)}.{m.group(2)}")
    return out


def job_parameters(landing: str, warehouse: str, tables: list, keys: dict | None = None, trigger: str = "available_now", kafka: dict | None = None) -> dict:
    """The parameters the deployed job passes (components/databricks/job.ts), for a local run. With
    `kafka` ({"bootstrap", "topic_prefix", "options"}) bronze reads the topics, and `landing` is where
    it mirrors the manifests for silver."""
    keys = keys or {}
    kafka_params = {"kafka_bootstrap": kafka["bootstrap"], "kafka_topic_prefix": kafka.get("topic_prefix", "cdc"), "kafka_options": json.dumps(kafka.get("options", {}))} if kafka else {}
    return {
        **kafka_params,
        "landing_url": "file://" + os.path.abspath(landing),
        "catalog": "spark_catalog",
        "bronze_schema": "bronze",
        "silver_schema": "silver",
        "gold_schema": "gold",
        "checkpoint_root": os.path.join(os.path.abspath(warehouse), "_checkpoints"),
        "tables": json.dumps([{"name": t, "primary_key": keys.get(t, [])} for t in tables]),
        "workspace_dir": NOTEBOOKS,
        "trigger": trigger,
        "trigger_interval": "1 second",
        "gold_interval_minutes": "15",
    }


def run_pipeline(spark, landing: str, warehouse: str, tables: list | None = None, keys: dict | None = None, layers=("bronze", "silver", "gold"), kafka: dict | None = None) -> dict:
    """bronze → silver → gold once (availableNow), like one run of the scheduled job. Returns each layer's error, if any."""
    for schema in ("bronze", "silver", "gold"):
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {schema}")
    if kafka and not tables:
        raise ValueError("harness: a Kafka run needs its tables listed (there is no landing directory to discover them from)")
    tables = tables or discover_tables(landing)
    widgets = job_parameters(landing, warehouse, tables, keys, kafka=kafka)
    errors = {}
    for layer, notebook in (("bronze", "01_bronze_ingestion.py"), ("silver", "02_silver_merge.py"), ("gold", "03_gold_aggregation.py")):
        if layer not in layers:
            continue
        started = datetime.now(timezone.utc)
        print(f"harness: {layer} notebook…", file=sys.stderr, flush=True)
        try:
            run_notebook(spark, warehouse, notebook, widgets)
        except Exception as err:  # noqa: BLE001 — reported to the caller; the next layer still runs, as in the job's retry-free tasks
            errors[layer] = str(err)
            print(f"harness: {layer} failed: {str(err).splitlines()[0] if str(err) else type(err).__name__}", file=sys.stderr, flush=True)
        print(f"harness: {layer} done in {(datetime.now(timezone.utc) - started).total_seconds():.1f} s", file=sys.stderr, flush=True)
    return errors
