/**
 * Incremental snapshots while streaming (the watermark method): with SNAPSHOT_MODE=never the rows
 * that existed before the slot reach the landing zone only through the chunks, so a table rebuilt
 * by (__lsn, __seq) equals the source only if no chunk row was lost, stale or resurrected — under a
 * concurrent insert/update/delete workload, across kill -9 in the middle of the chunks, for
 * composite and non-integer keys, and requested by `cdc-engine snapshot` while another table streams.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { currentLsn, engineEnv, landingDir, runCli, spawnEngine, startEngine, waitFor } from "./fixtures/harness";
import { readRecords, rebuildTable } from "./fixtures/landing";
import { assertLandingMatchesSource, createWorkloadTables, runWorkload, waitForCatchUp, WORKLOAD_TABLES } from "./fixtures/workload";
import { topLevelFields } from "../../container/src/source/incremental-snapshot";


interface StoredIncremental {
  incremental?: { tables: { table: string; chunks: number; rows: number }[]; requestsUpTo?: string };
}

async function storedState(dir: string, slot: string): Promise<StoredIncremental | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, "_cdc_state", `${slot}.json`), "utf8")) as StoredIncremental;
  } catch {
    return undefined;
  }
}

/** Waits until the state holds a request taken and no table left to snapshot. */
async function waitForSnapshotsDone(dir: string, slot: string, timeoutMs = 60_000): Promise<void> {
  await waitFor("the incremental snapshots to finish", async () => {
    const s = await storedState(dir, slot);
    return s?.incremental?.requestsUpTo !== undefined && s.incremental.tables.length === 0;
  }, timeoutMs, 100);
}


const request = (pg: TestPostgres, tables: string[]) => pg.query("SELECT pg_logical_emit_message(true, 'cdc-snapshot', $1)", [JSON.stringify({ tables })]);

/**
 * Incremental snapshots need PostgreSQL 14+ (watermarks are logical messages, which pgoutput
 * decodes from 14 on): before, a test of them has nothing to run; what older servers do instead
 * (tables that come back copied from a temporary slot, `cdc-engine snapshot` refused) is tested
 * below and in postgres-versions.test.ts.
 */
function skipBefore14(test: Mocha.Context): void {
  if (serverVersion < 140000) test.skip();
}
let serverVersion = 0;

describe("engine: incremental snapshots while streaming", function () {
  this.timeout(180_000);
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
    serverVersion = pg.versionNum;
  });
  after(async () => {
    await pg?.stop();
  });

  it("reads top-level fields of a record exactly, whatever nested values hold", () => {
    const line = '{"__op":"u","__deleted":"false","__lsn":5,"__seq":9,"__ts_ms":1,"doc":{"id":1,"x":[{"id":2}]},"note":"a \\"id\\":3","id":9007199254740993,"b":"x"}';
    assert.deepEqual(topLevelFields(line, ["id", "b"]), ["9007199254740993", '"x"']);
    assert.deepEqual(topLevelFields(',"a":null,"b":[1,"]"]', ["b", "a", "c"]), ['[1,"]"]', "null", undefined]);
  });

  it("lands every row of tables snapshotted under a concurrent insert/update/delete workload", async function () {
    skipBefore14(this);
    await createWorkloadTables(pg, 6_000);
    const dir = await landingDir();
    const slot = "incr_slot";
    const env = engineEnv(pg, dir, { TABLE_INCLUDE: WORKLOAD_TABLES.map((t) => t.name).join(","), PG_SLOT: slot, PG_PUBLICATION: "incr_pub", SNAPSHOT_MODE: "never", INCREMENTAL_CHUNK_SIZE: "500", BATCH_MAX_WAIT_MS: "100" });
    const engine = startEngine(env);
    let stop = false;
    let workload: Promise<{ committed: number }> | undefined;
    try {
      await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"), 60_000);
      // The snapshot is requested once the workload is under way (a count, not a delay: chunks
      // now take tens of milliseconds, and a loaded machine commits few transactions a second).
      let committedSoFar = 0;
      workload = runWorkload(pg, { clients: 2, transactionsPerClient: 100_000, seed: 11, keySpace: 7_000, stop: () => stop, onCommit: () => committedSoFar++ });
      await waitFor("the workload under way", async () => committedSoFar >= 10, 60_000, 20);
      await request(pg, WORKLOAD_TABLES.map((t) => t.name));
      await waitForSnapshotsDone(dir, slot);
      stop = true;
      await workload;
      await waitForCatchUp(pg, dir, slot);
    } finally {
      stop = true;
      await workload?.catch(() => undefined);
      await engine.stop();
    }
    await assertLandingMatchesSource(pg, dir);
    const snapshotRows = (await readRecords(dir, "public.w_orders")).filter((r) => r.__op === "r");
    assert.ok(snapshotRows.length > 1000, `w_orders has ${snapshotRows.length} chunk rows`);
    // Every chunk row sits at its high watermark's LSN, which no streamed record of the table shares.
    const streamedLsns = new Set((await readRecords(dir, "public.w_orders")).filter((r) => r.__op !== "r").map((r) => r.__lsn));
    assert.ok(snapshotRows.every((r) => !streamedLsns.has(r.__lsn) && r.__seq >= 1 && r.__seq <= 500), "chunk rows at (H, 1…chunk size), apart from the stream");
  });

  it("resumes chunk by chunk after kill -9 in the middle of the chunks", async function () {
    skipBefore14(this);
    await pg.query("DROP TABLE IF EXISTS public.w_orders, public.w_events, public.w_pairs");
    await createWorkloadTables(pg, 3_000);
    const dir = await landingDir();
    const slot = "incr_kill_slot";
    const env = engineEnv(pg, dir, { TABLE_INCLUDE: WORKLOAD_TABLES.map((t) => t.name).join(","), PG_SLOT: slot, PG_PUBLICATION: "incr_kill_pub", SNAPSHOT_MODE: "never", INCREMENTAL_CHUNK_SIZE: "250", BATCH_MAX_WAIT_MS: "100", LOG_LEVEL: "info" });
    let stop = false;
    const logs: string[] = [];
    let workload: Promise<{ committed: number }> | undefined;
    try {
      let engine = spawnEngine(env);
      await waitFor("streaming", async () => engine.logs.join("").includes("streaming changes"), 60_000, 20);
      workload = runWorkload(pg, { clients: 2, transactionsPerClient: 100_000, seed: 5, keySpace: 3_500, stop: () => stop });
      await request(pg, WORKLOAD_TABLES.map((t) => t.name));
      for (let kill = 0; kill < 2; kill++) {
        // Killed once some chunks of the first table are durable, and again in the next table.
        const before = (await storedState(dir, slot))?.incremental?.tables[0];
        await waitFor("durable chunks", async () => {
          const first = (await storedState(dir, slot))?.incremental?.tables[0];
          return first !== undefined && (first.table !== before?.table || first.chunks >= (before?.chunks ?? 0) + 3);
        }, 60_000, 20);
        engine.child.kill("SIGKILL");
        await engine.exited;
        logs.push(...engine.logs);
        engine = spawnEngine(env);
      }
      await waitForSnapshotsDone(dir, slot);
      stop = true;
      await workload;
      await waitForCatchUp(pg, dir, slot);
      engine.child.kill("SIGTERM");
      assert.equal(await engine.exited, 0);
      logs.push(...engine.logs);
    } finally {
      stop = true;
      await workload?.catch(() => undefined);
    }
    const all = logs.join("");
    assert.ok(all.includes("resuming the incremental snapshot of table"), "a restart resumed from the durable chunks");
    assert.ok(!all.includes('"level":50'), "no error was logged:\n" + logs.filter((l) => l.includes('"level":50')).join("\n"));
    await assertLandingMatchesSource(pg, dir);
  });

  it("a table published while streaming (TABLE_INCLUDE empty) is copied incrementally (14+; before, from a temporary slot) behind a barrier, under concurrent changes", async () => {
    const incremental = pg.versionNum >= 140000;
    await pg.query(`
      CREATE TABLE public.p_first (id int PRIMARY KEY, v text);
      CREATE TABLE public.p_added (id int PRIMARY KEY, v text, n int);
      INSERT INTO public.p_added SELECT g, 'seed', g FROM generate_series(1, 4000) g;
      CREATE PUBLICATION p_pub FOR TABLE public.p_first;
    `);
    const dir = await landingDir();
    const slot = "incr_pub_slot";
    const engine = startEngine(engineEnv(pg, dir, { PG_SLOT: slot, PG_PUBLICATION: "p_pub", INCREMENTAL_CHUNK_SIZE: "300", BATCH_MAX_WAIT_MS: "100" }));
    let stop = false;
    try {
      await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"), 60_000);
      await pg.query("ALTER PUBLICATION p_pub ADD TABLE public.p_added");
      const changes = (async () => {
        for (let i = 0; !stop; i++) {
          const id = 1 + ((i * 37) % 4200);
          if (i % 7 === 0) await pg.query("DELETE FROM public.p_added WHERE id = $1", [id]);
          else await pg.query("INSERT INTO public.p_added VALUES ($1, 'streamed', $2) ON CONFLICT (id) DO UPDATE SET v = 'updated', n = public.p_added.n + 1", [id, i]);
        }
      })();
      await waitFor("the barrier", async () => (await readRecords(dir, "public.p_added", { barriers: true })).some((r) => r.__op === "b"), 60_000);
      // Before 14 the table is copied from a temporary slot instead (no incremental state).
      if (incremental) {
        await waitFor("the incremental snapshot to finish", async () => {
          const s = await storedState(dir, slot);
          return s?.incremental !== undefined && s.incremental.tables.length === 0;
        }, 60_000);
      }
      stop = true;
      await changes;
      await pg.query("INSERT INTO public.p_first VALUES (1, 'marker')");
      await waitFor("the marker", async () => (await readRecords(dir, "public.p_first")).length > 0, 30_000);
      await waitFor("p_added equal to the source", async () => {
        const source = (await pg.query<{ id: number; v: string; n: number }>("SELECT id, v, n FROM public.p_added")).map((r) => JSON.stringify([r.id, r.v, r.n])).sort();
        const rebuilt = [...(await rebuildTable(dir, "public.p_added", ["id"])).values()].map((r) => JSON.stringify([r.id, r.v, r.n])).sort();
        return JSON.stringify(source) === JSON.stringify(rebuilt);
      }, 30_000, 200);
    } finally {
      stop = true;
      await engine.stop();
    }
    const records = await readRecords(dir, "public.p_added", { barriers: true });
    const barrier = records.find((r) => r.__op === "b")!;
    if (!incremental) {
      // Copied from a temporary slot: the rows at the barrier's position (P, 1…), as an initial snapshot.
      assert.ok(records.filter((r) => r.__op === "r").every((r) => r.__lsn === barrier.__lsn), "every copied row at the barrier's position");
      return;
    }
    assert.ok(records.filter((r) => r.__op === "r").every((r) => r.__lsn > barrier.__lsn), "every chunk row follows the barrier");
    assert.ok(records.some((r) => r.__op !== "r" && r.__op !== "b" && r.__lsn < barrier.__lsn), "the stream went on: changes before the barrier landed too (readers drop them)");
  });

  it("a table without a primary key that comes back while streaming is still copied (from a temporary slot, as before)", async () => {
    await pg.query(`
      CREATE TABLE public.q_first (id int PRIMARY KEY);
      CREATE TABLE public.q_nokey (a int, b text);
      ALTER TABLE public.q_nokey REPLICA IDENTITY FULL;
      INSERT INTO public.q_nokey SELECT g, 'seed' FROM generate_series(1, 500) g;
      CREATE PUBLICATION q_pub FOR TABLE public.q_first;
    `);
    const dir = await landingDir();
    const engine = startEngine(engineEnv(pg, dir, { PG_SLOT: "incr_nokey_slot", PG_PUBLICATION: "q_pub" }));
    try {
      await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"), 60_000);
      await pg.query("ALTER PUBLICATION q_pub ADD TABLE public.q_nokey");
      await pg.query("UPDATE public.q_nokey SET b = 'changed' WHERE a <= 10");
      await waitFor("q_nokey equal to the source", async () => {
        const source = (await pg.query<{ a: number; b: string }>("SELECT a, b FROM public.q_nokey")).map((r) => JSON.stringify([r.a, r.b])).sort();
        const rebuilt = [...(await rebuildTable(dir, "public.q_nokey", ["a", "b"])).values()].map((r) => JSON.stringify([r.a, r.b])).sort();
        return JSON.stringify(source) === JSON.stringify(rebuilt);
      }, 60_000, 200);
    } finally {
      await engine.stop();
    }
  });

  it("keeps unchanged TOASTed values of rows changed inside a chunk's window (REPLICA IDENTITY DEFAULT)", async function () {
    skipBefore14(this);
    // Incompressible 6 kB documents are stored out of line; updates of n alone do not send them.
    await pg.query(`
      CREATE TABLE public.t_docs (id int PRIMARY KEY, n int, doc text);
      ALTER TABLE public.t_docs ALTER COLUMN doc SET STORAGE EXTERNAL;
      INSERT INTO public.t_docs SELECT g, 0, (SELECT string_agg(md5(g::text || ':' || i), '') FROM generate_series(1, 190) i) FROM generate_series(1, 1500) g;
    `);
    const dir = await landingDir();
    const slot = "incr_toast_slot";
    const env = engineEnv(pg, dir, { TABLE_INCLUDE: "public.t_docs", PG_SLOT: slot, PG_PUBLICATION: "incr_toast_pub", SNAPSHOT_MODE: "never", INCREMENTAL_CHUNK_SIZE: "200", BATCH_MAX_WAIT_MS: "100" });
    const engine = startEngine(env);
    let stop = false;
    try {
      await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"), 60_000);
      const updates = (async () => {
        for (let i = 0; !stop; i++) await pg.query("UPDATE public.t_docs SET n = n + 1 WHERE id % 50 = $1", [i % 50]);
      })();
      await request(pg, ["public.t_docs"]);
      await waitForSnapshotsDone(dir, slot);
      stop = true;
      await updates;
      await pg.query("UPDATE public.t_docs SET n = -1 WHERE id = 1");
      await waitFor("the last update", async () => (await readRecords(dir, "public.t_docs")).some((r) => r.n === -1), 30_000);
    } finally {
      stop = true;
      await engine.stop();
    }
    const records = await readRecords(dir, "public.t_docs");
    assert.ok(records.some((r) => Array.isArray(r.__unchanged)), "updates landed without their unchanged documents");
    const source = (await pg.query<{ id: number; n: number; doc: string }>("SELECT id, n, doc FROM public.t_docs")).map((r) => JSON.stringify([r.id, r.n, r.doc])).sort();
    const rebuilt = [...(await rebuildTable(dir, "public.t_docs", ["id"])).values()].map((r) => JSON.stringify([r.id, r.n, r.doc ?? null])).sort();
    assert.equal(rebuilt.length, source.length);
    assert.ok(JSON.stringify(rebuilt) === JSON.stringify(source), `rebuilt differs from the source, e.g. ${rebuilt.find((r, i) => r !== source[i])?.slice(0, 80)}`);
  });

  it("follows a column added while the table is being copied", async function () {
    skipBefore14(this);
    await pg.query("CREATE TABLE public.t_alter (id int PRIMARY KEY, v text); INSERT INTO public.t_alter SELECT g, 'seed' FROM generate_series(1, 3000) g");
    const dir = await landingDir();
    const slot = "incr_alter_slot";
    let alteredAt = 0n;
    const engine = startEngine(engineEnv(pg, dir, { TABLE_INCLUDE: "public.t_alter", PG_SLOT: slot, PG_PUBLICATION: "incr_alter_pub", SNAPSHOT_MODE: "never", INCREMENTAL_CHUNK_SIZE: "100", BATCH_MAX_WAIT_MS: "100" }));
    try {
      await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"), 60_000);
      await request(pg, ["public.t_alter"]);
      await waitFor("a few durable chunks", async () => ((await storedState(dir, slot))?.incremental?.tables[0]?.chunks ?? 0) >= 2, 60_000, 20);
      await pg.query("ALTER TABLE public.t_alter ADD COLUMN extra int DEFAULT 7");
      alteredAt = await currentLsn(pg);
      await pg.query("UPDATE public.t_alter SET v = 'after' WHERE id % 100 = 0");
      await waitForSnapshotsDone(dir, slot);
      await pg.query("UPDATE public.t_alter SET v = 'last' WHERE id = 1");
      await waitFor("the last update", async () => (await readRecords(dir, "public.t_alter")).some((r) => r.v === "last"), 30_000);
    } finally {
      await engine.stop();
    }
    // Rows landed before the ALTER have no `extra` (PostgreSQL streams no change for a column's
    // default; true of any CDC): every row landed after it must carry the column.
    const last = new Map<number, { __lsn: number; extra?: unknown; v?: unknown }>();
    for (const r of await readRecords(dir, "public.t_alter")) last.set(r.id as number, r);
    const source = await pg.query<{ id: number; v: string; extra: number }>("SELECT id, v, extra FROM public.t_alter");
    const rebuilt = await rebuildTable(dir, "public.t_alter", ["id"]);
    assert.equal(rebuilt.size, source.length);
    const wrong = source.filter((r) => {
      const landed = rebuilt.get(JSON.stringify([r.id]));
      if (landed?.v !== r.v) return true;
      return BigInt(last.get(r.id)!.__lsn) > alteredAt ? landed.extra !== r.extra : landed.extra !== undefined && landed.extra !== r.extra;
    });
    assert.deepEqual(wrong.slice(0, 3), [], `${wrong.length} rows differ from the source (ALTER before ${alteredAt}; last of ${wrong[0]?.id}: ${JSON.stringify(last.get(wrong[0]?.id))})`);
    assert.ok(source.filter((r) => rebuilt.get(JSON.stringify([r.id]))?.extra === 7).length > 1000, "the chunks after the ALTER carry the new column");
  });

  it("snapshots one table on request (cdc-engine snapshot) while another streams; composite non-integer keys; a table without a primary key is refused", async function () {
    skipBefore14(this);
    await pg.query(`
      CREATE TABLE public.k_items (region text, sku uuid, at timestamptz, qty int, note text, PRIMARY KEY (region, sku, at));
      INSERT INTO public.k_items SELECT 'r' || (g % 7) || E'\\tü''"', md5(g::text)::uuid, timestamptz '2026-01-01' + g * interval '1 second', g, repeat('x', g % 50) FROM generate_series(1, 3000) g;
      CREATE TABLE public.k_live (id int PRIMARY KEY, v text);
      CREATE TABLE public.k_nopk (v text);
      ALTER TABLE public.k_nopk REPLICA IDENTITY FULL;
    `);
    const dir = await landingDir();
    const slot = "incr_cli_slot";
    const env = engineEnv(pg, dir, { TABLE_INCLUDE: "public.k_items,public.k_live,public.k_nopk", PG_SLOT: slot, PG_PUBLICATION: "incr_cli_pub", SNAPSHOT_MODE: "never", INCREMENTAL_CHUNK_SIZE: "256", BATCH_MAX_WAIT_MS: "100" });
    const engine = startEngine(env);
    try {
      await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"), 60_000);
      const refused = await runCli(["snapshot", "--table", "public.k_nopk"], env);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /public\.k_nopk: it has no primary key.*ADD PRIMARY KEY/);
      let stop = false;
      const live = (async () => {
        for (let i = 1; !stop; i++) {
          await pg.query("INSERT INTO public.k_live VALUES ($1, 'a') ON CONFLICT (id) DO UPDATE SET v = 'b'", [i % 50]);
          await pg.query("UPDATE public.k_items SET qty = qty + 1 WHERE qty % 97 = $1", [i % 97]);
          if (i % 5 === 0) await pg.query("DELETE FROM public.k_items WHERE ctid = (SELECT ctid FROM public.k_items ORDER BY qty LIMIT 1)");
        }
      })();
      const requested = await runCli(["snapshot", "--table", "public.k_items"], env);
      assert.equal(requested.code, 0, requested.stderr);
      assert.match(requested.stdout, /requested an incremental snapshot of public\.k_items/);
      await waitForSnapshotsDone(dir, slot);
      stop = true;
      await live;
      await pg.query("INSERT INTO public.k_live VALUES (-1, 'marker')");
      await waitFor("the marker", async () => (await readRecords(dir, "public.k_live")).some((r) => r.id === -1), 30_000);
      await waitFor("k_items caught up", async () => {
        const source = await pg.query<{ n: string }>("SELECT count(*)::text AS n FROM public.k_items");
        return (await rebuildTable(dir, "public.k_items", ["region", "sku", "at"])).size === Number(source[0].n);
      }, 30_000);
    } finally {
      await engine.stop();
    }
    const source = (await pg.query<{ region: string; sku: string; at: string; qty: number; note: string }>("SELECT region, sku::text, to_json(at)#>>'{}' AS at, qty, note FROM public.k_items"))
      .map((r) => JSON.stringify([r.region, r.sku, new Date(r.at).toISOString(), r.qty, r.note]))
      .sort();
    const rebuilt = [...(await rebuildTable(dir, "public.k_items", ["region", "sku", "at"])).values()].map((r) => JSON.stringify([r.region, r.sku, new Date(r.at as string).toISOString(), r.qty, r.note])).sort();
    assert.deepEqual(rebuilt, source);
    assert.ok((await readRecords(dir, "public.k_items")).some((r) => r.__op === "r"), "k_items landed chunk rows");
    assert.ok(!(await readRecords(dir, "public.k_live")).some((r) => r.__op === "r"), "the streaming table got no snapshot rows");
  });
});
