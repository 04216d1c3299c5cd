/**
 * Fencing, run against every sink's server (issue 10, item 3): the conditional writes themselves,
 * and two engine states racing for one sink — the instance that claimed the older writer epoch is
 * refused on its next state write, its delayed landing write cannot replace the newer instance's
 * object, its delete cannot remove it, and the newer instance's objects and state stay intact.
 */
import assert from "node:assert/strict";
import { EngineState, type WriterIdentity } from "../../../container/src/batching/state";
import { SinkConditionFailedError, WriterFencedError, type LandingSink } from "../../../container/src/sink/types";

export interface FencingTarget {
  /** A fresh sink (no retries) on the server under test. */
  open(): Promise<LandingSink>;
  /** Whether the server enforces a version condition on deletes (fake-gcs-server does not). */
  conditionalDelete: boolean;
  /** Whether a missing object reads as missing (fake-gcs-server answers it like a missing bucket): else the state is seeded first. */
  missingReads: boolean;
}

const OLD: WriterIdentity = { host: "old-task", pid: 101, startedAt: "2026-12-01T10:00:00.000Z" };
const NEW: WriterIdentity = { host: "new-task", pid: 202, startedAt: "2026-12-01T11:00:00.000Z" };

export function fencingContract(target: FencingTarget): void {
  const unique = () => Math.random().toString(36).slice(2, 10);
  const dataKey = (name: string) => `cdc.public.items/date=2026-12-01/hour=11/${name}-${unique()}.ndjson`;
  const line = (text: string) => Buffer.from(`${JSON.stringify({ id: 1, v: text, __op: "c" })}\n`);

  it("create-only keeps an existing object; compare-and-swap refuses a stale or unexpected version", async () => {
    const sink = await target.open();
    try {
      const key = dataKey("create");
      assert.equal(await sink.create(key, line("first")), "created");
      assert.equal(await sink.create(key, line("second")), "exists");
      assert.deepEqual(Buffer.from((await sink.get(key))!), line("first"), "the existing object is left as it was");

      const stateKey = `_cdc_state/cas_${unique()}.json`;
      const v1 = await sink.replace(stateKey, Buffer.from("{\"n\":1}"), null);
      await assert.rejects(sink.replace(stateKey, Buffer.from("{\"n\":0}"), null), SinkConditionFailedError, "null means: only if absent");
      const v2 = await sink.replace(stateKey, Buffer.from("{\"n\":2}"), v1);
      assert.notEqual(v2, v1);
      await assert.rejects(sink.replace(stateKey, Buffer.from("{\"n\":3}"), v1), SinkConditionFailedError, "a stale version is refused");
      const read = await sink.read(stateKey);
      assert.equal(Buffer.from(read!.body).toString(), "{\"n\":2}");
      assert.equal(read!.version, v2);
      assert.equal(await sink.stat(stateKey), v2);
    } finally {
      await sink.close();
    }
  });

  if (target.conditionalDelete) {
    it("a versioned delete removes only the version it was made for", async () => {
      const sink = await target.open();
      try {
        const key = `_cdc_state/del_${unique()}.json`;
        const v1 = await sink.replace(key, Buffer.from("{\"n\":1}"), null);
        const v2 = await sink.replace(key, Buffer.from("{\"n\":2}"), v1);
        assert.equal(await sink.deleteVersion(key, v1), false);
        assert.equal(Buffer.from((await sink.get(key))!).toString(), "{\"n\":2}", "the newer write is left alone");
        assert.equal(await sink.deleteVersion(key, v2), true);
        assert.equal(await sink.stat(key), undefined);
        assert.equal(await sink.deleteVersion(key, v2), false, "a missing object is not an error");
      } finally {
        await sink.close();
      }
    });
  }

  it("two instances race for the sink: the one with the older writer epoch stops on its next write and changes nothing; the new one's objects stay intact", async () => {
    const slot = `fence_${unique()}`;
    const oldSink = await target.open();
    const newSink = await target.open();
    try {
      if (!target.missingReads) await oldSink.put(EngineState.key(slot), Buffer.from(JSON.stringify({ version: 1, slot, tables: {}, intents: [], snapshot: null })), "application/json");
      // The old instance owns the sink and lands one object, announced as an intent first.
      const old = await EngineState.load(oldSink, slot, OLD);
      const oldKey = dataKey("old");
      const position = (lsn: bigint, seq: number) => ({ lsn, seq });
      await old.save([{ table: "public.items", key: oldKey, first: position(100n, 1), last: position(100n, 1) }]);
      assert.equal(await oldSink.create(oldKey, line("old")), "created");
      old.advance("public.items", position(100n, 1));

      // A rollout: the new instance claims the next epoch and lands its own objects.
      const fresh = await EngineState.load(newSink, slot, NEW);
      assert.equal(fresh.epoch, old.epoch + 1);
      assert.deepEqual(fresh.highWater.get("public.items"), position(100n, 1), "the new instance settled the old one's intent");
      const newKey = dataKey("new");
      await fresh.save([{ table: "public.items", key: newKey, first: position(200n, 1), last: position(200n, 1) }]);
      assert.equal(await newSink.create(newKey, line("new")), "created");
      fresh.advance("public.items", position(200n, 1));
      await fresh.save([]);
      const stateBefore = Buffer.from((await newSink.get(EngineState.key(slot)))!).toString();

      // The old instance's delayed work: a state write, a landing write, a delete.
      old.advance("public.items", position(300n, 1));
      await assert.rejects(old.save([]), (err: Error) => {
        assert.ok(err instanceof WriterFencedError, String(err));
        assert.match(err.message, new RegExp(`^another instance took over sink \\S+ for slot ${slot} \\(writer epoch ${fresh.epoch} > ours ${old.epoch}, held by new-task pid 202 \\(started 2026-12-01T11:00:00.000Z\\)\\); this instance stops without writing anything more`));
        return true;
      });
      assert.equal(await oldSink.create(newKey, line("stale replay")), "exists", "a delayed landing write cannot replace the new instance's object");
      await assert.rejects(old.deleteObject(newKey), WriterFencedError, "nor can a delete remove it");
      await assert.rejects(old.checkFence(), WriterFencedError);

      assert.deepEqual(Buffer.from((await newSink.get(newKey))!), line("new"));
      assert.deepEqual(Buffer.from((await newSink.get(oldKey))!), line("old"));
      assert.equal(Buffer.from((await newSink.get(EngineState.key(slot)))!).toString(), stateBefore, "the state object is the new instance's, unchanged");
      const reread = await EngineState.open(newSink, slot);
      assert.deepEqual(reread.highWater.get("public.items"), position(200n, 1));
      // The new instance goes on writing.
      await fresh.save([]);
    } finally {
      await oldSink.close();
      await newSink.close();
    }
  });

  if (target.missingReads) {
    it("two instances claiming at the same time: exactly one gets the epoch, the other is told to start over", async () => {
      const slot = `claim_${unique()}`;
      const sinks = await Promise.all([target.open(), target.open()]);
      try {
        const [a, b] = await Promise.all(sinks.map((s) => EngineState.open(s, slot)));
        const results = await Promise.allSettled([a.claim(OLD), b.claim(NEW)]);
        const won = results.filter((r) => r.status === "fulfilled");
        const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
        assert.equal(won.length, 1, JSON.stringify(results.map((r) => r.status)));
        assert.match(String(lost[0].reason), /another instance wrote the engine state .* while this one was claiming it; starting over/);
      } finally {
        await Promise.all(sinks.map((s) => s.close()));
      }
    });
  }
}
