import { mkdir, writeFile, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Duck } from "../../lakehouse/src/duck";

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export type Op = "r" | "c" | "u" | "d" | "t";

/** One landing record as the engine writes it (landing contract, issue #2). */
export function rec(op: Op, lsn: number, seq: number, row: Record<string, unknown> = {}, unchanged?: string[]): Record<string, unknown> {
  const r: Record<string, unknown> = { ...row, __op: op, __deleted: op === "d" ? "true" : "false", __lsn: lsn, __seq: seq, __ts_ms: 1_763_700_000_000 + lsn };
  if (unchanged) {
    for (const c of unchanged) delete r[c];
    r.__unchanged = unchanged;
  }
  return r;
}

/** Writes a landing file named like the engine does; returns its path. */
export async function land(root: string, table: string, records: Record<string, unknown>[], hour = "12"): Promise<string> {
  const first = records[0];
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
