/**
 * Per-table batching of NDJSON record lines into landing objects, and the flush rounds that make
 * them durable: state object (with intents) → data objects → high-water marks → onDurable().
 *
 * A table's buffer is sealed into a batch when it reaches BATCH_MAX_SIZE events, BATCH_MAX_BYTES,
 * BATCH_MAX_WAIT_MS of age, or when its next event belongs to another date/hour partition — also in
 * the middle of a transaction, so memory stays bounded whatever the transaction size. When sealed
 * batches pile up (the sink is slow or down) the batcher asks the source to pause reading.
 */
import { gzip as gzipCallback } from "node:zlib";
import { promisify } from "node:util";
import { backOff } from "exponential-backoff";
import type { Logger } from "pino";
import type { LandingSink } from "../sink/types";
import { SinkConditionFailedError, SinkPermanentError, WriterFencedError } from "../sink/types";
import type { EngineMetrics } from "../ops/metrics";
import { schemaFingerprint, type TableSchema } from "../source/schema";
import { EngineState, type Intent, type Position } from "./state";
import { dataObjectName, manifestBody, manifestKey } from "./manifest";

const gzip = promisify(gzipCallback);

/** Objects of one flush round written at the same time. */
const PARALLEL_PUTS = 8;

export interface BatchLimits {
  maxSize: number;
  maxBytes: number;
  maxWaitMs: number;
  /** MAX_RECORD_BYTES: the largest record the source may write (it refuses larger rows). */
  maxRecordBytes?: number;
}

/** MAX_RECORD_BYTES's default (docs/engine.md): a 100 MiB bytea lands in the 0.5 GB container. */
export const DEFAULT_MAX_RECORD_BYTES = 144 * 1024 * 1024;

/** Bytes per chunk of a table buffer: records are encoded to UTF-8 as they arrive. */
const CHUNK_BYTES = 256 * 1024;

/** A sealed batch's last piece at most this long is copied, so its chunk keeps serving the table's next records. */
const COPY_TAIL_BYTES = 32 * 1024;

/** Free record blocks kept for reuse at most (bytes): a few batches' worth (BATCH_MAX_SIZE records of a typical row). */
const FREE_BLOCK_BYTES = 32 * 1024 * 1024;
/** Record blocks are allocated in multiples of this. */
const BLOCK_ROUNDING = 256 * 1024;

/**
 * Free CHUNK_BYTES chunks, handed back once the batch that used them is durable. A drain writes its
 * whole volume through these chunks: fresh ones each time cost a mmap and its page faults per chunk
 * and, as external memory, one full (mark-compact) garbage collection per 64 MB written.
 *
 * It also lends record blocks (block()): memory a snapshot's transcoder in this thread writes whole
 * batches of records into, sized to a batch, so that a snapshot does not allocate (and fault in)
 * its whole volume afresh. A block's views may go into several batches; it is free again once the
 * last of them is durable.
 */
export class ChunkPool {
  private readonly free: Buffer[] = [];
  /** Blocks lent by block(), by their memory: how many batch views of each are not durable yet. */
  private readonly lent = new WeakMap<ArrayBufferLike, { block: Buffer; holders: number }>();
  private readonly freeBlocks: Buffer[] = [];
  private freeBlockBytes = 0;

  /** @param keep free CHUNK_BYTES chunks kept for reuse at most */
  constructor(private readonly keep = 32) {}

  get(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(CHUNK_BYTES);
  }

  /** A block of at least `bytes` at the start of its own memory: the smallest free one that fits, else a new one. */
  block(bytes: number): Buffer {
    let best = -1;
    for (let i = 0; i < this.freeBlocks.length; i++) {
      const length = this.freeBlocks[i].length;
      if (length >= bytes && (best < 0 || length < this.freeBlocks[best].length)) best = i;
    }
    let block: Buffer;
    if (best >= 0) {
      block = this.freeBlocks[best];
      this.freeBlocks.splice(best, 1);
      this.freeBlockBytes -= block.length;
    } else {
      // Rounded up, so that the next blocks (sized from their batches, a little apart) fit in it again.
      block = Buffer.allocUnsafeSlow(Math.ceil(bytes / BLOCK_ROUNDING) * BLOCK_ROUNDING);
    }
    this.lent.set(block.buffer, { block, holders: 0 });
    return block;
  }

  /** A batch took `view`: if it is part of a lent block, that block has one more holder, and is returned (the batch releases it). */
  hold(view: Buffer): Buffer | undefined {
    const loan = this.lent.get(view.buffer);
    if (loan === undefined) return undefined;
    loan.holders++;
    return loan.block;
  }

  /** `chunks` were taken with get() (or returned by hold()) and nothing reads them any more. */
  release(chunks: Buffer[]): void {
    for (const chunk of chunks) {
      const loan = this.lent.get(chunk.buffer);
      if (loan === undefined) {
        if (this.free.length < this.keep) this.free.push(chunk);
      } else if (--loan.holders === 0) {
        this.lent.delete(chunk.buffer);
        // A block the free list has no room for is left to the garbage collector.
        if (this.freeBlockBytes + chunk.length <= FREE_BLOCK_BYTES) {
          this.freeBlocks.push(chunk);
          this.freeBlockBytes += chunk.length;
        }
      }
    }
  }
}

/**
 * One table's open buffer. Records are written as UTF-8 into fixed-size chunks as they arrive, so
 * the many short-lived strings of a record die young and buffered data sits outside the JS heap
 * (measured: far less GC than keeping the strings until the flush).
 */
export class TableBuffer {
  chunks: Buffer[] = [];
  current: Buffer | undefined;
  pos = 0;
  /**
   * The pool's chunks that `chunks` and `current` are views of. They go with the batch take()
   * makes (takeOwned()), except one that keeps serving as `current` and is no longer read by it.
   */
  private owned: Buffer[] = [];
  private takenOwned: Buffer[] = [];
  bytes = 0;
  count = 0;
  firstLsn = 0n;
  firstSeq = 0;
  lastLsn = 0n;
  lastSeq = 0;
  partition = "";
  openedAt = 0;
  /** Seals the buffer BATCH_MAX_WAIT_MS after its first event (so latency is that, not that plus a tick). */
  ageTimer: NodeJS.Timeout | undefined;
  /** `cdc.<schema>.<table>` */
  readonly prefix: string;
  /** The fingerprint of the schema the buffer's next records are written under (see Batcher.schema). */
  schemaFingerprint: string | undefined;
  /** A schema that differs from the last manifest: its manifest is placed at the next record. */
  pendingSchema: { schema: TableSchema; fingerprint: string } | undefined;
  /** The manifest that applies from this buffer's first record on; written before its data. */
  manifest: ManifestObject | undefined;
  /** Sees every record line written (without its newline) while set: an incremental snapshot's window. */
  watch: ((line: Buffer) => void) | undefined;

  constructor(
    readonly table: string,
    private readonly pool: ChunkPool = new ChunkPool(0),
  ) {
    this.prefix = `cdc.${table}`;
  }

  /** Appends `line` and a newline; returns the bytes written. */
  write(line: string): number {
    // At most 3 UTF-8 bytes per UTF-16 code unit.
    const out = this.reserve(line.length * 3 + 1);
    const written = out.write(line, this.pos) + 1;
    out[this.pos + written - 1] = 10;
    this.pos += written;
    return written;
  }

  /** Makes room for `bytes` more bytes at `current[pos]` (for writers that encode in place). */
  reserve(bytes: number): Buffer {
    if (this.current === undefined || this.pos + bytes > this.current.length) {
      if (this.current !== undefined && this.pos > 0) this.chunks.push(this.current.subarray(0, this.pos));
      if (bytes <= CHUNK_BYTES) {
        this.current = this.pool.get();
        this.owned.push(this.current);
      } else this.current = Buffer.allocUnsafe(bytes);
      this.pos = 0;
    }
    return this.current;
  }

  /** Appends bytes written elsewhere without copying them (the buffer keeps the view; a view of a lent block holds it). */
  append(bytes: Buffer): void {
    if (this.current !== undefined && this.pos > 0) {
      this.chunks.push(this.current.subarray(0, this.pos));
      // What is left of the current chunk is used by the next records written in place.
      this.current = this.current.length - this.pos >= 4096 ? this.current.subarray(this.pos) : undefined;
      this.pos = 0;
    }
    this.chunks.push(bytes);
    const block = this.pool.hold(bytes);
    if (block !== undefined) this.owned.push(block);
  }

  /** Takes the buffered bytes out (the buffer is empty afterwards). */
  take(): Buffer[] {
    const out = this.chunks;
    const current = this.current;
    let keep: Buffer | undefined;
    this.takenOwned = this.owned;
    this.owned = [];
    if (current !== undefined && current.length <= CHUNK_BYTES && !out.some((c) => c.buffer === current.buffer) && this.pos <= COPY_TAIL_BYTES) {
      // The current chunk keeps serving the next records: the batch reads none of it, or only a
      // short last piece, copied here.
      if (this.pos > 0) out.push(Buffer.from(current.subarray(0, this.pos)));
      keep = current;
      const home = this.takenOwned.findIndex((c) => c.buffer === current.buffer);
      if (home >= 0) this.owned = this.takenOwned.splice(home, 1);
    } else if (current !== undefined && this.pos > 0) {
      // It goes with the batch (a pool chunk comes back once the batch is durable; one sized for
      // a single large record is freed with it); the next record takes a fresh chunk.
      out.push(current.subarray(0, this.pos));
    }
    this.current = keep;
    this.chunks = [];
    this.pos = 0;
    return out;
  }

  /** The pool chunks the last take() handed over: free again once nothing reads its views. */
  takeOwned(): Buffer[] {
    const owned = this.takenOwned;
    this.takenOwned = [];
    return owned;
  }
}

interface ManifestObject {
  key: string;
  body: Buffer;
  fingerprint: string;
}

interface Batch {
  table: string;
  key: string;
  /** The schema manifest its first record starts; made durable before the batch. */
  manifest: ManifestObject | undefined;
  chunks: Buffer[];
  /** The pool chunks `chunks` are views of (ChunkPool.release once nothing reads them). */
  owned: Buffer[];
  bytes: number;
  count: number;
  first: Position;
  last: Position;
}

export interface BatcherOptions {
  sink: LandingSink;
  state: EngineState;
  limits: BatchLimits;
  compression: "none" | "gzip";
  metrics: EngineMetrics;
  logger: Logger;
  /** Called after every flush round (data and state durable). */
  onDurable: () => void;
  /** Called with true when reading should pause (too much sealed data waiting), false to resume. */
  onPressure: (paused: boolean) => void;
  /** A flush round failed for good (a SinkPermanentError, or the engine is stopping). */
  onFailure: (err: unknown) => void;
  /** Aborting stops retrying a failing sink (the engine is shutting down). */
  signal: AbortSignal;
}

export class Batcher {
  private readonly buffers = new Map<string, TableBuffer>();
  private readonly pool = new ChunkPool();
  /** Lanes handed out so far (their keys in `buffers`). */
  private lanes = 0;
  private ready: Batch[] = [];
  private inFlight: Batch[] = [];
  private openBytes = 0;
  /** Events in open buffers, over all tables. */
  private openCount = 0;
  private pendingBytes = 0;
  private round: Promise<void> | undefined;
  private paused = false;
  private failed: unknown;
  /** The session that owns this batcher ended: no more flush rounds, so no more state writes. */
  private closed = false;
  private readonly budget: number;
  private readonly extension: string;
  /** Set during a snapshot: the keys of its objects are recorded there (in the state's snapshot progress). */
  recordFilesInto: string[] | undefined;
  /** MAX_RECORD_BYTES: writers refuse records larger than this (RecordTooLargeError). */
  readonly maxRecordBytes: number;

  constructor(private readonly options: BatcherOptions) {
    // Sealed-but-not-durable data allowed before the source pauses, and open data before all
    // buffers are sealed early: bounded memory for any transaction size and any number of tables.
    this.budget = Math.max(2 * options.limits.maxBytes, 64 * 1024 * 1024);
    this.extension = options.compression === "gzip" ? ".ndjson.gz" : ".ndjson";
    this.maxRecordBytes = options.limits.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  }

  buffer(table: string): TableBuffer {
    let buffer = this.buffers.get(table);
    if (!buffer) {
      buffer = new TableBuffer(table, this.pool);
      buffer.schemaFingerprint = this.options.state.manifests.get(table)?.fingerprint;
      this.buffers.set(table, buffer);
    }
    return buffer;
  }

  /**
   * Another buffer of `buffer`'s table, for a writer whose records would otherwise interleave with
   * another writer's (each CTID range of a parallel snapshot numbers its rows in its own __seq
   * space): every landing object still holds one writer's increasing positions, so its name (first
   * and last position) covers exactly its records. The lane writes under the schema the table's
   * buffer declared last; that buffer is sealed here, so its manifest is in a flush round no later
   * than any of the lane's data (a round writes its manifests before its data). Give it back with
   * release() when the writer is done.
   */
  lane(buffer: TableBuffer): TableBuffer {
    if (buffer.pendingSchema !== undefined) throw new Error(`a lane of ${buffer.table} was asked for before the schema of its records was placed (write a record to the table's buffer first)`);
    if (buffer.count > 0) this.seal(buffer);
    const lane = new TableBuffer(buffer.table, this.pool);
    lane.schemaFingerprint = buffer.schemaFingerprint;
    this.buffers.set(`${buffer.table}\u0000lane ${++this.lanes}`, lane);
    return lane;
  }

  /** Seals what a lane holds and forgets the lane (its memory goes with it). */
  release(lane: TableBuffer): void {
    if (lane.count > 0) this.seal(lane);
    for (const [key, b] of this.buffers) if (b === lane && key !== lane.table) this.buffers.delete(key);
    lane.current = undefined;
  }

  /**
   * Declares the schema of the table's next records. When it differs from the manifest they were
   * last written under, a new manifest is placed at the position of the next record: the buffer
   * is sealed first, so every data object is written under one manifest.
   */
  schema(buffer: TableBuffer, schema: TableSchema): void {
    const fingerprint = schemaFingerprint(schema);
    if (buffer.pendingSchema === undefined && fingerprint === buffer.schemaFingerprint) return;
    buffer.pendingSchema = fingerprint === buffer.schemaFingerprint ? undefined : { schema, fingerprint };
  }

  /** Appends one record line (without newline) to a table's buffer. */
  add(buffer: TableBuffer, line: string, lsn: bigint, seq: number, partition: string): void {
    this.begin(buffer, lsn, seq, partition);
    this.written(buffer, buffer.write(line));
  }

  /**
   * Before writing one record into `buffer` in place (reserve(), then write at `pos`): records its
   * position, and seals the buffer first when the record belongs to another partition, or when
   * the record (of `bytes`, when the writer sized it) fills a batch on its own: it then lands
   * alone, in its one buffer, which goes to the sink without being copied.
   */
  begin(buffer: TableBuffer, lsn: bigint, seq: number, partition: string, bytes = 0): void {
    if (bytes >= this.options.limits.maxBytes && buffer.count > 0) this.seal(buffer);
    if (buffer.pendingSchema !== undefined) {
      if (buffer.count > 0) this.seal(buffer);
      const { schema, fingerprint } = buffer.pendingSchema;
      const since = { lsn, seq };
      buffer.manifest = { key: manifestKey(buffer.prefix, since), body: manifestBody(schema, since), fingerprint };
      buffer.schemaFingerprint = fingerprint;
      buffer.pendingSchema = undefined;
    }
    if (buffer.count === 0) {
      buffer.firstLsn = lsn;
      buffer.firstSeq = seq;
      buffer.partition = partition;
      buffer.openedAt = Date.now();
      buffer.ageTimer = setTimeout(() => this.sealAged(buffer), this.options.limits.maxWaitMs);
      buffer.ageTimer.unref();
    } else if (partition !== buffer.partition) {
      // A landing object never spans two date/hour partitions.
      this.seal(buffer);
      this.begin(buffer, lsn, seq, partition);
      return;
    }
    buffer.lastLsn = lsn;
    buffer.lastSeq = seq;
  }

  /**
   * Appends whole records written elsewhere (a snapshot's transcoding thread): `data` holds
   * `count` records, record i ending at ends[i], __seq firstSeq + i. The same seals as writing
   * them one by one with begin()/written() (a full batch, a record that fills a batch alone, the
   * open-data budget), but the bytes are not copied: the buffer keeps views of `data`.
   */
  appendRecords(buffer: TableBuffer, lsn: bigint, partition: string, data: Buffer, ends: Int32Array, count: number, firstSeq: number): void {
    const { maxSize, maxBytes } = this.options.limits;
    let i = 0;
    while (i < count) {
      const from = i === 0 ? 0 : ends[i - 1];
      this.begin(buffer, lsn, firstSeq + i, partition, ends[i] - from);
      // Records i … j−1 go into the buffer as they are; the record that makes it full is the last.
      let j = i;
      let bytes = 0;
      for (;;) {
        const size = ends[j] - (j === 0 ? 0 : ends[j - 1]);
        if (j > i && size >= maxBytes) break; // it lands alone: sealed before it
        bytes += size;
        j++;
        if (j >= count || buffer.count + (j - i) >= maxSize || buffer.bytes + bytes >= maxBytes || this.openBytes + bytes >= this.budget) break;
      }
      buffer.lastSeq = firstSeq + j - 1;
      buffer.append(data.subarray(from, ends[j - 1]));
      buffer.bytes += bytes;
      this.openBytes += bytes;
      this.openCount += j - i;
      buffer.count += j - i;
      if (buffer.count >= maxSize || buffer.bytes >= maxBytes) this.seal(buffer);
      else if (this.openBytes >= this.budget) this.sealAll();
      i = j;
    }
  }

  /**
   * The records and bytes `buffer`'s open batch takes before it is sealed by size (BATCH_MAX_SIZE,
   * BATCH_MAX_BYTES; the record that reaches the bytes is its last). A writer of record blocks
   * (appendRecords) may cut its blocks there: a batch of one block is written without a copy.
   */
  room(buffer: TableBuffer): { records: number; bytes: number } {
    const { maxSize, maxBytes } = this.options.limits;
    return { records: Math.max(1, maxSize - buffer.count), bytes: Math.max(1, maxBytes - buffer.bytes) };
  }

  /**
   * Memory for a block of at least `bytes` of records to be given to appendRecords, at the start
   * of an ArrayBuffer of its own. It is the pool's, reused once every batch holding part of it is
   * durable, where the batcher writes batches without handing their memory to the sink to keep
   * (a sink's createFrom, or gzip's copy); otherwise a new block the sink may keep.
   */
  recordBlock(bytes: number): Buffer {
    if (this.options.compression === "gzip" || this.options.sink.createFrom !== undefined) return this.pool.block(bytes);
    return Buffer.allocUnsafeSlow(bytes);
  }

  /** After writing one record of `size` bytes (newline included) into `buffer`. */
  written(buffer: TableBuffer, size: number): void {
    if (buffer.watch !== undefined) buffer.watch(buffer.current!.subarray(buffer.pos - size, buffer.pos - 1));
    buffer.bytes += size;
    this.openBytes += size;
    this.openCount++;
    buffer.count++;
    const limits = this.options.limits;
    if (buffer.count >= limits.maxSize || buffer.bytes >= limits.maxBytes) this.seal(buffer);
    else if (this.openBytes >= this.budget) this.sealAll();
  }

  /** Nothing buffered, sealed or being written. */
  get idle(): boolean {
    return this.openCount === 0 && this.ready.length === 0 && this.inFlight.length === 0;
  }

  /** The commit LSN of the oldest event that is not durable yet, or undefined when there is none. */
  oldestPendingLsn(): bigint | undefined {
    let oldest: bigint | undefined;
    for (const b of this.inFlight) if (oldest === undefined || b.first.lsn < oldest) oldest = b.first.lsn;
    for (const b of this.ready) if (oldest === undefined || b.first.lsn < oldest) oldest = b.first.lsn;
    for (const b of this.buffers.values()) if (b.count > 0 && (oldest === undefined || b.firstLsn < oldest)) oldest = b.firstLsn;
    return oldest;
  }

  /**
   * Seals a table's open batch now rather than at its size or age limit: for an incremental
   * snapshot that waits for its chunks' rows to be durable, which the age limit would delay by up
   * to BATCH_MAX_WAIT_MS a time.
   */
  sealNow(buffer: TableBuffer): void {
    if (buffer.count > 0) this.seal(buffer);
  }

  sealAll(): void {
    for (const buffer of this.buffers.values()) if (buffer.count > 0) this.seal(buffer);
  }

  /** Seals everything and resolves once all of it is durable (or rejects with the sink's error). */
  async flushAll(): Promise<void> {
    this.sealAll();
    for (;;) {
      this.throwIfFailed();
      if (this.closed) throw new Error("the batcher's session has ended; nothing more is written");
      if (this.round) await this.round.catch(() => undefined);
      else if (this.ready.length > 0) this.startRound();
      else break;
    }
    this.throwIfFailed();
  }

  /** The last flush round's permanent failure, if any (the engine stops with it). */
  throwIfFailed(): void {
    if (this.failed !== undefined) throw this.failed;
  }

  /** Drops whatever is not durable (the source will replay it) once the running round settled. */
  async discard(): Promise<void> {
    this.closed = true;
    // On shutdown a round stuck on a failing sink is abandoned (closing the sink ends it); its
    // data was never confirmed, so it is replayed on the next start.
    if (this.round && !this.options.signal.aborted) await this.round.catch(() => undefined);
    for (const buffer of this.buffers.values()) this.clear(buffer);
    this.ready = [];
    this.pendingBytes = 0;
    this.openBytes = 0;
    this.openCount = 0;
    this.setPaused(false);
  }

  /**
   * Ends the batcher with its session: a round already running settles first (unless the engine is
   * stopping), and nothing sealed or written later starts another round, so a late writer of a
   * session that ended (a snapshot worker, a decoder callback) can never rewrite the state object
   * with the stale progress of that session.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const buffer of this.buffers.values()) if (buffer.ageTimer !== undefined) clearTimeout(buffer.ageTimer);
    if (this.round && !this.options.signal.aborted) await this.round.catch(() => undefined);
  }

  private sealAged(buffer: TableBuffer): void {
    buffer.ageTimer = undefined;
    if (buffer.count > 0) this.seal(buffer);
  }

  private seal(buffer: TableBuffer): void {
    const first = { lsn: buffer.firstLsn, seq: buffer.firstSeq };
    const last = { lsn: buffer.lastLsn, seq: buffer.lastSeq };
    const key = `${buffer.prefix}/${buffer.partition}/${dataObjectName(first, last, this.extension)}`;
    this.ready.push({
      table: buffer.table,
      key,
      manifest: buffer.manifest,
      chunks: buffer.take(),
      owned: buffer.takeOwned(),
      bytes: buffer.bytes,
      count: buffer.count,
      first,
      last,
    });
    buffer.manifest = undefined;
    this.pendingBytes += buffer.bytes;
    this.openBytes -= buffer.bytes;
    this.openCount -= buffer.count;
    this.clear(buffer);
    if (this.pendingBytes >= this.budget) this.setPaused(true);
    if (!this.round) this.startRound();
  }

  private clear(buffer: TableBuffer): void {
    if (buffer.ageTimer !== undefined) clearTimeout(buffer.ageTimer);
    buffer.ageTimer = undefined;
    buffer.take();
    buffer.bytes = 0;
    buffer.count = 0;
  }

  private setPaused(paused: boolean): void {
    if (paused === this.paused) return;
    this.paused = paused;
    this.options.onPressure(paused);
  }

  private startRound(): void {
    if (this.failed !== undefined || this.closed) return;
    this.round = this.runRound().then(
      () => {
        this.round = undefined;
        if (this.ready.length > 0) this.startRound();
      },
      (err) => {
        this.round = undefined;
        this.failed = err;
        this.options.onFailure(err);
      },
    );
  }

  private async runRound(): Promise<void> {
    // Let the current burst of synchronous appends finish, so one round carries many batches.
    await new Promise((resolve) => setImmediate(resolve));
    if (this.closed) return;
    const batches = this.ready;
    this.ready = [];
    this.inFlight = batches;
    const { sink, state, metrics, logger } = this.options;
    const intents: Intent[] = batches.map((b) => ({ table: b.table, key: b.key, first: b.first, last: b.last }));
    if (this.recordFilesInto) this.recordFilesInto.push(...batches.map((b) => b.key));
    await this.retrying("write the engine state", () => state.save(intents));
    // Manifests before the data they describe, so a reader never meets a record whose schema it lacks.
    await Promise.all(batches.filter((b) => b.manifest !== undefined).map((b) => this.retrying(`write ${b.manifest!.key}`, () => this.writeManifest(b.manifest!))));

    // All objects of the round are written in parallel (a few at a time); a crash can leave any
    // subset of them, which EngineState.load sorts out from the intents.
    let next = 0;
    const writer = async () => {
      for (let i = next++; i < batches.length; i = next++) {
        const batch = batches[i];
        const contentType = this.options.compression === "gzip" ? "application/gzip" : "application/x-ndjson";
        const { chunks, owned } = batch;
        batch.chunks = [];
        batch.owned = [];
        let rawBytes = 0;
        for (const chunk of chunks) rawBytes += chunk.length;
        let write: () => Promise<"created" | "exists">;
        let written = rawBytes;
        if (this.options.compression === "none" && sink.createFrom !== undefined && (chunks.length > 1 || owned.length > 0)) {
          // The sink writes the views as they are (no joined copy); their chunks are free once it is done.
          write = () => sink.createFrom!(batch.key, chunks, contentType);
        } else {
          // A sink may keep the body it was given: it gets its own copy (joined, or gzip's output), never a view of the pool's memory.
          const gzipped = this.options.compression === "gzip";
          let body: Buffer = chunks.length === 1 && (owned.length === 0 || gzipped) ? chunks[0] : Buffer.concat(chunks, rawBytes);
          if (gzipped) body = await gzip(body);
          this.pool.release(owned);
          owned.length = 0;
          written = body.length;
          write = () => sink.create(batch.key, body, contentType);
        }
        // Create-only: an object of that name is there already only from a replay of the same
        // range (the same records), or from a stale instance's delayed write; either is kept.
        await this.retrying(`write ${batch.key}`, async () => {
          const outcome = await write();
          if (outcome === "exists") logger.debug({ key: batch.key }, "landing object exists already (a replay of the same range): kept as it is");
        });
        this.pool.release(owned);
        metrics.eventsWritten(batch.table, batch.count, rawBytes);
        metrics.fileWritten(batch.table, written);
        this.pendingBytes -= batch.bytes;
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_PUTS, batches.length) }, writer));
    // Only now, with every object of the round durable, do the high-water marks move.
    for (const batch of batches) {
      state.advance(batch.table, batch.last);
      if (batch.manifest) state.manifests.set(batch.table, { key: batch.manifest.key, fingerprint: batch.manifest.fingerprint });
    }
    this.inFlight = [];
    logger.debug({ objects: batches.length, events: batches.reduce((n, b) => n + b.count, 0) }, "flush round durable");
    metrics.flushed(Date.now());
    if (this.pendingBytes < this.budget / 2 || this.ready.length === 0) this.setPaused(false);
    this.options.onDurable();
  }

  /**
   * Write-once (create-only): a manifest name that exists already (a replay of the same position)
   * keeps its content, so no reader ever sees a name change meaning.
   */
  private async writeManifest(manifest: ManifestObject): Promise<void> {
    await this.options.sink.create(manifest.key, manifest.body, "application/json");
  }

  /** Retries transient sink errors forever (reading stays paused meanwhile); permanent ones stop the engine. */
  private async retrying(what: string, action: () => Promise<void>): Promise<void> {
    await backOff(action, {
      numOfAttempts: Number.MAX_SAFE_INTEGER,
      startingDelay: 200,
      maxDelay: 30_000,
      jitter: "full",
      retry: (err: unknown, attempt: number) => {
        if (err instanceof SinkPermanentError || err instanceof WriterFencedError || err instanceof SinkConditionFailedError || this.options.signal.aborted) return false;
        this.options.logger.warn({ err, attempt, sink: this.options.sink.url }, `could not ${what}; retrying`);
        return true;
      },
    });
  }
}
