/**
 * Row images that are easy to get subtly wrong: stored generated columns (snapshot and stream must
 * land the same columns, whatever the server version publishes) and keyless REPLICA IDENTITY FULL
 * tables (an update must keep its before-image, since the whole row is the key).
 */
import assert from "node:assert/strict";
import { engineEnv, streamingEngine, waitForRecords } from "./fixtures/harness";
import { columnsOf, rebuildTable } from "./fixtures/landing";

describe("engine: generated columns and keyless REPLICA IDENTITY FULL tables", function () {
  this.timeout(120_000);
  let versionNum = 0;
  const ctx = streamingEngine(
    async (pg) => {
      versionNum = Number((await pg.query<{ v: string }>("SELECT current_setting('server_version_num') AS v"))[0].v);
      // Generated columns came in PostgreSQL 12: on 11 only the keyless table is tested.
      const gen = versionNum >= 120000;
      if (gen) await pg.query("CREATE TABLE public.gen (id int PRIMARY KEY, a int, g int GENERATED ALWAYS AS (a * 2) STORED); INSERT INTO public.gen (id, a) VALUES (1, 10)");
      await pg.query(`
        CREATE TABLE public.keyless (a int, b text, big text);
        ALTER TABLE public.keyless REPLICA IDENTITY FULL;
        INSERT INTO public.keyless SELECT 1, 'x', string_agg(md5(g::text), '') FROM generate_series(1, 4000) g;
        INSERT INTO public.keyless VALUES (2, 'y', 'small');
      `);
      // PostgreSQL 18 can publish stored generated columns; before it, pgoutput never sends them.
      const generated = versionNum >= 180000 ? " WITH (publish_generated_columns = stored)" : "";
      await pg.query(`CREATE PUBLICATION rows_pub FOR TABLE ${gen ? "public.gen, " : ""}public.keyless${generated}`);
    },
    (pg, dir) => engineEnv(pg, dir, { PG_SLOT: "rows_slot", PG_PUBLICATION: "rows_pub" }),
  );

  it("lands the same columns of a table with a stored generated column from the snapshot and the stream", async function () {
    if (versionNum < 120000) this.skip(); // no generated columns before 12
    await ctx.pg.query("INSERT INTO public.gen (id, a) VALUES (2, 20)");
    await ctx.pg.query("UPDATE public.gen SET a = 11 WHERE id = 1");
    const records = await waitForRecords(ctx.dir, "public.gen", 3);
    const published = versionNum >= 180000;
    assert.deepEqual(
      records.map((r) => [r.__op, columnsOf(r)]),
      [
        ["r", { id: 1, a: 10, ...(published ? { g: 20 } : {}) }],
        ["c", { id: 2, a: 20, ...(published ? { g: 40 } : {}) }],
        ["u", { id: 1, a: 11, ...(published ? { g: 22 } : {}) }],
      ],
    );
  });

  it("keeps the before-image of an update to a keyless REPLICA IDENTITY FULL table: a delete of the old row, an insert of the new", async () => {
    await ctx.pg.query("UPDATE public.keyless SET b = 'x2' WHERE a = 1"); // big is TOASTed and unchanged
    await ctx.pg.query("UPDATE public.keyless SET b = 'y2' WHERE a = 2");
    await ctx.pg.query("DELETE FROM public.keyless WHERE a = 2");
    const records = await waitForRecords(ctx.dir, "public.keyless", 7);
    const big = (await ctx.pg.query<{ big: string }>("SELECT big FROM public.keyless WHERE a = 1"))[0].big;
    assert.deepEqual(
      records.map((r) => [r.__op, columnsOf(r)]),
      [
        ["r", { a: 1, b: "x", big }],
        ["r", { a: 2, b: "y", big: "small" }],
        ["d", { a: 1, b: "x", big }],
        ["c", { a: 1, b: "x2", big }],
        ["d", { a: 2, b: "y", big: "small" }],
        ["c", { a: 2, b: "y2", big: "small" }],
        ["d", { a: 2, b: "y2", big: "small" }],
      ],
    );
    // A MERGE on the whole row (the only key such a table has) ends up exact.
    const rebuilt = await rebuildTable(ctx.dir, "public.keyless", ["a", "b", "big"]);
    assert.deepEqual([...rebuilt.values()], [{ a: 1, b: "x2", big }]);
  });
});
