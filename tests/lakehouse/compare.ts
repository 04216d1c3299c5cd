/** Comparing lakehouse tables with PostgreSQL, value by value, in PostgreSQL's text form. */
import { Client } from "pg";
import type { TestPostgres } from "../support/postgres";
import { GOLD_SOURCES, quoteIdentifier, renderGold, type Dialect } from "../../lakehouse/src/sql/render";

/** Runs SQL on a lakehouse (DuckDB or the local Spark driver) and returns its rows. */
export type LakeQuery = (sql: string) => Promise<Record<string, unknown>[]>;

/** A client that returns every value as PostgreSQL's text, with UTC timestamps. */
export async function textClient(pg: TestPostgres): Promise<Client> {
  const client = new Client({ host: pg.host, port: pg.port, user: pg.user, password: pg.password, database: pg.database, types: { getTypeParser: () => (v: string) => v } as never });
  await client.connect();
  await client.query("SET TimeZone = 'UTC'");
  return client;
}

const TS = /^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]00(?::?00)?)?$/;

/** One value in a comparable text form (landing ISO timestamps and PostgreSQL's text agree). */
export function norm(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === "boolean") return v ? "t" : "f";
  if (typeof v === "number" || typeof v === "bigint") return String(v);
  if (typeof v === "object") return JSON.stringify(v);
  const s = String(v);
  // JSON text: PostgreSQL keeps json as written and prints jsonb with spaces; the lakehouse compacts it.
  if (s.startsWith("{") || s.startsWith("[")) {
    try {
      return JSON.stringify(JSON.parse(s));
    } catch {
      // not JSON: compared as text
    }
  }
  const m = TS.exec(s);
  if (m) return `${m[1]} ${m[2]}.${(m[3] ?? "").padEnd(6, "0")}${m[4] ? "Z" : ""}`;
  return s;
}

/** Gold values as figures: a UTC time without its zone marker, a decimal without trailing zeros. */
const figure = (v: string | null): string | null => v?.replace(/(\d\.\d{6})Z$/, "$1").replace(/^(-?\d+)\.(\d*?)0+$/, (_m, i: string, f: string) => (f ? `${i}.${f}` : i)) ?? null;

const normRows = (rows: Record<string, unknown>[], columns: string[], asFigures = false): string[] =>
  rows.map((r) => JSON.stringify(columns.map((c) => (asFigures ? figure(norm(r[c])) : norm(r[c]))))).sort();

export interface Difference {
  table: string;
  onlyInSource: string[];
  onlyInLakehouse: string[];
  columns?: { source: string[]; lakehouse: string[] };
}

/**
 * Source table vs its silver view: same columns (metadata aside), same rows. Both sides are read
 * into one text form: arrays as JSON, bytea as \x hex, numerics with their scale, ±infinity as the
 * extremes the landing contract maps them to.
 */
export async function compareSilver(client: Client, lake: LakeQuery, table: string, dialect: Dialect = "duckdb"): Promise<Difference | undefined> {
  const [schema, name] = table.split(".");
  const types = await client.query<{ column_name: string; data_type: string }>(
    "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
    [schema, name],
  );
  const pgExpr = ({ column_name: c, data_type: t }: { column_name: string; data_type: string }) => {
    const q = `"${c.replace(/"/g, '""')}"`;
    if (t === "ARRAY") return `to_json(${q})::text AS ${q}`;
    if (t === "timestamp with time zone") return `CASE WHEN ${q} = 'infinity' THEN '9999-12-31 23:59:59.999999+00' WHEN ${q} = '-infinity' THEN '0001-01-01 00:00:00+00' ELSE ${q}::text END AS ${q}`;
    if (t === "timestamp without time zone") return `CASE WHEN ${q} = 'infinity' THEN '9999-12-31 23:59:59.999999' WHEN ${q} = '-infinity' THEN '0001-01-01 00:00:00' ELSE ${q}::text END AS ${q}`;
    if (t === "date") return `CASE WHEN ${q} = 'infinity' THEN '9999-12-31' WHEN ${q} = '-infinity' THEN '0001-01-01' ELSE ${q}::text END AS ${q}`;
    return q;
  };
  const lakeExpr = ({ column_name: c, data_type: t }: { column_name: string; data_type: string }) => {
    const q = quoteIdentifier(c, dialect);
    if (t === "bytea") return dialect === "spark" ? `concat('\\\\x', lower(hex(${q}))) AS ${q}` : `'\\x' || lower(hex(${q})) AS ${q}`;
    // Exact digits: Spark's JSON rows would come back through JavaScript numbers (2^53).
    if ((t === "numeric" || t === "bigint") && dialect === "spark") return `CAST(${q} AS STRING) AS ${q}`;
    return q;
  };
  const source = await client.query(`SELECT ${types.rows.map(pgExpr).join(", ")} FROM ${table}`);
  const columns = source.fields.map((f) => f.name);
  const lakeColumns = (await lake(`SELECT * FROM silver.${schema}_${name} LIMIT 1`)).flatMap((r) => Object.keys(r)).filter((c) => !c.startsWith("__"));
  if (lakeColumns.length > 0 && [...lakeColumns].sort().join() !== [...columns].sort().join()) return { table, onlyInSource: [], onlyInLakehouse: [], columns: { source: columns, lakehouse: lakeColumns } };
  const silver = await lake(`SELECT ${types.rows.map(lakeExpr).join(", ")} FROM silver.${schema}_${name}`);
  return diff(table, normRows(source.rows, columns), normRows(silver, columns));
}

function diff(table: string, a: string[], b: string[]): Difference | undefined {
  const setB = new Set(b);
  const setA = new Set(a);
  const onlyInSource = a.filter((x) => !setB.has(x));
  const onlyInLakehouse = b.filter((x) => !setA.has(x));
  if (onlyInSource.length === 0 && onlyInLakehouse.length === 0 && a.length === b.length) return undefined;
  const short = (rows: string[]) => rows.slice(0, 5).map((r) => (r.length > 400 ? `${r.slice(0, 400)}…` : r));
  return { table, onlyInSource: short(onlyInSource), onlyInLakehouse: short(onlyInLakehouse) };
}

/** Every gold table vs the same aggregation run directly on PostgreSQL over the source tables. */
export async function compareGold(client: Client, lake: LakeQuery): Promise<Difference[]> {
  const tables: Record<string, string> = { ...GOLD_SOURCES };
  const statements = renderGold({ tables: { ...tables, user_lifetime_value: "pg_temp.user_lifetime_value" } });
  const out: Difference[] = [];
  for (const g of statements) {
    const select = g.sql.replace(/^[\s\S]*?CREATE OR REPLACE TABLE \S+ AS\n/, "");
    await client.query(`DROP VIEW IF EXISTS pg_temp.${g.name} CASCADE`);
    await client.query(`CREATE TEMP VIEW ${g.name} AS ${select}`);
    const source = await client.query(`SELECT * FROM pg_temp.${g.name}`);
    const columns = source.fields.map((f) => f.name);
    const rows = await lake(`SELECT * FROM gold.${g.name}`);
    // Gold's CAST(… AS TIMESTAMP) is a UTC wall-clock time on PostgreSQL and DuckDB, an instant
    // shown in UTC on Spark, and Spark's rows carry decimals as JSON numbers: compared as figures.
    const d = diff(`gold.${g.name}`, normRows(source.rows, columns, true), normRows(rows, columns, true));
    if (d) out.push(d);
  }
  return out;
}
