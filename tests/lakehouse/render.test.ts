/**
 * The SQL the Databricks notebooks execute is the SQL these tests execute: the Python twin
 * (notebooks/medallion_sql.py, imported by the notebooks) and the TypeScript twin (used by the
 * local runner) fill the same notebooks/sql files and must render byte-identical statements.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { DEFAULT_SQL_DIR, GOLD_TABLES, RenderError, SILVER_MERGE_FILES, SILVER_SETUP_FILES, SILVER_VIEW_FILE, renderAddColumns, renderGold, renderSilver, renderSilverMerge } from "../../lakehouse/src/sql/render";

const REPO = resolve(__dirname, "..", "..");
const PY = join(REPO, "notebooks", "medallion_sql.py");

function python(request: unknown): Record<string, string[]> {
  return JSON.parse(execFileSync("python3", [PY, JSON.stringify(request)], { encoding: "utf8" })) as Record<string, string[]>;
}

function pythonError(code: string): string {
  try {
    execFileSync("python3", ["-c", `import sys; sys.path.insert(0, ${JSON.stringify(join(REPO, "notebooks"))}); import medallion_sql as m; ${code}`], { encoding: "utf8", stdio: "pipe" });
    return "";
  } catch (err) {
    return String((err as { stderr?: string }).stderr);
  }
}

const TABLES = {
  odd_names: { source: "b", bronze_table: "bronze.public_odd", silver_table: "silver.public_odd", keys: ["Key Col"], columns: ["Key Col", "Value Col", "Ünïcode", "a,b", "it's", "back`tick", 'dq"x', "pct%"] },
  orders: { source: "orders_batch", bronze_table: "main.bronze.public_orders", silver_table: "main.silver.public_orders", keys: ["order_id"], columns: ["order_id", "user_id", "product_id", "quantity", "unit_price", "status", "ordered_at"] },
  stock_item: { source: "(SELECT * FROM bronze.warehouse_stock_item WHERE __batch_id = 7)", bronze_table: "bronze.warehouse_stock_item", silver_table: "silver.warehouse_stock_item", keys: ["item_id"], columns: ["item_id", "sku", "name", "initial_qty", "unit_cost", "spec", "updated_at"] },
  lines: { source: "`cat-1`.bronze.lines_batch", bronze_table: "`cat-1`.bronze.sales_lines", silver_table: "`cat-1`.silver.sales_lines", keys: ["line", "order_id"], columns: ["order_id", "line", "sku", "qty"], state_table: "`cat-1`.silver._state_lines", truncations_table: "`cat-1`.silver._trunc_lines" },
  keys_only: { source: "b", bronze_table: "bronze.tags", silver_table: "silver.tags", keys: ["tag"], columns: ["tag"] },
};

describe("lakehouse SQL: one text for Databricks and DuckDB", () => {
  for (const dialect of ["spark", "duckdb"] as const) it(`renders byte-identical silver SQL from the Python twin and the TypeScript twin (${dialect})`, () => {
    const py = python({ silver: Object.fromEntries(Object.entries(TABLES).map(([n, spec]) => [n, { ...spec, dialect }])) });
    for (const [name, spec] of Object.entries(TABLES)) {
      const ts = renderSilver({
        dialect,
        source: spec.source,
        bronzeTable: spec.bronze_table,
        silverTable: spec.silver_table,
        keys: spec.keys,
        columns: spec.columns,
        stateTable: (spec as { state_table?: string }).state_table,
        truncationsTable: (spec as { truncations_table?: string }).truncations_table,
      });
      assert.equal(ts.length, 7);
      assert.deepEqual(py[name], ts, `table ${name}`);
    }
  });

  it("renders byte-identical gold SQL from both twins", () => {
    for (const options of [{}, { silver_schema: "main.silver", gold_schema: "main.gold" }]) {
      const py = python({ gold: options })["__gold__"];
      const ts = renderGold({ silverSchema: (options as { silver_schema?: string }).silver_schema, goldSchema: (options as { gold_schema?: string }).gold_schema }).map((g) => g.sql);
      assert.equal(ts.length, GOLD_TABLES.length);
      assert.deepEqual(py, ts);
    }
  });

  it("loads the statements from the notebooks/sql files the notebooks ship with", () => {
    assert.equal(DEFAULT_SQL_DIR, join(REPO, "notebooks", "sql"));
    const files = [...SILVER_SETUP_FILES, ...SILVER_MERGE_FILES, SILVER_VIEW_FILE, ...GOLD_TABLES.map((g) => g.file)];
    const onDisk = ["silver", "gold"].flatMap((d) => readdirSync(join(DEFAULT_SQL_DIR, d)).map((f) => `${d}/${f}`));
    assert.deepEqual([...onDisk].sort(), [...files].sort(), "every SQL file is rendered, and nothing else");
    // Each rendered statement is its file with the parameters filled in: the first line (a comment) is verbatim.
    const merge = renderSilverMerge({ dialect: "duckdb", source: "b", bronzeTable: "bronze.t", silverTable: "silver.t", keys: ["id"], columns: ["id", "v"] });
    SILVER_MERGE_FILES.forEach((f, i) => assert.equal(merge[i].split("\n")[0], readFileSync(join(DEFAULT_SQL_DIR, f), "utf8").split("\n")[0]));
    // The Databricks silver and gold notebooks render through medallion_sql, not SQL of their own.
    const silverNotebook = readFileSync(join(REPO, "notebooks", "02_silver_merge.py"), "utf8");
    assert.match(silverNotebook, /medallion_sql\.render_silver_merge\(/);
    assert.doesNotMatch(silverNotebook, /MERGE INTO/);
    assert.match(readFileSync(join(REPO, "notebooks", "03_gold_aggregation.py"), "utf8"), /medallion_sql\.render_gold\(/);
  });

  it("quotes every column name the dialect's way and uses only what both Spark SQL and DuckDB run", () => {
    const spec = { source: "b", bronzeTable: "bronze.t", silverTable: "silver.t", keys: ["id"], columns: ["id", "Value Col", "it's"] };
    const spark = renderSilver({ ...spec, dialect: "spark" }).join("\n");
    const duck = renderSilver({ ...spec, dialect: "duckdb" }).join("\n");
    assert.match(spark, /`Value Col`/);
    assert.match(spark, /array_contains\(b\.__unchanged, 'it\\'s'\)/);
    assert.match(spark, /USING DELTA TBLPROPERTIES \('delta\.columnMapping\.mode' = 'name'/);
    assert.match(duck, /"Value Col"/);
    assert.match(duck, /array_contains\(b\.__unchanged, 'it''s'\)/);
    assert.doesNotMatch(duck, /`|TBLPROPERTIES/);
    for (const statement of [...renderSilver({ ...spec, dialect: "spark" }), ...renderSilver({ ...spec, dialect: "duckdb" }), ...renderGold().map((g) => g.sql)]) {
      const sql = statement.replace(/--.*$/gm, "");
      // QUALIFY is Databricks SQL and DuckDB, not Apache Spark; current_timestamp() and :: are not portable.
      assert.doesNotMatch(sql, /current_timestamp|::|\bQUALIFY\b|\bEXCLUDE\b|\bEXCEPT\b|;/i, statement.split("\n")[0]);
    }
  });

  it("rejects names that cannot be silver columns, in both twins, naming the column", () => {
    const base = { dialect: "spark" as const, source: "b", bronzeTable: "bronze.t", silverTable: "silver.t", keys: ["id"] };
    assert.throws(() => renderSilver({ ...base, columns: ["id", "__op"] }), (e: Error) => e instanceof RenderError && /"__op" starts with "__"/.test(e.message));
    assert.throws(() => renderSilver({ ...base, columns: ["id", "Value", "value"] }), /columns "Value" and "value" differ only in case/);
    assert.throws(() => renderSilver({ ...base, columns: ["id", "_rescued_data"] }), /rescued-data column/);
    assert.throws(() => renderSilver({ ...base, keys: ["nope"], columns: ["id"] }), /key column "nope" is not among its columns/);
    assert.throws(() => renderAddColumns("silver.t", [{ name: "x", type: "INT; DROP TABLE y" }], "spark"), /unusable type/);
    const args = "dialect='spark', source='b', bronze_table='bronze.t', silver_table='silver.t', keys=['id']";
    assert.match(pythonError(`m.render_silver(${args}, columns=['id', '__op'])`), /RenderError: .*"__op" starts with "__"/);
    assert.match(pythonError(`m.render_silver(${args}, columns=['id', 'Value', 'value'])`), /columns "Value" and "value" differ only in case/);
    for (const dialect of ["spark", "duckdb"] as const) {
      assert.deepEqual(
        JSON.parse(execFileSync("python3", ["-c", `import sys, json; sys.path.insert(0, ${JSON.stringify(join(REPO, "notebooks"))}); import medallion_sql as m; print(json.dumps(m.render_add_columns('silver.t', [('color', 'STRING'), ('Weight Kg', 'DOUBLE')], '${dialect}')))`], { encoding: "utf8" })),
        renderAddColumns("silver.t", [{ name: "color", type: "STRING" }, { name: "Weight Kg", type: "DOUBLE" }], dialect),
      );
    }
  });
});
