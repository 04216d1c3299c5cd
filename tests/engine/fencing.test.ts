/**
 * Two engine instances at once (issue 10, item 3), end to end against the real PostgreSQL: the
 * old instance loses its replication connection while one of its sink writes hangs (a delayed
 * upload), the new instance takes the slot and the sink over, and when the old instance's write
 * finally arrives it is refused: the old engine stops with WriterFencedError and changes nothing,
 * the new one's objects and state stay as they were, and it goes on streaming.
 */
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import pino from "pino";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { loadConfig } from "../../container/src/config";
import { runEngine } from "../../container/src/engine";
import { FileSink } from "../../container/src/sink/file";
import { WriterFencedError } from "../../container/src/sink/types";
import { DelayedSink } from "./fixtures/delayed-sink";
import { engineEnv, landingDir, startEngine, waitFor, waitForRecords } from "./fixtures/harness";
import { noopMetrics } from "./fixtures/metrics";

/** Every file under dir (hidden temp files included) with its bytes. */
async function snapshotDir(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) await walk(path);
      else out.set(relative(dir, path), (await readFile(path)).toString("base64"));
    }
  };
  await walk(dir);
  return out;
}

describe("engine: two instances at once (writer fencing)", function () {
  this.timeout(120_000);
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
    await pg.query("CREATE TABLE public.fenced (id int PRIMARY KEY, v text); INSERT INTO public.fenced SELECT g, 'v' || g FROM generate_series(1, 10) g");
  });
  after(async () => {
    await pg?.stop();
  });

  it("the old instance's delayed write after a takeover is refused: it stops with WriterFencedError and changes nothing", async () => {
    const dir = await landingDir();
    const slot = "fenced_slot";
    const env = engineEnv(pg, dir, { TABLE_INCLUDE: "public.fenced", PG_SLOT: slot, PG_PUBLICATION: "fenced_pub" });
    const oldSink = new DelayedSink(new FileSink(`file://${dir}`, dir));
    const controller = new AbortController();
    const oldMetrics = noopMetrics();
    const old = runEngine(loadConfig(env), { logger: pino({ level: "silent" }), metrics: oldMetrics, signal: controller.signal, sink: oldSink });
    old.catch(() => undefined);
    let fresh: ReturnType<typeof startEngine> | undefined;
    try {
      await waitFor("the old instance streams", async () => oldMetrics.phases.includes("streaming"));
      await waitForRecords(dir, "public.fenced", 10);

      // The old instance's next flush hangs, and it loses its replication connection.
      oldSink.hold();
      await pg.query("INSERT INTO public.fenced VALUES (11, 'during the rollout')");
      await waitFor("the old instance's write is held", async () => oldSink.held > 0);
      await pg.query("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1", [slot]);

      // The new instance takes the slot and the sink over, and lands the change again.
      fresh = startEngine(env);
      await waitFor("the new instance streams", async () => fresh!.metrics.phases.includes("streaming"));
      const records = await waitForRecords(dir, "public.fenced", 11);
      assert.equal(records.at(-1)!.v, "during the rollout");
      const state = JSON.parse(await readFile(join(dir, "_cdc_state", `${slot}.json`), "utf8")) as { epoch: number };
      assert.equal(state.epoch, 2, "the new instance holds writer epoch 2");
      const before = await snapshotDir(dir);

      // The delayed write arrives: refused, and the old engine stops.
      oldSink.release();
      await assert.rejects(old, (err: Error) => {
        assert.ok(err instanceof WriterFencedError, String(err));
        assert.match(err.message, new RegExp(`^another instance took over sink file://${dir} for slot ${slot} \\(writer epoch 2 > ours 1, held by \\S+ pid ${process.pid} `));
        return true;
      });
      assert.deepEqual(await snapshotDir(dir), before, "the old instance changed nothing in the sink");

      // The new instance goes on.
      await pg.query("INSERT INTO public.fenced VALUES (12, 'after the takeover')");
      const after = await waitForRecords(dir, "public.fenced", 12);
      assert.equal(after.at(-1)!.v, "after the takeover");
    } finally {
      oldSink.release();
      controller.abort();
      await old.catch(() => undefined);
      await fresh?.stop();
    }
  });
});
