/**
 * Blocks of COPY … TO STDOUT rows → blocks of NDJSON `r` records: the snapshot's transcoding, run
 * in a worker thread (see snapshot-transcoder.ts) or in the engine's thread. Everything it needs
 * is plain data (RangeSpec), so a worker thread can rebuild it; its output is whole records in
 * ArrayBuffers of their own (transferable), with each record's end offset, so the main thread only
 * hands the bytes to the batcher.
 */
import * as text from "./copy-text";
import type { CopyColumn } from "./copy-text";
import { encoderFor, type TypeShape } from "./values";
import { LARGE_ROW_BYTES, RecordTooLargeError, largestColumn } from "../large-rows";

// Bound once: module namespaces compiled by some loaders (tsx) read exports through getters.
const { copyKindOf, copyRowBytes, lineEnd, put, putInt, transcodeLine, transcodeRow, worstCase } = text;

/** One COPY (a table or one range of it) as the transcoder needs it: plain data, no functions. */
export interface RangeSpec {
  /** "schema.table", for errors. */
  label: string;
  columns: { name: string; shape: TypeShape }[];
  /** __lsn of every record (decimal). */
  lsn: string;
  tsMs: number;
  maxRecordBytes: number;
  /** __seq of the range's first row is base + 1; no row may reach limit. */
  base: number;
  limit: number;
  /** "range 2 of 4", for the __seq overflow error. */
  index: number;
  ranges: number;
}

/** Whole records: data[ends[i-1], ends[i]) is record firstSeq + i (data[0, ends[0]) the first). */
export interface RecordBlock {
  data: Buffer;
  ends: Int32Array;
  count: number;
  firstSeq: number;
}

/** What a batcher's open batch still takes before it is sealed by size (Batcher.room). */
export interface BatchRoom {
  records: number;
  bytes: number;
}

/** A batcher in this thread that the record blocks go straight into (appendRecords). */
export interface BlockTarget {
  /** What its open batch still takes (Batcher.room). */
  room(): BatchRoom;
  /** Memory for a block of at least `bytes` (Batcher.recordBlock: reused once the batches holding it are durable). */
  block(bytes: number): Buffer;
}

/** What crosses the thread boundary for a RecordTooLargeError (it is rebuilt on the other side). */
export interface TranscodeFailure {
  message: string;
  tooLarge?: { table: string; column: string | undefined; bytes: number; limit: number; detail: string; snapshot: boolean };
}

export function failureOf(err: unknown): TranscodeFailure {
  if (err instanceof RecordTooLargeError) return { message: err.message, tooLarge: { table: err.table, column: err.column, bytes: err.bytes, limit: err.limit, detail: err.detail, snapshot: err.snapshot } };
  return { message: err instanceof Error ? err.message : String(err) };
}

export function errorOf(failure: TranscodeFailure): Error {
  const t = failure.tooLarge;
  if (t) return new RecordTooLargeError(t.table, t.column, t.bytes, t.limit, t.detail, t.snapshot);
  return new Error(failure.message);
}

/** Output blocks are this large (a record larger than that gets a block of its own size). */
const OUTPUT_BYTES = 1024 * 1024;
/** Records per output block at most. */
const OUTPUT_RECORDS = 16 * 1024;
/** Records per output block at most when blocks follow a batcher's batches. */
const ROOM_RECORDS = 256 * 1024;
/**
 * Rows are transcoded in one pass up to their newline (transcodeLine) while what is left of the
 * input is at most this long, so its worst case bounds the record without looking for the newline
 * first; in longer input the newline is found first (indexOf, as for large rows).
 */
const LINE_BYTES = 4096;

/**
 * Transcodes one range's COPY rows, block by block, into record blocks passed to `emit` (in
 * order). A row may span input blocks (it is carried over); the records are exactly those the
 * stream's encoders would write (the same functions as ever: transcodeRow, copyRowBytes).
 */
export class CopyBlockTranscoder {
  private readonly copyColumns: CopyColumn[];
  private readonly head: Buffer;
  private readonly tsPart: Buffer;
  private readonly fixedBytes: number;
  private readonly sizes: number[] = [];
  private ordinal: number;
  private carry: Buffer | undefined;
  private out: Buffer | undefined;
  private pos = 0;
  private ends = new Int32Array(OUTPUT_RECORDS);
  private count = 0;
  private firstSeq = 0;
  private lead = Buffer.alloc(0);
  /** The current block ends after this many records, or after the record that reaches capBytes. */
  private capRecords = OUTPUT_RECORDS;
  private capBytes = Infinity;
  /** Bytes per record of the last block (sizes the next one to its batch). */
  private recordBytes = 0;
  private leadSeq = -1;

  constructor(
    private readonly spec: RangeSpec,
    private readonly emit: (block: RecordBlock) => void,
    /**
     * Where the blocks go straight into a batcher's buffer (this thread). Each block is then cut
     * where the open batch seals, so a batch is mostly one block, which the batcher writes as it
     * is instead of copying its pieces together; and its memory is the batcher's to reuse.
     */
    private readonly target?: BlockTarget,
  ) {
    this.copyColumns = spec.columns.map((c) => {
      const prefix = Buffer.from("," + JSON.stringify(c.name) + ":");
      return { prefix, kind: copyKindOf(c.shape), encode: encoderFor(c.shape) };
    });
    this.head = Buffer.from('{"__op":"r","__deleted":"false","__lsn":' + spec.lsn + ',"__seq":');
    this.tsPart = Buffer.from(',"__ts_ms":' + spec.tsMs);
    this.fixedBytes = this.head.length + this.tsPart.length + 24 + this.copyColumns.reduce((n, c) => n + c.prefix.length, 0);
    this.ordinal = spec.base + 1;
  }

  /** Rows transcoded so far. */
  get rows(): number {
    return this.ordinal - this.spec.base - 1;
  }

  /** Transcodes the complete rows of `input` (the rest waits for the next block), then emits what it wrote. */
  push(input: Buffer): void {
    this.write(input, 0, input.length);
    this.flush();
  }

  /**
   * Transcodes the complete rows of src[from, to) (the rest waits for more; it is copied, so src
   * may be a view of memory the caller reuses, such as the socket's chunk). Record blocks are
   * emitted only as they fill (and by push, end): COPY bytes can be written in pieces as small as
   * one row each.
   */
  write(src: Buffer, from: number, to: number): void {
    let start = from;
    if (this.carry !== undefined) {
      const nl = src.indexOf(10, from);
      if (nl < 0 || nl >= to) {
        this.carry = Buffer.concat([this.carry, src.subarray(from, to)]);
        return;
      }
      const whole = Buffer.concat([this.carry, src.subarray(from, nl)]);
      this.carry = undefined;
      this.row(whole, 0, whole.length);
      start = nl + 1;
    }
    // Complete rows end at `stop` (after a newline); a row cut short after it is carried over.
    let stop = to;
    if (stop > start && src[stop - 1] !== 10) {
      const last = src.lastIndexOf(10, stop - 1);
      stop = last < start ? start : last + 1;
    }
    while (start < stop) {
      if (stop - start <= LINE_BYTES) start = this.line(src, start, stop);
      else {
        const nl = src.indexOf(10, start);
        this.row(src, start, nl);
        start = nl + 1;
      }
    }
    if (stop < to) this.carry = Buffer.from(src.subarray(stop, to));
  }

  /** The end of the range: a last row without its newline (COPY never sends one) is a row too. */
  end(): void {
    if (this.carry !== undefined) {
      const last = this.carry;
      this.carry = undefined;
      this.row(last, 0, last.length);
    }
    this.flush();
  }

  private flush(): void {
    if (this.count === 0 || this.out === undefined) return;
    this.emit({ data: this.out.subarray(0, this.pos), ends: this.ends.slice(0, this.count), count: this.count, firstSeq: this.firstSeq });
    this.recordBytes = this.pos / this.count;
    this.out = undefined;
    this.pos = 0;
    this.count = 0;
  }

  /** Transcodes the row at src[start] (complete, ending at a newline before `limit`); returns where the next row starts. */
  private line(src: Buffer, start: number, limit: number): number {
    const { spec, fixedBytes } = this;
    const ordinal = this.ordinal;
    // No row here is large (LINE_BYTES < LARGE_ROW_BYTES), but a small MAX_RECORD_BYTES is checked exactly.
    const bound = worstCase(limit - start, fixedBytes);
    if (ordinal >= spec.limit || bound > spec.maxRecordBytes) {
      const nl = src.indexOf(10, start);
      this.row(src, start, nl);
      return nl + 1;
    }
    if (this.out !== undefined && this.pos + bound > this.out.length) this.flush();
    const out = this.out ?? this.open(bound, ordinal);
    const lead = ordinal === this.leadSeq ? this.lead : this.leadOf(ordinal);
    out.set(lead, this.pos);
    const pos = transcodeLine(src, start, limit, this.copyColumns, out, this.pos + lead.length);
    this.nextLead();
    this.endRecord(out, pos);
    return lineEnd.at + 1;
  }

  /** The record's bytes before its columns (head, __seq, __ts_ms) for `seq`: built once, then counted up in place. */
  private leadOf(seq: number): Buffer {
    const digits = String(seq);
    this.lead = Buffer.concat([this.head, Buffer.from(digits), this.tsPart]);
    this.leadSeq = seq;
    return this.lead;
  }

  /** The lead of the next __seq: its last digit counted up (a carry past its first digit builds it anew). */
  private nextLead(): void {
    const lead = this.lead;
    const first = this.head.length;
    let i = lead.length - this.tsPart.length - 1;
    while (i >= first && lead[i] === 0x39) lead[i--] = 0x30;
    if (i < first) this.leadOf(this.leadSeq + 1);
    else {
      lead[i]++;
      this.leadSeq++;
    }
  }

  private row(src: Buffer, start: number, end: number): void {
    const { spec, copyColumns, fixedBytes } = this;
    const ordinal = this.ordinal;
    if (ordinal >= spec.limit) throw new Error(`range ${spec.index + 1} of ${spec.ranges} holds more rows than its __seq part (${spec.limit - spec.base - 1}); set SNAPSHOT_PARALLELISM=1`);
    // A large row is sized exactly (and checked against MAX_RECORD_BYTES) before it is written.
    const bound = worstCase(end - start, fixedBytes);
    const large = end - start >= LARGE_ROW_BYTES || bound > spec.maxRecordBytes;
    const size = large ? fixedBytes + copyRowBytes(src, start, end, copyColumns, this.sizes) : bound;
    if (large && size > spec.maxRecordBytes) {
      const largest = largestColumn(this.sizes);
      const column = spec.columns[largest.index]?.name;
      throw new RecordTooLargeError(spec.label, column, size, spec.maxRecordBytes, `a row of ${spec.label} in the snapshot needs a landing record of ${size} bytes (column ${JSON.stringify(column)}: ${largest.bytes} bytes)`, true);
    }
    if (this.out !== undefined && this.pos + size > this.out.length) this.flush();
    const out = this.out ?? this.open(size, ordinal);
    let pos = put(out, this.pos, this.head);
    pos = putInt(out, pos, ordinal);
    pos = put(out, pos, this.tsPart);
    this.endRecord(out, transcodeRow(src, start, end, copyColumns, out, pos));
  }

  /** Closes the record whose columns end at out[pos] and counts it; the block is emitted once it reaches its cap. */
  private endRecord(out: Buffer, pos: number): void {
    out[pos++] = 0x7d; // }
    out[pos++] = 0x0a; // newline
    this.pos = pos;
    this.ends[this.count++] = pos;
    this.ordinal++;
    if (this.count >= this.capRecords || pos >= this.capBytes) this.flush();
  }

  /** A new output block for a first record of at most `bound` bytes: to the open batch's end when there is a batcher's room to fill. */
  private open(bound: number, ordinal: number): Buffer {
    let bytes = Math.max(OUTPUT_BYTES, bound);
    const target = this.target;
    if (target !== undefined) {
      const room = target.room();
      this.capRecords = Math.max(1, Math.min(ROOM_RECORDS, room.records));
      this.capBytes = Math.max(1, room.bytes);
      // Sized from the last block's records (none yet: 1 MiB), with some slack; a block that
      // fills early is followed by another one (that batch is then copied together, as ever).
      // The slack holds the record that crosses capBytes, whatever its row (up to LINE_BYTES).
      const estimate = this.recordBytes > 0 ? Math.ceil(this.capRecords * this.recordBytes * 1.25) : OUTPUT_BYTES;
      bytes = Math.max(bound, Math.min(estimate, this.capBytes) + worstCase(LINE_BYTES, this.fixedBytes));
      if (this.ends.length < this.capRecords) this.ends = new Int32Array(this.capRecords);
    }
    // A worker thread's block is in an ArrayBuffer of its own, so it can be transferred.
    this.out = target !== undefined ? target.block(bytes) : Buffer.allocUnsafeSlow(bytes);
    this.firstSeq = ordinal;
    return this.out;
  }
}
