/**
 * pgoutput (protocol version 1) → landing records, straight from the XLogData payload bytes.
 *
 * Each change becomes one NDJSON line built by string concatenation: the metadata first
 * (`__op`, `__deleted`, `__lsn`, `__seq`, `__ts_ms`), then the row's columns with their names
 * pre-escaped, each value through its type's encoder. `__seq` counts every event this transaction
 * emits, across tables, so a replay numbers them the same way; events at or below a table's
 * high-water mark (already durable before a restart) are counted but not emitted again.
 */
import type { Logger } from "pino";
import type { Batcher, TableBuffer } from "../batching/batcher";
import type { EngineState } from "../batching/state";
import type { TypeCatalog } from "./decoding/catalog";
import type { Encoder } from "./decoding/values";

export interface ColumnInfo {
  name: string;
  /** `,"name":` */
  prefix: string;
  typeOid: number;
  encode: Encoder;
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
  buffer: TableBuffer;
}

/** The quoted JSON names of the metadata fields, for the line prefix of each operation. */
const HEAD = {
  r: '{"__op":"r","__deleted":"false","__lsn":',
  c: '{"__op":"c","__deleted":"false","__lsn":',
  u: '{"__op":"u","__deleted":"false","__lsn":',
  d: '{"__op":"d","__deleted":"true","__lsn":',
  t: '{"__op":"t","__deleted":"false","__lsn":',
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

/** One tuple's values: text, null, or undefined for an unchanged TOASTed value. */
type Values = (string | null | undefined)[];

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

export interface DecoderHooks {
  /** A transaction's COMMIT was decoded (all its events handed to the batcher or skipped). */
  onCommit(commitLsn: bigint, endLsn: bigint): void;
}

export class PgOutputDecoder {
  private readonly relations = new Map<number, RelationInfo>();
  private readonly oldValues: Values = [];
  private readonly newValues: Values = [];
  private readonly partitions = new PartitionClock();
  private inTransaction = false;
  private lsn = 0n;
  private seq = 0;
  private partition = "";
  /** `<lsn>,"__seq":` */
  private lsnPart = "";
  /** `,"__ts_ms":<ms>` */
  private tsPart = "";
  private checkSkip = false;

  constructor(
    private readonly batcher: Batcher,
    private readonly state: EngineState,
    private readonly catalog: TypeCatalog,
    /** The captured tables ("schema.table"); changes of other published tables are ignored. */
    private readonly captured: Set<string>,
    private readonly hooks: DecoderHooks,
    private readonly logger: Logger,
  ) {}

  /**
   * For a Relation message: the type OIDs and (under REPLICA IDENTITY FULL) the table whose primary
   * key the catalog must know before `decode` can take it; undefined when nothing is missing.
   */
  catalogNeeds(buf: Buffer, off: number): { types: number[]; relid: number | undefined } | undefined {
    if (buf[off] !== MSG_RELATION) return undefined;
    const relid = buf.readUInt32BE(off + 1);
    let p = buf.indexOf(0, off + 5) + 1;
    p = buf.indexOf(0, p) + 1;
    const identity = String.fromCharCode(buf[p]);
    const ncols = buf.readUInt16BE(p + 1);
    p += 3;
    const oids: number[] = [];
    for (let i = 0; i < ncols; i++) {
      p = buf.indexOf(0, p + 1) + 1;
      oids.push(buf.readUInt32BE(p));
      p += 8;
    }
    const types = this.catalog.missingTypes(oids);
    const needKey = identity === "f" && this.catalog.primaryKey(relid) === undefined;
    return types.length > 0 || needKey ? { types, relid: needKey ? relid : undefined } : undefined;
  }

  /** Decodes one pgoutput message at `buf[off]`. */
  decode(buf: Buffer, off: number): void {
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
    const tsMs = Math.floor(Number(buf.readBigInt64BE(p + 8)) / 1000) + PG_EPOCH_MS;
    this.inTransaction = true;
    this.seq = 0;
    this.partition = this.partitions.of(tsMs);
    this.lsnPart = this.lsn.toString() + ',"__seq":';
    this.tsPart = ',"__ts_ms":' + tsMs;
    this.checkSkip = this.lsn <= this.state.maxHighWaterLsn;
  }

  private commit(buf: Buffer, p: number): void {
    const commitLsn = buf.readBigUInt64BE(p + 1);
    const endLsn = buf.readBigUInt64BE(p + 9);
    this.inTransaction = false;
    this.hooks.onCommit(commitLsn, endLsn);
  }

  private relation(buf: Buffer, p: number): void {
    const oid = buf.readUInt32BE(p);
    let q = buf.indexOf(0, p + 4);
    const schema = buf.toString("utf8", p + 4, q);
    const r = buf.indexOf(0, q + 1);
    const name = buf.toString("utf8", q + 1, r);
    q = r + 1;
    const replicaIdentity = String.fromCharCode(buf[q]);
    const ncols = buf.readUInt16BE(q + 1);
    q += 3;
    const columns: ColumnInfo[] = [];
    const identity: number[] = [];
    for (let i = 0; i < ncols; i++) {
      const flags = buf[q];
      const end = buf.indexOf(0, q + 1);
      const colName = buf.toString("utf8", q + 1, end);
      const typeOid = buf.readUInt32BE(end + 1);
      q = end + 9;
      if (flags & 1) identity.push(i);
      columns.push({ name: colName, prefix: "," + JSON.stringify(colName) + ":", typeOid, encode: this.catalog.encoder(typeOid) ?? JSON.stringify });
    }
    let key = identity;
    if (replicaIdentity === "f") {
      const pk = this.catalog.primaryKey(oid) ?? [];
      key = pk.map((n) => columns.findIndex((c) => c.name === n)).filter((i) => i >= 0);
    }
    const table = `${schema}.${name}`;
    const previous = this.relations.get(oid);
    if (previous && previous.columns.map((c) => c.name).join(",") !== columns.map((c) => c.name).join(",")) {
      this.logger.info({ table, columns: columns.map((c) => c.name) }, "table columns changed; later records use the new columns");
    }
    this.relations.set(oid, { oid, table, replicaIdentity, columns, identity, key, buffer: this.batcher.buffer(table) });
  }

  private relationOf(oid: number): RelationInfo | undefined {
    const rel = this.relations.get(oid);
    if (!rel) throw new Error(`pgoutput sent a change for relation ${oid} before its Relation message`);
    return this.captured.has(rel.table) ? rel : undefined;
  }

  private readTuple(buf: Buffer, p: number, out: Values): number {
    const n = buf.readUInt16BE(p);
    p += 2;
    out.length = n;
    for (let i = 0; i < n; i++) {
      const kind = buf[p++];
      if (kind === COL_TEXT || kind === COL_BINARY) {
        const len = buf.readInt32BE(p);
        p += 4;
        out[i] = buf.toString("utf8", p, p + len);
        p += len;
      } else if (kind === COL_NULL) out[i] = null;
      else if (kind === COL_UNCHANGED) out[i] = undefined;
      else throw new Error(`unknown pgoutput tuple column kind 0x${kind.toString(16)}`);
    }
    return p;
  }

  /** Assigns the next __seq; returns the line head, or undefined when the event is already durable. */
  private head(rel: RelationInfo, op: Op): string | undefined {
    const seq = this.seq++;
    if (this.checkSkip) {
      const hw = this.state.highWater.get(rel.table);
      if (hw && (this.lsn < hw.lsn || (this.lsn === hw.lsn && seq <= hw.seq))) return undefined;
    }
    return HEAD[op] + this.lsnPart + seq + this.tsPart;
  }

  private emit(rel: RelationInfo, line: string): void {
    this.batcher.add(rel.buffer, line, this.lsn, this.seq - 1, this.partition);
  }

  /** The row's columns; unchanged TOASTed ones are filled from `fill` (an 'O' tuple) or listed. */
  private rowColumns(rel: RelationInfo, values: Values, fill: Values | undefined): string {
    const columns = rel.columns;
    let out = "";
    let unchanged: string | undefined;
    for (let i = 0; i < values.length; i++) {
      let v = values[i];
      if (v === undefined && fill !== undefined) v = fill[i];
      if (v === undefined) {
        const name = JSON.stringify(columns[i].name);
        unchanged = unchanged === undefined ? name : unchanged + "," + name;
      } else {
        const column = columns[i];
        out += v === null ? column.prefix + "null" : column.prefix + column.encode(v);
      }
    }
    return unchanged === undefined ? out : out + ',"__unchanged":[' + unchanged + "]";
  }

  private columnsAt(rel: RelationInfo, values: Values, indexes: number[]): string {
    let out = "";
    for (const i of indexes) {
      const v = values[i];
      if (v === undefined) continue;
      const column = rel.columns[i];
      out += v === null ? column.prefix + "null" : column.prefix + column.encode(v);
    }
    return out;
  }

  private insert(buf: Buffer, p: number): void {
    const rel = this.relationOf(buf.readUInt32BE(p));
    if (!rel) return;
    const head = this.head(rel, "c");
    if (head === undefined) return;
    // p + 4 is the 'N' marker.
    this.readTuple(buf, p + 5, this.newValues);
    this.emit(rel, head + this.rowColumns(rel, this.newValues, undefined) + "}");
  }

  private update(buf: Buffer, p: number): void {
    const rel = this.relationOf(buf.readUInt32BE(p));
    if (!rel) return;
    p += 4;
    let oldKind = 0;
    if (buf[p] === TUPLE_KEY || buf[p] === TUPLE_OLD) {
      oldKind = buf[p];
      p = this.readTuple(buf, p + 1, this.oldValues);
    }
    if (buf[p] !== TUPLE_NEW) throw new Error(`pgoutput UPDATE without a new tuple (0x${buf[p]?.toString(16)})`);
    this.readTuple(buf, p + 1, this.newValues);
    const oldValues = oldKind === 0 ? undefined : this.oldValues;
    const fill = oldKind === TUPLE_OLD ? this.oldValues : undefined;
    if (oldValues !== undefined && this.keyChanged(rel, oldValues, this.newValues)) {
      // The primary key changed: a delete of the old key, then an insert of the new row.
      const deleteHead = this.head(rel, "d");
      if (deleteHead !== undefined) {
        const old = oldKind === TUPLE_KEY ? this.columnsAt(rel, oldValues, rel.identity) : this.rowColumns(rel, oldValues, undefined);
        this.emit(rel, deleteHead + old + "}");
      }
      const insertHead = this.head(rel, "c");
      if (insertHead !== undefined) this.emit(rel, insertHead + this.rowColumns(rel, this.newValues, fill) + "}");
      return;
    }
    const head = this.head(rel, "u");
    if (head === undefined) return;
    this.emit(rel, head + this.rowColumns(rel, this.newValues, fill) + "}");
  }

  private keyChanged(rel: RelationInfo, oldValues: Values, newValues: Values): boolean {
    for (const i of rel.key) {
      const before = oldValues[i];
      const after = newValues[i];
      if (before !== undefined && after !== undefined && before !== after) return true;
    }
    return false;
  }

  private delete(buf: Buffer, p: number): void {
    const rel = this.relationOf(buf.readUInt32BE(p));
    if (!rel) return;
    const kind = buf[p + 4];
    const head = this.head(rel, "d");
    if (head === undefined) return;
    this.readTuple(buf, p + 5, this.oldValues);
    const columns = kind === TUPLE_KEY ? this.columnsAt(rel, this.oldValues, rel.identity) : this.rowColumns(rel, this.oldValues, undefined);
    this.emit(rel, head + columns + "}");
  }

  private truncate(buf: Buffer, p: number): void {
    const count = buf.readUInt32BE(p);
    p += 5; // count, options
    for (let i = 0; i < count; i++) {
      const rel = this.relationOf(buf.readUInt32BE(p + i * 4));
      if (!rel) continue;
      const head = this.head(rel, "t");
      if (head !== undefined) this.emit(rel, head + "}");
    }
  }
}
