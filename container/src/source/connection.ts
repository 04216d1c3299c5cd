/**
 * Connections to the source: normal ones (catalog lookups, heartbeat, snapshot COPY) and the
 * replication connection. All pin the session settings the value encoders rely on.
 */
import { readFileSync } from "node:fs";
import { Client, type ClientConfig } from "pg";
import type { EngineConfig } from "../config";

/** Text output formats the encoders in decoding/values.ts expect, whatever the server defaults are. */
export const SESSION_OPTIONS = "-c TimeZone=UTC -c DateStyle=ISO -c extra_float_digits=3 -c bytea_output=hex -c IntervalStyle=iso_8601";

/**
 * node-postgres connection options for the configured source — the one place EngineConfig becomes
 * a pg ClientConfig (the engine's connections, `cdc-engine doctor`). PG_SSLMODE as libpq means it:
 * `require` encrypts without verifying the server; `verify-full` checks the certificate chain
 * (PG_SSLROOTCERT, or Node's default CAs) and that it names PG_HOST.
 */
export function clientConfig(config: EngineConfig, applicationName = "cdc-engine"): ClientConfig {
  const { pg } = config;
  let ssl: ClientConfig["ssl"] = false;
  if (pg.sslMode === "require") ssl = { rejectUnauthorized: false };
  else if (pg.sslMode === "verify-full") ssl = { rejectUnauthorized: true, servername: pg.host, ...(pg.sslRootCert ? { ca: readFileSync(pg.sslRootCert, "utf8") } : {}) };
  return {
    host: pg.host,
    port: pg.port,
    database: pg.database,
    user: pg.user,
    password: pg.password,
    ssl,
    application_name: applicationName,
    options: SESSION_OPTIONS,
    connectionTimeoutMillis: 15_000,
    keepAlive: true,
  };
}

export async function connect(config: EngineConfig, applicationName: string, replication = false): Promise<Client> {
  const client = new Client({ ...clientConfig(config, applicationName), ...(replication ? { replication: "database" } : {}) } as ClientConfig);
  // An 'error' event without a listener would crash the process; the session notices the loss through its queries.
  client.on("error", () => undefined);
  await client.connect();
  return client;
}

/** Quotes an identifier for SQL and the replication protocol. */
export const ident = (name: string): string => '"' + name.replace(/"/g, '""') + '"';
