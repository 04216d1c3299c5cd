/**
 * pgoutput binary mode (PG_BINARY) against a real PostgreSQL: every decoder yields exactly the
 * text PostgreSQL's output function prints for edge values of each type (send format from the
 * type's own send function, text under the engine's pinned session settings); two engines
 * streaming the same workload, one in each format, land byte for byte the same objects; a type
 * without a binary decoder makes auto stream in text (at start, and when it appears mid-stream),
 * and makes on refuse.
 */
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import pino from "pino";
import type { Client } from "pg";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { TypeCatalog } from "../../container/src/source/decoding/catalog";
import { TextScratch } from "../../container/src/source/decoding/binary";
import { loadConfig } from "../../container/src/config";
import { runEngine } from "../../container/src/engine";
import { engineEnv, landingDir, startEngine, waitFor, type InProcessEngine } from "./fixtures/harness";
import { noopMetrics } from "./fixtures/metrics";
import { readRecords } from "./fixtures/landing";

/** The engine's pinned output settings (source/connection.ts). */
const SESSION = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET extra_float_digits = 3; SET bytea_output = 'hex'; SET IntervalStyle = 'iso_8601'";

/** Edge values per type, as SQL literals of that type (an array of them is built in SQL). */
const VALUES: Record<string, string[]> = {
  int2: ["'-32768'", "'0'", "'32767'", "'-1'"],
  int4: ["'-2147483648'", "'2147483647'", "'0'", "'42'"],
  int8: ["'-9223372036854775808'", "'9223372036854775807'", "'9007199254740993'", "'-9007199254740993'", "'0'", "'-1'", "'4294967296'"],
  oid: ["'0'", "'4294967295'", "'16384'"],
  float4: ["'0'", "'-0'", "'1'", "'0.1'", "'1e6'", "'123456'", "'999999'", "'1e-5'", "'1e-4'", "'0.0001234'", "'3.4028235e38'", "'1.4e-45'", "'1.1754944e-38'", "'16777216'", "'16777217'", "'0.3'", "'2.5e-5'", "'NaN'", "'Infinity'", "'-Infinity'", "'-123.456'", "'1e10'", "'33554432'", "'8388608.5'", "'0.5'", "'7'"],
  float8: ["'0'", "'-0'", "'1'", "'0.1'", "'1e15'", "'1e14'", "'999999999999999'", "'123456789012345678'", "'1e-4'", "'1e-5'", "'5e-324'", "'1.7976931348623157e308'", "'2.2250738585072014e-308'", "'NaN'", "'Infinity'", "'-Infinity'", "'1.5e300'", "'-2.5e-300'", "'0.30000000000000004'", "'9007199254740993'", "'1e21'", "'1e100'", "'123.456'"],
  numeric: ["'0'", "'0.00'", "'-0.5'", "'1e-20'", "'123456789.123456789'", "'NaN'", "'Infinity'", "'-Infinity'", "'10000'", "'9999.9999'", "'1e100'", "'-123.450'", "'0.0001'", "'100000000'", "'12345678901234567890.123456789'", "round(0::numeric, 300)", "'1.000000000000000000001'", "'-0.00001000'"],
  bool: ["true", "false"],
  text: ["''", "'plain'", `E'line1\\nline2\\t"quoted" \\u00fc \\\\ \\u0001\\u000b\\r'`, "'日本語 🙂'", "repeat('x', 100000)"],
  varchar: ["'a b'", "''"],
  bpchar: ["'ab'::char(5)", "'x'::char(1)"],
  name: ["'a_name'"],
  json: [`'{"k": [1, 2]}'`, `E'{\\n  "a": "b"\\r\\n}'`, "'[]'", "'\"s\"'"],
  jsonb: [`'{"k": {"z": null, "s": "a\\\\nb"}}'`, "'[1, 2.50, \"x\"]'", "'null'", "'{}'"],
  bytea: ["'\\x'", "'\\x00ff10'", "decode(repeat('ab', 70000), 'hex')"],
  uuid: ["'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "'00000000-0000-0000-0000-000000000000'"],
  date: ["'2026-11-21'", "'infinity'", "'-infinity'", "'0044-03-15 BC'", "'4713-01-01 BC'", "'5874897-12-31'", "'0001-01-01'", "'1999-12-31'", "'2000-01-01'", "'2000-02-29'", "'0999-06-30'", "'1900-03-01'"],
  time: ["'00:00:00'", "'23:59:59.999999'", "'24:00:00'", "'12:34:56.7'", "'01:02:03.000100'"],
  timetz: ["'12:00:00+05:30'", "'12:00:00-08'", "'00:00:00+00'", "'23:59:59.5-05:30:15'", "'12:00:00+14'"],
  timestamp: ["'2026-11-21 12:00:00.123456'", "'infinity'", "'-infinity'", "'0044-03-15 12:00:00 BC'", "'294276-12-31 23:59:59.999999'", "'4713-01-01 00:00:00 BC'", "'1000-01-01 00:00:00'", "'0999-12-31 23:59:59'", "'1970-01-01 00:00:00'", "'1714-01-01 00:00:00.5'", "'2300-01-01 00:00:00.000001'", "'2000-01-01 00:00:00'", "'1999-12-31 23:59:59.999999'", "'10000-01-01 00:00:00'"],
  timestamptz: ["'2026-11-21 13:00:00.123456+01'", "'infinity'", "'-infinity'", "'0044-03-15 12:00:00+00 BC'", "'294276-12-31 23:59:59.999999+00'", "'1000-01-01 00:00:00+00'", "'0999-12-31 23:59:59+00'", "'1969-12-31 23:59:59.9+00'", "'2300-01-01 00:00:00.000001+00'", "'2026-06-01 00:00:00.100000+00'"],
  interval: ["'0'", "'1 day 2 hours'", "'-1 day +2 hours'", "'1 year 2 months 3 days 04:05:06.789'", "'-00:00:00.000001'", "'178000000 years'", "'-178000000 years'", "'2562047788 hours'", "'1 mon -1 day'", "'-1.5 seconds'", "'0.000001 seconds'", "'-1 year -2 months'", "'infinity'", "'-infinity'", "'13 months'", "'-13 months'"],
  macaddr: ["'08:00:2b:01:02:03'", "'ff:ff:ff:ff:ff:ff'"],
  macaddr8: ["'08:00:2b:01:02:03:04:05'"],
  "int4[]": ["'{1,NULL,3}'", "'{}'", "'{{1,2},{3,4}}'", "'[0:1]={7,8}'", "'[-2:-1][3:4]={{1,2},{3,4}}'"],
  "text[]": [`'{"a b","c,d","e\\"f",NULL,"NULL","null","",x,"{y}","back\\\\slash"}'`, "'{}'", "ARRAY[E'tab\\there', E'nl\\nx', '  lead']"],
  "jsonb[]": [`ARRAY['{"a":1}'::jsonb, '[1, 2]', 'null']`],
  "bytea[]": ["ARRAY['\\x0102'::bytea, '\\x', NULL]"],
  "numeric[]": ["'{1.50,NaN,-0.001}'"],
  "float8[]": ["'{1.5,NaN,-Infinity,1e300}'"],
  "timestamptz[]": ["ARRAY['2026-01-01 00:00:00+00'::timestamptz, 'infinity', '0044-03-15 12:00:00+00 BC']"],
  "date[]": ["'{2026-11-21,infinity}'"],
  "bool[]": ["'{t,f,NULL}'"],
  "uuid[]": ["'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}'"],
  "interval[]": ["ARRAY['1 day'::interval, '-1 hour']"],
  mood: ["'happy'", "'sad'", "'with space'"],
  "mood[]": ["'{sad,happy,\"with space\"}'"],
  posint: ["5", "2147483647"],
  "posint[]": ["'{1,2}'"],
};

/**
 * Edge values older servers reject as literals (so their send formats cannot hold them), with the
 * version that first accepts them: `numeric` ±Infinity came in PostgreSQL 14, intervals up to the
 * full 64-bit microsecond range in 15 (interval input was reworked), `interval` ±infinity in 17.
 * (The array literals hold none of them.)
 */
const NEWER_VALUES: { type: string; literal: string; since: number }[] = [
  { type: "numeric", literal: "'Infinity'", since: 140000 },
  { type: "numeric", literal: "'-Infinity'", since: 140000 },
  { type: "interval", literal: "'2562047788 hours'", since: 150000 },
  { type: "interval", literal: "'infinity'", since: 170000 },
  { type: "interval", literal: "'-infinity'", since: 170000 },
];

/** The edge values the server accepts. */
function valuesOn(versionNum: number): Record<string, string[]> {
  const rejected = new Set(NEWER_VALUES.filter((v) => versionNum < v.since).map((v) => `${v.type} ${v.literal}`));
  const out: Record<string, string[]> = {};
  for (const [type, literals] of Object.entries(VALUES)) out[type] = literals.filter((l) => !rejected.has(`${type} ${l}`));
  return out;
}

const FLOAT_TYPES = new Set(["float4", "float8", "float8[]"]);

/**
 * PostgreSQL prints the shortest round-trip digits (what the decoders print, as binary mode exists
 * only from 14) from 12 on; 11 prints 9 / 17 significant digits, so there the decoded text is
 * checked to read back as the same values instead.
 */
const shortestFloats = (versionNum: number) => versionNum >= 120000;

function assertSameFloats(decoded: string, text: string, type: string): void {
  const numbers = (t: string) => t.replace(/[{}]/g, "").split(",").map((x) => (type === "float4" ? Math.fround(Number(x)) : Number(x)));
  assert.deepEqual(numbers(decoded), numbers(text), `${type} ${text}: ${decoded} reads back as another value`);
}

async function typeOid(client: Client, type: string): Promise<number> {
  const { rows } = await client.query<{ oid: number }>("SELECT $1::regtype::oid::int AS oid", [type]);
  return rows[0].oid;
}

/** Text and send format of each value, from PostgreSQL itself. */
async function sendAndText(client: Client, type: string, literals: string[]): Promise<{ text: string; bin: Buffer }[]> {
  const { rows: fns } = await client.query<{ send: string; out: string }>("SELECT typsend::regproc::text AS send, typoutput::regproc::text AS out FROM pg_type WHERE oid = $1::regtype", [type]);
  const values = literals.map((l, i) => `((${l})::${type}, ${i})`).join(", ");
  // The output function, not a cast to text (bool casts to 'true', char(n) drops its padding);
  // the polymorphic ones (arrays, enums) through the cast, which calls them.
  const out = /^(array_out|enum_out)$/.test(fns[0].out) ? "v::text" : `${fns[0].out}(v)::text`;
  const { rows } = await client.query<{ text: string; bin: Buffer }>(`SELECT ${out} AS text, ${fns[0].send}(v) AS bin FROM (VALUES ${values}) AS t(v, n) ORDER BY n`);
  return rows;
}

function decodeToText(catalog: TypeCatalog, oid: number, bin: Buffer): string {
  const decoder = catalog.binaryDecoder(oid);
  assert.ok(decoder, `a binary decoder for type ${oid}`);
  if (decoder.kind === "same") return bin.toString("utf8", decoder.skip);
  if (decoder.kind === "bytea") return "\\x" + bin.toString("hex");
  const out = new TextScratch();
  decoder.toText(bin, 0, bin.length, out);
  return out.buf.toString("utf8", 0, out.pos);
}

describe("engine: pgoutput binary mode", function () {
  this.timeout(180_000);
  let pg: TestPostgres;
  let client: Client;
  let catalog: TypeCatalog;
  let values: Record<string, string[]>;

  before(async () => {
    pg = await startPostgres();
    values = valuesOn(pg.versionNum);
    client = await pg.connect();
    await client.query(SESSION);
    await client.query("CREATE TYPE mood AS ENUM ('sad', 'happy', 'with space'); CREATE DOMAIN posint AS int CHECK (VALUE > 0); CREATE TYPE pair AS (a int, b text)");
    catalog = new TypeCatalog();
  });

  after(async () => {
    await client?.end();
    await pg?.stop();
  });

  it("decodes every type of the landing contract to exactly its text output", async () => {
    for (const [type, literals] of Object.entries(values)) {
      const oid = await typeOid(client, type);
      await catalog.loadTypes(client, [oid]);
      for (const { text, bin } of await sendAndText(client, type, literals)) {
        const decoded = decodeToText(catalog, oid, bin);
        if (FLOAT_TYPES.has(type) && !shortestFloats(pg.versionNum)) assertSameFloats(decoded, text, type);
        else assert.equal(decoded, text, `${type} ${text.slice(0, 80)}`);
      }
    }
  });

  it("prints floats as PostgreSQL's shortest round-trip text, over the whole range", async () => {
    const oids = { float4: await typeOid(client, "float4"), float8: await typeOid(client, "float8") };
    await catalog.loadTypes(client, Object.values(oids));
    const { rows: doubles } = await client.query<{ t: string; b: Buffer }>(
      `SELECT v::text AS t, float8send(v) AS b
         FROM (SELECT (random() - 0.5) * 10 ^ (random() * 600 - 300) AS v FROM generate_series(1, 3000)
               UNION ALL SELECT 2 ^ n::float8 FROM generate_series(-1074, 1023, 7) n
               UNION ALL SELECT round(random() * 10 ^ (n % 18)) FROM generate_series(1, 500) n) s`,
    );
    const check = (type: string, decoded: string, text: string) => (shortestFloats(pg.versionNum) ? assert.equal(decoded, text, `${type} ${text}`) : assertSameFloats(decoded, text, type));
    for (const r of doubles) check("float8", decodeToText(catalog, oids.float8, r.b), r.t);
    const { rows: singles } = await client.query<{ t: string; b: Buffer }>(
      `SELECT v::text AS t, float4send(v) AS b
         FROM (SELECT ((random() - 0.5) * 10 ^ (random() * 74 - 37))::float4 AS v FROM generate_series(1, 3000)
               UNION ALL SELECT (2 ^ n::float8)::float4 FROM generate_series(-149, 127) n
               UNION ALL SELECT round(random() * 10 ^ (n % 9))::float4 FROM generate_series(1, 500) n) s`,
    );
    for (const r of singles) check("float4", decodeToText(catalog, oids.float4, r.b), r.t);
  });

  it("knows which types it cannot decode (composites, ranges, geometric, \"char\", int2vector)", async () => {
    for (const type of ["pair", "int4range", "point", '"char"', "int2vector", "pair[]", "xml", "money"]) {
      const oid = await typeOid(client, type);
      await catalog.loadTypes(client, [oid]);
      assert.equal(catalog.binaryDecoder(oid), undefined, type);
    }
  });

  it("before PostgreSQL 14 (no pgoutput binary mode): auto streams in text, on refuses naming the version", async function () {
    if (pg.versionNum >= 140000) this.skip(); // 14+ has binary mode: the tests below cover it
    await pg.query("CREATE TABLE public.old_server (id int PRIMARY KEY, v numeric); CREATE PUBLICATION old_server_pub FOR TABLE public.old_server");
    const auto = await runWithLogs(pg, { PG_SLOT: "old_auto", PG_PUBLICATION: "old_server_pub", TABLE_INCLUDE: "public.old_server", SNAPSHOT_MODE: "never", PG_BINARY: "auto" });
    await waitFor("streaming", async () => auto.logs.some((l) => l.includes('"msg":"streaming changes"')));
    assert.ok(auto.logs.some((l) => l.includes('"msg":"streaming changes"') && l.includes('"format":"text"')));
    await pg.query("INSERT INTO public.old_server VALUES (1, 1.50)");
    const records = await waitFor("old_server record", async () => {
      const r = await readRecords(auto.dir, "public.old_server");
      return r.length === 1 && r;
    });
    assert.deepEqual([records[0].id, records[0].v], [1, "1.50"]);
    await auto.stop();
    const on = await runWithLogs(pg, { PG_SLOT: "old_on", PG_PUBLICATION: "old_server_pub", TABLE_INCLUDE: "public.old_server", SNAPSHOT_MODE: "never", PG_BINARY: "on" });
    await assert.rejects(on.done, /PG_BINARY=on, but PostgreSQL 1[0-3] has no pgoutput binary mode \(it needs 14 or later\)/);
  });

  describe("two engines, one per format, on the same workload", () => {
    const TABLES = "public.all_types,public.full_ident,public.toasty";
    let text: { engine: InProcessEngine; dir: string };
    let binary: { engine: InProcessEngine; dir: string };

    before(async function () {
      if (pg.versionNum < 140000) this.skip(); // no binary mode before 14; the refusal is tested above
      const columns = Object.keys(values)
        .map((type, i) => `c${i} ${type}`)
        .join(", ");
      await pg.query(`CREATE TABLE public.all_types (id int PRIMARY KEY, ${columns});
        CREATE TABLE public.full_ident (id int, v numeric, ts timestamptz); ALTER TABLE public.full_ident REPLICA IDENTITY FULL;
        CREATE TABLE public.toasty (id int PRIMARY KEY, big text, small int);
        CREATE PUBLICATION formats_pub FOR TABLE ${TABLES};`);
      const start = async (slot: string, mode: string) => {
        const dir = await landingDir();
        // Only full batches are sealed before the stop: the same objects whatever the timing.
        const engine = startEngine(engineEnv(pg, dir, { PG_SLOT: slot, PG_PUBLICATION: "formats_pub", TABLE_INCLUDE: TABLES, SNAPSHOT_MODE: "never", PG_BINARY: mode, BATCH_MAX_SIZE: "4", BATCH_MAX_WAIT_MS: "3600000" }));
        return { engine, dir };
      };
      text = await start("formats_text", "off");
      binary = await start("formats_binary", "on");
      await waitFor("both streaming", async () => text.engine.metrics.phases.includes("streaming") && binary.engine.metrics.phases.includes("streaming"));
    });

    after(async () => {
      await text?.engine.stop();
      await binary?.engine.stop();
    });

    it("lands byte for byte the same objects", async () => {
      const types = Object.keys(values);
      const width = Math.max(...Object.values(values).map((v) => v.length));
      // Row k takes each type's k-th edge value (its last one when it has fewer), plus a row of NULLs.
      for (let k = 0; k < width; k++) {
        const row = types.map((t) => `(${values[t][Math.min(k, values[t].length - 1)]})::${t}`).join(", ");
        await pg.query(`INSERT INTO public.all_types VALUES (${k + 1}, ${row})`);
      }
      await pg.query("INSERT INTO public.all_types (id) VALUES (1000)");
      await pg.query("UPDATE public.all_types SET c0 = 1 WHERE id <= 3; UPDATE public.all_types SET id = id + 100 WHERE id = 4; DELETE FROM public.all_types WHERE id = 5");
      await pg.query(`INSERT INTO public.full_ident VALUES (1, 1.50, '2026-01-01 00:00:00+00'), (2, 'NaN', 'infinity');
        UPDATE public.full_ident SET v = v * 2; DELETE FROM public.full_ident WHERE id = 2`);
      await pg.query("INSERT INTO public.toasty VALUES (1, repeat(md5('x'), 4000), 1); UPDATE public.toasty SET small = 2; TRUNCATE public.toasty");
      const total = width + 1 + 3 + 2 + 2 + 2 + 1 + 2 + 2 + 1; // inserts, null row, 3 updates, pk change (d + c), delete, full_ident, toasty
      for (const side of [text, binary]) {
        await waitFor("full batches landed", async () => {
          let n = 0;
          for (const table of TABLES.split(",")) n += (await readRecords(side.dir, table)).length;
          return n >= total - 3 * 3;
        });
      }
      await text.engine.stop();
      await binary.engine.stop();
      const [a, b] = [await landedObjects(text.dir), await landedObjects(binary.dir)];
      assert.ok(a.size > 5, "objects landed");
      assert.deepEqual([...b.keys()], [...a.keys()], "the same object names");
      for (const [key, body] of a) assert.equal(b.get(key)!.toString("utf8"), body.toString("utf8"), key);
      const records = await readRecords(text.dir, "public.all_types");
      assert.equal(records.filter((r) => r.__op === "c").length, width + 2);
    });
  });

  describe("a type without a binary decoder", () => {
    it("makes auto stream in text, from the start and when a column of it is added while streaming; on refuses", async function () {
      if (pg.versionNum < 140000) this.skip(); // every session is text before 14 (tested above)
      await pg.query(`CREATE TABLE public.plain (id int PRIMARY KEY, v numeric, ts timestamptz);
        CREATE TABLE public.odd (id int PRIMARY KEY, p pair);
        CREATE PUBLICATION plain_pub FOR TABLE public.plain; CREATE PUBLICATION odd_pub FOR TABLE public.odd;`);

      // From the start: the captured composite column keeps the whole session in text.
      const odd = await runWithLogs(pg, { PG_SLOT: "odd_auto", PG_PUBLICATION: "odd_pub", TABLE_INCLUDE: "public.odd", SNAPSHOT_MODE: "never", PG_BINARY: "auto" });
      await waitFor("streaming", async () => odd.logs.some((l) => l.includes('"msg":"streaming changes"')));
      assert.ok(odd.logs.some((l) => l.includes('"format":"text"')));
      assert.ok(odd.logs.some((l) => l.includes("streaming pgoutput in text, not binary") && l.includes("public.odd.p (pair)")));
      await pg.query("INSERT INTO public.odd VALUES (1, ROW(1, 'a b'))");
      const oddRecords = await waitFor("odd record", async () => {
        const r = await readRecords(odd.dir, "public.odd");
        return r.length === 1 && r;
      });
      assert.equal(oddRecords[0].p, '(1,"a b")');
      await odd.stop();

      // Mid-stream: binary until the Relation message with the new column, text from there on.
      const plain = await runWithLogs(pg, { PG_SLOT: "plain_auto", PG_PUBLICATION: "plain_pub", TABLE_INCLUDE: "public.plain", SNAPSHOT_MODE: "never", PG_BINARY: "auto" });
      await waitFor("streaming", async () => plain.logs.some((l) => l.includes('"msg":"streaming changes"')));
      assert.ok(plain.logs.some((l) => l.includes('"format":"binary"')));
      await pg.query("INSERT INTO public.plain VALUES (1, 1.5, '2026-01-01 00:00:00+00')");
      await pg.query("ALTER TABLE public.plain ADD COLUMN p pair; INSERT INTO public.plain VALUES (2, 2.5, 'infinity', ROW(2, 'x'))");
      await pg.query("INSERT INTO public.plain VALUES (3, NULL, NULL, NULL)");
      const plainRecords = await waitFor("plain records", async () => {
        const r = await readRecords(plain.dir, "public.plain");
        return r.length === 3 && r;
      });
      assert.deepEqual(
        plainRecords.map((r) => [r.id, r.v, r.ts, r.p]),
        [
          [1, "1.5", "2026-01-01T00:00:00Z", undefined],
          [2, "2.5", "infinity", "(2,x)"],
          [3, null, null, null],
        ],
      );
      assert.ok(plain.logs.some((l) => l.includes("streaming in text from here on (PG_BINARY=auto)")));
      assert.ok(plain.logs.some((l) => l.includes('"format":"text"')));
      await plain.stop();

      // on: refused at the start, naming the column and its type.
      const on = await runWithLogs(pg, { PG_SLOT: "odd_on", PG_PUBLICATION: "odd_pub", TABLE_INCLUDE: "public.odd", SNAPSHOT_MODE: "never", PG_BINARY: "on" });
      await assert.rejects(on.done, /PG_BINARY=on, but the engine cannot decode the binary format of public\.odd\.p \(pair\)/);
    });
  });
});

/** Every landed data object of a landing directory: its path → its bytes. */
async function landedObjects(dir: string): Promise<Map<string, Buffer>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries
    .filter((e) => e.isFile() && e.name.endsWith(".ndjson"))
    .map((e) => join(e.parentPath, e.name))
    .sort();
  const out = new Map<string, Buffer>();
  for (const file of files) out.set(relative(dir, file), await readFile(file));
  return out;
}

/** An in-process engine whose log lines are kept (info level). */
async function runWithLogs(pg: TestPostgres, extra: Record<string, string>) {
  const dir = await landingDir();
  const logs: string[] = [];
  const controller = new AbortController();
  const config = loadConfig(engineEnv(pg, dir, { ...extra, LOG_LEVEL: "info" }));
  const logger = pino({ level: "info" }, { write: (line: string) => void logs.push(line) });
  const done = runEngine(config, { logger, metrics: noopMetrics(), signal: controller.signal });
  done.catch(() => undefined);
  return {
    dir,
    logs,
    done,
    async stop() {
      controller.abort();
      await done;
    },
  };
}
