/**
 * The batcher's output chunks come from a pool and go back to it once their batch is durable, and
 * the file sink writes a batch's chunks as they are (writev). Whatever reuse happens, every
 * landing object holds exactly the records written into it — also for a sink that keeps the body
 * it was given (as an SDK's retry buffer may), which must never see a reused chunk. Appended record
 * blocks (a snapshot's, in memory the batcher lends) are reused the same way.
 */
import assert from "node:assert/strict";
import { EngineState } from "../../container/src/batching/state";
import type { Batcher, TableBuffer } from "../../container/src/batching/batcher";
import { FileSink } from "../../container/src/sink/file";
import { RetryingSink } from "../../container/src/sink/retrying";
import type { LandingSink } from "../../container/src/sink/types";
import { testBatcher } from "./fixtures/batcher";
import { landingDir } from "./fixtures/harness";
import { readLanding } from "./fixtures/landing";
import { WrappedSink } from "./fixtures/wrapped-sink";

/** A file sink that also keeps (by reference) every body create() was given. */
class KeepingSink extends WrappedSink {
  readonly kept = new Map<string, Uint8Array>();
  override create(key: string, body: Uint8Array, contentType?: string) {
    this.kept.set(key, body);
    return super.create(key, body, contentType);
  }
}

/** A deterministic record of about `size` bytes (JSON, no newline). */
const recordOf = (n: number, size: number) => `{"n":${n},"pad":"${String.fromCharCode(97 + (n % 26)).repeat(Math.max(0, size - 20))}"}`;

/** Sizes that fill chunks unevenly: short and mid-sized records, now and then one larger than a chunk. */
function sizeOf(n: number): number {
  if (n % 97 === 0) return 300_000 + (n % 7) * 1000;
  if (n % 11 === 0) return 20_000 + ((n * 7919) % 30_000);
  return 30 + ((n * 104_729) % 3000);
}

/** Writes records n = from … to−1 the three ways the engine does (in place, add(), appended blocks). */
function writeRecords(batcher: Batcher, buffer: TableBuffer, from: number, to: number, expected: string[]): void {
  for (let n = from; n < to; ) {
    if (n % 53 === 0 && n + 5 <= to) {
      // A block of records written elsewhere (a snapshot worker's), appended without copying.
      // Its memory is the batcher's (lent, and reused once the batches holding it are durable), dirty as it comes back.
      const lines = Array.from({ length: 5 }, (_, k) => recordOf(n + k, sizeOf(n + k) % 2000) + "\n");
      const text = lines.join("");
      const block = batcher.recordBlock(Buffer.byteLength(text)).fill(0x7b);
      const data = block.subarray(0, block.write(text));
      const ends = new Int32Array(5);
      let end = 0;
      lines.forEach((l, k) => (ends[k] = end += Buffer.byteLength(l)));
      batcher.appendRecords(buffer, 100n, "date=2026-12-02/hour=05", data, ends, 5, n);
      for (const l of lines) expected.push(l.slice(0, -1));
      n += 5;
      continue;
    }
    const line = recordOf(n, sizeOf(n));
    if (n % 3 === 0) {
      batcher.add(buffer, line, 100n, n, "date=2026-12-02/hour=05");
    } else {
      // As the decoder writes: sized, reserved, encoded in place.
      const size = Buffer.byteLength(line) + 1;
      batcher.begin(buffer, 100n, n, "date=2026-12-02/hour=05", size >= 256 * 1024 ? size : 0);
      const out = buffer.reserve(size);
      out.write(line + "\n", buffer.pos);
      buffer.pos += size;
      batcher.written(buffer, size);
    }
    expected.push(line);
    n++;
  }
}

describe("engine: output chunk reuse", function () {
  this.timeout(60_000);

  async function land(makeSink: (dir: string) => LandingSink, compression: "none" | "gzip" = "none"): Promise<{ dir: string; sink: LandingSink; expected: string[] }> {
    const dir = await landingDir();
    const sink = makeSink(dir);
    const { batcher, failures } = testBatcher(sink, await EngineState.load(sink, "chunk_pool"), { maxSize: 40, maxBytes: 200_000 }, compression);
    const buffer = batcher.buffer("public.pooled");
    const expected: string[] = [];
    // Rounds made durable between writes: their chunks come back and serve the next records.
    for (let round = 0; round < 12; round++) {
      writeRecords(batcher, buffer, round * 200, round * 200 + 200, expected);
      if (round % 2 === 1) await batcher.flushAll();
    }
    await batcher.flushAll();
    await batcher.close();
    assert.deepEqual(failures, []);
    return { dir, sink, expected };
  }

  it("lands every record exactly through the file sink's chunked writes", async () => {
    const { dir, expected } = await land((dir) => new RetryingSink(new FileSink(`file://${dir}`, dir)));
    const files = await readLanding(dir, "public.pooled");
    assert.ok(files.length > 50, `many objects (${files.length})`);
    assert.deepEqual(
      files.flatMap((f) => f.lines),
      expected,
    );
  });

  it("lands every record exactly when batches are gzipped from the pool's memory", async () => {
    const { dir, expected } = await land((dir) => new RetryingSink(new FileSink(`file://${dir}`, dir)), "gzip");
    const files = await readLanding(dir, "public.pooled");
    assert.ok(files.length > 50 && files.every((f) => f.key.endsWith(".ndjson.gz")), `many gzipped objects (${files.length})`);
    assert.deepEqual(
      files.flatMap((f) => f.lines),
      expected,
    );
  });

  it("gives a sink that keeps its bodies copies that later records never overwrite", async () => {
    let keeping: KeepingSink | undefined;
    const { dir, expected } = await land((dir) => (keeping = new KeepingSink(new FileSink(`file://${dir}`, dir))));
    const files = await readLanding(dir, "public.pooled");
    assert.deepEqual(
      files.flatMap((f) => f.lines),
      expected,
    );
    // Read only now, after all later records were written through the pool.
    const kept = [...keeping!.kept].filter(([key]) => key.startsWith("cdc.public.pooled/") && !key.includes("/_schema/")).sort(([a], [b]) => (a < b ? -1 : 1));
    assert.equal(kept.length, files.length);
    assert.deepEqual(
      kept.flatMap(([, body]) => Buffer.from(body).toString("utf8").split("\n").slice(0, -1)),
      expected,
    );
  });
});
