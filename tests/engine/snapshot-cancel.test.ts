/**
 * A snapshot is one unit of work (issue 10, item 13): when one worker fails, its siblings stop
 * copying at once, copySnapshot settles only after every worker stopped, and once the session has
 * ended its batcher writes nothing more, so a dead session never rewrites the state object with
 * stale progress. The failure is real: a publication row filter that divides by zero at one row
 * makes that table's COPY fail on the server; the sibling is held on a lock meanwhile, so it is
 * provably still copying when its sibling fails, and would copy its table once the lock is gone.
 */
import assert from "node:assert/strict";
import pino from "pino";
import type { Client } from "pg";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { loadConfig } from "../../container/src/config";
import { EngineState } from "../../container/src/batching/state";
import { TypeCatalog } from "../../container/src/source/decoding/catalog";
import { ReadThrottle, copySnapshot } from "../../container/src/source/snapshot";
import { FileSink } from "../../container/src/sink/file";
import { testBatcher } from "./fixtures/batcher";
import { engineEnv, landingDir, waitFor } from "./fixtures/harness";
import { WrappedSink, type WriteKind } from "./fixtures/wrapped-sink";
import { readLanding } from "./fixtures/landing";
import { requestedPgMajor } from "../support/postgres-majors";

/** A real FileSink that records the key of every write (put, create, replace, delete). */
class RecordingSink extends WrappedSink {
  readonly puts: string[] = [];
  protected override writing<T>(kind: WriteKind, key: string, write: () => Promise<T>): Promise<T> {
    this.puts.push(`${kind} ${key}`);
    return write();
  }
}

describe("engine: a failed snapshot worker cancels the whole snapshot", function () {
  this.timeout(120_000);
  let pg: TestPostgres;
  before(async function () {
    // The worker's failure is a row filter dividing by zero: row filters came in PostgreSQL 15.
    if (requestedPgMajor() < 15) this.skip();
    pg = await startPostgres();
    // sc_big is partitioned so that a lock on its partition holds its COPY alone (the catalog
    // queries before it only open the parent).
    await pg.query(`CREATE TABLE public.sc_big (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
      CREATE TABLE public.sc_big_p1 PARTITION OF public.sc_big FOR VALUES FROM (0) TO (1000000);
      INSERT INTO public.sc_big SELECT g, 'v' || g FROM generate_series(1, 3000) g;
      CREATE TABLE public.sc_bad (id int PRIMARY KEY, v text); INSERT INTO public.sc_bad SELECT g, 'v' || g FROM generate_series(1, 1000) g;
      CREATE PUBLICATION sc_pub FOR TABLE public.sc_big, public.sc_bad WHERE (100 / (id - 500) > -1000) WITH (publish_via_partition_root = true)`);
  });
  after(async () => {
    await pg?.stop();
  });

  it("stops the sibling worker and leaves the state object alone once the session ended", async () => {
    const dir = await landingDir();
    const config = loadConfig(engineEnv(pg, dir, { TABLE_INCLUDE: "public.sc_big,public.sc_bad", PG_PUBLICATION: "sc_pub" }));
    const sink = new RecordingSink(new FileSink(`file://${dir}`, dir));
    const state = await EngineState.load(sink, "sc_slot");
    state.snapshot = { consistentPoint: "0/1", done: false, files: [] };
    const logger = pino({ level: "silent" });
    const { batcher, failures } = testBatcher(sink, state, { maxSize: 50, maxBytes: 1 << 20 });
    batcher.recordFilesInto = state.snapshot.files;
    let exporter: Client | undefined;
    let locker: Client | undefined;
    try {
      exporter = await pg.connect();
      await exporter.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      const { rows } = await exporter.query<{ name: string }>("SELECT pg_export_snapshot() AS name");
      locker = await pg.connect();
      await locker.query("BEGIN; LOCK TABLE public.sc_big_p1 IN ACCESS EXCLUSIVE MODE");

      // Worker 1 takes sc_big (and waits for the lock), worker 2 takes sc_bad and fails at id 500.
      await assert.rejects(
        copySnapshot({
          config,
          snapshotName: rows[0].name,
          consistentPoint: 1n,
          tsMs: Date.now(),
          tables: [{ schema: "public", table: "sc_big" }, { schema: "public", table: "sc_bad" }],
          catalog: new TypeCatalog(),
          batcher,
          throttle: new ReadThrottle(),
          logger,
          signal: new AbortController().signal,
          parallelism: 2,
        }),
        /division by zero/,
        "the snapshot fails with the failing table's error",
      );
      const clientSide = await pg.query("SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'cdc-engine snapshot%' AND state <> 'idle' AND wait_event_type IS DISTINCT FROM 'Lock'");
      assert.deepEqual(clientSide, [], "no worker is still running a query when the snapshot has settled");
      // The session ends as runSession's does.
      await batcher.discard();
      await batcher.close();
      const putsAtEnd = [...sink.puts];

      // Let the sibling's server process go on: were the worker still alive, it would copy sc_big now.
      await locker.query("COMMIT");
      await waitFor("the snapshot backends to end", async () => (await pg.query("SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'cdc-engine snapshot%'")).length === 0);
      await batcher.flushAll().catch(() => undefined);
      assert.deepEqual(sink.puts, putsAtEnd, "nothing is written (no state object, no data object) after the session ended");
      const big = (await readLanding(dir, "public.sc_big")).flatMap((f) => f.records);
      assert.ok(big.length <= 1, `the sibling stopped before copying sc_big's rows (only its barrier may have been buffered): ${big.length} records`);
      assert.deepEqual(failures, []);
    } finally {
      await locker?.query("ROLLBACK").catch(() => undefined);
      await locker?.end();
      await exporter?.query("COMMIT").catch(() => undefined);
      await exporter?.end();
    }
  });
});
