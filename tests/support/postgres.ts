/**
 * A real PostgreSQL for tests: the demo's embedded PostgreSQL launcher (wal_level=logical, free
 * loopback port, fresh temp data directory), with more replication slots and a test client.
 * The major is 17 unless `CDC_TEST_PG_MAJOR` (or `major`) picks another (tests/support/postgres-majors.ts).
 */
import { Client } from "pg";
import { freePort, launchEmbeddedPostgres } from "../../lakehouse/src/demo/postgres";
import { embeddedPostgresEntry, requestedPgMajor } from "./postgres-majors";

export { freePort };

export interface TestPostgres {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** The server's major version (`server_version_num` / 10000). */
  major: number;
  /** `server_version_num`, e.g. 140023. */
  versionNum: number;
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
  /** PostgreSQL major to run; unset: `CDC_TEST_PG_MAJOR`, else 17. */
  major?: number;
}

export async function startPostgres(options: StartOptions = {}): Promise<TestPostgres> {
  const password = "test-password";
  const major = options.major ?? requestedPgMajor();
  const server = await launchEmbeddedPostgres({
    embeddedPostgresEntry: await embeddedPostgresEntry(major),
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
  let versionNum: number;
  try {
    const client = await connect();
    try {
      versionNum = Number((await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0].v);
    } finally {
      await client.end();
    }
    if (Math.floor(versionNum / 10000) !== major) throw new Error(`asked for PostgreSQL ${major}, but the server is ${versionNum}`);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return {
    ...base,
    major,
    versionNum,
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
