/**
 * The snapshot's transcoding off the engine's thread (issue 13, item 1): COPY rows transcoded in
 * a worker thread land byte for byte the records the engine's thread writes, in the same objects,
 * for every type of the landing contract; both equal what the stream's encoders make of each
 * value's text; and record blocks appended whole are batched exactly as records written one by one.
 */
import assert from "node:assert/strict";
import pino from "pino";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { loadConfig } from "../../container/src/config";
import { EngineState } from "../../container/src/batching/state";
import { TypeCatalog } from "../../container/src/source/decoding/catalog";
import { ReadThrottle, copySnapshot } from "../../container/src/source/snapshot";
import { readdirSync } from "node:fs";
import type { SnapshotTranscode } from "../../container/src/config";
import { FileSink } from "../../container/src/sink/file";
import { testBatcher } from "./fixtures/batcher";
import { engineEnv, landingDir, waitFor } from "./fixtures/harness";
import { readLanding } from "./fixtures/landing";
import { noopMetrics } from "./fixtures/metrics";

const TYPES = `id int PRIMARY KEY, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, num numeric, b bool, j json, jb jsonb,
  tstz timestamptz, ts timestamp, d date, t time, by bytea, arr_i int[], arr_t text[], arr_2d int[], arr_j jsonb[],
  e mood, e_arr mood[], u uuid, dom posint, txt text, iv interval, nul text, ts_arr timestamptz[]`;

describe("engine: snapshot transcoding in worker threads", function () {
  this.timeout(120_000);
  let pg: TestPostgres;
  const table = { schema: "public", table: "tc_types" };
  const tsMs = 1_795_000_000_000;

  before(async () => {
    pg = await startPostgres();
    await pg.query(`CREATE TYPE mood AS ENUM ('sad', 'happy');
      CREATE DOMAIN posint AS int CHECK (VALUE > 0);
      CREATE TABLE public.tc_types (${TYPES});
      INSERT INTO public.tc_types VALUES (
        1, -32768, 2147483647, 9007199254740993, 'Infinity', 'NaN', 'NaN', true, '{"k": [1, 2]}', '{"k": {"z": null, "s": "a\\nb\\\\c"}}',
        '2026-11-21 13:00:00.123456+01', '2026-11-21 12:00:00.123456', '2026-11-21', '12:34:56.789', '\\x00ff10',
        '{1,NULL,3}', '{"a b","c,d","e\\"f",NULL,"NULL"}', '{{1,2},{3,4}}', ARRAY['{"a":1}'::jsonb, '[1, 2]'],
        'happy', '{sad,happy}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 5, E'line1\\nline2\\t"quoted" \\u00fc \\\\ \\u0001\\u000b\\r', '1 day 2 hours', NULL,
        ARRAY['2026-01-01 00:00:00+00'::timestamptz, 'infinity']);
      INSERT INTO public.tc_types (id, i8, num, f8, f4, b, d, tstz, ts, j, arr_i, by, txt)
        VALUES (2, -9223372036854775808, '12345678901234567890.123456789', 1.5e300, '-Infinity', false, 'infinity', '-infinity', '4713-01-01 00:00:00 BC', E'{\\n "pretty": "\\\\u00e9"\\n}', '{}', '\\x', '');
      -- Many rows (several input and output blocks), some large (TOASTed, more than a block on their own).
      INSERT INTO public.tc_types (id, i8, num, jb, tstz, txt, by)
        SELECT g, g::bigint * 1000003, (g / 7.0)::numeric(20, 6), jsonb_build_object('n', g, 's', repeat('é', g % 50)),
               '2026-01-01 00:00:00+00'::timestamptz + g * interval '1 second',
               CASE WHEN g % 5000 = 0 THEN repeat(md5(g::text), 40000) ELSE repeat(E'a\\tb"', g % 30) END,
               decode(md5(g::text), 'hex')
          FROM generate_series(3, 30000) g;
      CREATE PUBLICATION tc_pub FOR TABLE public.tc_types;
      ANALYZE public.tc_types`);
  });
  after(async () => {
    await pg?.stop();
  });

  /** Copies the table under one exported snapshot with `transcode`; returns the landing objects' keys and lines. */
  async function copied(snapshotName: string, transcode: SnapshotTranscode): Promise<{ keys: string[]; lines: string[]; rows: number; estimates: [string, number][] }> {
    const dir = await landingDir();
    const config = loadConfig(engineEnv(pg, dir, { PG_PUBLICATION: "tc_pub" }));
    const sink = new FileSink(`file://${dir}`, dir);
    const state = await EngineState.load(sink, "tc_copy");
    // Small batches: many object boundaries inside the record blocks.
    const { batcher, failures } = testBatcher(sink, state, { maxSize: 997, maxBytes: 300_000 });
    const estimates: [string, number][] = [];
    const metrics = { ...noopMetrics(), snapshotEstimate: (t: string, rows: number) => void estimates.push([t, rows]) };
    const result = await copySnapshot({ config, snapshotName, consistentPoint: 42n, tsMs, tables: [table], catalog: new TypeCatalog(), batcher, throttle: new ReadThrottle(), logger: pino({ level: "silent" }), metrics, signal: new AbortController().signal, parallelism: 1, transcode });
    await batcher.flushAll();
    await batcher.close();
    assert.deepEqual(failures, []);
    const files = await readLanding(dir, "public.tc_types");
    return { keys: files.map((f) => f.key), lines: files.flatMap((f) => f.lines), rows: result.rows, estimates };
  }

  it("lands the same bytes in the same objects as the engine's thread, and what the stream's encoders make of each value", async () => {
    const exporter = await pg.connect();
    try {
      await exporter.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      const { rows } = await exporter.query<{ name: string }>("SELECT pg_export_snapshot() AS name");
      const threads = await copied(rows[0].name, "threads");
      const inline = await copied(rows[0].name, "inline");
      assert.equal(threads.rows, 30_000);
      // ANALYZE read every row of so small a table: the estimate is exact.
      assert.deepEqual(threads.estimates, [["public.tc_types", 30_000]], "the table's estimated rows are reported once");
      assert.equal(threads.lines.length, 30_001, "the rows and the barrier");
      assert.deepEqual(threads.keys, inline.keys, "the same objects");
      assert.ok(threads.keys.length > 30, `${threads.keys.length} objects`);
      for (let i = 0; i < threads.lines.length; i++) assert.equal(threads.lines[i], inline.lines[i], `line ${i}`);

      // Each value's text (the same output functions as COPY's, under the settings the engine pins) through the catalog's encoders.
      await exporter.query("SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET extra_float_digits = 3; SET bytea_output = 'hex'; SET IntervalStyle = 'iso_8601'");
      const catalog = new TypeCatalog();
      const { rows: columns } = await exporter.query<{ name: string; oid: number }>(
        "SELECT attname::text AS name, atttypid::int AS oid FROM pg_attribute WHERE attrelid = 'public.tc_types'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
      );
      await catalog.loadTypes(exporter, catalog.missingTypes(columns.map((c) => c.oid)));
      const text = await exporter.query({ text: "SELECT * FROM ONLY public.tc_types", types: { getTypeParser: () => (v: string) => v } });
      const byId = new Map(threads.lines.slice(1).map((l) => [/,"id":(-?\d+)/.exec(l)![1], l]));
      for (const [n, row] of (text.rows as Record<string, string | null>[]).entries()) {
        const values = columns.map((c) => `,${JSON.stringify(c.name)}:${row[c.name] === null ? "null" : catalog.encoder(c.oid)!(row[c.name]!)}`).join("");
        const line = byId.get(String(row.id));
        assert.ok(line, `row ${row.id} landed`);
        assert.equal(line.replace(/"__seq":\d+/, '"__seq":0'), `{"__op":"r","__deleted":"false","__lsn":42,"__seq":0,"__ts_ms":${tsMs}${values}}`, `row ${n} (id ${row.id})`);
      }
    } finally {
      await exporter.end();
    }
  });

  it("ends the worker threads when the session's signal aborts the snapshot", async () => {
    // Worker threads are threads of this process: they are gone when /proc/self/task is back to its count.
    const threads = () => readdirSync("/proc/self/task").length;
    const dir = await landingDir();
    const config = loadConfig(engineEnv(pg, dir, { PG_PUBLICATION: "tc_pub" }));
    const sink = new FileSink(`file://${dir}`, dir);
    const { batcher } = testBatcher(sink, await EngineState.load(sink, "tc_abort"), { maxSize: 997, maxBytes: 300_000 });
    const exporter = await pg.connect();
    try {
      await exporter.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      const { rows } = await exporter.query<{ name: string }>("SELECT pg_export_snapshot() AS name");
      const before = threads();
      let during = 0;
      const stop = new AbortController();
      const metrics = {
        ...noopMetrics(),
        snapshotProgress: (_table: string, copied: number) => {
          if (copied === 0 || stop.signal.aborted) return;
          during = threads();
          stop.abort();
        },
      };
      await assert.rejects(
        copySnapshot({ config, snapshotName: rows[0].name, consistentPoint: 42n, tsMs, tables: [table], catalog: new TypeCatalog(), batcher, throttle: new ReadThrottle(), logger: pino({ level: "silent" }), metrics, signal: stop.signal, parallelism: 1, transcode: "threads" }),
        /interrupted/,
      );
      assert.ok(during > before, `a transcoding thread ran (${before} threads before, ${during} during the copy)`);
      await waitFor("the transcoding thread to end", async () => threads() <= before, 10_000, 50);
    } finally {
      await batcher.discard();
      await batcher.close();
      await exporter.end();
    }
  });

  it("batches record blocks exactly as records written one by one", async () => {
    const lines = Array.from({ length: 5000 }, (_v, i) => `{"__op":"r","__seq":${i + 1},"v":"${"x".repeat(i % 7 === 0 ? 4000 : i % 13)}"}`);
    const land = async (write: (batcher: ReturnType<typeof testBatcher>["batcher"], buffer: ReturnType<ReturnType<typeof testBatcher>["batcher"]["buffer"]>) => void) => {
      const dir = await landingDir();
      const sink = new FileSink(`file://${dir}`, dir);
      const { batcher, failures } = testBatcher(sink, await EngineState.load(sink, "tc_blocks"), { maxSize: 250, maxBytes: 20_000 });
      write(batcher, batcher.buffer("public.blocks"));
      await batcher.flushAll();
      await batcher.close();
      assert.deepEqual(failures, []);
      return (await readLanding(dir, "public.blocks")).map((f) => [f.key, f.lines.join("\n")]);
    };
    const one = await land((batcher, buffer) => lines.forEach((l, i) => batcher.add(buffer, l, 7n, i + 1, "date=2026-12-02/hour=00")));
    const blocks = await land((batcher, buffer) => {
      for (let from = 0; from < lines.length; from += 777) {
        const part = lines.slice(from, from + 777).map((l) => Buffer.from(l + "\n"));
        const ends = new Int32Array(part.length);
        part.reduce((end, b, i) => (ends[i] = end + b.length), 0);
        batcher.appendRecords(buffer, 7n, "date=2026-12-02/hour=00", Buffer.concat(part), ends, part.length, from + 1);
      }
    });
    assert.ok(one.length > 20, `${one.length} objects`);
    assert.deepEqual(blocks, one);
  });
});
