/**
 * The initial snapshot: every captured table read with `COPY … TO STDOUT` (text format) inside a
 * REPEATABLE READ transaction that imports the snapshot exported when the slot was created, so the
 * snapshot and the stream meet exactly at the slot's consistent point (no gap, no overlap). Rows
 * go through the same encoders, batcher and sink as the stream, as `r` records.
 */
import type { Client } from "pg";
import type { Logger } from "pino";
import type { EngineMetrics } from "../ops/metrics";
import type { EngineConfig, TableName } from "../config";
import type { Batcher, TableBuffer } from "../batching/batcher";
import type { TypeCatalog } from "./decoding/catalog";
import type { TypeShape } from "./decoding/values";
import type { RecordBlock } from "./decoding/copy-block";
import { RecordTooLargeError, gateLargeMessages, isGathered, refusedCopyRow, type MessageSizeGate } from "./large-rows";
import { availableParallelism } from "node:os";
import { INPUT_BLOCK_BYTES, MAX_BLOCKS_IN_FLIGHT, SnapshotTranscoder, THREAD_FROM_BYTES, THREADS_FROM_CORES } from "./snapshot-transcoder";
import type { SnapshotTranscode } from "../config";
import { blockedByLock, connect, ident, watchReceive, type ReceiveWatch } from "./connection";
import { connectionOf, receiveDeadline, serverVersionNum, walSenderTimeoutMs } from "./replication";
import { PartitionClock } from "./pgoutput";

export interface SnapshotColumn {
  name: string;
  typeOid: number;
  typmod: number;
  /** A stored generated column (published by PostgreSQL 18 on request): COPY refuses to name it. */
  generated: boolean;
}

/** What the snapshot copies of a table: exactly what the publication streams of it. */
export interface PublishedTable {
  columns: SnapshotColumn[];
  /** The publication's row filter (PostgreSQL 15+) as SQL over the table's columns, if it has one. */
  rowFilter: string | undefined;
  /** A partitioned table is read through its parent (its rows live in the partitions). */
  partitioned: boolean;
}

/**
 * The columns and rows the publication publishes of `table`. From PostgreSQL 15 on that is
 * pg_publication_tables: attnames (the column list, or all columns) and rowfilter. Generated
 * columns only from 18 on, where attnames lists them exactly when pgoutput sends them
 * (publish_generated_columns = stored, or named in the list); before 18 pgoutput never does,
 * whatever attnames says (15.x lists them). Before 15: every column but generated ones, every row.
 */
export async function publishedTable(client: Client, table: TableName, publication: string): Promise<PublishedTable> {
  const qualified = `${ident(table.schema)}.${ident(table.table)}`;
  let attnames: string[] | undefined;
  let rowFilter: string | undefined;
  const versionNum = await serverVersionNum(client);
  if (versionNum >= 150000) {
    const { rows } = await client.query<{ attnames: string[] | null; rowfilter: string | null }>(
      "SELECT attnames::text[] AS attnames, rowfilter FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3",
      [publication, table.schema, table.table],
    );
    if (rows.length === 0) {
      throw new Error(`publication ${publication} does not publish ${table.schema}.${table.table} under that name, so its snapshot cannot match the stream (a partitioned table needs publish_via_partition_root = true)`);
    }
    attnames = rows[0].attnames ?? undefined;
    rowFilter = rows[0].rowfilter ?? undefined;
  }
  const generated = versionNum >= 120000 ? "a.attgenerated <> ''" : "false"; // generated columns came in 12
  const { rows } = await client.query<{ name: string; type_oid: number; typmod: number; generated: boolean; partitioned: boolean }>(
    `SELECT a.attname::text AS name, a.atttypid::int AS type_oid, a.atttypmod::int AS typmod, ${generated} AS generated, c.relkind = 'p' AS partitioned
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
        AND ${attnames ? "a.attname = ANY($2::text[])" : "true"}
        -- Before 18 pgoutput never sends generated columns, though attnames of PostgreSQL 15 lists them.
        AND ${versionNum >= 180000 ? "true" : `NOT ${generated}`}
      ORDER BY a.attnum`,
    attnames ? [qualified, attnames] : [qualified],
  );
  return { columns: rows.map((r) => ({ name: r.name, typeOid: r.type_oid, typmod: r.typmod, generated: r.generated })), rowFilter, partitioned: rows[0]?.partitioned ?? false };
}

/**
 * One COPY of a snapshot: a whole table, one leaf partition of a partitioned table, or a block
 * range (by CTID) of either.
 */
export interface CopyRange {
  /** The leaf partition read instead of the table (schema-qualified, quoted); undefined: the table. */
  relation?: string;
  /** Blocks [fromBlock, toBlock) of the relation; toBlock undefined: to its end. Both undefined: all of it. */
  fromBlock?: number;
  toBlock?: number;
  /** The relation's file when it was split: a range is only valid against that file (see copyRange). */
  filenode?: string;
}

/**
 * The COPY of what is published. A plain table without a row filter is copied directly (COPY t
 * reads only t itself, as pgoutput streams inheritance children under their own names); a row
 * filter, a generated column, a partitioned parent or a range needs a SELECT (COPY refuses those).
 * A range reads one relation (ONLY: never inheritance children; a leaf partition has none) and,
 * when it is a block range, only the tuples whose CTID lies in it: a TID range scan from
 * PostgreSQL 14 on.
 */
export function copyStatement(table: TableName, published: PublishedTable, range: CopyRange = {}): string {
  const list = published.columns.map((c) => ident(c.name)).join(", ");
  const qualified = `${ident(table.schema)}.${ident(table.table)}`;
  const whole = range.relation === undefined && range.fromBlock === undefined && range.toBlock === undefined;
  if (whole && !published.partitioned && !published.rowFilter && !published.columns.some((c) => c.generated)) return `COPY ${qualified} (${list}) TO STDOUT`;
  const conditions: string[] = [];
  if (range.fromBlock !== undefined && range.fromBlock > 0) conditions.push(`ctid >= '(${range.fromBlock},0)'::tid`);
  if (range.toBlock !== undefined) conditions.push(`ctid < '(${range.toBlock},0)'::tid`);
  if (published.rowFilter) conditions.push(conditions.length > 0 ? `(${published.rowFilter})` : published.rowFilter);
  const from = range.relation !== undefined ? `ONLY ${range.relation}` : `${published.partitioned ? "" : "ONLY "}${qualified}`;
  return `COPY (SELECT ${list} FROM ${from}${conditions.length > 0 ? ` WHERE ${conditions.join(" AND ")}` : ""}) TO STDOUT`;
}

/** Blocks under which a relation is copied as one range (8 MB at the default block size): splitting it would cost more than it gains. */
export const MIN_RANGE_BLOCKS = 1024;

/** The __seq space of a snapshot's rows: 1 … 10^10 − 1 (10 digits; 0 is the barrier). */
const SEQ_SPACE = 10_000_000_000;

/** A relation a snapshot may read directly: the table itself, or one leaf partition. */
interface Relation {
  /** Schema-qualified, quoted; undefined: the table itself. */
  name: string | undefined;
  /** pg_class.relkind */
  kind: string;
  /** SELECT is granted on the relation itself (ctid and a partition read directly need it). */
  readable: boolean;
}

/**
 * How a table's snapshot is split (read inside the snapshot's transaction). A table of fewer than
 * 2 × MIN_RANGE_BLOCKS blocks (its partitions' together) is one range. A partitioned table is
 * split per leaf partition when every leaf can be read directly (12+, SELECT granted on it);
 * from PostgreSQL 14 on (TID range scans; before, every range would scan the whole relation) a
 * plain relation of at least 2 × MIN_RANGE_BLOCKS blocks is split into up to `parallelism` block
 * ranges, the last open-ended. A split relation is locked (ACCESS SHARE, to the end of this
 * transaction) before its size is read, and every range checks its file again before copying, so
 * no rewrite can move tuples between ranges. The ranges share the table's __seq space in equal
 * parts (see rangeSeqBase), so the split is narrowed until every range's tuples fit its part.
 */
export async function splitTable(client: Client, table: TableName, published: PublishedTable, parallelism: number): Promise<CopyRange[]> {
  if (parallelism <= 1) return [{}];
  const versionNum = await serverVersionNum(client);
  const qualified = `${ident(table.schema)}.${ident(table.table)}`;
  let relations: Relation[];
  if (published.partitioned) {
    if (versionNum < 120000) return [{}];
    const { rows } = await client.query<{ name: string; kind: string; readable: boolean }>(
      `SELECT format('%I.%I', n.nspname, c.relname) AS name, c.relkind::text AS kind, has_table_privilege(c.oid, 'SELECT') AS readable
         FROM pg_partition_tree($1::regclass) t JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE t.isleaf ORDER BY c.oid`,
      [qualified],
    );
    // Privileges granted on the root alone do not reach into its partitions: read it through the root then.
    if (rows.length === 0 || rows.some((r) => !r.readable)) return [{}];
    relations = rows;
  } else {
    const { rows } = await client.query<{ readable: boolean }>("SELECT has_table_privilege($1::regclass, 'SELECT') AS readable", [qualified]);
    relations = [{ name: undefined, kind: "r", readable: rows[0].readable }];
  }
  const { rows: settings } = await client.query<{ block_size: string }>("SELECT current_setting('block_size') AS block_size");
  const blockSize = Number(settings[0].block_size);
  // MaxHeapTuplesPerPage: (block size − page header) / (tuple header + line pointer).
  const tuplesPerBlock = Math.floor((blockSize - 24) / 28);
  // A foreign partition has no blocks to bound its rows by: then the table is read through its root.
  if (relations.some((r) => r.kind !== "r")) return [{}];
  const sized: { name: string | undefined; blocks: number; splittable: boolean; filenode: string | undefined }[] = [];
  for (const relation of relations) {
    const name = relation.name ?? qualified;
    const splittable = versionNum >= 140000 && relation.readable;
    if (splittable) await client.query(`LOCK TABLE ONLY ${name} IN ACCESS SHARE MODE`);
    const { rows } = await client.query<{ blocks: string; filenode: string | null }>(
      "SELECT (pg_relation_size($1::regclass) / current_setting('block_size')::bigint)::text AS blocks, pg_relation_filenode($1::regclass)::text AS filenode",
      [name],
    );
    sized.push({ name: relation.name, blocks: Number(rows[0].blocks), splittable, filenode: rows[0].filenode ?? undefined });
  }
  // Small tables (partitions included) are one range, numbered 1, 2, 3 … as ever.
  if (sized.reduce((n, r) => n + r.blocks, 0) < 2 * MIN_RANGE_BLOCKS || (sized.length === 1 && !sized[0].splittable)) return [{}];
  for (let parts = parallelism; ; parts = Math.max(1, Math.floor(parts / 2))) {
    const ranges: CopyRange[] = [];
    // The most blocks one range reads: its rows are at most that many blocks' worth of tuples.
    let widest = 0;
    for (const { name, blocks, splittable, filenode } of sized) {
      const relation = name === undefined ? {} : { relation: name };
      const n = splittable ? Math.max(1, Math.min(parts, Math.floor(blocks / MIN_RANGE_BLOCKS))) : 1;
      if (n === 1) {
        ranges.push(relation);
        widest = Math.max(widest, blocks);
        continue;
      }
      const step = Math.ceil(blocks / n);
      for (let i = 0; i < n; i++) ranges.push({ ...relation, fromBlock: i * step, toBlock: i === n - 1 ? undefined : (i + 1) * step, filenode });
      widest = Math.max(widest, step, blocks - (n - 1) * step);
    }
    if (ranges.length === 1 || widest * tuplesPerBlock < Math.floor(SEQ_SPACE / ranges.length)) return ranges;
    if (parts === 1) return [{}];
  }
}

/**
 * The __seq rows of range `index` of `count` start after: the ranges of a table split its 10-digit
 * __seq space in equal parts, range k's rows numbered k·⌊10^10 / count⌋ + 1, + 2, … (one range:
 * 1, 2, 3 … as ever), so they stay unique per (table, consistent point), above the barrier's 0,
 * and in block order across ranges.
 */
export function rangeSeqBase(index: number, count: number): { base: number; limit: number } {
  if (count <= 1) return { base: 0, limit: SEQ_SPACE };
  const part = Math.floor(SEQ_SPACE / count);
  return { base: index * part, limit: (index + 1) * part };
}

type Readable = { pause(): void; resume(): void; on?(event: "data", listener: () => void): unknown; removeListener?(event: "data", listener: () => void): unknown };

/**
 * Pauses and resumes the sockets the engine reads from: while the batcher has too much waiting for
 * the sink ("pressure"), or while the catalog is being asked about new types ("catalog").
 *
 * It also makes reading fair: libuv reads a busy socket up to 32 times per loop iteration, and
 * decoding that much takes long enough that the sink's file-system callbacks (fsync, rename…)
 * starve and flush rounds crawl. After each chunk the socket is paused until the next turn of the
 * event loop (measured: snapshot 81k → see bench rows/s; flush rounds from seconds to milliseconds).
 */
export class ReadThrottle {
  private readonly reasons = new Set<string>();
  private readonly streams = new Map<Readable, (() => void) | undefined>();
  /** Streams held on their own (their consumer is behind), whatever the shared reasons say. */
  private readonly held = new Set<Readable>();

  get paused(): boolean {
    return this.reasons.size > 0;
  }

  add(stream: Readable): void {
    let onData: (() => void) | undefined;
    if (stream.on) {
      let scheduled = false;
      onData = () => {
        if (scheduled) return;
        scheduled = true;
        stream.pause();
        setImmediate(() => {
          scheduled = false;
          if (this.reading(stream)) stream.resume();
        });
      };
      stream.on("data", onData);
    }
    this.streams.set(stream, onData);
    if (!this.reading(stream)) stream.pause();
  }

  delete(stream: Readable): void {
    const onData = this.streams.get(stream);
    if (onData && stream.removeListener) stream.removeListener("data", onData);
    this.streams.delete(stream);
    this.held.delete(stream);
  }

  set(reason: string, paused: boolean): void {
    const before = this.paused;
    if (paused) this.reasons.add(reason);
    else this.reasons.delete(reason);
    if (before !== this.paused) for (const s of this.streams.keys()) {
      if (!this.reading(s)) s.pause();
      else s.resume();
    }
  }

  /** Holds one stream (or lets it go again) while the shared reasons leave the others alone. */
  hold(stream: Readable, held: boolean): void {
    if (held === this.held.has(stream)) return;
    if (held) {
      this.held.add(stream);
      stream.pause();
    } else {
      this.held.delete(stream);
      if (this.reading(stream)) stream.resume();
    }
  }

  private reading(stream: Readable): boolean {
    return !this.paused && !this.held.has(stream) && this.streams.has(stream);
  }
}

export interface SnapshotOptions {
  config: EngineConfig;
  /** The exported snapshot to import, or undefined to use `existing` (initial_only). */
  snapshotName: string;
  /** __lsn of every `r` record: the slot's consistent point. */
  consistentPoint: bigint;
  /** __ts_ms of every `r` record. */
  tsMs: number;
  tables: TableName[];
  catalog: TypeCatalog;
  batcher: Batcher;
  throttle: ReadThrottle;
  logger: Logger;
  /** Per-table progress (rows read, ranges done) for /metrics. */
  metrics?: EngineMetrics;
  signal: AbortSignal;
  /** Sessions copying in parallel (SNAPSHOT_PARALLELISM): tables, and the ranges of split tables. */
  parallelism: number;
  /** Where COPY rows become records (default: config.snapshotTranscode, SNAPSHOT_TRANSCODE). */
  transcode?: SnapshotTranscode;
}

/** What a snapshot copied: its rows, and per table ("schema.table") the relation OID it read. */
export interface SnapshotResult {
  rows: number;
  relids: Map<string, number>;
}

/** A table being copied: what it publishes, how its rows are written, and its progress. */
interface TableCopy {
  table: TableName;
  label: string;
  columns: SnapshotColumn[];
  published: PublishedTable;
  /** Each column's name and type shape: what the transcoder encodes it by. */
  shapes: { name: string; shape: TypeShape }[];
  /** The table's own buffer (the barrier, and the rows when it is copied as one range). */
  buffer: TableBuffer;
  ranges: CopyRange[];
  /** pg_class's estimate of the table's rows (its partitions' together); undefined: never analyzed. */
  estimatedRows: number | undefined;
  /** The table's bytes, TOAST included (its partitions' together). */
  heapBytes: number;
  partition: string;
  started: number;
  rows: number;
  rangesDone: number;
  /** When progress was last logged. */
  lastLog: number;
}

type SnapshotTask = { table: TableName } | { copy: TableCopy; index: number };

/**
 * The sessions of one snapshot, including those a running session starts (when it splits a
 * table). Each one's outcome is observed from the moment it starts: a session started by a
 * sibling can fail (aborted by another's failure) while the snapshot still waits for the earlier
 * ones, and an unobserved rejection would end the process (Node's default) before the snapshot's
 * first failure, the one to report, is thrown.
 */
export class SnapshotSessions {
  private readonly outcomes: Promise<PromiseSettledResult<void>>[] = [];

  get size(): number {
    return this.outcomes.length;
  }

  start(session: () => Promise<void>): void {
    this.outcomes.push(
      session().then(
        (value): PromiseSettledResult<void> => ({ status: "fulfilled", value }),
        (reason: unknown): PromiseSettledResult<void> => ({ status: "rejected", reason }),
      ),
    );
  }

  /** Every session's outcome, in start order, once all have ended (those started meanwhile too). */
  async settled(): Promise<PromiseSettledResult<void>[]> {
    const settled: PromiseSettledResult<void>[] = [];
    while (settled.length < this.outcomes.length) settled.push(...(await Promise.all(this.outcomes.slice(settled.length))));
    return settled;
  }
}

/**
 * COPYs every table; resolves once every row was handed to the batcher (not yet durable).
 *
 * `parallelism` sessions each import the exported snapshot, so whatever each reads is the
 * database exactly as of the slot's consistent point. They take tables from one queue; the first
 * to take a table writes its barrier and splits it (splitTable) and its ranges go to the front of
 * the queue, where idle sessions pick them up (a session that finds the queue empty while another
 * is still splitting a table waits for its ranges). Sessions start as work appears: one per table
 * at first, more when a table is split, never more than `parallelism`.
 *
 * The copy is one unit of work with one cancellation scope: the first worker that fails (or the
 * caller's signal) aborts every sibling at once, and the promise settles only when every worker
 * has stopped and closed its connection, so nothing feeds the batcher (and through it the state
 * object) after a failed snapshot has been given up.
 */
export async function copySnapshot(options: SnapshotOptions): Promise<SnapshotResult> {
  const queue: SnapshotTask[] = options.tables.map((table) => ({ table }));
  let splitting = 0;
  const waiting: (() => void)[] = [];
  const wake = () => {
    for (const resume of waiting.splice(0)) resume();
  };
  let total = 0;
  const relids = new Map<string, number>();
  const session = new AbortController();
  const stopCopying = () => session.abort(options.signal.reason instanceof Error && options.signal.reason.name !== "AbortError" ? options.signal.reason : new Error("snapshot interrupted: the engine is stopping"));
  if (options.signal.aborted) stopCopying();
  else options.signal.addEventListener("abort", stopCopying, { once: true });
  session.signal.addEventListener("abort", wake, { once: true });
  const scoped = { ...options, signal: session.signal };
  const interrupted = () => (session.signal.reason instanceof Error ? session.signal.reason : new Error("snapshot interrupted"));
  const next = async (): Promise<SnapshotTask | undefined> => {
    for (;;) {
      if (session.signal.aborted) throw interrupted();
      const task = queue.shift();
      if (task !== undefined || splitting === 0) return task;
      await new Promise<void>((resolve) => waiting.push(resolve));
    }
  };
  const worker = async (n: number) => {
    let client: Client | undefined;
    let onAbort: (() => void) | undefined;
    let watch: ReceiveWatch | undefined;
    // The session's own transcoding thread, started with its first range, ended with the session.
    const transcoder = new SnapshotTranscoder();
    try {
      client = await connect(options.config, `cdc-engine snapshot ${n}`, { reuseReads: true });
      // The gate first: it takes over the socket's listeners, and COPY rows it taps never reach them.
      const gate = gateLargeMessages(client, options.batcher.maxRecordBytes);
      // A frozen or black-holed server must not hold the snapshot for ever: the streaming receive
      // deadline, for COPY. Its listener is on the socket itself, so it hears tapped rows too.
      watch = watchReceive(client, {
        what: `snapshot connection ${n}`,
        ...receiveDeadline(await walSenderTimeoutMs(client)),
        waitsForLock: (pid) => blockedByLock(options.config, pid),
        onStall: (err) => options.logger.warn({ silentMs: err.silentMs, deadlineMs: err.deadlineMs }, err.message),
      });
      if (session.signal.aborted) throw interrupted();
      // Whatever the worker waits for (a catalog query, a lock, COPY), the end of the snapshot
      // ends its connection, and with it the work on the server.
      const connection = connectionOf(client);
      onAbort = () => (connection.stream as unknown as { destroy(err?: Error): void }).destroy();
      session.signal.addEventListener("abort", onAbort, { once: true });
      await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      await client.query(`SET TRANSACTION SNAPSHOT '${options.snapshotName.replace(/'/g, "''")}'`);
      for (let task = await next(); task !== undefined; task = await next()) {
        if ("table" in task) {
          splitting++;
          try {
            const copy = await startTable(client, task.table, scoped);
            relids.set(copy.label, copy.relid);
            queue.unshift(...copy.ranges.map((_r, index) => ({ copy, index })));
            // More sessions only as work appears: ranges that no idle session will take.
            // (This session takes the first range itself.)
            for (let more = queue.length - waiting.length - 1; more > 0 && sessions.size < limit; more--) start();
          } finally {
            splitting--;
            wake();
          }
        } else {
          const rows = await copyRange(client, task.copy, task.index, scoped, gate, transcoder);
          total += rows;
        }
      }
      if (session.signal.aborted) throw interrupted();
      await client.query("COMMIT");
    } catch (caught) {
      const err = watch?.stalled ?? caught;
      // The first failure ends the whole snapshot: its siblings stop copying into it at once.
      if (!session.signal.aborted) session.abort(err);
      throw err;
    } finally {
      watch?.stop();
      await transcoder.close();
      if (onAbort) session.signal.removeEventListener("abort", onAbort);
      await client?.end().catch(() => undefined);
    }
  };
  const limit = Math.max(1, options.parallelism);
  const sessions = new SnapshotSessions();
  const start = () => sessions.start(() => worker(sessions.size + 1));
  try {
    // One session per table to begin with (as many as allowed); splitting a table adds more.
    while (sessions.size < Math.min(limit, options.tables.length)) start();
    const settled = await sessions.settled();
    if (session.signal.aborted) throw interrupted();
    const failed = settled.find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
    return { rows: total, relids };
  } finally {
    options.signal.removeEventListener("abort", stopCopying);
  }
}

/** Reads what the table publishes, places its schema and its barrier, and splits it. */
async function startTable(client: Client, table: TableName, options: SnapshotOptions): Promise<TableCopy & { relid: number }> {
  const label = `${table.schema}.${table.table}`;
  const started = Date.now();
  const published = await publishedTable(client, table, options.config.pg.publication);
  const columns = published.columns;
  const missing = options.catalog.missingTypes(columns.map((c) => c.typeOid));
  if (missing.length > 0) await options.catalog.loadTypes(client, missing);
  // The catalog's encoder of a type is encoderFor(its shape); an unknown type is a string.
  const shapes = columns.map((c) => ({ name: c.name, shape: options.catalog.shape(c.typeOid) ?? ({ kind: "scalar", scalar: "string" } as const) }));
  const buffer = options.batcher.buffer(label);
  const batcher = options.batcher;
  const lsn = options.consistentPoint;
  // The catalog as of the snapshot (this transaction imported it): the manifest of the rows below.
  const relid = (await client.query<{ relid: number }>("SELECT $1::regclass::oid::int AS relid", [`${ident(table.schema)}.${ident(table.table)}`])).rows[0].relid;
  const details = await options.catalog.loadTableDetails(client, relid, `snapshot ${relid} ${lsn}`, columns);
  const ranges = await splitTable(client, table, published, options.parallelism);
  const { estimatedRows, heapBytes } = await tableSize(client, relid, published.partitioned && (await serverVersionNum(client)) >= 120000);
  batcher.schema(buffer, options.catalog.tableSchema(label, columns, details));
  const tsPart = ',"__ts_ms":' + options.tsMs;
  const partition = new PartitionClock().of(options.tsMs);
  // The re-snapshot barrier (landing contract): at (P, 0), before the rows at (P, 1…), it tells
  // readers that every row of the table older than this snapshot is gone — rows a reader still
  // holds from an earlier or an interrupted snapshot, whose keys were deleted meanwhile.
  batcher.add(buffer, '{"__op":"b","__deleted":"false","__lsn":' + lsn.toString() + ',"__seq":0' + tsPart + "}", lsn, 0, partition);
  options.logger.info({ table: label, ranges: ranges.length, estimatedRows, heapBytes }, ranges.length > 1 ? "snapshot of table split into ranges" : "snapshot of table started");
  if (estimatedRows !== undefined) options.metrics?.snapshotEstimate?.(label, estimatedRows);
  options.metrics?.snapshotProgress?.(label, 0, 0, ranges.length);
  return { table, label, columns, published, shapes, buffer, ranges, estimatedRows, heapBytes, partition, started, rows: 0, rangesDone: 0, relid, lastLog: started };
}

/**
 * What the catalog estimates of a table (ANALYZE, VACUUM and CREATE INDEX keep reltuples; -1 or,
 * before PostgreSQL 14, 0 with no pages: never counted) and its size (TOAST included): progress against an
 * estimated total, and whether its copy is worth a thread. A partitioned table: its leaves together.
 */
async function tableSize(client: Client, relid: number, partitioned: boolean): Promise<{ estimatedRows: number | undefined; heapBytes: number }> {
  const relations = partitioned ? "SELECT relid FROM pg_partition_tree($1::oid::regclass) WHERE isleaf" : "SELECT $1::oid";
  const { rows } = await client.query<{ tuples: number | null; counted: boolean; bytes: string }>(
    `SELECT sum(GREATEST(c.reltuples, 0))::float8 AS tuples, bool_and(c.reltuples >= 0 AND (c.reltuples > 0 OR c.relpages > 0 OR pg_relation_size(c.oid) = 0)) AS counted,
            coalesce(sum(pg_table_size(c.oid)), 0)::text AS bytes
       FROM pg_class c WHERE c.oid IN (${relations})`,
    [relid],
  );
  const row = rows[0];
  return { estimatedRows: row?.counted && row.tuples !== null ? Math.round(row.tuples) : undefined, heapBytes: Number(row?.bytes ?? 0) };
}

/** Per-table progress is logged at most this often while a table is copied. */
const PROGRESS_LOG_MS = 10_000;

/**
 * Copies one range of a table (all of it when it is not split); returns its rows. The engine's
 * thread only gathers the COPY stream's rows into blocks for the session's transcoder and hands
 * the record blocks that come back to the batcher (into the range's own lane).
 */
async function copyRange(client: Client, copy: TableCopy, index: number, options: SnapshotOptions, gate: MessageSizeGate, transcoder: SnapshotTranscoder): Promise<number> {
  const { label, columns } = copy;
  const range = copy.ranges[index];
  const batcher = options.batcher;
  const lsn = options.consistentPoint;
  if (range.filenode !== undefined) {
    // A rewrite (VACUUM FULL, CLUSTER, TRUNCATE, a rewriting ALTER TABLE) since the table was
    // split would move tuples between block ranges: copy only from the file that was split.
    const relation = range.relation ?? `${ident(copy.table.schema)}.${ident(copy.table.table)}`;
    await client.query(`LOCK TABLE ONLY ${relation} IN ACCESS SHARE MODE`);
    const { rows } = await client.query<{ filenode: string | null }>("SELECT pg_relation_filenode($1::regclass)::text AS filenode", [relation]);
    if (rows[0].filenode !== range.filenode) {
      throw new Error(`snapshot of ${label}: ${relation} was rewritten (VACUUM FULL, CLUSTER, TRUNCATE or a rewriting ALTER TABLE) while it was being copied in block ranges; the snapshot is taken again`);
    }
  }
  // Each range of a split table writes into its own lane: its records are in its own __seq part.
  const buffer = copy.ranges.length > 1 ? batcher.lane(copy.buffer) : copy.buffer;
  const { base, limit: seqLimit } = rangeSeqBase(index, copy.ranges.length);
  gate.skimmer = () => refusedCopyRow(label, columns.map((c) => c.name), batcher.maxRecordBytes);
  const connection = connectionOf(client);
  const stream = connection.stream;
  let failure: unknown;
  const fail = (err: unknown) => {
    if (failure !== undefined) return;
    failure = err instanceof RecordTooLargeError ? err : new Error(`snapshot of ${label}: ${(err as Error).message}`, { cause: err });
    // Never throw into pg's socket handler: end the connection and fail the COPY instead.
    (stream as unknown as { destroy(err?: Error): void }).destroy(failure as Error);
    // Whatever the worker thread still does for this snapshot is given up with it.
    void transcoder.close();
  };
  let nextReport = 0;
  const onRecords = (block: RecordBlock) => {
    batcher.appendRecords(buffer, lsn, copy.partition, block.data, block.ends, block.count, block.firstSeq);
    // Progress of the whole table, across its ranges copied side by side.
    copy.rows += block.count;
    if (copy.rows >= nextReport) {
      nextReport = copy.rows + 0x10000;
      options.metrics?.snapshotProgress?.(label, copy.rows, copy.rangesDone, copy.ranges.length);
      const now = Date.now();
      if (now - copy.lastLog >= PROGRESS_LOG_MS) {
        copy.lastLog = now;
        const percent = copy.estimatedRows ? Math.min(100, Math.round((1000 * copy.rows) / copy.estimatedRows) / 10) : undefined;
        options.logger.info({ table: label, rows: copy.rows, estimatedRows: copy.estimatedRows, percent, rangesDone: copy.rangesDone, ranges: copy.ranges.length, rowsPerS: Math.round((1000 * copy.rows) / (now - copy.started)) }, "snapshot progress");
      }
    }
  };
  const mode = options.transcode ?? options.config.snapshotTranscode;
  const inThread = mode === "threads" || (mode === "auto" && availableParallelism() >= THREADS_FROM_CORES && copy.heapBytes / copy.ranges.length >= THREAD_FROM_BYTES);
  const job = transcoder.begin({ label, columns: copy.shapes, lsn: lsn.toString(), tsMs: options.tsMs, maxRecordBytes: batcher.maxRecordBytes, base, limit: seqLimit, index, ranges: copy.ranges.length }, onRecords, inThread, { room: () => batcher.room(buffer), block: (bytes) => batcher.recordBlock(bytes) });
  job.onFailure = fail;
  // The worker is behind: this range's COPY waits (the server's rows stay in its socket).
  job.onConsumed = () => {
    if (job.inFlight < MAX_BLOCKS_IN_FLIGHT) options.throttle.hold(stream, false);
  };
  let block: Buffer | undefined;
  let filled = 0;
  const send = () => {
    if (block === undefined || filled === 0) return;
    job.push(block.subarray(0, filled), true);
    block = undefined;
    filled = 0;
    if (job.inFlight >= MAX_BLOCKS_IN_FLIGHT) options.throttle.hold(stream, true);
  };
  // COPY bytes in order, in any framing (the transcoder finds the rows): from the gate's tap
  // straight off the socket, and through pg's 'copyData' event for the large messages it gathers.
  // Transcoded in this thread, they are read where they are; for a worker, gathered into blocks.
  const direct = job.write;
  const take = direct
    ? (src: Buffer, from: number, to: number) => {
        if (failure === undefined) direct(src, from, to);
      }
    : (src: Buffer, from: number, to: number) => {
    if (failure !== undefined) return;
    try {
      const length = to - from;
      if (block !== undefined && filled + length > block.length) send();
      // A block of its own: its memory can be transferred to the worker (and comes back).
      block ??= transcoder.inputBlock(length);
      // A row is short: a loop costs less than Buffer.copy's call.
      if (length > 256) filled += src.copy(block, filled, from, to);
      else for (let i = from; i < to; i++) block[filled++] = src[i];
      if (filled >= INPUT_BLOCK_BYTES) send();
    } catch (err) {
      fail(err);
    }
  };
  const listener = (msg: { chunk: Buffer }) => {
    if (failure !== undefined) return;
    if (direct || !isGathered(msg.chunk)) return take(msg.chunk, 0, msg.chunk.length);
    // A large row the gate gathered into a buffer of its own: handed over as it is, never copied.
    send();
    job.push(msg.chunk, true);
    if (job.inFlight >= MAX_BLOCKS_IN_FLIGHT) options.throttle.hold(stream, true);
  };
  gate.tap = { write: take };
  connection.on("copyData", listener);
  options.throttle.add(stream);
  // The snapshot is redone after a restart anyway: on shutdown, or when a sibling worker failed,
  // stop copying at once.
  const onAbort = () => fail(new Error(`snapshot of ${label} interrupted: ${options.signal.reason instanceof Error ? options.signal.reason.message : "the engine is stopping"}`));
  if (options.signal.aborted) onAbort();
  else options.signal.addEventListener("abort", onAbort, { once: true });
  let rows: number;
  try {
    await client.query(copyStatement(copy.table, copy.published, range)).catch((err: unknown) => {
      throw failure ?? err;
    });
    if (failure !== undefined) throw failure;
    send();
    rows = await job.finish().catch((err: unknown) => {
      fail(err);
      throw failure;
    });
    if (failure !== undefined) throw failure;
  } finally {
    gate.tap = undefined;
    connection.removeListener("copyData", listener);
    options.signal.removeEventListener("abort", onAbort);
    options.throttle.delete(stream);
    stream.resume();
  }
  // (A failed range's lane stays with the batcher, which the failed session discards.)
  if (buffer !== copy.buffer) batcher.release(buffer);
  copy.rangesDone++;
  options.metrics?.snapshotProgress?.(label, copy.rows, copy.rangesDone, copy.ranges.length);
  if (copy.rangesDone < copy.ranges.length) {
    options.logger.info({ table: label, range: index + 1, rows, tableRows: copy.rows, rangesDone: copy.rangesDone, ranges: copy.ranges.length }, "snapshot range copied");
  } else {
    options.logger.info({ table: label, rows: copy.rows, ranges: copy.ranges.length, ms: Date.now() - copy.started }, "snapshot of table copied");
  }
  return rows;
}
