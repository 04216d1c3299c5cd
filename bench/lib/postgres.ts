/**
 * The benchmark's PostgreSQL: Debian's PostgreSQL 15 server binaries, run as the `postgres` OS
 * user (the server refuses root) in a fresh data directory, tuned so that generating and decoding
 * WAL is fast. The engine and the baselines (pg_recvlogical, COPY) all use this one server.
 */
import { execFile, spawn } from "node:child_process";
import { chmod, mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { Client } from "pg";
import { onCleanup } from "./cleanup";

const run = promisify(execFile);

export const PG_BIN = process.env.BENCH_PG_BIN ?? "/usr/lib/postgresql/15/bin";

/** Server settings: logical decoding on, durability off (a benchmark, not a database to keep). */
export const BENCH_PG_SETTINGS: Record<string, string> = {
  wal_level: "logical",
  max_replication_slots: "16",
  max_wal_senders: "16",
  fsync: "off",
  full_page_writes: "off",
  // On, so a commit's WAL is flushed (cheap with fsync=off) and walsenders see it at once:
  // with off, commits would reach decoding only every wal_writer_delay, skewing latency.
  synchronous_commit: "on",
  shared_buffers: "512MB",
  max_wal_size: "16GB",
  min_wal_size: "1GB",
  checkpoint_timeout: "30min",
  logical_decoding_work_mem: "64MB",
  wal_sender_timeout: "120s",
  autovacuum: "off",
  listen_addresses: "127.0.0.1",
};

export interface BenchPostgres {
  host: string;
  port: number;
  user: string;
  database: string;
  version: string;
  settings: Record<string, string>;
  /** PG_* variables for the engine. */
  env: Record<string, string>;
  /** libpq connection arguments for psql / pg_recvlogical. */
  cliArgs: string[];
  connect(): Promise<Client>;
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  logTail(lines?: number): Promise<string>;
  stop(): Promise<void>;
}

async function asPostgres(cmd: string, args: string[], timeoutMs = 120_000): Promise<string> {
  const { stdout } = await run("runuser", ["-u", "postgres", "--", join(PG_BIN, cmd), ...args], { timeout: timeoutMs, maxBuffer: 16 << 20 });
  return stdout;
}

export async function startBenchPostgres(root: string, port: number): Promise<BenchPostgres> {
  const pgRoot = join(root, "pg");
  await mkdir(pgRoot, { recursive: true });
  await chmod(root, 0o777);
  await chmod(pgRoot, 0o777);
  const dataDir = join(pgRoot, "data");
  const logFile = join(pgRoot, "server.log");
  await asPostgres("initdb", ["-D", dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]);
  const settings = { ...BENCH_PG_SETTINGS, port: String(port), unix_socket_directories: pgRoot };
  const options = Object.entries(settings)
    .map(([k, v]) => `-c ${k}=${v}`)
    .join(" ");

  let stopped = false;
  const stopServer = async () => {
    if (stopped) return;
    stopped = true;
    try {
      await asPostgres("pg_ctl", ["-D", dataDir, "-m", "fast", "-w", "-t", "30", "stop"], 40_000);
    } catch {
      await asPostgres("pg_ctl", ["-D", dataDir, "-m", "immediate", "-w", "stop"], 20_000).catch(() => undefined);
    }
  };
  const undo = onCleanup("PostgreSQL server", stopServer);
  await asPostgres("pg_ctl", ["-D", dataDir, "-l", logFile, "-o", options, "-w", "-t", "60", "start"]);

  const base = { host: "127.0.0.1", port, user: "postgres", database: "postgres" };
  const connect = async () => {
    const client = new Client(base);
    await client.connect();
    return client;
  };
  const query = async <T>(sql: string, params?: unknown[]) => {
    const client = await connect();
    try {
      return (await client.query(sql, params as unknown[])).rows as T[];
    } finally {
      await client.end();
    }
  };
  const [{ version }] = await query<{ version: string }>("select version()");
  const effective: Record<string, string> = {};
  const rows = await query<{ name: string; setting: string; unit: string | null }>(
    "select name, setting, unit from pg_settings where name = any($1)",
    [Object.keys(BENCH_PG_SETTINGS).filter((k) => k !== "listen_addresses")],
  );
  for (const r of rows) effective[r.name] = r.unit ? `${r.setting}${r.unit === "8kB" ? "×8kB" : r.unit}` : r.setting;

  return {
    ...base,
    version,
    settings: { ...BENCH_PG_SETTINGS },
    env: { PG_HOST: "127.0.0.1", PG_PORT: String(port), PG_DATABASE: "postgres", PG_USER: "postgres", PG_SSLMODE: "disable" },
    cliArgs: ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", "postgres"],
    connect,
    query,
    async logTail(lines = 30) {
      const text = await readFile(logFile, "utf8").catch(() => "");
      return text.split("\n").slice(-lines).join("\n");
    },
    stop: undo,
  };
}

/** "16/B374D848" → 0x16B374D848n */
export function parseLsn(lsn: string): bigint {
  const [hi, lo] = lsn.split("/");
  return (BigInt("0x" + hi) << 32n) | BigInt("0x" + lo);
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** Runs a PostgreSQL client binary (psql, pg_recvlogical) as a child, resolving with its exit. */
export function spawnClient(cmd: string, args: string[], stdoutFd?: number) {
  const child = spawn(join(PG_BIN, cmd), args, { stdio: ["ignore", stdoutFd ?? "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const undo = onCleanup(cmd, async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
    }
  });
  const done = new Promise<void>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      void undo();
      if (code === 0) resolve();
      else reject(new Error(`${cmd} exited with ${code ?? signal}: ${stderr.trim()}`));
    });
  });
  return { child, done };
}
