/**
 * Names that cannot land: a column starting with `__` (it would collide with the record's own
 * fields) and a schema or table name that cannot be part of an object key. doctor and start-up
 * refuse them with one message naming the table/column and the fix; a column that gets such a
 * name later stops the stream before a broken record lands.
 */
import assert from "node:assert/strict";
import type { Client } from "pg";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { loadConfig, type EngineConfig } from "../../container/src/config";
import { createLogger } from "../../container/src/ops/logger";
import { inspectSource, prepareSource, SourceSetupError, type SourceCheck } from "../../container/src/source/setup";
import { engineEnv, landingDir, startEngine, waitFor, waitForRecords } from "./fixtures/harness";
import { readLanding } from "./fixtures/landing";

const silent = createLogger({ level: "silent" });
const failures = (checks: SourceCheck[]) => checks.filter((c) => !c.ok);

describe("engine: names that cannot land", function () {
  this.timeout(120_000);
  let pg: TestPostgres;
  let client: Client;
  let dir: string;
  const config = (extra: Record<string, string>): EngineConfig => loadConfig(engineEnv(pg, dir, extra));

  before(async () => {
    pg = await startPostgres();
    client = await pg.connect();
    dir = await landingDir();
    await pg.query(`
      CREATE TABLE public.meta (id int PRIMARY KEY, "__op" text, "__custom" int, note text);
      CREATE SCHEMA "my/schema";
      CREATE TABLE "my/schema"."a.b" (id int PRIMARY KEY);
      CREATE TABLE public.fine (id int PRIMARY KEY, v text);
      CREATE PUBLICATION names_pub FOR TABLE public.meta, "my/schema"."a.b", public.fine;
    `);
    // Column lists came in PostgreSQL 15.
    if (pg.versionNum >= 150000) await pg.query("CREATE PUBLICATION listed_pub FOR TABLE public.meta (id, note)");
  });

  after(async () => {
    await client?.end();
    await pg?.stop();
  });

  it("are refused by doctor and at start-up, each with the table, the column and the fix", async () => {
    const cfg = config({ PG_PUBLICATION: "names_pub" });
    const meta = {
      name: "table public.meta",
      ok: false,
      detail:
        'columns "__op", "__custom" of public.meta start with "__", which is reserved for the engine\'s record fields (__op, __lsn, __seq, __ts_ms, __deleted, __unchanged), so records would carry duplicate keys',
      fix:
        'rename them (ALTER TABLE public.meta RENAME COLUMN __op TO op; ALTER TABLE public.meta RENAME COLUMN __custom TO custom;) or leave them out of the publication with a column list (PostgreSQL 15+): ' +
        "BEGIN; ALTER PUBLICATION names_pub DROP TABLE public.meta; ALTER PUBLICATION names_pub ADD TABLE public.meta (id, note); COMMIT;",
    };
    const slashed = {
      name: "table my/schema.a.b",
      ok: false,
      detail:
        'its name "my/schema" and "a.b" cannot be part of an object key (cdc.<schema>.<table>/): schema and table names may only hold ASCII letters, digits, _ and $, and start with a letter or _',
      fix: 'rename it: ALTER SCHEMA "my/schema" RENAME TO my_schema; ALTER TABLE "my/schema"."a.b" RENAME TO a_b; (or stop publishing it: ALTER PUBLICATION names_pub DROP TABLE "my/schema"."a.b";)',
    };
    assert.deepEqual(failures(await inspectSource(cfg, client)), [slashed, meta]);
    const err = await prepareSource(cfg, client, silent).then(
      () => assert.fail("expected SourceSetupError"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof SourceSetupError);
    assert.deepEqual(err.checks, [slashed, meta]);
    assert.ok(err.message.includes(`${meta.detail} — fix: ${meta.fix}`), err.message);
  });

  it("pass when a publication column list leaves the reserved columns out (the fix works)", async function () {
    if (pg.versionNum < 150000) this.skip(); // column lists came in 15
    const cfg = config({ PG_PUBLICATION: "listed_pub" });
    assert.deepEqual(failures(await inspectSource(cfg, client)), []);
    await pg.query("INSERT INTO public.meta VALUES (1, 'x', 2, 'kept')");
    const engine = startEngine(engineEnv(pg, dir, { PG_PUBLICATION: "listed_pub", PG_SLOT: "listed_slot" }));
    try {
      const [record] = await waitForRecords(dir, "public.meta", 1);
      assert.deepEqual([record.__op, record.id, record.note, Object.keys(record).filter((k) => k.startsWith("__")).sort()], ["r", 1, "kept", ["__deleted", "__lsn", "__op", "__seq", "__ts_ms"]]);
    } finally {
      await engine.stop();
    }
  });

  it("stop the stream with the same message when a column gets one later, before a broken record lands", async () => {
    const engine = startEngine(engineEnv(pg, dir, { TABLE_INCLUDE: "public.fine", PG_PUBLICATION: "fine_pub", PG_SLOT: "fine_slot" }));
    await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"));
    await pg.query("INSERT INTO public.fine VALUES (1, 'before')");
    await waitForRecords(dir, "public.fine", 1);
    await pg.query(`ALTER TABLE public.fine ADD COLUMN "__deleted" text; INSERT INTO public.fine VALUES (2, 'after', 'oops')`);
    const err = await engine.done.then(
      () => assert.fail("expected the engine to stop"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof SourceSetupError, String(err));
    assert.match(err.message, /table public\.fine: column "__deleted" of public\.fine starts with "__", which is reserved for the engine's record fields .* — fix: rename it, or leave it out of the publication with a column list/);
    const lines = (await readLanding(dir, "public.fine")).flatMap((f) => f.lines).filter((l) => !l.startsWith('{"__op":"b"'));
    assert.equal(lines.length, 1, "the insert with the colliding column did not land");
    assert.equal(JSON.parse(lines[0]).v, "before");
  });
});
