/**
 * The local lakehouse: applies the shared medallion SQL (notebooks/sql, rendered by ./sql/render)
 * with DuckDB over a file:// landing directory, persisting to one DuckDB database file.
 *
 * Incremental: `_cdc.files` remembers every landing file ingested (key, size, mtime); a refresh
 * ingests only new files, and files rewritten by an engine replay (other size or mtime). Per table
 * and refresh, in ONE DuckDB transaction: the new files are appended to bronze (never duplicating a
 * record already ingested from the same file), then the silver statements run with that batch as
 * source, then the manifest is updated — a crash at any point leaves nothing half-done.
 *
 * Bronze column types are inferred from the JSON values (numbers → BIGINT/DOUBLE, booleans,
 * strings stay strings — numeric, timestamps and dates keep their exact landing text —, objects and
 * arrays → JSON); a new column is added, a column whose values change JSON type is widened to
 * VARCHAR, in bronze and silver alike.
 */
import { Duck, sqlString } from "./duck";
import { scanLanding, type LandingFile, type LandingTable } from "./landing";
import { GOLD_SOURCES, checkColumnName, renderAddColumns, renderGold, renderSilverMerge, renderSilverSetup, renderSilverView, silverTableName, type SilverSpec } from "./sql/render";

export interface RefreshOptions {
  /** The landing directory (the engine's SINK_URL file:///… path). */
  landing: string;
  /** A DuckDB file path, or an open database. */
  db: string | Duck;
  /** Only these tables ("schema.table"); default all. */
  tables?: string[];
  /** Primary keys per table ("schema.table" → columns); remembered in the database once given. */
  keys?: Record<string, string[]>;
  /** Rebuild the gold tables (default true). */
  gold?: boolean;
  log?: (line: string) => void;
}

export interface TableRefresh {
  table: string;
  bronzeTable: string;
  silverTable: string;
  newFiles: number;
  newRecords: number;
  silverRows: number;
}

export interface RefreshResult {
  tables: TableRefresh[];
  gold: { name: string; table: string; rows: number }[];
  /** Gold tables not built: an input table has not landed yet, or does not have the demo shape. */
  goldSkipped: { name: string; missing: string[]; error?: string }[];
}

export class RefreshError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RefreshError";
  }
}

const META_TYPES: [string, string][] = [
  ["__op", "VARCHAR"],
  ["__deleted", "VARCHAR"],
  ["__lsn", "BIGINT"],
  ["__seq", "BIGINT"],
  ["__ts_ms", "BIGINT"],
  ["__unchanged", "VARCHAR[]"],
  ["__source_file", "VARCHAR"],
  ["__ingested_at", "TIMESTAMP WITH TIME ZONE"],
  ["__batch_id", "BIGINT"],
];
const META = new Map(META_TYPES);

export const bronzeTableName = (schema: string, table: string): string => `bronze.${schema}_${table}`;

/** DuckDB type for one field of json_group_structure (undefined: only nulls seen so far). */
function typeOfStructure(s: unknown): string | undefined {
  if (typeof s !== "string") return "JSON"; // an object or array value
  switch (s) {
    case "NULL":
      return undefined;
    case "BOOLEAN":
      return "BOOLEAN";
    case "UBIGINT":
    case "BIGINT":
    case "UINTEGER":
    case "INTEGER":
    case "USMALLINT":
    case "SMALLINT":
    case "UTINYINT":
    case "TINYINT":
      return "BIGINT";
    case "DOUBLE":
    case "FLOAT":
    case "HUGEINT":
    case "UHUGEINT":
      return "DOUBLE";
    default:
      return "VARCHAR"; // VARCHAR, or JSON for values of mixed types
  }
}

function widen(existing: string, incoming: string): string {
  if (existing === incoming) return existing;
  if ((existing === "BIGINT" && incoming === "DOUBLE") || (existing === "DOUBLE" && incoming === "BIGINT")) return "DOUBLE";
  return "VARCHAR";
}

async function tableColumns(duck: Duck, qualified: string): Promise<Map<string, string>> {
  const [schema, table] = qualified.split(".");
  const rows = await duck.all<{ column_name: string; data_type: string }>(
    `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ${sqlString(schema)} AND table_name = ${sqlString(table)} ORDER BY ordinal_position`,
  );
  return new Map(rows.map((r) => [r.column_name, r.data_type]));
}

async function relationExists(duck: Duck, qualified: string): Promise<boolean> {
  const [schema, table] = qualified.split(".");
  const rows = await duck.all(`SELECT 1 FROM information_schema.tables WHERE table_schema = ${sqlString(schema)} AND table_name = ${sqlString(table)}`);
  return rows.length > 0;
}

const fileList = (files: LandingFile[]): string => `[${files.map((f) => sqlString(f.path)).join(", ")}]`;

export async function ensureCatalog(duck: Duck): Promise<void> {
  for (const schema of ["bronze", "silver", "gold", "_cdc"]) await duck.run(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  await duck.run(
    "CREATE TABLE IF NOT EXISTS _cdc.files (key VARCHAR, table_name VARCHAR, size BIGINT, mtime_ms BIGINT, batch_id BIGINT, ingested_at TIMESTAMP WITH TIME ZONE)",
  );
  await duck.run("CREATE TABLE IF NOT EXISTS _cdc.tables (table_name VARCHAR, keys VARCHAR)");
}

/** Primary keys remembered from earlier refreshes. */
async function storedKeys(duck: Duck): Promise<Map<string, string[]>> {
  const rows = await duck.all<{ table_name: string; keys: string }>("SELECT table_name, keys FROM _cdc.tables");
  return new Map(rows.map((r) => [r.table_name, r.keys.split(",")]));
}

async function ingestTable(duck: Duck, t: LandingTable, files: LandingFile[], keys: string[], batchId: number, log: (line: string) => void): Promise<TableRefresh> {
  const bronze = bronzeTableName(t.schema, t.table);
  const silver = silverTableName(t.schema, t.table);
  const where = `table ${t.name} (${files.length} new landing file${files.length === 1 ? "" : "s"})`;

  // 1. The JSON structure of the new records: which fields, which JSON types.
  let structure: Record<string, unknown>;
  try {
    const rows = await duck.all<{ s: string | null }>(
      `SELECT json_group_structure(json)::VARCHAR AS s FROM read_ndjson_objects(${fileList(files)}, maximum_object_size = 268435456)`,
    );
    structure = rows[0]?.s ? (JSON.parse(rows[0].s) as Record<string, unknown>) : {};
  } catch (err) {
    throw new RefreshError(`${where}: cannot read the landing files as NDJSON: ${(err as Error).message.split("\n")[0]}`);
  }

  // 2. Bronze: create it, add new columns, widen columns whose JSON type changed.
  let columns = await tableColumns(duck, bronze);
  if (columns.size === 0) {
    await duck.run(`CREATE TABLE ${bronze} (${META_TYPES.map(([n, ty]) => `${n} ${ty}`).join(", ")})`);
    columns = new Map(META_TYPES);
  }
  for (const name of Object.keys(structure)) {
    if (name.startsWith("__")) continue;
    try {
      checkColumnName(name, `table ${t.name}: column`);
    } catch (err) {
      throw new RefreshError((err as Error).message);
    }
  }
  for (const [name, s] of Object.entries(structure)) {
    if (META.has(name)) continue;
    const incoming = typeOfStructure(s);
    const existing = columns.get(name);
    if (existing === undefined) {
      await duck.run(`ALTER TABLE ${bronze} ADD COLUMN ${name} ${incoming ?? "VARCHAR"}`);
      columns.set(name, incoming ?? "VARCHAR");
      continue;
    }
    if (incoming === undefined || incoming === existing) continue;
    // A column that held only nulls so far takes the first real type; otherwise widen.
    const nonNull = await duck.all<{ n: string }>(`SELECT count(${name}) AS n FROM ${bronze}`);
    const target = Number(nonNull[0].n) === 0 ? incoming : widen(existing, incoming);
    if (target !== existing) {
      await duck.run(`ALTER TABLE ${bronze} ALTER COLUMN ${name} TYPE ${target}`);
      columns.set(name, target);
    }
  }
  const dataColumns = [...columns.keys()].filter((c) => !c.startsWith("__"));
  if (dataColumns.length === 0) {
    // Only TRUNCATE records so far (they carry no columns): the key columns get a placeholder type,
    // replaced by the real one when the first row lands.
    for (const k of keys) {
      await duck.run(`ALTER TABLE ${bronze} ADD COLUMN ${k} VARCHAR`);
      columns.set(k, "VARCHAR");
      dataColumns.push(k);
    }
  }
  for (const k of keys) {
    if (!columns.has(k)) throw new RefreshError(`${where}: primary-key column "${k}" is not in the landing records (columns: ${dataColumns.join(", ")}); pass --key ${t.name}=<columns>`);
  }

  // 3. Append the new records, skipping any already ingested from the same file (replays).
  const readable = [...columns.entries()].filter(([n]) => n !== "__source_file" && n !== "__ingested_at" && n !== "__batch_id");
  const jsonColumns = `{${readable.map(([n, ty]) => `${sqlString(n)}: ${sqlString(ty)}`).join(", ")}}`;
  const names = readable.map(([n]) => n);
  const before = await duck.all<{ n: string }>(`SELECT count(*) AS n FROM ${bronze}`);
  try {
    await duck.run(
      `INSERT INTO ${bronze} (${names.join(", ")}, __source_file, __ingested_at, __batch_id)
       SELECT ${names.map((n) => `r.${n}`).join(", ")}, r.__source_file, now(), ${batchId}
       FROM read_json(${fileList(files)}, format = 'newline_delimited', columns = ${jsonColumns}, filename = '__source_file', maximum_object_size = 268435456) AS r
       WHERE NOT EXISTS (SELECT 1 FROM ${bronze} AS x WHERE x.__source_file = r.__source_file AND x.__lsn = r.__lsn AND x.__seq = r.__seq)`,
    );
  } catch (err) {
    throw new RefreshError(`${where}: cannot load the landing records into ${bronze}: ${(err as Error).message.split("\n")[0]}`);
  }
  const after = await duck.all<{ n: string }>(`SELECT count(*) AS n FROM ${bronze}`);
  const newRecords = Number(after[0].n) - Number(before[0].n);
  // A column may so far be known only by name, from __unchanged (its value was never sent yet).
  const onlyUnchanged = await duck.all<{ c: string }>(`SELECT DISTINCT unnest(__unchanged) AS c FROM ${bronze} WHERE __batch_id = ${batchId}`);
  for (const { c } of onlyUnchanged) {
    if (columns.has(c) || c.startsWith("__") || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(c)) continue;
    await duck.run(`ALTER TABLE ${bronze} ADD COLUMN ${c} VARCHAR`);
    columns.set(c, "VARCHAR");
    dataColumns.push(c);
  }

  // 4. Silver, with exactly the shared SQL; the batch is what this refresh appended to bronze.
  const spec: SilverSpec = {
    source: `(SELECT * FROM ${bronze} WHERE __batch_id = ${batchId})`,
    bronzeTable: bronze,
    silverTable: silver,
    keys,
    columns: dataColumns,
  };
  const state = `${silver}__cdc_state`;
  const stateBefore = await tableColumns(duck, state);
  for (const sql of renderSilverSetup(spec)) await duck.run(sql);
  if (stateBefore.size > 0) {
    const added = dataColumns.filter((c) => !stateBefore.has(c)).map((c) => ({ name: c, type: columns.get(c)! }));
    for (const sql of renderAddColumns(state, added)) await duck.run(sql);
    for (const c of dataColumns) {
      const was = stateBefore.get(c);
      if (was !== undefined && was !== columns.get(c)) {
        await duck.run(`DROP VIEW IF EXISTS ${silver}`);
        await duck.run(`ALTER TABLE ${state} ALTER COLUMN ${c} TYPE ${columns.get(c)}`);
      }
    }
    if (added.length > 0) log(`${t.name}: new column${added.length > 1 ? "s" : ""} ${added.map((a) => `${a.name} ${a.type}`).join(", ")}`);
  }
  for (const sql of renderSilverMerge(spec)) await duck.run(sql);
  await duck.run(renderSilverView(spec));

  // 5. The manifest: these file versions are done.
  await duck.run(`DELETE FROM _cdc.files WHERE key IN (${files.map((f) => sqlString(f.key)).join(", ")})`);
  await duck.run(
    `INSERT INTO _cdc.files VALUES ${files.map((f) => `(${sqlString(f.key)}, ${sqlString(t.name)}, ${f.size}, ${f.mtimeMs}, ${batchId}, now())`).join(", ")}`,
  );
  const silverRows = await duck.all<{ n: string }>(`SELECT count(*) AS n FROM ${silver}`);
  return { table: t.name, bronzeTable: bronze, silverTable: silver, newFiles: files.length, newRecords, silverRows: Number(silverRows[0].n) };
}

/**
 * Under REPLICA IDENTITY DEFAULT a delete record carries exactly the primary-key columns, so the
 * key can be read off the table's delete records — when they all agree and carry fewer columns than
 * the inserts (REPLICA IDENTITY FULL deletes carry every column and say nothing about the key).
 */
async function inferKeys(duck: Duck, files: LandingFile[]): Promise<string[] | undefined> {
  if (files.length === 0) return undefined;
  const rows = await duck.all<{ k: string[] }>(
    `SELECT DISTINCT list_sort(list_filter(json_keys(json), k -> NOT starts_with(k, '__'))) AS k FROM read_ndjson_objects(${fileList(files)}, maximum_object_size = 268435456) WHERE json->>'__op' = 'd'`,
  );
  if (rows.length !== 1 || rows[0].k.length === 0) return undefined;
  const widest = await duck.all<{ n: string }>(
    `SELECT max(len(list_filter(json_keys(json), k -> NOT starts_with(k, '__'))))::VARCHAR AS n FROM read_ndjson_objects(${fileList(files)}, maximum_object_size = 268435456) WHERE json->>'__op' IN ('r', 'c')`,
  );
  const keys = rows[0].k;
  return Number(widest[0]?.n ?? 0) > keys.length ? keys : undefined;
}

/** Ingests new landing files into bronze and silver, then rebuilds gold. */
export async function refresh(options: RefreshOptions): Promise<RefreshResult> {
  const log = options.log ?? (() => undefined);
  const duck = typeof options.db === "string" ? await Duck.open(options.db) : options.db;
  try {
    const landing = await scanLanding(options.landing);
    await ensureCatalog(duck);
    const wanted = options.tables && options.tables.length > 0 ? new Set(options.tables) : undefined;
    if (wanted) {
      const known = new Set(landing.map((t) => t.name));
      for (const name of wanted) {
        if (!/^[A-Za-z_][A-Za-z0-9_$]*\.[A-Za-z_][A-Za-z0-9_$]*$/.test(name)) throw new RefreshError(`--tables: "${name}" is not a schema.table name`);
        if (!known.has(name)) log(`${name}: nothing has landed yet under ${options.landing}/cdc.${name}/`);
      }
    }
    const keys = await storedKeys(duck);
    for (const [table, cols] of Object.entries(options.keys ?? {})) {
      if (keys.get(table)?.join(",") !== cols.join(",")) {
        await duck.run(`DELETE FROM _cdc.tables WHERE table_name = ${sqlString(table)}`);
        await duck.run(`INSERT INTO _cdc.tables VALUES (${sqlString(table)}, ${sqlString(cols.join(","))})`);
        keys.set(table, cols);
      }
    }
    const manifest = new Map(
      (await duck.all<{ key: string; size: string; mtime_ms: string }>("SELECT key, size, mtime_ms FROM _cdc.files")).map((r) => [r.key, `${r.size}/${r.mtime_ms}`]),
    );
    const result: RefreshResult = { tables: [], gold: [], goldSkipped: [] };
    for (const t of landing) {
      if (wanted && !wanted.has(t.name)) continue;
      const fresh = t.files.filter((f) => manifest.get(f.key) !== `${f.size}/${f.mtimeMs}`);
      if (fresh.length === 0) continue;
      let tableKeys = keys.get(t.name);
      if (!tableKeys || tableKeys.length === 0) {
        tableKeys = await inferKeys(duck, t.files);
        if (tableKeys) {
          log(`${t.name}: primary key (${tableKeys.join(", ")}) inferred from its delete records; pass --key ${t.name}=<columns> to override`);
          await duck.run(`INSERT INTO _cdc.tables VALUES (${sqlString(t.name)}, ${sqlString(tableKeys.join(","))})`);
          keys.set(t.name, tableKeys);
        }
      }
      if (!tableKeys || tableKeys.length === 0) {
        throw new RefreshError(`table ${t.name} has no primary key configured (landing records do not name it, and no delete records show it yet); pass --key ${t.name}=<column>[,<column>] once, it is remembered in ${duck.path}`);
      }
      const next = await duck.all<{ n: string }>("SELECT coalesce(max(batch_id), 0) + 1 AS n FROM _cdc.files");
      const batchId = Number(next[0].n);
      const done = await duck.transaction(() => ingestTable(duck, t, fresh, tableKeys, batchId, log));
      result.tables.push(done);
    }
    if (options.gold !== false) await buildGold(duck, result);
    return result;
  } finally {
    if (typeof options.db === "string") duck.close();
  }
}

async function buildGold(duck: Duck, result: RefreshResult): Promise<void> {
  const statements = renderGold();
  const relationOf = new Map<string, string>();
  for (const [name, source] of Object.entries(GOLD_SOURCES)) {
    const [schema, table] = source.split(".");
    relationOf.set(name, silverTableName(schema, table));
  }
  for (const g of statements) relationOf.set(g.name, g.target);
  for (const g of statements) {
    const missing: string[] = [];
    for (const input of g.inputs) {
      if (!(await relationExists(duck, relationOf.get(input)!))) missing.push((GOLD_SOURCES as Record<string, string>)[input] ?? relationOf.get(input)!);
    }
    if (missing.length > 0) {
      result.goldSkipped.push({ name: g.name, missing });
      continue;
    }
    try {
      await duck.run(g.sql);
    } catch (err) {
      // The gold SQL is written for the demo schemas; a landing zone of other tables still gets
      // bronze and silver, and is told why this gold table was not built.
      result.goldSkipped.push({ name: g.name, missing: [], error: (err as Error).message.split("\n")[0] });
      continue;
    }
    const rows = await duck.all<{ n: string }>(`SELECT count(*) AS n FROM ${g.target}`);
    result.gold.push({ name: g.name, table: g.target, rows: Number(rows[0].n) });
  }
}
