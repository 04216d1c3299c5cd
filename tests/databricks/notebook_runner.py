"""Runs one Databricks notebook (source format) against recording stand-ins for `spark`, `dbutils`
and `pyspark`, and prints what it did as JSON: every SQL statement, every stream it configured
(format, options, trigger, target) and every Spark conf it set.

No Spark runtime exists on this machine (no PyPI, no JVM), so this cannot prove the SQL runs on
Spark; it proves which SQL text the notebook hands to Spark and how it wires its streams.
The SQL text itself runs on DuckDB in tests/lakehouse.

Usage: python3 notebook_runner.py NOTEBOOK.py '{"widgets": {...}, "fixture": {...}}'
  fixture.existing_tables     tables spark.catalog.tableExists() reports (default: all)
  fixture.landed              table names (schema.table) whose landing folder has files (default: all)
  fixture.unavailable_confs   Spark configs whose set() fails, as on serverless
  fixture.batches             {"schema.table": {"columns": [[name, type], ...], "state_columns": [...]}}:
                              bronze's columns (also one micro-batch's) and the silver state table's;
                              "rescued_rows": N makes N of the batch's rows carry _rescued_data
"""
import json
import os
import sys
import tempfile
import types

notebook_path, request = sys.argv[1], json.loads(sys.argv[2])
widgets = request["widgets"]
fixture = request.get("fixture", {})
log = {"sql": [], "streams": [], "conf": {}, "temp_views": [], "printed": []}


# --- pyspark stand-in: just enough for `from pyspark.sql import functions as F` -----------------
class Column:
    def __init__(self, expr):
        self.expr = expr

    def isNotNull(self):
        return Column("%s IS NOT NULL" % self.expr)

    def cast(self, type_):
        return Column("CAST(%s AS %s)" % (self.expr, type_))


functions = types.ModuleType("pyspark.sql.functions")
functions.col = lambda name: Column(name)
functions.lit = lambda value: Column(repr(value))
functions.current_timestamp = lambda: Column("current_timestamp()")
pyspark = types.ModuleType("pyspark")
pyspark_sql = types.ModuleType("pyspark.sql")
pyspark_sql.functions = functions
pyspark.sql = pyspark_sql
sys.modules.update({"pyspark": pyspark, "pyspark.sql": pyspark_sql, "pyspark.sql.functions": functions})


# --- spark stand-in --------------------------------------------------------------------------------
class DataType:
    def __init__(self, s):
        self.s = s

    def simpleString(self):
        return self.s


class Field:
    def __init__(self, name, type_):
        self.name, self.dataType = name, DataType(type_)


class Schema:
    def __init__(self, columns):
        self.fields = [Field(n, t) for n, t in columns]


def table_exists(name):
    existing = fixture.get("existing_tables")
    return True if existing is None else name in existing


class Catalog:
    def tableExists(self, name):
        return table_exists(name)


class Session:
    catalog = Catalog()

    def sql(self, statement):
        log["sql"].append(statement)

    def table(self, name):
        for table, batch in fixture.get("batches", {}).items():
            if name.endswith(".%s__cdc_state" % table.replace(".", "_")):
                return Frame(batch.get("state_columns", batch["columns"]))
            if name.endswith(".%s" % table.replace(".", "_")):  # the bronze table
                return Frame(batch["columns"])
        return Frame([])


class Frame:
    def __init__(self, columns, stream=None, rows=0, rescued=0):
        self._columns = [list(c) for c in columns]
        self.stream = stream
        self.sparkSession = SESSION
        self._rows, self._rescued = rows, rescued

    def where(self, condition):
        rows = self._rescued if condition.expr == "_rescued_data IS NOT NULL" else self._rows
        return Frame(self._columns, self.stream, rows, self._rescued)

    def limit(self, n):
        return Frame(self._columns, self.stream, min(n, self._rows), self._rescued)

    def select(self, *names):
        return Frame([c for c in self._columns if c[0] in names], self.stream, self._rows, self._rescued)

    def count(self):
        return self._rows

    def collect(self):
        return [['{"price":"1.5","_file_path":"s3://…"}'] for _ in range(self._rows)]

    @property
    def schema(self):
        return Schema(self._columns)

    @property
    def columns(self):
        return [c[0] for c in self._columns]

    def withColumn(self, name, column):
        if self.stream is not None:
            self.stream["columns"][name] = column.expr
        type_ = "array<string>" if "array<string>" in column.expr else "string"
        return Frame(self._columns + [[name, type_]], self.stream, self._rows, self._rescued)

    def createOrReplaceTempView(self, name):
        log["temp_views"].append(name)

    @property
    def writeStream(self):
        return Writer(self.stream)


class Query:
    def __init__(self, name):
        self.name = name
        self.lastProgress = {"numInputRows": 0}

    def awaitTermination(self):
        return None

    def exception(self):
        return None

    def stop(self):
        return None


class Writer:
    def __init__(self, stream):
        self.stream = stream
        stream["sink"] = {"options": {}}

    def queryName(self, name):
        self.stream["sink"]["queryName"] = name
        return self

    def option(self, key, value):
        self.stream["sink"]["options"][key] = value
        return self

    def outputMode(self, mode):
        self.stream["sink"]["outputMode"] = mode
        return self

    def trigger(self, **kwargs):
        self.stream["sink"]["trigger"] = kwargs
        return self

    def foreachBatch(self, fn):
        self.stream["sink"]["foreachBatch"] = True
        # What Spark Connect would have to ship to its server-side Python worker with the function.
        self.stream["sink"]["foreachBatchGlobals"] = sorted(fn.__code__.co_names)
        self.stream["sink"]["foreachBatchCaptures"] = [type(c.cell_contents).__name__ for c in (fn.__closure__ or ())]
        self._fn = fn
        return self

    def _run_batches(self):
        table = self.stream["table"]
        for name, batch in fixture.get("batches", {}).items():
            if table.endswith(name.replace(".", "_")):
                self._fn(Frame(batch["columns"], rows=10, rescued=batch.get("rescued_rows", 0)), 0)

    def start(self):
        if getattr(self, "_fn", None):
            self._run_batches()
        return Query(self.stream["sink"].get("queryName"))

    def toTable(self, name):
        self.stream["sink"]["table"] = name
        return Query(self.stream["sink"].get("queryName"))


class Reader:
    def __init__(self):
        self.stream = {"format": None, "options": {}, "columns": {}}

    def format(self, fmt):
        self.stream["format"] = fmt
        return self

    def option(self, key, value):
        self.stream["options"][key] = value
        return self

    def load(self, path):
        self.stream["path"] = path
        log["streams"].append(self.stream)
        return Frame([], self.stream)

    def table(self, name):
        self.stream["table"] = name
        log["streams"].append(self.stream)
        return Frame([], self.stream)


class Conf:
    def set(self, key, value):
        if key in fixture.get("unavailable_confs", []):  # as serverless answers for most configs
            raise Exception("[CONFIG_NOT_AVAILABLE] Configuration %s is not available. SQLSTATE: 42K0I" % key)
        log["conf"][key] = value


class Spark(Session):
    conf = Conf()

    @property
    def readStream(self):
        return Reader()


SESSION = Session()
spark = Spark()


class Widgets:
    def text(self, name, default):
        pass

    def get(self, name):
        return widgets.get(name, "")


class Fs:
    def ls(self, path):
        landed = fixture.get("landed")
        folder = path.rstrip("/").rsplit("/", 1)[-1]
        if landed is not None and folder[len("cdc."):] not in landed:
            raise Exception("java.io.FileNotFoundException: %s does not exist" % path)
        return [path + "/date=2026-01-01/"]


dbutils = types.SimpleNamespace(widgets=Widgets(), fs=Fs())


def recorded_print(*args, **kwargs):
    log["printed"].append(" ".join(str(a) for a in args))


class StopNotebook(BaseException):
    """Ends an always-on (continuous-mode) notebook at its first wait; not an Exception, so the
    notebook's own error handling does not see it."""


def recorded_sleep(seconds):
    log.setdefault("sleeps", []).append(seconds)
    raise StopNotebook()


import time  # noqa: E402

time.sleep = recorded_sleep


with open(notebook_path, encoding="utf-8") as f:
    source = f.read()
assert source.startswith("# Databricks notebook source\n"), "not a Databricks source-format notebook"
code = compile(source, notebook_path, "exec")
try:
    exec(code, {"__name__": "__main__", "spark": spark, "dbutils": dbutils, "print": recorded_print})
except StopNotebook:
    log["stopped_waiting"] = True
sys.stdout.write(json.dumps(log))
