/**
 * `npm run bench`: measures the CDC engine against PostgreSQL's own tools on one real server.
 *
 *   1. drain     a committed backlog of N row changes (60% insert, 30% update, 10% delete) from one
 *                slot into file:// landing files, vs pg_recvlogical (pgoutput) draining an identical
 *                backlog from a second slot created at the same point; peak RSS of the engine.
 *   2. txn       peak RSS while the engine drains ONE transaction of M inserted rows.
 *   3. latency   commit-to-file latency p50/p99 at a steady rate with BATCH_MAX_WAIT_MS=1000.
 *   4. snapshot  SNAPSHOT_MODE=initial_only of an R-row table vs `COPY … TO STDOUT` of the same table.
 *   5. silver    the Databricks notebooks on local Spark + Delta Lake: the rate silver merges a
 *                backlog of N landed changes, and commit-to-silver latency p50/p99 with bronze and
 *                silver streaming continuously while the engine lands a steady 1,000 changes/s.
 *
 * Flags scale it down for quick runs (`npm run bench -- --changes 100000 --txn-rows 500000
 * --latency-seconds 10 --snapshot-rows 100000`); the defaults are the sizes of issue #2. Full-size
 * runs write bench/results.md, others bench/work/results.md (unless --out is given).
 */
import { mkdtemp, mkdir, rm, writeFile, readdir } from "node:fs/promises";
import { openSync, closeSync } from "node:fs";
import { cpus, loadavg, totalmem, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { execFileSync } from "node:child_process";
import type { Client } from "pg";
import { cleanupAll, installSignalHandlers, onCleanup } from "./lib/cleanup";
import { startBenchPostgres, parseLsn, formatLsn, spawnClient, type BenchPostgres } from "./lib/postgres";
import { ensureEngineBuilt, spawnEngine, REPO, type EngineProcess } from "./lib/engine";
import { summarizePgoutputFile } from "./lib/pgoutput";
import { LandingWatcher, countRecords, readObject, countLines } from "./lib/landing";
import { summarizeThreads, threadProfiles } from "./lib/profile";
import { CpuSampler, cpuSecondsOf } from "./lib/cpu";
import { freePort } from "../lakehouse/src/demo/postgres";
import { startKafka } from "../tests/sinks/support/kafka-broker";
import { KafkaSink } from "../container/src/sink/kafka";
import { loadConfig } from "../container/src/config";
import { claimSlotForLanding } from "./lib/slot-claim";
import { FORMAT_ENV, FORMAT_SLOTS, MAIN_FORMAT, formatComparisonLog, formatComparisonRow, formatFigures, recordLandingDigest, usPerChange, type DrainFormat } from "./lib/drain-formats";
import { silverBacklog, silverLatency, type SilverBacklogFigures, type SilverLatencyFigures } from "./lib/spark";
import { measureIncremental, type IncrementalFigures } from "./lib/incremental";
import { bigSnapshotRows, phaseBigSnapshot, type BigSnapshotFigures } from "./lib/snapshot10m";

// ---------------------------------------------------------------------------------------------
// Options

const FULL = { changes: 1_000_000, txnRows: 5_000_000, latencySeconds: 30, latencyRate: 5000, snapshotRows: 1_000_000, silverSeconds: 60, silverRate: 1000, snapshot10mRows: 10_000_000, snapshotWideRows: 100_000 };
const PHASES = ["drain", "txn", "latency", "snapshot", "snapshot10m", "incremental", "silver"] as const;
type Phase = (typeof PHASES)[number];

const { values: flags } = parseArgs({
  options: {
    changes: { type: "string" },
    "txn-rows": { type: "string" },
    "latency-seconds": { type: "string" },
    "latency-rate": { type: "string" },
    "snapshot-rows": { type: "string" },
    "snapshot-workers": { type: "string" },
    "snapshot10m-rows": { type: "string" },
    "snapshot-wide-rows": { type: "string" },
    "silver-seconds": { type: "string" },
    phases: { type: "string" },
    "engine-timeout": { type: "string" },
    "engine-env": { type: "string", multiple: true },
    profile: { type: "boolean" },
    keep: { type: "boolean" },
    out: { type: "string" },
    sink: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});

if (flags.help) {
  process.stdout.write(`npm run bench -- [options]
  --changes N            backlog size for the drain comparison (default ${FULL.changes})
  --txn-rows N           rows in the single large transaction (default ${FULL.txnRows})
  --latency-seconds S    duration of the paced latency run (default ${FULL.latencySeconds})
  --latency-rate R       changes per second in the latency run (default ${FULL.latencyRate})
  --snapshot-rows N      rows in the snapshot table (default ${FULL.snapshotRows})
  --snapshot-workers a,b SNAPSHOT_PARALLELISM values the snapshot is also timed with (default 1,2,4; "none" skips)
  --snapshot10m-rows N   rows in the large snapshot table of the snapshot10m phase (default ${FULL.snapshot10mRows})
  --snapshot-wide-rows N rows in its wide-row table (2 KB TOASTed text, jsonb, numeric; default ${FULL.snapshotWideRows})
  --silver-seconds S     duration of the commit-to-silver latency run on local Spark (default ${FULL.silverSeconds}); the
                         silver backlog is --changes
  --phases a,b           subset of ${PHASES.join(",")} (default all)
  --engine-timeout S     give up on an engine phase after S seconds (default 420)
  --engine-env K=V       extra engine environment for every engine run (repeatable)
  --profile              run the engine under node --cpu-prof (drain, txn, snapshot) and summarize it
  --keep                 keep the temp directory (server data, landing files, logs)
  --sink kafka           also drain the backlog into a local Apache Kafka broker (KRaft, from Maven Central's
                         jars like the tests) and compare with the file sink of the same run
  --out FILE             results file (default bench/results.md for full-size runs, else bench/work/results.md)
`);
  process.exit(0);
}

function positive(name: string, raw: string | undefined, dflt: number): number {
  if (raw === undefined) return dflt;
  const n = Number(raw.replace(/_/g, ""));
  if (!Number.isInteger(n) || n <= 0) {
    process.stderr.write(`bench: --${name} must be a positive whole number (got ${JSON.stringify(raw)}); for example --${name} ${dflt}\n`);
    process.exit(2);
  }
  return n;
}

const opts = {
  changes: positive("changes", flags.changes, FULL.changes),
  txnRows: positive("txn-rows", flags["txn-rows"], FULL.txnRows),
  latencySeconds: positive("latency-seconds", flags["latency-seconds"], FULL.latencySeconds),
  latencyRate: positive("latency-rate", flags["latency-rate"], FULL.latencyRate),
  snapshotRows: positive("snapshot-rows", flags["snapshot-rows"], FULL.snapshotRows),
  silverSeconds: positive("silver-seconds", flags["silver-seconds"], FULL.silverSeconds),
  snapshot10mRows: positive("snapshot10m-rows", flags["snapshot10m-rows"], FULL.snapshot10mRows),
  snapshotWideRows: positive("snapshot-wide-rows", flags["snapshot-wide-rows"], FULL.snapshotWideRows),
  engineTimeoutMs: positive("engine-timeout", flags["engine-timeout"], 420) * 1000,
  snapshotWorkers: flags["snapshot-workers"] === "none" ? [] : (flags["snapshot-workers"] ?? "1,2,4").split(",").map((w) => positive("snapshot-workers", w.trim(), 1)),
};
const sinkFlag = flags.sink ?? "file";
if (sinkFlag !== "file" && sinkFlag !== "kafka") {
  process.stderr.write(`bench: --sink must be file or kafka (got ${JSON.stringify(sinkFlag)}); for example --sink kafka\n`);
  process.exit(2);
}
const withKafka = sinkFlag === "kafka";
const phases = new Set<Phase>(
  (flags.phases ?? PHASES.join(",")).split(",").map((p) => {
    if (!(PHASES as readonly string[]).includes(p.trim())) {
      process.stderr.write(`bench: --phases has unknown phase "${p}"; for example --phases ${PHASES.join(",")}\n`);
      process.exit(2);
    }
    return p.trim() as Phase;
  }),
);
const extraEngineEnv: Record<string, string> = {};
for (const kv of flags["engine-env"] ?? []) {
  const i = kv.indexOf("=");
  if (i <= 0) {
    process.stderr.write(`bench: --engine-env must be KEY=VALUE (got ${JSON.stringify(kv)}); for example --engine-env LOG_LEVEL=warn\n`);
    process.exit(2);
  }
  extraEngineEnv[kv.slice(0, i)] = kv.slice(i + 1);
}
const fullSize =
  opts.changes === FULL.changes &&
  opts.txnRows === FULL.txnRows &&
  opts.latencySeconds === FULL.latencySeconds &&
  opts.latencyRate === FULL.latencyRate &&
  opts.snapshotRows === FULL.snapshotRows &&
  opts.silverSeconds === FULL.silverSeconds &&
  opts.snapshot10mRows === FULL.snapshot10mRows &&
  opts.snapshotWideRows === FULL.snapshotWideRows &&
  phases.size === PHASES.length;
const resultsFile = flags.out ?? (fullSize ? join(REPO, "bench", "results.md") : join(REPO, "bench", "work", "results.md"));

// ---------------------------------------------------------------------------------------------
// Helpers

const log = (msg: string) => process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nowMs = () => performance.timeOrigin + performance.now();
const mb = (bytes: number) => Math.round((bytes / (1024 * 1024)) * 10) / 10;
const fmtInt = (n: number) => Math.round(n).toLocaleString("en-US");

async function slotConfirmed(client: Client, slot: string): Promise<bigint | undefined> {
  const { rows } = await client.query<{ lsn: string | null }>("select confirmed_flush_lsn::text as lsn from pg_replication_slots where slot_name = $1", [slot]);
  return rows[0]?.lsn ? parseLsn(rows[0].lsn) : undefined;
}

/**
 * Waits until the slot's confirmed_flush_lsn reaches `target` (the engine has made everything
 * up to there durable and told PostgreSQL so). Returns the performance.now() when seen.
 */
async function waitForConfirmed(client: Client, slot: string, target: bigint, engine: EngineProcess, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  let exitedEarly: { code: number | null; signal: string | null } | undefined;
  void engine.exited.then((e) => (exitedEarly = e));
  for (;;) {
    const lsn = await slotConfirmed(client, slot);
    if (lsn !== undefined && lsn >= target) return performance.now();
    if (exitedEarly) throw new Error(`the engine exited (${exitedEarly.code ?? exitedEarly.signal}) before confirming ${formatLsn(target)} (slot at ${lsn === undefined ? "?" : formatLsn(lsn)}); log tail:\n${engine.logTail()}`);
    if (performance.now() > deadline)
      throw new Error(`the engine did not confirm ${formatLsn(target)} within ${timeoutMs / 1000} s (slot ${slot} at ${lsn === undefined ? "?" : formatLsn(lsn)}); log tail:\n${engine.logTail()}`);
    await sleep(20);
  }
}

/** With --profile, the directory the engine's `node --cpu-prof` writes into for this phase. */
async function profileDir(work: string, phase: Phase): Promise<string | undefined> {
  if (!flags.profile) return undefined;
  const dir = join(work, `cpuprof-${phase}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Summarizes the phase's CPU profile (written when the engine exits) and keeps a copy in bench/work/. */
async function collectProfile(phase: Phase, dir: string | undefined): Promise<void> {
  if (!dir) return;
  const profiles = (await readdir(dir)).filter((f) => f.endsWith(".cpuprofile"));
  if (profiles.length === 0) {
    results.notes.push(`${phase}: --profile was given but the engine wrote no CPU profile (it must exit normally).`);
    return;
  }
  const summary = await summarizeThreads(dir, profiles);
  results.profiles[phase] = summary;
  const dest = join(REPO, "bench", "work");
  await mkdir(dest, { recursive: true });
  execFileSync("cp", [join(dir, threadProfiles(profiles)[0].file), join(dest, `engine-${phase}.cpuprofile`)]);
  log(`${phase}: CPU profile summary (full profile in bench/work/engine-${phase}.cpuprofile):\n${summary}`);
}

/**
 * Samples the CPU time of a client process and of the server processes working for it: the
 * walsender of a slot (pg_replication_slots.active_pid), or backends by application_name.
 */
function sampleCpu(client: Client, serverSide: { slot: string } | { applicationName: string }, consumerPid: number) {
  const seen = new Set<number>();
  let connectedAt: number | undefined;
  let consumerAtConnect: number | undefined;
  const consumer = new CpuSampler(() => [consumerPid]);
  const server = new CpuSampler(async () => {
    const { rows } =
      "slot" in serverSide
        ? await client.query<{ pid: number | null }>("select active_pid as pid from pg_replication_slots where slot_name = $1", [serverSide.slot])
        : await client.query<{ pid: number | null }>("select pid from pg_stat_activity where application_name like $1", [serverSide.applicationName]);
    for (const r of rows) if (r.pid) seen.add(r.pid);
    if (seen.size > 0 && connectedAt === undefined) {
      connectedAt = performance.now();
      consumerAtConnect = cpuSecondsOf(consumerPid);
    }
    return [...seen];
  }, 50);
  return {
    /** performance.now() when the server side was first seen (the slot became active), ±50 ms. */
    connectedAt: () => connectedAt,
    /** The consumer's CPU seconds by then: its start-up (module loading, source checks), ±50 ms. */
    consumerAtConnect: () => consumerAtConnect,
    async stop(): Promise<ProcessCpu> {
      const cpu = { consumer: await consumer.stop(), walsender: await server.stop() };
      return { ...cpu, consumerKernel: consumer.systemSeconds(), walsenderKernel: server.systemSeconds() };
    },
  };
}

/** CPU seconds of a client and of the server processes working for it, and the kernel's share of each. */
interface ProcessCpu {
  consumer: number;
  walsender: number;
  consumerKernel: number;
  walsenderKernel: number;
}

function engineEnv(pg: BenchPostgres, vars: Record<string, string>): Record<string, string> {
  return { ...pg.env, LOG_LEVEL: "info", HEARTBEAT_INTERVAL_MS: "10000", ...vars, ...extraEngineEnv };
}

async function createSlot(pg: BenchPostgres, slot: string): Promise<bigint> {
  const [row] = await pg.query<{ lsn: string }>("select lsn::text as lsn from pg_create_logical_replication_slot($1, 'pgoutput')", [slot]);
  return parseLsn(row.lsn);
}

async function dropSlot(pg: BenchPostgres, slot: string): Promise<void> {
  await pg.query("select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1", [slot]);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

// ---------------------------------------------------------------------------------------------
// Results

interface Figure {
  value: number | undefined;
  /** Why the figure is missing. */
  missing?: string;
}
const missing = (why: string): Figure => ({ value: undefined, missing: why });

const results = {
  drain: {
    changesPerS: missing("not run") as Figure,
    recvChangesPerS: missing("not run") as Figure,
    ratio: missing("not run") as Figure,
    peakRssMb: missing("not run") as Figure,
    engineSeconds: undefined as number | undefined,
    recvSeconds: undefined as number | undefined,
    recvRuns: [] as number[],
    recvCpu: [] as ProcessCpu[],
    engineCpu: undefined as ProcessCpu | undefined,
    generateSeconds: undefined as number | undefined,
    walBytes: undefined as number | undefined,
    landed: undefined as { files: number; records: number; bytes: number } | undefined,
    recvCounts: undefined as string | undefined,
    firstFileSeconds: undefined as number | undefined,
    streamingSeconds: undefined as number | undefined,
  },
  txn: {
    peakRssMb: missing("not run") as Figure,
    changesPerS: missing("not run") as Figure,
    generateSeconds: undefined as number | undefined,
    recvSeconds: undefined as number | undefined,
    engineSeconds: undefined as number | undefined,
    recvCpu: undefined as { consumer: number; walsender: number } | undefined,
    engineCpu: undefined as { consumer: number; walsender: number } | undefined,
    landed: undefined as { files: number; records: number; bytes: number } | undefined,
  },
  latency: {
    p50: missing("not run") as Figure,
    p90: missing("not run") as Figure,
    p99: missing("not run") as Figure,
    max: missing("not run") as Figure,
    achievedRate: undefined as number | undefined,
    measured: undefined as number | undefined,
    written: undefined as number | undefined,
    files: undefined as number | undefined,
    peakRssMb: undefined as number | undefined,
  },
  snapshot: {
    engineRowsPerS: missing("not run") as Figure,
    copyRowsPerS: missing("not run") as Figure,
    ratio: missing("not run") as Figure,
    engineSeconds: undefined as number | undefined,
    copySeconds: undefined as number | undefined,
    copyBytes: undefined as number | undefined,
    copyCpu: undefined as { consumer: number; walsender: number } | undefined,
    startupSeconds: undefined as number | undefined,
    engineCpu: undefined as { consumer: number; walsender: number } | undefined,
    landed: undefined as { files: number; records: number; bytes: number } | undefined,
    peakRssMb: undefined as number | undefined,
    /** The same snapshot with SNAPSHOT_PARALLELISM set to each of --snapshot-workers. */
    byWorkers: [] as { workers: number; seconds?: number; rowsPerS?: number; ratio?: number; missing?: string }[],
  },
  silver: {
    backlog: undefined as SilverBacklogFigures | undefined,
    latency: undefined as SilverLatencyFigures | undefined,
    missing: undefined as string | undefined,
  },
  incremental: { figures: undefined as IncrementalFigures | undefined, missing: "not run" as string | undefined },
  kafka: {
    changesPerS: missing("not run (use --sink kafka)") as Figure,
    ratioToFile: missing("not run (use --sink kafka)") as Figure,
    peakRssMb: missing("not run (use --sink kafka)") as Figure,
    seconds: undefined as number | undefined,
    messages: undefined as number | undefined,
    brokerStartSeconds: undefined as number | undefined,
  },
  snapshot10m: undefined as BigSnapshotFigures | undefined,
  notes: [] as string[],
  profiles: {} as Partial<Record<Phase, string>>,
};

// ---------------------------------------------------------------------------------------------
// Phases

const TABLE_COLUMNS = `id bigint primary key, account integer not null, amount numeric(12,2) not null,
  status text not null, note text, updated_at timestamptz not null default now()`;
const ROW_VALUES = (g: string) => `${g}, (${g} % 1000)::int, ((${g} % 100000) / 100.0)::numeric(12,2), 'new', md5(${g}::text), now()`;

let engineProblem: string | undefined;
/** `git status --porcelain container/src` when the engine was built (uncommitted engine work). */
let engineSourcesDirty = "";
/** The commit checked out when the engine was built. */
let engineCommit = "?";

async function phaseDrain(pg: BenchPostgres, work: string): Promise<void> {
  const n = opts.changes;
  log(`drain: generating a backlog of ${fmtInt(n)} committed changes (60% insert / 30% update / 10% delete, transactions of ≤10,000)`);
  await pg.query(`create table public.bench_drain (${TABLE_COLUMNS})`);
  await pg.query("create publication bench_drain_pub for table public.bench_drain");
  // Both slots are created before the workload, so both have exactly the same backlog to decode.
  const startLsn = await createSlot(pg, "bench_drain_recv_a");
  await createSlot(pg, "bench_drain_engine");
  await createSlot(pg, FORMAT_SLOTS.text);
  await createSlot(pg, "bench_drain_recv_b");
  if (withKafka) await createSlot(pg, "bench_drain_kafka");
  const client = await pg.connect();
  let endLsn: bigint;
  try {
    const t0 = performance.now();
    // One DO block committing every batch: generated server-side, no client round trips per row.
    // Each batch inserts fresh ids, then updates and deletes rows inserted by the previous batch
    // (the first batch updates/deletes its own rows).
    await client.query(`
      do $$
      declare
        total bigint := ${n};
        done bigint := 0;
        next_id bigint := 1;
        prev_base bigint := 1;
        b bigint; ins bigint; upd bigint; del bigint; base bigint; del_at bigint;
      begin
        while done < total loop
          b := least(10000, total - done);
          ins := round(b * 0.6); upd := round(b * 0.3); del := b - ins - upd;
          base := next_id;
          insert into public.bench_drain select ${ROW_VALUES("g")} from generate_series(base, base + ins - 1) g;
          next_id := base + ins;
          -- The first batch works on its own rows, deleting right after the updated ones; later
          -- batches work on the previous batch's rows, deleting one range further along (so the
          -- first batch's deleted range is never targeted twice).
          if done = 0 then prev_base := base; del_at := upd; else del_at := upd + del; end if;
          update public.bench_drain set amount = amount + 1, status = 'updated', updated_at = now()
            where id >= prev_base and id < prev_base + upd;
          delete from public.bench_drain where id >= prev_base + del_at and id < prev_base + del_at + del;
          prev_base := base;
          done := done + b;
          commit;
        end loop;
      end $$`);
    results.drain.generateSeconds = (performance.now() - t0) / 1000;
    const [{ lsn }] = (await client.query<{ lsn: string }>("select pg_current_wal_insert_lsn()::text as lsn")).rows;
    endLsn = parseLsn(lsn);
  } finally {
    await client.end();
  }
  results.drain.walBytes = Number(endLsn - startLsn);
  log(`drain: backlog generated in ${results.drain.generateSeconds!.toFixed(1)} s, ${mb(results.drain.walBytes)} MB of WAL, ends at ${formatLsn(endLsn)}`);

  // Baseline: pg_recvlogical drains its slot into a file and stops at the backlog's end. It runs
  // once before and once after the engine (each on its own slot), so a change in the machine's
  // load during the phase biases neither side; the baseline rate is from the mean of both times.
  const runRecv = async (slot: string) => {
    const recvFile = join(work, `${slot}.out`);
    const t0 = performance.now();
    const recv = spawnClient("pg_recvlogical", [
      ...pg.cliArgs,
      `--slot=${slot}`,
      "--start",
      "--no-loop",
      `--endpos=${formatLsn(endLsn)}`,
      "-o", "proto_version=1",
      "-o", "publication_names=bench_drain_pub",
      "-f", recvFile,
    ]);
    const probe = await pg.connect();
    const cpu = sampleCpu(probe, { slot }, recv.child.pid!);
    try {
      await recv.done;
    } finally {
      results.drain.recvCpu.push(await cpu.stop());
      await probe.end();
    }
    const seconds = (performance.now() - t0) / 1000;
    const summary = await summarizePgoutputFile(recvFile);
    await rm(recvFile, { force: true });
    await dropSlot(pg, slot);
    const decoded = summary.inserts + summary.updates + summary.deletes;
    const counts = `${fmtInt(summary.inserts)} I / ${fmtInt(summary.updates)} U / ${fmtInt(summary.deletes)} D in ${fmtInt(summary.commits)} commits, ${mb(summary.bytes)} MB`;
    if (decoded !== n) throw new Error(`pg_recvlogical decoded ${decoded} changes, expected ${n} (${counts})`);
    log(`drain: pg_recvlogical (${slot}): ${seconds.toFixed(2)} s → ${fmtInt(n / seconds)} changes/s (${counts})`);
    results.drain.recvCounts = counts;
    results.drain.recvRuns.push(seconds);
    const mean = results.drain.recvRuns.reduce((a, b) => a + b, 0) / results.drain.recvRuns.length;
    results.drain.recvSeconds = mean;
    results.drain.recvChangesPerS = { value: n / mean };
    return summary;
  };
  const summary = await runRecv("bench_drain_recv_a");
  const lastEnd = summary.lastEndLsn!;
  try {
    // The other format first: the first engine run after pg_recvlogical tends to take longer
    // wall-clock on a shared machine; the run in the engine's default format gives the drain figures.
    await drainWithEngine(pg, work, lastEnd, MAIN_FORMAT === "binary" ? "text" : "binary");
    await drainWithEngine(pg, work, lastEnd);
    const byFormat = formatComparisonLog(opts.changes);
    if (byFormat) log(`drain: ${byFormat}`);
    if (withKafka) await drainIntoKafka(pg, work, lastEnd);
  } finally {
    await runRecv("bench_drain_recv_b");
    if (results.drain.changesPerS.value !== undefined) results.drain.ratio = { value: results.drain.changesPerS.value / results.drain.recvChangesPerS.value! };
    await pg.query("drop table public.bench_drain");
  }
  if (results.drain.ratio.value !== undefined) log(`drain: engine ${fmtInt(results.drain.changesPerS.value!)} changes/s vs pg_recvlogical ${fmtInt(results.drain.recvChangesPerS.value!)} changes/s (mean of ${results.drain.recvRuns.map((x) => x.toFixed(2) + " s").join(" and ")}) → ratio ${results.drain.ratio.value.toFixed(2)}`);
}

async function drainWithEngine(pg: BenchPostgres, work: string, lastEnd: bigint, format: DrainFormat = MAIN_FORMAT): Promise<void> {
  const n = opts.changes;
  // The other format's run only adds its figures to the format comparison (bench/lib/drain-formats.ts).
  const main = format === MAIN_FORMAT;
  const slot = FORMAT_SLOTS[format];
  if (engineProblem) {
    for (const k of ["changesPerS", "ratio", "peakRssMb"] as const) results.drain[k] = missing(engineProblem);
    return;
  }
  const landing = join(work, `landing-drain-${format}`);
  await mkdir(landing, { recursive: true });
  await claimSlotForLanding(landing, slot, "postgres");
  const profDir = main ? await profileDir(work, "drain") : undefined;
  log(`drain: engine (${format}) draining slot ${slot} to ${landing} (target confirmed_flush_lsn ≥ ${formatLsn(lastEnd)})`);
  const watch = await pg.connect();
  const engine = spawnEngine({
    env: engineEnv(pg, {
      PG_PUBLICATION: "bench_drain_pub",
      PG_SLOT: slot,
      TABLE_INCLUDE: "public.bench_drain",
      SNAPSHOT_MODE: "never",
      SINK_URL: `file://${landing}`,
      HTTP_PORT: String(await freePort()),
      ...FORMAT_ENV[format],
    }),
    logFile: join(work, `engine-drain-${format}.log`),
    cpuProfDir: profDir,
  });
  try {
    const watcher = new LandingWatcher(join(landing, "cdc.public.bench_drain"));
    let firstFileAt: number | undefined;
    const firstFile = (async () => {
      while (firstFileAt === undefined && engine.child.exitCode === null) {
        if ((await watcher.scan()).length > 0) firstFileAt = performance.now();
        else await sleep(50);
      }
    })();
    const probe = await pg.connect();
    const cpu = sampleCpu(probe, { slot }, engine.pid);
    let doneAt: number;
    let engineCpu: ProcessCpu;
    try {
      doneAt = await waitForConfirmed(watch, slot, lastEnd, engine, opts.engineTimeoutMs);
    } finally {
      engineCpu = await cpu.stop();
      if (main) results.drain.engineCpu = engineCpu;
      await probe.end();
    }
    const seconds = (doneAt - engine.startedAt) / 1000;
    const streamingFrom = cpu.connectedAt();
    if (main && streamingFrom !== undefined) results.drain.streamingSeconds = (doneAt - streamingFrom) / 1000;
    const peak = engine.memory().peakRss;
    await engine.stop();
    await firstFile;
    const exit = await engine.exited;
    if (exit.code !== 0) results.notes.push(`drain (${format}): the engine exited with ${exit.code ?? exit.signal} on SIGTERM (expected 0).`);
    formatFigures[format] = { seconds, cpu: engineCpu, startupCpu: cpu.consumerAtConnect(), peakRssMb: mb(peak) };
    const landed = await countRecords(join(landing, "cdc.public.bench_drain"));
    await recordLandingDigest(format, join(landing, "cdc.public.bench_drain"));
    if (main) {
      results.drain.engineSeconds = seconds;
      results.drain.firstFileSeconds = firstFileAt === undefined ? undefined : (firstFileAt - engine.startedAt) / 1000;
      results.drain.changesPerS = { value: n / seconds };
      results.drain.peakRssMb = { value: mb(peak) };
      results.drain.landed = landed;
    }
    if (landed.records < n) results.notes.push(`drain (${format}): only ${landed.records} of ${n} changes were found in the landing files although the slot was confirmed past them.`);
    log(`drain: engine (${format}): ${seconds.toFixed(2)} s → ${fmtInt(n / seconds)} changes/s, CPU ${usPerChange(engineCpu.consumer, n).toFixed(2)} µs (${usPerChange(engineCpu.consumer - (cpu.consumerAtConnect() ?? 0), n).toFixed(2)} µs after start-up) + walsender ${usPerChange(engineCpu.walsender, n).toFixed(2)} µs per change, peak RSS ${mb(peak)} MB; landed ${fmtInt(landed.records)} records in ${landed.files} files`);
    if (main) await collectProfile("drain", profDir);
  } catch (err) {
    const why = (err as Error).message.split("\n")[0];
    if (main) for (const k of ["changesPerS", "ratio", "peakRssMb"] as const) results.drain[k] = missing(why);
    results.notes.push(`drain (${format}): ${(err as Error).message}`);
    log(`drain: engine (${format}) FAILED: ${(err as Error).message}`);
    await engine.stop(3000);
  } finally {
    await watch.end();
    await rm(landing, { recursive: true, force: true });
    await dropSlot(pg, slot).catch(() => undefined);
  }
}

/** --sink kafka: the same backlog from its own slot into a local broker; compared with the file sink's run. */
async function drainIntoKafka(pg: BenchPostgres, work: string, lastEnd: bigint): Promise<void> {
  const n = opts.changes;
  const fail = (why: string) => {
    for (const k of ["changesPerS", "ratioToFile", "peakRssMb"] as const) results.kafka[k] = missing(why);
    results.notes.push(`kafka: ${why}`);
    log(`drain: kafka FAILED: ${why}`);
  };
  if (engineProblem) return fail(engineProblem);
  const t0 = performance.now();
  const broker = await startKafka();
  results.kafka.brokerStartSeconds = (performance.now() - t0) / 1000;
  log(`drain: Kafka broker up at ${broker.bootstrap} in ${results.kafka.brokerStartSeconds.toFixed(1)} s; engine draining slot bench_drain_kafka into it`);
  const watch = await pg.connect();
  const engine = spawnEngine({
    env: engineEnv(pg, {
      PG_PUBLICATION: "bench_drain_pub",
      PG_SLOT: "bench_drain_kafka",
      TABLE_INCLUDE: "public.bench_drain",
      SNAPSHOT_MODE: "never",
      SINK_URL: `kafka://${broker.bootstrap}`,
      KAFKA_TOPIC_PARTITIONS: "3",
      HTTP_PORT: String(await freePort()),
    }),
    logFile: join(work, "engine-drain-kafka.log"),
  });
  try {
    const doneAt = await waitForConfirmed(watch, "bench_drain_kafka", lastEnd, engine, opts.engineTimeoutMs);
    const seconds = (doneAt - engine.startedAt) / 1000;
    const peak = engine.memory().peakRss;
    await engine.stop();
    await engine.exited;
    results.kafka.seconds = seconds;
    results.kafka.changesPerS = { value: n / seconds };
    results.kafka.peakRssMb = { value: mb(peak) };
    if (results.drain.changesPerS.value !== undefined) results.kafka.ratioToFile = { value: n / seconds / results.drain.changesPerS.value };
    else results.kafka.ratioToFile = missing("the file-sink drain has no figure");
    const settings = loadConfig({ PG_HOST: "x", PG_DATABASE: "x", PG_USER: "x", SINK_URL: `kafka://${broker.bootstrap}` }).kafka;
    const reader = new KafkaSink({ url: `kafka://${broker.bootstrap}`, brokers: [broker.bootstrap], tls: false, settings });
    try {
      let messages = 0;
      for (const list of (await reader.readAll("cdc.public.bench_drain")).values()) messages += list.filter((m) => m.value !== null).length;
      results.kafka.messages = messages;
      if (messages < n) results.notes.push(`kafka: only ${messages} of ${n} changes were found in cdc.public.bench_drain although the slot was confirmed past them.`);
    } finally {
      await reader.close();
    }
    log(`drain: kafka: ${seconds.toFixed(2)} s → ${fmtInt(n / seconds)} changes/s (${results.kafka.ratioToFile.value?.toFixed(2) ?? "?"} × the file sink), peak RSS ${mb(peak)} MB; ${fmtInt(results.kafka.messages ?? 0)} records in the topic`);
  } catch (err) {
    fail((err as Error).message.split("\n")[0]);
    await engine.stop(3000);
  } finally {
    await watch.end();
    await broker.dispose();
    await dropSlot(pg, "bench_drain_kafka").catch(() => undefined);
  }
}

async function phaseTxn(pg: BenchPostgres, work: string): Promise<void> {
  const n = opts.txnRows;
  if (engineProblem) {
    results.txn.peakRssMb = missing(engineProblem);
    results.txn.changesPerS = missing(engineProblem);
    return;
  }
  log(`txn: committing ONE transaction inserting ${fmtInt(n)} rows`);
  await pg.query(`create table public.bench_big (${TABLE_COLUMNS})`);
  await pg.query("create publication bench_big_pub for table public.bench_big");
  await createSlot(pg, "bench_big_engine");
  await createSlot(pg, "bench_big_recv");
  const client = await pg.connect();
  let endLsn: bigint;
  try {
    const t0 = performance.now();
    await client.query(`insert into public.bench_big select ${ROW_VALUES("g")} from generate_series(1, ${n}) g`);
    // The insert-LSN right after the commit, in the same session, is the commit record's end.
    const [{ lsn }] = (await client.query<{ lsn: string }>("select pg_current_wal_insert_lsn()::text as lsn")).rows;
    endLsn = parseLsn(lsn);
    results.txn.generateSeconds = (performance.now() - t0) / 1000;
  } finally {
    await client.end();
  }
  log(`txn: committed in ${results.txn.generateSeconds!.toFixed(1)} s, ends at ${formatLsn(endLsn)}`);
  // Context for the engine's time: how long PostgreSQL itself needs to decode and send the
  // transaction (it spills it to disk past logical_decoding_work_mem) to pg_recvlogical.
  const recvFile = join(work, "bench_big_recv.out");
  const r0 = performance.now();
  const recvRun = spawnClient("pg_recvlogical", [
    ...pg.cliArgs,
    "--slot=bench_big_recv",
    "--start",
    "--no-loop",
    `--endpos=${formatLsn(endLsn)}`,
    "-o", "proto_version=1",
    "-o", "publication_names=bench_big_pub",
    "-f", recvFile,
  ]);
  const recvProbe = await pg.connect();
  const recvCpu = sampleCpu(recvProbe, { slot: "bench_big_recv" }, recvRun.child.pid!);
  try {
    await recvRun.done;
  } finally {
    results.txn.recvCpu = await recvCpu.stop();
    await recvProbe.end();
  }
  results.txn.recvSeconds = (performance.now() - r0) / 1000;
  const recv = await summarizePgoutputFile(recvFile);
  await rm(recvFile, { force: true });
  await dropSlot(pg, "bench_big_recv");
  if (recv.inserts !== n) throw new Error(`pg_recvlogical decoded ${recv.inserts} inserts of the large transaction, expected ${n}`);
  endLsn = recv.lastEndLsn!;
  log(`txn: pg_recvlogical drained it in ${results.txn.recvSeconds.toFixed(1)} s (${fmtInt(n / results.txn.recvSeconds)} changes/s); engine draining it`);
  const txnProf = await profileDir(work, "txn");
  const landing = join(work, "landing-txn");
  await mkdir(landing, { recursive: true });
  await claimSlotForLanding(landing, "bench_big_engine", "postgres");
  const watch = await pg.connect();
  const engine = spawnEngine({
    env: engineEnv(pg, {
      PG_PUBLICATION: "bench_big_pub",
      PG_SLOT: "bench_big_engine",
      TABLE_INCLUDE: "public.bench_big",
      SNAPSHOT_MODE: "never",
      SINK_URL: `file://${landing}`,
      HTTP_PORT: String(await freePort()),
    }),
    logFile: join(work, "engine-txn.log"),
    cpuProfDir: txnProf,
  });
  try {
    const probe = await pg.connect();
    const cpu = sampleCpu(probe, { slot: "bench_big_engine" }, engine.pid);
    let doneAt: number;
    try {
      doneAt = await waitForConfirmed(watch, "bench_big_engine", endLsn, engine, opts.engineTimeoutMs);
    } finally {
      results.txn.engineCpu = await cpu.stop();
      await probe.end();
    }
    const seconds = (doneAt - engine.startedAt) / 1000;
    const peak = engine.memory().peakRss;
    await engine.stop();
    await collectProfile("txn", txnProf);
    results.txn.engineSeconds = seconds;
    results.txn.peakRssMb = { value: mb(peak) };
    results.txn.changesPerS = { value: n / seconds };
    results.txn.landed = await countRecords(join(landing, "cdc.public.bench_big"));
    if (results.txn.landed.records < n) results.notes.push(`txn: only ${results.txn.landed.records} of ${n} rows were found in the landing files.`);
    log(`txn: engine drained it in ${seconds.toFixed(1)} s (${fmtInt(n / seconds)} changes/s), peak RSS ${mb(peak)} MB; landed ${fmtInt(results.txn.landed.records)} records in ${results.txn.landed.files} files`);
  } catch (err) {
    const why = (err as Error).message.split("\n")[0];
    const peak = engine.memory().peakRss;
    results.txn.peakRssMb = missing(`${why} (peak RSS before giving up: ${mb(peak)} MB)`);
    results.txn.changesPerS = missing(why);
    results.notes.push(`txn: ${(err as Error).message}`);
    log(`txn: engine FAILED: ${(err as Error).message}`);
    await engine.stop(3000);
  } finally {
    await watch.end();
    await rm(landing, { recursive: true, force: true });
    await dropSlot(pg, "bench_big_engine").catch(() => undefined);
    await pg.query("drop table public.bench_big");
  }
}

async function waitReady(port: number, engine: EngineProcess, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline && engine.child.exitCode === null) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (res.ok) return true;
    } catch {
      /* not listening yet */
    }
    await sleep(100);
  }
  return false;
}

async function phaseLatency(pg: BenchPostgres, work: string): Promise<void> {
  if (engineProblem) {
    for (const k of ["p50", "p90", "p99", "max"] as const) results.latency[k] = missing(engineProblem);
    return;
  }
  const rate = opts.latencyRate;
  const seconds = opts.latencySeconds;
  const txnsPerSecond = 50;
  const rowsPerTxn = Math.max(1, Math.round(rate / txnsPerSecond));
  const intervalMs = (1000 * rowsPerTxn) / rate;
  await pg.query("create table public.bench_lat (id bigserial primary key, account integer not null, note text not null)");
  await pg.query("create publication bench_lat_pub for table public.bench_lat");
  await createSlot(pg, "bench_lat_engine");
  const landing = join(work, "landing-latency");
  await mkdir(landing, { recursive: true });
  await claimSlotForLanding(landing, "bench_lat_engine", "postgres");
  const httpPort = await freePort();
  const engine = spawnEngine({
    env: engineEnv(pg, {
      PG_PUBLICATION: "bench_lat_pub",
      PG_SLOT: "bench_lat_engine",
      TABLE_INCLUDE: "public.bench_lat",
      SNAPSHOT_MODE: "never",
      SINK_URL: `file://${landing}`,
      BATCH_MAX_WAIT_MS: "1000",
      HTTP_PORT: String(httpPort),
    }),
    logFile: join(work, "engine-latency.log"),
  });
  const writer = await pg.connect();
  try {
    if (!(await waitReady(httpPort, engine, 30_000))) {
      if (engine.child.exitCode !== null) throw new Error(`the engine exited (${engine.child.exitCode}) before it was ready; log tail:\n${engine.logTail()}`);
      results.notes.push("latency: /readyz never answered 200 within 30 s; measured anyway after that wait.");
    }
    log(`latency: engine ready; writing ${fmtInt(rate)} changes/s (${rowsPerTxn} rows every ${intervalMs.toFixed(0)} ms) for ${seconds} s with BATCH_MAX_WAIT_MS=1000`);
    const watcher = new LandingWatcher(join(landing, "cdc.public.bench_lat"));
    const latencies: number[] = [];
    let landedRecords = 0;
    const warmupUntilMs = nowMs() + Math.min(3000, (seconds * 1000) / 5);
    let polling = true;
    const poller = (async () => {
      while (polling) {
        for (const obj of await watcher.scan()) {
          const buf = await readObject(obj.path);
          for (const line of buf.toString("utf8").split("\n")) {
            if (!line) continue;
            landedRecords++;
            const rec = JSON.parse(line) as { __ts_ms?: number };
            if (typeof rec.__ts_ms === "number" && rec.__ts_ms >= warmupUntilMs) latencies.push(obj.seenAtMs - rec.__ts_ms);
          }
        }
        await sleep(10);
      }
    })();
    let written = 0;
    const startAt = performance.now();
    const endAt = startAt + seconds * 1000;
    for (let k = 0; ; k++) {
      const due = startAt + k * intervalMs;
      if (due >= endAt) break;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      await writer.query("insert into public.bench_lat (account, note) select g, 'latency probe' from generate_series(1, $1::int) g", [rowsPerTxn]);
      written += rowsPerTxn;
    }
    const elapsed = (performance.now() - startAt) / 1000;
    const drainDeadline = performance.now() + 20_000;
    while (landedRecords < written && performance.now() < drainDeadline) await sleep(50);
    polling = false;
    await poller;
    if (landedRecords < written) results.notes.push(`latency: only ${landedRecords} of ${written} written rows had landed 20 s after the writer stopped.`);
    latencies.sort((a, b) => a - b);
    results.latency.written = written;
    results.latency.achievedRate = written / elapsed;
    results.latency.measured = latencies.length;
    results.latency.files = watcher.seen.size;
    results.latency.p50 = { value: Math.round(percentile(latencies, 50)) };
    results.latency.p90 = { value: Math.round(percentile(latencies, 90)) };
    results.latency.p99 = { value: Math.round(percentile(latencies, 99)) };
    results.latency.max = { value: Math.round(latencies[latencies.length - 1] ?? NaN) };
    results.latency.peakRssMb = mb(engine.memory().peakRss);
    log(`latency: ${fmtInt(written)} rows at ${fmtInt(written / elapsed)}/s in ${watcher.seen.size} files; commit→file p50 ${results.latency.p50.value} ms, p90 ${results.latency.p90.value} ms, p99 ${results.latency.p99.value} ms, max ${results.latency.max.value} ms (${fmtInt(latencies.length)} changes after warm-up)`);
  } catch (err) {
    const why = (err as Error).message.split("\n")[0];
    for (const k of ["p50", "p90", "p99", "max"] as const) results.latency[k] = missing(why);
    results.notes.push(`latency: ${(err as Error).message}`);
    log(`latency: FAILED: ${(err as Error).message}`);
  } finally {
    await writer.end();
    await engine.stop(3000);
    await rm(landing, { recursive: true, force: true });
    await dropSlot(pg, "bench_lat_engine").catch(() => undefined);
    await pg.query("drop table public.bench_lat");
  }
}

async function phaseSilver(pg: BenchPostgres, work: string): Promise<void> {
  log(`silver: writing a ${fmtInt(opts.changes)}-change backlog in the landing format; bronze, then silver, on local Spark`);
  try {
    results.silver.backlog = await silverBacklog(work, opts.changes, (l) => log(`silver: ${l}`));
    const b = results.silver.backlog;
    log(`silver: bronze ${b.bronzeSeconds.toFixed(1)} s, silver ${b.silverSeconds.toFixed(1)} s → ${fmtInt(b.silverChangesPerS)} changes/s merged; ${fmtInt(b.silverRows)} rows`);
  } catch (err) {
    results.silver.missing = (err as Error).message.split("\n")[0];
    results.notes.push(`silver backlog: ${(err as Error).message}`);
    log(`silver: backlog FAILED: ${(err as Error).message}`);
  }
  if (engineProblem) return;
  await pg.query("create table public.bench_silver_lat (id bigserial primary key, account integer not null, note text not null)");
  await pg.query("create publication bench_silver_pub for table public.bench_silver_lat");
  await createSlot(pg, "bench_silver_engine");
  const landing = join(work, "landing-silver");
  await mkdir(landing, { recursive: true });
  await claimSlotForLanding(landing, "bench_silver_engine", "postgres");
  const httpPort = await freePort();
  const engine = spawnEngine({
    env: engineEnv(pg, { PG_PUBLICATION: "bench_silver_pub", PG_SLOT: "bench_silver_engine", TABLE_INCLUDE: "public.bench_silver_lat", SNAPSHOT_MODE: "never", SINK_URL: `file://${landing}`, BATCH_MAX_WAIT_MS: "1000", HTTP_PORT: String(httpPort) }),
    logFile: join(work, "engine-silver.log"),
  });
  const writer = await pg.connect();
  try {
    if (!(await waitReady(httpPort, engine, 30_000))) throw new Error(`the engine did not become ready; log tail:\n${engine.logTail()}`);
    // The first object (and manifest) must exist before the always-on bronze stream starts on the folder.
    await writer.query("insert into public.bench_silver_lat (account, note) values (0, 'first')");
    const watcher = new LandingWatcher(join(landing, "cdc.public.bench_silver_lat"));
    for (let i = 0; i < 200 && (await watcher.scan()).length === 0 && watcher.seen.size === 0; i++) await sleep(50);
    const rate = FULL.silverRate;
    const rowsPerTxn = 20;
    const intervalMs = (1000 * rowsPerTxn) / rate;
    let warmupUntil = Infinity;
    log(`silver: bronze and silver streaming (1 s trigger); writing ${fmtInt(rate)} changes/s for ${opts.silverSeconds} s`);
    results.silver.latency = await silverLatency(
      work,
      landing,
      "public.bench_silver_lat",
      async () => {
        const startAt = performance.now();
        warmupUntil = nowMs() + 10_000;
        const endAt = startAt + opts.silverSeconds * 1000;
        for (let k = 0; ; k++) {
          const due = startAt + k * intervalMs;
          if (due >= endAt) break;
          const wait = due - performance.now();
          if (wait > 0) await sleep(wait);
          await writer.query("insert into public.bench_silver_lat (account, note) select g, 'silver latency probe' from generate_series(1, $1::int) g", [rowsPerTxn]);
        }
      },
      () => warmupUntil,
      (l) => log(`silver: ${l}`),
    );
    const l = results.silver.latency;
    log(`silver: commit→silver p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms, max ${l.maxMs} ms over ${fmtInt(l.samples)} changes (after 10 s warm-up)`);
  } catch (err) {
    results.notes.push(`silver latency: ${(err as Error).message}`);
    log(`silver: latency FAILED: ${(err as Error).message}`);
  } finally {
    await writer.end();
    await engine.stop(3000);
    await dropSlot(pg, "bench_silver_engine").catch(() => undefined);
    await pg.query("drop table public.bench_silver_lat");
  }
}

async function phaseSnapshot(pg: BenchPostgres, work: string): Promise<void> {
  const n = opts.snapshotRows;
  log(`snapshot: loading a ${fmtInt(n)}-row table`);
  await pg.query(`create table public.bench_snap (${TABLE_COLUMNS})`);
  await pg.query(`insert into public.bench_snap select ${ROW_VALUES("g")} from generate_series(1, ${n}) g`);
  await pg.query("vacuum (freeze, analyze) public.bench_snap");
  await pg.query("create publication bench_snap_pub for table public.bench_snap");

  // Baseline: COPY … TO STDOUT through psql into a file; one untimed pass first warms the caches
  // for both contenders.
  const copyArgs = [...pg.cliArgs, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", "COPY public.bench_snap TO STDOUT"];
  const devNull = openSync("/dev/null", "w");
  await spawnClient("psql", copyArgs, devNull).done;
  closeSync(devNull);
  const copyFile = join(work, "copy.out");
  const fd = openSync(copyFile, "w");
  const t0 = performance.now();
  const probe = await pg.connect();
  try {
    const copy = spawnClient("psql", copyArgs, fd);
    const cpu = sampleCpu(probe, { applicationName: "psql" }, copy.child.pid!);
    try {
      await copy.done;
    } finally {
      results.snapshot.copyCpu = await cpu.stop();
    }
  } finally {
    closeSync(fd);
    await probe.end();
  }
  const copySeconds = (performance.now() - t0) / 1000;
  const copyLines = countLines(await readObject(copyFile));
  results.snapshot.copyBytes = (await import("node:fs")).statSync(copyFile).size;
  await rm(copyFile, { force: true });
  if (copyLines !== n) throw new Error(`COPY returned ${copyLines} rows, expected ${n}`);
  results.snapshot.copySeconds = copySeconds;
  results.snapshot.copyRowsPerS = { value: n / copySeconds };
  log(`snapshot: COPY TO STDOUT: ${copySeconds.toFixed(2)} s → ${fmtInt(n / copySeconds)} rows/s`);

  if (engineProblem) {
    results.snapshot.engineRowsPerS = missing(engineProblem);
    results.snapshot.ratio = missing(engineProblem);
    return;
  }
  const landing = join(work, "landing-snapshot");
  await mkdir(landing, { recursive: true });
  const tableDir = join(landing, "cdc.public.bench_snap");
  const snapProf = await profileDir(work, "snapshot");
  const engine = spawnEngine({
    env: engineEnv(pg, {
      PG_PUBLICATION: "bench_snap_pub",
      PG_SLOT: "bench_snap_engine",
      TABLE_INCLUDE: "public.bench_snap",
      SNAPSHOT_MODE: "initial_only",
      SINK_URL: `file://${landing}`,
      HTTP_PORT: String(await freePort()),
    }),
    logFile: join(work, "engine-snapshot.log"),
    cpuProfDir: snapProf,
  });
  try {
    const cpuProbe = await pg.connect();
    const cpu = sampleCpu(cpuProbe, { applicationName: "cdc-engine%" }, engine.pid);
    void engine.exited.then(async () => {
      results.snapshot.engineCpu = await cpu.stop();
      await cpuProbe.end();
    });
    // initial_only: the engine exits once the snapshot is durable. If it keeps running, the
    // snapshot counts as done when every row has landed.
    const watcher = new LandingWatcher(tableDir);
    let landed = 0;
    let doneAt: number | undefined;
    const deadline = performance.now() + opts.engineTimeoutMs;
    while (doneAt === undefined) {
      for (const obj of await watcher.scan()) landed += countLines(await readObject(obj.path));
      if (engine.child.exitCode !== null) {
        const exit = await engine.exited;
        for (const obj of await watcher.scan()) landed += countLines(await readObject(obj.path));
        if (exit.code !== 0) throw new Error(`the engine exited with ${exit.code ?? exit.signal} during the snapshot (${landed} of ${n} rows landed); log tail:\n${engine.logTail()}`);
        if (landed < n) throw new Error(`the engine exited 0 after landing only ${landed} of ${n} rows; log tail:\n${engine.logTail()}`);
        doneAt = exit.at;
      } else if (landed >= n) {
        // Every row is there; initial_only should now record its state and exit.
        const landedAt = performance.now();
        const exit = await Promise.race([engine.exited, sleep(10_000).then(() => undefined)]);
        if (exit && exit.code === 0) doneAt = exit.at;
        else {
          doneAt = landedAt;
          results.notes.push(`snapshot: with SNAPSHOT_MODE=initial_only the engine ${exit ? `exited with ${exit.code ?? exit.signal}` : "was still running 10 s"} after every row had landed; timed until the last row landed.`);
        }
      } else if (performance.now() > deadline) {
        throw new Error(`the snapshot did not finish within ${opts.engineTimeoutMs / 1000} s (${landed} of ${n} rows landed); log tail:\n${engine.logTail()}`);
      } else await sleep(25);
    }
    const seconds = (doneAt - engine.startedAt) / 1000;
    const connectedAt = cpu.connectedAt();
    if (connectedAt !== undefined) results.snapshot.startupSeconds = (connectedAt - engine.startedAt) / 1000;
    results.snapshot.peakRssMb = mb(engine.memory().peakRss);
    await engine.stop();
    await collectProfile("snapshot", snapProf);
    results.snapshot.engineSeconds = seconds;
    results.snapshot.engineRowsPerS = { value: n / seconds };
    results.snapshot.ratio = { value: n / seconds / (n / copySeconds) };
    results.snapshot.landed = await countRecords(tableDir);
    log(`snapshot: engine initial_only: ${seconds.toFixed(2)} s → ${fmtInt(n / seconds)} rows/s, ratio ${(n / seconds / (n / copySeconds)).toFixed(2)} vs COPY; peak RSS ${results.snapshot.peakRssMb} MB`);
    for (const workers of opts.snapshotWorkers) results.snapshot.byWorkers.push(await snapshotWithWorkers(pg, work, workers, n, copySeconds));
  } catch (err) {
    const why = (err as Error).message.split("\n")[0];
    results.snapshot.engineRowsPerS = missing(why);
    results.snapshot.ratio = missing(why);
    results.notes.push(`snapshot: ${(err as Error).message}`);
    log(`snapshot: engine FAILED: ${(err as Error).message}`);
    await engine.stop(3000);
  } finally {
    await rm(landing, { recursive: true, force: true });
    await dropSlot(pg, "bench_snap_engine").catch(() => undefined);
    await pg.query("drop table public.bench_snap");
  }
}

/** The snapshot again with SNAPSHOT_PARALLELISM=workers, timed from process start to exit (initial_only). */
async function snapshotWithWorkers(pg: BenchPostgres, work: string, workers: number, n: number, copySeconds: number): Promise<(typeof results.snapshot.byWorkers)[number]> {
  const landing = join(work, `landing-snapshot-${workers}`);
  await mkdir(landing, { recursive: true });
  const slot = `bench_snap_w${workers}`;
  const engine = spawnEngine({
    env: engineEnv(pg, {
      PG_PUBLICATION: "bench_snap_pub",
      PG_SLOT: slot,
      TABLE_INCLUDE: "public.bench_snap",
      SNAPSHOT_MODE: "initial_only",
      SNAPSHOT_PARALLELISM: String(workers),
      SINK_URL: `file://${landing}`,
      HTTP_PORT: String(await freePort()),
    }),
    logFile: join(work, `engine-snapshot-${workers}.log`),
  });
  try {
    const exit = await Promise.race([engine.exited, sleep(opts.engineTimeoutMs).then(() => undefined)]);
    if (!exit) throw new Error(`did not finish within ${opts.engineTimeoutMs / 1000} s`);
    if (exit.code !== 0) throw new Error(`the engine exited with ${exit.code ?? exit.signal}; log tail: ${engine.logTail()}`);
    const landed = await countRecords(join(landing, "cdc.public.bench_snap"));
    // The rows and the table's re-snapshot barrier.
    if (landed.records !== n + 1) throw new Error(`landed ${landed.records} records, expected ${n + 1}`);
    const seconds = (exit.at - engine.startedAt) / 1000;
    log(`snapshot: SNAPSHOT_PARALLELISM=${workers}: ${seconds.toFixed(2)} s → ${fmtInt(n / seconds)} rows/s, ratio ${(copySeconds / seconds).toFixed(2)} vs COPY`);
    return { workers, seconds, rowsPerS: n / seconds, ratio: copySeconds / seconds };
  } catch (err) {
    const why = (err as Error).message.split("\n")[0];
    log(`snapshot: SNAPSHOT_PARALLELISM=${workers} FAILED: ${why}`);
    results.notes.push(`snapshot with SNAPSHOT_PARALLELISM=${workers}: ${why}`);
    return { workers, missing: why };
  } finally {
    await engine.stop(3000);
    await rm(landing, { recursive: true, force: true });
    await dropSlot(pg, slot).catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// Report

interface Target {
  metric: string;
  figure: Figure;
  unit: string;
  target: string;
  pass: (v: number) => boolean;
  digits?: number;
}

function show(f: Figure, digits = 0): string {
  if (f.value === undefined || Number.isNaN(f.value)) return "missing";
  return digits === 0 ? fmtInt(f.value) : f.value.toFixed(digits);
}

function bareNumber(f: Figure, digits = 0): string {
  if (f.value === undefined || Number.isNaN(f.value)) return "NA";
  return digits === 0 ? String(Math.round(f.value)) : f.value.toFixed(digits);
}

function report(pg: BenchPostgres | undefined, started: Date, load: number[], engineWarning: string | undefined): { markdown: string; benchLine: string } {
  const targets: Target[] = [
    { metric: "Backlog drain throughput (engine)", figure: results.drain.changesPerS, unit: "changes/s", target: "≥ 100,000", pass: (v) => v >= 100_000 },
    { metric: "Drain ratio vs pg_recvlogical", figure: results.drain.ratio, unit: "×", target: "≥ 0.5", pass: (v) => v >= 0.5, digits: 3 },
    { metric: "Peak RSS while draining the backlog", figure: results.drain.peakRssMb, unit: "MB", target: "< 300", pass: (v) => v < 300, digits: 1 },
    { metric: `Peak RSS draining one ${fmtInt(opts.txnRows)}-row transaction`, figure: results.txn.peakRssMb, unit: "MB", target: "< 300", pass: (v) => v < 300, digits: 1 },
    { metric: `Commit-to-file latency p99 at ${fmtInt(opts.latencyRate)} changes/s`, figure: results.latency.p99, unit: "ms", target: "< 1,500", pass: (v) => v < 1500 },
    { metric: "Snapshot ratio vs COPY TO STDOUT", figure: results.snapshot.ratio, unit: "×", target: "≥ 0.25", pass: (v) => v >= 0.25, digits: 3 },
    { metric: `Snapshot of ${fmtInt(opts.snapshot10mRows)} rows, ratio vs COPY TO STDOUT (issue #13)`, figure: phases.has("snapshot10m") ? { value: results.snapshot10m?.ratio, missing: "failed" } : missing("not run"), unit: "×", target: "≥ 0.5", pass: (v) => v >= 0.5, digits: 3 },
  ];
  const verdict = (t: Target) => (t.figure.value === undefined || Number.isNaN(t.figure.value) ? "n/a (missing)" : t.pass(t.figure.value) ? "PASS" : "FAIL");

  const d = results.drain;
  const lines: string[] = [];
  lines.push("# Benchmark results", "");
  lines.push(`Produced by \`npm run bench\` (bench/run.ts) on ${started.toISOString()}${fullSize ? "" : " — SCALED-DOWN run, not the issue's sizes"}.`, "");
  lines.push("## Targets (issue #2)", "", "| metric | measured | target | result |", "| --- | ---: | ---: | --- |");
  for (const t of targets) lines.push(`| ${t.metric} | ${show(t.figure, t.digits)} ${t.figure.value === undefined ? "" : t.unit} | ${t.target} ${t.unit} | ${verdict(t)} |`);
  lines.push("");
  lines.push("## All figures", "", "| measurement | value |", "| --- | --- |");
  const row = (k: string, v: string | undefined) => lines.push(`| ${k} | ${v ?? "missing"} |`);
  row("Drain backlog", `${fmtInt(opts.changes)} committed changes (60% insert, 30% update, 10% delete) in transactions of 10,000; generated in ${d.generateSeconds?.toFixed(1) ?? "?"} s; ${d.walBytes ? mb(d.walBytes) + " MB of WAL" : "?"}`);
  row("pg_recvlogical (pgoutput v1) drain", d.recvSeconds === undefined ? undefined : `${show(d.recvChangesPerS)} changes/s from the mean of ${d.recvRuns.length} runs (${d.recvRuns.map((x) => x.toFixed(2) + " s").join(", ")}; before and after the engine); each decoded ${d.recvCounts}`);
  row("Engine drain", d.engineSeconds === undefined ? d.changesPerS.missing : `${d.engineSeconds.toFixed(2)} s from process start to confirmed_flush_lsn ≥ backlog end → ${show(d.changesPerS)} changes/s; first file after ${d.firstFileSeconds?.toFixed(2) ?? "?"} s${d.streamingSeconds ? `; ${d.streamingSeconds.toFixed(2)} s (${fmtInt(opts.changes / d.streamingSeconds)} changes/s) counted from the moment its slot became active, i.e. without process start-up and source checks` : ""}`);
  if (d.engineCpu && d.recvCpu.length > 0) {
    const us = (sec: number) => ((sec * 1e6) / opts.changes).toFixed(1);
    const mean = (f: (c: ProcessCpu) => number) => d.recvCpu.reduce((a, c) => a + f(c) / d.recvCpu.length, 0);
    const rc = { consumer: mean((c) => c.consumer), walsender: mean((c) => c.walsender), consumerKernel: mean((c) => c.consumerKernel), walsenderKernel: mean((c) => c.walsenderKernel) };
    row(
      "CPU time per change (drain; steadier than rates on a shared machine)",
      `engine ${us(d.engineCpu.consumer)} µs + its walsender ${us(d.engineCpu.walsender)} µs; pg_recvlogical ${us(rc.consumer)} µs + its walsender ${us(rc.walsender)} µs (CPU s: engine ${d.engineCpu.consumer.toFixed(1)}, walsender ${d.engineCpu.walsender.toFixed(1)}; pg_recvlogical ${rc.consumer.toFixed(1)}, walsender ${rc.walsender.toFixed(1)})`,
    );
    row(
      "Of which in the kernel (system time: syscalls, page faults, loopback TCP; it varies far more between machines than user time)",
      `engine ${us(d.engineCpu.consumerKernel)} µs, its walsender ${us(d.engineCpu.walsenderKernel)} µs; pg_recvlogical ${us(rc.consumerKernel)} µs (it writes each message and its newline with write calls of their own), its walsender ${us(rc.walsenderKernel)} µs`,
    );
    const byFormat = formatComparisonRow(opts.changes);
    if (byFormat) lines.push(byFormat);
    const perCore = (sec: number) => fmtInt(opts.changes / sec);
    row(
      "Derived: rate one free core would allow (changes ÷ CPU seconds; not measured)",
      `engine process ≈ ${perCore(d.engineCpu.consumer)} changes/s; its walsender ≈ ${perCore(d.engineCpu.walsender)} changes/s — with a core each, the slower of the two bounds the drain`,
    );
  }
  row("Engine drain landed", d.landed ? `${fmtInt(d.landed.records)} records in ${d.landed.files} files, ${mb(d.landed.bytes)} MB NDJSON` : undefined);
  if (withKafka) {
    const k = results.kafka;
    row(
      "Engine drain into Kafka (--sink kafka)",
      k.seconds === undefined
        ? k.changesPerS.missing
        : `${k.seconds.toFixed(2)} s from process start to confirmed_flush_lsn ≥ backlog end → ${show(k.changesPerS)} changes/s = ${show(k.ratioToFile, 2)} × the file sink in this run; peak RSS ${show(k.peakRssMb, 1)} MB (VmHWM); ${fmtInt(k.messages ?? 0)} records (plus tombstones) in cdc.public.bench_drain (3 partitions, acks=all, idempotent); broker (Apache Kafka, KRaft, one JVM) started in ${k.brokerStartSeconds?.toFixed(1) ?? "?"} s`,
    );
  }
  row("Engine peak RSS (drain)", d.peakRssMb.value === undefined ? d.peakRssMb.missing : `${d.peakRssMb.value} MB (VmHWM)`);
  const x = results.txn;
  row(`Single ${fmtInt(opts.txnRows)}-row transaction`, x.generateSeconds === undefined ? x.peakRssMb.missing : `committed in ${x.generateSeconds.toFixed(1)} s; pg_recvlogical drained it in ${x.recvSeconds?.toFixed(1) ?? "?"} s${x.recvSeconds ? ` (${fmtInt(opts.txnRows / x.recvSeconds)} changes/s)` : ""}; engine drained it in ${x.engineSeconds?.toFixed(1) ?? "?"} s (${show(x.changesPerS)} changes/s), peak RSS ${show(x.peakRssMb, 1)} MB${x.landed ? `; landed ${fmtInt(x.landed.records)} records in ${x.landed.files} files` : ""}`);
  if (x.engineCpu && x.recvCpu) {
    row(
      "CPU seconds (large transaction)",
      `engine ${x.engineCpu.consumer.toFixed(1)} + its walsender ${x.engineCpu.walsender.toFixed(1)}; pg_recvlogical ${x.recvCpu.consumer.toFixed(1)} + its walsender ${x.recvCpu.walsender.toFixed(1)} (pg_recvlogical runs first; the transaction spills to disk on the server for each slot)`,
    );
  }
  const l = results.latency;
  row(
    "Commit→file latency",
    l.p99.value === undefined
      ? l.p99.missing
      : `p50 ${show(l.p50)} ms, p90 ${show(l.p90)} ms, p99 ${show(l.p99)} ms, max ${show(l.max)} ms over ${fmtInt(l.measured ?? 0)} changes (after warm-up) at ${fmtInt(l.achievedRate ?? 0)} changes/s for ${opts.latencySeconds} s, BATCH_MAX_WAIT_MS=1000, ${l.files} files; engine peak RSS ${l.peakRssMb} MB`,
  );
  const s = results.snapshot;
  row("COPY public.bench_snap TO STDOUT (psql → file)", s.copySeconds === undefined ? undefined : `${s.copySeconds.toFixed(2)} s → ${show(s.copyRowsPerS)} rows/s (${mb(s.copyBytes ?? 0)} MB)`);
  row("Engine SNAPSHOT_MODE=initial_only", s.engineSeconds === undefined ? s.engineRowsPerS.missing : `${s.engineSeconds.toFixed(2)} s from process start to exit → ${show(s.engineRowsPerS)} rows/s${s.startupSeconds !== undefined ? ` (of which ${s.startupSeconds.toFixed(2)} s before its first database connection: process start-up)` : ""}; peak RSS ${s.peakRssMb} MB${s.landed ? `; landed ${fmtInt(s.landed.records)} records in ${s.landed.files} files` : ""}`);
  for (const w of s.byWorkers) {
    row(`Engine initial_only, SNAPSHOT_PARALLELISM=${w.workers}`, w.seconds === undefined ? w.missing : `${w.seconds.toFixed(2)} s → ${fmtInt(w.rowsPerS!)} rows/s, ratio ${w.ratio!.toFixed(2)} vs COPY`);
  }
  if (s.copyCpu && s.engineCpu) {
    const us = (sec: number) => ((sec * 1e6) / opts.snapshotRows).toFixed(2);
    row(
      "CPU time per row (snapshot)",
      `engine ${us(s.engineCpu.consumer)} µs + its PostgreSQL backends ${us(s.engineCpu.walsender)} µs; psql ${us(s.copyCpu.consumer)} µs + its backend ${us(s.copyCpu.walsender)} µs (CPU s: engine ${s.engineCpu.consumer.toFixed(1)}, backends ${s.engineCpu.walsender.toFixed(1)}; psql ${s.copyCpu.consumer.toFixed(1)}, backend ${s.copyCpu.walsender.toFixed(1)})`,
    );
  }
  const inc = results.incremental.figures;
  row(
    `Incremental snapshot of a ${fmtInt(opts.snapshotRows)}-row table while streaming ${fmtInt(opts.latencyRate)} changes/s (BATCH_MAX_WAIT_MS=1000)`,
    inc ? `${fmtInt(inc.rowsPerS)} rows/s (${inc.seconds.toFixed(1)} s, chunks of ${fmtInt(inc.chunkSize)}); streamed changes meanwhile (${fmtInt(inc.achievedRate)}/s): commit→file p50 ${fmtInt(inc.p50Ms)} ms, p99 ${fmtInt(inc.p99Ms)} ms, max ${fmtInt(inc.maxMs)} ms over ${fmtInt(inc.samples)} changes; peak RSS ${inc.peakRssMb} MB` : results.incremental.missing,
  );
  for (const [k, v] of bigSnapshotRows(results.snapshot10m)) row(k, v);
  const sb = results.silver.backlog;
  row(
    `Silver merge of a ${fmtInt(opts.changes)}-change backlog (local Spark 3.5 + Delta 3.3, the real notebooks)`,
    sb ? `bronze ingested it in ${sb.bronzeSeconds.toFixed(1)} s; silver merged it in ${sb.silverSeconds.toFixed(1)} s → ${fmtInt(sb.silverChangesPerS)} changes/s (${fmtInt(sb.keys)} keys, ${fmtInt(sb.silverRows)} rows left)` : results.silver.missing,
  );
  const sl = results.silver.latency;
  row(
    "Commit→silver latency (bronze and silver streaming continuously, 1 s trigger)",
    sl ? `p50 ${fmtInt(sl.p50Ms)} ms, p99 ${fmtInt(sl.p99Ms)} ms, max ${fmtInt(sl.maxMs)} ms over ${fmtInt(sl.samples)} changes at ${fmtInt(FULL.silverRate)} changes/s for ${opts.silverSeconds} s (engine BATCH_MAX_WAIT_MS=1000)` : undefined,
  );
  lines.push("");
  lines.push("## Method", "");
  lines.push(
    "- One PostgreSQL server for everything; the engine runs as `node container/bin/cdc-engine.js run` (the `cdc-engine run` CLI) in a child process configured only by environment variables; its memory is the kernel's high-water mark `VmHWM` from `/proc/<pid>/status`, sampled every 50 ms.",
    "- Drain: the publication and four `pgoutput` slots are created first, then the backlog is generated server-side by one `DO` block committing every 10,000 changes. `pg_recvlogical --start --no-loop -o proto_version=1 -o publication_names=… --endpos=<backlog end> -f <file>` drains one slot before and another after the engine's run (each timed from spawn to exit, the baseline rate is from the mean time; its output is parsed to check it decoded every change and to find the last commit's end LSN). The engine (SNAPSHOT_MODE=never, batch settings at their defaults) drains two slots in between, first one with PG_BINARY=off (the format comparison), then one with PG_BINARY=on, what its default auto chooses here (the drain figures), each timed from process spawn until the slot's `confirmed_flush_lsn` reaches that end LSN.",
    "- Large transaction: one `INSERT … SELECT generate_series(1, N)` committed as a single transaction, then drained by pg_recvlogical (for reference: PostgreSQL's own decode-and-send time, the transaction spills to disk on the server) and by the engine, each from a slot created before it; peak RSS is the process's VmHWM.",
    "- Latency: a paced writer commits `rate/50` rows every 20 ms; each landing object is detected by polling the table folder every 10 ms; a change's latency is (time its object was first seen − its `__ts_ms` commit time); the first seconds are excluded as warm-up.",
    "- Snapshot: a table of N rows (vacuumed and frozen; one untimed COPY first warms the caches), `psql -c 'COPY … TO STDOUT'` into a file vs the engine with SNAPSHOT_MODE=initial_only, timed from process spawn to its exit. snapshot10m also runs the engine once untimed first, writes everything out (CHECKPOINT, sync) before each timed run, and times COPY both right before and right after the engine's run with its defaults: its ratios are against the mean of the two, so that the machine's drift during the phase does not land on one side only.",
    "- CPU time: user + system time of each process (all its threads) from `/proc/<pid>/stat`, sampled every 50 ms while it runs; a consumer's walsender is its slot's `active_pid`, snapshot/COPY backends are found by `application_name`.",
    "- Durability differs in the engine's disfavour: the engine fsyncs every landing object and its directory before confirming; pg_recvlogical fsyncs its output file at its default `--fsync-interval` (10 s) and at exit.",
    "- Silver: the three Databricks notebooks run on local Spark (local[2], PySpark 3.5.3, Delta 3.3.2) through the stand-in harness (Auto Loader → Spark's file source). Backlog: the changes are written directly in the landing format (10,000 per object, the drain's mix), bronze runs once, then silver once (availableNow), each timed. Latency: the engine lands a paced insert workload; bronze and silver run as always-on streams with a 1 s trigger; a sample is silver's `__merged_at` minus the change's `__ts_ms` for each row (first 10 s excluded).",
    "- Table shape (all phases but latency): `id bigint primary key, account integer, amount numeric(12,2), status text, note text (32-char md5), updated_at timestamptz`.",
  );
  if (Object.keys(extraEngineEnv).length > 0) lines.push(`- Extra engine environment for this run: ${Object.entries(extraEngineEnv).map(([k, v]) => `${k}=${v}`).join(", ")}.`);
  lines.push("");
  lines.push("## Machine", "");
  const cpu = cpus();
  lines.push(`- CPU: ${cpu.length} × ${cpu[0]?.model ?? "?"}`);
  lines.push(`- Memory: ${(totalmem() / 1024 ** 3).toFixed(1)} GiB`);
  lines.push(`- Load average (1, 5, 15 min) at start: ${load.map((v) => v.toFixed(2)).join(", ")}; at the end: ${loadavg().map((v) => v.toFixed(2)).join(", ")} (the machine is shared with other engineers' builds and tests; wall-clock figures vary with their load, CPU-per-change figures much less)`);
  lines.push(`- Node ${process.version}; PostgreSQL: ${pg?.version ?? "did not start"}`);
  lines.push(`- PostgreSQL settings: ${Object.entries(pg?.settings ?? {}).map(([k, v]) => `${k}=${v}`).join(", ")}`);
  const head = engineCommit;
  const dirty = engineSourcesDirty;
  lines.push(`- Code: ${head}${dirty ? ` (the engine was built from the working tree, which had uncommitted changes in ${dirty.split("\n").length} container/src file(s))` : ""}`);
  lines.push(`- Date: ${started.toISOString()}`);
  if (engineWarning) lines.push(`- Engine build: ${engineWarning}`);
  if (results.notes.length > 0 || engineProblem) {
    lines.push("", "## Notes and missing figures", "");
    if (engineProblem) lines.push(`- The engine figures are MISSING: ${engineProblem}. Only the baselines were measured.`);
    for (const n of results.notes) lines.push(`- ${n.split("\n")[0]}`);
  }
  for (const [phase, summary] of Object.entries(results.profiles)) lines.push("", `## Engine CPU profile (${phase})`, "", summary);
  for (const [what, summary] of results.snapshot10m?.profiles ?? []) lines.push("", `## Engine CPU profile (snapshot10m: ${what})`, "", summary);
  const benchLine =
    `BENCH drain_changes_per_s=${bareNumber(results.drain.changesPerS)} ratio_vs_pg_recvlogical=${bareNumber(results.drain.ratio, 2)} ` +
    `peak_rss_mb=${bareNumber(results.drain.peakRssMb)} txn5m_peak_rss_mb=${bareNumber(results.txn.peakRssMb)} ` +
    `latency_p99_ms=${bareNumber(results.latency.p99)} snapshot_ratio_vs_copy=${bareNumber(results.snapshot.ratio, 2)} ` +
    `snapshot10m_ratio_vs_copy=${bareNumber({ value: results.snapshot10m?.ratio }, 2)} ` +
    `silver_latency_p50_ms=${bareNumber({ value: results.silver.latency?.p50Ms })} silver_latency_p99_ms=${bareNumber({ value: results.silver.latency?.p99Ms })} ` +
    `silver_backlog_changes_per_s=${bareNumber({ value: results.silver.backlog?.silverChangesPerS })} ` +
    `incremental_rows_per_s=${bareNumber({ value: results.incremental.figures?.rowsPerS })} incremental_latency_p99_ms=${bareNumber({ value: results.incremental.figures?.p99Ms })}` +
    ` drain_cpu_us_per_change=${bareNumber({ value: results.drain.engineCpu ? usPerChange(results.drain.engineCpu.consumer, opts.changes) : undefined }, 2)}` +
    (withKafka ? ` kafka_changes_per_s=${bareNumber(results.kafka.changesPerS)} kafka_ratio_vs_file=${bareNumber(results.kafka.ratioToFile, 2)} kafka_peak_rss_mb=${bareNumber(results.kafka.peakRssMb)}` : "");
  lines.push("", "```", benchLine, "```", "");
  return { markdown: lines.join("\n"), benchLine };
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  installSignalHandlers();
  const started = new Date();
  const load = loadavg();
  const work = await mkdtemp(join(tmpdir(), "cdc-bench-"));
  if (flags.keep) log(`keeping ${work}`);
  else onCleanup("temp directory", () => rm(work, { recursive: true, force: true }));
  log(`sizes: changes=${opts.changes} txn-rows=${opts.txnRows} latency=${opts.latencyRate}/s×${opts.latencySeconds}s snapshot-rows=${opts.snapshotRows}; phases ${[...phases].join(",")}; work dir ${work}`);

  try {
    engineCommit = execFileSync("git", ["-C", REPO, "log", "-1", "--format=%h %cI %s"], { encoding: "utf8" }).trim();
    engineSourcesDirty = execFileSync("git", ["-C", REPO, "status", "--porcelain", "--", "container/src"], { encoding: "utf8" }).trim();
  } catch {
    /* not a checkout */
  }
  const built = await ensureEngineBuilt();
  if (!built.ok) {
    engineProblem = `the engine could not be run: ${built.reason}`;
    log(`engine: ${engineProblem} — measuring the baselines only`);
  } else if (built.warning) log(`engine: ${built.warning}`);

  let pg: BenchPostgres | undefined;
  let failed = false;
  try {
    pg = await startBenchPostgres(work, await freePort());
    log(`PostgreSQL up on port ${pg.port}: ${pg.version.split(",")[0]}`);
    const runPhase = async (name: Phase, fn: (pg: BenchPostgres, work: string) => Promise<void>) => {
      if (!phases.has(name)) return;
      try {
        await fn(pg!, work);
      } catch (err) {
        failed = true;
        results.notes.push(`${name}: phase failed: ${(err as Error).message}`);
        log(`${name}: phase FAILED: ${(err as Error).stack ?? String(err)}`);
        if (pg) log(`server log tail:\n${await pg.logTail(15)}`);
      }
    };
    await runPhase("drain", phaseDrain);
    await runPhase("txn", phaseTxn);
    await runPhase("latency", phaseLatency);
    await runPhase("snapshot", phaseSnapshot);
    await runPhase("incremental", async (pg, work) => {
      if (engineProblem) return void (results.incremental.missing = engineProblem);
      results.incremental.figures = await measureIncremental(pg, work, { rows: opts.snapshotRows, rate: opts.latencyRate, engineEnv: (vars) => engineEnv(pg, vars), httpPort: await freePort(), timeoutMs: opts.engineTimeoutMs, log });
      results.incremental.missing = undefined;
    });
    await runPhase("snapshot10m", async (pg, work) => {
      results.snapshot10m = await phaseBigSnapshot(
        { pg, work, log, engineEnv: (vars) => engineEnv(pg, vars), freePort, timeoutMs: opts.engineTimeoutMs, profile: flags.profile === true },
        { rows: opts.snapshot10mRows, wideRows: opts.snapshotWideRows, workers: opts.snapshotWorkers },
      );
    });
    await runPhase("silver", phaseSilver);
  } catch (err) {
    failed = true;
    results.notes.push(`setup failed: ${(err as Error).message}`);
    log(`FAILED: ${(err as Error).stack ?? String(err)}`);
  }
  const { markdown, benchLine } = report(pg, started, load, built.warning);
  await cleanupAll();
  await mkdir(join(resultsFile, ".."), { recursive: true });
  await writeFile(resultsFile, markdown);
  process.stdout.write("\n" + markdown.replace(/\n```\n.*\n```\n$/s, "\n") + `\n(written to ${resultsFile})\n`);
  process.stdout.write(benchLine + "\n");
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  async (err) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    await cleanupAll();
    process.exit(1);
  },
);
