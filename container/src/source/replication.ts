/**
 * The logical replication stream on a `replication: "database"` connection: creates the slot (with
 * the exported snapshot), runs START_REPLICATION over pg's CopyBoth mode, parses XLogData ('w')
 * and keepalives ('k'), and sends Standby Status Updates ('r') with the confirmed LSN.
 */
import type { Client } from "pg";
import { formatLsn, parseLsn } from "./lsn";
import { PG_EPOCH_MS } from "./pgoutput";
import { ident } from "./connection";

const XLOG_DATA = 0x77; // w
const KEEPALIVE = 0x6b; // k
/** Offset of the pgoutput message inside an XLogData CopyData payload. */
export const XLOG_HEADER = 25;

export interface CreatedSlot {
  consistentPoint: bigint;
  snapshotName: string | undefined;
}

interface PgConnection {
  on(event: "copyData", listener: (msg: { chunk: Buffer }) => void): void;
  removeListener(event: "copyData", listener: (msg: { chunk: Buffer }) => void): void;
  sendCopyFromChunk(chunk: Buffer): void;
  stream: NodeJS.ReadableStream & { pause(): void; resume(): void };
}

export function connectionOf(client: Client): PgConnection {
  return (client as unknown as { connection: PgConnection }).connection;
}

export async function serverVersionNum(client: Client): Promise<number> {
  const { rows } = await client.query<{ server_version_num: string }>("SHOW server_version_num");
  return Number(rows[0].server_version_num);
}

/**
 * CREATE_REPLICATION_SLOT … LOGICAL pgoutput, exporting a snapshot when asked. The exported
 * snapshot stays valid only while this connection runs no other command.
 */
export async function createSlot(client: Client, slot: string, options: { exportSnapshot: boolean; temporary?: boolean; versionNum: number }): Promise<CreatedSlot> {
  const temporary = options.temporary ? " TEMPORARY" : "";
  let sql: string;
  if (options.versionNum >= 150000) sql = `CREATE_REPLICATION_SLOT ${ident(slot)}${temporary} LOGICAL pgoutput (SNAPSHOT '${options.exportSnapshot ? "export" : "nothing"}')`;
  else sql = `CREATE_REPLICATION_SLOT ${ident(slot)}${temporary} LOGICAL pgoutput ${options.exportSnapshot ? "EXPORT_SNAPSHOT" : "NOEXPORT_SNAPSHOT"}`;
  const result = await client.query<{ consistent_point: string; snapshot_name: string | null }>(sql);
  const row = result.rows[0];
  return { consistentPoint: parseLsn(row.consistent_point), snapshotName: row.snapshot_name ?? undefined };
}

/**
 * Whether the first transaction a new slot streams commits exactly AT its consistent point. The
 * consistent point is the end of the xl_running_xacts record the slot became consistent at; when
 * the very next WAL record is a commit (seen in ~3% of slot creations under concurrent writes),
 * that transaction is streamed with commit LSN = the consistent point, yet is not in the exported
 * snapshot. Its changes would then share `__lsn` with the snapshot's `r` records: the
 * (__lsn, __seq) order would be ambiguous, its objects could take the snapshot's object names, and
 * the high-water mark the snapshot leaves, (consistent point, last ordinal), would skip them as
 * replayed. The caller takes its snapshot from a new slot instead.
 *
 * Our own logical message (written at once, flushed by a synchronous commit) settles which record
 * sits at the consistent point if nothing was written there yet, and makes the WAL up to it
 * readable; peeking (which consumes nothing) then shows the first streamed transaction. A temporary
 * slot can only be read by the session that created it: pass that (replication) connection as
 * `owner`.
 */
export async function commitAtConsistentPoint(client: Client, slot: string, publication: string, consistentPoint: bigint, messagePrefix: string, owner: Client = client): Promise<boolean> {
  await client.query("BEGIN");
  try {
    await client.query("SET LOCAL synchronous_commit = on");
    await client.query("SELECT pg_logical_emit_message(true, $1, 'snapshot boundary')", [messagePrefix]);
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
  return (await firstStreamedCommitLsn(owner, slot, publication)) === consistentPoint;
}

/**
 * The commit LSN of the first transaction the slot would stream (undefined when there is none
 * yet), read without consuming anything. PostgreSQL decodes that whole transaction for the peek
 * (spilling to disk beyond logical_decoding_work_mem and work_mem), but only the first 9 bytes of
 * its first message — 'B' and final_lsn — come back: a bulk load committed first would otherwise
 * arrive here in full and exhaust the engine's memory. Sent without parameters, as the
 * replication protocol requires.
 */
export async function firstStreamedCommitLsn(client: Client, slot: string, publication: string): Promise<bigint | undefined> {
  const literal = (text: string) => "'" + text.replace(/'/g, "''") + "'";
  const { rows } = await client.query<{ head: Buffer }>(
    `SELECT substring(data FROM 1 FOR 9) AS head
       FROM pg_logical_slot_peek_binary_changes(${literal(slot)}, NULL, 1, 'proto_version', '1', 'publication_names', ${literal(ident(publication))})
      WHERE get_byte(data, 0) = 66 -- 'B': final_lsn follows
      LIMIT 1`,
  );
  return rows.length === 0 ? undefined : rows[0].head.readBigUInt64BE(1);
}

export interface StreamHandlers {
  /** One XLogData message; the pgoutput message starts at `chunk[XLOG_HEADER]`. */
  onXLogData(chunk: Buffer): void;
  /** The server's WAL end, from keepalives. */
  onWalEnd(walEnd: bigint): void;
}

export class ReplicationStream {
  private confirmed = 0n;
  private statusTimer: NodeJS.Timeout | undefined;
  private readonly connection: PgConnection;
  private readonly status = Buffer.alloc(34);
  private listener: ((msg: { chunk: Buffer }) => void) | undefined;

  constructor(
    private readonly client: Client,
    private readonly handlers: StreamHandlers,
  ) {
    this.connection = connectionOf(client);
  }

  get confirmedLsn(): bigint {
    return this.confirmed;
  }

  /**
   * START_REPLICATION; resolves when the server ends the stream, rejects on errors (e.g. 55006:
   * the slot is active for another PID). `startLsn` 0 lets the server start at confirmed_flush_lsn.
   */
  start(slot: string, publication: string, startLsn: bigint, confirmed: bigint, versionNum: number): Promise<void> {
    this.confirmed = confirmed;
    this.listener = (msg) => {
      const chunk = msg.chunk;
      const type = chunk[0];
      if (type === XLOG_DATA) this.handlers.onXLogData(chunk);
      else if (type === KEEPALIVE) {
        this.handlers.onWalEnd(chunk.readBigUInt64BE(1));
        if (chunk[17] === 1) this.sendStatus();
      }
    };
    this.connection.on("copyData", this.listener);
    this.statusTimer = setInterval(() => this.sendStatus(), 10_000);
    this.statusTimer.unref();
    // Logical messages (the heartbeat) need PG14+; before 15 pgoutput sends empty transactions anyway.
    const messages = versionNum >= 140000 ? ", messages 'true'" : "";
    const sql = `START_REPLICATION SLOT ${ident(slot)} LOGICAL ${formatLsn(startLsn)} (proto_version '1', publication_names '${ident(publication).replace(/'/g, "''")}'${messages})`;
    return this.client.query(sql).then(
      () => this.stopTimers(),
      (err: unknown) => {
        this.stopTimers();
        throw err;
      },
    );
  }

  /** Records a new confirmed LSN and tells the server at once. */
  confirm(lsn: bigint): void {
    if (lsn <= this.confirmed) return;
    this.confirmed = lsn;
    this.sendStatus();
  }

  /** A status update that asks the server for a keepalive (and so its current WAL end). */
  requestReply(): void {
    this.sendStatus(true);
  }

  /** Standby Status Update: written = flushed = applied = the confirmed LSN. */
  sendStatus(replyRequested = false): void {
    const b = this.status;
    b[0] = 0x72; // r
    b.writeBigUInt64BE(this.confirmed, 1);
    b.writeBigUInt64BE(this.confirmed, 9);
    b.writeBigUInt64BE(this.confirmed, 17);
    b.writeBigInt64BE(BigInt(Date.now() - PG_EPOCH_MS) * 1000n, 25);
    b[33] = replyRequested ? 1 : 0;
    try {
      this.connection.sendCopyFromChunk(Buffer.from(b));
    } catch {
      // The connection is gone; the session notices through START_REPLICATION's rejection.
    }
  }

  pause(): void {
    this.connection.stream.pause();
  }

  resume(): void {
    this.connection.stream.resume();
  }

  private stopTimers(): void {
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.statusTimer = undefined;
    if (this.listener) this.connection.removeListener("copyData", this.listener);
    this.listener = undefined;
  }

  stop(): void {
    this.stopTimers();
  }
}
