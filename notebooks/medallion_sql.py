"""The medallion SQL renderer, Python twin (pure Python 3 standard library).

The Databricks notebooks import this module; the local lakehouse uses its TypeScript twin
(lakehouse/src/sql/render.ts). Both fill the SAME template files in notebooks/sql/ and render
byte-identical SQL (tests/lakehouse/render.test.ts proves it), so the SQL that runs on Databricks
is the SQL the local tests run on DuckDB.

API (every function returns SQL text; run each statement separately, in order, e.g. spark.sql(s)):

    render_silver(*, dialect, source, bronze_table, silver_table, keys, columns,
                  state_table=None, truncations_table=None, sql_dir=None) -> list[str]
        All statements for one batch: render_silver_setup + render_silver_merge + [render_silver_view].

    render_silver_setup(**same) -> list[str]   # CREATE TABLE IF NOT EXISTS state / truncations
    render_silver_merge(**same) -> list[str]   # per batch: truncate watermark, truncate, MERGE, key-change fill
    render_silver_view(**same) -> str          # CREATE OR REPLACE VIEW <silver_table>

        source        relation holding the batch of bronze records: a table, a temp view (e.g. the
                      foreachBatch micro-batch registered with createOrReplaceTempView) or a
                      parenthesized SELECT. It must have the data columns plus __op, __lsn, __seq,
                      __ts_ms and __unchanged (ARRAY<STRING>; give Auto Loader the schema hint
                      "__unchanged ARRAY<STRING>, __lsn BIGINT, __seq BIGINT, __ts_ms BIGINT").
        bronze_table  the bronze table (types the state table when it is first created).
        silver_table  what readers query: a view over the state table without tombstones.
        keys          primary-key column names, e.g. ["order_id"].
        columns       every data column, keys included, e.g. the bronze columns that do not start
                      with "__" and are not Auto Loader's _rescued_data.
        state_table   default f"{silver_table}__cdc_state" (one row per key, tombstones included).
        truncations_table  default f"{silver_table}__cdc_truncations" (the TRUNCATE watermark).

        dialect       "spark" or "duckdb": column names are quoted the dialect's way, so any
                      PostgreSQL column name works ("Value Col", "Ünïcode", …).

    render_add_columns(table, [(name, type), ...], dialect) -> list[str]
        ALTER TABLE <table> ADD COLUMN <name> <type>, for columns that appeared in bronze
        (run on the state table, then render_silver_view again).

    render_gold(silver_schema="silver", gold_schema="gold", tables=None, sql_dir=None) -> list[dict]
        The gold tables in dependency order, each {"name", "target", "inputs", "sql"}:
        remaining_stock, user_lifetime_value, user_segments, product_performance, daily_sales.
        Silver tables are named <silver_schema>.<schema>_<table> (silver_table_name).

    silver_table_name(schema, table, silver_schema="silver") -> str
    GOLD_TABLES, GOLD_SOURCES     what gold reads; RenderError is raised for bad names.
    GOLD_COLUMNS                  the columns each gold input must have (else that gold table is skipped).
    SESSION_CONF, pin_session(spark)   the session settings every notebook pins (ANSI, UTC, calendar).
    run_streams(layer, tables, ready, start, continuous), failure_reason(err)
                                  how bronze and silver run a stream per table: one table's failure
                                  never stops the others; every failure is reported at the end.

Column names are always quoted (Spark with ``, DuckDB with ""); names starting with "__" (the CDC
metadata) and "_rescued_data", and two names differing only in case, raise RenderError naming them.
"""
import os
import re

DEFAULT_SQL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sql")

SILVER_SETUP_FILES = ["silver/01_create_state.sql", "silver/02_create_truncations.sql"]
SILVER_MERGE_FILES = ["silver/03_merge_truncations.sql", "silver/04_apply_truncations.sql", "silver/05_merge_changes.sql", "silver/05b_fill_key_changes.sql"]
SILVER_VIEW_FILE = "silver/06_create_view.sql"

GOLD_TABLES = [
    {"name": "remaining_stock", "file": "gold/remaining_stock.sql", "inputs": ["stock_item", "stock_movement"]},
    {"name": "user_lifetime_value", "file": "gold/user_lifetime_value.sql", "inputs": ["users", "orders"]},
    {"name": "user_segments", "file": "gold/user_segments.sql", "inputs": ["user_lifetime_value"]},
    {"name": "product_performance", "file": "gold/product_performance.sql", "inputs": ["products", "orders"]},
    {"name": "daily_sales", "file": "gold/daily_sales.sql", "inputs": ["orders"]},
]

# The Spark session settings the shared SQL's results depend on: ANSI semantics and UTC ("UTC days")
# on every compute, and PostgreSQL's proleptic Gregorian calendar for Parquet (dates before 1582 and
# -infinity as 0001-01-01 are written as they are, not refused as "ancient"). The notebooks set them.
SESSION_CONF = {
    "spark.sql.ansi.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.datetimeRebaseModeInRead": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInRead": "CORRECTED",
}


def pin_session(spark):
    """Sets SESSION_CONF; a setting a compute does not allow is reported, not fatal (serverless
    allows ANSI and the time zone; the calendar settings are its default there)."""
    for key, value in SESSION_CONF.items():
        try:
            spark.conf.set(key, value)
        except Exception as err:  # noqa: BLE001
            print("%s not settable on this compute (%s)" % (key, type(err).__name__))


def failure_reason(err):
    """A table's failure in one line: a stream failure wraps the notebook's own error (the last
    "…Error: message" line of it), never py4j's proxy line."""
    text = str(err)
    causes = [c for c in re.findall(r"^[\w.]*(?:Error|Exception): (.+)$", text, re.MULTILINE) if "Python Proxy" not in c]
    return causes[-1] if causes else (text.splitlines()[0] if text else type(err).__name__)


def run_streams(layer, tables, ready, start, continuous, poll_seconds=60):
    """One stream per table, started once ready(table) is true (start(table) returns the query).

    One table's failure never stops the others. Scheduled (continuous false): waits for every
    stream, then raises one error listing every failed table with its reason. Continuous: checks
    every poll_seconds, restarts a failed stream (a new column stops one once) and starts tables
    that became ready; never returns."""
    import time

    started, failed, waiting = {}, {}, list(tables)

    def start_ready():
        still = []
        for table in waiting:
            try:
                if ready(table):
                    started[table["name"]] = start(table)
                else:
                    still.append(table)
            except Exception as err:  # noqa: BLE001 — reported with the others
                failed[table["name"]] = err
                print("%s: %s failed to start: %s" % (layer, table["name"], failure_reason(err)))
        waiting[:] = still

    start_ready()
    while continuous:
        time.sleep(poll_seconds)
        for name, query in list(started.items()):
            if query.exception() is not None:
                print("%s: %s stopped, restarting: %s" % (layer, name, failure_reason(query.exception())))
                del started[name]
                waiting.append(next(t for t in tables if t["name"] == name))
        start_ready()
    for name, query in started.items():
        try:
            query.awaitTermination()
            print("%s: %s done" % (layer, name))
        except Exception as err:  # noqa: BLE001
            failed[name] = err
            print("%s: %s failed: %s" % (layer, name, failure_reason(err)))
    if failed:
        lines = "\n".join("  %s: %s" % (name, failure_reason(err)) for name, err in failed.items())
        raise RuntimeError("%s: %d of %d table(s) failed (the others were processed):\n%s" % (layer, len(failed), len(tables), lines))


# The columns each gold input must have: gold runs only over tables of the expected shape.
GOLD_COLUMNS = {
    "stock_item": ["item_id", "sku", "name", "initial_qty"],
    "stock_movement": ["item_id", "direction", "qty"],
    "users": ["user_id", "email", "full_name", "country"],
    "products": ["product_id", "name", "category", "price", "active"],
    "orders": ["user_id", "product_id", "quantity", "unit_price", "status", "ordered_at"],
}

GOLD_SOURCES = {
    "stock_item": "warehouse.stock_item",
    "stock_movement": "warehouse.stock_movement",
    "users": "public.users",
    "products": "public.products",
    "orders": "public.orders",
}

_TABLE_PART = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)$")
_EACH = re.compile(r'\{\{#each (\w+) join "((?:[^"\\]|\\.)*)"\}\}([\s\S]*?)\{\{/each\}\}')
_SCALAR = re.compile(r"\{\{(\w+)\}\}")
_COLUMN_VAR = re.compile(r"\{\{(col|i|lit|mark|item)\}\}")
_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_ (),<>:\[\]]*$")

# Columns every bronze table carries besides the data: they cannot also be source columns.
RESERVED_COLUMNS = {"_rescued_data"}

# Delta tables keep any column name by mapping it to a physical name (column mapping by name).
SPARK_TABLE_OPTIONS = " USING DELTA TBLPROPERTIES ('delta.columnMapping.mode' = 'name', 'delta.minReaderVersion' = '2', 'delta.minWriterVersion' = '5')"


class RenderError(ValueError):
    """A parameter that cannot be rendered safely; the message names the bad value and the fix."""


def silver_table_name(schema, table, silver_schema="silver"):
    return "%s.%s_%s" % (silver_schema, schema, table)


def quote_identifier(name, dialect):
    """A quoted identifier in the dialect."""
    if dialect == "spark":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def quote_string(text, dialect):
    """A string literal in the dialect (Spark SQL reads backslash escapes; DuckDB doubles quotes)."""
    if dialect == "spark":
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return "'" + text.replace("'", "''") + "'"


def _list_entry(name):
    # A name inside silver's comma-separated __unresolved list: "," and "%" escaped.
    return name.replace("%", "%25").replace(",", "%2C")


def _json(value):
    import json

    return json.dumps(value)


def _check_column(name, what):
    if not isinstance(name, str) or name == "":
        raise RenderError("%s %s is not a column name" % (what, _json(name)))
    if name.startswith("__"):
        raise RenderError(
            '%s "%s" starts with "__", which is reserved for the CDC metadata columns (__op, __lsn, …); rename the column in '
            "PostgreSQL or leave it out of the publication (a column list)" % (what, name)
        )
    if name.lower() in RESERVED_COLUMNS:
        raise RenderError(
            '%s "%s" is the name of bronze\'s rescued-data column; rename the column in PostgreSQL or leave it out of the '
            "publication (a column list)" % (what, name)
        )


def check_distinct_columns(columns, what):
    """Spark and DuckDB resolve column names case-insensitively: two names differing only in case cannot both be columns."""
    seen = {}
    for c in columns:
        other = seen.get(c.lower())
        if other is not None:
            if other == c:
                raise RenderError('%s: column "%s" is listed twice' % (what, c))
            raise RenderError(
                '%s: columns "%s" and "%s" differ only in case, which Spark and DuckDB cannot tell apart; rename one of them in '
                "PostgreSQL or leave one out of the publication (a column list)" % (what, other, c)
            )
        seen[c.lower()] = c


def _check_table(name, what):
    if not isinstance(name, str) or any(not _TABLE_PART.match(part) for part in name.split(".")):
        raise RenderError("%s %s is not a table name like schema.table or catalog.schema.table" % (what, _json(name)))


def _check_spec(dialect, source, bronze_table, silver_table, keys, columns, state_table, truncations_table):
    if dialect not in ("spark", "duckdb"):
        raise RenderError('dialect must be "spark" or "duckdb" (got %s)' % _json(dialect))
    if not isinstance(source, str) or source.strip() == "":
        raise RenderError("source must name the relation holding the batch (a table, a view or a parenthesized SELECT)")
    _check_table(bronze_table, "bronze table")
    _check_table(silver_table, "silver table")
    state_table = state_table if state_table is not None else silver_table + "__cdc_state"
    truncations_table = truncations_table if truncations_table is not None else silver_table + "__cdc_truncations"
    _check_table(state_table, "state table")
    _check_table(truncations_table, "truncations table")
    if not isinstance(keys, (list, tuple)) or len(keys) == 0:
        raise RenderError("silver table %s: keys must list the primary-key columns (at least one)" % silver_table)
    if not isinstance(columns, (list, tuple)) or len(columns) == 0:
        raise RenderError("silver table %s: columns must list the table's columns" % silver_table)
    for c in columns:
        _check_column(c, "silver table %s: column" % silver_table)
    check_distinct_columns(columns, "silver table %s" % silver_table)
    known = set(columns)
    for k in keys:
        _check_column(k, "silver table %s: key column" % silver_table)
        if k not in known:
            raise RenderError('silver table %s: key column "%s" is not among its columns (%s)' % (silver_table, k, ", ".join(columns)))
    key_set = set(keys)
    values = [c for c in columns if c not in key_set]
    lists = {"keys": list(keys), "values": values, "columns": list(keys) + values}
    scalars = {
        "key_list": ", ".join(quote_identifier(k, dialect) for k in keys),
        "source": source,
        "bronze_table": bronze_table,
        "silver_table": silver_table,
        "state_table": state_table,
        "truncations_table": truncations_table,
        "table_options": SPARK_TABLE_OPTIONS if dialect == "spark" else "",
    }
    return lists, scalars


def render_template(template, lists, scalars, dialect):
    """Fills one template (see the syntax and the column variables in lakehouse/src/sql/render.ts)."""

    def each(m):
        name, sep, body = m.group(1), m.group(2), m.group(3)
        if name not in lists:
            raise RenderError('template uses unknown list "%s"' % name)
        separator = sep.replace("\\n", "\n").replace('\\"', '"')
        out = []
        for i, col in enumerate(lists[name]):
            variables = {
                "col": quote_identifier(col, dialect),
                "i": str(i),
                "lit": quote_string(col, dialect),
                "mark": quote_string("," + _list_entry(col) + ",", dialect),
                "item": quote_string(_list_entry(col) + ",", dialect),
            }
            out.append(_COLUMN_VAR.sub(lambda v: variables[v.group(1)], body))
        return separator.join(out)

    def scalar(m):
        name = m.group(1)
        if name not in scalars:
            raise RenderError('template uses unknown parameter "%s"' % name)
        return scalars[name]

    return _SCALAR.sub(scalar, _EACH.sub(each, template))


def _load(sql_dir, name):
    with open(os.path.join(sql_dir or DEFAULT_SQL_DIR, name), "r", encoding="utf-8", newline="") as f:
        return f.read()


def _render_files(files, dialect, source, bronze_table, silver_table, keys, columns, state_table, truncations_table, sql_dir):
    lists, scalars = _check_spec(dialect, source, bronze_table, silver_table, keys, columns, state_table, truncations_table)
    return [render_template(_load(sql_dir, f), lists, scalars, dialect) for f in files]


def render_silver_setup(*, dialect, source, bronze_table, silver_table, keys, columns, state_table=None, truncations_table=None, sql_dir=None):
    return _render_files(SILVER_SETUP_FILES, dialect, source, bronze_table, silver_table, keys, columns, state_table, truncations_table, sql_dir)


def render_silver_merge(*, dialect, source, bronze_table, silver_table, keys, columns, state_table=None, truncations_table=None, sql_dir=None):
    return _render_files(SILVER_MERGE_FILES, dialect, source, bronze_table, silver_table, keys, columns, state_table, truncations_table, sql_dir)


def render_silver_view(*, dialect, source, bronze_table, silver_table, keys, columns, state_table=None, truncations_table=None, sql_dir=None):
    return _render_files([SILVER_VIEW_FILE], dialect, source, bronze_table, silver_table, keys, columns, state_table, truncations_table, sql_dir)[0]


def render_silver(*, dialect, source, bronze_table, silver_table, keys, columns, state_table=None, truncations_table=None, sql_dir=None):
    args = dict(
        dialect=dialect,
        source=source,
        bronze_table=bronze_table,
        silver_table=silver_table,
        keys=keys,
        columns=columns,
        state_table=state_table,
        truncations_table=truncations_table,
        sql_dir=sql_dir,
    )
    return render_silver_setup(**args) + render_silver_merge(**args) + [render_silver_view(**args)]


def render_add_columns(table, columns, dialect):
    _check_table(table, "table")
    out = []
    for name, type_ in columns:
        _check_column(name, "table %s: column" % table)
        if not isinstance(type_, str) or not _TYPE.match(type_):
            raise RenderError('table %s: column "%s" has an unusable type %s' % (table, name, _json(type_)))
        out.append("ALTER TABLE %s ADD COLUMN %s %s" % (table, quote_identifier(name, dialect), type_))
    return out


def render_gold(silver_schema="silver", gold_schema="gold", tables=None, sql_dir=None):
    _check_table(silver_schema + ".x", "silver schema")
    _check_table(gold_schema + ".x", "gold schema")
    relations = {}
    for name, src in GOLD_SOURCES.items():
        schema, table = src.split(".")
        relations[name] = silver_table_name(schema, table, silver_schema)
    for gold in GOLD_TABLES:
        relations[gold["name"]] = "%s.%s" % (gold_schema, gold["name"])
    for name, relation in (tables or {}).items():
        if name not in relations:
            raise RenderError('tables: unknown gold input "%s" (known: %s)' % (name, ", ".join(relations)))
        relations[name] = relation
    out = []
    for gold in GOLD_TABLES:
        target = relations[gold["name"]]
        scalars = dict(relations)
        scalars["target"] = target
        out.append({"name": gold["name"], "target": target, "inputs": list(gold["inputs"]), "sql": render_template(_load(sql_dir, gold["file"]), {}, scalars, "spark")})
    return out


if __name__ == "__main__":
    # `python3 medallion_sql.py '<json>'` prints the rendered statements as JSON (used by the twin test).
    import json
    import sys

    request = json.loads(sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read())
    result = {}
    for name, spec in request.get("silver", {}).items():
        result[name] = render_silver(**spec)
    if "gold" in request:
        result["__gold__"] = [g["sql"] for g in render_gold(**request["gold"])]
    sys.stdout.write(json.dumps(result))
