import assert from "node:assert/strict";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { engineEnv, landingDir, startEngine, waitFor } from "./fixtures/harness";
import { readRecords, rebuildTable } from "./fixtures/landing";

describe("engine: snapshot then streaming", function () {
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
      await waitFor("snapshot", async () => (await readRecords(dir, "public.items")).length >= 100);
      await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"));
      await pg.query("INSERT INTO public.items VALUES (101, 'new', 1)");
      await pg.query("UPDATE public.items SET qty = 0 WHERE id = 5");
      await pg.query("DELETE FROM public.items WHERE id = 7");
      await waitFor("changes", async () => (await readRecords(dir, "public.items")).length >= 103);
      const records = await readRecords(dir, "public.items");
      assert.deepEqual(records.slice(0, 100).map((r) => r.__op), Array(100).fill("r"));
      assert.deepEqual(records.slice(100).map((r) => r.__op), ["c", "u", "d"]);
      assert.deepEqual(records[102], { __op: "d", __deleted: "true", __lsn: records[102].__lsn, __seq: 0, __ts_ms: records[102].__ts_ms, id: 7 });
      const rebuilt = await rebuildTable(dir, "public.items", ["id"]);
      assert.equal(rebuilt.size, 100);
      assert.deepEqual(rebuilt.get("[5]"), { id: 5, name: "item 5", qty: 0 });
    } finally {
      await engine.stop();
    }
  });
});
