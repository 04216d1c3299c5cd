/**
 * The engine under test, run exactly as users run it: `cdc-engine run` (container/bin/cdc-engine.js
 * → container/dist/cli.js) as a child process configured by environment variables, so its memory
 * can be sampled from /proc/<pid>/status (VmRSS, and the kernel's high-water mark VmHWM).
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { openSync, closeSync, readFileSync, existsSync, statSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { onCleanup, stopChild } from "./cleanup";

export const REPO = join(__dirname, "..", "..");
const CONTAINER = join(REPO, "container");
/** BENCH_ENGINE_BIN swaps in another executable script (only to exercise the harness itself). */
const BIN = process.env.BENCH_ENGINE_BIN ?? join(CONTAINER, "bin", "cdc-engine.js");
const CLI_JS = join(CONTAINER, "dist", "cli.js");

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path));
    else if (entry.name.endsWith(".ts")) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

export interface EngineAvailability {
  ok: boolean;
  /** Why the engine cannot be benchmarked, when !ok. */
  reason?: string;
  /** Build warnings (type errors in files being edited) when it was built anyway. */
  warning?: string;
}

/**
 * Makes sure container/dist is built from the current sources (tsc of the container workspace
 * only, as `npm run build` would) and that the CLI and engine exist.
 */
export async function ensureEngineBuilt(): Promise<EngineAvailability> {
  if (process.env.BENCH_ENGINE_BIN) return { ok: true, warning: `BENCH_ENGINE_BIN=${process.env.BENCH_ENGINE_BIN} stands in for the engine: these are NOT the engine's figures` };
  for (const file of ["src/engine.ts", "src/cli.ts"]) {
    if (!existsSync(join(CONTAINER, file))) return { ok: false, reason: `container/${file} does not exist yet` };
  }
  let warning: string | undefined;
  const stale = !existsSync(CLI_JS) || !existsSync(join(CONTAINER, "dist", "engine.js")) || statSync(CLI_JS).mtimeMs < newestMtime(join(CONTAINER, "src"));
  if (stale) {
    try {
      await promisify(execFile)(join(REPO, "node_modules", ".bin", "tsc"), ["-p", join(CONTAINER, "tsconfig.json")], { cwd: REPO, timeout: 180_000, maxBuffer: 16 << 20 });
    } catch (err) {
      const out = String((err as { stdout?: string }).stdout ?? err);
      warning = `tsc -p container reported errors (built anyway): ${out.split("\n").slice(0, 5).join(" | ")}`;
    }
  }
  if (!existsSync(CLI_JS)) return { ok: false, reason: "container/dist/cli.js was not produced by the build" };
  return { ok: true, warning };
}

export interface MemorySample {
  /** Highest VmHWM (peak resident set) seen, in bytes. */
  peakRss: number;
  /** Highest VmRSS sample, in bytes. */
  maxSampledRss: number;
}

export interface EngineProcess {
  child: ChildProcess;
  pid: number;
  startedAt: number;
  memory(): MemorySample;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** SIGTERM (graceful: flush, confirm, exit), SIGKILL after the grace period. */
  stop(graceMs?: number): Promise<void>;
  logTail(lines?: number): string;
}

function readStatusKb(pid: number): { hwm: number; rss: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    if (!hwm || !rss) return undefined;
    return { hwm: Number(hwm[1]) * 1024, rss: Number(rss[1]) * 1024 };
  } catch {
    return undefined;
  }
}

export interface SpawnOptions {
  env: Record<string, string>;
  logFile: string;
  /** Run node with --cpu-prof, writing the profile into this directory. */
  cpuProfDir?: string;
  sampleEveryMs?: number;
}

export function spawnEngine(options: SpawnOptions): EngineProcess {
  const logFd = openSync(options.logFile, "a");
  const nodeArgs = options.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfDir}`] : [];
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(PG|TABLE_|SNAPSHOT_|SINK_|BATCH_|HTTP_PORT|LOG_LEVEL|HEARTBEAT_)/.test(k)) env[k] = v;
  const child = spawn(process.execPath, [...nodeArgs, BIN, "run"], {
    cwd: REPO,
    env: { ...env, ...options.env },
    stdio: ["ignore", logFd, logFd],
  });
  closeSync(logFd);
  const pid = child.pid!;
  const startedAt = performance.now();
  let peakRss = 0;
  let maxSampledRss = 0;
  const sample = () => {
    const s = readStatusKb(pid);
    if (!s) return;
    peakRss = Math.max(peakRss, s.hwm);
    maxSampledRss = Math.max(maxSampledRss, s.rss);
  };
  const sampler = setInterval(sample, options.sampleEveryMs ?? 50);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    child.once("exit", (code, signal) => {
      clearInterval(sampler);
      resolve({ code, signal, at: performance.now() });
    });
  });
  const undo = onCleanup(`engine pid ${pid}`, () => stopChild(child, 3000));
  void exited.then(() => undo());
  return {
    child,
    pid,
    startedAt,
    memory: () => {
      sample();
      return { peakRss, maxSampledRss };
    },
    exited,
    stop: (graceMs = 12_000) => stopChild(child, graceMs),
    logTail(lines = 25) {
      try {
        return readFileSync(options.logFile, "utf8").split("\n").slice(-lines).join("\n");
      } catch {
        return "";
      }
    },
  };
}
