# Databricks notebook source
# MAGIC %md
# MAGIC # Gold: analytics over silver
# MAGIC
# MAGIC Runs the **shared gold SQL** — `sql/gold/*.sql` rendered by `medallion_sql.render_gold`, the same files
# MAGIC the local lakehouse runs on DuckDB in `npm test` — in dependency order: `remaining_stock`,
# MAGIC `user_lifetime_value`, `user_segments`, `product_performance`, `daily_sales`. A gold table runs only over
# MAGIC silver tables that exist and have the columns it reads (`medallion_sql.GOLD_COLUMNS`); otherwise it is
# MAGIC skipped, and the run says which and why. ANSI mode and the session time zone (UTC: "UTC days") are pinned.
# MAGIC
# MAGIC Scheduled mode: one pass after silver. Continuous mode: a pass every `gold_interval_minutes`.

# COMMAND ----------

import sys
import time

PARAMETERS = ["catalog", "silver_schema", "gold_schema", "workspace_dir", "trigger", "gold_interval_minutes"]
for name in PARAMETERS:
    dbutils.widgets.text(name, "")
params = {name: dbutils.widgets.get(name).strip() for name in PARAMETERS}
missing = [name for name in PARAMETERS if not params[name] and name != "gold_interval_minutes"]
if missing:
    raise ValueError(f"job parameter(s) {', '.join(missing)} not set: run this notebook from the job the stack deploys")

CATALOG = params["catalog"]
SILVER = f"{CATALOG}.{params['silver_schema']}"
GOLD = f"{CATALOG}.{params['gold_schema']}"
CONTINUOUS = params["trigger"] == "processing_time"
INTERVAL_SECONDS = 60 * int(params["gold_interval_minutes"] or "15")

# The shared renderer and its SQL files, uploaded next to this notebook.
sys.path.insert(0, params["workspace_dir"])
import medallion_sql  # noqa: E402

# Every compute gives the same result: ANSI semantics, UTC and the proleptic calendar, whatever its defaults.
medallion_sql.pin_session(spark)

# COMMAND ----------


def relation_of(input_name: str) -> str:
    """The table a gold template reads for one of its inputs (a silver table or an earlier gold table)."""
    if input_name in medallion_sql.GOLD_SOURCES:
        schema, table = medallion_sql.GOLD_SOURCES[input_name].split(".")
        return medallion_sql.silver_table_name(schema, table, SILVER)
    return f"{GOLD}.{input_name}"


def shape_problem(input_name: str):
    """Why an input cannot feed gold (absent, or missing columns), or None."""
    relation = relation_of(input_name)
    if not spark.catalog.tableExists(relation):
        return f"{relation} not present (table not captured or not ingested yet)"
    wanted = medallion_sql.GOLD_COLUMNS.get(input_name)
    if wanted:
        have = {c.lower() for c in spark.table(relation).columns}
        lacking = [c for c in wanted if c.lower() not in have]
        if lacking:
            return f"{relation} lacks column(s) {', '.join(lacking)} (gold is written for the demo schema)"
    return None


def refresh_gold():
    built, skipped = [], []
    for statement in medallion_sql.render_gold(silver_schema=SILVER, gold_schema=GOLD):
        problems = [p for p in (shape_problem(i) for i in statement["inputs"]) if p]
        if problems:
            skipped.append(statement["target"])
            print(f"gold: {statement['target']} skipped: {'; '.join(problems)}")
            continue
        spark.sql(statement["sql"])
        built.append(statement["target"])
        print(f"gold: {statement['target']} rebuilt")
    print(f"gold: {len(built)} rebuilt, {len(skipped)} skipped" + (f" ({', '.join(skipped)})" if skipped else ""))
    return built


# COMMAND ----------

spark.catalog.setCurrentCatalog(CATALOG)
refresh_gold()
while CONTINUOUS:
    time.sleep(INTERVAL_SECONDS)
    refresh_gold()
