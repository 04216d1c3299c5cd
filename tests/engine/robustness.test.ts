/**
 * What happens around the happy path: a sink outage, a permanent sink error, a lost replication
 * connection, and the SNAPSHOT_MODE variants.
 */
import assert from "node:assert/strict";
import pino from "pino";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { loadConfig } from "../../container/src/config";
import { runEngine } from "../../container/src/engine";
import { FileSink } from "../../container/src/sink/file";
import { SinkPermanentError, type LandingSink } from "../../container/src/sink/types";
import { confirmedFlush, engineEnv, landingDir, startEngine, waitFor } from "./fixtures/harness";
import { WrappedSink, type WriteKind } from "./fixtures/wrapped-sink";
import { duplicatePositions, readLanding, readRecords, rebuildTable } from "./fixtures/landing";
import { noopMetrics } from "./fixtures/metrics";

/** A real FileSink whose writes can be made to fail (no fault-injecting file system exists here). */
class FaultySink extends WrappedSink {
  failure: Error | undefined;
  /** A slow sink: every write waits this long first. */
  delayMs = 0;
  attempts = 0;
  closed = false;
  /** Every write but a delete: counted, delayed, failed on cue. */
  protected override async writing<T>(kind: WriteKind, _key: string, write: () => Promise<T>): Promise<T> {
    if (kind === "delete" || kind === "deleteVersion") return write();
    this.attempts++;
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    // Like the real RetryingSink: after close() nothing more lands.
    if (this.closed) throw new Error("sink closed");
    if (this.failure) throw this.failure;
    return write();
  }
  override close() {
    this.closed = true;
    return this.inner.close();
  }
}

describe("engine: failures and snapshot modes", function () {
  this.timeout(120_000);
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
    await pg.query("CREATE TABLE public.r (id int PRIMARY KEY, v text); INSERT INTO public.r SELECT g, 'v' || g FROM generate_series(1, 50) g");
  });
  after(async () => {
    await pg?.stop();
  });

  function run(env: Record<string, string>, sink: LandingSink) {
    const controller = new AbortController();
    const metrics = noopMetrics();
    const done = runEngine(loadConfig(env), { logger: pino({ level: "silent" }), metrics, signal: controller.signal, sink });
    done.catch(() => undefined);
    return { metrics, done, stop: async () => (controller.abort(), await done) };
  }

  it("confirms nothing while the sink is down, and catches up when it is back", async () => {
    const dir = await landingDir();
    const env = engineEnv(pg, dir, { TABLE_INCLUDE: "public.r", PG_SLOT: "outage_slot", PG_PUBLICATION: "outage_pub" });
    const sink = new FaultySink(new FileSink(`file://${dir}`, dir));
    const engine = run(env, sink);
    try {
      await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"));
      const before = await confirmedFlush(pg, "outage_slot");
      sink.failure = new Error("ECONNRESET (simulated outage)");
      await pg.query("INSERT INTO public.r VALUES (1001, 'during outage')");
      await waitFor("put attempts during the outage", async () => sink.attempts >= 3, 20_000);
      assert.equal(await confirmedFlush(pg, "outage_slot"), before, "nothing confirmed while the sink is down");
      assert.equal((await readRecords(dir, "public.r")).filter((r) => r.__op === "c").length, 0);
      sink.failure = undefined;
      await waitFor("the change after the outage", async () => (await readRecords(dir, "public.r")).some((r) => r.id === 1001));
      await waitFor("confirmation after the outage", async () => (await confirmedFlush(pg, "outage_slot")) > before);
    } finally {
      await engine.stop();
    }
  });

  it("still stops on SIGTERM while the sink is down, confirming nothing it could not write", async () => {
    const dir = await landingDir();
    const env = engineEnv(pg, dir, { TABLE_INCLUDE: "public.r", PG_SLOT: "down_stop_slot", PG_PUBLICATION: "down_stop_pub" });
    const sink = new FaultySink(new FileSink(`file://${dir}`, dir));
    const engine = run(env, sink);
    await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"));
    const before = await confirmedFlush(pg, "down_stop_slot");
    sink.failure = new Error("ETIMEDOUT (simulated outage)");
    await pg.query("INSERT INTO public.r VALUES (1003, 'never written')");
    await waitFor("put attempts during the outage", async () => sink.attempts >= 2, 20_000);
    await engine.stop();
    assert.equal(await confirmedFlush(pg, "down_stop_slot"), before);
    // The next start replays the change.
    const again = run(env, new FaultySink(new FileSink(`file://${dir}`, dir)));
    try {
      await waitFor("the replayed change", async () => (await readRecords(dir, "public.r")).some((r) => r.id === 1003));
    } finally {
      await again.stop();
    }
  });

  it("stops with the sink's permanent error", async () => {
    const dir = await landingDir();
    const env = engineEnv(pg, dir, { TABLE_INCLUDE: "public.r", PG_SLOT: "permanent_slot", PG_PUBLICATION: "permanent_pub" });
    const sink = new FaultySink(new FileSink(`file://${dir}`, dir));
    const engine = run(env, sink);
    await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"));
    const before = await confirmedFlush(pg, "permanent_slot");
    sink.failure = new SinkPermanentError(sink.url, "access denied (simulated); grant write access");
    await pg.query("INSERT INTO public.r VALUES (1002, 'denied')");
    await assert.rejects(engine.done, (err: unknown) => err instanceof SinkPermanentError && /access denied/.test(err.message));
    assert.equal(await confirmedFlush(pg, "permanent_slot"), before);
  });

  it("reconnects after the replication connection is killed and replays what was not durable", async () => {
    const dir = await landingDir();
    const slot = "reconnect_slot";
    const engine = startEngine(engineEnv(pg, dir, { TABLE_INCLUDE: "public.r", PG_SLOT: slot, PG_PUBLICATION: "reconnect_pub", BATCH_MAX_WAIT_MS: "2000" }));
    try {
      await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"));
      await pg.query("INSERT INTO public.r VALUES (2001, 'before kill')");
      // Killed while the change sits in the buffer (BATCH_MAX_WAIT_MS=2000): it must be replayed.
      await pg.query("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1", [slot]);
      await waitFor("reconnect", async () => engine.metrics.phases.includes("reconnecting"));
      await pg.query("INSERT INTO public.r VALUES (2002, 'after kill')");
      await waitFor("both changes", async () => {
        const ids = (await readRecords(dir, "public.r")).map((r) => r.id);
        return ids.includes(2001) && ids.includes(2002);
      });
      assert.deepEqual(await duplicatePositions(dir, "public.r"), []);
    } finally {
      await engine.stop();
    }
  });

  it("takes an interrupted snapshot again from scratch, deleting the partial one", async () => {
    await pg.query("CREATE TABLE public.snapbig (id int PRIMARY KEY, v text); INSERT INTO public.snapbig SELECT g, 'v' || g FROM generate_series(1, 20000) g");
    const dir = await landingDir();
    const env = engineEnv(pg, dir, { TABLE_INCLUDE: "public.snapbig", PG_SLOT: "interrupt_slot", PG_PUBLICATION: "interrupt_pub", BATCH_MAX_SIZE: "1000" });
    const slow = new FaultySink(new FileSink(`file://${dir}`, dir));
    slow.delayMs = 1000; // a slow sink keeps the snapshot going long enough to interrupt it
    const first = run(env, slow);
    await waitFor("the first snapshot objects", async () => (await readLanding(dir, "public.snapbig")).length >= 2, 60_000, 20);
    await first.stop();
    assert.ok(!first.metrics.phases.includes("streaming"), "stopped during the snapshot");
    const partial = await readLanding(dir, "public.snapbig");
    const abandonedLsn = partial[0].records[0].__lsn;
    const second = run(env, new FaultySink(new FileSink(`file://${dir}`, dir)));
    try {
      await waitFor("streaming", async () => second.metrics.phases.includes("streaming"), 60_000);
    } finally {
      await second.stop();
    }
    const records = await readRecords(dir, "public.snapbig");
    const byLsn = new Map<number, number>();
    for (const r of records) byLsn.set(r.__lsn, (byLsn.get(r.__lsn) ?? 0) + 1);
    assert.equal(records.length, 20000, `exactly one complete snapshot is left: ${JSON.stringify([...byLsn])} abandoned ${abandonedLsn}`);
    assert.ok(records.every((r) => r.__op === "r" && r.__lsn === records[0].__lsn));
    assert.notEqual(records[0].__lsn, abandonedLsn, "taken again from a new slot");
    assert.deepEqual(await duplicatePositions(dir, "public.snapbig"), []);
  });

  it("snapshots a table added to TABLE_INCLUDE later, consistently with the stream", async () => {
    await pg.query(`CREATE TABLE public.later_a (id int PRIMARY KEY, v text); CREATE TABLE public.later_b (id int PRIMARY KEY, v text);
      INSERT INTO public.later_b SELECT g, 'old' FROM generate_series(1, 500) g`);
    const dir = await landingDir();
    const env = engineEnv(pg, dir, { TABLE_INCLUDE: "public.later_a", PG_SLOT: "later_slot", PG_PUBLICATION: "later_pub" });
    const first = startEngine(env);
    try {
      await waitFor("streaming", async () => first.metrics.phases.includes("streaming"));
      await pg.query("INSERT INTO public.later_a VALUES (1, 'a')");
      await waitFor("later_a's change", async () => (await readRecords(dir, "public.later_a")).length === 1);
    } finally {
      await first.stop();
    }
    await pg.query("UPDATE public.later_b SET v = 'changed while not captured' WHERE id <= 10; DELETE FROM public.later_b WHERE id > 490");
    const second = startEngine({ ...env, TABLE_INCLUDE: "public.later_a,public.later_b" });
    try {
      await waitFor("streaming again", async () => second.metrics.phases.includes("streaming"));
      await pg.query("UPDATE public.later_b SET v = 'streamed' WHERE id = 1; INSERT INTO public.later_b VALUES (1000, 'new')");
      await waitFor("later_b snapshot and changes", async () => (await readRecords(dir, "public.later_b")).length >= 492);
      const records = await readRecords(dir, "public.later_b");
      assert.deepEqual(
        records.map((r) => r.__op).filter((op) => op !== "r"),
        ["u", "c"],
      );
      assert.equal(records.filter((r) => r.__op === "r").length, 490);
      const source = await pg.query<{ id: number; v: string }>("SELECT id, v FROM public.later_b ORDER BY id");
      const rebuilt = await rebuildTable(dir, "public.later_b", ["id"]);
      assert.deepEqual(
        [...rebuilt.values()].sort((a, b) => (a.id as number) - (b.id as number)),
        source.map((r) => ({ id: r.id, v: r.v })),
      );
      assert.equal((await readRecords(dir, "public.later_a")).length, 1, "the table captured before is not copied again");
    } finally {
      await second.stop();
    }
  });

  it("SNAPSHOT_MODE=initial_only copies the tables, exits, and leaves no slot", async () => {
    const dir = await landingDir();
    const engine = startEngine(engineEnv(pg, dir, { TABLE_INCLUDE: "public.r", PG_SLOT: "only_slot", PG_PUBLICATION: "only_pub", SNAPSHOT_MODE: "initial_only" }));
    await engine.done;
    const count = Number((await pg.query<{ n: string }>("SELECT count(*) AS n FROM public.r"))[0].n);
    const records = await readRecords(dir, "public.r");
    assert.equal(records.length, count);
    assert.ok(records.every((r) => r.__op === "r"));
    assert.equal((await pg.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = 'only_slot'")).length, 0);
  });

  it("SNAPSHOT_MODE=never streams only changes made after the slot exists", async () => {
    const dir = await landingDir();
    const engine = startEngine(engineEnv(pg, dir, { TABLE_INCLUDE: "public.r", PG_SLOT: "never_slot", PG_PUBLICATION: "never_pub", SNAPSHOT_MODE: "never" }));
    try {
      await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"));
      await pg.query("UPDATE public.r SET v = 'changed' WHERE id = 3");
      await waitFor("the update", async () => (await readRecords(dir, "public.r")).length > 0);
      const files = await readLanding(dir);
      assert.deepEqual(files.flatMap((f) => f.records.map((r) => [r.__op, r.id])), [["u", 3]]);
    } finally {
      await engine.stop();
    }
  });
});
