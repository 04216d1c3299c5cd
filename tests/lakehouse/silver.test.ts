/**
 * Silver semantics on hand-written landing files, with the real DuckDB and the shared SQL.
 */
import assert from "node:assert/strict";
import { rm, writeFile, utimes } from "node:fs/promises";
import { join } from "node:path";
import { refresh } from "../../lakehouse/src/runner";
import { Duck } from "../../lakehouse/src/duck";
import { land, landManifest, rec, silverRows, tempDir } from "./helpers";

const T = "public.items";
const KEYS = { [T]: ["id"] };
const SILVER = "silver.public_items";

describe("lakehouse silver semantics (DuckDB, shared SQL)", function () {
  let root: string;
  let landing: string;
  let db: string;
  let n = 0;

  beforeEach(async () => {
    root = await tempDir("cdc-silver-");
    landing = join(root, `landing-${n}`);
    db = join(root, `lake-${n++}.duckdb`);
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const run = () => refresh({ landing, db, keys: KEYS, gold: false });
  const rows = () => silverRows(db, SILVER, "id");

  it("applies inserts, updates and deletes across batches; bronze keeps file and ingestion time", async () => {
    await land(landing, T, [rec("c", 100, 0, { id: 1, name: "a", qty: 1 }), rec("c", 100, 1, { id: 2, name: "b", qty: 2 })]);
    const first = await run();
    assert.equal(first.tables[0].newRecords, 2);
    await land(landing, T, [rec("u", 200, 0, { id: 1, name: "a2", qty: 10 }), rec("d", 200, 1, { id: 2 })]);
    await run();
    assert.deepEqual(await rows(), [{ id: "1", name: "a2", qty: "10" }]);
    const duck = await Duck.open(db);
    try {
      const bronze = await duck.all<{ n: string; files: string; ts: string }>(
        "SELECT count(*) AS n, count(DISTINCT __source_file) AS files, count(__ingested_at) AS ts FROM bronze.public_items",
      );
      assert.deepEqual(bronze, [{ n: "4", files: "2", ts: "4" }]);
      const state = await duck.all("SELECT id, __deleted, __lsn FROM silver.public_items__cdc_state ORDER BY id");
      assert.deepEqual(state, [{ id: "1", __deleted: false, __lsn: "200" }, { id: "2", __deleted: true, __lsn: "200" }]);
    } finally {
      duck.close();
    }
  });

  it("takes the latest of several changes to one key in one batch, ordered by (__lsn, __seq) not file order", async () => {
    await land(landing, T, [
      rec("u", 300, 2, { id: 1, name: "third", qty: 3 }),
      rec("c", 300, 0, { id: 1, name: "first", qty: 1 }),
      rec("u", 300, 1, { id: 1, name: "second", qty: 2 }),
      rec("c", 300, 3, { id: 2, name: "x", qty: 0 }),
      rec("d", 300, 4, { id: 2 }),
      rec("c", 301, 0, { id: 2, name: "again", qty: 5 }),
    ]);
    await run();
    assert.deepEqual(await rows(), [
      { id: "1", name: "third", qty: "3" },
      { id: "2", name: "again", qty: "5" },
    ]);
  });

  it("keeps tombstones: a late older change neither resurrects a deleted row nor regresses a newer one; re-insert after delete works", async () => {
    await land(landing, T, [rec("c", 100, 0, { id: 1, name: "a", qty: 1 }), rec("c", 100, 1, { id: 2, name: "b", qty: 2 })]);
    await land(landing, T, [rec("d", 300, 0, { id: 1 }), rec("u", 300, 1, { id: 2, name: "b3", qty: 3 })]);
    await run();
    // A late batch with older changes (e.g. a replay): must not win.
    await land(landing, T, [rec("u", 200, 0, { id: 1, name: "zombie", qty: 9 }), rec("u", 200, 1, { id: 2, name: "old", qty: 9 })]);
    await run();
    assert.deepEqual(await rows(), [{ id: "2", name: "b3", qty: "3" }]);
    await land(landing, T, [rec("c", 400, 0, { id: 1, name: "reborn", qty: 4 })]);
    await run();
    assert.deepEqual(await rows(), [
      { id: "1", name: "reborn", qty: "4" },
      { id: "2", name: "b3", qty: "3" },
    ]);
  });

  it("fills __unchanged columns from an earlier change in the same batch, else from silver", async () => {
    const doc = "x".repeat(5000);
    await land(landing, T, [
      rec("c", 100, 0, { id: 1, name: "a", qty: 1, doc }),
      rec("u", 100, 1, { id: 1, name: "a", qty: 2 }, ["doc"]),
      rec("c", 100, 2, { id: 2, name: "b", qty: 1, doc: "short" }),
    ]);
    await run();
    await land(landing, T, [rec("u", 200, 0, { id: 1, name: "a", qty: 3 }, ["doc"]), rec("u", 200, 1, { id: 2, name: "b", qty: 9, doc: null })]);
    await run();
    assert.deepEqual(await rows(), [
      { id: "1", name: "a", qty: "3", doc },
      { id: "2", name: "b", qty: "9", doc: null },
    ]);
  });

  it("fills an __unchanged column when the older change that set it arrives late", async () => {
    await land(landing, T, [rec("u", 200, 0, { id: 1, name: "a", qty: 2 }, ["doc"])]);
    await run();
    await land(landing, T, [rec("c", 100, 0, { id: 1, name: "a", qty: 1, doc: "big" })]);
    await run();
    assert.deepEqual(await rows(), [{ id: "1", name: "a", qty: "2", doc: "big" }]);
  });

  it("out of order: a late change that does not carry the column does not block the one that does", async () => {
    await land(landing, T, [rec("u", 300, 0, { id: 1, name: "a", qty: 3 }, ["doc"])]);
    await run();
    await land(landing, T, [rec("u", 200, 0, { id: 1, name: "a", qty: 2 }, ["doc"])]);
    await run();
    await land(landing, T, [rec("r", 100, 0, { id: 1, name: "a", qty: 1, doc: "from the snapshot" })]);
    await run();
    assert.deepEqual(await rows(), [{ id: "1", name: "a", qty: "3", doc: "from the snapshot" }]);
  });

  it("out of order: a value from an older change in the batch never replaces one set by a newer stored change", async () => {
    await land(landing, T, [rec("u", 200, 0, { id: 1, name: "a", qty: 2, doc: "newer" })]);
    await run();
    // Late: the insert (older than silver) and, in the same batch, an update newer than silver
    // that left doc unchanged: doc must stay "newer", not the insert's "older".
    await land(landing, T, [rec("c", 100, 0, { id: 1, name: "a", qty: 1, doc: "older" }), rec("u", 300, 0, { id: 1, name: "a", qty: 3 }, ["doc"])]);
    await run();
    assert.deepEqual(await rows(), [{ id: "1", name: "a", qty: "3", doc: "newer" }]);
  });

  it("empties the table on truncate, keeps changes after it, and ignores late changes from before it", async () => {
    await land(landing, T, [rec("c", 100, 0, { id: 1, name: "a", qty: 1 }), rec("c", 100, 1, { id: 2, name: "b", qty: 2 })]);
    await run();
    await land(landing, T, [rec("c", 300, 0, { id: 3, name: "c", qty: 3 }), rec("t", 300, 1), rec("c", 300, 2, { id: 4, name: "d", qty: 4 })]);
    await run();
    assert.deepEqual(await rows(), [{ id: "4", name: "d", qty: "4" }]);
    await land(landing, T, [rec("u", 200, 0, { id: 1, name: "late", qty: 7 }), rec("c", 200, 1, { id: 5, name: "late", qty: 5 })]);
    await run();
    assert.deepEqual(await rows(), [{ id: "4", name: "d", qty: "4" }]);
  });

  it("handles a first batch that holds only a truncate, and late changes from before it", async () => {
    // The engine writes the table's manifest before its first record, a truncate included.
    await landManifest(landing, T, [["id", "BIGINT"], ["name", "STRING"], ["qty", "BIGINT"]], { key: ["id"] });
    await land(landing, T, [rec("t", 300, 0)]);
    await run();
    assert.deepEqual(await rows(), []);
    await land(landing, T, [rec("c", 100, 0, { id: 1, name: "before", qty: 1 }), rec("c", 400, 0, { id: 2, name: "after", qty: 2 })]);
    await run();
    assert.deepEqual(await rows(), [{ id: "2", name: "after", qty: "2" }]);
  });

  it("never lets snapshot rows (r) overwrite newer changes", async () => {
    await land(landing, T, [rec("u", 500, 0, { id: 1, name: "streamed", qty: 5 }), rec("d", 500, 1, { id: 2 })]);
    await run();
    await land(landing, T, [rec("r", 400, 0, { id: 1, name: "snap", qty: 1 }), rec("r", 400, 1, { id: 2, name: "snap", qty: 2 }), rec("r", 400, 2, { id: 3, name: "snap", qty: 3 })]);
    await run();
    assert.deepEqual(await rows(), [
      { id: "1", name: "streamed", qty: "5" },
      { id: "3", name: "snap", qty: "3" },
    ]);
  });

  it("adds new columns as they appear", async () => {
    await land(landing, T, [rec("c", 100, 0, { id: 1, name: "a", qty: 1 })]);
    await run();
    await land(landing, T, [rec("c", 200, 0, { id: 2, name: "b", qty: 2, color: null }), rec("c", 200, 1, { id: 3, name: "c", qty: 3, color: "red" })]);
    await run();
    await land(landing, T, [rec("u", 300, 0, { id: 1, name: "a", qty: 1, color: "blue", weight: 1.5 })]);
    await run();
    assert.deepEqual(await rows(), [
      { id: "1", name: "a", qty: "1", color: "blue", weight: 1.5 },
      { id: "2", name: "b", qty: "2", color: null, weight: null },
      { id: "3", name: "c", qty: "3", color: "red", weight: null },
    ]);
  });

  it("supports composite keys", async () => {
    await land(landing, "public.lines", [
      rec("c", 100, 0, { order_id: 1, line: 1, sku: "a" }),
      rec("c", 100, 1, { order_id: 1, line: 2, sku: "b" }),
      rec("c", 100, 2, { order_id: 2, line: 1, sku: "c" }),
      rec("d", 100, 3, { order_id: 1, line: 2 }),
    ]);
    await refresh({ landing, db, keys: { "public.lines": ["order_id", "line"] }, gold: false });
    assert.deepEqual(await silverRows(db, "silver.public_lines", "order_id, line"), [
      { order_id: "1", line: "1", sku: "a" },
      { order_id: "2", line: "1", sku: "c" },
    ]);
  });

  it("never duplicates bronze for the same file, and re-ingests a file rewritten by a replay", async () => {
    const path = await land(landing, T, [rec("c", 100, 0, { id: 1, name: "a", qty: 1 })]);
    await run();
    const again = await run();
    assert.equal(again.tables.length, 0, "an unchanged file is not ingested again");
    // The engine replays and rewrites the same object with more records.
    await writeFile(path, [rec("c", 100, 0, { id: 1, name: "a", qty: 1 }), rec("c", 100, 1, { id: 2, name: "b", qty: 2 })].map((r) => JSON.stringify(r)).join("\n") + "\n");
    await utimes(path, new Date(), new Date(Date.now() + 5000));
    const replay = await run();
    assert.equal(replay.tables[0].newRecords, 1, "only the record that was not ingested from this file yet");
    const duck = await Duck.open(db);
    try {
      assert.deepEqual(await duck.all("SELECT count(*) AS n FROM bronze.public_items"), [{ n: "2" }]);
    } finally {
      duck.close();
    }
    assert.deepEqual(await rows(), [
      { id: "1", name: "a", qty: "1" },
      { id: "2", name: "b", qty: "2" },
    ]);
  });

  it("ignores temp files and the engine state, and explains a missing key or landing directory", async () => {
    await land(landing, T, [rec("c", 100, 0, { id: 1, name: "a", qty: 1 })]);
    await writeFile(join(landing, `cdc.${T}`, "date=2026-11-21", "hour=12", ".abc123.tmp"), "{not json");
    await land(join(landing, "_cdc_state"), "x.y", [rec("c", 1, 0, { id: 1 })]);
    await run();
    assert.deepEqual(await rows(), [{ id: "1", name: "a", qty: "1" }]);
    await land(landing, "public.nokey", [rec("c", 1, 0, { id: 1 })]);
    await assert.rejects(refresh({ landing, db, gold: false }), /public\.nokey has no primary key and no replica identity index.*--key public\.nokey=/);
    await assert.rejects(refresh({ landing: join(root, "missing"), db, gold: false }), /landing directory .*missing does not exist/);
    // Any PostgreSQL column name lands under its own name; one that cannot be told apart fails its
    // table alone, with both names, while the other tables are refreshed.
    await land(landing, "public.odd", [rec("c", 1, 0, { id: 1, order: 5, "Unit Price": 2.5, "Ünïcode": "ü" })]);
    await land(landing, "public.clash", [rec("c", 1, 0, { id: 1, Value: 1, value: 2 })]);
    const keys = { "public.odd": ["id"], "public.clash": ["id"], [T]: ["id"] };
    await land(landing, T, [rec("c", 101, 0, { id: 2, name: "b", qty: 2 })]);
    await assert.rejects(refresh({ landing, db, keys, gold: false }), /table public\.clash: columns "Value" and "value" differ only in case/);
    assert.deepEqual(await silverRows(db, "silver.public_odd", "id"), [{ id: "1", order: "5", "Unit Price": 2.5, "Ünïcode": "ü" }]);
    assert.deepEqual(await rows(), [{ id: "1", name: "a", qty: "1" }, { id: "2", name: "b", qty: "2" }]);
  });
});
