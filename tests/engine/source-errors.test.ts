/**
 * Failures retrying cannot fix stop the engine with one message naming the cause and the fix,
 * instead of reconnecting for ever; transient ones are retried (robustness.test.ts).
 */
import assert from "node:assert/strict";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { SourcePermanentError } from "../../container/src/source/errors";
import { engineEnv, landingDir, waitFor, waitForRecords } from "./fixtures/harness";
import { startLoggedEngine } from "./fixtures/logged-engine";

describe("engine: permanent source errors", function () {
  this.timeout(60_000);
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
    await pg.query("CREATE TABLE public.p (id int PRIMARY KEY, v text)");
  });
  after(async () => {
    await pg?.stop();
  });

  it("stops once with the cause and the fix when the publication is dropped and created again while streaming", async () => {
    const dir = await landingDir();
    const engine = startLoggedEngine(engineEnv(pg, dir, { TABLE_INCLUDE: "public.p", PG_SLOT: "recreated_slot", PG_PUBLICATION: "recreated_pub" }));
    try {
      await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"));
      await pg.query("INSERT INTO public.p VALUES (1, 'before')");
      await waitForRecords(dir, "public.p", 1);
      // The insert between the two is decoded with the catalog as of its commit, where no publication exists.
      await pg.query("DROP PUBLICATION recreated_pub");
      await pg.query("INSERT INTO public.p VALUES (2, 'while missing')");
      await pg.query("CREATE PUBLICATION recreated_pub FOR TABLE public.p");
      await pg.query("INSERT INTO public.p VALUES (3, 'after')");
      await assert.rejects(engine.done, (err: unknown) => {
        assert.ok(err instanceof SourcePermanentError, `a SourcePermanentError, got ${String(err)}`);
        assert.match(err.message, /publication "recreated_pub" does not exist/);
        assert.match(err.message, /dropped \(perhaps dropped and created again\)/);
        assert.match(err.message, /fix: drop the slot .*pg_drop_replication_slot\('recreated_slot'\)/);
        assert.match(err.message, /ALTER PUBLICATION/);
        return true;
      });
      assert.equal(engine.metrics.phases.filter((p) => p === "streaming").length, 1, "no reconnect: one streaming session");
      assert.deepEqual(engine.said(/reconnecting/).map((l) => l.msg), [], "not retried");
      // Nothing after the failure was confirmed: the slot still stands before the failed change.
      const slot = await pg.query<{ confirmed: string }>("SELECT confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = 'recreated_slot'");
      assert.equal(slot.length, 1, "the slot is kept for the operator to decide");
    } finally {
      await engine.stop().catch(() => undefined);
    }
  });

  it("stops at once on wrong credentials, naming the variables to check", async () => {
    const dir = await landingDir();
    const engine = startLoggedEngine(engineEnv(pg, dir, { TABLE_INCLUDE: "public.p", PG_SLOT: "creds_slot", PG_PASSWORD: "wrong" }));
    await assert.rejects(engine.done, (err: unknown) => err instanceof SourcePermanentError && /rejected the credentials of PG_USER=postgres/.test(err.message) && /fix: check PG_USER and PG_PASSWORD/.test(err.message));
    assert.deepEqual(engine.said(/reconnecting/).map((l) => l.msg), []);
  });
});
