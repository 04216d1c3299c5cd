import assert from "node:assert/strict";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { confirmedFlush, currentLsn, engineEnv, landingDir, startEngine, waitFor, waitForRecords } from "./fixtures/harness";
import { duplicatePositions, readLanding, readManifests, readRecords, rebuildTable, type LandingRecord } from "./fixtures/landing";
import { assertLandingMatchesSource, createWorkloadTables, runWorkload, waitForCatchUp, WORKLOAD_TABLES } from "./fixtures/workload";

describe("engine: snapshot then streaming", function () {
  this.timeout(120_000);
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.stop();
  });

  it("lands the snapshot as r records and later changes as c/u/d", async () => {
    await pg.query("CREATE TABLE public.items (id int PRIMARY KEY, name text, qty int)");
    await pg.query("INSERT INTO public.items SELECT g, 'item ' || g, g * 10 FROM generate_series(1, 100) g");
    const dir = await landingDir();
    const engine = startEngine(engineEnv(pg, dir, { TABLE_INCLUDE: "public.items", PG_SLOT: "smoke_slot", PG_PUBLICATION: "smoke_pub" }));
    try {
      await waitForRecords(dir, "public.items", 100);
      await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"));
      await pg.query("INSERT INTO public.items VALUES (101, 'new', 1)");
      await pg.query("UPDATE public.items SET qty = 0 WHERE id = 5");
      await pg.query("DELETE FROM public.items WHERE id = 7");
      await waitForRecords(dir, "public.items", 103);
      const records = await readRecords(dir, "public.items");
      assert.deepEqual(records.slice(0, 100).map((r) => r.__op), Array(100).fill("r"));
      assert.deepEqual(records.slice(0, 100).map((r) => r.__seq), [...Array(100).keys()].map((i) => i + 1), "r records are numbered by their ordinal, after the barrier at 0");
      const [barrier] = (await readRecords(dir, "public.items", { barriers: true })).filter((r) => r.__op === "b");
      assert.deepEqual(barrier, { __op: "b", __deleted: "false", __lsn: records[0].__lsn, __seq: 0, __ts_ms: records[0].__ts_ms }, "the snapshot opens with its barrier");
      assert.deepEqual(records.slice(100).map((r) => r.__op), ["c", "u", "d"]);
      assert.deepEqual(records[102], { __op: "d", __deleted: "true", __lsn: records[102].__lsn, __seq: records[102].__seq, __ts_ms: records[102].__ts_ms, id: 7 });
      assert.ok(records[102].__seq > 0 && records[102].__seq < 10_000_000_000, "__seq fits its 10 digits");
      const rebuilt = await rebuildTable(dir, "public.items", ["id"]);
      assert.equal(rebuilt.size, 100);
      assert.deepEqual(rebuilt.get("[5]"), { id: 5, name: "item 5", qty: 0 });
      // Object names: date/hour of the commit time, then the first and the last record's position
      // (LSN as 16 hex digits, __seq as 10 digits): a name says exactly what the object holds.
      const files = await readLanding(dir, "public.items");
      const position = (r: LandingRecord) => `${BigInt(r.__lsn).toString(16).toUpperCase().padStart(16, "0")}-${String(r.__seq).padStart(10, "0")}`;
      for (const f of files) {
        const first = f.records[0];
        const last = f.records[f.records.length - 1];
        const at = new Date(first.__ts_ms).toISOString();
        assert.equal(f.key, `cdc.public.items/date=${at.slice(0, 10)}/hour=${at.slice(11, 13)}/${position(first)}-${position(last)}.ndjson`);
      }
      // The schema manifest precedes the first object, named by that object's first position.
      const manifests = await readManifests(dir, "public.items");
      assert.deepEqual(manifests.map((m) => m.key), [`cdc.public.items/_schema/${position(barrier)}.json`]);
      assert.deepEqual(manifests[0].manifest, {
        version: 1,
        table: "public.items",
        since_lsn: barrier.__lsn,
        since_seq: 0,
        columns: [
          { name: "id", pg_type: "integer", nullable: false, spark_type: "INT" },
          { name: "name", pg_type: "text", nullable: true, spark_type: "STRING" },
          { name: "qty", pg_type: "integer", nullable: true, spark_type: "INT" },
        ],
        primary_key: ["id"],
        replica_identity: "default",
        key: ["id"],
      });
    } finally {
      await engine.stop();
    }
  });

  it("rebuilds every table of a randomized concurrent workload from the landing zone, row for row", async () => {
    await createWorkloadTables(pg, 3000);
    const dir = await landingDir();
    const slot = "workload_slot";
    const tables = WORKLOAD_TABLES.map((t) => t.name).join(",");
    // Writes run while the snapshot is taken and while streaming; small batches mean many objects.
    const during = runWorkload(pg, { clients: 4, transactionsPerClient: 60, seed: 1, keySpace: 4000 });
    const engine = startEngine(engineEnv(pg, dir, { TABLE_INCLUDE: tables, PG_SLOT: slot, PG_PUBLICATION: "workload_pub", BATCH_MAX_SIZE: "150" }));
    try {
      await during;
      await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"));
      const after = await runWorkload(pg, { clients: 4, transactionsPerClient: 60, seed: 2, keySpace: 4000 });
      assert.ok(after.committed > 100, `the workload committed ${after.committed} transactions`);
      await waitForCatchUp(pg, dir, slot);
      await assertLandingMatchesSource(pg, dir);
      for (const t of WORKLOAD_TABLES) assert.deepEqual(await duplicatePositions(dir, t.name), [], `${t.name}: no (lsn, seq) twice`);
      const ops = new Set((await readRecords(dir, "public.w_orders")).map((r) => r.__op));
      assert.deepEqual([...ops].sort(), ["c", "d", "r", "u"]);
    } finally {
      await engine.stop();
    }
    // A graceful stop confirmed everything it wrote: a restart replays nothing and writes no object.
    const filesBefore = (await readLanding(dir)).length;
    const again = startEngine(engineEnv(pg, dir, { TABLE_INCLUDE: tables, PG_SLOT: slot, PG_PUBLICATION: "workload_pub" }));
    await waitFor("streaming again", async () => again.metrics.phases.includes("streaming"));
    await new Promise((r) => setTimeout(r, 500));
    await again.stop();
    assert.equal((await readLanding(dir)).length, filesBefore);
  });

  it("advances confirmed_flush_lsn with heartbeats while the captured tables are idle", async () => {
    await pg.query("CREATE TABLE public.idle_captured (id int PRIMARY KEY); CREATE TABLE public.busy_other (id serial PRIMARY KEY, v text)");
    const dir = await landingDir();
    const slot = "heartbeat_slot";
    const engine = startEngine(
      engineEnv(pg, dir, { TABLE_INCLUDE: "public.idle_captured", PG_SLOT: slot, PG_PUBLICATION: "heartbeat_pub", HEARTBEAT_INTERVAL_MS: "200" }),
    );
    try {
      await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"));
      const start = await confirmedFlush(pg, slot);
      await pg.query("INSERT INTO public.busy_other (v) SELECT repeat('x', 100) FROM generate_series(1, 2000)");
      const afterWrites = await currentLsn(pg);
      assert.ok(afterWrites > start, `${afterWrites} > ${start}`);
      await waitFor("the slot to advance past the uncaptured writes", async () => (await confirmedFlush(pg, slot)) >= afterWrites, 20_000);
      const landed = (await readLanding(dir)).flatMap((f) => f.records);
      assert.deepEqual(landed.map((r) => r.__op), ["b"], "heartbeats land nothing (the one record is the empty table's snapshot barrier)");
    } finally {
      await engine.stop();
    }
  });

  it("waits for a slot that another consumer holds, then takes over", async () => {
    await pg.query("CREATE TABLE public.shared (id int PRIMARY KEY)");
    const dir = await landingDir();
    const env = engineEnv(pg, dir, { TABLE_INCLUDE: "public.shared", PG_SLOT: "shared_slot", PG_PUBLICATION: "shared_pub" });
    const first = startEngine(env);
    await waitFor("first streaming", async () => first.metrics.phases.includes("streaming"));
    const second = startEngine(env);
    try {
      await waitFor("second waiting for the slot", async () => second.metrics.phases.includes("waiting_for_slot"));
      assert.ok(!second.metrics.phases.includes("streaming"));
      await first.stop();
      await waitFor("second streaming", async () => second.metrics.phases.includes("streaming"), 30_000);
      await pg.query("INSERT INTO public.shared VALUES (1)");
      await waitFor("the change via the second instance", async () => (await readRecords(dir, "public.shared")).length === 1);
    } finally {
      await first.stop();
      await second.stop();
    }
  });
});
