/**
 * The large-snapshot phase (issue 13): an initial snapshot of a 10,000,000-row table side by side
 * with `COPY … TO STDOUT` of the same table, with the engine's default settings, with the
 * transcoding threads (SNAPSHOT_TRANSCODE=threads) and SNAPSHOT_PARALLELISM 1, 2 and 4, and with
 * the transcoding in the engine's thread (SNAPSHOT_TRANSCODE=inline), each with its peak RSS and CPU time per row; then a
 * wide-row profile (a 2 KB text stored out of line in TOAST, a jsonb document and a numeric per
 * row) in MB/s as well as rows/s.
 */
import { spawnSync } from "node:child_process";
import { openSync, closeSync, statSync } from "node:fs";
import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Client } from "pg";
import { spawnClient, type BenchPostgres } from "./postgres";
import { spawnEngine } from "./engine";
import { countRecords } from "./landing";
import { CpuSampler } from "./cpu";
import { summarizeThreads } from "./profile";

export interface BigSnapshotContext {
  pg: BenchPostgres;
  work: string;
  log(msg: string): void;
  /** The engine's environment for this server plus `vars` (and the bench's --engine-env). */
  engineEnv(vars: Record<string, string>): Record<string, string>;
  freePort(): Promise<number>;
  timeoutMs: number;
  /** --profile: the engine's run with its defaults is profiled (node --cpu-prof), per thread. */
  profile: boolean;
}

export interface BigSnapshotOptions {
  rows: number;
  wideRows: number;
  /** SNAPSHOT_PARALLELISM values timed besides the default. */
  workers: number[];
}

/** One timed copy of a table: COPY through psql, or one engine configuration. */
export interface SnapshotRun {
  label: string;
  seconds?: number;
  rowsPerS?: number;
  /** COPY text bytes of the table per second (the same numerator for COPY and the engine). */
  mbPerS?: number;
  /** Engine runs: its rate over COPY's. */
  ratio?: number;
  peakRssMb?: number;
  /** CPU of the client process (all threads) and of its PostgreSQL backends, per row. */
  cpuUsPerRow?: number;
  backendUsPerRow?: number;
  /** Engine runs: the NDJSON bytes landed. */
  landedMb?: number;
  missing?: string;
}

export interface TableFigures {
  table: string;
  rows: number;
  copyMb: number;
  /** COPY's rate over the two timings below (its seconds their mean): what every engine run's ratio is taken against. */
  copy: SnapshotRun;
  /** COPY timed right before and right after the engine's run with its defaults: the machine's drift over the phase shows as their spread. */
  copyTimings: SnapshotRun[];
  runs: SnapshotRun[];
}

export interface BigSnapshotFigures {
  big?: TableFigures;
  wide?: TableFigures;
  /** The engine with its defaults on the 10M-row table, over COPY (the BENCH line's snapshot10m_ratio_vs_copy). */
  ratio?: number;
  notes: string[];
  /** --profile: per table, the CPU profile summary of the engine's run with its defaults. */
  profiles: [string, string][];
}

const mb = (bytes: number) => Math.round((bytes / (1024 * 1024)) * 10) / 10;
const fmtInt = (n: number) => Math.round(n).toLocaleString("en-US");

function cpuOf(probe: Client, applicationName: string, pid: number) {
  const seen = new Set<number>();
  const client = new CpuSampler(() => [pid]);
  const backends = new CpuSampler(async () => {
    const { rows } = await probe.query<{ pid: number | null }>("select pid from pg_stat_activity where application_name like $1", [applicationName]);
    for (const r of rows) if (r.pid) seen.add(r.pid);
    return [...seen];
  }, 50);
  return async () => ({ client: await client.stop(), backends: await backends.stop() });
}

/**
 * Untimed, before each timed run: the server's dirty buffers (the load and its VACUUM FREEZE) and
 * the machine's dirty pages (the last run's files) are written out first, so that no run pays for
 * an earlier one's writeback (on ext4 an fsync commits the journal with other files' data).
 */
async function settle(ctx: BigSnapshotContext): Promise<void> {
  await ctx.pg.query("CHECKPOINT");
  spawnSync("sync");
}

async function timeCopy(ctx: BigSnapshotContext, table: string, rows: number, label: string): Promise<{ run: SnapshotRun; bytes: number }> {
  const args = [...ctx.pg.cliArgs, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", `COPY ${table} TO STDOUT`];
  // One untimed pass warms the caches for both contenders.
  const devNull = openSync("/dev/null", "w");
  await spawnClient("psql", args, devNull).done.finally(() => closeSync(devNull));
  await settle(ctx);
  const file = join(ctx.work, `copy-${table}.out`);
  const fd = openSync(file, "w");
  const probe = await ctx.pg.connect();
  const t0 = performance.now();
  let cpu: { client: number; backends: number };
  try {
    const copy = spawnClient("psql", args, fd);
    const stop = cpuOf(probe, "psql", copy.child.pid!);
    try {
      await copy.done;
    } finally {
      cpu = await stop();
    }
  } finally {
    closeSync(fd);
    await probe.end();
  }
  const seconds = (performance.now() - t0) / 1000;
  const bytes = statSync(file).size;
  await rm(file, { force: true });
  const run: SnapshotRun = { label, seconds, rowsPerS: rows / seconds, mbPerS: mb(bytes) / seconds, cpuUsPerRow: (cpu.client * 1e6) / rows, backendUsPerRow: (cpu.backends * 1e6) / rows };
  ctx.log(`snapshot10m: ${table}: COPY TO STDOUT (${label}) ${seconds.toFixed(2)} s → ${fmtInt(rows / seconds)} rows/s, ${(mb(bytes) / seconds).toFixed(1)} MB/s`);
  return { run, bytes };
}

/** The engine with SNAPSHOT_MODE=initial_only over `table`, timed from process start to its exit. */
async function timeEngine(ctx: BigSnapshotContext, table: string, publication: string, rows: number, copyBytes: number, label: string, vars: Record<string, string>, profiles?: [string, string][]): Promise<SnapshotRun> {
  const tag = label.replace(/[^a-z0-9]+/gi, "_").toLowerCase();
  const landing = join(ctx.work, `landing-${tag}`);
  await mkdir(landing, { recursive: true });
  const profileDir = profiles ? join(ctx.work, `cpuprof-${table}-${tag}`) : undefined;
  if (profileDir) await mkdir(profileDir, { recursive: true });
  const slot = `bench_big_${tag}`.slice(0, 60);
  await settle(ctx);
  const engine = spawnEngine({
    env: ctx.engineEnv({ PG_PUBLICATION: publication, PG_SLOT: slot, TABLE_INCLUDE: table, SNAPSHOT_MODE: "initial_only", SINK_URL: `file://${landing}`, HTTP_PORT: String(await ctx.freePort()), ...vars }),
    logFile: join(ctx.work, `engine-${tag}.log`),
    cpuProfDir: profileDir,
  });
  const probe = await ctx.pg.connect();
  const stop = cpuOf(probe, "cdc-engine%", engine.pid);
  try {
    const exit = await Promise.race([engine.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), ctx.timeoutMs))]);
    const cpu = await stop();
    if (!exit) throw new Error(`did not finish within ${ctx.timeoutMs / 1000} s`);
    if (exit.code !== 0) throw new Error(`the engine exited with ${exit.code ?? exit.signal}; log tail: ${engine.logTail()}`);
    const seconds = (exit.at - engine.startedAt) / 1000;
    const landed = await countRecords(join(landing, `cdc.${table}`));
    // The rows and the table's re-snapshot barrier.
    if (landed.records !== rows + 1) throw new Error(`landed ${landed.records} records, expected ${rows + 1}`);
    const run: SnapshotRun = {
      label,
      seconds,
      rowsPerS: rows / seconds,
      mbPerS: mb(copyBytes) / seconds,
      peakRssMb: mb(engine.memory().peakRss),
      cpuUsPerRow: (cpu.client * 1e6) / rows,
      backendUsPerRow: (cpu.backends * 1e6) / rows,
      landedMb: mb(landed.bytes),
    };
    if (profileDir && profiles) {
      const summary = await summarizeThreads(profileDir, await readdir(profileDir));
      profiles.push([`${table}, ${label}`, summary]);
      ctx.log(`snapshot10m: ${table}: ${label}: CPU profile:\n${summary}`);
    }
    ctx.log(
      `snapshot10m: ${table}: ${label}: ${seconds.toFixed(2)} s → ${fmtInt(run.rowsPerS!)} rows/s, ${run.mbPerS!.toFixed(1)} MB/s; ` +
        `peak RSS ${run.peakRssMb} MB; CPU ${run.cpuUsPerRow!.toFixed(2)} µs/row (+ backends ${run.backendUsPerRow!.toFixed(2)})`,
    );
    return run;
  } catch (err) {
    await stop().catch(() => undefined);
    const why = (err as Error).message.split("\n")[0];
    ctx.log(`snapshot10m: ${table}: ${label} FAILED: ${why}`);
    return { label, missing: why };
  } finally {
    await probe.end();
    await engine.stop(3000);
    await rm(landing, { recursive: true, force: true });
    await ctx.pg.query("select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1", [slot]).catch(() => undefined);
  }
}

async function measureTable(ctx: BigSnapshotContext, table: string, publication: string, rows: number, workers: number[], profiles: [string, string][]): Promise<TableFigures> {
  const before = await timeCopy(ctx, table, rows, "before the engine");
  const bytes = before.bytes;
  const runs: SnapshotRun[] = [];
  // One untimed engine run first, as COPY gets one: whichever engine run came first after the load
  // measured ~10 % slower (~2 s more CPU per 10M rows, the same configuration run again did not),
  // though CHECKPOINT and sync had written everything out; not traced further.
  await timeEngine(ctx, table, publication, rows, bytes, "warm-up (untimed)", {});
  runs.push(await timeEngine(ctx, table, publication, rows, bytes, "engine defaults", {}, ctx.profile ? profiles : undefined));
  // COPY again right after the run the BENCH line reports: on this shared machine COPY's own time
  // drifted 4.5 → 8 s within an hour, so one timing before the engine biased the ratio by as much.
  const after = await timeCopy(ctx, table, rows, "after the engine");
  // The transcoding threads, whatever the machine's cores (auto leaves them out on 2 cores or fewer).
  for (const w of workers) runs.push(await timeEngine(ctx, table, publication, rows, bytes, `SNAPSHOT_TRANSCODE=threads, SNAPSHOT_PARALLELISM=${w}`, { SNAPSHOT_TRANSCODE: "threads", SNAPSHOT_PARALLELISM: String(w) }));
  runs.push(await timeEngine(ctx, table, publication, rows, bytes, "SNAPSHOT_TRANSCODE=inline", { SNAPSHOT_TRANSCODE: "inline" }));
  const seconds = (before.run.seconds! + after.run.seconds!) / 2;
  const copy: SnapshotRun = {
    label: "COPY TO STDOUT (psql → file), mean of both timings",
    seconds,
    rowsPerS: rows / seconds,
    mbPerS: mb(bytes) / seconds,
    cpuUsPerRow: (before.run.cpuUsPerRow! + after.run.cpuUsPerRow!) / 2,
    backendUsPerRow: (before.run.backendUsPerRow! + after.run.backendUsPerRow!) / 2,
  };
  for (const r of runs) {
    if (r.seconds === undefined) continue;
    r.ratio = seconds / r.seconds;
    ctx.log(`snapshot10m: ${table}: ${r.label}: ratio ${r.ratio.toFixed(2)} vs COPY (${seconds.toFixed(2)} s, the mean of ${before.run.seconds!.toFixed(2)} and ${after.run.seconds!.toFixed(2)} s)`);
  }
  return { table, rows, copyMb: mb(bytes), copy, copyTimings: [before.run, after.run], runs };
}

export async function phaseBigSnapshot(ctx: BigSnapshotContext, options: BigSnapshotOptions): Promise<BigSnapshotFigures> {
  const figures: BigSnapshotFigures = { notes: [], profiles: [] };
  const { pg, log } = ctx;
  try {
    log(`snapshot10m: loading a ${fmtInt(options.rows)}-row table`);
    await pg.query(`create table public.bench_snap10m (id bigint primary key, account integer not null, amount numeric(12,2) not null,
      status text not null, note text, updated_at timestamptz not null default now())`);
    await pg.query(`insert into public.bench_snap10m select g, (g % 1000)::int, ((g % 100000) / 100.0)::numeric(12,2), 'new', md5(g::text), now() from generate_series(1, ${options.rows}) g`);
    await pg.query("vacuum (freeze, analyze) public.bench_snap10m");
    await pg.query("create publication bench_snap10m_pub for table public.bench_snap10m");
    figures.big = await measureTable(ctx, "public.bench_snap10m", "bench_snap10m_pub", options.rows, options.workers, figures.profiles);
    figures.ratio = figures.big.runs[0].ratio;
  } catch (err) {
    figures.notes.push(`snapshot10m: ${(err as Error).message}`);
    log(`snapshot10m: FAILED: ${(err as Error).message}`);
  } finally {
    await pg.query("drop publication if exists bench_snap10m_pub").catch(() => undefined);
    await pg.query("drop table if exists public.bench_snap10m").catch(() => undefined);
  }
  try {
    log(`snapshot10m: loading a ${fmtInt(options.wideRows)}-row wide table (2 KB TOASTed text, jsonb, numeric)`);
    // EXTERNAL: the text is stored out of line in TOAST, uncompressed (as a 2 KB text of real data would mostly be).
    await pg.query(`create table public.bench_snap_wide (id bigint primary key, body text not null, doc jsonb not null, amount numeric(20,4) not null);
      alter table public.bench_snap_wide alter column body set storage external`);
    await pg.query(`insert into public.bench_snap_wide select g, repeat(md5(g::text), 64),
        jsonb_build_object('id', g, 'name', md5(g::text), 'tags', jsonb_build_array('a', 'b', g % 10), 'nested', jsonb_build_object('x', g * 1.5, 'ok', g % 2 = 0, 'note', 'line "one"')),
        (g * 1.2345)::numeric(20,4)
      from generate_series(1, ${options.wideRows}) g`);
    await pg.query("vacuum (freeze, analyze) public.bench_snap_wide");
    await pg.query("create publication bench_snap_wide_pub for table public.bench_snap_wide");
    figures.wide = await measureTable(ctx, "public.bench_snap_wide", "bench_snap_wide_pub", options.wideRows, options.workers, figures.profiles);
  } catch (err) {
    figures.notes.push(`snapshot10m (wide rows): ${(err as Error).message}`);
    log(`snapshot10m: wide rows FAILED: ${(err as Error).message}`);
  } finally {
    await pg.query("drop publication if exists bench_snap_wide_pub").catch(() => undefined);
    await pg.query("drop table if exists public.bench_snap_wide").catch(() => undefined);
  }
  return figures;
}

/** The phase's rows of the results table ("All figures"). */
export function bigSnapshotRows(figures: BigSnapshotFigures | undefined): [string, string][] {
  if (!figures) return [];
  const out: [string, string][] = [];
  for (const t of [figures.big, figures.wide]) {
    if (!t) continue;
    const c = t.copy;
    const timings = t.copyTimings.map((r) => `${r.label} ${r.seconds!.toFixed(2)} s`).join(", ");
    out.push([`${t.table} (${fmtInt(t.rows)} rows, ${t.copyMb} MB as COPY text): COPY TO STDOUT`, `${c.seconds!.toFixed(2)} s (mean of ${timings}) → ${fmtInt(c.rowsPerS!)} rows/s, ${c.mbPerS!.toFixed(1)} MB/s; CPU psql ${c.cpuUsPerRow!.toFixed(2)} µs/row + backend ${c.backendUsPerRow!.toFixed(2)} µs/row`]);
    for (const r of t.runs) {
      out.push([
        `${t.table}: engine initial_only, ${r.label}`,
        r.missing ??
          `${r.seconds!.toFixed(2)} s from process start to exit → ${fmtInt(r.rowsPerS!)} rows/s, ${r.mbPerS!.toFixed(1)} MB/s of COPY text (${r.landedMb} MB NDJSON landed), ratio ${r.ratio!.toFixed(2)} vs COPY; peak RSS ${r.peakRssMb} MB; CPU engine ${r.cpuUsPerRow!.toFixed(2)} µs/row + backends ${r.backendUsPerRow!.toFixed(2)} µs/row`,
      ]);
    }
  }
  for (const n of figures.notes) out.push(["snapshot10m note", n]);
  return out;
}
