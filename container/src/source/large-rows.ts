/**
 * Rows too large to land, and the large protocol messages that carry them.
 *
 * Every record is built in memory (the whole row arrives as one CopyData message, and its landing
 * record is one buffer handed to the sink), so the engine needs about the row's size twice or three
 * times over. MAX_RECORD_BYTES bounds that: a record larger than it stops the engine once, with a
 * RecordTooLargeError naming the table, the column, the size and the setting, before anything of
 * it is written or confirmed.
 *
 * node-postgres assembles a message that spans socket reads in a buffer it doubles (a 200 MB
 * message: 256 MB plus the 128 MB it copies from), and only then can anyone look at it. The
 * MessageSizeGate sits in front of its parser on the engine's connections: a large CopyData
 * message is gathered into one buffer of its exact size and handed over whole (the parser then
 * copies nothing), and one that is certain to exceed the limit is not gathered at all: its bytes
 * are only skimmed for the column that makes it large, and the connection fails with that error.
 */
import type { Client } from "pg";
import { hasTransientReads } from "./connection";

/** The engine's one setting for this (docs/engine.md). */
export const MAX_RECORD_SETTING = "MAX_RECORD_BYTES";

/**
 * A landing record never needs fewer bytes than 1/2 of the message that carries its row (the worst
 * ratio: a json string full of escaped backslashes, which COPY doubles again), so a message larger
 * than this is refused unread.
 */
export const refuseMessagesAbove = (maxRecordBytes: number): number => 2 * maxRecordBytes + 64 * 1024;

/** Messages from this size on are gathered by the gate (smaller ones pass untouched). */
const GATHER_FROM = 1024 * 1024;

/**
 * Rows of this many value bytes and more are sized exactly before they are written (smaller ones
 * get a quick worst-case bound: the hot path).
 */
export const LARGE_ROW_BYTES = 256 * 1024;

/**
 * Whether a CopyData payload was gathered by the gate into a buffer of its own, which nobody
 * reuses (pg's parser may reuse its buffer for later reads: smaller payloads must be copied to be kept).
 */
export const isGathered = (payload: Buffer): boolean => payload.length + 5 >= GATHER_FROM;

/** The error for a snapshot row that is too large, read as it streams by (a message refused unread). */
export function refusedCopyRow(table: string, columns: string[], maxRecordBytes: number): MessageSkimmer {
  const skimmer = new CopyRowSkimmer();
  const stopAbove = refuseMessagesAbove(maxRecordBytes);
  const verdict = () => {
    const largest = largestColumn(skimmer.sizes);
    const column = columns[largest.index];
    const least = Math.ceil(largest.bytes / 2);
    return new RecordTooLargeError(table, column, least, maxRecordBytes, `a row of ${table} in the snapshot has column ${JSON.stringify(column)} with ${largest.bytes} bytes as COPY sends it, so its landing record needs at least ${least} bytes`, true);
  };
  return {
    feed(piece) {
      skimmer.feed(piece);
      return skimmer.currentAbove(stopAbove) ? verdict() : undefined;
    },
    finish: verdict,
  };
}

export class RecordTooLargeError extends Error {
  constructor(
    readonly table: string,
    readonly column: string | undefined,
    /** The record's bytes (or, for a message refused unread, the column's bytes as PostgreSQL sent them). */
    readonly bytes: number,
    readonly limit: number,
    /** What is too large, in words (the message adds the fix). */
    readonly detail: string,
    readonly snapshot: boolean,
  ) {
    const fix = snapshot
      ? "the snapshot is taken again at the next start"
      : "then drop the slot (SELECT pg_drop_replication_slot('<PG_SLOT>');) so that the engine snapshots again: the slot still holds this change, decoded with the old column list";
    super(
      `record too large: ${detail}, but ${MAX_RECORD_SETTING}=${limit}; nothing from this ${snapshot ? "snapshot row" : "change"} on was written or confirmed. ` +
        `Fix: raise ${MAX_RECORD_SETTING} to at least ${bytes} and give the engine memory for it (about 2.5 × ${MAX_RECORD_SETTING} plus 100 MiB; see docs/engine.md), ` +
        `or leave ${column === undefined ? "the large column" : `column ${JSON.stringify(column)}`} out of the publication with a column list (PostgreSQL 15+: BEGIN; ALTER PUBLICATION <PG_PUBLICATION> DROP TABLE ${table}; ALTER PUBLICATION <PG_PUBLICATION> ADD TABLE ${table} (<the other columns>); COMMIT;); ${fix}`,
    );
    this.name = "RecordTooLargeError";
  }
}

/** The column that makes a row large: its index and bytes. */
export function largestColumn(sizes: ArrayLike<number>): { index: number; bytes: number } {
  let index = 0;
  for (let i = 1; i < sizes.length; i++) if (sizes[i] > sizes[index]) index = i;
  return { index, bytes: sizes[index] ?? 0 };
}

/**
 * Reads the bytes of a refused message as they stream by and says what to do: an Error stops the
 * connection with it; null drops the message unread (a change of a table that is not captured).
 */
export interface MessageSkimmer {
  /** The next bytes of the message body; undefined while the verdict is not known yet. */
  feed(piece: Buffer): Error | null | undefined;
  /** The message ended without an earlier verdict. */
  finish(): Error | null;
}

interface PgStream {
  listeners(event: "data"): ((chunk: Buffer) => void)[];
  removeListener(event: "data", listener: (chunk: Buffer) => void): void;
  on(event: "data", listener: (chunk: Buffer) => void): void;
  destroy(err?: Error): void;
}

/**
 * Takes the payload bytes of CopyData messages straight from the socket, in order, in pieces that
 * need not follow message boundaries (a COPY's rows are newline-terminated: the pieces joined are
 * the COPY stream). The pieces are views of the socket's buffer: copied before `write` returns.
 */
export interface CopyDataTap {
  write(src: Buffer, from: number, to: number): void;
}

export class MessageSizeGate {
  /** Describes a refused message; set by whoever knows what the connection is reading. */
  skimmer: (() => MessageSkimmer) | undefined;
  /**
   * When set, CopyData payloads go straight here instead of through pg-protocol's parser (which
   * still gets every other message, in order): the replication stream's hot path, without a
   * parsed message object, two events and a Buffer view per change. A payload is buf[start, end)
   * of the socket's chunk (or of its own gathered buffer, see isGathered), never of memory the
   * parser reuses; on a connection with transient reads (a snapshot's, see connect's
   * reuseReads) the socket's chunk is its one reused read buffer, so a payload kept beyond the
   * call must be copied (so must the tap's).
   */
  copyData: ((buf: Buffer, start: number, end: number) => void) | undefined;
  /** The message being gathered goes to copyData (not to the parser) when complete. */
  private gatheringDirect = false;
  /**
   * While set (a COPY … TO STDOUT is running), CopyData messages below the gathering size go to
   * the tap instead of pg's parser: no message object, no event per row. Larger ones are still
   * gathered and reach pg's 'copyData' event, in order with the tapped bytes.
   */
  tap: CopyDataTap | undefined;
  /** Bytes of the current tapped CopyData payload still to come. */
  private tapLeft = 0;
  /** Hands bytes of the socket's chunk to pg's parser (copied first where the chunk is reused). */
  private readonly forward: (chunk: Buffer) => void;
  /** Hands a buffer of the gate's own (a gathered message) to pg's parser. */
  private readonly forwardOwned: (chunk: Buffer) => void;
  private held: Buffer | undefined;
  /** Bytes of the current message still to pass through untouched. */
  private remaining = 0;
  private gathering: Buffer | undefined;
  private gathered = 0;
  private skimming: MessageSkimmer | undefined;
  private skipLeft = 0;
  private failed = false;

  constructor(
    private readonly stream: PgStream,
    private readonly refuseAbove: number,
  ) {
    // pg-protocol's parser is the only 'data' listener right after connect(); it now hears from the gate.
    const parsers = stream.listeners("data");
    for (const listener of parsers) stream.removeListener("data", listener);
    this.forwardOwned = (chunk) => {
      for (const listener of parsers) listener(chunk);
    };
    if (hasTransientReads(stream)) {
      // Reads are views of the socket's one reused buffer: whatever outlives the call is copied
      // (pg's parser keeps a partial message; gathered and held bytes are copies already).
      this.forward = (chunk) => {
        const copy = Buffer.from(chunk);
        for (const listener of parsers) listener(copy);
      };
      stream.readTransient = (view) => this.feed(view);
    } else {
      this.forward = this.forwardOwned;
      stream.on("data", (chunk) => this.feed(chunk));
    }
  }

  private feed(input: Buffer): void {
    if (this.failed) return;
    let chunk = input;
    if (this.held !== undefined) {
      chunk = Buffer.concat([this.held, input]);
      this.held = undefined;
    }
    const n = chunk.length;
    let i = 0;
    let passFrom = 0;
    while (i < n) {
      if (this.gathering !== undefined) {
        const k = Math.min(n - i, this.gathering.length - this.gathered);
        chunk.copy(this.gathering, this.gathered, i, i + k);
        this.gathered += k;
        i += k;
        passFrom = i;
        if (this.gathered === this.gathering.length) {
          const whole = this.gathering;
          this.gathering = undefined;
          if (this.gatheringDirect && this.copyData !== undefined) this.copyData(whole, 5, whole.length);
          else this.forwardOwned(whole);
          if (this.failed) return;
        }
        continue;
      }
      if (this.skipLeft > 0) {
        // A refused message: skimmed until there is a verdict, then dropped to its end.
        const k = Math.min(n - i, this.skipLeft);
        const piece = chunk.subarray(i, i + k);
        this.skipLeft -= k;
        i += k;
        passFrom = i;
        if (this.skimming !== undefined) {
          let verdict = this.skimming.feed(piece);
          if (verdict === undefined && this.skipLeft === 0) verdict = this.skimming.finish();
          if (verdict instanceof Error) return this.fail(verdict);
          if (verdict === null) this.skimming = undefined;
        }
        continue;
      }
      if (this.tapLeft > 0) {
        const k = Math.min(n - i, this.tapLeft);
        this.tapLeft -= k;
        this.tap?.write(chunk, i, i + k);
        i += k;
        passFrom = i;
        if (this.failed) return;
        continue;
      }
      if (this.remaining > 0) {
        const k = Math.min(n - i, this.remaining);
        this.remaining -= k;
        i += k;
        continue;
      }
      // A message boundary: never hand the parser a partial header we may still want to gather.
      if (n - i < 5) {
        this.held = Buffer.from(chunk.subarray(i));
        if (i > passFrom) this.forward(chunk.subarray(passFrom, i));
        return;
      }
      const total = 1 + chunk.readUInt32BE(i + 1);
      if (chunk[i] === 0x64 /* CopyData */ && total < GATHER_FROM && this.copyData !== undefined) {
        if (i > passFrom) this.forward(chunk.subarray(passFrom, i));
        if (this.failed) return;
        if (i + total <= n) {
          this.copyData(chunk, i + 5, i + total);
          if (this.failed) return;
          i += total;
          passFrom = i;
        } else {
          // Split across socket reads: put together in a buffer of its own.
          this.gathering = Buffer.allocUnsafe(total);
          this.gatheringDirect = true;
          this.gathered = 0;
          passFrom = i;
        }
        continue;
      }
      if (chunk[i] === 0x64 /* CopyData */ && this.tap !== undefined && total < GATHER_FROM) {
        if (i > passFrom) this.forward(chunk.subarray(passFrom, i));
        if (this.failed) return;
        i += 5;
        passFrom = i;
        this.tapLeft = total - 5;
        continue;
      }
      if (chunk[i] !== 0x64 /* CopyData */ || total < GATHER_FROM) {
        this.remaining = total;
        continue;
      }
      if (i > passFrom) this.forward(chunk.subarray(passFrom, i));
      if (this.failed) return;
      passFrom = i;
      if (total - 5 > this.refuseAbove) {
        this.skimming = this.skimmer?.() ?? unknownMessage(total - 5, this.refuseAbove);
        this.skipLeft = total - 5;
        i += 5;
        passFrom = i;
      } else {
        this.gathering = Buffer.allocUnsafe(total);
        this.gatheringDirect = this.copyData !== undefined;
        this.gathered = 0;
      }
    }
    if (n > passFrom) this.forward(passFrom === 0 ? chunk : chunk.subarray(passFrom));
  }

  private fail(err: Error): void {
    this.failed = true;
    this.skimming = undefined;
    // pg rejects the running query (START_REPLICATION, COPY) with this error.
    this.stream.destroy(err);
  }
}

/** Puts a MessageSizeGate in front of a connected client's protocol parser. */
export function gateLargeMessages(client: Client, maxRecordBytes: number): MessageSizeGate {
  const stream = (client as unknown as { connection: { stream: PgStream } }).connection.stream;
  return new MessageSizeGate(stream, refuseMessagesAbove(maxRecordBytes));
}

function unknownMessage(bytes: number, refuseAbove: number): MessageSkimmer {
  const err = () => new Error(`PostgreSQL sent a message of ${bytes} bytes, more than the ${refuseAbove} that ${MAX_RECORD_SETTING} allows`);
  return { feed: () => err(), finish: err };
}

type Step = { read: number } | { skip: number };

/** Runs a generator that asks for bytes to read (and receives them) or to skip, over streamed pieces. */
export class StepReader<T> {
  private step: IteratorResult<Step, T>;
  private buf = Buffer.alloc(0);
  private filled = 0;
  private skipLeft = 0;

  constructor(private readonly gen: Generator<Step, T, Buffer>) {
    this.step = gen.next(Buffer.alloc(0));
    this.arm();
  }

  /** The generator's result once it returned. */
  get result(): T | undefined {
    return this.step.done ? this.step.value : undefined;
  }

  feed(piece: Buffer): T | undefined {
    let i = 0;
    while (!this.step.done && i < piece.length) {
      if (this.skipLeft > 0) {
        const k = Math.min(this.skipLeft, piece.length - i);
        this.skipLeft -= k;
        i += k;
        if (this.skipLeft === 0) this.next(Buffer.alloc(0));
        continue;
      }
      const k = Math.min(this.buf.length - this.filled, piece.length - i);
      piece.copy(this.buf, this.filled, i, i + k);
      this.filled += k;
      i += k;
      if (this.filled === this.buf.length) this.next(this.buf);
    }
    return this.result;
  }

  private next(value: Buffer): void {
    this.step = this.gen.next(value);
    this.arm();
  }

  private arm(): void {
    while (!this.step.done) {
      const s = this.step.value;
      if ("skip" in s) {
        if (s.skip > 0) {
          this.skipLeft = s.skip;
          return;
        }
        this.step = this.gen.next(Buffer.alloc(0));
      } else {
        this.buf = Buffer.alloc(s.read);
        this.filled = 0;
        return;
      }
    }
  }
}

/** What a skimmed pgoutput change says about itself. */
export interface SkimmedChange {
  /** The pgoutput message type: I, U, D, or another one (whose relid and sizes mean nothing). */
  type: number;
  /** XLogData dataStart: the change's WAL position. */
  walStart: bigint;
  relid: number;
  /** Per column, the bytes of its values as sent (old and new tuple added up). */
  sizes: number[];
}

/**
 * The structure of an XLogData message with an INSERT, UPDATE or DELETE, values skipped; done
 * early once a column has more than `stopAbove` bytes.
 */
export function* skimPgoutputChange(stopAbove: number): Generator<Step, SkimmedChange, Buffer> {
  const head = yield { read: 30 }; // 'w', dataStart, walEnd, sendTime, message type, relid
  const type = head[25];
  const change: SkimmedChange = { type, walStart: head.readBigUInt64BE(1), relid: head.readUInt32BE(26), sizes: [] };
  if (type !== 0x49 && type !== 0x55 && type !== 0x44) return change; // not I, U, D
  for (;;) {
    const marker = (yield { read: 1 })[0];
    if (marker !== 0x4b && marker !== 0x4f && marker !== 0x4e) return change; // K, O, N
    const count = (yield { read: 2 }).readUInt16BE(0);
    for (let c = 0; c < count; c++) {
      const kind = (yield { read: 1 })[0];
      if (kind !== 0x74 && kind !== 0x62) continue; // t, b: a length and the value follow
      const len = (yield { read: 4 }).readInt32BE(0);
      change.sizes[c] = (change.sizes[c] ?? 0) + len;
      if (change.sizes[c] > stopAbove) return change;
      yield { skip: len };
    }
    if (marker === 0x4e || type === 0x44) return change;
  }
}

/** Field sizes of a COPY text row streamed by in pieces (fields end at a tab, the row at a newline). */
export class CopyRowSkimmer {
  readonly sizes: number[] = [0];
  /** Whether the field being read has more than `bytes` bytes already. */
  currentAbove(bytes: number): boolean {
    return this.sizes[this.sizes.length - 1] > bytes;
  }

  feed(piece: Buffer): void {
    let p = 0;
    for (let tab = piece.indexOf(9, p); tab >= 0; tab = piece.indexOf(9, p)) {
      this.sizes[this.sizes.length - 1] += tab - p;
      this.sizes.push(0);
      p = tab + 1;
    }
    const nl = piece.indexOf(10, p);
    this.sizes[this.sizes.length - 1] += (nl < 0 ? piece.length : nl) - p;
  }
}
