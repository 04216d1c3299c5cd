/**
 * The medallion SQL renderer, TypeScript twin. notebooks/medallion_sql.py is the Python twin that
 * the Databricks notebooks import; both fill the SAME template files under notebooks/sql/ and must
 * render byte-identical SQL (tests/lakehouse/render.test.ts runs both and compares).
 *
 * Template syntax (kept tiny so the two twins stay trivially equal):
 *   {{name}}                              a scalar parameter (a table name, a relation, key_list)
 *   Blocks do not nest; {{key_list}} is the key columns joined by ", ".
 *   {{#each LIST join "SEP"}}…{{col}}…{{/each}}   repeated for every column of LIST
 *                                         (keys | values | columns); SEP may contain \n
 * Every statement is rendered for one dialect (spark | duckdb): column names are quoted the
 * dialect's way, so any PostgreSQL column name works (see renderTemplate for the column variables).
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";

/** notebooks/sql in this repository (from lakehouse/src/sql or lakehouse/dist/sql). */
export const DEFAULT_SQL_DIR = resolve(__dirname, "..", "..", "..", "notebooks", "sql");

export const SILVER_SETUP_FILES = ["silver/01_create_state.sql", "silver/02_create_truncations.sql"] as const;
export const SILVER_MERGE_FILES = ["silver/03_merge_truncations.sql", "silver/04_apply_truncations.sql", "silver/05_merge_changes.sql", "silver/05b_fill_key_changes.sql"] as const;
export const SILVER_VIEW_FILE = "silver/06_create_view.sql";

/** The gold tables, in dependency order; `inputs` are the source tables (or gold tables) each reads. */
export const GOLD_TABLES = [
  { name: "remaining_stock", file: "gold/remaining_stock.sql", inputs: ["stock_item", "stock_movement"] },
  { name: "user_lifetime_value", file: "gold/user_lifetime_value.sql", inputs: ["users", "orders"] },
  { name: "user_segments", file: "gold/user_segments.sql", inputs: ["user_lifetime_value"] },
  { name: "product_performance", file: "gold/product_performance.sql", inputs: ["products", "orders"] },
  { name: "daily_sales", file: "gold/daily_sales.sql", inputs: ["orders"] },
] as const;

/** The columns each gold input must have: gold runs only over tables of the expected shape. */
export const GOLD_COLUMNS: Record<keyof typeof GOLD_SOURCES, string[]> = {
  stock_item: ["item_id", "sku", "name", "initial_qty"],
  stock_movement: ["item_id", "direction", "qty"],
  users: ["user_id", "email", "full_name", "country"],
  products: ["product_id", "name", "category", "price", "active"],
  orders: ["user_id", "product_id", "quantity", "unit_price", "status", "ordered_at"],
};

/** The source tables gold reads: template name → source table. */
export const GOLD_SOURCES = {
  stock_item: "warehouse.stock_item",
  stock_movement: "warehouse.stock_movement",
  users: "public.users",
  products: "public.products",
  orders: "public.orders",
} as const;

export interface SilverSpec {
  /** Where the statements run: quoting differs. */
  dialect: Dialect;
  /** The relation holding the batch of bronze records: a table, a view or a parenthesized SELECT. */
  source: string;
  /** The bronze table (its columns type the state table when it is created). */
  bronzeTable: string;
  /** The table name readers query (a view over the state table without tombstones). */
  silverTable: string;
  /** Primary-key columns. */
  keys: string[];
  /** Every data column, keys included (CDC metadata columns "__…" excluded). */
  columns: string[];
  /** Default: `<silverTable>__cdc_state`. */
  stateTable?: string;
  /** Default: `<silverTable>__cdc_truncations`. */
  truncationsTable?: string;
}

export interface GoldOptions {
  /** Schema (optionally catalog.schema) of the silver tables; default "silver". */
  silverSchema?: string;
  /** Schema (optionally catalog.schema) of the gold tables; default "gold". */
  goldSchema?: string;
  /** Overrides of the relation for a template name (stock_item, orders, user_lifetime_value, …). */
  tables?: Record<string, string>;
}

export interface GoldStatement {
  name: string;
  target: string;
  inputs: string[];
  sql: string;
}

const TABLE_PART = /^(?:[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)$/;

/**
 * Where the SQL runs. Column names are always quoted (PostgreSQL allows any name; Delta keeps
 * names with spaces or punctuation under column mapping), and quoting and string literals are
 * the one thing the two engines spell differently.
 */
export type Dialect = "spark" | "duckdb";

/** Columns every bronze table carries besides the data: they cannot also be source columns. */
const RESERVED_COLUMNS = new Set(["_rescued_data"]);

/** Delta tables keep any column name by mapping it to a physical name (column mapping by name). */
const SPARK_TABLE_OPTIONS = " USING DELTA TBLPROPERTIES ('delta.columnMapping.mode' = 'name', 'delta.minReaderVersion' = '2', 'delta.minWriterVersion' = '5')";

/** A quoted identifier in the dialect. */
export function quoteIdentifier(name: string, dialect: Dialect): string {
  return dialect === "spark" ? "`" + name.replace(/`/g, "``") + "`" : '"' + name.replace(/"/g, '""') + '"';
}

/** A string literal in the dialect (Spark SQL reads backslash escapes; DuckDB doubles quotes). */
export function quoteString(text: string, dialect: Dialect): string {
  return dialect === "spark" ? "'" + text.replace(/\\/g, "\\\\").replace(/'/g, "\\'") + "'" : "'" + text.replace(/'/g, "''") + "'";
}

/** A name inside silver's comma-separated __unresolved list: "," and "%" escaped, so entries never run together. */
const listEntry = (name: string): string => name.replace(/%/g, "%25").replace(/,/g, "%2C");

/** Raised for parameters that cannot be rendered safely; the message names the bad value and the fix. */
export class RenderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RenderError";
  }
}

/** The silver table name for a source table: `<silverSchema>.<schema>_<table>`. */
export function silverTableName(schema: string, table: string, silverSchema = "silver"): string {
  return `${silverSchema}.${schema}_${table}`;
}

/** Throws RenderError when a column name cannot be a silver column (the message names it and the fix). */
export function checkColumnName(name: string, what = "column"): void {
  checkColumn(name, what);
}

function checkColumn(name: string, what: string): void {
  if (typeof name !== "string" || name.length === 0) throw new RenderError(`${what} ${JSON.stringify(name)} is not a column name`);
  if (name.startsWith("__")) {
    throw new RenderError(`${what} "${name}" starts with "__", which is reserved for the CDC metadata columns (__op, __lsn, …); rename the column in PostgreSQL or leave it out of the publication (a column list)`);
  }
  if (RESERVED_COLUMNS.has(name.toLowerCase())) {
    throw new RenderError(`${what} "${name}" is the name of bronze's rescued-data column; rename the column in PostgreSQL or leave it out of the publication (a column list)`);
  }
}

/**
 * Spark and DuckDB resolve column names case-insensitively: two source columns that differ only in
 * case cannot both be columns of one table. Throws naming both.
 */
export function checkDistinctColumns(columns: string[], what: string): void {
  const seen = new Map<string, string>();
  for (const c of columns) {
    const other = seen.get(c.toLowerCase());
    if (other !== undefined) {
      throw new RenderError(
        other === c
          ? `${what}: column "${c}" is listed twice`
          : `${what}: columns "${other}" and "${c}" differ only in case, which Spark and DuckDB cannot tell apart; rename one of them in PostgreSQL or leave one out of the publication (a column list)`,
      );
    }
    seen.set(c.toLowerCase(), c);
  }
}

function checkTable(name: string, what: string): void {
  if (typeof name !== "string" || name.split(".").some((part) => !TABLE_PART.test(part))) {
    throw new RenderError(`${what} ${JSON.stringify(name)} is not a table name like schema.table or catalog.schema.table`);
  }
}

interface RenderLists {
  keys: string[];
  values: string[];
  columns: string[];
}

function checkSpec(spec: SilverSpec): { lists: RenderLists; scalars: Record<string, string> } {
  if (spec.dialect !== "spark" && spec.dialect !== "duckdb") throw new RenderError(`dialect must be "spark" or "duckdb" (got ${JSON.stringify(spec.dialect)})`);
  if (typeof spec.source !== "string" || spec.source.trim() === "") throw new RenderError("source must name the relation holding the batch (a table, a view or a parenthesized SELECT)");
  checkTable(spec.bronzeTable, "bronze table");
  checkTable(spec.silverTable, "silver table");
  const stateTable = spec.stateTable ?? `${spec.silverTable}__cdc_state`;
  const truncationsTable = spec.truncationsTable ?? `${spec.silverTable}__cdc_truncations`;
  checkTable(stateTable, "state table");
  checkTable(truncationsTable, "truncations table");
  if (!Array.isArray(spec.keys) || spec.keys.length === 0) throw new RenderError(`silver table ${spec.silverTable}: keys must list the primary-key columns (at least one)`);
  if (!Array.isArray(spec.columns) || spec.columns.length === 0) throw new RenderError(`silver table ${spec.silverTable}: columns must list the table's columns`);
  for (const c of spec.columns) checkColumn(c, `silver table ${spec.silverTable}: column`);
  checkDistinctColumns(spec.columns, `silver table ${spec.silverTable}`);
  const known = new Set(spec.columns);
  for (const k of spec.keys) {
    checkColumn(k, `silver table ${spec.silverTable}: key column`);
    if (!known.has(k)) throw new RenderError(`silver table ${spec.silverTable}: key column "${k}" is not among its columns (${spec.columns.join(", ")})`);
  }
  const keySet = new Set(spec.keys);
  const values = spec.columns.filter((c) => !keySet.has(c));
  const q = (c: string) => quoteIdentifier(c, spec.dialect);
  return {
    lists: { keys: [...spec.keys], values, columns: [...spec.keys, ...values] },
    scalars: {
      key_list: spec.keys.map(q).join(", "),
      source: spec.source,
      bronze_table: spec.bronzeTable,
      silver_table: spec.silverTable,
      state_table: stateTable,
      truncations_table: truncationsTable,
      table_options: spec.dialect === "spark" ? SPARK_TABLE_OPTIONS : "",
    },
  };
}

const EACH = /\{\{#each (\w+) join "((?:[^"\\]|\\.)*)"\}\}([\s\S]*?)\{\{\/each\}\}/g;
const SCALAR = /\{\{(\w+)\}\}/g;

/**
 * Fills one template. Inside {{#each}}: {{col}} is the quoted column name, {{i}} its index in the
 * list (for derived names such as __provided_{{i}}), {{lit}} the name as a string literal, and
 * {{mark}} / {{item}} its entry in silver's __unresolved list (",name," and "name,") as literals.
 * Exported for tests; prefer the render* functions.
 */
export function renderTemplate(template: string, lists: Record<string, string[]>, scalars: Record<string, string>, dialect: Dialect): string {
  const expanded = template.replace(EACH, (_m, list: string, sep: string, body: string) => {
    const items = lists[list];
    if (!items) throw new RenderError(`template uses unknown list "${list}"`);
    const separator = sep.replace(/\\n/g, "\n").replace(/\\"/g, '"');
    return items
      .map((col, i) => {
        const vars: Record<string, string> = {
          col: quoteIdentifier(col, dialect),
          i: String(i),
          lit: quoteString(col, dialect),
          mark: quoteString(`,${listEntry(col)},`, dialect),
          item: quoteString(`${listEntry(col)},`, dialect),
        };
        return body.replace(/\{\{(col|i|lit|mark|item)\}\}/g, (_v, name: string) => vars[name]);
      })
      .join(separator);
  });
  return expanded.replace(SCALAR, (_m, name: string) => {
    const value = scalars[name];
    if (value === undefined) throw new RenderError(`template uses unknown parameter "${name}"`);
    return value;
  });
}

function load(sqlDir: string, file: string): string {
  return readFileSync(join(sqlDir, file), "utf8");
}

function renderFiles(files: readonly string[], spec: SilverSpec, sqlDir: string): string[] {
  const { lists, scalars } = checkSpec(spec);
  return files.map((f) => renderTemplate(load(sqlDir, f), { ...lists }, scalars, spec.dialect));
}

/** CREATE TABLE IF NOT EXISTS for the state table and the truncate watermark (run once per table). */
export function renderSilverSetup(spec: SilverSpec, sqlDir = DEFAULT_SQL_DIR): string[] {
  return renderFiles(SILVER_SETUP_FILES, spec, sqlDir);
}

/** The per-batch statements, in order: truncate watermark, truncate, MERGE of the changes, key-change TOAST fill. */
export function renderSilverMerge(spec: SilverSpec, sqlDir = DEFAULT_SQL_DIR): string[] {
  return renderFiles(SILVER_MERGE_FILES, spec, sqlDir);
}

/** CREATE OR REPLACE VIEW <silverTable> (re-run after columns were added). */
export function renderSilverView(spec: SilverSpec, sqlDir = DEFAULT_SQL_DIR): string {
  return renderFiles([SILVER_VIEW_FILE], spec, sqlDir)[0];
}

/** Everything for one batch, in order: setup, merge, view. */
export function renderSilver(spec: SilverSpec, sqlDir = DEFAULT_SQL_DIR): string[] {
  return [...renderSilverSetup(spec, sqlDir), ...renderSilverMerge(spec, sqlDir), renderSilverView(spec, sqlDir)];
}

/** ALTER TABLE … ADD COLUMN for columns that appeared in bronze (types in the dialect's spelling). */
export function renderAddColumns(table: string, columns: { name: string; type: string }[], dialect: Dialect): string[] {
  checkTable(table, "table");
  return columns.map(({ name, type }) => {
    checkColumn(name, `table ${table}: column`);
    if (!/^[A-Za-z][A-Za-z0-9_ (),<>:[\]]*$/.test(type)) throw new RenderError(`table ${table}: column "${name}" has an unusable type ${JSON.stringify(type)}`);
    return `ALTER TABLE ${table} ADD COLUMN ${quoteIdentifier(name, dialect)} ${type}`;
  });
}

/** The gold CREATE OR REPLACE TABLE statements, in dependency order. */
export function renderGold(options: GoldOptions = {}, sqlDir = DEFAULT_SQL_DIR): GoldStatement[] {
  const silverSchema = options.silverSchema ?? "silver";
  const goldSchema = options.goldSchema ?? "gold";
  checkTable(`${silverSchema}.x`, "silver schema");
  checkTable(`${goldSchema}.x`, "gold schema");
  const relations: Record<string, string> = {};
  for (const [name, source] of Object.entries(GOLD_SOURCES)) {
    const [schema, table] = source.split(".");
    relations[name] = silverTableName(schema, table, silverSchema);
  }
  for (const gold of GOLD_TABLES) relations[gold.name] = `${goldSchema}.${gold.name}`;
  for (const [name, relation] of Object.entries(options.tables ?? {})) {
    if (!(name in relations)) throw new RenderError(`tables: unknown gold input "${name}" (known: ${Object.keys(relations).join(", ")})`);
    relations[name] = relation;
  }
  return GOLD_TABLES.map((gold) => {
    const target = relations[gold.name];
    return { name: gold.name, target, inputs: [...gold.inputs], sql: renderTemplate(load(sqlDir, gold.file), {}, { ...relations, target }, "spark") };
  });
}
