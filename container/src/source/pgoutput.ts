/**
 * pgoutput (protocol version 1) → landing records, straight from the XLogData payload bytes.
 *
 * Each change becomes one NDJSON line built by string concatenation: the metadata first
 * (`__op`, `__deleted`, `__lsn`, `__seq`, `__ts_ms`), then the row's columns with their names
 * pre-escaped, each value through its type's encoder. `__seq` is derived from the change's own WAL
 * position in its transaction (seqOf), so a replay numbers every event the same way whatever the
 * configuration; events at or below a table's high-water mark (already durable before a restart)
 * are numbered but not emitted again.
 */
import type { Logger } from "pino";
import type { Batcher, TableBuffer } from "../batching/batcher";
import type { EngineState } from "../batching/state";
import type { TypeCatalog } from "./decoding/catalog";
import * as text from "./decoding/copy-text";
import type { WireColumn } from "./decoding/copy-text";
import * as binary from "./decoding/binary";
import type { BinaryDecoder } from "./decoding/binary";
import { LANDING_SAFE_NAME, isReservedColumn, reservedColumnsDetail, unsafeTableNameDetail } from "./landing-names";
import { SourceSetupError } from "./setup";
import { ResnapshotNeeded, relationSeen } from "./coverage";
import { formatLsn } from "./lsn";

// Bound once: module namespaces compiled by some loaders (tsx) read exports through getters.
const { copyKindOf, NULL_BYTES, put, putInt, wireValueBytes, worstCase, writeWireValue } = text;
const { JSONB_VERSION, TextScratch, jsonBound, writeJson } = binary;
import { LARGE_ROW_BYTES, RecordTooLargeError, StepReader, largestColumn, refuseMessagesAbove, skimPgoutputChange, type MessageSkimmer } from "./large-rows";

export interface ColumnInfo extends WireColumn {
  name: string;
  /** `,"name":` as UTF-8. */
  prefix: Buffer;
  typeOid: number;
  /** How its values decode in pgoutput's binary mode (undefined: they cannot). */
  binary: BinaryDecoder | undefined;
}

export interface RelationInfo {
  oid: number;
  /** "schema.table" */
  table: string;
  replicaIdentity: string;
  columns: ColumnInfo[];
  /** Columns of the replica identity (what a 'K' old tuple carries). */
  identity: number[];
  /** Columns whose change turns an UPDATE into delete + insert: the primary key (or the identity). */
  key: number[];
  /** Bytes of all column prefixes and names, for sizing a record before writing it. */
  fixedBytes: number;
  buffer: TableBuffer;
}

/** The metadata fields that open each record, per operation, up to the `__lsn` value. */
const HEAD = {
  r: Buffer.from('{"__op":"r","__deleted":"false","__lsn":'),
  c: Buffer.from('{"__op":"c","__deleted":"false","__lsn":'),
  u: Buffer.from('{"__op":"u","__deleted":"false","__lsn":'),
  d: Buffer.from('{"__op":"d","__deleted":"true","__lsn":'),
  t: Buffer.from('{"__op":"t","__deleted":"false","__lsn":'),
} as const;
export type Op = keyof typeof HEAD;

/** PostgreSQL timestamps count microseconds from 2000-01-01 UTC. */
export const PG_EPOCH_MS = 946_684_800_000;

const MSG_BEGIN = 0x42; // B
const MSG_COMMIT = 0x43; // C
const MSG_ORIGIN = 0x4f; // O
const MSG_RELATION = 0x52; // R
const MSG_TYPE = 0x59; // Y
const MSG_INSERT = 0x49; // I
const MSG_UPDATE = 0x55; // U
const MSG_DELETE = 0x44; // D
const MSG_TRUNCATE = 0x54; // T
const MSG_MESSAGE = 0x4d; // M
const TUPLE_KEY = 0x4b; // K
const TUPLE_OLD = 0x4f; // O
const TUPLE_NEW = 0x4e; // N
const COL_NULL = 0x6e; // n
const COL_UNCHANGED = 0x75; // u
const COL_TEXT = 0x74; // t
const COL_BINARY = 0x62; // b
// The kinds readTuple gives binary values (never on the wire):
/** Text output written into the decoder's TextScratch. */
const COL_SCRATCH = 0x01;
/** bytea's raw bytes, in the message. */
const COL_BYTEA = 0x02;
/** A value the column's JsonWriter writes straight from the message. */
const COL_JSON = 0x03;

/**
 * One tuple as positions in the message buffer: per column its kind ('t', 'n', 'u'; binary values
 * become 't' where their send format is their text, else COL_SCRATCH or COL_BYTEA) and byte range.
 */
class Tuple {
  count = 0;
  /** Sum of the text values' lengths. */
  bytes = 0;
  kinds = new Uint8Array(64);
  starts = new Int32Array(64);
  ends = new Int32Array(64);

  ensure(n: number): void {
    if (n <= this.kinds.length) return;
    const size = Math.max(n, this.kinds.length * 2);
    this.kinds = new Uint8Array(size);
    this.starts = new Int32Array(size);
    this.ends = new Int32Array(size);
  }
}

/** "date=YYYY-MM-DD/hour=HH" of an epoch-ms time, cached per hour. */
export class PartitionClock {
  private hour = -1;
  private value = "";
  of(ms: number): string {
    const hour = Math.floor(ms / 3_600_000);
    if (hour !== this.hour) {
      const iso = new Date(hour * 3_600_000).toISOString();
      this.hour = hour;
      this.value = `date=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}`;
    }
    return this.value;
  }
}

export interface CatalogNeeds {
  types: number[];
  /** The relation whose catalog details the schema manifest needs, by its Relation signature. */
  details: { relid: number; signature: string; columns: { typeOid: number; typmod: number; name: string }[] } | undefined;
}

interface ParsedRelation {
  oid: number;
  schema: string;
  name: string;
  replicaIdentity: string;
  columns: { flags: number; name: string; typeOid: number; typmod: number }[];
  /** Everything the message says: a changed relation has another signature. */
  signature: string;
}

/** A Relation message's body (after the 'R'). */
function parseRelation(buf: Buffer, p: number): ParsedRelation {
  const oid = buf.readUInt32BE(p);
  let q = buf.indexOf(0, p + 4);
  const schema = buf.toString("utf8", p + 4, q);
  const r = buf.indexOf(0, q + 1);
  const name = buf.toString("utf8", q + 1, r);
  q = r + 1;
  const replicaIdentity = String.fromCharCode(buf[q]);
  const ncols = buf.readUInt16BE(q + 1);
  q += 3;
  const columns: ParsedRelation["columns"] = [];
  for (let i = 0; i < ncols; i++) {
    const flags = buf[q];
    const end = buf.indexOf(0, q + 1);
    columns.push({ flags, name: buf.toString("utf8", q + 1, end), typeOid: buf.readUInt32BE(end + 1), typmod: buf.readInt32BE(end + 5) });
    q = end + 9;
  }
  const signature = JSON.stringify([oid, schema, name, replicaIdentity, columns]);
  return { oid, schema, name, replicaIdentity, columns, signature };
}

/** A captured table came back (source/coverage.ts) in the transaction committing at `commitLsn`; false: not taken (then as "snapshot"). */
export type ComebackHandler = (table: string, oid: number, detail: string, commitLsn: bigint) => boolean;

export interface DecoderHooks {
  /** A transaction's COMMIT was decoded (all its events handed to the batcher or skipped). */
  onCommit(commitLsn: bigint, endLsn: bigint): void;
}

const SEQ_PART = Buffer.from(',"__seq":');
/** __seq has 10 digits in object names and silver orders by __lsn * 10^10 + __seq. */
const MAX_SEQ = 10_000_000_000;
const UNCHANGED_OPEN = ',"__unchanged":[';

export class PgOutputDecoder {
  private readonly relations = new Map<number, RelationInfo>();
  /** Names of every relation PostgreSQL announced, also those not decoded yet. */
  private readonly announced = new Map<number, { table: string; columns: string[] }>();
  private readonly oldTuple = new Tuple();
  private readonly newTuple = new Tuple();
  private readonly partitions = new PartitionClock();
  private inTransaction = false;
  private lsn = 0n;
  /** The XLogData dataStart of the message being decoded, as its two 32-bit halves (no BigInt per message). */
  private messageHi = 0;
  private messageLo = 0;
  /** The commit LSN's halves. */
  private lsnHi = 0;
  private lsnLo = 0;
  private partition = "";
  /** The commit LSN's digits. */
  private lsnBytes = Buffer.alloc(0);
  /** Per operation, its record opening in this transaction (headOf). */
  private heads: Partial<Record<Op, Buffer>> = {};
  /** `,"__ts_ms":<ms>` */
  private tsBytes = Buffer.alloc(0);
  private checkSkip = false;

  private messageLsn(): bigint {
    return (BigInt(this.messageHi) << 32n) | BigInt(this.messageLo);
  }

  /** No transaction is half decoded (between Commit and the next Begin). */
  get betweenTransactions(): boolean {
    return !this.inTransaction;
  }

  constructor(
    private readonly batcher: Batcher,
    private readonly state: EngineState,
    private readonly catalog: TypeCatalog,
    /** The captured tables ("schema.table"), or undefined for whatever the publication sends. */
    private readonly captured: Set<string> | undefined,
    private readonly hooks: DecoderHooks,
    private readonly logger: Logger,
    /**
     * A captured table that comes back (source/coverage.ts) is snapshotted again: "snapshot" stops
     * decoding at its Relation message (ResnapshotNeeded); "record" (SNAPSHOT_MODE=never) records
     * the new relation as covered and streams on; a handler (incremental snapshots) takes it over
     * while decoding goes on.
     */
    private readonly comeback: "snapshot" | "record" | ComebackHandler = "snapshot",
    /**
     * The session streams with pgoutput's `binary 'true'` (PG_BINARY): every captured column must
     * then have a binary decoder, else relation() throws BinaryUnsupported.
     */
    private readonly binary = false,
  ) {}

  /** Text output of the binary values of the change being decoded (emptied per change). */
  private readonly scratch = new TextScratch();

  /**
   * For a Relation message: the type OIDs the catalog must know, and the table whose declared
   * types, nullability and keys it must (re)load for the schema manifest, before `decode` can take
   * it; undefined when nothing is missing.
   */
  catalogNeeds(buf: Buffer, off: number): CatalogNeeds | undefined {
    if (buf[off] !== MSG_RELATION) return undefined;
    const rel = parseRelation(buf, off + 1);
    // Known by name at once, even while the message waits for the catalog (see refusedChange).
    this.announced.set(rel.oid, { table: `${rel.schema}.${rel.name}`, columns: rel.columns.map((c) => c.name) });
    const types = this.catalog.missingTypes(rel.columns.map((c) => c.typeOid));
    const captured = this.captured === undefined || this.captured.has(`${rel.schema}.${rel.name}`);
    const details = captured && this.catalog.tableDetails(rel.signature) === undefined ? { relid: rel.oid, signature: rel.signature, columns: rel.columns } : undefined;
    return types.length > 0 || details ? { types, details } : undefined;
  }

  /** Decodes one pgoutput message at `buf[off]`, the payload of an XLogData message (its header before it). */
  decode(buf: Buffer, off: number): void {
    // XLogData's dataStart: for a change, the LSN of its own WAL record.
    this.messageHi = buf.readUInt32BE(off - 24);
    this.messageLo = buf.readUInt32BE(off - 20);
    switch (buf[off]) {
      case MSG_INSERT:
        return this.insert(buf, off + 1);
      case MSG_UPDATE:
        return this.update(buf, off + 1);
      case MSG_DELETE:
        return this.delete(buf, off + 1);
      case MSG_BEGIN:
        return this.begin(buf, off + 1);
      case MSG_COMMIT:
        return this.commit(buf, off + 1);
      case MSG_RELATION:
        return this.relation(buf, off + 1);
      case MSG_TRUNCATE:
        return this.truncate(buf, off + 1);
      case MSG_TYPE:
      case MSG_ORIGIN:
      case MSG_MESSAGE: // the heartbeat and other logical messages: only their transaction matters
        return;
      default:
        throw new Error(`unknown pgoutput message type ${JSON.stringify(String.fromCharCode(buf[off]))} (0x${buf[off].toString(16)})`);
    }
  }

  /** Forgets the transaction in progress (the connection was lost; it will be replayed). */
  resetTransaction(): void {
    this.inTransaction = false;
  }

  private begin(buf: Buffer, p: number): void {
    this.lsn = buf.readBigUInt64BE(p);
    this.lsnHi = buf.readUInt32BE(p);
    this.lsnLo = buf.readUInt32BE(p + 4);
    const tsMs = Math.floor(Number(buf.readBigInt64BE(p + 8)) / 1000) + PG_EPOCH_MS;
    this.inTransaction = true;
    this.partition = this.partitions.of(tsMs);
    this.lsnBytes = Buffer.from(this.lsn.toString());
    this.tsBytes = Buffer.from(',"__ts_ms":' + tsMs);
    this.heads = {};
    this.checkSkip = this.lsn <= this.state.maxHighWaterLsn;
  }

  private commit(buf: Buffer, p: number): void {
    const commitLsn = buf.readBigUInt64BE(p + 1);
    const endLsn = buf.readBigUInt64BE(p + 9);
    this.inTransaction = false;
    this.hooks.onCommit(commitLsn, endLsn);
  }

  private relation(buf: Buffer, p: number): void {
    const parsed = parseRelation(buf, p);
    const { oid, replicaIdentity } = parsed;
    const columns: ColumnInfo[] = [];
    const identity: number[] = [];
    let fixedBytes = 0;
    parsed.columns.forEach((c, i) => {
      if (c.flags & 1) identity.push(i);
      const prefix = Buffer.from("," + JSON.stringify(c.name) + ":");
      fixedBytes += prefix.length * 2;
      columns.push({
        name: c.name,
        prefix,
        typeOid: c.typeOid,
        kind: copyKindOf(this.catalog.shape(c.typeOid) ?? { kind: "scalar", scalar: "string" }),
        encode: this.catalog.encoder(c.typeOid) ?? JSON.stringify,
        binary: this.catalog.binaryDecoder(c.typeOid),
      });
    });
    let key = identity;
    if (replicaIdentity === "f") {
      // Without a primary key the whole row is the key (FULL flags every column as identity): an
      // update then lands as a delete of the old row and an insert of the new one, so the
      // before-image survives and a MERGE on all columns stays right.
      const pk = this.catalog.primaryKey(oid) ?? [];
      if (pk.length > 0) key = pk.map((n) => columns.findIndex((c) => c.name === n)).filter((i) => i >= 0);
    }
    const table = `${parsed.schema}.${parsed.name}`;
    const isCaptured = this.captured === undefined || this.captured.has(table);
    const comeback = relationSeen(this.state.snapshot, table, oid, this.lsn, isCaptured);
    if (comeback !== undefined) {
      if (typeof this.comeback === "function" && this.comeback(table, oid, comeback, this.lsn)) {
        // taken over (an incremental snapshot while streaming on)
      } else if (this.comeback !== "record") {
        const snapshot = this.state.snapshot!;
        snapshot.resnapshot = [...new Set([...(snapshot.resnapshot ?? []), table])];
        throw new ResnapshotNeeded(table, comeback);
      } else {
        this.logger.warn({ table, oid }, `${table} ${comeback}; SNAPSHOT_MODE=never, so its rows from before are not copied`);
        this.state.snapshot!.covered![table] = { oid, at: formatLsn(this.lsn) };
      }
    }
    if (isCaptured) refuseUnlandableNames(parsed.schema, parsed.name, columns);
    if (isCaptured && this.binary) {
      const undecodable = columns.find((c) => c.binary === undefined);
      if (undecodable !== undefined) throw new BinaryUnsupported(table, undecodable.name, this.catalog.typeName(undecodable.typeOid));
    }
    const previous = this.relations.get(oid);
    if (previous && previous.columns.map((c) => c.name).join(",") !== columns.map((c) => c.name).join(",")) {
      this.logger.info({ table, columns: columns.map((c) => c.name) }, "table columns changed; later records use the new columns");
    }
    const buffer = this.batcher.buffer(table);
    this.relations.set(oid, { oid, table, replicaIdentity, columns, identity, key, fixedBytes, buffer });
    const details = this.catalog.tableDetails(parsed.signature);
    if (details && (this.captured === undefined || this.captured.has(table))) {
      this.batcher.schema(buffer, this.catalog.tableSchema(table, parsed.columns, details));
    }
  }

  private relationOf(oid: number): RelationInfo | undefined {
    const rel = this.relations.get(oid);
    if (!rel) throw new Error(`pgoutput sent a change for relation ${oid} before its Relation message`);
    return this.captured === undefined || this.captured.has(rel.table) ? rel : undefined;
  }

  private readTuple(buf: Buffer, p: number, out: Tuple, rel: RelationInfo): number {
    const n = buf.readUInt16BE(p);
    p += 2;
    out.ensure(n);
    out.count = n;
    let bytes = 0;
    const { kinds, starts, ends } = out;
    for (let i = 0; i < n; i++) {
      const kind = buf[p++];
      kinds[i] = kind;
      if (kind === COL_TEXT) {
        const len = buf.readInt32BE(p);
        p += 4;
        starts[i] = p;
        ends[i] = p + len;
        bytes += len;
        p += len;
      } else if (kind === COL_BINARY) {
        const len = buf.readInt32BE(p);
        p += 4;
        bytes += this.binaryValue(rel, i, buf, p, p + len, out);
        p += len;
      } else if (kind !== COL_NULL && kind !== COL_UNCHANGED) throw new Error(`unknown pgoutput tuple column kind 0x${kind.toString(16)}`);
    }
    out.bytes = bytes;
    return p;
  }

  /**
   * Places the binary value buf[p, fe) of column i as text (see Tuple); returns its text's bytes
   * (for bytea the raw bytes, whose base64 is shorter than 8 × them, the bound emit uses).
   */
  private binaryValue(rel: RelationInfo, i: number, buf: Buffer, p: number, fe: number, out: Tuple): number {
    const decoder = rel.columns[i]?.binary;
    if (decoder === undefined) {
      // relation() refuses such a column before any change of a captured table arrives.
      throw new Error(`pgoutput sent column ${i + 1} of ${rel.table} in binary format, which the engine cannot decode`);
    }
    if (decoder.kind === "same") {
      if (decoder.skip > 0 && buf[p] !== JSONB_VERSION) throw new Error(`column ${JSON.stringify(rel.columns[i].name)} of ${rel.table}: jsonb in binary format version ${buf[p]}, which the engine does not know; set PG_BINARY=off`);
      out.kinds[i] = COL_TEXT;
      out.starts[i] = p + decoder.skip;
      out.ends[i] = fe;
      return fe - p;
    }
    if (decoder.kind === "bytea") {
      out.kinds[i] = COL_BYTEA;
      out.starts[i] = p;
      out.ends[i] = fe;
      return fe - p;
    }
    if (decoder.json !== undefined) {
      out.kinds[i] = COL_JSON;
      out.starts[i] = p;
      out.ends[i] = fe;
      return jsonBound(decoder.json.code, buf, p);
    }
    const scratch = this.scratch;
    const from = scratch.pos;
    decoder.toText(buf, p, fe, scratch);
    out.kinds[i] = COL_SCRATCH;
    out.starts[i] = from;
    out.ends[i] = scratch.pos;
    return scratch.pos - from;
  }

  /** A COL_JSON value; one its writer leaves to the text path goes through the scratch text. */
  private writeJson(column: ColumnInfo, buf: Buffer, p: number, fe: number, out: Buffer, pos: number): number {
    const decoder = column.binary as Extract<BinaryDecoder, { kind: "convert" }>;
    const written = writeJson(decoder.json!.code, buf, p, out, pos);
    if (written >= 0) return written;
    const scratch = this.scratch;
    const from = scratch.pos;
    decoder.toText(buf, p, fe, scratch);
    return writeWireValue(column, scratch.buf, from, scratch.pos, out, pos);
  }

  /** The buffer a value of `kind` is in: the message, or the scratch text of binary values. */
  private source(kind: number, buf: Buffer): Buffer {
    return kind === COL_SCRATCH ? this.scratch.buf : buf;
  }

  /**
   * The `__seq` of the k-th event (0, 1) of the change being decoded, from its WAL record's distance
   * to the transaction's commit record, in WAL's 8-byte alignment units: 10^10 − 2·distance + k.
   * It depends on the WAL alone — not on which tables are captured or published (PostgreSQL 15+
   * even delays BEGIN to the first published change), nor on a cached primary key — so a replay
   * under another configuration skips exactly the events that are durable. A record is at least
   * 24 bytes, so the next change's value is at least 6 higher than this one's: k (or a relation's
   * index in a multi-table TRUNCATE record, whose size grows with it) never reaches it.
   */
  private seqOf(k: number): number {
    // Exact in doubles: WAL distances stay far below 2^53 bytes.
    const distance = (this.lsnHi - this.messageHi) * 4294967296 + (this.lsnLo - this.messageLo);
    const seq = MAX_SEQ - Math.floor(distance / 8) * 2 + k;
    if (seq < 0) {
      throw new Error(`the transaction committing at ${this.lsn} has changes more than ${MAX_SEQ * 4} bytes of WAL before its commit; __seq (10 digits in object names) cannot number them`);
    }
    return seq;
  }

  /** False when the event at `seq` is already durable (a replay after a restart). */
  private isNew(rel: RelationInfo, seq: number): boolean {
    if (this.checkSkip) {
      const hw = this.state.highWater.get(rel.table);
      if (hw && (this.lsn < hw.lsn || (this.lsn === hw.lsn && seq <= hw.seq))) return false;
    }
    return true;
  }

  /** The record's opening up to the `__seq` value for this transaction: HEAD[op], the commit LSN, `,"__seq":`. */
  private headOf(op: Op): Buffer {
    let head = this.heads[op];
    if (head === undefined) {
      head = Buffer.concat([HEAD[op], this.lsnBytes, SEQ_PART]);
      this.heads[op] = head;
    }
    return head;
  }

  /**
   * Writes one record into the table's buffer: the metadata, then `columns` of `tuple` (all when
   * undefined), unchanged TOASTed values taken from `fill` (an 'O' tuple) or listed in __unchanged.
   */
  private emit(rel: RelationInfo, op: Op, seq: number, buf: Buffer, tuple: Tuple | undefined, columns: number[] | undefined, fill: Tuple | undefined): void {
    const buffer = rel.buffer;
    const rawBytes = tuple ? tuple.bytes + (fill ? fill.bytes : 0) : 0;
    // A large row is sized exactly (and checked against MAX_RECORD_BYTES) before it is written.
    const bound = worstCase(rawBytes, rel.fixedBytes + 128);
    const large = tuple !== undefined && (rawBytes >= LARGE_ROW_BYTES || bound > this.batcher.maxRecordBytes);
    const size = large ? this.largeRecordBytes(rel, buf, tuple!, columns, fill) : bound;
    this.batcher.begin(buffer, this.lsn, seq, this.partition, large ? size : 0);
    const out = buffer.reserve(size);
    const from = buffer.pos;
    let pos = put(out, from, this.headOf(op));
    pos = putSeq(out, pos, seq);
    pos = put(out, pos, this.tsBytes);
    if (tuple !== undefined) {
      const cols = rel.columns;
      let unchanged: string | undefined;
      const n = columns ? columns.length : Math.min(tuple.count, cols.length);
      for (let k = 0; k < n; k++) {
        const i = columns ? columns[k] : k;
        let src = tuple;
        let kind = tuple.kinds[i];
        if (kind === COL_UNCHANGED && fill !== undefined && fill.kinds[i] !== COL_UNCHANGED) {
          src = fill;
          kind = fill.kinds[i];
        }
        const column = cols[i];
        if (kind === COL_UNCHANGED) {
          if (columns) continue; // key-only records simply leave it out
          const quoted = JSON.stringify(column.name);
          unchanged = unchanged === undefined ? quoted : unchanged + "," + quoted;
          continue;
        }
        pos = put(out, pos, column.prefix);
        if (kind === COL_NULL) pos = put(out, pos, NULL_BYTES);
        else if (kind === COL_TEXT) pos = writeWireValue(column, buf, src.starts[i], src.ends[i], out, pos);
        else if (kind === COL_JSON) pos = this.writeJson(column, buf, src.starts[i], src.ends[i], out, pos);
        else if (kind === COL_SCRATCH) pos = writeWireValue(column, this.scratch.buf, src.starts[i], src.ends[i], out, pos);
        else pos = putBase64(buf, src.starts[i], src.ends[i], out, pos);
      }
      if (unchanged !== undefined) pos += out.write(UNCHANGED_OPEN + unchanged + "]", pos);
    }
    out[pos++] = 0x7d; // }
    out[pos++] = 0x0a; // newline
    buffer.pos = pos;
    this.batcher.written(buffer, pos - from);
  }

  /**
   * The bytes a large record needs (exact for bytea, text-like and json values): the metadata, the
   * column prefixes and the values emit writes. Throws RecordTooLargeError beyond MAX_RECORD_BYTES.
   */
  private largeRecordBytes(rel: RelationInfo, buf: Buffer, tuple: Tuple, columns: number[] | undefined, fill: Tuple | undefined): number {
    const cols = rel.columns;
    const n = columns ? columns.length : Math.min(tuple.count, cols.length);
    const sizes: number[] = [];
    let bytes = rel.fixedBytes + 128;
    for (let k = 0; k < n; k++) {
      const i = columns ? columns[k] : k;
      let src = tuple;
      if (tuple.kinds[i] === COL_UNCHANGED && fill !== undefined && fill.kinds[i] !== COL_UNCHANGED) src = fill;
      const kind = src.kinds[i];
      if (kind === COL_BYTEA) sizes[k] = base64Bytes(src.ends[i] - src.starts[i]);
      else if (kind === COL_JSON) sizes[k] = jsonBound((cols[i].binary as Extract<BinaryDecoder, { kind: "convert" }>).json!.code, buf, src.starts[i]);
      else sizes[k] = kind === COL_TEXT || kind === COL_SCRATCH ? wireValueBytes(cols[i], this.source(kind, buf), src.starts[i], src.ends[i]) : 4;
      bytes += sizes[k];
    }
    const limit = this.batcher.maxRecordBytes;
    if (bytes > limit) {
      const largest = largestColumn(sizes);
      const column = cols[columns ? columns[largest.index] : largest.index]?.name;
      throw new RecordTooLargeError(rel.table, column, bytes, limit, `the change of ${rel.table} at WAL position ${formatLsn(this.messageLsn())} needs a landing record of ${bytes} bytes (column ${JSON.stringify(column)}: ${largest.bytes} bytes)`, false);
    }
    return bytes;
  }

  /**
   * For the connection's MessageSizeGate: reads a change too large to be gathered as it streams
   * by, and names the table and the column (a change of a table that is not captured is dropped).
   */
  refusedChange(): MessageSkimmer {
    const limit = this.batcher.maxRecordBytes;
    const reader = new StepReader(skimPgoutputChange(refuseMessagesAbove(limit)));
    const verdict = (): Error | null => {
      if (reader.result === undefined) return new Error("a replication message ended before its change could be read");
      const change = reader.result!;
      // A large logical message (pg_logical_emit_message by someone else) lands nothing anyway.
      if (change.type === MSG_MESSAGE) return null;
      if (change.type !== MSG_INSERT && change.type !== MSG_UPDATE && change.type !== MSG_DELETE) {
        return new Error(`PostgreSQL sent a replication message (type ${JSON.stringify(String.fromCharCode(change.type))}) larger than ${refuseMessagesAbove(limit)} bytes that is not a row change; MAX_RECORD_BYTES=${limit} does not allow it`);
      }
      const rel = this.announced.get(change.relid);
      if (rel !== undefined && this.captured !== undefined && !this.captured.has(rel.table)) return null;
      const table = rel?.table ?? `relation ${change.relid}`;
      const largest = largestColumn(change.sizes);
      const column = rel?.columns[largest.index];
      const least = Math.ceil(largest.bytes / 2);
      return new RecordTooLargeError(table, column, least, limit, `the change of ${table} at WAL position ${formatLsn(change.walStart)} has column ${JSON.stringify(column ?? `#${largest.index + 1}`)} with ${largest.bytes} bytes as PostgreSQL sends it, so its landing record needs at least ${least} bytes`, false);
    };
    return {
      feed: (piece) => (reader.feed(piece) !== undefined ? verdict() : undefined),
      finish: verdict,
    };
  }

  private insert(buf: Buffer, p: number): void {
    this.scratch.pos = 0;
    const rel = this.relationOf(buf.readUInt32BE(p));
    const seq = this.seqOf(0);
    if (!rel || !this.isNew(rel, seq)) return;
    // p + 4 is the 'N' marker.
    this.readTuple(buf, p + 5, this.newTuple, rel);
    this.emit(rel, "c", seq, buf, this.newTuple, undefined, undefined);
  }

  private update(buf: Buffer, p: number): void {
    this.scratch.pos = 0;
    const rel = this.relationOf(buf.readUInt32BE(p));
    if (!rel) return;
    p += 4;
    let oldKind = 0;
    if (buf[p] === TUPLE_KEY || buf[p] === TUPLE_OLD) {
      oldKind = buf[p];
      p = this.readTuple(buf, p + 1, this.oldTuple, rel);
    }
    if (buf[p] !== TUPLE_NEW) throw new Error(`pgoutput UPDATE without a new tuple (0x${buf[p]?.toString(16)})`);
    this.readTuple(buf, p + 1, this.newTuple, rel);
    const old = oldKind === 0 ? undefined : this.oldTuple;
    const fill = oldKind === TUPLE_OLD ? this.oldTuple : undefined;
    if (old !== undefined && this.keyChanged(rel, buf, old, this.newTuple)) {
      // The primary key changed: a delete of the old key, then an insert of the new row.
      if (this.isNew(rel, this.seqOf(0))) this.emit(rel, "d", this.seqOf(0), buf, old, oldKind === TUPLE_KEY ? rel.identity : undefined, undefined);
      if (this.isNew(rel, this.seqOf(1))) this.emit(rel, "c", this.seqOf(1), buf, this.newTuple, undefined, fill);
      return;
    }
    if (this.isNew(rel, this.seqOf(0))) this.emit(rel, "u", this.seqOf(0), buf, this.newTuple, undefined, fill);
  }

  private keyChanged(rel: RelationInfo, buf: Buffer, before: Tuple, after: Tuple): boolean {
    for (const i of rel.key) {
      const a = before.kinds[i];
      const b = after.kinds[i];
      if (a === COL_UNCHANGED || b === COL_UNCHANGED) continue;
      if (a !== b) return true;
      if (a === COL_NULL) continue;
      if (this.source(a, buf).compare(this.source(b, buf), after.starts[i], after.ends[i], before.starts[i], before.ends[i]) !== 0) return true;
    }
    return false;
  }

  private delete(buf: Buffer, p: number): void {
    this.scratch.pos = 0;
    const rel = this.relationOf(buf.readUInt32BE(p));
    const seq = this.seqOf(0);
    if (!rel || !this.isNew(rel, seq)) return;
    const kind = buf[p + 4];
    this.readTuple(buf, p + 5, this.oldTuple, rel);
    this.emit(rel, "d", seq, buf, this.oldTuple, kind === TUPLE_KEY ? rel.identity : undefined, undefined);
  }

  private truncate(buf: Buffer, p: number): void {
    const count = buf.readUInt32BE(p);
    p += 5; // count, options
    for (let i = 0; i < count; i++) {
      const rel = this.relationOf(buf.readUInt32BE(p + i * 4));
      if (rel && this.isNew(rel, this.seqOf(i))) this.emit(rel, "t", this.seqOf(i), buf, undefined, undefined, undefined);
    }
  }
}

/**
 * The session streams in binary (PG_BINARY) but a captured table has a column whose type the
 * engine has no binary decoder for: the session ends (what came before is made durable) and the
 * engine streams in text from then on, or stops when PG_BINARY=on.
 */
export class BinaryUnsupported extends Error {
  constructor(
    readonly table: string,
    readonly column: string,
    readonly typeName: string,
  ) {
    super(`column ${JSON.stringify(column)} of ${table} has type ${typeName}, which the engine cannot decode from pgoutput's binary format`);
    this.name = "BinaryUnsupported";
  }
}

/** Writes a __seq (0 ≤ seq < 2^53; nearly always 10 digits) at out[pos] with int32 arithmetic; returns the new position. */
function putSeq(out: Buffer, pos: number, seq: number): number {
  if (seq < 1_000_000_000) return putInt(out, pos, seq);
  const hi = Math.floor(seq / 1_000_000_000);
  let lo = seq - hi * 1_000_000_000;
  pos = putInt(out, pos, hi);
  for (let i = pos + 8; i >= pos; i--) {
    const q = (lo / 10) | 0;
    out[i] = 48 + lo - q * 10;
    lo = q;
  }
  return pos + 9;
}

/** Bytes per base64 piece of a binary bytea: a multiple of 3, so the pieces join without padding. */
const BASE64_PIECE = 3 * 32 * 1024;

/** Raw bytea bytes src[from, to) → `"<base64>"` at out[pos], a bounded piece at a time (as text mode writes its hex). */
function putBase64(src: Buffer, from: number, to: number, out: Buffer, pos: number): number {
  out[pos++] = 0x22;
  for (let a = from; a < to; a += BASE64_PIECE) pos += out.write(src.toString("base64", a, Math.min(to, a + BASE64_PIECE)), pos, "latin1");
  out[pos++] = 0x22;
  return pos;
}

/** The bytes putBase64 writes for `n` raw bytes. */
const base64Bytes = (n: number) => 4 * Math.ceil(n / 3) + 2;

/**
 * doctor and start-up refuse these names (setup.ts); this catches a table or column that gets one
 * later (ALTER TABLE … ADD COLUMN "__op"), before a broken record lands. Nothing after it is
 * confirmed, so nothing is lost; the engine stops with the fix.
 */
function refuseUnlandableNames(schema: string, table: string, columns: ColumnInfo[]): void {
  const label = `${schema}.${table}`;
  // The WAL keeps the changes written under the old name: they decode that way after any fix.
  const fixNote = "; the slot still holds the changes written under this name, so then drop the slot PG_SLOT (SELECT pg_drop_replication_slot('<PG_SLOT>');) and the engine snapshots again";
  const unsafe = [schema, table].filter((n) => !LANDING_SAFE_NAME.test(n));
  if (unsafe.length > 0) {
    throw new SourceSetupError([
      {
        name: `table ${label}`,
        ok: false,
        detail: unsafeTableNameDetail(unsafe),
        fix: `rename it, or stop publishing it (ALTER PUBLICATION … DROP TABLE …)${fixNote}`,
      },
    ]);
  }
  const reserved = columns.map((c) => c.name).filter(isReservedColumn);
  if (reserved.length > 0) {
    throw new SourceSetupError([
      {
        name: `table ${label}`,
        ok: false,
        detail: reservedColumnsDetail(label, reserved),
        fix: `rename ${reserved.length === 1 ? "it" : "them"}, or leave ${reserved.length === 1 ? "it" : "them"} out of the publication with a column list (PostgreSQL 15+)${fixNote}`,
      },
    ]);
  }
}
