/**
 * Failover slots (PostgreSQL 17+, the suite's server): the engine creates its slot with FAILOVER
 * unless PG_SLOT_FAILOVER=false, makes an existing slot one, and doctor says whether the slot would
 * survive a failover (synchronized_standby_slots and a standby's physical slot).
 */
import assert from "node:assert/strict";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { loadConfig } from "../../container/src/config";
import { inspectSource } from "../../container/src/source/setup";
import { engineEnv, landingDir, waitFor } from "./fixtures/harness";
import { startLoggedEngine } from "./fixtures/logged-engine";

describe("engine: failover slots", function () {
  this.timeout(60_000);
  let pg: TestPostgres;
  let versionNum = 0;
  before(async function () {
    pg = await startPostgres();
    versionNum = Number((await pg.query<{ v: string }>("SHOW server_version_num"))[0].v);
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
