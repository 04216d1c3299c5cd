/**
 * Snapshot coverage: which relation the landing zone holds a complete copy of under each table
 * name. It is kept by relation OID, not by name, because a name can come to mean another table (a
 * table dropped and created again, one renamed onto the name) or lose its table for a while
 * (renamed away, removed from capture): in each case the changes in between never landed under the
 * name, so its landed rows are stale and the table must be copied again, behind a re-snapshot
 * barrier (landing contract) that tells readers to forget the older rows.
 *
 * When it is checked (docs/engine.md, "Tables that come back"):
 * - at start-up, against the catalog (tablesToSnapshot): a captured table that is not covered, or
 *   covered under another OID, or that the publication had to be given again, is snapshotted;
 *   a covered name that is no longer captured loses its coverage;
 * - while streaming, on every Relation message (relationSeen): a captured name that arrives with
 *   another OID than its coverage, or uncovered, needs a snapshot; a covered OID that arrives
 *   under another name has left its old name, whose coverage ends.
 * Relation messages of transactions at or before a name's snapshot position are older than the
 * snapshot (a replay) and change nothing: the snapshot already holds their outcome.
 */
import type { CoveredTable, SnapshotProgress } from "../batching/state";
import { parseLsn } from "./lsn";

/** The stream met a captured table the landing zone has no complete copy of: snapshot it first. */
export class ResnapshotNeeded extends Error {
  constructor(
    readonly table: string,
    readonly detail: string,
  ) {
    super(`${table} ${detail}; taking a new snapshot of it before streaming on`);
    this.name = "ResnapshotNeeded";
  }
}

const coveredSince = (entry: CoveredTable): bigint => parseLsn(entry.at);

/**
 * A Relation message for `table` (OID `oid`) in the transaction committing at `commitLsn`.
 * Returns why the table needs a snapshot, or undefined; voids the coverage of any other name the
 * OID was covered under. `captured`: whether `table` is captured at all.
 */
export function relationSeen(snapshot: SnapshotProgress | null, table: string, oid: number, commitLsn: bigint, captured: boolean): string | undefined {
  const covered = snapshot?.covered;
  if (!covered) return undefined;
  for (const [name, entry] of Object.entries(covered)) {
    if (name !== table && entry.oid === oid && commitLsn > coveredSince(entry)) delete covered[name];
  }
  if (!captured) return undefined;
  const entry = covered[table];
  if (entry && commitLsn <= coveredSince(entry)) return undefined;
  if (entry?.oid === oid) return undefined;
  return entry === undefined ? `is captured (OID ${oid}) but not covered by any snapshot` : entry.oid === null ? `appeared (OID ${oid}) after its last snapshot found none` : `is now relation OID ${oid}, not OID ${entry.oid} as when it was snapshotted (dropped and created again, or renamed)`;
}

/**
 * Start-up: the tables ("schema.table") to snapshot now, given the captured tables with their
 * current OIDs, those the publication had to be given again (`readded`: removed from it while
 * captured, so changes may be missing), and the slot's confirmed position. Prunes the coverage
 * of names no longer captured (they are copied again if they come back).
 */
export function tablesToSnapshot(snapshot: SnapshotProgress, current: Map<string, number>, readded: string[], confirmed: bigint): string[] {
  // States written before coverage was kept by OID: the snapshots covered what is captured now.
  if (snapshot.covered === undefined) {
    snapshot.covered = {};
    for (const name of snapshot.tables ?? [...current.keys()]) {
      const oid = current.get(name);
      if (oid !== undefined) snapshot.covered[name] = { oid, at: snapshot.consistentPoint };
    }
  }
  const covered = snapshot.covered;
  for (const [name, entry] of Object.entries(covered)) {
    if (readded.includes(name)) delete covered[name];
    // A name that left capture; a "no such table" entry is kept while the slot may still replay
    // Relation messages from before it.
    else if (!current.has(name) && (entry.oid !== null || coveredSince(entry) <= confirmed)) delete covered[name];
  }
  const due = new Set(snapshot.resnapshot ?? []);
  for (const [name, oid] of current) if (covered[name]?.oid !== oid) due.add(name);
  return [...due];
}

/** Records a snapshot of `tables` at `point`: the OIDs it copied (a table it found none of: null). */
export function markCovered(snapshot: SnapshotProgress, tables: string[], relids: Map<string, number>, point: string): void {
  snapshot.covered ??= {};
  for (const name of tables) snapshot.covered[name] = { oid: relids.get(name) ?? null, at: point };
  snapshot.resnapshot = (snapshot.resnapshot ?? []).filter((t) => !tables.includes(t));
  if (snapshot.resnapshot.length === 0) delete snapshot.resnapshot;
  snapshot.tables = Object.entries(snapshot.covered).filter(([, e]) => e.oid !== null).map(([name]) => name);
}
