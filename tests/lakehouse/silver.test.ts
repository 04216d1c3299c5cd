/**
 * Silver semantics on hand-written landing files, with the real DuckDB and the shared SQL.
 */
import assert from "node:assert/strict";
import { readdir, rm, writeFile, utimes } from "node:fs/promises";
import { join } from "node:path";
import { refresh } from "../../lakehouse/src/runner";
import { Duck } from "../../lakehouse/src/duck";
import { land, landManifest, rec, silverRows, tempDir } from "./helpers";
import { normalizeRows, SILVER_SCENARIOS } from "./silver-cases";

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

  // The rules every engine must keep (silver-cases.ts; spark.test.ts runs them on Spark as well).
  for (const scenario of SILVER_SCENARIOS) {
    it(`rule: ${scenario.rule}`, async () => {
      const keys = { [scenario.table]: scenario.key };
      if (scenario.manifest) await landManifest(landing, scenario.table, scenario.manifest, { key: scenario.key });
      const [schema, table] = scenario.table.split(".");
      for (let step = 0; step < scenario.steps.length; step++) {
        for (const records of scenario.steps[step]) await land(landing, scenario.table, records);
        const outcome = await refresh({ landing, db, keys, gold: false }).then(
          () => undefined,
          (err: Error) => err,
        );
        if (scenario.fails) {
          assert.match(String(outcome?.message), scenario.fails);
          continue;
        }
        assert.equal(outcome, undefined);
        for (const e of scenario.expect.filter((x) => (x.afterStep ?? scenario.steps.length - 1) === step)) {
          const rowsNow = await silverRows(db, `silver.${schema}_${table}`, scenario.key.map((k) => `"${k}"`).join(", "));
          assert.deepEqual(normalizeRows(rowsNow), normalizeRows(e.rows), `after step ${step}`);
        }
      }
    });
  }

  it("a table whose schema manifest is unreadable fails alone; the others are refreshed", async () => {
    await land(landing, T, [rec("c", 100, 0, { id: 1, name: "a", qty: 1 })]);
    await land(landing, "public.broken", [rec("c", 100, 1, { id: 7 })]);
    const manifestDir = join(landing, "cdc.public.broken", "_schema");
    const [manifestName] = await readdir(manifestDir);
    await writeFile(join(manifestDir, manifestName), "{not json");
    const outcome = await refresh({ landing, db, keys: { ...KEYS, "public.broken": ["id"] }, gold: false }).then(
      () => assert.fail("the broken table must be reported"),
      (err: Error & { result?: { failed: { table: string }[] } }) => err,
    );
    assert.match(outcome.message, /schema manifest .*cdc\.public\.broken\/_schema\/.* is not valid JSON/);
    assert.deepEqual(outcome.result?.failed.map((f) => f.table), ["public.broken"]);
    assert.deepEqual(await rows(), [{ id: "1", name: "a", qty: "1" }]);
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
