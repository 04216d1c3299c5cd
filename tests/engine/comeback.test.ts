/**
 * Tables that come back (issue 10, item 5): a captured table dropped and created again, renamed
 * away and back, or removed from capture and added again is copied again behind a re-snapshot
 * barrier, so the changes made while the landing zone could not see it are never missing.
 * Coverage is kept by relation OID (container/src/source/coverage.ts).
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { engineEnv, landingDir, startEngine, waitFor } from "./fixtures/harness";
import { readRecords, rebuildTable } from "./fixtures/landing";

describe("engine: tables that come back are snapshotted again", function () {
  this.timeout(120_000);
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.stop();
  });

  async function source(table: string): Promise<Record<string, unknown>[]> {
    return pg.query(`SELECT id, v FROM ${table} ORDER BY id`);
  }
  async function landed(dir: string, table: string): Promise<Record<string, unknown>[]> {
    return [...(await rebuildTable(dir, table, ["id"])).values()].sort((a, b) => (a.id as number) - (b.id as number));
  }
  const barriers = async (dir: string, table: string) => (await readRecords(dir, table, { barriers: true })).filter((r) => r.__op === "b");
  async function state(dir: string, slot: string): Promise<{ snapshot: { covered: Record<string, { oid: number | null; at: string }> } }> {
    return JSON.parse(await readFile(join(dir, "_cdc_state", `${slot}.json`), "utf8"));
  }
  const oidOf = async (table: string) => Number((await pg.query<{ oid: number }>(`SELECT '${table}'::regclass::oid::int AS oid`))[0].oid);

  it("a table dropped and created again while streaming (FOR ALL TABLES): detected from its Relation message", async () => {
    await pg.query(`CREATE TABLE public.cb_drop (id int PRIMARY KEY, v text); INSERT INTO public.cb_drop SELECT g, 'first' FROM generate_series(1, 20) g;
      CREATE PUBLICATION cb_all FOR ALL TABLES`);
    const dir = await landingDir();
    const engine = startEngine(engineEnv(pg, dir, { TABLE_INCLUDE: "public.cb_drop", PG_SLOT: "cb_drop_slot", PG_PUBLICATION: "cb_all" }));
    try {
      await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"));
      await pg.query("UPDATE public.cb_drop SET v = 'streamed' WHERE id = 1");
      await waitFor("the update", async () => (await readRecords(dir, "public.cb_drop")).some((r) => r.__op === "u"));
      const before = await barriers(dir, "public.cb_drop");
      assert.equal(before.length, 1);
      // The new table shares no row with the old one: id 1..20 must all go, 15..30 come as the new table's.
      await pg.query(`DROP TABLE public.cb_drop; CREATE TABLE public.cb_drop (id int PRIMARY KEY, v text);
        INSERT INTO public.cb_drop SELECT g, 'second' FROM generate_series(15, 30) g`);
      await pg.query("UPDATE public.cb_drop SET v = 'after' WHERE id = 30; DELETE FROM public.cb_drop WHERE id = 15");
      await waitFor("the second table's rows", async () => JSON.stringify(await landed(dir, "public.cb_drop")) === JSON.stringify(await source("public.cb_drop")));
      const after = await barriers(dir, "public.cb_drop");
      assert.equal(after.length, 2, "one new barrier");
      const newest = await readRecords(dir, "public.cb_drop");
      // Copied incrementally while streaming (PostgreSQL 14+): the barrier at the first chunk's low
      // watermark L, the chunks' rows at their high watermarks after it.
      const snapshotRows = newest.filter((r) => r.__op === "r" && (r.__lsn > after[1].__lsn || (r.__lsn === after[1].__lsn && r.__seq > 0)));
      assert.ok(snapshotRows.length > 0, "the rows follow their barrier");
      assert.ok(!newest.some((r) => r.__op === "r" && r.__lsn < after[1].__lsn && r.__lsn > before[0].__lsn), "no snapshot row before the new barrier");
      assert.ok(snapshotRows.every((r) => (r.id as number) >= 15), "the new snapshot holds only the new table's rows");
      // The state records the coverage once the snapshot's objects are durable, just after they are readable.
      const newOid = await oidOf("public.cb_drop");
      await waitFor("coverage follows the new relation OID", async () => (await state(dir, "cb_drop_slot")).snapshot.covered["public.cb_drop"]?.oid === newOid);
    } finally {
      await engine.stop();
      await pg.query("DROP PUBLICATION cb_all");
    }
    assert.equal((await pg.query("SELECT 1 FROM pg_replication_slots WHERE slot_name LIKE 'cb_drop_slot_add%'")).length, 0, "the temporary slot is gone");
  });

  it("a table renamed away (its changes stream under a name not captured) and back is copied again", async () => {
    await pg.query(`CREATE TABLE public.cb_ren (id int PRIMARY KEY, v text); INSERT INTO public.cb_ren SELECT g, 'first' FROM generate_series(1, 10) g`);
    const dir = await landingDir();
    const engine = startEngine(engineEnv(pg, dir, { TABLE_INCLUDE: "public.cb_ren", PG_SLOT: "cb_ren_slot", PG_PUBLICATION: "cb_ren_pub" }));
    try {
      await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"));
      await pg.query("ALTER TABLE public.cb_ren RENAME TO cb_ren_away");
      // Not captured under this name: without a new snapshot these would be missing under cb_ren.
      await pg.query("UPDATE public.cb_ren_away SET v = 'while away' WHERE id <= 3; DELETE FROM public.cb_ren_away WHERE id = 10");
      await pg.query("ALTER TABLE public.cb_ren_away RENAME TO cb_ren");
      await pg.query("INSERT INTO public.cb_ren VALUES (11, 'back')");
      await waitFor("cb_ren equal to the source", async () => JSON.stringify(await landed(dir, "public.cb_ren")) === JSON.stringify(await source("public.cb_ren")), 60_000);
      assert.equal((await barriers(dir, "public.cb_ren")).length, 2, "snapshotted again once");
      assert.equal((await readRecords(dir, "public.cb_ren_away")).length, 0, "nothing lands under a name that is not captured");
    } finally {
      await engine.stop();
    }
  });

  it("across restarts: removed from TABLE_INCLUDE and added again, and dropped and created again while stopped", async () => {
    await pg.query(`CREATE TABLE public.cb_a (id int PRIMARY KEY, v text); CREATE TABLE public.cb_b (id int PRIMARY KEY, v text);
      INSERT INTO public.cb_a SELECT g, 'a' FROM generate_series(1, 10) g; INSERT INTO public.cb_b SELECT g, 'b' FROM generate_series(1, 10) g`);
    const dir = await landingDir();
    const env = engineEnv(pg, dir, { TABLE_INCLUDE: "public.cb_a,public.cb_b", PG_SLOT: "cb_restart_slot", PG_PUBLICATION: "cb_restart_pub" });
    const run = async (tables: string, during: () => Promise<void>) => {
      const engine = startEngine({ ...env, TABLE_INCLUDE: tables });
      try {
        await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"));
        await during();
      } finally {
        await engine.stop();
      }
    };
    await run("public.cb_a,public.cb_b", async () => {
      await waitFor("both snapshots", async () => (await readRecords(dir, "public.cb_b")).length === 10 && (await readRecords(dir, "public.cb_a")).length === 10);
    });
    // cb_b leaves capture (and the publication: someone tidied it up); its changes meanwhile never stream.
    await run("public.cb_a", async () => {
      await pg.query("ALTER PUBLICATION cb_restart_pub DROP TABLE public.cb_b");
      await pg.query("UPDATE public.cb_b SET v = 'unseen' WHERE id <= 5; DELETE FROM public.cb_b WHERE id = 6; UPDATE public.cb_a SET v = 'seen' WHERE id = 1");
      await waitFor("cb_a's update", async () => (await readRecords(dir, "public.cb_a")).some((r) => r.__op === "u"));
    });
    assert.equal((await state(dir, "cb_restart_slot")).snapshot.covered["public.cb_b"], undefined, "a table that left capture is no longer covered");
    // cb_a is dropped and created again while no engine runs.
    await pg.query(`DROP TABLE public.cb_a; CREATE TABLE public.cb_a (id int PRIMARY KEY, v text); INSERT INTO public.cb_a VALUES (100, 'new a')`);
    await run("public.cb_a,public.cb_b", async () => {
      await pg.query("UPDATE public.cb_b SET v = 'streamed' WHERE id = 7; INSERT INTO public.cb_a VALUES (101, 'streamed')");
      for (const t of ["public.cb_a", "public.cb_b"]) {
        await waitFor(`${t} equal to the source`, async () => JSON.stringify(await landed(dir, t)) === JSON.stringify(await source(t)));
      }
    });
    assert.equal((await barriers(dir, "public.cb_a")).length, 2);
    assert.equal((await barriers(dir, "public.cb_b")).length, 2);
    const covered = (await state(dir, "cb_restart_slot")).snapshot.covered;
    assert.equal(covered["public.cb_a"].oid, await oidOf("public.cb_a"));
    assert.equal(covered["public.cb_b"].oid, await oidOf("public.cb_b"));
    // A plain restart copies nothing again.
    await run("public.cb_a,public.cb_b", async () => {
      await pg.query("INSERT INTO public.cb_b VALUES (50, 'last')");
      await waitFor("the last insert", async () => (await readRecords(dir, "public.cb_b")).some((r) => r.id === 50));
    });
    assert.equal((await barriers(dir, "public.cb_b")).length, 2, "no snapshot without a reason");
  });
});
