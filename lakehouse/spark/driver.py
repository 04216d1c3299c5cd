"""A local Spark session that runs the notebooks on request: one JSON request per stdin line, one
JSON answer per stdout line (everything Spark and the notebooks print goes to stderr).

Spark takes 10-20 s to start, so the CLI (`cdc-lakehouse spark …`) and the tests keep one driver
per warehouse and send it requests:

  {"cmd": "run", "landing": DIR, "tables": [..]?, "keys": {"s.t": [..]}?, "layers": [..]?, "kafka": {"bootstrap", "topic_prefix", "options"}?}
      → {"ok": true, "errors": {"silver": "..."}}      bronze → silver → gold once (availableNow)
  {"cmd": "query", "sql": "SELECT …"}  → {"ok": true, "columns": [...], "rows": [{...}, …]}
  {"cmd": "reset"}                     → drops bronze, silver, gold, the checkpoints and recorded views
  {"cmd": "continuous", "landing": DIR, "tables": [..], "keys": {..}?, "interval": "1 second"?}
      → {"ok": true}   bronze and silver as always-on streams (the job's continuous mode), in the
                        background until "stop_streams"; answers once both layers' streams run
  {"cmd": "stop_streams"}              → stops every running stream
  {"cmd": "exit"}

Usage: python driver.py --warehouse DIR
"""
import argparse
import json
import os
import shutil
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

protocol = sys.stdout
sys.stdout = sys.stderr  # notebooks print progress; only answers go to the protocol stream

import databricks_harness as harness  # noqa: E402


def answer(payload: dict) -> None:
    protocol.write(json.dumps(payload, default=str) + "\n")
    protocol.flush()


def query(spark, sql: str) -> dict:
    from pyspark.sql import functions as F

    df = spark.sql(sql)
    # Nulls kept, timestamps with their microseconds (in UTC, the pinned session time zone).
    options = {"ignoreNullFields": "false", "timestampFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX", "timestampNTZFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSSSS"}
    rows = df.select(F.to_json(F.struct(*[F.col("`" + c.replace("`", "``") + "`") for c in df.columns]), options).alias("j")).collect()
    return {"ok": True, "columns": df.columns, "rows": [json.loads(r.j) for r in rows]}


def reset(spark, warehouse: str) -> dict:
    for schema in ("gold", "silver", "bronze"):
        spark.sql(f"DROP DATABASE IF EXISTS {schema} CASCADE")
        shutil.rmtree(os.path.join(warehouse, f"{schema}.db"), ignore_errors=True)
    shutil.rmtree(os.path.join(warehouse, "_checkpoints"), ignore_errors=True)
    shutil.rmtree(os.path.join(warehouse, "_harness"), ignore_errors=True)
    spark.catalog.clearCache()
    return {"ok": True}


def continuous(spark, warehouse: str, request: dict) -> dict:
    """The bronze and silver notebooks with trigger=processing_time, each in a background thread
    (their loops never end); silver starts once bronze has created every table's bronze table."""
    tables = request["tables"]
    widgets = harness.job_parameters(request["landing"], warehouse, tables, request.get("keys"), trigger="processing_time")
    widgets["trigger_interval"] = request.get("interval", "1 second")
    for schema in ("bronze", "silver", "gold"):
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {schema}")

    def start(notebook):
        thread = threading.Thread(target=harness.run_notebook, args=(spark, warehouse, notebook, widgets), daemon=True)
        thread.start()
        return thread

    start("01_bronze_ingestion.py")
    deadline = time.monotonic() + 300
    while not all(spark.catalog.tableExists(f"bronze.{t.replace('.', '_', 1)}") for t in tables):
        if time.monotonic() > deadline:
            raise TimeoutError("bronze did not create its tables within 300 s")
        time.sleep(0.5)
    start("02_silver_merge.py")
    while len(spark.streams.active) < 2 * len(tables):
        if time.monotonic() > deadline:
            raise TimeoutError("the silver streams did not start within 300 s")
        time.sleep(0.5)
    return {"ok": True, "streams": len(spark.streams.active)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warehouse", required=True)
    args = parser.parse_args()
    warehouse = os.path.abspath(args.warehouse)
    spark = harness.open_session(warehouse)
    answer({"ok": True, "ready": True, "spark": spark.version})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            cmd = request.get("cmd")
            if cmd == "exit":
                answer({"ok": True})
                break
            if cmd == "run":
                errors = harness.run_pipeline(spark, request["landing"], warehouse, request.get("tables"), request.get("keys"), tuple(request.get("layers") or ("bronze", "silver", "gold")), request.get("kafka"))
                answer({"ok": True, "errors": errors})
            elif cmd == "query":
                answer(query(spark, request["sql"]))
            elif cmd == "continuous":
                answer(continuous(spark, warehouse, request))
            elif cmd == "stop_streams":
                for q in spark.streams.active:
                    q.stop()
                answer({"ok": True})
            elif cmd == "reset":
                answer(reset(spark, warehouse))
            else:
                answer({"ok": False, "error": f"unknown command {cmd!r} (run, query, reset, exit)"})
        except Exception as err:  # noqa: BLE001 — every failure is one answer, the driver lives on
            traceback.print_exc(file=sys.stderr)
            answer({"ok": False, "error": str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__, "detail": str(err)[:4000]})
    spark.stop()


if __name__ == "__main__":
    main()
