/**
 * Slots the engine does not own (issue 10, item 4), against the real PostgreSQL: a slot this sink's
 * engine did not create is never used or dropped (two deployments with the same PG_SLOT and
 * different sinks); the ownership claim is written before the slot is created, so a crash between
 * the two recovers; with SNAPSHOT_MODE=never a slot that is gone is fatal, with instructions.
 */
import assert from "node:assert/strict";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { EngineState } from "../../container/src/batching/state";
import { FileSink } from "../../container/src/sink/file";
import { engineEnv, landingDir, startEngine, waitFor, waitForRecords } from "./fixtures/harness";
import { readRecords } from "./fixtures/landing";

describe("engine: replication slots it does not own", function () {
  this.timeout(120_000);
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
    await pg.query("CREATE TABLE public.owned (id int PRIMARY KEY, v text); INSERT INTO public.owned SELECT g, 'v' || g FROM generate_series(1, 20) g");
  });
  after(async () => {
    await pg?.stop();
  });

  const slotRow = async (slot: string) =>
    (await pg.query<{ active_pid: number | null; confirmed: string }>("SELECT active_pid, confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1", [slot]))[0];

  it("two deployments with the same PG_SLOT and different sinks: the second refuses with the conflict and the fix, and the first's slot is untouched", async () => {
    const slot = "shared_slot";
    const firstDir = await landingDir();
    const secondDir = await landingDir();
    const env = (dir: string) => engineEnv(pg, dir, { TABLE_INCLUDE: "public.owned", PG_SLOT: slot, PG_PUBLICATION: "owned_pub" });
    const first = startEngine(env(firstDir));
    try {
      await waitFor("the first engine streams", async () => first.metrics.phases.includes("streaming"));
      await waitForRecords(firstDir, "public.owned", 20);
      const before = await slotRow(slot);
      assert.ok(before.active_pid, "the first engine holds the slot");

      const second = startEngine(env(secondDir));
      await assert.rejects(second.done, (err: Error) => {
        assert.equal(err.name, "SourceSetupError");
        assert.match(err.message, new RegExp(`slot ${slot} on database postgres exists, but the sink file://${secondDir} has no record of creating it`));
        // The first engine's sink as its application_name holds it: cut at 63 bytes, and then marked so.
        const named = `cdc-engine replication file://${firstDir}`;
        const shown = named.length > 63 ? `${named.slice(23, 63)}… (cut: application_name holds 63 bytes)` : named.slice(23);
        assert.ok(err.message.includes(`in use by PID ${before.active_pid} from `), err.message);
        assert.ok(err.message.includes(` — the engine streaming from it writes to ${shown}`), err.message);
        assert.match(err.message, /The engine never uses or drops a slot it did not create — fix: give this deployment its own slot \(PG_SLOT=/);
        return true;
      });
      assert.equal((await slotRow(slot))?.active_pid, before.active_pid, "the first engine's slot is untouched, still held by it");
      assert.deepEqual(await readRecords(secondDir, "public.owned"), [], "the second engine landed nothing");

      // The first engine goes on streaming.
      await pg.query("INSERT INTO public.owned VALUES (21, 'after the refusal')");
      const records = await waitForRecords(firstDir, "public.owned", 21);
      assert.equal(records.at(-1)!.v, "after the refusal");
      await first.stop();

      // Also while the slot is idle: still refused, still there.
      const idle = await slotRow(slot);
      assert.equal(idle.active_pid, null);
      const again = startEngine(env(secondDir));
      await assert.rejects(again.done, /has no record of creating it .*; it is not in use right now \(confirmed up to /s);
      assert.deepEqual(await slotRow(slot), idle);
    } finally {
      await first.stop();
      await pg.query("SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", [slot]);
    }
  });

  for (const slotCreated of [false, true]) {
    it(`a crash between the ownership claim and the slot's creation recovers (${slotCreated ? "the slot was created" : "the slot was not created yet"})`, async () => {
      const slot = slotCreated ? "claimed_made_slot" : "claimed_slot";
      const dir = await landingDir();
      // What the engine leaves when killed right after its claim (and, maybe, the slot's creation).
      const state = await EngineState.load(new FileSink(`file://${dir}`, dir), slot);
      state.snapshot = { consistentPoint: "pending", done: false, files: [] };
      state.slotOwner = { slot, database: "postgres", status: "creating", since: new Date().toISOString() };
      await state.save([]);
      if (slotCreated) await pg.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot]);

      const engine = startEngine(engineEnv(pg, dir, { TABLE_INCLUDE: "public.owned", PG_SLOT: slot, PG_PUBLICATION: "owned_pub" }));
      try {
        await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"));
        const rows = await pg.query<{ n: number }>("SELECT count(*)::int AS n FROM public.owned");
        const records = await waitForRecords(dir, "public.owned", rows[0].n);
        assert.ok(records.some((r) => r.__op === "r"), "the snapshot was taken");
        const reread = await EngineState.open(new FileSink(`file://${dir}`, dir), slot);
        assert.equal(reread.slotOwner?.status, "created");
        assert.equal(reread.snapshot?.done, true);
      } finally {
        await engine.stop();
        // The walsender ends a moment after the engine closed its connection (seen on 12).
        await waitFor("the slot released", async () => (await pg.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", [slot])).length > 0);
        await pg.query("SELECT pg_drop_replication_slot($1)", [slot]);
      }
    });
  }

  it("SNAPSHOT_MODE=never: a slot that is gone is fatal with instructions, never silently re-created", async () => {
    const slot = "never_slot";
    const dir = await landingDir();
    const env = engineEnv(pg, dir, { TABLE_INCLUDE: "public.owned", PG_SLOT: slot, PG_PUBLICATION: "owned_pub", SNAPSHOT_MODE: "never" });
    const first = startEngine(env);
    await waitFor("streaming", async () => first.metrics.phases.includes("streaming"));
    await first.stop();
    await pg.query("SELECT pg_drop_replication_slot($1)", [slot]);

    const second = startEngine(env);
    await assert.rejects(second.done, (err: Error) => {
      assert.equal(err.name, "SourceSetupError");
      assert.match(err.message, new RegExp(`slot ${slot} on database postgres, which this engine created for file://${dir}, no longer exists`));
      assert.match(err.message, /with SNAPSHOT_MODE=never the engine does not re-create it/);
      assert.match(err.message, new RegExp(`fix: set SNAPSHOT_MODE=initial once .*; or, to accept the gap, delete the state object file://${dir}/_cdc_state/${slot}.json`));
      return true;
    });
    assert.equal(await slotRow(slot), undefined, "the slot was not re-created");
  });

  it("a slot PostgreSQL invalidated is refused with the choice between a new snapshot and accepting the gap", async function () {
    if (pg.versionNum < 130000) this.skip(); // max_slot_wal_keep_size, which invalidates slots, came in 13
    const slot = "invalidated_slot";
    const dir = await landingDir();
    const env = engineEnv(pg, dir, { TABLE_INCLUDE: "public.owned", PG_SLOT: slot, PG_PUBLICATION: "owned_pub", SNAPSHOT_MODE: "never" });
    const first = startEngine(env);
    await waitFor("streaming", async () => first.metrics.phases.includes("streaming"));
    await first.stop();
    // Let the checkpointer remove WAL the idle slot still needs.
    await pg.query("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'");
    await pg.query("SELECT pg_reload_conf()");
    try {
      await waitFor("the slot to be invalidated", async () => {
        await pg.query("INSERT INTO public.owned SELECT g, repeat('x', 200) FROM generate_series(1000, 3000) g ON CONFLICT (id) DO UPDATE SET v = excluded.v");
        await pg.query("SELECT pg_switch_wal()");
        await pg.query("CHECKPOINT");
        const rows = await pg.query<{ wal_status: string }>("SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1", [slot]);
        return rows[0]?.wal_status === "lost";
      }, 60_000, 200);
      const second = startEngine(env);
      await assert.rejects(second.done, (err: Error) => {
        assert.equal(err.name, "SourceSetupError");
        assert.match(err.message, /replication slot: invalidated_slot (was invalidated by PostgreSQL \(invalidation_reason=wal_removed\)|has lost WAL it still needed)/);
        assert.match(err.message, /with SNAPSHOT_MODE=never the engine then refuses to go on past the gap: run once with SNAPSHOT_MODE=initial \(a new snapshot\), or delete the sink's _cdc_state\/invalidated_slot\.json to accept the gap/);
        return true;
      });
      assert.equal((await slotRow(slot))?.active_pid, null, "the slot was left as it is");
    } finally {
      await pg.query("ALTER SYSTEM RESET max_slot_wal_keep_size");
      await pg.query("SELECT pg_reload_conf()");
      await pg.query("SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1", [slot]);
    }
  });

  it("a state written before ownership was recorded still owns its slot (and gets the record)", async () => {
    const slot = "legacy_slot";
    const dir = await landingDir();
    const env = engineEnv(pg, dir, { TABLE_INCLUDE: "public.owned", PG_SLOT: slot, PG_PUBLICATION: "owned_pub" });
    const first = startEngine(env);
    await waitFor("streaming", async () => first.metrics.phases.includes("streaming"));
    await first.stop();
    // Strip the record, as an older engine version wrote the state.
    const sink = new FileSink(`file://${dir}`, dir);
    const raw = JSON.parse(Buffer.from((await sink.get(EngineState.key(slot)))!).toString()) as Record<string, unknown>;
    delete raw.slotOwner;
    delete raw.epoch;
    await sink.put(EngineState.key(slot), Buffer.from(JSON.stringify(raw)));

    const second = startEngine(env);
    try {
      await waitFor("streaming again", async () => second.metrics.phases.includes("streaming"));
      assert.equal((await EngineState.open(sink, slot)).slotOwner?.status, "created");
    } finally {
      await second.stop();
      await pg.query("SELECT pg_drop_replication_slot($1)", [slot]);
    }
  });
});
