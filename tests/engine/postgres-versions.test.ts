/**
 * The engine end to end on the PostgreSQL majors whose features differ (the rest of the suite runs
 * 17, or the major `CDC_TEST_PG_MAJOR` names): the oldest supported (11: no binary mode, no TID
 * range scans, no logical messages in pgoutput, no generated columns), 14 (the first three) and 18
 * (stored generated columns in the stream). On each: the initial snapshot and the streamed insert/update/delete/TRUNCATE of a
 * table with every landing-contract type land the same records, in the format the version gets
 * (binary from 14, text before), a table of 2 × 1,024 blocks is copied in parallel CTID ranges from
 * 14 on (one range before), and `cdc-engine snapshot --table` copies the table again while
 * streaming on 14+ and is refused with one clear message before.
 */
import assert from "node:assert/strict";
import pino from "pino";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { VERSION_TEST_MAJORS } from "../support/postgres-majors";
import { loadConfig } from "../../container/src/config";
import { runEngine } from "../../container/src/engine";
import { engineEnv, landingDir, runCli, waitFor } from "./fixtures/harness";
import { noopMetrics } from "./fixtures/metrics";
import { readLanding, readRecords, type LandingRecord } from "./fixtures/landing";

/** One column per landing-contract type: its SQL type, a value as SQL, and the landed JSON value. */
const COLUMNS: { name: string; type: string; sql: string; landed: unknown }[] = [
  { name: "i2", type: "int2", sql: "-32768", landed: -32768 },
  { name: "i4", type: "int4", sql: "2147483647", landed: 2147483647 },
  { name: "i8", type: "int8", sql: "9007199254740993", landed: "9007199254740993 (exact, checked in the line)" },
  { name: "n", type: "numeric(12,3)", sql: "-123.45", landed: "-123.450" },
  { name: "nn", type: "numeric", sql: "'NaN'", landed: "NaN" },
  { name: "f4", type: "float4", sql: "0.1", landed: 0.1 },
  { name: "f8", type: "float8", sql: "1.5e300", landed: 1.5e300 },
  { name: "b", type: "bool", sql: "true", landed: true },
  { name: "t", type: "text", sql: `E'line1\\nline2 "q" \\u00fc'`, landed: 'line1\nline2 "q" ü' },
  { name: "vc", type: "varchar(10)", sql: "'a b'", landed: "a b" },
  { name: "c", type: "char(4)", sql: "'ab'", landed: "ab  " },
  { name: "j", type: "json", sql: `'{"k": [1, 2]}'`, landed: { k: [1, 2] } },
  { name: "jb", type: "jsonb", sql: `'{"z": null, "a": 1.50}'`, landed: { a: 1.5, z: null } },
  { name: "by", type: "bytea", sql: "'\\x00ff10'", landed: "AP8Q" },
  { name: "u", type: "uuid", sql: "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", landed: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" },
  { name: "d", type: "date", sql: "'0044-03-15 BC'", landed: "0044-03-15 BC" },
  { name: "tm", type: "time", sql: "'12:34:56.7'", landed: "12:34:56.7" },
  { name: "ttz", type: "timetz", sql: "'12:00:00+05:30'", landed: "12:00:00+05:30" },
  { name: "ts", type: "timestamp", sql: "'2026-11-21 12:00:00.123456'", landed: "2026-11-21T12:00:00.123456" },
  { name: "tstz", type: "timestamptz", sql: "'2026-11-21 13:00:00.5+01'", landed: "2026-11-21T12:00:00.5Z" },
  { name: "tinf", type: "timestamptz", sql: "'infinity'", landed: "infinity" },
  { name: "iv", type: "interval", sql: "'1 year 2 months 3 days 04:05:06.789'", landed: "P1Y2M3DT4H5M6.789S" },
  { name: "mac", type: "macaddr", sql: "'08:00:2b:01:02:03'", landed: "08:00:2b:01:02:03" },
  { name: "ia", type: "int4[]", sql: "'{1,NULL,3}'", landed: [1, null, 3] },
  { name: "ta", type: "text[]", sql: `'{"a b",NULL,"c,d"}'`, landed: ["a b", null, "c,d"] },
  { name: "e", type: "mood", sql: "'with space'", landed: "with space" },
  { name: "dm", type: "posint", sql: "5", landed: 5 },
];

const ROW = COLUMNS.map((c) => `(${c.sql})::${c.type}`).join(", ");
/** ~1 KB a row, 7 rows a block: 16,000 rows are past 2 × 1,024 blocks, the size a table is split from. */
const BIG_ROWS = 16_000;

/** A landed record's column values and its stored generated column `gen`, the i8 column left out (checked in the raw line). */
function values(record: LandingRecord): Record<string, unknown> {
  return { ...Object.fromEntries(COLUMNS.filter((c) => c.name !== "i8").map((c) => [c.name, record[c.name]])), gen: record.gen };
}
const LANDED = Object.fromEntries(COLUMNS.filter((c) => c.name !== "i8").map((c) => [c.name, c.landed]));

for (const major of VERSION_TEST_MAJORS) {
  describe(`engine on PostgreSQL ${major}`, function () {
    this.timeout(180_000);
    let pg: TestPostgres;
    const logs: string[] = [];
    let dir: string;
    let env: Record<string, string>;
    let stopEngine: (() => Promise<void>) | undefined;
    let engineDone: Promise<void> | undefined;
    // Stored generated columns (12+) are published from 18 on (publish_generated_columns); before, never.
    // Floats land as PostgreSQL prints them under extra_float_digits=3: from 12 the shortest digits
    // that read back as the same value, in 11 always 9 (float4) / 17 (float8) significant digits,
    // which read back as the same float4 / float8 too.
    const expected = (id: number) => ({ ...LANDED, f4: major >= 12 ? 0.1 : 0.100000001, gen: major >= 18 ? id * 2 : undefined });
    const generated = major >= 12 ? ", gen int GENERATED ALWAYS AS (id * 2) STORED" : "";

    before(async () => {
      pg = await startPostgres({ major });
      assert.equal(pg.major, major);
      await pg.query(`CREATE TYPE mood AS ENUM ('sad', 'with space'); CREATE DOMAIN posint AS int CHECK (VALUE > 0);
        CREATE TABLE public.all_types (id int PRIMARY KEY, ${COLUMNS.map((c) => `${c.name} ${c.type}`).join(", ")}${generated});
        INSERT INTO public.all_types VALUES (1, ${ROW}), (2, ${ROW});
        INSERT INTO public.all_types (id) VALUES (3);
        CREATE TABLE public.big (id int PRIMARY KEY, pad text);
        INSERT INTO public.big SELECT g, repeat('x', 1000) FROM generate_series(1, ${BIG_ROWS}) g;
        CREATE PUBLICATION versions_pub FOR TABLE public.all_types, public.big ${major >= 18 ? "WITH (publish_generated_columns = stored)" : ""};
        ANALYZE public.big`);
      dir = await landingDir();
      env = engineEnv(pg, dir, { PG_SLOT: "versions_slot", PG_PUBLICATION: "versions_pub", TABLE_INCLUDE: "public.all_types,public.big", PG_BINARY: "auto", SNAPSHOT_PARALLELISM: "4", BATCH_MAX_WAIT_MS: "100", INCREMENTAL_CHUNK_SIZE: "2", LOG_LEVEL: "info" });
      const controller = new AbortController();
      const logger = pino({ level: "info" }, { write: (line: string) => void logs.push(line) });
      engineDone = runEngine(loadConfig(env), { logger, metrics: noopMetrics(), signal: controller.signal });
      engineDone.catch(() => undefined);
      stopEngine = async () => {
        controller.abort();
        await engineDone;
      };
      await waitFor("streaming", async () => logs.some((l) => l.includes('"msg":"streaming changes"')), 120_000);
    });

    after(async () => {
      await stopEngine?.();
      await pg?.stop();
    });

    it(`streams in ${major >= 14 ? "binary (14+)" : "text (binary mode needs 14)"} with PG_BINARY=auto`, () => {
      const line = logs.find((l) => l.includes('"msg":"streaming changes"'))!;
      assert.match(line, major >= 14 ? /"format":"binary"/ : /"format":"text"/);
    });

    it("lands the initial snapshot of every type exactly", async () => {
      const records = await waitFor("3 snapshot records", async () => {
        const r = (await readRecords(dir, "public.all_types")).filter((x) => x.__op === "r");
        return r.length === 3 && r;
      });
      assert.deepEqual(records.map((r) => r.id).sort(), [1, 2, 3]);
      for (const r of records.filter((x) => x.id !== 3)) assert.deepEqual(values(r), expected(r.id as number));
      assert.ok(records.find((r) => r.id === 3) && COLUMNS.every((c) => records.find((r) => r.id === 3)![c.name] === null), "the row of NULLs");
      if (major < 18) assert.ok(records.every((r) => !("gen" in r)), "no generated column before 18");
      const lines = (await readLanding(dir, "public.all_types")).flatMap((f) => f.lines);
      assert.equal(lines.filter((l) => l.includes('"i8":9007199254740993,')).length, 2, "int8 beyond 2^53 exact");
    });

    it(`copies a table of 2 × 1,024 blocks ${major >= 14 ? "in parallel CTID ranges (14+)" : "as one range (no TID range scans before 14)"}`, async () => {
      const snapshot = await waitFor("every row of public.big", async () => {
        const r = (await readRecords(dir, "public.big")).filter((x) => x.__op === "r");
        return r.length === BIG_ROWS && r;
      }, 60_000);
      assert.equal(new Set(snapshot.map((r) => r.id)).size, BIG_ROWS);
      // A split table's ranges number their rows in separate parts of its __seq space.
      const parts = new Set(snapshot.map((r) => Math.floor(r.__seq / 1e9)));
      if (major >= 14) assert.ok(parts.size >= 2, `rows in ${parts.size} __seq parts`);
      else assert.ok(snapshot.every((r, i) => r.__seq === i + 1), "one range, numbered 1, 2, 3 …");
    });

    it("streams insert, update, delete and TRUNCATE of every type exactly", async () => {
      await pg.query(`INSERT INTO public.all_types VALUES (10, ${ROW})`);
      await pg.query("UPDATE public.all_types SET b = false, n = 7 WHERE id = 10");
      await pg.query("DELETE FROM public.all_types WHERE id = 2");
      await pg.query("TRUNCATE public.all_types");
      const streamed = await waitFor("4 streamed records", async () => {
        const r = (await readRecords(dir, "public.all_types")).filter((x) => x.__op !== "r");
        return r.length >= 4 && r;
      });
      assert.deepEqual(
        streamed.map((r) => [r.__op, r.id ?? null]),
        [
          ["c", 10],
          ["u", 10],
          ["d", 2],
          ["t", null],
        ],
      );
      assert.deepEqual(values(streamed[0]), expected(10));
      assert.deepEqual(values(streamed[1]), { ...expected(10), b: false, n: "7.000" });
      assert.equal(streamed[2].__deleted, "true");
      const lines = (await readLanding(dir, "public.all_types")).flatMap((f) => f.lines);
      assert.equal(lines.filter((l) => l.includes('"i8":9007199254740993,')).length, 2 + 2, "int8 exact in the stream");
    });

    if (major >= 14) {
      it("takes an incremental snapshot on request while streaming (14+)", async () => {
        await pg.query(`INSERT INTO public.all_types VALUES (20, ${ROW}), (21, ${ROW}), (22, ${ROW})`);
        const requested = await runCli(["snapshot", "--table", "public.all_types"], env);
        assert.equal(requested.code, 0, requested.stderr);
        const chunks = await waitFor("the incremental snapshot's rows", async () => {
          const records = await readRecords(dir, "public.all_types");
          const afterTruncate = records.slice(records.findIndex((r) => r.__op === "t") + 1);
          const r = afterTruncate.filter((x) => x.__op === "r");
          return r.length === 3 && r;
        });
        assert.deepEqual(chunks.map((r) => r.id), [20, 21, 22]);
        for (const r of chunks) assert.deepEqual(values(r), expected(r.id as number));
      });
    } else {
      it("refuses `cdc-engine snapshot --table` with one clear message (needs 14)", async () => {
        const requested = await runCli(["snapshot", "--table", "public.all_types"], env);
        assert.equal(requested.code, 1, requested.stderr);
        assert.match(requested.stderr, /incremental snapshots need PostgreSQL 14 or later .*this server is 1[0-3]\d{4}\. Take a full snapshot instead/);
        assert.equal((await pg.query("SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = 'versions_slot'"))[0].n, 1);
      });
    }
  });
}
