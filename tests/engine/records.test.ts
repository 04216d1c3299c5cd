/**
 * The landing record format against a real PostgreSQL: every type of the contract (snapshot and
 * stream encode alike), PK-changing updates, unchanged TOAST values, truncate, schema changes.
 */
import assert from "node:assert/strict";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { engineEnv, landingDir, startEngine, waitFor, waitForRecords, type InProcessEngine } from "./fixtures/harness";
import { readLanding, readManifests, rebuildTable, type LandingRecord } from "./fixtures/landing";

const META = ["__op", "__deleted", "__lsn", "__seq", "__ts_ms"];
const withoutMeta = (r: Record<string, unknown>) => Object.fromEntries(Object.entries(r).filter(([k]) => !META.includes(k)));
/** A raw line with the metadata fields removed (they come first, then the columns). */
const columnsText = (line: string) => line.replace(/^\{"__op":"\w","__deleted":"\w+","__lsn":\d+,"__seq":\d+,"__ts_ms":\d+,?/, "{");

describe("engine: landing records", function () {
  this.timeout(120_000);
  let pg: TestPostgres;
  let dir: string;
  let engine: InProcessEngine;

  before(async () => {
    pg = await startPostgres();
    await pg.query(`
      CREATE TYPE mood AS ENUM ('sad', 'happy');
      CREATE DOMAIN posint AS int CHECK (VALUE > 0);
      CREATE TABLE public.types (
        id int PRIMARY KEY, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, num numeric, b bool, j json, jb jsonb,
        tstz timestamptz, ts timestamp, d date, t time, by bytea, arr_i int[], arr_t text[], arr_2d int[], arr_j jsonb[],
        e mood, e_arr mood[], u uuid, dom posint, txt text, iv interval, nul text, ts_arr timestamptz[]);
      CREATE TABLE public.pk (id int PRIMARY KEY, v text);
      CREATE TABLE public.pkfull (id int PRIMARY KEY, v text, w int);
      ALTER TABLE public.pkfull REPLICA IDENTITY FULL;
      CREATE TABLE public.toasty (id int PRIMARY KEY, big text, small int);
      CREATE TABLE public.trunc_a (id int PRIMARY KEY);
      CREATE TABLE public.trunc_b (id int PRIMARY KEY);
      CREATE TABLE public.evolving (id int PRIMARY KEY, a text, b text);
    `);
    await pg.query(`INSERT INTO public.types VALUES (
      1, -32768, 2147483647, 9007199254740993, 'Infinity', 'NaN', 'NaN', true, '{"k": [1, 2]}', '{"k": {"z": null, "s": "a\\nb\\\\c"}}',
      '2026-11-21 13:00:00.123456+01', '2026-11-21 12:00:00.123456', '2026-11-21', '12:34:56.789', '\\x00ff10',
      '{1,NULL,3}', '{"a b","c,d","e\\"f",NULL,"NULL"}', '{{1,2},{3,4}}', ARRAY['{"a":1}'::jsonb, '[1, 2]'],
      'happy', '{sad,happy}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 5, E'line1\\nline2\\t"quoted" \\u00fc \\\\ \\u0001\\u000b\\r', '1 day 2 hours', NULL,
      ARRAY['2026-01-01 00:00:00+00'::timestamptz, 'infinity'])`);
    await pg.query("INSERT INTO public.pk VALUES (1, 'one'), (2, 'two'); INSERT INTO public.pkfull VALUES (1, 'one', 10)");
    dir = await landingDir();
    engine = startEngine(
      engineEnv(pg, dir, {
        TABLE_INCLUDE: "public.types,public.pk,public.pkfull,public.toasty,public.trunc_a,public.trunc_b,public.evolving",
        PG_SLOT: "records_slot",
        PG_PUBLICATION: "records_pub",
      }),
    );
    await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"));
  });

  after(async () => {
    await engine?.stop();
    await pg?.stop();
  });

  it("encodes every type of the contract, the same way in the snapshot and the stream", async () => {
    // Re-write row 1 with its own values (an update streams all columns), and stream a second row.
    await pg.query("UPDATE public.types SET id = id WHERE id = 1");
    await pg.query(`INSERT INTO public.types (id, i8, num, f8, f4, b, d, tstz, ts, j, arr_i, by)
      VALUES (2, -9223372036854775808, '12345678901234567890.123456789', 1.5e300, '-Infinity', false, 'infinity', '-infinity', '2026-11-21 00:00:00', '[]', '{}', '\\x')`);
    const files = await waitFor("type records", async () => {
      const f = await readLanding(dir, "public.types");
      return f.flatMap((x) => x.lines).length >= 3 && f;
    });
    const lines = files.flatMap((f) => f.lines);
    const snapshotLine = lines.find((l) => l.startsWith('{"__op":"r"'))!;
    const updateLine = lines.find((l) => l.startsWith('{"__op":"u"'))!;
    assert.ok(snapshotLine && updateLine);
    assert.equal(columnsText(updateLine), columnsText(snapshotLine), "COPY and pgoutput encode alike");
    assert.match(snapshotLine, /"i8":9007199254740993[,}]/, "int8 beyond 2^53 stays exact");
    const row = withoutMeta(JSON.parse(snapshotLine));
    assert.deepEqual(row, {
      id: 1,
      i2: -32768,
      i4: 2147483647,
      i8: 9007199254740992, // JSON.parse rounds; the text assertion above checks the digits
      f4: "Infinity",
      f8: "NaN",
      num: "NaN",
      b: true,
      j: { k: [1, 2] },
      jb: { k: { z: null, s: "a\nb\\c" } },
      tstz: "2026-11-21T12:00:00.123456Z",
      ts: "2026-11-21T12:00:00.123456",
      d: "2026-11-21",
      t: "12:34:56.789",
      by: Buffer.from([0, 255, 16]).toString("base64"),
      arr_i: [1, null, 3],
      arr_t: ["a b", "c,d", 'e"f', null, "NULL"],
      arr_2d: [
        [1, 2],
        [3, 4],
      ],
      arr_j: [{ a: 1 }, [1, 2]],
      e: "happy",
      e_arr: ["sad", "happy"],
      u: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
      dom: 5,
      txt: 'line1\nline2\t"quoted" ü \\ \u0001\v\r',
      iv: "P1DT2H",
      nul: null,
      ts_arr: ["2026-01-01T00:00:00Z", "infinity"],
    });
    const second = lines.find((l) => l.startsWith('{"__op":"c"'))!;
    assert.match(second, /"i8":-9223372036854775808[,}]/);
    const r2 = JSON.parse(second);
    assert.equal(r2.num, "12345678901234567890.123456789");
    assert.equal(r2.f8, 1.5e300);
    assert.equal(r2.f4, "-Infinity");
    assert.equal(r2.b, false);
    assert.equal(r2.d, "infinity");
    assert.equal(r2.tstz, "-infinity");
    assert.equal(r2.ts, "2026-11-21T00:00:00");
    assert.deepEqual(r2.j, []);
    assert.deepEqual(r2.arr_i, []);
    assert.equal(r2.by, "");
    assert.equal(r2.nul, null);
    for (const l of lines) assert.ok(!/"__unchanged"/.test(l));
  });

  it("turns a primary-key change into a delete of the old key and an insert of the new row", async () => {
    await pg.query("UPDATE public.pk SET id = 10 WHERE id = 1");
    await pg.query("UPDATE public.pkfull SET id = 20, w = 11 WHERE id = 1");
    await pg.query("UPDATE public.pkfull SET v = 'still twenty' WHERE id = 20");
    const pk = await waitForRecords(dir, "public.pk", 4);
    const [d, c] = pk.slice(2);
    assert.deepEqual([d.__op, d.__deleted, withoutMeta(d)], ["d", "true", { id: 1 }]);
    assert.deepEqual([c.__op, c.__deleted, withoutMeta(c)], ["c", "false", { id: 10, v: "one" }]);
    assert.equal(c.__lsn, d.__lsn);
    assert.equal(c.__seq, d.__seq + 1);
    const full = await waitForRecords(dir, "public.pkfull", 4);
    assert.deepEqual(
      full.slice(1).map((r) => [r.__op, withoutMeta(r)]),
      [
        ["d", { id: 1, v: "one", w: 10 }], // REPLICA IDENTITY FULL: all old values
        ["c", { id: 20, v: "one", w: 11 }],
        ["u", { id: 20, v: "still twenty", w: 11 }],
      ],
    );
    const rebuilt = await rebuildTable(dir, "public.pk", ["id"]);
    assert.deepEqual([...rebuilt.keys()].sort(), ["[10]", "[2]"]);
  });

  it("lists unchanged TOASTed columns in __unchanged instead of writing them as null", async () => {
    await pg.query("INSERT INTO public.toasty SELECT 1, string_agg(md5(g::text), '') , 1 FROM generate_series(1, 4000) g");
    await pg.query("UPDATE public.toasty SET small = 2 WHERE id = 1");
    const records = await waitForRecords(dir, "public.toasty", 2);
    const [insert, update] = records;
    assert.equal((insert.big as string).length, 4000 * 32);
    assert.equal(update.__op, "u");
    assert.deepEqual(update.__unchanged, ["big"]);
    assert.ok(!("big" in update), "an unchanged TOASTed column is absent, never null");
    assert.equal(update.small, 2);
    const rebuilt = await rebuildTable(dir, "public.toasty", ["id"]);
    assert.equal((rebuilt.get("[1]")!.big as string).length, 4000 * 32);
  });

  it("emits one t event per truncated table", async () => {
    await pg.query("INSERT INTO public.trunc_a VALUES (1), (2); INSERT INTO public.trunc_b VALUES (1)");
    await pg.query("TRUNCATE public.trunc_a, public.trunc_b");
    await pg.query("INSERT INTO public.trunc_a VALUES (3)");
    const a = await waitForRecords(dir, "public.trunc_a", 4);
    const b = await waitForRecords(dir, "public.trunc_b", 2);
    assert.deepEqual(a.map((r) => r.__op), ["c", "c", "t", "c"]);
    const t = a[2];
    assert.deepEqual(Object.keys(t).sort(), ["__deleted", "__lsn", "__op", "__seq", "__ts_ms"]);
    assert.equal(t.__deleted, "false");
    assert.deepEqual(b.map((r) => r.__op), ["c", "t"]);
    assert.equal(b[1].__lsn, t.__lsn, "both truncations belong to one transaction");
    assert.notEqual(b[1].__seq, t.__seq);
    assert.deepEqual([...(await rebuildTable(dir, "public.trunc_a", ["id"])).keys()], ["[3]"]);
  });

  it("picks up added, dropped and renamed columns in the next records", async () => {
    await pg.query("INSERT INTO public.evolving VALUES (1, 'a1', 'b1')");
    await pg.query("ALTER TABLE public.evolving ADD COLUMN c int DEFAULT 7");
    await pg.query("INSERT INTO public.evolving VALUES (2, 'a2', 'b2', 8)");
    await pg.query("ALTER TABLE public.evolving DROP COLUMN b");
    await pg.query("ALTER TABLE public.evolving RENAME COLUMN a TO alpha");
    await pg.query("UPDATE public.evolving SET c = 9 WHERE id = 1");
    const records: LandingRecord[] = await waitForRecords(dir, "public.evolving", 3);
    assert.deepEqual(
      records.map((r) => withoutMeta(r)),
      [
        { id: 1, a: "a1", b: "b1" },
        { id: 2, a: "a2", b: "b2", c: 8 },
        { id: 1, alpha: "a1", c: 9 },
      ],
    );
    // A manifest per schema, each named by the first record written under it.
    const manifests = await readManifests(dir, "public.evolving");
    const columnsOf = (m: Record<string, unknown>) => (m.columns as { name: string; spark_type: string }[]).map((c) => `${c.name} ${c.spark_type}`);
    assert.deepEqual(
      manifests.map((m) => columnsOf(m.manifest)),
      [
        ["id INT", "a STRING", "b STRING"],
        ["id INT", "a STRING", "b STRING", "c INT"],
        ["id INT", "alpha STRING", "c INT"],
      ],
    );
    const at = (r: LandingRecord) => [r.__lsn, r.__seq];
    assert.deepEqual(manifests.slice(1).map((m) => [m.manifest.since_lsn, m.manifest.since_seq]), [at(records[1]), at(records[2])]);
    const objects = await readLanding(dir, "public.evolving");
    for (const o of objects) {
      const first = o.records[0];
      const applies = manifests.filter((m) => (m.manifest.since_lsn as number) < first.__lsn || (m.manifest.since_lsn === first.__lsn && (m.manifest.since_seq as number) <= first.__seq)).pop();
      const names = columnsOf(applies!.manifest).map((c) => c.split(" ")[0]);
      for (const r of o.records) for (const k of Object.keys(r)) if (!k.startsWith("__")) assert.ok(names.includes(k), `${o.key}: ${k} is in the manifest that applies (${names})`);
    }
  });

  it("describes every type of the contract in the schema manifest, with its Spark type", async () => {
    const [manifest] = (await readManifests(dir, "public.types")).map((m) => m.manifest);
    const columns = Object.fromEntries((manifest.columns as { name: string; pg_type: string; spark_type: string; nullable: boolean }[]).map((c) => [c.name, `${c.pg_type} → ${c.spark_type}`]));
    assert.deepEqual(columns, {
      id: "integer → INT",
      i2: "smallint → SMALLINT",
      i4: "integer → INT",
      i8: "bigint → BIGINT",
      f4: "real → FLOAT",
      f8: "double precision → DOUBLE",
      num: "numeric → STRING",
      b: "boolean → BOOLEAN",
      j: "json → STRING",
      jb: "jsonb → STRING",
      tstz: "timestamp with time zone → TIMESTAMP",
      ts: "timestamp without time zone → TIMESTAMP_NTZ",
      d: "date → DATE",
      t: "time without time zone → STRING",
      by: "bytea → BINARY",
      arr_i: "integer[] → ARRAY<INT>",
      arr_t: "text[] → ARRAY<STRING>",
      arr_2d: "integer[] → ARRAY<INT>",
      arr_j: "jsonb[] → ARRAY<STRING>",
      e: "mood → STRING",
      e_arr: "mood[] → ARRAY<STRING>",
      u: "uuid → STRING",
      dom: "posint → INT",
      txt: "text → STRING",
      iv: "interval → STRING",
      nul: "text → STRING",
      ts_arr: "timestamp with time zone[] → ARRAY<STRING>",
    });
    assert.deepEqual([manifest.primary_key, manifest.key, manifest.replica_identity], [["id"], ["id"], "default"]);
    assert.equal((manifest.columns as { nullable: boolean }[])[0].nullable, false);
  });
});
