/**
 * Timeouts the database sets on the engine's role (ALTER ROLE … SET): the engine's sessions switch
 * them off, so a snapshot that takes longer than them is taken once, not restarted in a loop.
 */
import assert from "node:assert/strict";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { FileSink } from "../../container/src/sink/file";
import { engineEnv, landingDir, waitFor, waitForRecords } from "./fixtures/harness";
import { WrappedSink, type WriteKind } from "./fixtures/wrapped-sink";
import { startLoggedEngine } from "./fixtures/logged-engine";

/** A real FileSink whose data writes wait until the test opens the gate: the snapshot then backs up and its COPY stays open. */
class GatedSink extends WrappedSink {
  private open!: () => void;
  private readonly gate = new Promise<void>((resolve) => (this.open = resolve));
  release() {
    this.open();
  }
  protected override async writing<T>(_kind: WriteKind, key: string, write: () => Promise<T>): Promise<T> {
    if (key.startsWith("cdc.")) await this.gate; // the engine state passes, the data waits
    return write();
  }
  override close() {
    this.open();
    return this.inner.close();
  }
}

const ROWS = 80_000;

describe("engine: role-level timeouts", function () {
  this.timeout(120_000);
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
    const versionNum = Number((await pg.query<{ v: string }>("SHOW server_version_num"))[0].v);
    // ~1 KB rows: more than the batcher's 64 MiB budget, so a sink that does not answer pauses the COPY.
    await pg.query(`
      CREATE ROLE cdc_limited LOGIN SUPERUSER PASSWORD 'limited';
      ALTER ROLE cdc_limited SET statement_timeout = '1s';
      ALTER ROLE cdc_limited SET idle_in_transaction_session_timeout = '1s';
      ALTER ROLE cdc_limited SET lock_timeout = '1s';
      CREATE TABLE public.big (id int PRIMARY KEY, pad text);
      ALTER TABLE public.big ALTER COLUMN pad SET STORAGE EXTERNAL;
      INSERT INTO public.big SELECT g, repeat(md5(g::text), 32) FROM generate_series(1, ${ROWS}) g;
      CREATE PUBLICATION limited_pub FOR TABLE public.big;`);
    if (versionNum >= 170000) await pg.query("ALTER ROLE cdc_limited SET transaction_timeout = '1s'");
  });
  after(async () => {
    await pg?.stop();
  });

  it("takes a snapshot that outlasts 1 s role timeouts once, and then streams", async () => {
    const limits = await pg.query<{ setconfig: string[] }>("SELECT setconfig FROM pg_db_role_setting WHERE setrole = 'cdc_limited'::regrole");
    assert.ok(limits[0].setconfig.includes("statement_timeout=1s"), "the role really has the timeouts");
    const dir = await landingDir();
    const sink = new GatedSink(new FileSink(`file://${dir}`, dir));
    const engine = startLoggedEngine(
      engineEnv(pg, dir, { PG_USER: "cdc_limited", PG_PASSWORD: "limited", TABLE_INCLUDE: "public.big", PG_PUBLICATION: "limited_pub", PG_SLOT: "limited_slot", BATCH_MAX_BYTES: String(4 * 1024 * 1024) }),
      sink,
    );
    try {
      // The COPY has run for longer than statement_timeout, and the replication connection that
      // exported the snapshot has sat idle in its transaction as long.
      await waitFor("the snapshot's COPY running for over 2 s", async () => {
        const rows = await pg.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'cdc_limited' AND state = 'active' AND query LIKE 'COPY%' AND now() - query_start > interval '2 s'",
        );
        return rows[0].n > 0;
      });
      const idle = await pg.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'cdc_limited' AND backend_type = 'walsender' AND now() - state_change > interval '2 s'",
      );
      assert.equal(idle[0].n, 1, "the exporting replication connection is still there");
      sink.release();
      const rows = await waitForRecords(dir, "public.big", ROWS, 60_000);
      assert.equal(rows.filter((r) => r.__op === "r").length, ROWS);
      await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"));
      await pg.query("INSERT INTO public.big VALUES (0, 'after')");
      await waitFor("the streamed insert", async () => (await waitForRecords(dir, "public.big", ROWS + 1)).some((r) => r.id === 0 && r.__op === "c"));
      assert.equal(engine.said(/created the replication slot; taking the initial snapshot/).length, 1, "the slot was created and the snapshot taken exactly once");
      assert.deepEqual(engine.said(/reconnect|failed|lost/i).map((l) => l.msg), [], "no session failed");
    } finally {
      sink.release();
      await engine.stop();
    }
  });
});
