/**
 * The incremental-snapshot phase of `npm run bench`: the engine streams a paced insert workload
 * (default 5,000 changes/s) into one table while it snapshots a large table incrementally (chunks
 * by primary key between WAL watermarks, requested with a `cdc-snapshot` message as `cdc-engine
 * snapshot` writes it). Measures the snapshot's rows/s (request to the state recording it done) and
 * the commit-to-file latency of the streamed changes committed while it ran (p50/p99/max), with
 * BATCH_MAX_WAIT_MS=1000.
 */
import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import type { BenchPostgres } from "./postgres";
import { spawnEngine, type EngineProcess } from "./engine";
import { LandingWatcher, countRecords, readObject } from "./landing";

export interface IncrementalOptions {
  /** Rows of the table snapshotted. */
  rows: number;
  /** Streamed changes per second while it runs. */
  rate: number;
  /** The engine's environment for these variables (the bench adds PG_* and its extras). */
  engineEnv(vars: Record<string, string>): Record<string, string>;
  httpPort: number;
  timeoutMs: number;
  log(message: string): void;
}

export interface IncrementalFigures {
  rows: number;
  seconds: number;
  rowsPerS: number;
  chunkSize: number;
  /** Streamed changes committed during the snapshot whose latency was measured. */
  samples: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  achievedRate: number;
  peakRssMb: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nowMs = () => performance.timeOrigin + performance.now();

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

async function waitReady(port: number, engine: EngineProcess, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (engine.child.exitCode !== null) throw new Error(`the engine exited (${engine.child.exitCode}) before it was ready; log tail:\n${engine.logTail()}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) return;
    } catch {
      /* not listening yet */
    }
    await sleep(100);
  }
  throw new Error(`/readyz never answered 200 within ${timeoutMs} ms`);
}

export async function measureIncremental(pg: BenchPostgres, work: string, options: IncrementalOptions): Promise<IncrementalFigures> {
  const { rows, rate, log } = options;
  const chunkSize = 8192;
  await pg.query(`create table public.bench_incr (id bigint primary key, account integer not null, amount numeric(12,2) not null, status text not null, note text, updated_at timestamptz not null default now())`);
  await pg.query(`insert into public.bench_incr select g, (g % 1000)::int, ((g % 100000) / 100.0)::numeric(12,2), 'new', md5(g::text), now() from generate_series(1, ${rows}) g`);
  await pg.query("vacuum (freeze, analyze) public.bench_incr");
  await pg.query("create table public.bench_incr_live (id bigserial primary key, account integer not null, note text not null)");
  await pg.query("create publication bench_incr_pub for table public.bench_incr, public.bench_incr_live");
  // The engine creates its slot itself (SNAPSHOT_MODE=never: the rows get there only by the snapshot).
  const landing = join(work, "landing-incremental");
  await mkdir(landing, { recursive: true });
  const engine = spawnEngine({
    env: options.engineEnv({
      PG_PUBLICATION: "bench_incr_pub",
      PG_SLOT: "bench_incr_engine",
      TABLE_INCLUDE: "public.bench_incr,public.bench_incr_live",
      SNAPSHOT_MODE: "never",
      SINK_URL: `file://${landing}`,
      BATCH_MAX_WAIT_MS: "1000",
      INCREMENTAL_CHUNK_SIZE: String(chunkSize),
      HTTP_PORT: String(options.httpPort),
    }),
    logFile: join(work, "engine-incremental.log"),
  });
  const writer = await pg.connect();
  let writing = true;
  try {
    await waitReady(options.httpPort, engine, 30_000);
    const txnsPerSecond = 50;
    const rowsPerTxn = Math.max(1, Math.round(rate / txnsPerSecond));
    const intervalMs = (1000 * rowsPerTxn) / rate;
    let written = 0;
    const writeStart = performance.now();
    const writes = (async () => {
      for (let k = 0; writing; k++) {
        const wait = writeStart + k * intervalMs - performance.now();
        if (wait > 0) await sleep(wait);
        await writer.query("insert into public.bench_incr_live (account, note) select g, 'incremental probe' from generate_series(1, $1::int) g", [rowsPerTxn]);
        written += rowsPerTxn;
      }
    })();
    await sleep(3000); // warm-up: the stream is at its steady state before the snapshot starts
    const state = join(landing, "_cdc_state", "bench_incr_engine.json");
    log(`incremental: streaming ${rate} changes/s; requesting an incremental snapshot of ${rows} rows (chunks of ${chunkSize})`);
    const requestedAt = nowMs();
    await pg.query("select pg_logical_emit_message(true, 'cdc-snapshot', $1)", [JSON.stringify({ tables: ["public.bench_incr"] })]);
    const deadline = performance.now() + options.timeoutMs;
    let doneAt: number | undefined;
    while (doneAt === undefined) {
      if (performance.now() > deadline) throw new Error(`the incremental snapshot did not finish within ${options.timeoutMs / 1000} s`);
      if (engine.child.exitCode !== null) throw new Error(`the engine exited (${engine.child.exitCode}); log tail:\n${engine.logTail()}`);
      try {
        const s = JSON.parse(await readFile(state, "utf8")) as { incremental?: { tables: unknown[]; requestsUpTo?: string } };
        if (s.incremental?.requestsUpTo !== undefined && s.incremental.tables.length === 0) doneAt = nowMs();
      } catch {
        /* being replaced */
      }
      if (doneAt === undefined) await sleep(50);
    }
    const achievedRate = (written * 1000) / (performance.now() - writeStart);
    writing = false;
    await writes;
    const seconds = (doneAt - requestedAt) / 1000;
    // Latency of the streamed changes committed while the snapshot ran (objects scanned after the
    // fact: an object's time is its file's mtime, when the sink renamed it into place).
    const watcher = new LandingWatcher(join(landing, "cdc.public.bench_incr_live"));
    const endWait = performance.now() + 20_000;
    let landed = 0;
    const latencies: number[] = [];
    const { stat } = await import("node:fs/promises");
    while (landed < written && performance.now() < endWait) {
      for (const obj of await watcher.scan()) {
        const mtime = (await stat(obj.path)).mtimeMs;
        for (const line of (await readObject(obj.path)).toString("utf8").split("\n")) {
          if (!line) continue;
          landed++;
          const rec = JSON.parse(line) as { __ts_ms: number };
          if (rec.__ts_ms >= requestedAt && rec.__ts_ms <= doneAt) latencies.push(mtime - rec.__ts_ms);
        }
      }
      if (landed < written) await sleep(100);
    }
    latencies.sort((a, b) => a - b);
    // Nothing changes the big table meanwhile: every row lands (a chunk read again lands its rows again).
    const copied = await countRecords(join(landing, "cdc.public.bench_incr"));
    if (copied.records < rows) throw new Error(`only ${copied.records} of the ${rows} rows landed`);
    const figures: IncrementalFigures = {
      rows,
      seconds,
      rowsPerS: rows / seconds,
      chunkSize,
      samples: latencies.length,
      p50Ms: Math.round(percentile(latencies, 50)),
      p99Ms: Math.round(percentile(latencies, 99)),
      maxMs: Math.round(latencies[latencies.length - 1] ?? NaN),
      achievedRate,
      peakRssMb: Math.round((engine.memory().peakRss / (1024 * 1024)) * 10) / 10,
    };
    log(`incremental: ${rows} rows in ${seconds.toFixed(1)} s → ${Math.round(figures.rowsPerS)} rows/s while streaming ${Math.round(achievedRate)} changes/s; their commit→file p50 ${figures.p50Ms} ms, p99 ${figures.p99Ms} ms, max ${figures.maxMs} ms (${latencies.length} changes)`);
    return figures;
  } finally {
    writing = false;
    await writer.end().catch(() => undefined);
    await engine.stop(3000);
    await rm(landing, { recursive: true, force: true });
    await pg.query("select pg_drop_replication_slot('bench_incr_engine')").catch(() => undefined);
    await pg.query("drop publication if exists bench_incr_pub");
    await pg.query("drop table if exists public.bench_incr, public.bench_incr_live");
  }
}
