/**
 * The engine's small state object in the sink, `_cdc_state/<slot>.json`. It lets a restart skip
 * replayed events that are already durable, so the first object written after a crash starts
 * exactly where a possibly orphaned one started (same name: overwritten, never duplicated).
 *
 * A flush round writes this object BEFORE its data objects, listing them as `intents`, and writes
 * the objects in parallel. On start, per table, the intents whose objects exist up to the first
 * missing one move the table's high-water mark to their last event; existing objects after a gap
 * are deleted (their events were never confirmed and are replayed into the same or other names).
 *
 * Fencing: the object carries a writer epoch. An instance claims the next epoch with a
 * compare-and-swap write before it changes anything in the sink, and every later write of the
 * object is a compare-and-swap on the version it wrote last: once another instance has claimed a
 * newer epoch, the old one's next write (or retry, or delete) fails with WriterFencedError.
 *
 * Slot ownership: `slotOwner` records that this sink's engine created PG_SLOT. It is written
 * ("creating") BEFORE the slot is created, so a crash between the two is recognised as our own.
 */
import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import type { LandingSink, ObjectVersion } from "../sink/types";
import { SinkConditionFailedError, WriterFencedError } from "../sink/types";

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

/**
 * Incremental snapshots (source/incremental-snapshot.ts): the tables queued or in progress, with
 * the progress that is durable. Absent in states written before incremental snapshots.
 */
export interface IncrementalSnapshotState {
  /** In order: the first is copied now, the others wait. */
  tables: IncrementalTableProgress[];
  /** Commit LSN (text) of the last snapshot request taken from the stream: a replay of it (or of an older one) is ignored. */
  requestsUpTo?: string;
}

export interface IncrementalTableProgress {
  /** "schema.table" */
  table: string;
  /** Chunks whose rows (and barrier) are durable in the sink. */
  chunks: number;
  /** The primary key, as text in key column order, of the last row the last durable chunk read; null: no chunk yet. */
  lastKey: string[] | null;
  /** Rows landed so far (chunk rows not dropped in favour of a streamed change). */
  rows: number;
  /** Land a re-snapshot barrier before the first chunk (a table that came back or was newly captured). */
  barrier: boolean;
  /** Why it is snapshotted: "request" (cdc-engine snapshot) or "comeback". */
  reason: string;
  /** When it was queued (ISO time). */
  since: string;
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
  /** The writer epoch (absent in older states: 0). */
  epoch?: number;
  /** Who claimed the epoch, for the log line of an instance that was fenced. */
  writer?: WriterIdentity;
  /** Unique per write: recognises our own write when its response was lost and a retry hit the condition. */
  writeId?: string;
  /** The replication slot this sink's engine created (absent in older states, see ownsSlot). */
  slotOwner?: SlotOwner;
  /** Incremental snapshots queued or in progress (absent when there never were any). */
  incremental?: IncrementalSnapshotState;
}

export interface WriterIdentity {
  host: string;
  pid: number;
  startedAt: string;
}

export interface SlotOwner {
  slot: string;
  database: string;
  /** "creating": claimed, the slot may or may not exist yet; "created": the slot was created. */
  status: "creating" | "created";
  since: string;
  /**
   * The server's timeline (IDENTIFY_SYSTEM) when the slot was created; absent in states written
   * before it was recorded. A later, higher timeline means the server was promoted since: a slot
   * that is gone then did not survive a failover.
   */
  timeline?: number;
}

/** This process, as a writer. */
export const THIS_WRITER: WriterIdentity = { host: hostname(), pid: process.pid, startedAt: new Date().toISOString() };

const describeWriter = (w: WriterIdentity | undefined): string | undefined => (w ? `${w.host} pid ${w.pid} (started ${w.startedAt})` : undefined);

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
  slotOwner: SlotOwner | undefined;
  /** Incremental snapshots queued or in progress (source/incremental-snapshot.ts). */
  incremental: IncrementalSnapshotState | undefined;
  /** Our writer epoch once claimed; 0 before. */
  epoch = 0;
  /** The version of the state object as this instance last read or wrote it (null: none). */
  private version: ObjectVersion | null = null;
  private storedEpoch = 0;
  private lastWriteId: string | undefined;
  private writer: WriterIdentity = THIS_WRITER;
  private intents: StoredState["intents"] = [];
  /** The intents of the last save: rewritten as they were by saveAgain(). */
  private lastIntents: StoredState["intents"] = [];
  /** Whether the stored state predates slot ownership records and has snapshot progress (see ownsSlot). */
  private legacySnapshot = false;
  /** Saves run one at a time: each is a compare-and-swap on the version the previous one wrote. */
  private saving: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly sink: LandingSink,
    private readonly slot: string,
  ) {}

  static key(slot: string): string {
    return `_cdc_state/${slot}.json`;
  }

  /** Reads the state object (without changing anything). */
  static async open(sink: LandingSink, slot: string): Promise<EngineState> {
    const state = new EngineState(sink, slot);
    const current = await sink.read(EngineState.key(slot));
    if (!current) return state;
    const stored = state.parse(current.body);
    state.version = current.version;
    state.storedEpoch = stored.epoch ?? 0;
    for (const [table, p] of Object.entries(stored.tables ?? {})) state.advance(table, { lsn: BigInt(p.lsn), seq: p.seq });
    state.snapshot = stored.snapshot ?? null;
    for (const [table, m] of Object.entries(stored.manifests ?? {})) state.manifests.set(table, m);
    state.slotOwner = stored.slotOwner;
    state.incremental = stored.incremental;
    state.legacySnapshot = stored.slotOwner === undefined && stored.snapshot != null;
    state.intents = stored.intents ?? [];
    return state;
  }

  /** open(), claim() and settle(): what a session does before it writes. */
  static async load(sink: LandingSink, slot: string, writer: WriterIdentity = THIS_WRITER): Promise<EngineState> {
    const state = await EngineState.open(sink, slot);
    await state.claim(writer);
    await state.settle();
    return state;
  }

  /**
   * Whether this sink's engine created `slot` on `database`: recorded in slotOwner, or (states
   * written before ownership was recorded) implied by snapshot progress, which the engine always
   * wrote before or right after creating its slot.
   */
  ownsSlot(database: string): boolean {
    if (this.slotOwner) return this.slotOwner.slot === this.slot && this.slotOwner.database === database;
    return this.legacySnapshot;
  }

  /** Whether this sink's engine had created its slot (so a missing slot was lost, not never made). */
  hadSlot(database: string): boolean {
    if (this.slotOwner) return this.slotOwner.status === "created" && this.slotOwner.database === database;
    return this.legacySnapshot && this.snapshot?.done === true;
  }

  /**
   * Takes the next writer epoch with a compare-and-swap on the version open() read. Fails (to be
   * retried by the session) when another instance wrote the state in between.
   */
  async claim(writer: WriterIdentity = THIS_WRITER): Promise<void> {
    this.epoch = this.storedEpoch + 1;
    this.writer = writer;
    try {
      await this.write(this.intents);
    } catch (err) {
      this.epoch = 0;
      if (err instanceof SinkConditionFailedError) {
        throw new Error(`another instance wrote the engine state ${this.sink.url}/${EngineState.key(this.slot)} while this one was claiming it; starting over`, { cause: err });
      }
      throw err;
    }
  }

  /** Settles the intents of an interrupted flush round (after claim()). */
  async settle(): Promise<void> {
    // Per table, the intents whose objects exist up to the first missing one are durable; an object
    // after a gap is an orphan whose events will be replayed (maybe cut differently): delete it.
    const blocked = new Set<string>();
    const intents = [...this.intents].sort((a, b) => comparePositions(toPosition(a.first), toPosition(b.first)));
    for (const intent of intents) {
      const version = await this.sink.stat(intent.key);
      if (blocked.has(intent.table)) {
        if (version !== undefined) await this.deleteObject(intent.key, version);
        continue;
      }
      if (version !== undefined) {
        this.advance(intent.table, toPosition(intent.last));
        const files = this.snapshot && !this.snapshot.done ? this.snapshot.files : this.snapshot?.adding?.files;
        if (files && !files.includes(intent.key)) files.push(intent.key);
      } else blocked.add(intent.table);
    }
    this.intents = [];
  }

  /**
   * Deletes a landing object this instance found (the version it saw, or the current one), but
   * only while it still holds the writer epoch, and only that version: an object another writer
   * wrote under the same name since is left alone.
   */
  async deleteObject(key: string, version?: ObjectVersion): Promise<void> {
    const seen = version ?? (await this.sink.stat(key));
    if (seen === undefined) return;
    await this.checkFence();
    await this.sink.deleteVersion(key, seen);
  }

  /** Throws WriterFencedError when the stored state carries a newer epoch than ours. */
  async checkFence(): Promise<void> {
    const current = await this.sink.read(EngineState.key(this.slot));
    if (!current || current.version === this.version) return;
    const stored = this.parse(current.body);
    // Epochs are claimed by compare-and-swap, so no two instances ever hold the same one.
    if ((stored.epoch ?? 0) > this.epoch) {
      throw new WriterFencedError(this.sink.url, this.slot, this.epoch, stored.epoch ?? 0, describeWriter(stored.writer));
    }
  }

  advance(table: string, position: Position): void {
    const current = this.highWater.get(table);
    if (current && comparePositions(current, position) >= 0) return;
    this.highWater.set(table, position);
    if (position.lsn > this.maxHighWaterLsn) this.maxHighWaterLsn = position.lsn;
  }

  /** Writes the state (compare-and-swap on the version this instance wrote last). */
  save(intents: Intent[]): Promise<void> {
    const stored = intents.map((i) => ({ table: i.table, key: i.key, first: { lsn: i.first.lsn.toString(), seq: i.first.seq }, last: { lsn: i.last.lsn.toString(), seq: i.last.seq } }));
    const run = this.saving.then(() => {
      this.lastIntents = stored;
      return this.write(stored);
    });
    this.saving = run.catch(() => undefined);
    return run;
  }

  /**
   * Writes the state again with the intents of the last save, for progress kept beside the flush
   * rounds (incremental snapshots): a round whose objects are still being written keeps its
   * intents, and a round that completed only has them settled once more on a restart.
   */
  saveAgain(): Promise<void> {
    const run = this.saving.then(() => this.write(this.lastIntents));
    this.saving = run.catch(() => undefined);
    return run;
  }

  private async write(intents: StoredState["intents"]): Promise<void> {
    if (this.epoch === 0) throw new Error("the engine state is written before this instance claimed a writer epoch (a bug)");
    const writeId = randomUUID();
    const stored: StoredState = {
      version: 1,
      slot: this.slot,
      updatedAt: new Date().toISOString(),
      tables: Object.fromEntries([...this.highWater].map(([t, p]) => [t, { lsn: p.lsn.toString(), seq: p.seq }])),
      intents,
      snapshot: this.snapshot,
      manifests: Object.fromEntries(this.manifests),
      epoch: this.epoch,
      writer: this.writer,
      writeId,
      ...(this.slotOwner ? { slotOwner: this.slotOwner } : {}),
      ...(this.incremental ? { incremental: this.incremental } : {}),
    };
    const key = EngineState.key(this.slot);
    const body = Buffer.from(JSON.stringify(stored, null, 1));
    try {
      this.version = await this.sink.replace(key, body, this.version, "application/json");
    } catch (err) {
      if (!(err instanceof SinkConditionFailedError)) throw err;
      // A retried write whose first attempt landed (its answer was lost) finds its own writeId.
      const current = await this.sink.read(key);
      const found = current ? this.parse(current.body) : undefined;
      if (current && found?.writeId === writeId) {
        this.version = current.version;
      } else if (this.lastWriteId === undefined && this.storedEpoch === this.epoch - 1) {
        throw err; // the claim itself raced: claim() reports it
      } else {
        throw new WriterFencedError(this.sink.url, this.slot, this.epoch, found?.epoch ?? 0, describeWriter(found?.writer));
      }
    }
    this.lastWriteId = writeId;
    this.storedEpoch = this.epoch;
  }

  private parse(raw: Uint8Array): StoredState {
    try {
      return JSON.parse(Buffer.from(raw).toString("utf8")) as StoredState;
    } catch (err) {
      throw new Error(`the engine state object ${this.sink.url}/${EngineState.key(this.slot)} is not valid JSON (${(err as Error).message}); delete it to start over (a snapshot will be taken again)`);
    }
  }
}
