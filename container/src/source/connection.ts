/**
 * Connections to the source: normal ones (catalog lookups, heartbeat, snapshot COPY) and the
 * replication connection. All pin the session settings the value encoders rely on.
 */
import { readFileSync } from "node:fs";
import { isIP, Socket, type OnReadOpts, type SocketConstructorOpts } from "node:net";
import { Client, type ClientConfig } from "pg";
import type { EngineConfig } from "../config";
import { passwordFor } from "./auth";

/** Text output formats the encoders in decoding/values.ts expect, whatever the server defaults are. */
const OUTPUT_FORMATS = "-c TimeZone=UTC -c DateStyle=ISO -c extra_float_digits=3 -c bytea_output=hex -c IntervalStyle=iso_8601";

/**
 * Timeouts a database commonly sets on roles (ALTER ROLE … SET), switched off for the engine's own
 * sessions: a snapshot's COPY runs as long as the table is large and the sink is slow; the
 * exporting replication connection and the snapshot transactions sit idle in transaction for the
 * whole snapshot; START_REPLICATION never ends; waiting for a lock (a COPY behind an ALTER TABLE)
 * is better than failing and taking the whole snapshot again. Startup options rank above role and
 * database settings. Stalls are the engine's own business (the replication receive deadline).
 */
const TIMEOUTS_OFF = "-c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0";

export const SESSION_OPTIONS = `${OUTPUT_FORMATS} ${TIMEOUTS_OFF}`;

/**
 * PostgreSQL 17's transaction_timeout, switched off like the others; set after connecting because
 * an older server refuses an unknown startup option (and this works on replication connections).
 */
const TRANSACTION_TIMEOUT_OFF = "SELECT set_config(name, '0', false) FROM pg_settings WHERE name = 'transaction_timeout'";

/**
 * node-postgres connection options for the configured source — the one place EngineConfig becomes
 * a pg ClientConfig (the engine's connections, `cdc-engine doctor`). PG_SSLMODE as libpq means it:
 * `require` encrypts without verifying the server; `verify-ca` checks the certificate chain
 * (PG_SSLROOTCERT, or Node's default CAs); `verify-full` also that it names PG_HOST. PG_SSLCERT and
 * PG_SSLKEY present a client certificate.
 */
export function clientConfig(config: EngineConfig, applicationName = "cdc-engine"): ClientConfig {
  const { pg } = config;
  let ssl: ClientConfig["ssl"] = false;
  const clientCertificate = pg.sslCert && pg.sslKey ? { cert: readFileSync(pg.sslCert, "utf8"), key: readFileSync(pg.sslKey, "utf8") } : {};
  const ca = pg.sslRootCertPem ? { ca: pg.sslRootCertPem } : pg.sslRootCert ? { ca: readFileSync(pg.sslRootCert, "utf8") } : {};
  if (pg.sslMode === "require") ssl = { rejectUnauthorized: false, ...clientCertificate };
  // verify-ca: the chain must lead to a trusted CA, whatever name the certificate carries.
  else if (pg.sslMode === "verify-ca") ssl = { rejectUnauthorized: true, ...ca, ...clientCertificate, checkServerIdentity: () => undefined };
  // SNI carries host names only (RFC 6066); the name check itself also covers IP addresses.
  else if (pg.sslMode === "verify-full") ssl = { rejectUnauthorized: true, ...(isIP(pg.host) === 0 ? { servername: pg.host } : {}), ...ca, ...clientCertificate };
  return {
    host: pg.host,
    port: pg.port,
    database: pg.database,
    user: pg.user,
    // A token provider (PG_AUTH) is called by node-postgres for every connection: tokens expire.
    password: passwordFor(config),
    ssl,
    application_name: applicationName,
    options: SESSION_OPTIONS,
    connectionTimeoutMillis: 15_000,
    // Finds a vanished peer (host gone, connection reset by a middlebox) without traffic; a frozen
    // server whose kernel still answers is caught by the replication receive deadline instead.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  };
}

/** Bytes of the one buffer a snapshot connection's socket reads into (reusedReadSocket). */
const REUSED_READ_BYTES = 256 * 1024;

/** The event a socket with transient reads emits on every read, whoever takes its bytes (the receive deadline listens to it). */
export const READ_EVENT = "cdc:read";

/** A socket that hands its reads to `readTransient`, when set, as views valid only during the call. */
export interface TransientReads {
  readTransient: ((view: Buffer) => void) | undefined;
}

export const hasTransientReads = (stream: unknown): stream is TransientReads => typeof stream === "object" && stream !== null && "readTransient" in stream;

/**
 * A plain TCP socket whose reads land in one reused buffer (net's `onread`) instead of a new
 * ArrayBuffer per read: a snapshot reads its table's whole COPY text through its connection, and
 * fresh 64 KiB read buffers are external memory that forces a full garbage collection every
 * ~64 MB; reads are also up to REUSED_READ_BYTES. Until a reader takes the views (the
 * MessageSizeGate), the bytes reach the 'data' listeners (pg's parser) as copies, as any
 * socket's would. Not for the replication connection: there it made the walsender send in
 * smaller pieces and cost it more CPU than it saved (bench/PROFILE.md).
 */
function reusedReadSocket(): Socket & TransientReads {
  const buffer = Buffer.allocUnsafe(REUSED_READ_BYTES);
  const onread: OnReadOpts = {
    buffer,
    callback: (bytes) => {
      const view = buffer.subarray(0, bytes);
      socket.emit(READ_EVENT);
      if (socket.readTransient !== undefined) socket.readTransient(view);
      else socket.emit("data", Buffer.from(view));
      return true;
    },
  };
  // Node's Socket constructor takes `onread` too (its types list it for connect() only).
  const socket: Socket & TransientReads = Object.assign(new Socket({ onread } as SocketConstructorOpts), { readTransient: undefined });
  return socket;
}

export interface ConnectOptions {
  /** A replication connection (replication=database). */
  replication?: boolean;
  /** Reads land in one reused buffer on a plain TCP connection (reusedReadSocket): for connections whose reads a MessageSizeGate takes. */
  reuseReads?: boolean;
}

export async function connect(config: EngineConfig, applicationName: string, options: ConnectOptions = {}): Promise<Client> {
  const settings = clientConfig(config, applicationName);
  // TLS wraps the socket pg made, so only a plain connection reads into a reused buffer.
  const reused = options.reuseReads && settings.ssl === false ? { stream: reusedReadSocket } : {};
  const client = new Client({ ...settings, ...(options.replication ? { replication: "database" } : {}), ...reused } as ClientConfig);
  // An 'error' event without a listener would crash the process; the session notices the loss through its queries.
  client.on("error", () => undefined);
  await client.connect();
  try {
    await client.query(TRANSACTION_TIMEOUT_OFF);
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
  return client;
}

/** Quotes an identifier for SQL and the replication protocol. */
export const ident = (name: string): string => '"' + name.replace(/"/g, '""') + '"';

/**
 * Ends a connection without hanging on an unresponsive server: a frozen server never closes its
 * side of the socket, so after `waitMs` the socket is destroyed.
 */
export async function closeClient(client: Client, waitMs = 2_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const ended = client.end().then(
    () => false,
    () => false,
  );
  const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), waitMs)));
  if (await Promise.race([ended, timedOut])) (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
  clearTimeout(timer);
}

/** A normal connection (a snapshot's COPY) heard nothing from the server within the receive deadline. */
export class ReceiveStallError extends Error {
  constructor(
    readonly what: string,
    readonly silentMs: number,
    readonly deadlineMs: number,
  ) {
    super(`no data from PostgreSQL on the ${what} for ${Math.round(silentMs / 1000)} s while a query was running (receive deadline ${deadlineMs / 1000} s, from the server's wal_sender_timeout); the server is stalled or unreachable`);
    this.name = "ReceiveStallError";
  }
}

export interface ReceiveWatch {
  /** The stall, once noticed (the connection is destroyed with it). */
  readonly stalled: ReceiveStallError | undefined;
  stop(): void;
}

/**
 * The receive deadline on a normal connection: a query in flight whose server sends nothing for
 * `deadlineMs` (TCP keepalive catches only a vanished host; a frozen or black-holed server keeps the
 * socket open) fails the connection with a ReceiveStallError. Time without a query, and time the
 * engine itself does not read (the socket paused by backpressure), do not count. A query that
 * waits for a lock legitimately sends nothing: before failing, `waitsForLock` asks the server on a
 * fresh connection whether the backend is blocked by another session's lock (pg_blocking_pids);
 * if so the wait goes on. A server that cannot answer that is stalled too.
 */
export function watchReceive(
  client: Client,
  options: { what: string; deadlineMs: number; probeMs: number; waitsForLock(pid: number): Promise<boolean>; onStall(err: ReceiveStallError): void },
): ReceiveWatch {
  const stream = (client as unknown as { connection: { stream: import("node:stream").Readable & { destroy(err?: Error): void } } }).connection.stream;
  let inFlight = 0;
  let lastHeard = Date.now();
  let asking = false;
  let stalled: ReceiveStallError | undefined;
  const heard = () => (lastHeard = Date.now());
  stream.on("data", heard);
  // A socket whose reads the gate takes as views emits no 'data' for them.
  stream.on(READ_EVENT, heard);
  // Every query of this client passes here: count the ones the server still owes an answer.
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    if (inFlight++ === 0) heard();
    const settle = () => {
      inFlight--;
      heard();
    };
    const result = query(...args);
    if (result && typeof (result as Promise<unknown>).then === "function") (result as Promise<unknown>).then(settle, settle);
    else settle(); // callback or submittable forms are not used on these connections
    return result;
  };
  const timer = setInterval(() => {
    if (stalled || asking) return;
    if (inFlight === 0 || stream.isPaused()) return heard();
    const silentMs = Date.now() - lastHeard;
    if (silentMs <= options.deadlineMs) return;
    asking = true;
    // The question itself may go unanswered (the whole server frozen): that is an answer too.
    let giveUp: NodeJS.Timeout | undefined;
    const unanswered = new Promise<boolean>((_resolve, reject) => (giveUp = setTimeout(() => reject(new Error("no answer")), options.deadlineMs)));
    Promise.race([options.waitsForLock((client as unknown as { processID: number }).processID), unanswered]).then(
      (blocked) => (blocked ? heard() : stall(silentMs)),
      () => stall(silentMs),
    ).finally(() => {
      clearTimeout(giveUp);
      asking = false;
    });
  }, options.probeMs);
  timer.unref();
  const stall = (silentMs: number) => {
    if (stalled || inFlight === 0) return;
    stalled = new ReceiveStallError(options.what, silentMs, options.deadlineMs);
    options.onStall(stalled);
    stream.destroy(stalled);
  };
  return {
    get stalled() {
      return stalled;
    },
    stop() {
      clearInterval(timer);
      stream.removeListener("data", heard);
      stream.removeListener(READ_EVENT, heard);
    },
  };
}

/** Whether backend `pid` waits for a lock another session holds, asked on a fresh connection (bounded by its connection timeout). */
export async function blockedByLock(config: EngineConfig, pid: number): Promise<boolean> {
  const probe = await connect(config, "cdc-engine stall probe");
  try {
    const { rows } = await probe.query<{ blocked: boolean }>("SELECT cardinality(pg_blocking_pids($1)) > 0 AS blocked", [pid]);
    return rows[0]?.blocked === true;
  } finally {
    await closeClient(probe);
  }
}
