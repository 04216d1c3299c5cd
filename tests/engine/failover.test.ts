/**
 * Failover slots (PostgreSQL 17+, the suite's server): the engine creates its slot with FAILOVER
 * unless PG_SLOT_FAILOVER=false, makes an existing slot one, and doctor says whether the slot would
 * survive a failover (synchronized_standby_slots and a standby's physical slot). A slot that is
 * gone is told apart as lost in a failover by the server's timeline, on every version.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { loadConfig } from "../../container/src/config";
import { inspectSource } from "../../container/src/source/setup";
import { slotLossCause } from "../../container/src/source/failover";
import { engineEnv, landingDir, waitFor } from "./fixtures/harness";
import { startLoggedEngine } from "./fixtures/logged-engine";

describe("engine: failover slots", function () {
  this.timeout(60_000);
  let pg: TestPostgres;
  let versionNum = 0;
  before(async function () {
    pg = await startPostgres();
    versionNum = pg.versionNum;
    await pg.query("CREATE TABLE public.f (id int PRIMARY KEY)");
  });
  after(async () => {
    await pg?.stop();
  });

  const failoverOf = async (slot: string) => (await pg.query<{ failover: boolean }>("SELECT failover FROM pg_replication_slots WHERE slot_name = $1", [slot]))[0]?.failover;
  const streamOnce = async (env: Record<string, string>) => {
    const engine = startLoggedEngine(env);
    try {
      await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"));
    } finally {
      await engine.stop();
    }
    return engine;
  };

  it("creates the slot as a failover slot by default, and not with PG_SLOT_FAILOVER=false", async function () {
    if (versionNum < 170000) this.skip();
    const dir = await landingDir();
    await streamOnce(engineEnv(pg, dir, { TABLE_INCLUDE: "public.f", PG_SLOT: "fo_slot", PG_PUBLICATION: "fo_pub" }));
    assert.equal(await failoverOf("fo_slot"), true);
    await streamOnce(engineEnv(pg, await landingDir(), { TABLE_INCLUDE: "public.f", PG_SLOT: "plain_slot", PG_PUBLICATION: "fo_pub", PG_SLOT_FAILOVER: "false" }));
    assert.equal(await failoverOf("plain_slot"), false);
  });

  it("makes an existing slot a failover slot", async function () {
    if (versionNum < 170000) this.skip();
    // The engine only takes slots it created for its sink (slot ownership): create it without FAILOVER first.
    const env = engineEnv(pg, await landingDir(), { TABLE_INCLUDE: "public.f", PG_SLOT: "old_slot", PG_PUBLICATION: "fo_pub", SNAPSHOT_MODE: "never" });
    await streamOnce({ ...env, PG_SLOT_FAILOVER: "false" });
    assert.equal(await failoverOf("old_slot"), false);
    const engine = await streamOnce(env);
    assert.equal(await failoverOf("old_slot"), true);
    assert.equal(engine.said(/made the replication slot a failover slot/).length, 1);
  });

  it("a slot that is gone: told apart as a failover by the server's timeline, with what a new snapshot costs (failover imitated: the state records an older timeline)", async () => {
    await pg.query("CREATE TABLE public.lost (id int PRIMARY KEY, v text); INSERT INTO public.lost SELECT g, repeat('x', 200) FROM generate_series(1, 3000) g; ANALYZE public.lost");
    const dir = await landingDir();
    const env = engineEnv(pg, dir, { TABLE_INCLUDE: "public.lost", PG_SLOT: "lost_slot", PG_PUBLICATION: "lost_pub" });
    const stateFile = path.join(dir, "_cdc_state", "lost_slot.json");
    const timelineNow = Number((await pg.query<{ t: string }>("SELECT timeline_id AS t FROM pg_control_checkpoint()"))[0].t);
    await streamOnce(env);
    const stored = JSON.parse(readFileSync(stateFile, "utf8"));
    assert.equal(stored.slotOwner.timeline, timelineNow, "the timeline the slot was created on is recorded");
    const dropSlot = () => pg.query("SELECT pg_drop_replication_slot('lost_slot')");

    // Dropped on the same timeline: the engine cannot tell dropped from lost, and says both.
    await dropSlot();
    let engine = await streamOnce(env);
    let [line] = engine.said(/is gone|did not survive a failover/);
    assert.match(line.msg, /^the replication slot lost_slot is gone: it was dropped outside the engine, or the server failed over to a standby that had no synchronized copy of it/);
    assert.match(line.msg, /a new snapshot costs about 3,000 rows \/ \d+\.\d MB \(estimate from pg_class\)$/);
    assert.equal(line.failover, false);

    // IMITATION of a promoted standby: the suite has none to promote, so the state says the slot was
    // created on an older timeline than the server's (a promotion always starts a higher one).
    await dropSlot();
    const state = JSON.parse(readFileSync(stateFile, "utf8"));
    state.slotOwner.timeline = timelineNow - 1;
    writeFileSync(stateFile, JSON.stringify(state));
    engine = await streamOnce(env);
    [line] = engine.said(/is gone|did not survive a failover/);
    assert.match(line.msg, new RegExp(`^the slot lost_slot did not survive a failover \\(not synchronized\\): this server is on timeline ${timelineNow}, the slot was created on timeline ${timelineNow - 1}`));
    assert.match(line.msg, /a new snapshot costs about 3,000 rows \/ \d+\.\d MB \(estimate from pg_class\)$/);
    assert.deepEqual([line.failover, line.estimatedRows], [true, 3000]);
    assert.equal(JSON.parse(readFileSync(stateFile, "utf8")).slotOwner.timeline, timelineNow, "the new slot records the timeline it was created on");
  });

  it("the slot-loss cause by timeline: later than recorded is a failover; not recorded (an older state) on timeline > 1 says so; otherwise dropped or lost alike", () => {
    assert.deepEqual(slotLossCause("s", 2, 3).failover, true);
    assert.equal(slotLossCause("s", 3, 3).failover, false);
    assert.match(slotLossCause("s", undefined, 4).text, /is gone: .*; this server is on timeline 4, so it was promoted or restored at some point, but the timeline the slot was created on is not recorded$/);
    assert.doesNotMatch(slotLossCause("s", undefined, 1).text, /timeline/);
  });

  it("doctor says whether the slot would survive a failover", async function () {
    if (versionNum < 170000) this.skip();
    const client = await pg.connect();
    try {
      const check = async (extra: Record<string, string> = {}) => {
        const config = loadConfig({ ...pg.env, SINK_URL: "file:///tmp/unused", TABLE_INCLUDE: "public.f", PG_PUBLICATION: "fo_pub", PG_SLOT: "fo_slot", ...extra });
        return (await inspectSource(config, client)).find((c) => c.name === "failover")!;
      };
      let c = await check();
      assert.equal(c.warning, true);
      assert.match(c.detail, /^fo_slot is a failover slot, but no standby streams from this server through a physical replication slot/);
      assert.match(c.fix!, /pg_create_physical_replication_slot.*sync_replication_slots = on.*synchronized_standby_slots/);

      await pg.query("SELECT pg_create_physical_replication_slot('standby1')");
      c = await check();
      assert.equal(c.warning, true);
      assert.match(c.detail, /synchronized_standby_slots is empty/);
      assert.match(c.fix!, /^ALTER SYSTEM SET synchronized_standby_slots = 'standby1'; SELECT pg_reload_conf\(\);/);

      // As the fix says (no engine streams now: with an absent standby listed, walsenders would wait for it).
      await pg.query("ALTER SYSTEM SET synchronized_standby_slots = 'standby1'");
      await pg.query("SELECT pg_reload_conf()");
      await waitFor("the reload", async () => (await pg.query<{ s: string }>("SELECT current_setting('synchronized_standby_slots') AS s"))[0].s === "standby1");
      c = await check();
      assert.equal(c.warning, undefined);
      assert.match(c.detail, /^fo_slot is a failover slot; synchronized_standby_slots = standby1/);

      c = await check({ PG_SLOT: "plain_slot", PG_SLOT_FAILOVER: "false" });
      assert.equal(c.warning, true);
      assert.match(c.detail, /PG_SLOT_FAILOVER=false/);
    } finally {
      await pg.query("ALTER SYSTEM RESET synchronized_standby_slots; SELECT pg_reload_conf()").catch(() => undefined);
      await client.end();
    }
  });
});
