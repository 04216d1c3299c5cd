/**
 * Landing object names and the schema manifest objects (landing contract, docs/engine.md).
 *
 * Names are immutable: a data object is named by the positions of its first AND last record, so
 * a name, once written, only ever holds those records — a replay after a crash that cuts its
 * batches differently produces other names, never other content under a name Auto Loader has
 * already read (it reads each path once). A manifest is named by the position of the first record
 * that uses it, so manifest names sort by version, and is written only if that name is still free.
 */
import { lsnHex16 } from "../source/lsn";
import type { TableSchema } from "../source/schema";
import type { Position } from "./state";

/** The folder of a table's schema manifests, inside its `cdc.<schema>.<table>/` folder. */
export const SCHEMA_FOLDER = "_schema";

const LSN_PLACEHOLDER = "@since_lsn@"; // replaced first, before any column name could match

const seq10 = (seq: number): string => String(seq).padStart(10, "0");

/** `<first LSN>-<first seq>-<last LSN>-<last seq>`: what a data object holds, exactly. */
export function dataObjectName(first: Position, last: Position, extension: string): string {
  return `${lsnHex16(first.lsn)}-${seq10(first.seq)}-${lsnHex16(last.lsn)}-${seq10(last.seq)}${extension}`;
}

/** `cdc.<schema>.<table>/_schema/<LSN>-<seq>.json` of the manifest that applies from `since` on. */
export function manifestKey(prefix: string, since: Position): string {
  return `${prefix}/${SCHEMA_FOLDER}/${lsnHex16(since.lsn)}-${seq10(since.seq)}.json`;
}

/** The manifest object's bytes: deterministic for a schema and position (a replay writes the same). */
export function manifestBody(schema: TableSchema, since: Position): Buffer {
  const body = {
    version: 1,
    table: schema.table,
    since_lsn: LSN_PLACEHOLDER,
    since_seq: since.seq,
    columns: schema.columns,
    primary_key: schema.primary_key,
    replica_identity: schema.replica_identity,
    key: schema.key,
  };
  // An integer like __lsn in the records, exact beyond 2^53 (JSON.stringify has no bigint).
  // One line: readers may read it as text or as JSON lines alike.
  return Buffer.from(JSON.stringify(body).replace(`"${LSN_PLACEHOLDER}"`, since.lsn.toString()) + "\n");
}
