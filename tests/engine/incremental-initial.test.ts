/**
 * SNAPSHOT_MODE=incremental: when the engine creates its slot it streams at once and copies the
 * captured tables with a primary key in watermarked chunks, resumable chunk by chunk; a table
 * without one is copied from the slot's exported snapshot before streaming starts. Under a
 * concurrent insert/update/delete workload, across kill -9 in the middle of the chunks and a slot
 * lost and re-created, every table rebuilt by (__lsn, __seq) must equal the source, and a restart
 * must resume from the durable chunks, never from zero.
 */
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { engineEnv, landingDir, spawnEngine, waitFor, type ChildEngine } from "./fixtures/harness";
import { readRecords, rebuildTable } from "./fixtures/landing";
import { assertLandingMatchesSource, createWorkloadTables, runWorkload, waitForCatchUp, WORKLOAD_TABLES } from "./fixtures/workload";
import { incrementalModeCheck } from "../../container/src/source/setup";

interface StoredState {
  snapshot: { done: boolean; consistentPoint: string } | null;
  incremental?: { tables: { table: string; chunks: number; rows: number; barrier: boolean; reason: string }[] };
}

async function storedState(dir: string, slot: string): Promise<StoredState | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, "_cdc_state", `${slot}.json`), "utf8")) as StoredState;
  } catch {
    return undefined;
  }
}

/** The engine's JSON log lines with message `msg`. */
function logLines(engine: ChildEngine | string[], msg: string): Record<string, unknown>[] {
  const text = (Array.isArray(engine) ? engine : engine.logs).join("");
  return text
    .split("\n")
    .filter((l) => l.includes(msg))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === msg);
}

const OTHER_TABLES = ["public.w_nokey", "public.w_parted"];

/** Changes of the keyless and the partitioned table (cross-partition moves included) until stopped. */
async function sideWorkload(pg: TestPostgres, stop: () => boolean): Promise<number> {
  const db = await pg.connect();
  let n = 0;
  try {
    for (; !stop(); n++) {
      const id = 1 + ((n * 53) % 1400);
      const step = n % 6;
      if (step === 0) await db.query("UPDATE public.w_nokey SET b = b || '+' WHERE a = $1", [id % 400]);
      else if (step === 1) await db.query("INSERT INTO public.w_nokey VALUES ($1::int, 'streamed ' || $2)", [100_000 + n, String(100_000 + n)]);
      else if (step === 2) await db.query("DELETE FROM public.w_nokey WHERE a = $1", [(id * 7) % 400]);
      else if (step === 3) await db.query("INSERT INTO public.w_parted VALUES ('eu', $1, 'new') ON CONFLICT (region, id) DO UPDATE SET v = public.w_parted.v || '!'", [id]);
      else if (step === 4) await db.query("UPDATE public.w_parted SET region = 'us' WHERE region = 'eu' AND id = $1 AND NOT EXISTS (SELECT 1 FROM public.w_parted WHERE region = 'us' AND id = $1)", [id]);
      else await db.query("DELETE FROM public.w_parted WHERE region = 'us' AND id = $1", [(id * 3) % 1400]);
    }
  } finally {
    await db.end();
  }
  return n;
}

async function assertOthersMatchSource(pg: TestPostgres, dir: string): Promise<void> {
  const nokey = (await pg.query<{ a: number; b: string }>("SELECT a, b FROM public.w_nokey")).map((r) => JSON.stringify([r.a, r.b])).sort();
  const nokeyRebuilt = [...(await rebuildTable(dir, "public.w_nokey", ["a", "b"])).values()].map((r) => JSON.stringify([r.a, r.b])).sort();
  assert.deepEqual(nokeyRebuilt, nokey, "w_nokey rebuilt from the landing zone equals the source");
  const parted = (await pg.query<{ region: string; id: number; v: string }>("SELECT region, id, v FROM public.w_parted")).map((r) => JSON.stringify([r.region, r.id, r.v])).sort();
  const partedRebuilt = [...(await rebuildTable(dir, "public.w_parted", ["region", "id"])).values()].map((r) => JSON.stringify([r.region, r.id, r.v])).sort();
  assert.deepEqual(partedRebuilt, parted, "w_parted rebuilt from the landing zone equals the source");
}

describe("engine: SNAPSHOT_MODE=incremental (the initial snapshot in chunks while streaming)", function () {
  this.timeout(240_000);
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.stop();
  });

  it("refuses a server before PostgreSQL 14 with one message naming the version and SNAPSHOT_MODE=initial; names tables without a primary key", () => {
    const old = incrementalModeCheck({ versionNum: 130015, version: "13.15" }, []);
    assert.equal(old.ok, false);
    assert.match(old.detail, /SNAPSHOT_MODE=incremental needs PostgreSQL 14 or later .*this server is PostgreSQL 13\.15/);
    assert.match(old.fix!, /set SNAPSHOT_MODE=initial/);
    const keyless = incrementalModeCheck({ versionNum: 160004, version: "16.4" }, ["public.audit", "public.log"]);
    assert.equal(keyless.ok, true);
    assert.equal(keyless.warning, true);
    assert.match(keyless.detail, /public\.audit, public\.log have no primary key.*copied from the slot's exported snapshot before streaming starts/);
    assert.match(keyless.fix!, /ALTER TABLE public\.audit ADD PRIMARY KEY/);
    assert.deepEqual(incrementalModeCheck({ versionNum: 140000, version: "14.0" }, []).ok, true);
  });

  it("streams at once, resumes after kill -9 from the last durable chunk, and rebuilds every table equal to the source; a lost slot is snapshotted again behind barriers", async function () {
    // Chunks need pgoutput's logical messages (14+); before that the mode is refused, as tested above.
    if (pg.versionNum < 140000) this.skip();
    await createWorkloadTables(pg, 6_000);
    await pg.query(`
      CREATE TABLE public.w_nokey (a int, b text);
      ALTER TABLE public.w_nokey REPLICA IDENTITY FULL;
      INSERT INTO public.w_nokey SELECT g, 'seed ' || g FROM generate_series(1, 400) g;
      CREATE TABLE public.w_parted (region text, id int, v text, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
      CREATE TABLE public.w_parted_eu PARTITION OF public.w_parted FOR VALUES IN ('eu');
      CREATE TABLE public.w_parted_us PARTITION OF public.w_parted FOR VALUES IN ('us');
      INSERT INTO public.w_parted SELECT CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g, 'seed' FROM generate_series(1, 1200) g;
    `);
    const dir = await landingDir();
    const slot = "incr_initial_slot";
    const tables = [...WORKLOAD_TABLES.map((t) => t.name), ...OTHER_TABLES];
    const env = engineEnv(pg, dir, { TABLE_INCLUDE: tables.join(","), PG_SLOT: slot, PG_PUBLICATION: "incr_initial_pub", SNAPSHOT_MODE: "incremental", INCREMENTAL_CHUNK_SIZE: "200", BATCH_MAX_WAIT_MS: "100", LOG_LEVEL: "info" });
    let stop = false;
    const logs: string[] = [];
    let workload: Promise<{ committed: number }> | undefined;
    let side: Promise<number> | undefined;
    let engine = spawnEngine(env);
    try {
      await waitFor("streaming", async () => engine.logs.join("").includes("streaming changes"), 60_000, 20);
      // Streaming began with the chunked tables still queued: nothing of them was copied before.
      const atStart = await storedState(dir, slot);
      assert.equal(atStart?.snapshot?.done, true);
      assert.deepEqual(atStart?.incremental?.tables.map((t) => [t.table, t.barrier, t.reason]), [...WORKLOAD_TABLES.map((t) => t.name), "public.w_parted"].map((t) => [t, true, "initial"]));
      const created = logLines(engine, "created the replication slot; copying the tables without a primary key from its exported snapshot, then streaming while the others are copied in chunks (SNAPSHOT_MODE=incremental)");
      assert.deepEqual(created[0]?.copied, ["public.w_nokey"]);
      assert.match(engine.logs.join(""), /snapshot mode: incremental: "?public"?\."?w_nokey"? has no primary key/, "run names the table without a primary key");
      workload = runWorkload(pg, { clients: 2, transactionsPerClient: 100_000, seed: 23, keySpace: 7_000, stop: () => stop });
      side = sideWorkload(pg, () => stop);
      const resumedFrom: { table: string; chunks: number }[] = [];
      for (let kill = 0; kill < 2; kill++) {
        // Killed once some chunks of a table are durable (the first time deep in w_orders' 30 chunks).
        const before = (await storedState(dir, slot))?.incremental?.tables[0];
        const durable = await waitFor("durable chunks", async () => {
          const first = (await storedState(dir, slot))?.incremental?.tables[0];
          return first !== undefined && first.chunks >= (first.table === before?.table ? before.chunks : 0) + 4 && first;
        }, 90_000, 20);
        engine.child.kill("SIGKILL");
        await engine.exited;
        logs.push(...engine.logs);
        resumedFrom.push({ table: durable.table, chunks: durable.chunks });
        engine = spawnEngine(env);
      }
      await waitFor("the chunked snapshots to finish", async () => (await storedState(dir, slot))?.incremental?.tables.length === 0, 120_000, 100);
      stop = true;
      await workload;
      await side;
      await waitForCatchUp(pg, dir, slot);
      engine.child.kill("SIGTERM");
      assert.equal(await engine.exited, 0);
      logs.push(...engine.logs);

      // Each restart resumed its table from at least the chunks that were durable at the kill.
      const resumed = logLines(logs, "resuming the incremental snapshot of table");
      for (const at of resumedFrom) {
        assert.ok(resumed.some((l) => l.table === at.table && (l.chunks as number) >= at.chunks), `a restart resumed ${at.table} from chunk ${at.chunks} or later, not from zero: ${JSON.stringify(resumed)}`);
      }
      assert.equal(logLines(logs, "starting the incremental snapshot of table").filter((l) => resumedFrom.some((r) => r.table === l.table)).length, resumedFrom.filter((r, i) => resumedFrom.findIndex((x) => x.table === r.table) === i).length, "each killed table was started once, then only resumed");
      assert.ok(!logs.join("").includes('"level":50'), "no error was logged:\n" + logs.filter((l) => l.includes('"level":50')).join("\n"));
      assert.equal(logLines(logs, "initial snapshot in chunks done (SNAPSHOT_MODE=incremental): every captured table with a primary key is copied").length, 1);
      // No table was copied in one exported-snapshot pass but w_nokey.
      assert.equal(logLines(logs, "snapshot of table copied").map((l) => l.table).join(","), "public.w_nokey");
    } finally {
      stop = true;
      await workload?.catch(() => undefined);
      await side?.catch(() => undefined);
      engine.child.kill("SIGKILL");
    }
    await assertLandingMatchesSource(pg, dir);
    await assertOthersMatchSource(pg, dir);
    // One barrier per chunked table, at its first chunk's low watermark, before every chunk row.
    for (const table of [...WORKLOAD_TABLES.map((t) => t.name), "public.w_parted"]) {
      const records = await readRecords(dir, table, { barriers: true });
      const barriers = records.filter((r) => r.__op === "b");
      assert.equal(barriers.length, 1, `${table} has one barrier`);
      assert.ok(records.filter((r) => r.__op === "r").every((r) => r.__lsn > barriers[0].__lsn), `${table}: every chunk row follows the barrier`);
    }

    // The slot is lost (dropped while the engine is down), and rows are deleted meanwhile: the new
    // slot's snapshot lands its barriers before its new rows, so readers forget the deleted rows.
    await pg.query("SELECT pg_drop_replication_slot($1)", [slot]);
    await pg.query("DELETE FROM public.w_orders WHERE id % 3 = 0; DELETE FROM public.w_pairs WHERE a % 4 = 0; DELETE FROM public.w_nokey WHERE a % 5 = 0; DELETE FROM public.w_parted WHERE id % 6 = 0");
    const barriersBefore = new Map<string, number>();
    for (const table of tables) barriersBefore.set(table, (await readRecords(dir, table, { barriers: true })).filter((r) => r.__op === "b").length);
    engine = spawnEngine(env);
    try {
      await waitFor("streaming", async () => engine.logs.join("").includes("streaming changes"), 60_000, 20);
      await waitFor("the chunked snapshots to finish", async () => (await storedState(dir, slot))?.incremental?.tables.length === 0, 120_000, 100);
      await waitForCatchUp(pg, dir, slot);
      engine.child.kill("SIGTERM");
      assert.equal(await engine.exited, 0);
    } finally {
      engine.child.kill("SIGKILL");
    }
    for (const table of tables) {
      const barriers = (await readRecords(dir, table, { barriers: true })).filter((r) => r.__op === "b");
      assert.equal(barriers.length, barriersBefore.get(table)! + 1, `${table} got a new barrier for the new slot`);
    }
    await assertLandingMatchesSource(pg, dir);
    await assertOthersMatchSource(pg, dir);

    // A table newly in TABLE_INCLUDE at a later start is chunked too, behind its barrier, while streaming.
    await pg.query("CREATE TABLE public.w_late (id int PRIMARY KEY, v text); INSERT INTO public.w_late SELECT g, 'seed' FROM generate_series(1, 900) g");
    // And a table queued under an earlier TABLE_INCLUDE that no longer captures it is dropped from the queue, not copied.
    const statePath = join(dir, "_cdc_state", `${slot}.json`);
    const stored = JSON.parse(await readFile(statePath, "utf8")) as { incremental: { tables: unknown[] } };
    stored.incremental.tables.push({ table: "public.w_uncaptured", chunks: 2, lastKey: ["10"], rows: 20, barrier: true, reason: "initial", since: new Date().toISOString() });
    await writeFile(statePath, JSON.stringify(stored));
    engine = spawnEngine({ ...env, TABLE_INCLUDE: [...tables, "public.w_late"].join(",") });
    try {
      await waitFor("streaming", async () => engine.logs.join("").includes("streaming changes"), 60_000, 20);
      await pg.query("UPDATE public.w_late SET v = 'streamed' WHERE id % 10 = 0; DELETE FROM public.w_late WHERE id % 7 = 0");
      await waitFor("the chunked snapshot of w_late", async () => (await storedState(dir, slot))?.incremental?.tables.length === 0, 60_000, 100);
      await waitForCatchUp(pg, dir, slot);
      engine.child.kill("SIGTERM");
      assert.equal(await engine.exited, 0);
    } finally {
      engine.child.kill("SIGKILL");
    }
    assert.deepEqual(logLines(engine, "starting the incremental snapshot of table").map((l) => l.table), ["public.w_late"]);
    assert.equal(logLines(engine, "public.w_uncaptured is no longer captured (TABLE_INCLUDE); dropping its incremental snapshot").length, 1);
    const late = (await pg.query<{ id: number; v: string }>("SELECT id, v FROM public.w_late")).map((r) => JSON.stringify([r.id, r.v])).sort();
    const lateRebuilt = [...(await rebuildTable(dir, "public.w_late", ["id"])).values()].map((r) => JSON.stringify([r.id, r.v])).sort();
    assert.deepEqual(lateRebuilt, late, "w_late rebuilt from the landing zone equals the source");
    assert.equal((await readRecords(dir, "public.w_late", { barriers: true })).filter((r) => r.__op === "b").length, 1);
  });
});
