/**
 * Connections to the source: normal ones (catalog lookups, heartbeat, snapshot COPY) and the
 * replication connection. All pin the session settings the value encoders rely on.
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
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

export async function connect(config: EngineConfig, applicationName: string, replication = false): Promise<Client> {
  const client = new Client({ ...clientConfig(config, applicationName), ...(replication ? { replication: "database" } : {}) } as ClientConfig);
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
