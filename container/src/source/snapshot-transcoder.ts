/**
 * Where a snapshot session's COPY rows become NDJSON records (SNAPSHOT_TRANSCODE): a worker thread
 * of its own, so the engine's thread only receives the COPY stream and hands finished record
 * blocks to the batcher; or the engine's thread itself (small tables, where starting a thread
 * costs more than it saves). Both run the same CopyBlockTranscoder: the same bytes.
 *
 * Data crosses the thread boundary only as transferred ArrayBuffers, one message per block of
 * rows (never per row). Memory stays bounded: a range has at most MAX_BLOCKS_IN_FLIGHT input
 * blocks on their way to the worker, and its COPY stream is held (ReadThrottle.hold) until the
 * worker has consumed one.
 */
import { Worker } from "node:worker_threads";
import { extname, join } from "node:path";
import { CopyBlockTranscoder, errorOf, type BlockTarget, type RangeSpec, type RecordBlock, type TranscodeFailure } from "./decoding/copy-block";

/** Relations (or their ranges) from this size on are transcoded in a thread under SNAPSHOT_TRANSCODE=auto: 8 MB. */
export const THREAD_FROM_BYTES = 8 * 1024 * 1024;

/**
 * Cores from which SNAPSHOT_TRANSCODE=auto uses threads. On 2 cores the thread competes with the
 * engine's own thread and the sink (and there with the PostgreSQL backends): measured on 2 shared
 * cores, a 10M-row snapshot took 1.65–2.1 µs of CPU per row with threads against 1.5–1.6 inline,
 * and was faster only on a quiet machine (0.37× COPY against 0.33×); wide rows were slower.
 */
export const THREADS_FROM_CORES = 3;

/** Messages to the worker thread. */
export type ToWorker = { type: "begin"; spec: RangeSpec } | { type: "data"; data: ArrayBuffer; offset: number; length: number } | { type: "end" };
/** Messages from the worker thread. */
export type FromWorker =
  | { type: "records"; data: ArrayBuffer; length: number; ends: ArrayBuffer; count: number; firstSeq: number }
  | { type: "consumed"; data: ArrayBuffer | undefined }
  | { type: "done"; rows: number }
  | { type: "error"; failure: TranscodeFailure };

/** Input blocks of one range handed to the worker and not consumed yet, before its COPY stream is held. */
export const MAX_BLOCKS_IN_FLIGHT = 2;

/** COPY bytes go to the transcoder in blocks of this size (a larger row: a block of its own). */
export const INPUT_BLOCK_BYTES = 256 * 1024;

/**
 * The worker's entry beside this module: .js in the compiled engine (container/dist, the image),
 * .ts when the engine runs from its sources under tsx (tests, bench). tsx's `--import` hook does
 * not reach into worker threads, so a .ts worker loads tsx's CommonJS hook itself.
 */
function workerEntry(): { file: string; execArgv: string[] | undefined } {
  const ext = extname(__filename);
  const file = join(__dirname, `snapshot-transcode-worker${ext}`);
  if (ext !== ".ts") return { file, execArgv: undefined };
  return { file, execArgv: ["--require", require.resolve("tsx/cjs")] };
}

/** One range being transcoded: rows in (push), record blocks out (the onRecords given to begin). */
export interface RangeTranscode {
  /**
   * Hands over one block of COPY bytes. `owned`: the caller gives away the whole ArrayBuffer under
   * it (Buffer.allocUnsafeSlow, a message the gate gathered): it is transferred, not copied, and
   * nobody may touch it any more. Otherwise it is copied first (a view into the socket's buffer or
   * Node's shared pool).
   */
  push(input: Buffer, owned: boolean): void;
  /**
   * Only where the rows are transcoded in the engine's thread: reads COPY bytes src[from, to) in
   * place before it returns (a view of the socket's chunk), so they are never copied into blocks.
   */
  readonly write?: (src: Buffer, from: number, to: number) => void;
  /** Blocks pushed and not consumed yet. */
  readonly inFlight: number;
  /** Called whenever a block has been consumed. */
  onConsumed: (() => void) | undefined;
  /** Called once with the first failure (the caller stops its COPY with it). */
  onFailure: ((err: Error) => void) | undefined;
  /** The range's rows, once every record block has been handed to onRecords. */
  finish(): Promise<number>;
}

/** A snapshot session's transcoder: ranges one after the other. close() ends its worker thread. */
export class SnapshotTranscoder {
  private worker: Worker | undefined;
  private job: ThreadJob | undefined;
  private dead: Error | undefined;
  /** Input blocks back from the worker (or done with in this thread), used again: no new memory per block. */
  private readonly spare: ArrayBuffer[] = [];

  /** A block for COPY bytes of at least `bytes`, at the start of an ArrayBuffer of its own (transferable). */
  inputBlock(bytes: number): Buffer {
    if (bytes <= INPUT_BLOCK_BYTES) {
      const spare = this.spare.pop();
      if (spare !== undefined) return Buffer.from(spare, 0, INPUT_BLOCK_BYTES);
    }
    return Buffer.allocUnsafeSlow(Math.max(INPUT_BLOCK_BYTES, bytes));
  }

  private recycle(data: ArrayBuffer | undefined): void {
    if (data !== undefined && data.byteLength === INPUT_BLOCK_BYTES && this.spare.length < MAX_BLOCKS_IN_FLIGHT + 2) this.spare.push(data);
  }

  /**
   * Starts a range, in the session's worker thread or (inThread false) in the engine's thread,
   * where its record blocks are cut to `target`'s batches, in its memory (see CopyBlockTranscoder).
   */
  begin(spec: RangeSpec, onRecords: (block: RecordBlock) => void, inThread: boolean, target?: BlockTarget): RangeTranscode {
    if (!inThread) return new InlineJob(new CopyBlockTranscoder(spec, onRecords, target), (data) => this.recycle(data));
    if (this.dead) throw this.dead;
    if (this.job) throw new Error("a snapshot transcoder copies one range at a time");
    const worker = this.worker ?? this.start();
    const job = new ThreadJob(worker, onRecords, (data) => this.recycle(data), (failure) => {
      // After a failure the worker may still answer for that range: no other range may follow.
      if (failure) this.dead ??= failure;
      if (this.job === job) this.job = undefined;
    });
    this.job = job;
    worker.postMessage({ type: "begin", spec } satisfies ToWorker);
    return job;
  }

  /** Ends the worker thread (at once: whatever it was doing is given up). */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    this.dead ??= new Error("the snapshot's transcoder was closed");
    this.job?.fail(this.dead);
    if (worker) await worker.terminate();
  }

  private start(): Worker {
    const { file, execArgv } = workerEntry();
    const worker = new Worker(file, { execArgv });
    worker.on("message", (msg: FromWorker) => this.job?.receive(msg));
    const lost = (err: Error) => {
      this.dead ??= err;
      this.job?.fail(err);
    };
    worker.on("error", (err) => lost(new Error(`the snapshot's transcoding thread failed: ${err.message}`, { cause: err })));
    worker.on("exit", (code) => lost(new Error(`the snapshot's transcoding thread exited (code ${code})`)));
    this.worker = worker;
    return worker;
  }
}

class InlineJob implements RangeTranscode {
  readonly inFlight = 0;
  onConsumed: (() => void) | undefined;
  onFailure: ((err: Error) => void) | undefined;
  private failure: Error | undefined;

  constructor(
    private readonly transcoder: CopyBlockTranscoder,
    private readonly recycle: (data: ArrayBuffer) => void,
  ) {}

  push(input: Buffer, owned: boolean): void {
    if (this.failure) return;
    // Read before push returns: nothing is kept but a row split across blocks (copied).
    try {
      this.transcoder.write(input, 0, input.length);
      if (owned && input.byteOffset === 0) this.recycle(input.buffer as ArrayBuffer);
    } catch (err) {
      this.failure = err as Error;
      this.onFailure?.(this.failure);
    }
  }

  readonly write = (src: Buffer, from: number, to: number): void => {
    if (this.failure) return;
    try {
      this.transcoder.write(src, from, to);
    } catch (err) {
      this.failure = err as Error;
      this.onFailure?.(this.failure);
    }
  };

  async finish(): Promise<number> {
    if (this.failure) throw this.failure;
    this.transcoder.end();
    return this.transcoder.rows;
  }
}

class ThreadJob implements RangeTranscode {
  inFlight = 0;
  onConsumed: (() => void) | undefined;
  onFailure: ((err: Error) => void) | undefined;
  private failure: Error | undefined;
  private settle: { resolve(rows: number): void; reject(err: Error): void } | undefined;
  private rows: number | undefined;

  constructor(
    private readonly worker: Worker,
    private readonly onRecords: (block: RecordBlock) => void,
    private readonly recycle: (data: ArrayBuffer | undefined) => void,
    private readonly done: (failure?: Error) => void,
  ) {}

  push(input: Buffer, owned: boolean): void {
    if (this.failure) return;
    let own = input;
    if (!owned) {
      own = Buffer.allocUnsafeSlow(input.length);
      input.copy(own);
    }
    const data = own.buffer as ArrayBuffer;
    this.inFlight++;
    this.worker.postMessage({ type: "data", data, offset: own.byteOffset, length: own.length } satisfies ToWorker, [data]);
  }

  finish(): Promise<number> {
    if (this.failure) return Promise.reject(this.failure);
    this.worker.postMessage({ type: "end" } satisfies ToWorker);
    return new Promise<number>((resolve, reject) => {
      this.settle = { resolve, reject };
      if (this.rows !== undefined) this.complete();
    });
  }

  receive(msg: FromWorker): void {
    switch (msg.type) {
      case "records":
        if (this.failure) return;
        try {
          this.onRecords({ data: Buffer.from(msg.data, 0, msg.length), ends: new Int32Array(msg.ends, 0, msg.count), count: msg.count, firstSeq: msg.firstSeq });
        } catch (err) {
          this.fail(err as Error);
        }
        return;
      case "consumed":
        this.recycle(msg.data);
        this.inFlight--;
        this.onConsumed?.();
        return;
      case "done":
        this.rows = msg.rows;
        if (this.settle) this.complete();
        return;
      case "error":
        this.fail(errorOf(msg.failure));
    }
  }

  fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.done(err);
    this.onFailure?.(err);
    this.settle?.reject(err);
  }

  private complete(): void {
    this.done();
    this.settle?.resolve(this.rows!);
  }
}
