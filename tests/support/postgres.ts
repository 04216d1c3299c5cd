/**
 * A real PostgreSQL for tests: the demo's embedded PostgreSQL launcher (wal_level=logical, free
 * loopback port, fresh temp data directory), with more replication slots and a test client.
 */
import { Client } from "pg";
import { freePort, launchEmbeddedPostgres } from "../../lakehouse/src/demo/postgres";

export { freePort };

export interface TestPostgres {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** libpq-style URL for the `postgres` database. */
  url: string;
  /** The engine's PG_* variables for this server (PG_SSLMODE=disable). */
  env: Record<string, string>;
  /** A connected client; close it yourself. */
  connect(database?: string): Promise<Client>;
  /** Runs SQL on a short-lived connection and returns the rows. */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Extra `-c name=value` settings, e.g. { max_replication_slots: "2" }. */
  settings?: Record<string, string>;
}

export async function startPostgres(options: StartOptions = {}): Promise<TestPostgres> {
  const password = "test-password";
  const server = await launchEmbeddedPostgres({
    password,
    tempPrefix: "cdc-test-pg-",
    settings: {
      max_replication_slots: "16",
      max_wal_senders: "16",
      fsync: "off",
      synchronous_commit: "off",
      full_page_writes: "off",
      ...options.settings,
    },
  });
  const { port } = server;
  const base = { host: "127.0.0.1", port, user: "postgres", password, database: "postgres" };
  const connect = async (database = "postgres") => {
    const client = new Client({ ...base, database });
    await client.connect();
    return client;
  };
  return {
    ...base,
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    env: {
      PG_HOST: "127.0.0.1",
      PG_PORT: String(port),
      PG_DATABASE: "postgres",
      PG_USER: "postgres",
      PG_PASSWORD: password,
      PG_SSLMODE: "disable",
    },
    connect,
    async query(sql, params) {
      const client = await connect();
      try {
        return (await client.query(sql, params as unknown[])).rows;
      } finally {
        await client.end();
      }
    },
    stop: () => server.stop(),
  };
}
