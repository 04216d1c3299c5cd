/**
 * HEARTBEAT_INTERVAL_MS=0 with the captured tables idle while the rest of the database writes:
 * the slot still advances, confirmed from the server's keepalives once everything received is
 * durable, so PostgreSQL does not retain WAL for ever.
 */
import assert from "node:assert/strict";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { confirmedFlush, currentLsn, engineEnv, landingDir, waitFor, waitForRecords } from "./fixtures/harness";
import { readRecords } from "./fixtures/landing";
import { startLoggedEngine } from "./fixtures/logged-engine";

describe("engine: an idle slot without heartbeats", function () {
  this.timeout(60_000);
  let pg: TestPostgres;
  before(async () => {
    // A short wal_sender_timeout makes the engine ask for keepalives every 1.25 s instead of 10 s.
    pg = await startPostgres({ settings: { wal_sender_timeout: "5s" } });
    await pg.query("CREATE TABLE public.captured (id int PRIMARY KEY); CREATE TABLE public.busy (id int PRIMARY KEY, v text)");
  });
  after(async () => {
    await pg?.stop();
  });

  it("advances confirmed_flush_lsn from keepalives while only other tables write", async () => {
    const dir = await landingDir();
    const engine = startLoggedEngine(engineEnv(pg, dir, { TABLE_INCLUDE: "public.captured", PG_SLOT: "idle_slot", PG_PUBLICATION: "idle_pub", HEARTBEAT_INTERVAL_MS: "0" }));
    try {
      await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"));
      await pg.query("INSERT INTO public.captured VALUES (1)");
      await waitForRecords(dir, "public.captured", 1);
      await pg.query("INSERT INTO public.busy SELECT g, repeat('x', 200) FROM generate_series(1, 5000) g");
      const after = await currentLsn(pg);
      await waitFor("the slot past the other table's writes", async () => (await confirmedFlush(pg, "idle_slot")) >= after, 30_000);
      assert.deepEqual((await readRecords(dir, "public.captured")).map((r) => r.id), [1], "nothing else landed");
      // Still exact afterwards: a captured change after the keepalive-confirmed position lands.
      await pg.query("INSERT INTO public.captured VALUES (2)");
      await waitFor("the next captured change", async () => (await readRecords(dir, "public.captured")).some((r) => r.id === 2));
    } finally {
      await engine.stop();
    }
  });
});
