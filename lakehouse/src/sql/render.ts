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
 * Identifiers are emitted unquoted (DuckDB quotes with "", Spark with ``), so column names must be
 * plain identifiers; the renderer rejects anything else with a message naming the column.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";

/** notebooks/sql in this repository (from lakehouse/src/sql or lakehouse/dist/sql). */
export const DEFAULT_SQL_DIR = resolve(__dirname, "..", "..", "..", "notebooks", "sql");

export const SILVER_SETUP_FILES = ["silver/01_create_state.sql", "silver/02_create_truncations.sql"] as const;
export const SILVER_MERGE_FILES = ["silver/03_merge_truncations.sql", "silver/04_apply_truncations.sql", "silver/05_merge_changes.sql"] as const;
export const SILVER_VIEW_FILE = "silver/06_create_view.sql";

/** The gold tables, in dependency order; `inputs` are the source tables (or gold tables) each reads. */
export const GOLD_TABLES = [
  { name: "remaining_stock", file: "gold/remaining_stock.sql", inputs: ["stock_item", "stock_movement"] },
  { name: "user_lifetime_value", file: "gold/user_lifetime_value.sql", inputs: ["users", "orders"] },
  { name: "user_segments", file: "gold/user_segments.sql", inputs: ["user_lifetime_value"] },
  { name: "product_performance", file: "gold/product_performance.sql", inputs: ["products", "orders"] },
  { name: "daily_sales", file: "gold/daily_sales.sql", inputs: ["orders"] },
] as const;

/** The source tables gold reads: template name → source table. */
export const GOLD_SOURCES = {
  stock_item: "warehouse.stock_item",
  stock_movement: "warehouse.stock_movement",
  users: "public.users",
  products: "public.products",
  orders: "public.orders",
} as const;

export interface SilverSpec {
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

const RESERVED = new Set(
  ("all and any array as asc between both by case cast check collate column constraint create cross current_date current_time " +
    "current_timestamp current_user default desc distinct else end except false fetch for foreign from full grant group having in " +
    "inner intersect interval into is join lateral leading left like limit natural not null offset on only or order outer primary " +
    "qualify references right select table then to trailing true union unique user using when where window with").split(" "),
);

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const TABLE_PART = /^(?:[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)$/;

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

/** Throws RenderError when a column name cannot be used unquoted by the shared SQL. */
export function checkColumnName(name: string, what = "column"): void {
  checkColumn(name, what);
}

function checkColumn(name: string, what: string): void {
  if (typeof name !== "string" || !IDENTIFIER.test(name)) {
    throw new RenderError(`${what} ${JSON.stringify(name)} is not a plain identifier (letters, digits, _): the shared SQL leaves names unquoted; rename the column in PostgreSQL or exclude the table`);
  }
  if (RESERVED.has(name.toLowerCase())) {
    throw new RenderError(`${what} "${name}" is a reserved SQL word in Spark or DuckDB: the shared SQL leaves names unquoted; rename the column in PostgreSQL or exclude the table`);
  }
  if (name.startsWith("__")) {
    throw new RenderError(`${what} "${name}" starts with "__", which is reserved for the CDC metadata columns (__op, __lsn, …)`);
  }
}

function checkTable(name: string, what: string): void {
  if (typeof name !== "string" || name.split(".").some((part) => !TABLE_PART.test(part))) {
    throw new RenderError(`${what} ${JSON.stringify(name)} is not a table name like schema.table or catalog.schema.table`);
  }
}

function checkSpec(spec: SilverSpec): { keys: string[]; values: string[]; columns: string[]; scalars: Record<string, string> } {
  if (typeof spec.source !== "string" || spec.source.trim() === "") throw new RenderError("source must name the relation holding the batch (a table, a view or a parenthesized SELECT)");
  checkTable(spec.bronzeTable, "bronze table");
  checkTable(spec.silverTable, "silver table");
  const stateTable = spec.stateTable ?? `${spec.silverTable}__cdc_state`;
  const truncationsTable = spec.truncationsTable ?? `${spec.silverTable}__cdc_truncations`;
  checkTable(stateTable, "state table");
  checkTable(truncationsTable, "truncations table");
  if (!Array.isArray(spec.keys) || spec.keys.length === 0) throw new RenderError(`silver table ${spec.silverTable}: keys must list the primary-key columns (at least one)`);
  if (!Array.isArray(spec.columns) || spec.columns.length === 0) throw new RenderError(`silver table ${spec.silverTable}: columns must list the table's columns`);
  const seen = new Set<string>();
  for (const c of spec.columns) {
    checkColumn(c, `silver table ${spec.silverTable}: column`);
    if (seen.has(c.toLowerCase())) throw new RenderError(`silver table ${spec.silverTable}: column "${c}" is listed twice`);
    seen.add(c.toLowerCase());
  }
  for (const k of spec.keys) {
    checkColumn(k, `silver table ${spec.silverTable}: key column`);
    if (!seen.has(k.toLowerCase())) throw new RenderError(`silver table ${spec.silverTable}: key column "${k}" is not among its columns (${spec.columns.join(", ")})`);
  }
  const keySet = new Set(spec.keys.map((k) => k.toLowerCase()));
  const values = spec.columns.filter((c) => !keySet.has(c.toLowerCase()));
  return {
    keys: [...spec.keys],
    values,
    columns: [...spec.keys, ...values],
    scalars: { key_list: spec.keys.join(", "), source: spec.source, bronze_table: spec.bronzeTable, silver_table: spec.silverTable, state_table: stateTable, truncations_table: truncationsTable },
  };
}

const EACH = /\{\{#each (\w+) join "((?:[^"\\]|\\.)*)"\}\}([\s\S]*?)\{\{\/each\}\}/g;
const SCALAR = /\{\{(\w+)\}\}/g;

/** Fills one template. Exported for tests; prefer the render* functions. */
export function renderTemplate(template: string, lists: Record<string, string[]>, scalars: Record<string, string>): string {
  const expanded = template.replace(EACH, (_m, list: string, sep: string, body: string) => {
    const items = lists[list];
    if (!items) throw new RenderError(`template uses unknown list "${list}"`);
    const separator = sep.replace(/\\n/g, "\n").replace(/\\"/g, '"');
    return items.map((col) => body.replace(/\{\{col\}\}/g, col)).join(separator);
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
  const { keys, values, columns, scalars } = checkSpec(spec);
  return files.map((f) => renderTemplate(load(sqlDir, f), { keys, values, columns }, scalars));
}

/** CREATE TABLE IF NOT EXISTS for the state table and the truncate watermark (run once per table). */
export function renderSilverSetup(spec: SilverSpec, sqlDir = DEFAULT_SQL_DIR): string[] {
  return renderFiles(SILVER_SETUP_FILES, spec, sqlDir);
}

/** The per-batch statements, in order: truncate watermark, truncate, MERGE of the changes. */
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

/** ALTER TABLE … ADD COLUMN for columns that appeared in bronze (types in the engine's own spelling). */
export function renderAddColumns(table: string, columns: { name: string; type: string }[]): string[] {
  checkTable(table, "table");
  return columns.map(({ name, type }) => {
    checkColumn(name, `table ${table}: column`);
    if (!/^[A-Za-z][A-Za-z0-9_ (),<>:[\]]*$/.test(type)) throw new RenderError(`table ${table}: column "${name}" has an unusable type ${JSON.stringify(type)}`);
    return `ALTER TABLE ${table} ADD COLUMN ${name} ${type}`;
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
    return { name: gold.name, target, inputs: [...gold.inputs], sql: renderTemplate(load(sqlDir, gold.file), {}, { ...relations, target }) };
  });
}
