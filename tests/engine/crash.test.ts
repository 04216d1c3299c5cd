/**
 * kill -9 of the engine at random points (during the snapshot, mid-stream, mid-flush) while a
 * workload keeps writing; after each restart the landing zone must end up with every change, and
 * no (lsn, seq) in two objects (replays overwrite under the same names).
 */
import assert from "node:assert/strict";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { engineEnv, landingDir, spawnEngine, waitFor, type ChildEngine } from "./fixtures/harness";
import { duplicatePositions, readLanding } from "./fixtures/landing";
import { assertLandingMatchesSource, createWorkloadTables, prng, runWorkload, waitForCatchUp, WORKLOAD_TABLES } from "./fixtures/workload";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const logged = (engine: ChildEngine, text: string) => async () => engine.logs.join("").includes(text);

describe("engine: kill -9 and restart", function () {
  this.timeout(180_000);
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.stop();
  });

  it("loses nothing and duplicates nothing across random kills", async () => {
    await createWorkloadTables(pg, 20_000);
    const dir = await landingDir();
    const slot = "crash_slot";
    const env = engineEnv(pg, dir, {
      TABLE_INCLUDE: WORKLOAD_TABLES.map((t) => t.name).join(","),
      PG_SLOT: slot,
      PG_PUBLICATION: "crash_pub",
      SINK_COMPRESSION: "gzip",
      BATCH_MAX_SIZE: "300",
      BATCH_MAX_WAIT_MS: "100",
      HEARTBEAT_INTERVAL_MS: "500",
      LOG_LEVEL: "info",
    });
    const seed = Number(process.env.CRASH_SEED ?? Date.now() % 100000);
    console.log(`      (CRASH_SEED=${seed})`);
    const rand = prng(seed);
    let stop = false;
    const workload = runWorkload(pg, { clients: 3, transactionsPerClient: 100_000, seed: 7, keySpace: 25_000, stop: () => stop });
    const allLogs: string[] = [];
    try {
      for (let round = 0; round < 4; round++) {
        const engine = spawnEngine(env);
        // First kill: while the snapshot is being written; later ones: mid-stream.
        if (round === 0) await waitFor("slot creation", logged(engine, "created the replication slot"), 60_000, 10);
        else await waitFor("streaming", logged(engine, "streaming changes"), 60_000, 20);
        await sleep(round === 0 ? rand() * 300 : 200 + rand() * 1500);
        engine.child.kill("SIGKILL");
        await engine.exited;
        allLogs.push(...engine.logs);
      }
      const engine = spawnEngine(env);
      await waitFor("streaming", logged(engine, "streaming changes"), 60_000, 20);
      await sleep(1000);
      stop = true;
      const { committed } = await workload;
      assert.ok(committed > 50, `the workload committed ${committed} transactions`);
      await waitForCatchUp(pg, dir, slot, 90_000);
      engine.child.kill("SIGTERM");
      assert.equal(await engine.exited, 0, "SIGTERM: flush, confirm and exit 0");
      allLogs.push(...engine.logs);
    } finally {
      stop = true;
      await workload.catch(() => undefined);
    }
    assert.ok(!allLogs.join("").includes('"level":50'), "no error was logged:\n" + allLogs.filter((l) => l.includes('"level":50')).join("\n"));
    await assertLandingMatchesSource(pg, dir);
    for (const t of WORKLOAD_TABLES) assert.deepEqual(await duplicatePositions(dir, t.name), [], `${t.name}: an (lsn, seq) occurs in two objects`);
    const files = await readLanding(dir);
    assert.ok(files.every((f) => f.key.endsWith(".ndjson.gz")), "SINK_COMPRESSION=gzip writes .ndjson.gz objects");
  });
});
