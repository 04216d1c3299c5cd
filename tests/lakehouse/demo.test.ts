/**
 * `npm run demo -- --duration N`: the whole pipeline on an embedded PostgreSQL, run as a user runs
 * it (the built bins; `npm ci` builds them). It must print progress, the gold tables and where the
 * files are, exit 0, and leave nothing running.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { connect } from "node:net";
import { join, resolve } from "node:path";
import { Duck } from "../../lakehouse/src/duck";
import { tempDir } from "./helpers";

const REPO = resolve(__dirname, "..", "..");

function run(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((done, fail) => {
    const child = spawn("npm", ["run", "--silent", "demo", "--", ...args], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("error", fail);
    child.on("exit", (code) => done({ code, out }));
  });
}

const portOpen = (port: number) =>
  new Promise<boolean>((done) => {
    const socket = connect(port, "127.0.0.1");
    socket.on("connect", () => (socket.destroy(), done(true)));
    socket.on("error", () => done(false));
  });

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("npm run demo", function () {
  this.timeout(150_000);
  let dir: string;
  before(async () => {
    dir = await tempDir("cdc-demo-test-");
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("runs the pipeline for --duration seconds, prints progress, gold tables and paths, exits 0 and leaves nothing running", async () => {
    const demoDir = join(dir, "demo");
    const { code, out } = await run(["--duration", "8", "--refresh", "2", "--dir", demoDir]);
    assert.equal(code, 0, out);
    assert.match(out, /created the demo schemas and seed/);
    assert.match(out, /source: \d+ changes in \d+ txns \| engine: \d+ records landed .*replication lag .* \| silver rows: stock_item \d+, stock_movement \d+, users \d+, products \d+, orders \d+/);
    assert.match(out, /the engine has landed every committed change/);
    for (const gold of ["remaining_stock", "user_segments", "user_lifetime_value", "product_performance", "daily_sales"]) assert.match(out, new RegExp(`gold\\.${gold} — `));
    assert.match(out, / item_id \| sku +\| name +\| initial_qty \| total_in \| total_out \| remaining/);
    assert.match(out, new RegExp(`Landing files: ${join(demoDir, "landing").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
    assert.match(out, /DuckDB file: .*lakehouse\.duckdb/);
    assert.match(out, /npx cdc-lakehouse query --db .*lakehouse\.duckdb "SELECT \* FROM gold\.remaining_stock/);
    assert.match(out, /Stopped the embedded PostgreSQL; nothing is left running\./);

    // Nothing left running: the server's port is closed, its data directory gone, the engine exited.
    const pg = /PostgreSQL is up on 127\.0\.0\.1:(\d+) \(data in (\S+),/.exec(out);
    assert.ok(pg, out);
    assert.equal(await portOpen(Number(pg[1])), false, "PostgreSQL still accepts connections");
    assert.equal(existsSync(pg[2]), false, "the PostgreSQL data directory is still there");
    const engine = /cdc-engine run, pid (\d+)/.exec(out);
    assert.ok(engine);
    assert.equal(alive(Number(engine[1])), false, "the engine process is still alive");

    // The DuckDB file it names holds the medallion, and the landing files are where it says.
    const duck = await Duck.open(join(demoDir, "lakehouse.duckdb"));
    try {
      const stock = await duck.all<{ n: string; bad: string }>("SELECT count(*) AS n, count(*) FILTER (WHERE remaining <> initial_qty + total_in - total_out) AS bad FROM gold.remaining_stock");
      assert.deepEqual(stock, [{ n: "25", bad: "0" }]);
    } finally {
      duck.close();
    }
    assert.ok(existsSync(join(demoDir, "landing", "cdc.public.orders")));
  });

  it("stops cleanly on Ctrl-C (SIGINT to its whole process group, as a terminal sends it), still printing gold", async () => {
    const demoDir = join(dir, "ctrl-c");
    const child = spawn(process.execPath, [join(REPO, "lakehouse", "bin", "cdc-demo.js"), "--duration", "0", "--refresh", "1", "--dir", demoDir], {
      cwd: REPO,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    const deadline = Date.now() + 90_000;
    while (!/source: \d+ changes .*silver rows: stock_item/.test(out) && child.exitCode === null) {
      assert.ok(Date.now() < deadline, `no progress line: ${out}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    process.kill(-child.pid!, "SIGINT");
    const code = await exited;
    assert.equal(code, 0, out);
    assert.match(out, /Ctrl-C: stopping the workload/);
    assert.match(out, /gold\.remaining_stock — /);
    assert.match(out, /Stopped the embedded PostgreSQL; nothing is left running\./);
    const pg = /PostgreSQL is up on 127\.0\.0\.1:(\d+) \(data in (\S+),/.exec(out)!;
    assert.equal(await portOpen(Number(pg[1])), false);
    assert.equal(existsSync(pg[2]), false);
    assert.equal(alive(Number(/cdc-engine run, pid (\d+)/.exec(out)![1])), false);
  });

  it("explains bad options with exit code 2", async () => {
    const { code, out } = await run(["--duration", "soon"]);
    assert.equal(code, 2);
    assert.match(out, /--duration "soon" must be a number/);
    assert.match(out, /Usage: npm run demo/);
  });
});
