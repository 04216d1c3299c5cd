/**
 * `cdc-lakehouse refresh` and `cdc-lakehouse query` (in-process main(), real DuckDB): incremental
 * refreshes over a landing directory a user copied, gzip objects, readable output, and one clear
 * error with exit code 2 for every kind of bad input.
 */
import assert from "node:assert/strict";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { main } from "../../lakehouse/src/cli";
import { land, landManifest, rec, tempDir } from "./helpers";

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, (s) => out.push(s), (s) => err.push(s));
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("cdc-lakehouse CLI", () => {
  let root: string;
  let landing: string;
  let db: string;
  before(async () => {
    root = await tempDir("cdc-cli-");
    landing = join(root, "landing");
    db = join(root, "lake.duckdb");
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("refreshes incrementally (plain and gzip objects) and queries as a table or JSON", async () => {
    await land(landing, "public.orders", [rec("r", 10, 0, { order_id: 1, status: "placed", unit_price: "9.50" }), rec("r", 10, 1, { order_id: 2, status: "paid", unit_price: "1.00" })]);
    const dir = join(landing, "cdc.public.orders", "date=2026-11-21", "hour=13");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "0000000000000014-0000000000.ndjson.gz"), gzipSync([rec("u", 20, 0, { order_id: 1, status: "shipped", unit_price: "9.50" }), rec("d", 20, 1, { order_id: 2 })].map((r) => JSON.stringify(r)).join("\n") + "\n"));
    const first = await cli("refresh", "--landing", landing, "--db", db, "--key", "public.orders=order_id");
    assert.equal(first.code, 0, first.err);
    assert.match(first.out, /public\.orders: 2 files, 4 new records → silver\.public_orders has 1 row/);
    assert.match(first.out, /gold\.remaining_stock: waiting for warehouse\.stock_item, warehouse\.stock_movement to land/);
    assert.match(first.out, /gold\.daily_sales: not built \(Binder Error: .*ordered_at/, "gold over tables of another shape is explained, not fatal");
    // The key is remembered: later refreshes need no --key.
    const again = await cli("refresh", "--landing", landing, "--db", db);
    assert.equal(again.code, 0, again.err);
    assert.match(again.out, /no new landing files/);
    const table = await cli("query", "--db", db, "SELECT order_id, status, unit_price FROM silver.public_orders ORDER BY order_id");
    assert.equal(table.code, 0, table.err);
    assert.equal(table.out, [" order_id | status  | unit_price", "----------+---------+------------", "        1 | shipped |       9.50", "(1 row)"].join("\n"));
    const json = await cli("query", "--db", db, "--json", "SELECT order_id, status FROM silver.public_orders");
    assert.deepEqual(JSON.parse(json.out), { order_id: "1", status: "shipped" });
  });

  it("gives one clear error and exit code 2 for bad usage", async () => {
    const cases: [string[], RegExp][] = [
      [["refresh", "--db", db], /refresh needs --landing DIR/],
      [["refresh", "--landing", landing], /refresh needs --db FILE/],
      [["refresh", "--landing", join(root, "nope"), "--db", db], /--landing .*nope: no such directory/],
      [["refresh", "--landing", landing, "--db", db, "--key", "orders"], /--key "orders" is not schema\.table=column/],
      [["refresh", "--landing", landing, "--db", db, "--tables", "orders"], /--tables: "orders" is not a schema\.table name/],
      [["refresh", "--landing", landing, "--db", db, "--every", "0"], /--every "0" must be a positive number/],
      [["refresh", "--landing", landing, "--db", db, "--bogus"], /Unknown option '--bogus'/],
      [["query", "--db", join(root, "missing.duckdb"), "SELECT 1"], /no such DuckDB file; run cdc-lakehouse refresh/],
      [["query", "--db", db], /exactly one SQL statement/],
      [["frobnicate"], /unknown command "frobnicate"/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
      assert.match(r.err, message, args.join(" "));
      assert.match(r.err, /Usage:/);
    }
  });

  it("fails with exit code 1 and the reason for a bad query or an unknown key", async () => {
    const bad = await cli("query", "--db", db, "SELECT nope FROM silver.public_orders");
    assert.equal(bad.code, 1);
    assert.match(bad.err, /query failed: .*nope/);
    await land(landing, "public.users", [rec("c", 30, 0, { user_id: 1 })]);
    const nokey = await cli("refresh", "--landing", landing, "--db", db);
    assert.equal(nokey.code, 1);
    assert.match(nokey.err, /public\.users has no primary key and no replica identity index .* pass --key public\.users=<column>/);
    // The key comes from the schema manifest (the engine writes the table's primary key there).
    await landManifest(landing, "public.users", [["user_id", "BIGINT"], ["email", "STRING"]], { key: ["user_id"], lsn: 31 });
    await land(landing, "public.users", [rec("c", 31, 0, { user_id: 2, email: "b@x" }), rec("d", 31, 1, { user_id: 1 })]);
    const keyed = await cli("refresh", "--landing", landing, "--db", db, "--no-gold");
    assert.equal(keyed.code, 0, keyed.err);
    assert.match(keyed.out, /silver\.public_users has 1 row/);
  });
});
