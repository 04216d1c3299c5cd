/**
 * Incremental snapshots while streaming: the watermark method of Netflix's DBLog and Debezium's
 * incremental snapshots. A table is read in chunks by primary key (`ORDER BY pk LIMIT n` after
 * the last key read), each chunk between a low and a high watermark written into the WAL as
 * transactional logical messages (`pg_logical_emit_message(true, 'cdc-watermark', …)`, decoded
 * from pgoutput with `messages 'true'`, PostgreSQL 14+). While the stream passes between the two,
 * every key a streamed change of the table touches is dropped from the chunk (the stream carries
 * that key's newer state); when the high watermark H arrives, the rest land as `r` records at
 * (H, 1), (H, 2), … — H's transaction holds nothing but the watermark, so no streamed record
 * shares its __lsn, and every change after it orders after the chunk.
 *
 * The chunk's rows are read in a REPEATABLE READ transaction begun after the low watermark L
 * committed, so every transaction it does not see either commits after L (and is in the window)
 * or, in a rare race, wrote its commit record just before L's but was not yet visible: the stream
 * remembers the xids of recent transactions, and a chunk whose snapshot missed one that committed
 * before L is read again. So is a chunk whose window saw the table's relation change. A key whose
 * streamed change lacks unchanged TOASTed values (`__unchanged`) is not dropped, since that would
 * leave those columns to a row the reader may not have: it lands as its row at H instead, the
 * chunk's row with the window's changes of it applied (foldedImage).
 *
 * The published columns are checked in the chunk's snapshot and again in the high watermark's
 * transaction, which holds an ACCESS SHARE lock on the table so that no DDL commits between that
 * check and H: a chunk read with columns the table no longer has at H is read again.
 *
 * Progress (chunks done, last key) moves in the state object only once a chunk's rows are durable,
 * so a restart resumes chunk by chunk; a chunk redone lands its rows again at a newer position,
 * which a MERGE by (__lsn, __seq) absorbs. Requests arrive through the WAL too (`cdc-engine
 * snapshot` writes a `cdc-snapshot` message): they are ordered with the stream, survive an
 * engine that is down, and are not confirmed to PostgreSQL before the state holding them is durable.
 */
import { randomUUID } from "node:crypto";
import type { Client } from "pg";
import type { Logger } from "pino";
import type { EngineConfig, TableName } from "../config";
import type { EngineMetrics } from "../ops/metrics";
import type { Batcher, TableBuffer } from "../batching/batcher";
import type { EngineState, IncrementalTableProgress } from "../batching/state";
import type { TypeCatalog } from "./decoding/catalog";
import * as text from "./decoding/copy-text";
import type { CopyColumn } from "./decoding/copy-text";
import { connect, ident } from "./connection";
import { connectionOf } from "./replication";
import { publishedTable, type PublishedTable, type SnapshotColumn } from "./snapshot";
import { PG_EPOCH_MS, PartitionClock } from "./pgoutput";
import { RecordTooLargeError, largestColumn } from "./large-rows";
import { formatLsn, parseLsn } from "./lsn";
import { markCovered } from "./coverage";
import { PGOUTPUT_MESSAGES_MIN_VERSION } from "./setup";

const { copyKindOf, copyRowBytes, put, putInt, transcodeRow, worstCase } = text;

/** The prefix of the watermark messages. */
export const WATERMARK_PREFIX = "cdc-watermark";
/** The prefix of snapshot requests (`cdc-engine snapshot`); content: `{"tables":["schema.table", …]}`. */
export const REQUEST_PREFIX = "cdc-snapshot";
/** pgoutput decodes logical messages from PostgreSQL 14 on. */
export const INCREMENTAL_MIN_VERSION = PGOUTPUT_MESSAGES_MIN_VERSION;
/** Rows per chunk (INCREMENTAL_CHUNK_SIZE's default). */
export const DEFAULT_CHUNK_SIZE = 4096;
/** Transactions whose xid the stream remembers for the race check (see the module comment). */
const RECENT_XIDS = 16_384;
/** Characters of streamed records one window keeps for its keys (see foldedImage); beyond, such a chunk is read again. */
const WINDOW_LINES_CHARS = 32 * 1024 * 1024;
/** Chunks landed but not yet durable before the next one waits. */
const CHUNKS_IN_FLIGHT = 4;

const MSG_BEGIN = 0x42;
const MSG_RELATION = 0x52;
const MSG_MESSAGE = 0x4d;

/** A pgoutput Message ('M', protocol 1) at buf[off]: flags, LSN, prefix, content. */
export function parseLogicalMessage(buf: Buffer, off: number): { transactional: boolean; lsn: bigint; prefix: string; content: Buffer } {
  const transactional = (buf[off + 1] & 1) === 1;
  const lsn = buf.readBigUInt64BE(off + 2);
  const end = buf.indexOf(0, off + 10);
  const prefix = buf.toString("utf8", off + 10, end);
  const length = buf.readUInt32BE(end + 1);
  return { transactional, lsn, prefix, content: buf.subarray(end + 5, end + 5 + length) };
}

/**
 * The raw JSON text of the top-level fields `names` of a landing record (`{"a":1,…}`) or of its
 * column part (`,"a":1,…`), in the order of `names`; undefined where a field is missing. Values
 * are compared as the encoders wrote them, so an int8 beyond 2^53 stays exact.
 */
export function topLevelFields(line: string, names: readonly string[]): (string | undefined)[] {
  const out: (string | undefined)[] = new Array<string | undefined>(names.length).fill(undefined);
  let found = 0;
  let i = line.charCodeAt(0) === 0x7b ? 1 : 0;
  const n = line.length;
  const skipString = (p: number): number => {
    for (p++; p < n; p++) {
      const c = line.charCodeAt(p);
      if (c === 0x5c) p++;
      else if (c === 0x22) return p + 1;
    }
    throw new Error("unterminated string in a landing record");
  };
  while (i < n && found < names.length) {
    let c = line.charCodeAt(i);
    while (c === 0x2c || c === 0x20) c = line.charCodeAt(++i);
    if (c === 0x7d || i >= n) break;
    if (c !== 0x22) throw new Error(`unexpected ${JSON.stringify(line[i])} in a landing record`);
    const keyEnd = skipString(i);
    const raw = line.slice(i, keyEnd);
    const key = raw.includes("\\") ? (JSON.parse(raw) as string) : raw.slice(1, -1);
    i = keyEnd;
    while (line.charCodeAt(i) === 0x20 || line.charCodeAt(i) === 0x3a) i++;
    const start = i;
    c = line.charCodeAt(i);
    if (c === 0x22) i = skipString(i);
    else if (c === 0x7b || c === 0x5b) {
      let depth = 0;
      for (; i < n; i++) {
        const d = line.charCodeAt(i);
        if (d === 0x22) i = skipString(i) - 1;
        else if (d === 0x7b || d === 0x5b) depth++;
        else if (d === 0x7d || d === 0x5d) {
          if (--depth === 0) {
            i++;
            break;
          }
        }
      }
    } else {
      while (i < n && line.charCodeAt(i) !== 0x2c && line.charCodeAt(i) !== 0x7d) i++;
    }
    const k = names.indexOf(key);
    if (k >= 0 && out[k] === undefined) {
      out[k] = line.slice(start, i);
      found++;
    }
  }
  return out;
}

/** What identifies the published columns of a table (names, types, order) and its row filter. */
const columnsSignature = (p: PublishedTable): string => JSON.stringify([p.columns.map((c) => [c.name, c.typeOid, c.typmod, c.generated]), p.rowFilter ?? null, p.partitioned]);

/** txid_current_snapshot() text (xmin:xmax:xip,…) as the 32-bit xids pgoutput's Begin carries. */
function invisibleXids(snapshot: string): number[] {
  const xip = snapshot.split(":")[2] ?? "";
  return xip === "" ? [] : xip.split(",").map((x) => Number(BigInt(x) % 4294967296n));
}

interface ChunkRow {
  key: string;
  /** The record's column part: `,"a":…,"b":…` */
  columns: Buffer;
}

interface ChunkOutcome {
  /** Why the chunk is read again, or undefined. */
  redo?: string;
  /** Rows landed, and the position of the last record the chunk wrote (barrier or row). */
  landed: number;
  last?: { lsn: bigint; seq: number };
}

/** One chunk between its watermarks, as the stream sees it. */
interface ChunkWindow {
  id: string;
  table: TableCopy;
  barrier: boolean;
  /** Low watermark's commit LSN once the stream passed it. */
  low?: bigint;
  barrierAt?: { lsn: bigint; seq: number };
  touched: Set<string>;
  unchanged: Set<string>;
  /** Every streamed record line of the window per key, for keys whose changes lack TOASTed values (see foldedImage). */
  lines: Map<string, string[]>;
  /** Characters held in `lines`; past WINDOW_LINES_CHARS they are no longer kept (`overflow`). */
  lineChars: number;
  overflow: boolean;
  truncated: boolean;
  redo?: string;
  /** The table's columns may have changed: read what it publishes again before the next chunk. */
  reprepare?: boolean;
  /** Set before the high watermark is written. */
  rows?: ChunkRow[];
  xip?: number[];
  resolve(outcome: ChunkOutcome): void;
}

/** What a table's chunks need, read once per table. */
interface TableCopy {
  label: string;
  name: TableName;
  relid: number;
  published: PublishedTable;
  columns: SnapshotColumn[];
  copyColumns: CopyColumn[];
  fixedBytes: number;
  key: string[];
  /** `format_type` of each key column, for the literals of the next chunk's lower bound. */
  keyTypes: string[];
  buffer: TableBuffer;
  schema: ReturnType<TypeCatalog["tableSchema"]>;
}

/** The table's name cannot be snapshotted incrementally (not captured, no primary key, …): one message with the fix. */
export class IncrementalSnapshotRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IncrementalSnapshotRefused";
  }
}

export interface IncrementalOptions {
  config: EngineConfig;
  state: EngineState;
  batcher: Batcher;
  catalog: TypeCatalog;
  /** The captured tables, or undefined for whatever the publication publishes. */
  captured: Set<string> | undefined;
  logger: Logger;
  metrics?: EngineMetrics;
  /** The session's scope: aborting it ends the runner. */
  signal: AbortSignal;
  /** Rows per chunk. */
  chunkSize: number;
  /** A request taken from the stream is durable in the state: confirmation may pass it now. */
  onPersisted(): void;
  /** The runner failed: the session ends (and is retried from the durable progress). */
  fail(err: unknown): void;
}

export class IncrementalSnapshots {
  private readonly runId = randomUUID().slice(0, 8);
  private chunkIds = 0;
  /** Commit LSN and time (ms) of the transaction being decoded, from its Begin. */
  private txLsn = 0n;
  private txMs = 0;
  private readonly recentXids = new Map<number, bigint>();
  private window: ChunkWindow | undefined;
  /** Commit LSN of the oldest request taken from the stream whose state is not durable yet. */
  private held: bigint | undefined;
  /** State writes for requests (or comebacks) not durable yet. */
  private persisting = 0;
  private wake: (() => void) | undefined;
  /** Chunks landed, waiting for their records to be durable (in order). */
  private readonly landing: { table: string; progress: IncrementalTableProgress; generation: number; chunks: number; lastKey: string[] | null; rows: number; last?: { lsn: bigint; seq: number }; durable: Promise<void>; resolve(): void }[] = [];
  /** Bumped when the table in progress must start over (it came back): older chunks' progress no longer counts. */
  private generation = 0;
  /** The table being copied, and whether it must start over. */
  private active: { table: string; restart: boolean } | undefined;
  private client: Client | undefined;

  constructor(private readonly options: IncrementalOptions) {}

  /** The commit LSN confirmation must stay below (a request not durable yet), or undefined. */
  get heldLsn(): bigint | undefined {
    return this.held;
  }

  /** Sees every pgoutput message before the decoder does, in stream order. */
  observe(buf: Buffer, off: number): void {
    const type = buf[off];
    if (type === MSG_BEGIN) {
      this.txLsn = buf.readBigUInt64BE(off + 1);
      this.txMs = Math.floor(Number(buf.readBigInt64BE(off + 9)) / 1000) + PG_EPOCH_MS;
      const xid = buf.readUInt32BE(off + 17);
      this.recentXids.delete(xid);
      this.recentXids.set(xid, this.txLsn);
      if (this.recentXids.size > RECENT_XIDS) this.recentXids.delete(this.recentXids.keys().next().value!);
    } else if (type === MSG_RELATION) {
      const w = this.window;
      if (w?.low !== undefined && buf.readUInt32BE(off + 1) === w.table.relid) {
        w.redo ??= "the table's relation changed inside the chunk's window";
        w.reprepare = true;
      }
    } else if (type === MSG_MESSAGE) {
      const message = parseLogicalMessage(buf, off);
      if (!message.transactional) return;
      if (message.prefix === WATERMARK_PREFIX) this.watermark(message.content);
      else if (message.prefix === REQUEST_PREFIX) this.request(message.content);
    }
  }

  /** After a flush round: chunks whose records are all durable move the progress in the state. */
  onDurable(): void {
    const { state } = this.options;
    let moved = false;
    while (this.landing.length > 0) {
      const next = this.landing[0];
      const hw = state.highWater.get(next.table);
      if (next.last && (!hw || hw.lsn < next.last.lsn || (hw.lsn === next.last.lsn && hw.seq < next.last.seq))) break;
      this.landing.shift();
      if (next.generation === this.generation) {
        next.progress.chunks = next.chunks;
        next.progress.lastKey = next.lastKey;
        next.progress.rows = next.rows;
        this.options.metrics?.incrementalProgress?.(next.table, next.chunks, next.rows);
        moved = true;
      }
      next.resolve();
    }
    // A round still to come writes the progress with its state; an idle batcher gets a write of its own.
    if (moved && this.options.batcher.idle) state.saveAgain().catch((err: unknown) => this.options.fail(err));
  }

  /** Works the queue of tables in the state until the session ends. */
  async run(): Promise<void> {
    const { signal, state, logger } = this.options;
    try {
      while (!signal.aborted) {
        const entry = state.incremental?.tables[0];
        if (entry === undefined) {
          await new Promise<void>((resolve) => {
            this.wake = resolve;
            if (signal.aborted) resolve();
            else signal.addEventListener("abort", () => resolve(), { once: true });
          });
          this.wake = undefined;
          continue;
        }
        try {
          const captured = this.options.captured;
          // Queued under an earlier TABLE_INCLUDE: its changes no longer stream, so chunks of it would land rows that then go stale.
          if (captured !== undefined && !captured.has(entry.table)) logger.warn({ table: entry.table, chunks: entry.chunks }, `${entry.table} is no longer captured (TABLE_INCLUDE); dropping its incremental snapshot`);
          else await this.snapshotTable(entry);
        } catch (err) {
          if (!(err instanceof IncrementalSnapshotRefused)) throw err;
          logger.error({ table: entry.table }, `incremental snapshot of ${entry.table} refused: ${err.message}`);
        }
        state.incremental!.tables = state.incremental!.tables.filter((t) => t !== entry);
        await state.saveAgain();
        if (entry.reason === "initial" && !state.incremental!.tables.some((t) => t.reason === "initial")) {
          logger.info({ since: entry.since }, "initial snapshot in chunks done (SNAPSHOT_MODE=incremental): every captured table with a primary key is copied");
        }
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    } finally {
      if (this.window) this.window.table.buffer.watch = undefined;
      this.window = undefined;
      await this.client?.end().catch(() => undefined);
    }
  }

  /** Queues tables (at the end, each once) — what a request does; for tests and the engine's own use. */
  enqueue(tables: string[], reason: string, barrier: boolean): void {
    const state = this.options.state;
    state.incremental ??= { tables: [] };
    for (const table of tables) {
      const queued = state.incremental.tables.find((t) => t.table === table);
      if (queued) {
        // A table that came back starts over behind a barrier, also when it was being copied.
        if (barrier) {
          Object.assign(queued, { barrier: true, chunks: 0, lastKey: null, rows: 0, reason });
          if (this.active?.table === table) {
            this.active.restart = true;
            this.generation++;
          }
        }
        continue;
      }
      state.incremental.tables.push({ table, chunks: 0, lastKey: null, rows: 0, barrier, reason, since: new Date().toISOString() });
    }
    this.wake?.();
  }

  /**
   * The decoder met a captured table that came back (source/coverage.ts) in the transaction
   * committing at `commitLsn`: its new relation is covered from there, and it is snapshotted
   * incrementally behind a barrier at its first chunk's low watermark, while streaming goes on.
   */
  comeback(table: string, oid: number, detail: string, commitLsn: bigint): boolean {
    const { state, logger, catalog } = this.options;
    // Chunks need a primary key: a table without one is copied from a temporary slot as before.
    if ((catalog.primaryKey(oid) ?? []).length === 0) return false;
    logger.info({ table, oid }, `${table} ${detail}; taking an incremental snapshot of it behind a re-snapshot barrier while streaming on`);
    markCovered(state.snapshot!, [table], new Map([[table, oid]]), formatLsn(commitLsn));
    this.enqueue([table], "comeback", true);
    this.persist(commitLsn);
    return true;
  }

  /** Writes the state now; confirmation stays below `lsn` until it is durable. */
  private persist(lsn: bigint): void {
    this.held ??= lsn;
    this.persisting++;
    this.options.state.saveAgain().then(
      () => {
        // Saves run in order: once the last one is durable, so is everything taken before it.
        if (--this.persisting === 0) this.held = undefined;
        this.options.onPersisted();
      },
      (err: unknown) => this.options.fail(err),
    );
  }

  private request(content: Buffer): void {
    const { state, logger } = this.options;
    const upTo = state.incremental?.requestsUpTo;
    if (upTo !== undefined && this.txLsn <= parseLsn(upTo)) return; // a replay of a request taken before
    let tables: string[];
    try {
      const parsed = JSON.parse(content.toString("utf8")) as { tables?: unknown };
      if (!Array.isArray(parsed.tables) || parsed.tables.some((t) => typeof t !== "string")) throw new Error('expected {"tables":["schema.table", …]}');
      tables = parsed.tables as string[];
    } catch (err) {
      logger.error({ content: content.toString("utf8").slice(0, 200) }, `ignoring a malformed ${REQUEST_PREFIX} message: ${(err as Error).message}`);
      return;
    }
    const captured = this.options.captured;
    const refused = captured ? tables.filter((t) => !captured.has(t)) : [];
    if (refused.length > 0) logger.error({ tables: refused }, `incremental snapshot refused: ${refused.join(", ")} ${refused.length === 1 ? "is" : "are"} not captured (TABLE_INCLUDE); add ${refused.length === 1 ? "it" : "them"} to TABLE_INCLUDE and restart`);
    const accepted = tables.filter((t) => !refused.includes(t));
    this.enqueue(accepted, "request", false);
    state.incremental!.requestsUpTo = formatLsn(this.txLsn);
    if (accepted.length > 0) logger.info({ tables: accepted, lsn: formatLsn(this.txLsn) }, "incremental snapshot requested");
    this.persist(this.txLsn);
  }

  private watermark(content: Buffer): void {
    const w = this.window;
    let mark: { id?: string; mark?: string };
    try {
      mark = JSON.parse(content.toString("utf8")) as typeof mark;
    } catch {
      return;
    }
    if (w === undefined || mark.id !== w.id) return; // another session's or instance's watermark (a replay)
    const { batcher } = this.options;
    const buffer = w.table.buffer;
    if (mark.mark === "low") {
      w.low = this.txLsn;
      if (w.barrier) {
        // The re-snapshot barrier at (L, 0): every row landed before it is gone; the chunks that
        // follow and the changes streamed from L on rebuild the table.
        batcher.schema(buffer, w.table.schema);
        const partition = new PartitionClock().of(this.txMs);
        batcher.add(buffer, `{"__op":"b","__deleted":"false","__lsn":${this.txLsn},"__seq":0,"__ts_ms":${this.txMs}}`, this.txLsn, 0, partition);
        w.barrierAt = { lsn: this.txLsn, seq: 0 };
      }
      buffer.watch = (line) => this.touched(w, line);
      return;
    }
    if (mark.mark !== "high" || w.low === undefined) return;
    buffer.watch = undefined;
    this.window = undefined;
    const low = w.low;
    const missed = w.xip?.find((xid) => {
      const committed = this.recentXids.get(xid);
      return committed !== undefined && committed < low;
    });
    if (w.redo === undefined && missed !== undefined) w.redo = `transaction ${missed} committed before the low watermark but was not yet visible to the chunk's read`;
    const rows: ChunkRow[] = [];
    if (!w.truncated && w.redo === undefined) {
      for (const row of w.rows!) {
        if (!w.touched.has(row.key)) rows.push(row);
        else if (w.unchanged.has(row.key)) {
          // Dropping it would leave the columns its changes did not send to a row the reader may
          // not have: land the row as it is at H instead, folded from the chunk and those changes.
          const folded = this.foldedImage(w, row);
          if (folded === null) continue; // deleted by the end of the window
          if (folded === undefined) {
            w.redo = "a streamed change of one of its keys lacks unchanged TOASTed values that the window cannot supply";
            break;
          }
          rows.push(folded);
        }
      }
    }
    if (w.redo !== undefined) {
      w.resolve({ redo: w.redo, landed: 0, last: w.barrierAt });
      return;
    }
    const h = this.txLsn;
    if (rows.length > 0) {
      batcher.schema(buffer, w.table.schema);
      const partition = new PartitionClock().of(this.txMs);
      const head = Buffer.from(`{"__op":"r","__deleted":"false","__lsn":${h},"__seq":`);
      const ts = Buffer.from(`,"__ts_ms":${this.txMs}`);
      let seq = 0;
      for (const row of rows) {
        seq++;
        const size = head.length + 12 + ts.length + row.columns.length + 2;
        batcher.begin(buffer, h, seq, partition, size);
        const out = buffer.reserve(size);
        const from = buffer.pos;
        let pos = put(out, from, head);
        pos = putInt(out, pos, seq);
        pos = put(out, pos, ts);
        pos = put(out, pos, row.columns);
        out[pos++] = 0x7d;
        out[pos++] = 0x0a;
        buffer.pos = pos;
        batcher.written(buffer, pos - from);
      }
      w.resolve({ landed: rows.length, last: { lsn: h, seq } });
      return;
    }
    w.resolve({ landed: 0, last: w.barrierAt });
  }

  private touched(w: ChunkWindow, line: Buffer): void {
    const op = line[9];
    if (op === 0x74 /* t */) {
      w.truncated = true;
      return;
    }
    const text = line.toString("utf8");
    const values = topLevelFields(text, w.table.key);
    if (values.some((v) => v === undefined)) {
      w.redo ??= "a streamed change of the table does not carry its primary key (REPLICA IDENTITY USING INDEX?)";
      return;
    }
    const key = values.join("\u0000");
    w.touched.add(key);
    if (text.includes(',"__unchanged":[')) w.unchanged.add(key);
    if (!w.overflow) {
      w.lineChars += text.length;
      if (w.lineChars > WINDOW_LINES_CHARS) {
        w.overflow = true;
        w.lines.clear();
      } else {
        const seen = w.lines.get(key);
        if (seen) seen.push(text);
        else w.lines.set(key, [text]);
      }
    }
  }

  /**
   * The row of `row`'s key as of the high watermark: the chunk's row (read inside the window),
   * then every streamed record of the key in the window applied in order. A column no record of
   * the window carries (an unchanged TOASTed value) did not change in the window, so the chunk's
   * value is its value at H. null: deleted by then; undefined: not determinable (an insert or key
   * change whose record lacks values, or the window's records were too many to keep).
   */
  private foldedImage(w: ChunkWindow, row: ChunkRow): ChunkRow | null | undefined {
    const lines = w.lines.get(row.key);
    if (w.overflow || lines === undefined) return undefined;
    const names = w.table.columns.map((c) => c.name);
    let image: (string | undefined)[] | null = topLevelFields(row.columns.toString("utf8"), names);
    for (const line of lines) {
      const op = line.charCodeAt(9);
      if (op === 0x64 /* d */) {
        image = null;
        continue;
      }
      const values = topLevelFields(line, names);
      if (image === null) {
        if (values.some((v) => v === undefined)) return undefined;
        image = values;
      } else image = image.map((v, i) => values[i] ?? v);
    }
    if (image === null) return null;
    if (image.some((v) => v === undefined)) return undefined;
    const parts: Buffer[] = [];
    image.forEach((v, i) => parts.push(w.table.copyColumns[i].prefix, Buffer.from(v!)));
    return { key: row.key, columns: Buffer.concat(parts) };
  }

  /** `promise`, or a rejection once the session ends (nothing then settles a window or a chunk's durability). */
  private untilAborted<T>(promise: Promise<T>): Promise<T> {
    const { signal } = this.options;
    const interrupted = () => new Error("incremental snapshot interrupted: the session ended");
    if (signal.aborted) return Promise.reject(interrupted());
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(interrupted());
      signal.addEventListener("abort", onAbort, { once: true });
      promise.then(
        (v) => {
          signal.removeEventListener("abort", onAbort);
          resolve(v);
        },
        (err: unknown) => {
          signal.removeEventListener("abort", onAbort);
          reject(err as Error);
        },
      );
    });
  }

  private async connection(): Promise<Client> {
    if (this.client) return this.client;
    const client = await connect(this.options.config, "cdc-engine incremental snapshot");
    this.client = client;
    // A chunk waits for its high watermark to reach the stream, and the walsender sends only WAL
    // that is flushed: under synchronous_commit = off that waits for the WAL writer (wal_writer_delay,
    // 200 ms by default) at every chunk. The watermarks' commits are flushed at once instead
    // (locally: they need no standby's acknowledgement, they carry no data).
    await client.query("SET synchronous_commit = local");
    const onAbort = () => (connectionOf(client).stream as unknown as { destroy(err?: Error): void }).destroy();
    this.options.signal.addEventListener("abort", onAbort, { once: true });
    return client;
  }

  private async snapshotTable(entry: IncrementalTableProgress): Promise<void> {
    const { logger, signal, chunkSize } = this.options;
    const client = await this.connection();
    this.active = { table: entry.table, restart: false };
    let table = await this.prepareTable(client, entry.table);
    const started = Date.now();
    logger.info({ table: entry.table, chunks: entry.chunks, rows: entry.rows, barrier: entry.barrier, chunkSize }, entry.chunks > 0 ? "resuming the incremental snapshot of table" : "starting the incremental snapshot of table");
    let chunks = entry.chunks;
    let lastKey = entry.lastKey;
    let rows = entry.rows;
    let redone = 0;
    let reprepare = false;
    /** The barrier this session landed for the table: one per snapshot, also when its first chunk is read again. */
    let barrierAt: { lsn: bigint; seq: number } | undefined;
    let finished = false;
    for (;;) {
      if (signal.aborted) throw new Error("incremental snapshot interrupted: the session ended");
      if (!this.active.restart && finished) break;
      if (this.active.restart) {
        // It came back (again) while being copied: start over, behind a barrier, from its new relation.
        this.active.restart = false;
        ({ chunks, lastKey, rows } = entry);
        finished = false;
        barrierAt = undefined;
        table = await this.prepareTable(client, entry.table);
        logger.info({ table: entry.table }, "the table came back while it was being copied incrementally; starting over");
      }
      // Bounded: chunks landed but not durable yet (the batcher's backpressure bounds them too).
      // Their rows are sealed into an object at once when waited for, not after BATCH_MAX_WAIT_MS.
      if (this.landing.length >= CHUNKS_IN_FLIGHT) this.options.batcher.sealNow(table.buffer);
      while (this.landing.length >= CHUNKS_IN_FLIGHT) await this.untilAborted(this.landing[0].durable);
      if (reprepare) {
        table = await this.prepareTable(client, entry.table);
        reprepare = false;
      }
      const id = `${this.runId}.${++this.chunkIds}`;
      const generation = this.generation;
      const outcome = new Promise<ChunkOutcome>((resolve) => {
        this.window = { id, table, barrier: entry.barrier && chunks === 0 && barrierAt === undefined, touched: new Set(), unchanged: new Set(), lines: new Map(), lineChars: 0, overflow: false, truncated: false, resolve };
      });
      const w = this.window!;
      await client.query("SELECT pg_logical_emit_message(true, $1, $2)", [WATERMARK_PREFIX, JSON.stringify({ id, mark: "low" })]);
      await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      let read: { rows: ChunkRow[]; lastKey: string[] | null };
      try {
        const { rows: snap } = await client.query<{ s: string }>("SELECT txid_current_snapshot()::text AS s");
        w.xip = invisibleXids(snap[0].s);
        // What the table publishes, as of the chunk's own snapshot: a column added or dropped
        // since the table was prepared must not be left out of (or fail) the chunk's rows.
        const now = await publishedTable(client, table.name, this.options.config.pg.publication);
        if (columnsSignature(now) !== columnsSignature(table.published)) {
          w.redo = "the table's published columns changed";
          reprepare = true;
          read = { rows: [], lastKey: null };
        } else read = await this.readChunk(client, table, lastKey);
        await client.query("COMMIT");
      } catch (err) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw err;
      }
      w.rows = read.rows;
      // The high watermark commits with a lock that keeps DDL out until it does, after a check
      // that the columns are still those the chunk read: its rows hold what the table has at H.
      await client.query("BEGIN");
      try {
        await client.query(`LOCK TABLE ${table.published.partitioned ? "" : "ONLY "}${ident(table.name.schema)}.${ident(table.name.table)} IN ACCESS SHARE MODE`);
        if (w.redo === undefined && columnsSignature(await publishedTable(client, table.name, this.options.config.pg.publication)) !== columnsSignature(table.published)) {
          w.redo = "the table's published columns changed while the chunk was read";
          w.reprepare = true;
        }
        await client.query("SELECT pg_logical_emit_message(true, $1, $2)", [WATERMARK_PREFIX, JSON.stringify({ id, mark: "high" })]);
        await client.query("COMMIT");
      } catch (err) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw err;
      }
      const result = await this.untilAborted(outcome);
      if (signal.aborted) throw new Error("incremental snapshot interrupted: the session ended");
      barrierAt ??= w.barrierAt;
      if (result.redo !== undefined) {
        redone++;
        if (w.reprepare) reprepare = true;
        // (A barrier it landed stays, and the chunk read again follows it.)
        logger.info({ table: entry.table, chunk: chunks + 1, reason: result.redo }, "reading the chunk again");
        continue;
      }
      chunks++;
      rows += result.landed;
      if (read.lastKey !== null) lastKey = read.lastKey;
      finished = read.rows.length < chunkSize;
      let resolve = () => {};
      const durable = new Promise<void>((r) => (resolve = r));
      // The first chunk counts once its barrier is durable too (its rows, if any, are after it).
      const last = result.last ?? (chunks === 1 ? barrierAt : undefined);
      this.landing.push({ table: entry.table, progress: entry, generation, chunks, lastKey, rows, last, durable, resolve });
      // A chunk with nothing to wait for (all its rows dropped) counts at once.
      this.onDurable();
      if (finished) {
        this.options.batcher.sealNow(table.buffer);
        await this.untilAborted(durable);
      }
      else if ((chunks & 63) === 0) logger.info({ table: entry.table, chunks, rows }, "incremental snapshot progress");
    }
    // The last chunk is durable (and with it every chunk before): nothing of this table is left.
    this.onDurable();
    this.active = undefined;
    logger.info({ table: entry.table, chunks, rows, redone, ms: Date.now() - started }, "incremental snapshot of table done");
  }

  /** Reads the next chunk (after `lastKey`) inside the caller's transaction, with its last key. */
  private async readChunk(client: Client, table: TableCopy, lastKey: string[] | null): Promise<{ rows: ChunkRow[]; lastKey: string[] | null }> {
    const { chunkSize, batcher } = this.options;
    const keys = table.key.map(ident).join(", ");
    const conditions: string[] = [];
    if (lastKey !== null) conditions.push(`(${keys}) > (${lastKey.map((v, i) => `${client.escapeLiteral(v)}::${table.keyTypes[i]}`).join(", ")})`);
    if (table.published.rowFilter) conditions.push(`(${table.published.rowFilter})`);
    const from = `${table.published.partitioned ? "" : "ONLY "}${ident(table.name.schema)}.${ident(table.name.table)}${conditions.length > 0 ? ` WHERE ${conditions.join(" AND ")}` : ""}`;
    const list = table.columns.map((c) => ident(c.name)).join(", ");
    const rows: ChunkRow[] = [];
    const limit = batcher.maxRecordBytes;
    const sizes: number[] = [];
    let scratch = Buffer.allocUnsafe(64 * 1024);
    let failure: unknown;
    let carry: Buffer | undefined;
    const row = (src: Buffer, start: number, end: number) => {
      let size = worstCase(end - start, table.fixedBytes);
      if (size > limit) {
        size = table.fixedBytes + copyRowBytes(src, start, end, table.copyColumns, sizes);
        if (size > limit) {
          const largest = largestColumn(sizes);
          const column = table.columns[largest.index]?.name;
          throw new RecordTooLargeError(table.label, column, size, limit, `a row of ${table.label} in an incremental snapshot needs a landing record of ${size} bytes (column ${JSON.stringify(column)}: ${largest.bytes} bytes)`, true);
        }
      }
      if (scratch.length < size) scratch = Buffer.allocUnsafe(size);
      const n = transcodeRow(src, start, end, table.copyColumns, scratch, 0);
      const columns = Buffer.from(scratch.subarray(0, n));
      const values = topLevelFields(columns.toString("utf8"), table.key);
      rows.push({ key: values.join("\u0000"), columns });
    };
    const connection = connectionOf(client);
    const listener = (msg: { chunk: Buffer }) => {
      if (failure !== undefined) return;
      try {
        let chunk = msg.chunk;
        if (carry !== undefined) {
          chunk = Buffer.concat([carry, chunk]);
          carry = undefined;
        }
        let start = 0;
        for (let nl = chunk.indexOf(10, start); nl >= 0; nl = chunk.indexOf(10, start)) {
          row(chunk, start, nl);
          start = nl + 1;
        }
        if (start < chunk.length) carry = Buffer.from(chunk.subarray(start));
      } catch (err) {
        failure = err;
        (connection.stream as unknown as { destroy(err?: Error): void }).destroy(err as Error);
      }
    };
    connection.on("copyData", listener);
    try {
      await client.query(`COPY (SELECT ${list} FROM ${from} ORDER BY ${keys} LIMIT ${chunkSize}) TO STDOUT`).catch((err: unknown) => {
        throw failure ?? err;
      });
      if (failure !== undefined) throw failure;
    } finally {
      connection.removeListener("copyData", listener);
    }
    if (rows.length === 0) return { rows, lastKey: null };
    const last = await client.query<string[]>({
      // Aliased: ORDER BY a name of the select list would sort by the text, not by the key.
      text: `SELECT ${table.key.map((k, i) => `${ident(k)}::text AS "key ${i}"`).join(", ")} FROM ${from} ORDER BY ${keys} OFFSET ${rows.length - 1} LIMIT 1`,
      rowMode: "array",
    });
    return { rows, lastKey: last.rows[0] as unknown as string[] };
  }

  /** What the table publishes and its primary key, checked once per table. */
  private async prepareTable(client: Client, label: string): Promise<TableCopy> {
    const { catalog, batcher, config } = this.options;
    const dot = label.indexOf(".");
    const name = { schema: label.slice(0, dot), table: label.slice(dot + 1) };
    const qualified = `${ident(name.schema)}.${ident(name.table)}`;
    const { rows: found } = await client.query<{ relid: number | null }>("SELECT to_regclass($1)::oid::int AS relid", [qualified]);
    const relid = found[0]?.relid;
    if (relid === null || relid === undefined) throw new IncrementalSnapshotRefused(`table ${label} does not exist`);
    const { rows: pub } = await client.query("SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3", [config.pg.publication, name.schema, name.table]);
    if (pub.length === 0) throw new IncrementalSnapshotRefused(`publication ${config.pg.publication} does not publish ${label}; add it (ALTER PUBLICATION ${ident(config.pg.publication)} ADD TABLE ${qualified};) and request the snapshot again`);
    const published = await publishedTable(client, name, config.pg.publication);
    const columns = published.columns;
    const missing = catalog.missingTypes(columns.map((c) => c.typeOid));
    if (missing.length > 0) await catalog.loadTypes(client, missing);
    const details = await catalog.loadTableDetails(client, relid, `incremental ${relid} ${this.runId} ${this.chunkIds}`, columns);
    const key = details.primaryKey;
    if (key.length === 0) {
      throw new IncrementalSnapshotRefused(
        `${label} has no primary key, which incremental snapshots read it in chunks by; add one (ALTER TABLE ${qualified} ADD PRIMARY KEY (…);), or take a full snapshot instead: drop the slot and restart the engine (SNAPSHOT_MODE=initial)`,
      );
    }
    const absent = key.filter((k) => !columns.some((c) => c.name === k));
    if (absent.length > 0) throw new IncrementalSnapshotRefused(`the publication's column list of ${label} leaves out primary key column(s) ${absent.join(", ")}; publish them`);
    const copyColumns: CopyColumn[] = columns.map((c) => ({
      prefix: Buffer.from("," + JSON.stringify(c.name) + ":"),
      kind: copyKindOf(catalog.shape(c.typeOid) ?? { kind: "scalar", scalar: "string" }),
      encode: catalog.encoder(c.typeOid) ?? JSON.stringify,
    }));
    const fixedBytes = 128 + copyColumns.reduce((n, c) => n + c.prefix.length, 0);
    const keyTypes = key.map((k) => details.columns.get(k)!.pgType);
    return { label, name, relid, published, columns, copyColumns, fixedBytes, key, keyTypes, buffer: batcher.buffer(label), schema: catalog.tableSchema(label, columns, details) };
  }
}
