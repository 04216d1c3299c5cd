/** Comparing lakehouse tables with PostgreSQL, value by value, in PostgreSQL's text form. */
import { Client } from "pg";
import type { TestPostgres } from "../support/postgres";
import { Duck } from "../../lakehouse/src/duck";
import { GOLD_SOURCES, renderGold } from "../../lakehouse/src/sql/render";

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
  const m = TS.exec(s);
  if (m) return `${m[1]} ${m[2]}.${(m[3] ?? "").padEnd(6, "0")}${m[4] ? "Z" : ""}`;
  return s;
}

const normRows = (rows: Record<string, unknown>[], columns: string[]): string[] =>
  rows.map((r) => JSON.stringify(columns.map((c) => norm(r[c])))).sort();

export interface Difference {
  table: string;
  onlyInSource: string[];
  onlyInLakehouse: string[];
  columns?: { source: string[]; lakehouse: string[] };
}

/** Source table vs its silver view: same columns (metadata aside), same rows. */
export async function compareSilver(client: Client, duck: Duck, table: string): Promise<Difference | undefined> {
  const [schema, name] = table.split(".");
  const source = await client.query(`SELECT * FROM ${table}`);
  const columns = source.fields.map((f) => f.name);
  const silver = await duck.all(`SELECT * FROM silver.${schema}_${name}`);
  const lakeColumns = silver.length > 0 ? Object.keys(silver[0]).filter((c) => !c.startsWith("__")) : columns;
  if ([...lakeColumns].sort().join() !== [...columns].sort().join()) return { table, onlyInSource: [], onlyInLakehouse: [], columns: { source: columns, lakehouse: lakeColumns } };
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
export async function compareGold(client: Client, duck: Duck): Promise<Difference[]> {
  const tables: Record<string, string> = { ...GOLD_SOURCES };
  const statements = renderGold({ tables: { ...tables, user_lifetime_value: "pg_temp.user_lifetime_value" } });
  const out: Difference[] = [];
  for (const g of statements) {
    const select = g.sql.replace(/^[\s\S]*?CREATE OR REPLACE TABLE \S+ AS\n/, "");
    await client.query(`DROP VIEW IF EXISTS pg_temp.${g.name} CASCADE`);
    await client.query(`CREATE TEMP VIEW ${g.name} AS ${select}`);
    const source = await client.query(`SELECT * FROM pg_temp.${g.name}`);
    const columns = source.fields.map((f) => f.name);
    const lake = await duck.all(`SELECT * FROM gold.${g.name}`);
    const d = diff(`gold.${g.name}`, normRows(source.rows, columns), normRows(lake, columns));
    if (d) out.push(d);
  }
  return out;
}
