/**
 * A partitioned table is captured as one table under its parent's name: the snapshot reads it
 * through the parent, the stream (publish_via_partition_root) sends its changes under the parent,
 * and an UPDATE that moves a row to another partition lands as the key change it is.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../../container/src/config";
import { inspectSource } from "../../container/src/source/setup";
import { engineEnv, streamingEngine, waitForRecords } from "./fixtures/harness";
import { columnsOf, readLanding, rebuildTable } from "./fixtures/landing";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { requestedPgMajor } from "../support/postgres-majors";

const PARTITIONED = `
  CREATE TABLE public.events (region text, id int, v text, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
  CREATE TABLE public.events_eu PARTITION OF public.events FOR VALUES IN ('eu');
  CREATE TABLE public.events_us PARTITION OF public.events FOR VALUES IN ('us');
  INSERT INTO public.events VALUES ('eu', 1, 'a'), ('us', 2, 'b');
`;

describe("engine: partitioned tables", function () {
  this.timeout(120_000);
  before(function () {
    // Publications hold partitioned tables from PostgreSQL 13 on; before, see the next describe.
    if (requestedPgMajor() < 13) this.skip();
  });
  const ctx = streamingEngine(
    (pg) => pg.query(PARTITIONED),
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

  it("refuses to capture a partition whose changes stream under its published parent, naming the fix", async () => {
    const problems = async (env: Record<string, string>) => {
      const client = await ctx.pg.connect();
      try {
        return (await inspectSource(loadConfig(engineEnv(ctx.pg, ctx.dir, env)), client)).filter((c) => !c.ok);
      } finally {
        await client.end();
      }
    };
    const detail = "is a partition of public.events, which the publication publishes with publish_via_partition_root, so its changes stream as public.events and none would land under public.events_eu";
    assert.deepEqual(await problems({ TABLE_INCLUDE: "public.events_eu", PG_PUBLICATION: "part_pub", PG_SLOT: "other_slot" }), [
      { name: "partition public.events_eu", ok: false, detail, fix: "capture public.events instead: put it in TABLE_INCLUDE in place of public.events_eu (the partition's rows land under public.events)" },
    ]);
    assert.deepEqual(await problems({ TABLE_INCLUDE: "public.events,public.events_eu", PG_PUBLICATION: "new_pub", PG_SLOT: "other_slot" }), [
      { name: "partition public.events_eu", ok: false, detail, fix: "remove public.events_eu from TABLE_INCLUDE: its rows already land under public.events" },
    ]);
    // A partition on its own, in a publication without its parent, streams under its own name: fine.
    assert.deepEqual(await problems({ TABLE_INCLUDE: "public.events_eu", PG_PUBLICATION: "new_pub", PG_SLOT: "other_slot" }), []);
  });
});

describe("engine: partitioned tables before PostgreSQL 13", function () {
  this.timeout(120_000);
  let pg: TestPostgres;
  before(async function () {
    if (requestedPgMajor() >= 13) this.skip(); // 13+ publishes them: covered above
    pg = await startPostgres();
    await pg.query(PARTITIONED);
  });
  after(async () => pg?.stop());

  it("refuses the parent with one message naming the version and the fix; its partitions are captured", async () => {
    const client = await pg.connect();
    try {
      const problems = async (env: Record<string, string>) => (await inspectSource(loadConfig(engineEnv(pg, "/tmp/unused", env)), client)).filter((c) => !c.ok);
      const [problem, ...rest] = await problems({ TABLE_INCLUDE: "public.events", PG_PUBLICATION: "part_pub", PG_SLOT: "part_slot" });
      assert.deepEqual(rest, []);
      assert.equal(problem.name, "partitioned tables");
      assert.match(problem.detail, /^PostgreSQL 1[12] cannot publish a partitioned table \(publications hold them from 13 on\), so public\.events cannot be captured as one table$/);
      assert.match(problem.fix!, /capture the partitions instead, each under its own name: put them in TABLE_INCLUDE in place of public\.events .*or upgrade the server to PostgreSQL 13 or later/);
      assert.deepEqual(await problems({ TABLE_INCLUDE: "public.events_eu,public.events_us", PG_PUBLICATION: "part_pub", PG_SLOT: "part_slot" }), []);
    } finally {
      await client.end();
    }
  });
});
