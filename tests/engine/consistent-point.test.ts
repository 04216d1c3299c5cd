/**
 * A transaction whose commit record is the very next WAL record after the xl_running_xacts record a
 * new slot becomes consistent at is streamed with commit LSN = the consistent point, but is not in
 * the exported snapshot. Its changes then share `__lsn` with the snapshot's `r` records, and the
 * high-water mark the snapshot leaves, (consistent point, last ordinal), made the stream skip them
 * as "replayed": the flaky "w_orders differs from the source" of the crash test (~3% of slot
 * creations under concurrent writes). The engine now detects it and creates the slot again.
 *
 * Reproduced deterministically by steering the snapshot builder with open transactions: it waits
 * for T1, then T2, and becomes consistent while T3 is open; T3 then commits right at the point.
 */
import assert from "node:assert/strict";
import type { Client } from "pg";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { loadConfig } from "../../container/src/config";
import { connect } from "../../container/src/source/connection";
import { commitAtConsistentPoint, connectionOf, createSlot, firstStreamedCommitLsn, serverVersionNum } from "../../container/src/source/replication";
import { currentLsn, engineEnv, landingDir, waitFor } from "./fixtures/harness";

describe("engine: a commit exactly at the slot's consistent point", function () {
  this.timeout(60_000);
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
    await pg.query("CREATE TABLE public.cp_items (id int PRIMARY KEY, v text); INSERT INTO public.cp_items SELECT g, 'seed' FROM generate_series(1, 50) g; CREATE PUBLICATION cp_pub FOR TABLE public.cp_items");
  });
  after(async () => {
    await pg?.stop();
  });

  const open = async (id: number): Promise<{ client: Client; xid: string }> => {
    const client = await pg.connect();
    await client.query("BEGIN");
    await client.query("INSERT INTO public.cp_items VALUES ($1, 'late')", [id]);
    // pg_current_xact_id() came in PostgreSQL 13; txid_current() (its older name) still exists.
    const { rows } = await client.query<{ xid: string }>(`SELECT ${pg.versionNum >= 130000 ? "pg_current_xact_id()" : "txid_current()"}::text AS xid`);
    return { client, xid: rows[0].xid };
  };
  /** The slot creation waits (XactLockTableWait) for this transaction. */
  const awaitedBySlotCreation = (xid: string) =>
    waitFor(`slot creation waiting for xid ${xid}`, async () => (await pg.query("SELECT 1 FROM pg_locks WHERE locktype = 'transactionid' AND transactionid::text = $1 AND NOT granted", [xid])).length > 0, 20_000, 20);

  it("is detected, so the snapshot is taken from a new slot", async () => {
    const config = loadConfig(engineEnv(pg, await landingDir(), { PG_SLOT: "cp_slot", PG_PUBLICATION: "cp_pub" }));
    const normal = await connect(config, "cp test");
    const replication = await connect(config, "cp test replication", { replication: true });
    try {
      const t1 = await open(1001);
      const creating = createSlot(replication, "cp_slot", { exportSnapshot: true, versionNum: await serverVersionNum(normal) });
      await awaitedBySlotCreation(t1.xid);
      const t2 = await open(1002);
      await t1.client.query("COMMIT");
      await awaitedBySlotCreation(t2.xid);
      const t3 = await open(1003);
      await t2.client.query("COMMIT");
      const created = await creating;
      // Nothing else writes WAL here: T3's commit record lands at the consistent point.
      await t3.client.query("COMMIT");
      for (const t of [t1, t2, t3]) await t.client.end();

      // T3 is not in the exported snapshot ...
      const reader = await connect(config, "cp test snapshot");
      await reader.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      await reader.query(`SET TRANSACTION SNAPSHOT '${created.snapshotName}'`);
      const { rows } = await reader.query<{ id: number }>("SELECT id FROM public.cp_items WHERE id > 1000 ORDER BY id");
      await reader.query("COMMIT");
      await reader.end();
      assert.deepEqual(rows.map((r) => r.id), [1001, 1002]);
      // ... but streamed with commit LSN = the consistent point: the engine must not use this slot.
      assert.equal(await commitAtConsistentPoint(normal, "cp_slot", "cp_pub", created.consistentPoint, "cp-test"), true);
      // Asking again is stable (peeking consumes nothing).
      assert.equal(await commitAtConsistentPoint(normal, "cp_slot", "cp_pub", created.consistentPoint, "cp-test"), true);
      await normal.query("SELECT pg_drop_replication_slot('cp_slot')");

      // A slot created with nothing in flight: the engine's own message settles the record at its consistent point.
      const quiet = await createSlot(replication, "cp_slot", { exportSnapshot: true, versionNum: await serverVersionNum(normal) });
      assert.equal(await commitAtConsistentPoint(normal, "cp_slot", "cp_pub", quiet.consistentPoint, "cp-test"), false);
      await pg.query("INSERT INTO public.cp_items VALUES (1004, 'after')");
      assert.equal(await commitAtConsistentPoint(normal, "cp_slot", "cp_pub", quiet.consistentPoint, "cp-test"), false, "a later commit is not at the consistent point");
      await normal.query("SELECT pg_drop_replication_slot('cp_slot')");
    } finally {
      await replication.end().catch(() => undefined);
      await normal.end().catch(() => undefined);
    }
  });

  it("reads only the head of a large first transaction, not the whole of it", async () => {
    const config = loadConfig(engineEnv(pg, await landingDir(), { PG_SLOT: "cp_big_slot", PG_PUBLICATION: "cp_pub" }));
    const normal = await connect(config, "cp test big");
    const replication = await connect(config, "cp test big replication", { replication: true });
    try {
      const created = await createSlot(replication, "cp_big_slot", { exportSnapshot: false, versionNum: await serverVersionNum(normal) });
      // A bulk load of ~24 MB of pgoutput messages commits first.
      const before = await currentLsn(pg);
      await pg.query("INSERT INTO public.cp_items SELECT g, repeat('x', 1000) FROM generate_series(100000, 123999) g");
      const after = await currentLsn(pg);
      let received = 0;
      const count = (chunk: Buffer) => (received += chunk.length);
      connectionOf(normal).stream.on("data", count);
      // Its own synchronous commit makes the (asynchronously committed) bulk load readable.
      assert.equal(await commitAtConsistentPoint(normal, "cp_big_slot", "cp_pub", created.consistentPoint, "cp-test"), false);
      const commitLsn = await firstStreamedCommitLsn(normal, "cp_big_slot", "cp_pub");
      connectionOf(normal).stream.removeListener("data", count);
      assert.ok(commitLsn !== undefined && commitLsn > before && commitLsn < after, `the bulk load's commit LSN (${commitLsn}) lies between ${before} and ${after}`);
      assert.ok(received < 16 * 1024, `the engine received ${received} bytes for both peeks`);
      await normal.query("SELECT pg_drop_replication_slot('cp_big_slot')");
    } finally {
      await replication.end().catch(() => undefined);
      await normal.end().catch(() => undefined);
    }
  });
});
