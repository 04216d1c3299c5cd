/**
 * Which source names can land. A table lands under the object key prefix `cdc.<schema>.<table>/`
 * in every sink (file, S3, ADLS, GCS), and each column becomes a key of a record that also holds
 * the engine's own fields (`__op`, `__lsn`, …). A name that breaks either — a `/` or `.` in a
 * table name, a column called `__op` — would land broken records or stall the sink, so it is
 * refused before anything is read: by `doctor`, at start-up, and by the stream for a column added
 * later.
 */

/**
 * Schema and table names: what TABLE_INCLUDE accepts. ASCII letters, digits, `_` and `$` mean the
 * same in every object store and file system; `.` would make `cdc.<schema>.<table>` ambiguous.
 */
export const LANDING_SAFE_NAME = /^[A-Za-z_][A-Za-z0-9_$]*$/;

/** The engine's record fields all start with `__`; a column that does too could collide with one. */
export const RESERVED_COLUMN_PREFIX = "__";

export const isReservedColumn = (name: string): boolean => name.startsWith(RESERVED_COLUMN_PREFIX);

/** A name made landing-safe, for the rename a fix suggests. */
export function safeRename(name: string): string {
  const replaced = name.replace(/^_+/, "").replace(/[^A-Za-z0-9_$]/g, "_");
  return /^[A-Za-z_]/.test(replaced) ? replaced : `t_${replaced}`;
}

/** The sentence every refusal of an unsafe schema or table name shares (doctor, start-up, the stream). */
export function unsafeTableNameDetail(names: string[]): string {
  return `its name ${names.map((n) => JSON.stringify(n)).join(" and ")} cannot be part of an object key (cdc.<schema>.<table>/): schema and table names may only hold ASCII letters, digits, _ and $, and start with a letter or _`;
}

/** The sentence every refusal of reserved columns shares (doctor, start-up, the stream). */
export function reservedColumnsDetail(table: string, columns: string[]): string {
  const list = columns.map((c) => JSON.stringify(c)).join(", ");
  return `column${columns.length === 1 ? "" : "s"} ${list} of ${table} start${columns.length === 1 ? "s" : ""} with "${RESERVED_COLUMN_PREFIX}", which is reserved for the engine's record fields (__op, __lsn, __seq, __ts_ms, __deleted, __unchanged), so records would carry duplicate keys`;
}
