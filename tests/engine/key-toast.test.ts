/**
 * A primary-key change that leaves a TOASTed value unchanged, under REPLICA IDENTITY DEFAULT
 * (issue 10, item 8). PostgreSQL sends only the old key and, for the new row, no value for the
 * TOASTed column. The engine lands a d of the old key at (L, s) and a c of the new key at
 * (L, s + 1) naming the column in __unchanged; the lakehouse fills it from the old key's row (its
 * tombstone keeps the values; silver step 05b), so silver holds the full new row. Checked on real
 * PostgreSQL with values of more than 2 KB that cannot be compressed, through the real DuckDB
 * lakehouse.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Duck } from "../../lakehouse/src/duck";
import { refresh } from "../../lakehouse/src/runner";
import { compareSilver, textClient } from "../lakehouse/compare";
import { streamingEngine, engineEnv, waitFor } from "./fixtures/harness";
import { readRecords, rebuildTable } from "./fixtures/landing";

describe("engine: a primary-key change with an unchanged TOAST value", function () {
  this.timeout(120_000);
  const ctx = streamingEngine(
    (pg) =>
      pg.query(`CREATE TABLE public.kt (id int PRIMARY KEY, name text, doc text);
        -- EXTERNAL: stored out of line without compression, so every doc is TOASTed.
        ALTER TABLE public.kt ALTER COLUMN doc SET STORAGE EXTERNAL;
        INSERT INTO public.kt SELECT g, 'n' || g, (SELECT string_agg(md5(random()::text || g || i), '') FROM generate_series(1, 80) i) FROM generate_series(1, 4) g`),
    (pg, dir) => engineEnv(pg, dir, { TABLE_INCLUDE: "public.kt", PG_SLOT: "kt_slot", PG_PUBLICATION: "kt_pub" }),
  );

  it("lands d + c with __unchanged, and silver holds the full new row", async () => {
    const { pg, dir } = ctx;
    const [{ len, external }] = await pg.query<{ len: number; external: boolean }>(
      "SELECT min(octet_length(doc)) AS len, bool_and(pg_column_size(doc) >= octet_length(doc)) AS external FROM public.kt",
    );
    assert.ok(len > 2048 && external, "the values are large and stored uncompressed");
    // The key only; then the key and another column, in one transaction with a later update of the new row.
    await pg.query("UPDATE public.kt SET id = 100 WHERE id = 1");
    await pg.query("BEGIN; UPDATE public.kt SET id = 200, name = 'renamed' WHERE id = 2; UPDATE public.kt SET name = 'again' WHERE id = 200; COMMIT");
    const records = await waitFor("the key changes", async () => {
      const all = await readRecords(dir, "public.kt");
      return all.filter((r) => r.__op !== "r").length >= 5 && all;
    });
    const changes = records.filter((r) => r.__op !== "r");
    const [d1, c1] = changes;
    assert.deepEqual([d1.__op, d1.id, c1.__op, c1.id], ["d", 1, "c", 100]);
    assert.equal(c1.__lsn, d1.__lsn);
    assert.equal(c1.__seq, d1.__seq + 1, "the c follows its d at __seq + 1");
    assert.deepEqual(c1.__unchanged, ["doc"]);
    assert.equal("doc" in c1, false, "PostgreSQL did not send the value: it is absent, never null");
    assert.deepEqual(changes.slice(2).map((r) => [r.__op, r.id, r.__unchanged]), [["d", 2, undefined], ["c", 200, ["doc"]], ["u", 200, ["doc"]]]);

    const source = await pg.query<Record<string, unknown>>("SELECT id, name, doc FROM public.kt ORDER BY id");
    const rebuilt = [...(await rebuildTable(dir, "public.kt", ["id"])).values()].sort((a, b) => (a.id as number) - (b.id as number));
    assert.deepEqual(rebuilt, source, "the landing contract's rule gives the source back");

    const db = join(dir, "..", `${dir.split("/").pop()}-kt.duckdb`);
    await refresh({ landing: dir, db, gold: false });
    const client = await textClient(pg);
    const duck = await Duck.open(db);
    try {
      assert.equal(await compareSilver(client, (sql) => duck.all(sql), "public.kt"), undefined, "silver equals the source, doc included");
    } finally {
      duck.close();
      await client.end();
    }
  });
});
