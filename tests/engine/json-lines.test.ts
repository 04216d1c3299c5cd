/**
 * json keeps its text exactly as written, newlines included: a pretty-printed document must still
 * land as one NDJSON line, in the snapshot and in the stream, for json, json[] and jsonb, with the
 * value unchanged in meaning.
 */
import assert from "node:assert/strict";
import { engineEnv, streamingEngine, waitFor } from "./fixtures/harness";
import { readLanding } from "./fixtures/landing";
import { encoderFor } from "../../container/src/source/decoding/values";

const PRETTY = '{\n  "name": "a\\nb",\r\n  "list": [\n    1,\n    {"deep": "x\\r\\ny"}\n  ]\n}\n';
const PRETTY_VALUE = { name: "a\nb", list: [1, { deep: "x\r\ny" }] };

describe("engine: json with line breaks", function () {
  this.timeout(120_000);
  const insert = "INSERT INTO public.docs VALUES ($1, $2::json, $2::jsonb, ARRAY[$2::json, '[\n1\n]'::json], ARRAY[$2::jsonb])";
  const ctx = streamingEngine(
    async (pg) => {
      await pg.query("CREATE TABLE public.docs (id int PRIMARY KEY, j json, jb jsonb, ja json[], jba jsonb[])");
      await pg.query(insert, [1, PRETTY]);
    },
    (pg, dir) => engineEnv(pg, dir, { TABLE_INCLUDE: "public.docs", PG_SLOT: "json_slot", PG_PUBLICATION: "json_pub" }),
  );
  before(async () => {
    await ctx.pg.query(insert, [2, PRETTY]);
  });

  it("is rejected by PostgreSQL when a line break is raw inside a JSON string, so line breaks in json text are whitespace", async () => {
    for (const bad of ['"a\nb"', '{"k": "a\rb"}', '["\r\n"]']) {
      await assert.rejects(ctx.pg.query("SELECT $1::json", [bad]), /invalid input syntax for type json/, JSON.stringify(bad));
    }
    const encoded = encoderFor({ kind: "scalar", scalar: "json" })(PRETTY);
    assert.ok(!/[\r\n]/.test(encoded));
    const [row] = await ctx.pg.query<{ same: boolean }>("SELECT $1::jsonb = $2::jsonb AS same", [PRETTY, encoded]);
    assert.equal(row.same, true, "the engine's encoding of the text is the same JSON value");
  });

  it("lands each record on one line, in the snapshot and the stream, with the same value", async () => {
    // The snapshot's barrier, its row, and the streamed insert.
    const files = await waitFor("three docs records", async () => {
      const f = await readLanding(ctx.dir, "public.docs");
      return f.flatMap((x) => x.records).length >= 3 && f;
    });
    const lines = files.flatMap((f) => f.lines);
    // readLanding parses every line; a split record would have thrown or shown up as extra lines.
    assert.equal(lines.length, 3, lines.join("\n---\n"));
    const byOp = new Map(files.flatMap((f) => f.records).map((r) => [r.__op, r]));
    for (const op of ["r", "c"]) {
      const r = byOp.get(op as "r")!;
      assert.ok(r, `a ${op} record`);
      assert.deepEqual(r.j, PRETTY_VALUE);
      assert.deepEqual(r.jb, PRETTY_VALUE);
      assert.deepEqual(r.ja, [PRETTY_VALUE, [1]]);
      assert.deepEqual(r.jba, [PRETTY_VALUE]);
    }
  });
});
