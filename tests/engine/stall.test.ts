/**
 * Stalls: a primary that stops answering (its processes frozen with SIGSTOP, so the TCP connection
 * stays open and nothing errors) is noticed by the receive deadline, /readyz says why, and the
 * engine reconnects once the server answers again (SIGCONT) with nothing lost. Also: a slot
 * creation that waits on an open transaction says which one.
 */
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import type { Client } from "pg";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { engineEnv, landingDir, waitFor, waitForRecords } from "./fixtures/harness";
import { rebuildTable } from "./fixtures/landing";
import { startLoggedEngine } from "./fixtures/logged-engine";

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
