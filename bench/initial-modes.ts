/**
 * The initial load of one table by SNAPSHOT_MODE=initial (exported snapshot, then stream) against
 * SNAPSHOT_MODE=incremental (stream at once, chunks by primary key between watermarks), side by
 * side on one server: rows/s of the copy, seconds until the engine streams, engine CPU per row.
 *
 *   npx tsx bench/initial-modes.ts [--rows 1000000] [--chunk-size 4096] [--port 55499]
 *
 * Same PostgreSQL and settings as `npm run bench` (bench/lib/postgres.ts), the built engine
 * (container/dist). The table is quiet while it is copied, so both land exactly its rows.
 */
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBenchPostgres, type BenchPostgres } from "./lib/postgres";
import { ensureEngineBuilt, spawnEngine } from "./lib/engine";
import { cpuSecondsOf } from "./lib/cpu";
import { cleanupAll, installSignalHandlers } from "./lib/cleanup";
import { countRecords } from "./lib/landing";

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const rows = flag("rows", 1_000_000);
const chunkSize = flag("chunk-size", 4096);
const port = flag("port", 55499);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Figures {
  mode: string;
  copySeconds: number;
  streamingAfterSeconds: number;
  landed: number;
  cpuUsPerRow: number;
}

let runs = 0;

async function measure(pg: BenchPostgres, work: string, mode: "initial" | "incremental"): Promise<Figures> {
  const run = ++runs;
  const landing = join(work, `landing-${run}-${mode}`);
  await mkdir(landing, { recursive: true });
  const logFile = join(work, `engine-${run}-${mode}.log`);
  const slot = `modes_${mode}`;
  const engine = spawnEngine({
    env: {
      ...pg.env,
      LOG_LEVEL: "info",
      HEARTBEAT_INTERVAL_MS: "10000",
      PG_PUBLICATION: "modes_pub",
      PG_SLOT: slot,
      TABLE_INCLUDE: "public.modes",
      SNAPSHOT_MODE: mode,
      SINK_URL: `file://${landing}`,
      INCREMENTAL_CHUNK_SIZE: String(chunkSize),
      HTTP_PORT: "0",
    },
    logFile,
  });
  const started = performance.now();
  let streamingAt: number | undefined;
  let doneAt: number | undefined;
  let cpu = 0;
  try {
    for (;;) {
      if (engine.child.exitCode !== null) throw new Error(`the engine exited (${engine.child.exitCode}):\n${engine.logTail()}`);
      if (performance.now() - started > 900_000) throw new Error("no end within 15 minutes");
      const log = await readFile(logFile, "utf8").catch(() => "");
      streamingAt ??= log.includes('"msg":"streaming changes"') ? performance.now() : undefined;
      if (streamingAt !== undefined) {
        const state = JSON.parse(await readFile(join(landing, "_cdc_state", `${slot}.json`), "utf8").catch(() => "{}")) as { snapshot?: { done?: boolean }; incremental?: { tables: unknown[] } };
        if (state.snapshot?.done && (state.incremental?.tables.length ?? 0) === 0) {
          doneAt = performance.now();
          cpu = cpuSecondsOf(engine.pid) ?? NaN;
          break;
        }
      }
      await sleep(50);
    }
  } finally {
    await engine.stop();
  }
  await pg.query("select pg_drop_replication_slot($1)", [slot]).catch(() => undefined);
  const landed = (await countRecords(join(landing, "cdc.public.modes"))).records;
  await rm(landing, { recursive: true, force: true });
  return { mode, copySeconds: (doneAt! - started) / 1000, streamingAfterSeconds: (streamingAt! - started) / 1000, landed, cpuUsPerRow: (cpu * 1e6) / rows };
}

async function main(): Promise<void> {
  installSignalHandlers();
  const built = await ensureEngineBuilt();
  if (!built.ok) throw new Error(built.reason);
  const work = await mkdtemp(join(tmpdir(), "cdc-initial-modes-"));
  const pg = await startBenchPostgres(work, port);
  try {
    await pg.query("create table public.modes (id bigint primary key, account integer not null, amount numeric(12,2) not null, status text not null, note text, updated_at timestamptz not null default now())");
    await pg.query(`insert into public.modes select g, (g % 1000)::int, ((g % 100000) / 100.0)::numeric(12,2), 'new', md5(g::text), now() from generate_series(1, ${rows}) g`);
    await pg.query("vacuum (freeze, analyze) public.modes");
    await pg.query("create publication modes_pub for table public.modes");
    const load = (await readFile("/proc/loadavg", "utf8")).split(" ").slice(0, 3).join(" ");
    const results: Figures[] = [];
    for (const mode of ["initial", "incremental", "initial", "incremental"] as const) {
      const f = await measure(pg, work, mode);
      results.push(f);
      process.stdout.write(
        `${f.mode.padEnd(11)} ${rows} rows: copy ${f.copySeconds.toFixed(1)} s = ${Math.round(rows / f.copySeconds)} rows/s (engine start to last row durable), streaming after ${f.streamingAfterSeconds.toFixed(1)} s, ` +
          `engine CPU ${f.cpuUsPerRow.toFixed(2)} µs/row, landed ${f.landed} records\n`,
      );
    }
    process.stdout.write(`PostgreSQL ${pg.version}, chunks of ${chunkSize}, load average at start ${load}\n`);
  } finally {
    await pg.stop();
    await cleanupAll();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch(async (err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  await cleanupAll();
  process.exit(1);
});
