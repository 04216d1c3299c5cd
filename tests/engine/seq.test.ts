/**
 * `__seq` depends on the transaction alone (the changes' WAL positions), never on configuration:
 * two engines capturing different table sets number the same change the same way, so a replay
 * after TABLE_INCLUDE changed skips exactly the events that are already durable.
 */
import assert from "node:assert/strict";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { engineEnv, landingDir, startEngine, waitFor, waitForRecords } from "./fixtures/harness";

describe("engine: __seq from the transaction alone", function () {
  this.timeout(120_000);
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
    await pg.query("CREATE TABLE public.seq_a (id int PRIMARY KEY, v text); CREATE TABLE public.seq_b (id int PRIMARY KEY, v text)");
  });
  after(async () => {
    await pg?.stop();
  });

  it("numbers a change the same whichever tables are captured, and keeps the order of the transaction", async () => {
    const both = await landingDir();
    const onlyA = await landingDir();
    const engines = [
      startEngine(engineEnv(pg, both, { TABLE_INCLUDE: "public.seq_a,public.seq_b", PG_SLOT: "seq_both", PG_PUBLICATION: "seq_both_pub" })),
      startEngine(engineEnv(pg, onlyA, { TABLE_INCLUDE: "public.seq_a", PG_SLOT: "seq_a_only", PG_PUBLICATION: "seq_a_pub" })),
    ];
    try {
      for (const e of engines) await waitFor("streaming", async () => e.metrics.phases.includes("streaming"));
      // One transaction: changes to b, then a, then b and a again, and a key change of a.
      await pg.query(`BEGIN;
        INSERT INTO public.seq_b VALUES (1, 'b1'); INSERT INTO public.seq_a VALUES (1, 'a1');
        INSERT INTO public.seq_b VALUES (2, 'b2'); UPDATE public.seq_a SET id = 2 WHERE id = 1; INSERT INTO public.seq_a VALUES (3, 'a3');
        COMMIT`);
      const fromBoth = (await waitForRecords(both, "public.seq_a", 4)).map((r) => [r.__op, r.id, r.__lsn, r.__seq]);
      const fromA = (await waitForRecords(onlyA, "public.seq_a", 4)).map((r) => [r.__op, r.id, r.__lsn, r.__seq]);
      assert.deepEqual(fromA, fromBoth, "the same (__lsn, __seq) for the same changes");
      assert.deepEqual(fromBoth.map((r) => [r[0], r[1]]), [["c", 1], ["d", 1], ["c", 2], ["c", 3]]);
      const b = await waitForRecords(both, "public.seq_b", 2);
      const order = [...b, ...(await waitForRecords(both, "public.seq_a", 4))].sort((x, y) => x.__seq - y.__seq).map((r) => `${r.__op}${r.v ?? ""}`);
      assert.deepEqual(order.filter((o) => o !== "d"), ["cb1", "ca1", "cb2", "ca1", "ca3"], "__seq follows the transaction's own order");
    } finally {
      for (const e of engines) await e.stop();
    }
  });
});
