/**
 * A partitioned table is captured as one table under its parent's name: the snapshot reads it
 * through the parent, the stream (publish_via_partition_root) sends its changes under the parent,
 * and an UPDATE that moves a row to another partition lands as the key change it is.
 */
import assert from "node:assert/strict";
import { engineEnv, streamingEngine, waitForRecords } from "./fixtures/harness";
import { columnsOf, readLanding, rebuildTable } from "./fixtures/landing";

describe("engine: partitioned tables", function () {
  this.timeout(120_000);
  const ctx = streamingEngine(
    (pg) =>
      pg.query(`
        CREATE TABLE public.events (region text, id int, v text, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
        CREATE TABLE public.events_eu PARTITION OF public.events FOR VALUES IN ('eu');
        CREATE TABLE public.events_us PARTITION OF public.events FOR VALUES IN ('us');
        INSERT INTO public.events VALUES ('eu', 1, 'a'), ('us', 2, 'b');
      `),
    (pg, dir) => engineEnv(pg, dir, { TABLE_INCLUDE: "public.events", PG_SLOT: "part_slot", PG_PUBLICATION: "part_pub" }),
  );

  it("snapshots and streams it under the parent's name, moves between partitions included", async () => {
    await ctx.pg.query("INSERT INTO public.events VALUES ('eu', 3, 'c')");
    await ctx.pg.query("UPDATE public.events SET v = 'a2' WHERE id = 1");
    await ctx.pg.query("UPDATE public.events SET region = 'us', v = 'moved' WHERE id = 3"); // events_eu → events_us
    await ctx.pg.query("DELETE FROM public.events WHERE id = 2");
    const records = await waitForRecords(ctx.dir, "public.events", 7);
    assert.deepEqual(
      records.map((r) => [r.__op, columnsOf(r)]),
      [
        ["r", { region: "eu", id: 1, v: "a" }],
        ["r", { region: "us", id: 2, v: "b" }],
        ["c", { region: "eu", id: 3, v: "c" }],
        ["u", { region: "eu", id: 1, v: "a2" }],
        ["d", { region: "eu", id: 3 }],
        ["c", { region: "us", id: 3, v: "moved" }],
        ["d", { region: "us", id: 2 }],
      ],
    );
    const [del, ins] = records.slice(4, 6);
    assert.equal(del.__lsn, ins.__lsn, "the move is one transaction");
    const landed = await readLanding(ctx.dir);
    assert.deepEqual([...new Set(landed.map((f) => f.key.split("/")[0]))], ["cdc.public.events"], "nothing lands under the partitions' names");
    const rebuilt = await rebuildTable(ctx.dir, "public.events", ["region", "id"]);
    const source = await ctx.pg.query<Record<string, unknown>>("SELECT region, id, v FROM public.events ORDER BY region, id");
    assert.deepEqual([...rebuilt.values()].sort((a, b) => Number(a.id) - Number(b.id)), source.sort((a, b) => Number(a.id) - Number(b.id)));
  });
});
