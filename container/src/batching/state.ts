/**
 * The engine's small state object in the sink, `_cdc_state/<slot>.json`. It lets a restart skip
 * replayed events that are already durable, so the first object written after a crash starts
 * exactly where a possibly orphaned one started (same name: overwritten, never duplicated).
 *
 * A flush round writes this object BEFORE its data objects, listing them as `intents`, and writes
 * the objects in parallel. On start, per table, the intents whose objects exist up to the first
 * missing one move the table's high-water mark to their last event; existing objects after a gap
 * are deleted (their events were never confirmed and are replayed into the same or other names).
 */
import type { LandingSink } from "../sink/types";

/** (commit LSN, position in transaction) of one event. */
export interface Position {
  lsn: bigint;
  seq: number;
}

export interface Intent {
  table: string;
  key: string;
  first: Position;
  last: Position;
}

export interface SnapshotProgress {
  /** The slot's consistent point (LSN text) the snapshot was taken at. */
  consistentPoint: string;
  done: boolean;
  /** Landing keys written by this snapshot: deleted before a crashed snapshot is redone. */
  files: string[];
  /** The tables ("schema.table") the snapshots covered; tables captured later get their own. */
  tables?: string[];
  /** A snapshot of newly captured tables in progress (its objects are deleted if it was interrupted). */
  adding?: { tables: string[]; files: string[] };
  /**
   * Per table ("schema.table"), the relation the landing zone holds a complete copy of: its OID
   * (null: no such table was captured) and the snapshot position (LSN text) it holds since. See
   * source/coverage.ts. Absent in states written before 0.3 (then derived from `tables`).
   */
  covered?: Record<string, CoveredTable>;
  /** Tables the stream found a new relation under: snapshotted at the next start. */
  resnapshot?: string[];
}

export interface CoveredTable {
  oid: number | null;
  at: string;
}

interface StoredPosition {
  lsn: string;
  seq: number;
}

interface StoredState {
  version: 1;
  slot: string;
  updatedAt: string;
  tables: Record<string, StoredPosition>;
  intents: { table: string; key: string; first: StoredPosition; last: StoredPosition }[];
  snapshot: SnapshotProgress | null;
  /** Per table, the schema manifest last made durable (added in 0.2; absent in older states). */
  manifests?: Record<string, ManifestRecord>;
}

/** The schema manifest a table's records were last written under. */
export interface ManifestRecord {
  key: string;
  fingerprint: string;
}

const toPosition = (p: StoredPosition): Position => ({ lsn: BigInt(p.lsn), seq: p.seq });

export const comparePositions = (a: Position, b: Position): number => (a.lsn < b.lsn ? -1 : a.lsn > b.lsn ? 1 : a.seq - b.seq);

export class EngineState {
  /** Per table ("schema.table"): the last event durably in the sink. */
  readonly highWater = new Map<string, Position>();
  /** The largest LSN of any high-water mark: transactions after it need no skip checks. */
  maxHighWaterLsn = -1n;
  snapshot: SnapshotProgress | null = null;
  /** Per table ("schema.table"): the last durable schema manifest. */
  readonly manifests = new Map<string, ManifestRecord>();

  private constructor(
    private readonly sink: LandingSink,
    private readonly slot: string,
  ) {}

  static key(slot: string): string {
    return `_cdc_state/${slot}.json`;
  }

  /** Reads the state object and settles the intents of an interrupted flush round. */
  static async load(sink: LandingSink, slot: string): Promise<EngineState> {
    const state = new EngineState(sink, slot);
    const raw = await sink.get(EngineState.key(slot));
    if (!raw) return state;
    let stored: StoredState;
    try {
      stored = JSON.parse(Buffer.from(raw).toString("utf8")) as StoredState;
    } catch (err) {
      throw new Error(`the engine state object ${sink.url}/${EngineState.key(slot)} is not valid JSON (${(err as Error).message}); delete it to start over (a snapshot will be taken again)`);
    }
    for (const [table, p] of Object.entries(stored.tables ?? {})) state.advance(table, { lsn: BigInt(p.lsn), seq: p.seq });
    state.snapshot = stored.snapshot ?? null;
    for (const [table, m] of Object.entries(stored.manifests ?? {})) state.manifests.set(table, m);
    // Per table, the intents whose objects exist up to the first missing one are durable; an object
    // after a gap is an orphan whose events will be replayed (maybe cut differently): delete it.
    const blocked = new Set<string>();
    const intents = [...(stored.intents ?? [])].sort((a, b) => comparePositions(toPosition(a.first), toPosition(b.first)));
    for (const intent of intents) {
      const exists = (await sink.get(intent.key)) !== undefined;
      if (blocked.has(intent.table)) {
        if (exists) await sink.delete(intent.key);
        continue;
      }
      if (exists) {
        state.advance(intent.table, toPosition(intent.last));
        const files = state.snapshot && !state.snapshot.done ? state.snapshot.files : state.snapshot?.adding?.files;
        if (files && !files.includes(intent.key)) files.push(intent.key);
      } else blocked.add(intent.table);
    }
    return state;
  }

  advance(table: string, position: Position): void {
    const current = this.highWater.get(table);
    if (current && comparePositions(current, position) >= 0) return;
    this.highWater.set(table, position);
    if (position.lsn > this.maxHighWaterLsn) this.maxHighWaterLsn = position.lsn;
  }

  async save(intents: Intent[]): Promise<void> {
    const stored: StoredState = {
      version: 1,
      slot: this.slot,
      updatedAt: new Date().toISOString(),
      tables: Object.fromEntries([...this.highWater].map(([t, p]) => [t, { lsn: p.lsn.toString(), seq: p.seq }])),
      intents: intents.map((i) => ({ table: i.table, key: i.key, first: { lsn: i.first.lsn.toString(), seq: i.first.seq }, last: { lsn: i.last.lsn.toString(), seq: i.last.seq } })),
      snapshot: this.snapshot,
      manifests: Object.fromEntries(this.manifests),
    };
    await this.sink.put(EngineState.key(this.slot), Buffer.from(JSON.stringify(stored, null, 1)), "application/json");
  }
}
