/**
 * Stalls: a primary that stops answering (its processes frozen with SIGSTOP, so the TCP connection
 * stays open and nothing errors) is noticed by the receive deadline, /readyz says why, and the
 * engine reconnects once the server answers again (SIGCONT) with nothing lost. The same for a
 * snapshot COPY whose backend freezes, while a query that waits for a lock goes on waiting. Also: a
 * slot creation that waits on an open transaction says which one.
 */
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import type { Client } from "pg";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { engineEnv, landingDir, waitFor, waitForRecords } from "./fixtures/harness";
import { rebuildTable } from "./fixtures/landing";
import { startLoggedEngine } from "./fixtures/logged-engine";
import { loadConfig } from "../../container/src/config";
import { blockedByLock, connect, watchReceive, type ReceiveStallError } from "../../container/src/source/connection";

/** The postmaster (parent of any backend) and all its children, from /proc. */
function serverProcesses(backendPid: number): number[] {
  const parentOf = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "").split(" ")[1]);
  const postmaster = parentOf(backendPid);
  const children = readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => {
      try {
        return parentOf(pid) === postmaster;
      } catch {
        return false; // exited meanwhile
      }
    });
  return [postmaster, ...children];
}

describe("engine: stalls", function () {
  this.timeout(120_000);
  let pg: TestPostgres;
  let frozen: number[] = [];
  const thaw = () => {
    for (const pid of frozen) {
      try {
        process.kill(pid, "SIGCONT");
      } catch {
        // already gone
      }
    }
    frozen = [];
  };
  before(async () => {
    // wal_sender_timeout 2 s: the engine's receive deadline becomes its floor, 5 s.
    pg = await startPostgres({ settings: { wal_sender_timeout: "2s" } });
    await pg.query("CREATE TABLE public.s (id int PRIMARY KEY, v text)");
    process.on("exit", thaw); // never leave a frozen server behind, whatever happens
  });
  after(async () => {
    thaw();
    process.removeListener("exit", thaw);
    await pg?.stop();
  });

  it("notices a frozen primary by its receive deadline, reports it on /readyz, and recovers without losing anything", async () => {
    const dir = await landingDir();
    const engine = startLoggedEngine(engineEnv(pg, dir, { TABLE_INCLUDE: "public.s", PG_SLOT: "stall_slot", PG_PUBLICATION: "stall_pub" }));
    try {
      await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"));
      await pg.query("INSERT INTO public.s SELECT g, 'before' FROM generate_series(1, 10) g");
      await waitForRecords(dir, "public.s", 10);
      // Committed just before the freeze: maybe not yet durable, never to be lost.
      await pg.query("INSERT INTO public.s SELECT g, 'at the freeze' FROM generate_series(11, 20) g");
      const backend = (await pg.query<{ pid: number }>("SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = 'stall_slot'"))[0].pid;
      const streamingSessions = engine.metrics.phases.filter((p) => p === "streaming").length;
      try {
        frozen = serverProcesses(backend);
        assert.ok(frozen.length >= 3, `the postmaster and its children (${frozen.join(", ")})`);
        for (const pid of frozen) {
          try {
            process.kill(pid, "SIGSTOP");
          } catch (err) {
            // A backend that exited since the listing (an autovacuum worker, another test's session).
            if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
          }
        }
        await waitFor("the stall noticed", async () => engine.metrics.reasons.some((r) => r !== undefined && /no message from PostgreSQL/.test(r)), 60_000);
        const reason = engine.metrics.reasons.find((r) => r !== undefined && /no message from PostgreSQL/.test(r))!;
        assert.match(reason, /receive deadline 5 s, from the server's wal_sender_timeout/);
        assert.equal(engine.metrics.phases[engine.metrics.reasons.indexOf(reason)], "reconnecting", "unready while it reconnects");
        assert.equal(engine.said(/no message from PostgreSQL/).length, 1, "logged once");
      } finally {
        thaw();
      }
      await waitFor("streaming again", async () => engine.metrics.phases.filter((p) => p === "streaming").length > streamingSessions, 90_000);
      await pg.query("INSERT INTO public.s SELECT g, 'after' FROM generate_series(21, 30) g");
      await waitFor("every row", async () => (await rebuildTable(dir, "public.s", ["id"])).size === 30, 30_000);
      const rows = await rebuildTable(dir, "public.s", ["id"]);
      assert.deepEqual([...rows.values()].map((r) => r.id).sort((a, b) => Number(a) - Number(b)), Array.from({ length: 30 }, (_v, i) => i + 1));
    } finally {
      thaw();
      await engine.stop();
    }
  });

  it("a snapshot COPY whose backend freezes fails the session by the receive deadline, and the retried snapshot lands every row", async () => {
    // Rows enough for the COPY to run about a second, so the 10 ms poll below sees it: the backend
    // stays active while the engine still has rows to read (it sends faster than they are read).
    const ROWS = 1_000_000;
    await pg.query(`CREATE TABLE public.big (id int PRIMARY KEY, v text); INSERT INTO public.big SELECT g, repeat('x', 20) FROM generate_series(1, ${ROWS}) g`);
    const dir = await landingDir();
    const engine = startLoggedEngine(engineEnv(pg, dir, { TABLE_INCLUDE: "public.big", PG_SLOT: "copy_slot", PG_PUBLICATION: "copy_pub" }));
    try {
      const backend = await waitFor("the snapshot's COPY running", async () => (await pg.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'cdc-engine snapshot%' AND state = 'active' AND query LIKE 'COPY%'"))[0]?.pid, 60_000, 10);
      process.kill(backend, "SIGSTOP");
      frozen = [backend];
      const line = await waitFor("the stall noticed", async () => engine.said(/no data from PostgreSQL on the snapshot connection 1/)[0], 60_000);
      assert.match(line.msg, /while a query was running \(receive deadline 5 s, from the server's wal_sender_timeout\); the server is stalled or unreachable$/);
      await waitFor("the session failed as transient and is retried", async () => engine.said(/PostgreSQL session failed \(no data from PostgreSQL on the snapshot connection 1/)[0], 30_000);
      thaw();
      await waitFor("every row", async () => (await rebuildTable(dir, "public.big", ["id"])).size === ROWS, 90_000, 1_000);
    } finally {
      thaw();
      await engine.stop();
    }
  });

  it("the receive deadline on a normal connection: a query waiting for another session's lock goes on waiting, a frozen backend fails it (watchReceive)", async () => {
    const config = loadConfig({ ...pg.env, SINK_URL: "file:///tmp/unused" });
    const locker: Client = await pg.connect();
    const waiter = await connect(config, "stall test waiter");
    const stalls: ReceiveStallError[] = [];
    const watch = watchReceive(waiter, { what: "test connection", deadlineMs: 1_000, probeMs: 250, waitsForLock: (pid) => blockedByLock(config, pid), onStall: (err) => stalls.push(err) });
    try {
      await locker.query("CREATE TABLE public.locked (id int)");
      await locker.query("BEGIN; LOCK TABLE public.locked IN ACCESS EXCLUSIVE MODE");
      const blocked = waiter.query("SELECT count(*) AS n FROM public.locked");
      await waitFor("the query blocked", async () => (await pg.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'stall test waiter' AND cardinality(pg_blocking_pids(pid)) > 0"))[0].n === 1);
      // Several deadlines long: each probe finds the backend blocked by the lock.
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      await locker.query("COMMIT");
      assert.equal(Number((await blocked).rows[0].n), 0);
      assert.equal(stalls.length, 0, "waiting for a lock is not a stall");
      const pid = (await waiter.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
      process.kill(pid, "SIGSTOP");
      frozen = [pid];
      await assert.rejects(waiter.query("SELECT 1"));
      assert.equal(stalls.length, 1);
      assert.equal(watch.stalled, stalls[0]);
      assert.match(stalls[0].message, /^no data from PostgreSQL on the test connection for \d+ s while a query was running \(receive deadline 1 s/);
    } finally {
      thaw();
      watch.stop();
      await waiter.end().catch(() => undefined);
      await locker.end();
    }
  });

  it("says which transactions a slot creation waits for", async () => {
    const dir = await landingDir();
    const open: Client = await pg.connect();
    try {
      await open.query("BEGIN");
      await open.query("INSERT INTO public.s VALUES (1000, 'open transaction')");
      const pid = (await open.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
      const engine = startLoggedEngine(engineEnv(pg, dir, { TABLE_INCLUDE: "public.s", PG_SLOT: "waiting_slot", PG_PUBLICATION: "stall_pub" }));
      try {
        const line = await waitFor("the waiting slot creation logged", async () => engine.said(/creating replication slot waiting_slot waits for/)[0]);
        assert.deepEqual(line.blockingPids, [pid]);
        assert.match(line.msg, new RegExp(`the transactions of pid ${pid}\\b`));
        assert.match(line.msg, /pg_terminate_backend/);
        assert.ok(!JSON.stringify(line).includes("open transaction"), "no query text or row values in the log");
        await open.query("COMMIT");
        await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"));
      } finally {
        await engine.stop();
      }
    } finally {
      await open.end();
    }
  });
});
