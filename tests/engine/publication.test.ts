/**
 * A publication's column list and row filter (PostgreSQL 15+) decide what is captured: columns or
 * rows deliberately left out must not land, neither from the stream nor from the snapshot.
 */
import assert from "node:assert/strict";
import { engineEnv, streamingEngine, waitFor, waitForRecords } from "./fixtures/harness";
import { columnsOf } from "./fixtures/landing";
import { requestedPgMajor } from "../support/postgres-majors";

describe("engine: publication column lists and row filters", function () {
  this.timeout(120_000);
  before(function () {
    // Column lists and row filters came in PostgreSQL 15; older servers reject the publication.
    if (requestedPgMajor() < 15) this.skip();
  });
  const ctx = streamingEngine(
    (pg) =>
      pg.query(`
        CREATE TABLE public.people ("Region" text, id int, name text, secret text, PRIMARY KEY ("Region", id));
        INSERT INTO public.people VALUES ('eu', 1, 'ada', 's1'), ('us', 2, 'bob', 's2'), ('eu', 3, 'cy', 's3');
        CREATE PUBLICATION filtered_pub FOR TABLE public.people ("Region", id, name) WHERE ("Region" = 'eu');
      `),
    // TABLE_INCLUDE names it too: the engine must keep the publication's list and filter, not add the whole table.
    (pg, dir) => engineEnv(pg, dir, { TABLE_INCLUDE: "public.people", PG_SLOT: "filtered_slot", PG_PUBLICATION: "filtered_pub" }),
  );

  it("lands only the published columns and rows, from the snapshot and from the stream", async () => {
    await ctx.pg.query("INSERT INTO public.people VALUES ('us', 4, 'dee', 's4'), ('eu', 5, 'eve', 's5')");
    await ctx.pg.query("UPDATE public.people SET name = 'ada2', secret = 'x' WHERE id = 1");
    await ctx.pg.query("UPDATE public.people SET name = 'bob2' WHERE id = 2");
    // Rows moving out of and into the filter: PostgreSQL sends a delete and an insert.
    await ctx.pg.query(`UPDATE public.people SET "Region" = 'us' WHERE id = 3`);
    await ctx.pg.query(`UPDATE public.people SET "Region" = 'eu', name = 'dee2' WHERE id = 4`);
    // The last change is published: once it has landed, everything before it has too.
    await ctx.pg.query("INSERT INTO public.people VALUES ('eu', 6, 'fay', 's6')");
    const all = await waitFor("the last published insert", async () => {
      const r = await waitForRecords(ctx.dir, "public.people", 5);
      return r.some((x) => x.id === 6) && r;
    });
    assert.deepEqual(
      all.map((r) => [r.__op, columnsOf(r)]),
      [
        ["r", { Region: "eu", id: 1, name: "ada" }],
        ["r", { Region: "eu", id: 3, name: "cy" }],
        ["c", { Region: "eu", id: 5, name: "eve" }],
        ["u", { Region: "eu", id: 1, name: "ada2" }],
        ["d", { Region: "eu", id: 3 }],
        ["c", { Region: "eu", id: 4, name: "dee2" }],
        ["c", { Region: "eu", id: 6, name: "fay" }],
      ],
    );
  });
});
