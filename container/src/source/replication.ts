/**
 * The logical replication stream on a `replication: "database"` connection: creates the slot (with
 * the exported snapshot), runs START_REPLICATION over pg's CopyBoth mode, parses XLogData ('w')
 * and keepalives ('k'), and sends Standby Status Updates ('r') with the confirmed LSN.
 */
import type { Client } from "pg";
import type { Logger } from "pino";
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
  stream: NodeJS.ReadableStream & { pause(): void; resume(): void; isPaused(): boolean; destroy(err?: Error): void };
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
export async function createSlot(
  client: Client,
  slot: string,
  options: { exportSnapshot: boolean; temporary?: boolean; versionNum: number; watch?: SlotCreationWatch; failover?: boolean },
): Promise<CreatedSlot> {
  const temporary = options.temporary ? " TEMPORARY" : "";
  // PostgreSQL 17+: a failover slot is synchronized to standbys (sync_replication_slots) and survives a promotion.
  const failover = options.failover && !options.temporary && options.versionNum >= 170000 ? ", FAILOVER" : "";
  let sql: string;
  if (options.versionNum >= 150000) sql = `CREATE_REPLICATION_SLOT ${ident(slot)}${temporary} LOGICAL pgoutput (SNAPSHOT '${options.exportSnapshot ? "export" : "nothing"}'${failover})`;
  else sql = `CREATE_REPLICATION_SLOT ${ident(slot)}${temporary} LOGICAL pgoutput ${options.exportSnapshot ? "EXPORT_SNAPSHOT" : "NOEXPORT_SNAPSHOT"}`;
  const watching = options.watch ? watchSlotCreation(options.watch, slot, (client as unknown as { processID: number }).processID) : undefined;
  try {
    const result = await client.query<{ consistent_point: string; snapshot_name: string | null }>(sql);
    const row = result.rows[0];
    return { consistentPoint: parseLsn(row.consistent_point), snapshotName: row.snapshot_name ?? undefined };
  } finally {
    watching?.stop();
  }
}

/**
 * Makes an existing slot a failover slot (PostgreSQL 17+), e.g. one created before the engine
 * asked for it; the slot must not be in use. Returns whether it changed anything.
 */
export async function enableFailover(replication: Client, normal: Client, slot: string, versionNum: number): Promise<boolean> {
  if (versionNum < 170000) return false;
  const { rows } = await normal.query<{ failover: boolean }>("SELECT failover FROM pg_replication_slots WHERE slot_name = $1 AND NOT temporary", [slot]);
  if (rows.length === 0 || rows[0].failover) return false;
  await replication.query(`ALTER_REPLICATION_SLOT ${ident(slot)} (FAILOVER)`);
  return true;
}

/** Where createSlot reports what a slot creation waits for: a normal connection to ask, and the log. */
export interface SlotCreationWatch {
  client: Client;
  logger: Pick<Logger, "warn">;
  /** First look after this long (ms), then every 5 × as long; defaults 2 s. */
  afterMs?: number;
}

/**
 * A logical slot becomes consistent only once every transaction running when it started has ended;
 * one left open (an idle-in-transaction session, a long batch job) makes CREATE_REPLICATION_SLOT
 * wait for it however long it takes. Instead of hanging silently, say which sessions it waits for
 * (pg_blocking_pids of the walsender; by their pid, user, application and transaction start, never
 * their query text, which may hold row values).
 */
function watchSlotCreation(watch: SlotCreationWatch, slot: string, walsenderPid: number): { stop(): void } {
  const first = watch.afterMs ?? 2_000;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const look = async () => {
    const { rows } = await watch.client.query<{ pid: number; usename: string | null; application_name: string; state: string | null; xact_start: Date | null; client_addr: string | null }>(
      `SELECT a.pid, a.usename::text, a.application_name, a.state, a.xact_start, a.client_addr::text
         FROM pg_stat_activity a
        WHERE a.pid = ANY(pg_blocking_pids($1))
           OR (cardinality(pg_blocking_pids($1)) = 0 AND a.backend_xid IS NOT NULL AND a.pid <> $1)
        ORDER BY a.xact_start`,
      [walsenderPid],
    );
    if (stopped) return;
    const blockers = rows.map((r) => ({ pid: r.pid, user: r.usename, application: r.application_name, state: r.state, transactionStarted: r.xact_start?.toISOString(), clientAddress: r.client_addr }));
    watch.logger.warn(
      { slot, blockingPids: blockers.map((b) => b.pid), blockers },
      `creating replication slot ${slot} waits for ${blockers.length > 0 ? `the transactions of pid ${blockers.map((b) => b.pid).join(", ")}` : "transactions"} that were running when it started ` +
        "(a slot becomes consistent only once they end); it continues by itself when they commit or roll back — or end them: SELECT pg_terminate_backend(<pid>);",
    );
  };
  const schedule = (ms: number) => {
    timer = setTimeout(() => {
      look().then(
        () => !stopped && schedule(first * 5),
        () => !stopped && schedule(first * 5),
      );
    }, ms);
    timer.unref();
  };
  schedule(first);
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
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
  /** One XLogData message, buf[start, end); the pgoutput message starts at `buf[start + XLOG_HEADER]`. */
  onXLogData(buf: Buffer, start: number, end: number): void;
  /** The server's WAL end, from keepalives. */
  onWalEnd(walEnd: bigint): void;
}

/**
 * How long the replication stream may stay silent before the server counts as gone (a black-holed
 * or frozen primary keeps the TCP connection open, and TCP keepalive alone takes many minutes).
 * The engine asks for a keepalive at every status update, so a live server answers within moments;
 * the server itself drops a receiver that is silent for wal_sender_timeout, and the engine allows
 * the server as long (at least 5 s; 60 s when the server's timeout is off). Status updates, each
 * asking for a reply, go out four times per deadline (at most every 10 s).
 */
export function receiveDeadline(walSenderTimeoutMs: number): { deadlineMs: number; probeMs: number } {
  const deadlineMs = walSenderTimeoutMs > 0 ? Math.max(5_000, walSenderTimeoutMs) : 60_000;
  return { deadlineMs, probeMs: Math.min(10_000, Math.floor(deadlineMs / 4)) };
}

/** Reads the server's wal_sender_timeout in ms (0: off). */
export async function walSenderTimeoutMs(client: Client): Promise<number> {
  const { rows } = await client.query<{ ms: number }>("SELECT setting::int AS ms FROM pg_settings WHERE name = 'wal_sender_timeout'");
  return rows[0]?.ms ?? 60_000;
}

/** The stream heard nothing from the server within the receive deadline. */
export class ReplicationStallError extends Error {
  constructor(
    readonly silentMs: number,
    readonly deadlineMs: number,
  ) {
    super(`no message from PostgreSQL on the replication connection for ${Math.round(silentMs / 1000)} s (receive deadline ${deadlineMs / 1000} s, from the server's wal_sender_timeout); the server is stalled or unreachable`);
    this.name = "ReplicationStallError";
  }
}

export class ReplicationStream {
  private confirmed = 0n;
  private lastHeard = Date.now();
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
  start(
    slot: string,
    publication: string,
    startLsn: bigint,
    confirmed: bigint,
    versionNum: number,
    /** pgoutput's binary format (PostgreSQL 14+; see source/binary-mode.ts). */
    binary: boolean,
    liveness: { deadlineMs: number; probeMs: number; onStall(err: ReplicationStallError): void } = { ...receiveDeadline(0), onStall: () => undefined },
  ): Promise<void> {
    this.confirmed = confirmed;
    this.lastHeard = Date.now();
    this.listener = (msg) => this.receive(msg.chunk);
    this.connection.on("copyData", this.listener);
    let stalled = false;
    this.statusTimer = setInterval(() => {
      const now = Date.now();
      // Paused by backpressure: the engine is not reading, which says nothing about the server.
      if (this.connection.stream.isPaused()) this.lastHeard = now;
      if (!stalled && now - this.lastHeard > liveness.deadlineMs) {
        stalled = true;
        liveness.onStall(new ReplicationStallError(now - this.lastHeard, liveness.deadlineMs));
        return;
      }
      this.sendStatus(true);
    }, liveness.probeMs);
    this.statusTimer.unref();
    // Logical messages (the heartbeat) need PG14+; before 15 pgoutput sends empty transactions anyway.
    const messages = versionNum >= 140000 ? ", messages 'true'" : "";
    // Plugin options are given per START_REPLICATION, so each session chooses its format anew.
    const format = binary ? ", binary 'true'" : "";
    const sql = `START_REPLICATION SLOT ${ident(slot)} LOGICAL ${formatLsn(startLsn)} (proto_version '1', publication_names '${ident(publication).replace(/'/g, "''")}'${messages}${format})`;
    return this.client.query(sql).then(
      () => this.stopTimers(),
      (err: unknown) => {
        this.stopTimers();
        throw err;
      },
    );
  }

  /**
   * One CopyData payload of the stream, buf[start, end): from pg's 'copyData' event, or straight
   * from the connection's MessageSizeGate (its copyData hook), which skips pg-protocol's parser.
   */
  receive(buf: Buffer, start = 0, end = buf.length): void {
    this.lastHeard = Date.now();
    const type = buf[start];
    if (type === XLOG_DATA) this.handlers.onXLogData(buf, start, end);
    else if (type === KEEPALIVE) {
      this.handlers.onWalEnd(buf.readBigUInt64BE(start + 1));
      if (buf[start + 17] === 1) this.sendStatus();
    }
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
