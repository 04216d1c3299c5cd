/**
 * The initial snapshot: every captured table read with `COPY … TO STDOUT` (text format) inside a
 * REPEATABLE READ transaction that imports the snapshot exported when the slot was created, so the
 * snapshot and the stream meet exactly at the slot's consistent point (no gap, no overlap). Rows
 * go through the same encoders, batcher and sink as the stream, as `r` records.
 */
import type { Client } from "pg";
import type { Logger } from "pino";
import type { EngineConfig, TableName } from "../config";
import type { Batcher } from "../batching/batcher";
import type { TypeCatalog } from "./decoding/catalog";
import * as text from "./decoding/copy-text";
import type { CopyColumn } from "./decoding/copy-text";

// Bound once: module namespaces compiled by some loaders (tsx) read exports through getters.
const { copyKindOf, copyRowBytes, put, putInt, transcodeRow, worstCase } = text;
import { LARGE_ROW_BYTES, RecordTooLargeError, gateLargeMessages, largestColumn, refusedCopyRow, type MessageSizeGate } from "./large-rows";
import { connect, ident } from "./connection";
import { connectionOf, serverVersionNum } from "./replication";
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
 * The COPY of what is published. A plain table without a row filter is copied directly (COPY t
 * reads only t itself, as pgoutput streams inheritance children under their own names); a row
 * filter, a generated column or a partitioned parent needs a SELECT (COPY refuses those).
 */
export function copyStatement(table: TableName, published: PublishedTable): string {
  const list = published.columns.map((c) => ident(c.name)).join(", ");
  const qualified = `${ident(table.schema)}.${ident(table.table)}`;
  if (!published.partitioned && !published.rowFilter && !published.columns.some((c) => c.generated)) return `COPY ${qualified} (${list}) TO STDOUT`;
  return `COPY (SELECT ${list} FROM ${published.partitioned ? "" : "ONLY "}${qualified}${published.rowFilter ? ` WHERE ${published.rowFilter}` : ""}) TO STDOUT`;
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
          if (!this.paused && this.streams.has(stream)) stream.resume();
        });
      };
      stream.on("data", onData);
    }
    this.streams.set(stream, onData);
    if (this.paused) stream.pause();
  }

  delete(stream: Readable): void {
    const onData = this.streams.get(stream);
    if (onData && stream.removeListener) stream.removeListener("data", onData);
    this.streams.delete(stream);
  }

  set(reason: string, paused: boolean): void {
    const before = this.paused;
    if (paused) this.reasons.add(reason);
    else this.reasons.delete(reason);
    if (before !== this.paused) for (const s of this.streams.keys()) {
      if (this.paused) s.pause();
      else s.resume();
    }
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
  signal: AbortSignal;
  /** Connections copying in parallel (1–2). */
  parallelism: number;
}

/** COPYs every table; resolves once every row was handed to the batcher (not yet durable). */
export async function copySnapshot(options: SnapshotOptions): Promise<{ rows: number }> {
  const queue = [...options.tables];
  let total = 0;
  const worker = async (n: number) => {
    const client = await connect(options.config, `cdc-engine snapshot ${n}`);
    const gate = gateLargeMessages(client, options.batcher.maxRecordBytes);
    try {
      await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      await client.query(`SET TRANSACTION SNAPSHOT '${options.snapshotName.replace(/'/g, "''")}'`);
      for (let table = queue.shift(); table !== undefined; table = queue.shift()) {
        if (options.signal.aborted) throw new Error("snapshot interrupted: the engine is stopping");
        total += await copyTable(client, table, options, gate);
      }
      await client.query("COMMIT");
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  const workers = Math.max(1, Math.min(options.parallelism, options.tables.length));
  await Promise.all(Array.from({ length: workers }, (_v, i) => worker(i + 1)));
  return { rows: total };
}

async function copyTable(client: Client, table: TableName, options: SnapshotOptions, gate: MessageSizeGate): Promise<number> {
  const label = `${table.schema}.${table.table}`;
  const started = Date.now();
  const published = await publishedTable(client, table, options.config.pg.publication);
  const columns = published.columns;
  const missing = options.catalog.missingTypes(columns.map((c) => c.typeOid));
  if (missing.length > 0) await options.catalog.loadTypes(client, missing);
  const copyColumns: CopyColumn[] = columns.map((c) => ({
    prefix: Buffer.from("," + JSON.stringify(c.name) + ":"),
    kind: copyKindOf(options.catalog.shape(c.typeOid) ?? { kind: "scalar", scalar: "string" }),
    encode: options.catalog.encoder(c.typeOid) ?? JSON.stringify,
  }));
  const buffer = options.batcher.buffer(label);
  const batcher = options.batcher;
  const lsn = options.consistentPoint;
  // The catalog as of the snapshot (this transaction imported it): the manifest of the rows below.
  const relid = (await client.query<{ relid: number }>("SELECT $1::regclass::oid::int AS relid", [`${ident(table.schema)}.${ident(table.table)}`])).rows[0].relid;
  const details = await options.catalog.loadTableDetails(client, relid, `snapshot ${relid} ${lsn}`, columns);
  batcher.schema(buffer, options.catalog.tableSchema(label, columns, details));
  const head = Buffer.from('{"__op":"r","__deleted":"false","__lsn":' + lsn.toString() + ',"__seq":');
  const tsPart = Buffer.from(',"__ts_ms":' + options.tsMs);
  const fixedBytes = head.length + tsPart.length + 24 + copyColumns.reduce((n, c) => n + c.prefix.length, 0);
  const partition = new PartitionClock().of(options.tsMs);
  // The re-snapshot barrier (landing contract): at (P, 0), before the rows at (P, 1…), it tells
  // readers that every row of the table older than this snapshot is gone — rows a reader still
  // holds from an earlier or an interrupted snapshot, whose keys were deleted meanwhile.
  batcher.add(buffer, '{"__op":"b","__deleted":"false","__lsn":' + lsn.toString() + ',"__seq":0' + tsPart.toString() + "}", lsn, 0, partition);
  let ordinal = 1;
  let carry: Buffer | undefined;
  const limit = batcher.maxRecordBytes;
  gate.skimmer = () => refusedCopyRow(label, columns.map((c) => c.name), limit);
  const sizes: number[] = [];

  const row = (src: Buffer, start: number, end: number) => {
    // A large row is sized exactly (and checked against MAX_RECORD_BYTES) before it is written.
    const bound = worstCase(end - start, fixedBytes);
    const large = end - start >= LARGE_ROW_BYTES || bound > limit;
    const size = large ? fixedBytes + copyRowBytes(src, start, end, copyColumns, sizes) : bound;
    if (large && size > limit) {
      const largest = largestColumn(sizes);
      const column = columns[largest.index]?.name;
      throw new RecordTooLargeError(label, column, size, limit, `a row of ${label} in the snapshot needs a landing record of ${size} bytes (column ${JSON.stringify(column)}: ${largest.bytes} bytes)`, true);
    }
    batcher.begin(buffer, lsn, ordinal, partition, large ? size : 0);
    const out = buffer.reserve(size);
    const from = buffer.pos;
    let pos = put(out, from, head);
    pos = putInt(out, pos, ordinal);
    pos = put(out, pos, tsPart);
    pos = transcodeRow(src, start, end, copyColumns, out, pos);
    out[pos++] = 0x7d; // }
    out[pos++] = 0x0a; // newline
    buffer.pos = pos;
    batcher.written(buffer, pos - from);
    ordinal++;
  };
  const connection = connectionOf(client);
  const stream = connection.stream;
  let failure: unknown;
  const listener = (msg: { chunk: Buffer }) => {
    if (failure !== undefined) return;
    try {
      let chunk = msg.chunk;
      if (carry !== undefined) {
        chunk = Buffer.concat([carry, chunk]);
        carry = undefined;
      }
      // PostgreSQL sends one row per CopyData message; tolerate other framings anyway.
      let start = 0;
      for (let nl = chunk.indexOf(10, start); nl >= 0; nl = chunk.indexOf(10, start)) {
        row(chunk, start, nl);
        start = nl + 1;
      }
      if (start < chunk.length) carry = Buffer.from(chunk.subarray(start));
    } catch (err) {
      // Never throw into pg's socket handler: end the connection and fail the COPY instead.
      failure = err instanceof RecordTooLargeError ? err : new Error(`snapshot of ${label}: ${(err as Error).message}`, { cause: err });
      (stream as unknown as { destroy(err?: Error): void }).destroy(failure as Error);
    }
  };
  connection.on("copyData", listener);
  options.throttle.add(stream);
  // The snapshot is redone after a restart anyway: on shutdown, stop copying at once.
  const onAbort = () => {
    failure ??= new Error("snapshot interrupted: the engine is stopping");
    (stream as unknown as { destroy(err?: Error): void }).destroy(failure as Error);
  };
  options.signal.addEventListener("abort", onAbort, { once: true });
  try {
    await client.query(copyStatement(table, published)).catch((err: unknown) => {
      throw failure ?? err;
    });
    if (failure !== undefined) throw failure;
  } finally {
    connection.removeListener("copyData", listener);
    options.signal.removeEventListener("abort", onAbort);
    options.throttle.delete(stream);
    stream.resume();
  }
  const rows = ordinal - 1;
  options.logger.info({ table: label, rows, ms: Date.now() - started }, "snapshot of table copied");
  return rows;
}
