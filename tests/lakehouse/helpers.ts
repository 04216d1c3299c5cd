import { mkdir, writeFile, mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "pg";
import { Duck } from "../../lakehouse/src/duck";
import { waitFor } from "../engine/fixtures/harness";

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Waits until the slot has confirmed everything written so far (the engine landed it all). */
export async function waitUntilSlotConfirmsAll(admin: Client, slot: string): Promise<void> {
  const end = (await admin.query<{ lsn: string }>("SELECT (pg_current_wal_insert_lsn() - '0/0')::text AS lsn")).rows[0].lsn;
  await waitFor(
    "the engine to confirm everything",
    async () => {
      const r = await admin.query<{ lsn: string | null }>("SELECT (confirmed_flush_lsn - '0/0')::text AS lsn FROM pg_replication_slots WHERE slot_name = $1", [slot]);
      return r.rows[0]?.lsn != null && BigInt(r.rows[0].lsn) >= BigInt(end);
    },
    120_000,
  );
}

export type Op = "r" | "c" | "u" | "d" | "t" | "b";

/** One landing record as the engine writes it (landing contract, issue #2). */
export function rec(op: Op, lsn: number, seq: number, row: Record<string, unknown> = {}, unchanged?: string[]): Record<string, unknown> {
  const r: Record<string, unknown> = { ...row, __op: op, __deleted: op === "d" ? "true" : "false", __lsn: lsn, __seq: seq, __ts_ms: 1_763_700_000_000 + lsn };
  if (unchanged) {
    for (const c of unchanged) delete r[c];
    r.__unchanged = unchanged;
  }
  return r;
}

const position = (lsn: number | bigint, seq: number) => `${BigInt(lsn).toString(16).toUpperCase().padStart(16, "0")}-${String(seq).padStart(10, "0")}`;

/** The Spark type a hand-written value stands for (the engine takes it from the catalog instead). */
function sparkTypeOfValue(v: unknown): string {
  if (typeof v === "boolean") return "BOOLEAN";
  if (typeof v === "number") return Number.isInteger(v) ? "BIGINT" : "DOUBLE";
  return "STRING";
}

/**
 * Writes a schema manifest as the engine does (landing contract), `columns` as [name, Spark type],
 * applying from (lsn, seq) on.
 */
export async function landManifest(root: string, table: string, columns: [string, string][], options: { key?: string[]; lsn?: number; seq?: number } = {}): Promise<void> {
  const dir = join(root, `cdc.${table}`, "_schema");
  await mkdir(dir, { recursive: true });
  const manifest = {
    version: 1,
    table,
    since_lsn: options.lsn ?? 0,
    since_seq: options.seq ?? 0,
    columns: columns.map(([name, spark_type]) => ({ name, pg_type: spark_type.toLowerCase(), nullable: !(options.key ?? []).includes(name), spark_type })),
    primary_key: options.key ?? [],
    replica_identity: "default",
    key: options.key ?? [],
  };
  await writeFile(join(dir, `${position(manifest.since_lsn, manifest.since_seq)}.json`), JSON.stringify(manifest));
}

/** The columns of the table's newest manifest, or [] when it has none yet. */
async function manifestColumns(root: string, table: string): Promise<[string, string][]> {
  const dir = join(root, `cdc.${table}`, "_schema");
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith(".json")).sort();
  if (names.length === 0) return [];
  const m = JSON.parse(await readFile(join(dir, names[names.length - 1]), "utf8")) as { columns: { name: string; spark_type: string }[] };
  return m.columns.map((c) => [c.name, c.spark_type]);
}

/**
 * Writes a landing file named like the engine does; returns its path. Like the engine, it writes a
 * schema manifest first when the records carry a column the table's newest manifest lacks (types
 * from the values: integers BIGINT, other numbers DOUBLE, booleans, everything else STRING);
 * `landManifest` beforehand gives exact types.
 */
export async function land(root: string, table: string, records: Record<string, unknown>[], hour = "12"): Promise<string> {
  const first = records[0];
  const columns = await manifestColumns(root, table);
  let grew = false;
  for (const r of records) {
    for (const [k, v] of Object.entries(r)) {
      if (k.startsWith("__")) continue;
      if (!columns.some(([n]) => n === k)) {
        columns.push([k, v === null ? "STRING" : sparkTypeOfValue(v)]);
        grew = true;
      }
    }
    for (const c of (r.__unchanged as string[] | undefined) ?? []) {
      if (!columns.some(([n]) => n === c)) {
        columns.push([c, "STRING"]);
        grew = true;
      }
    }
  }
  if (grew) {
    const none = (await manifestColumns(root, table)).length === 0;
    await landManifest(root, table, columns, none ? {} : { lsn: first.__lsn as number, seq: first.__seq as number });
  }
  const name = `${BigInt(first.__lsn as number).toString(16).toUpperCase().padStart(16, "0")}-${String(first.__seq).padStart(10, "0")}.ndjson`;
  const dir = join(root, `cdc.${table}`, "date=2026-11-21", `hour=${hour}`);
  await mkdir(dir, { recursive: true });
  const path = join(dir, name);
  await writeFile(path, records.map((r) => JSON.stringify(r)).join("\n") + "\n");
  return path;
}

/** Silver rows as plain objects sorted by key, without the CDC metadata columns. */
export async function silverRows(db: string | Duck, table: string, order: string): Promise<Record<string, unknown>[]> {
  const duck = typeof db === "string" ? await Duck.open(db) : db;
  try {
    const rows = await duck.all(`SELECT * FROM ${table} ORDER BY ${order}`);
    return rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !k.startsWith("__"))));
  } finally {
    if (typeof db === "string") duck.close();
  }
}
