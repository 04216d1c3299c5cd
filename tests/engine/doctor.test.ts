/**
 * Source setup and `cdc-engine doctor` against real embedded PostgreSQL servers: a well-configured
 * one, and one with wal_level=replica and no free replication slot. Doctor runs as a real CLI
 * process; prepareSource/inspectSource run in-process against the same servers.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile, readdir, mkdir, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Client } from "pg";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { loadConfig, type EngineConfig } from "../../container/src/config";
import { createLogger } from "../../container/src/ops/logger";
import { inspectSource, prepareSource, SourceSetupError, type SourceCheck } from "../../container/src/source/setup";

const CLI = resolve(__dirname, "../../container/src/cli.ts");
const silent = createLogger({ level: "silent" });

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI (from source, through tsx) with exactly `env` plus PATH/HOME. */
function runCli(args: string[], env: Record<string, string>, options: { uid?: number; gid?: number } = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
      stdio: ["ignore", "pipe", "pipe"],
      ...options,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolvePromise({ code, stdout, stderr }));
  });
}

const lines = (out: string) => out.split("\n").filter((l) => /^(ok {3}|FAIL )/.test(l));
const byName = (checks: SourceCheck[], name: string) => {
  const c = checks.find((x) => x.name === name);
  assert.ok(c, `no check named ${name} in ${JSON.stringify(checks, null, 1)}`);
  return c;
};

describe("engine: source setup and doctor", function () {
  let good: TestPostgres;
  let bad: TestPostgres;
  let landing: string;
  let client: Client;

  const config = (db: TestPostgres, extra: Record<string, string> = {}): EngineConfig =>
    loadConfig({ ...db.env, SINK_URL: `file://${landing}`, LOG_LEVEL: "silent", ...extra });

  before(async () => {
    [good, bad] = await Promise.all([
      startPostgres(),
      startPostgres({ settings: { wal_level: "replica", max_replication_slots: "1" } }),
    ]);
    landing = await mkdtemp(join(tmpdir(), "cdc-doctor-landing-"));
    await good.query(`
      CREATE TABLE public.users (id int PRIMARY KEY, name text);
      CREATE TABLE public.orders (id bigint PRIMARY KEY, user_id int, total numeric);
      CREATE TABLE public.events (at timestamptz, payload jsonb);
      CREATE TABLE public.codes (code text NOT NULL, region text NOT NULL, label text, UNIQUE (code, region));
      CREATE TABLE public.audit (id int PRIMARY KEY, what text);
      ALTER TABLE public.audit REPLICA IDENTITY NOTHING;
      CREATE TABLE public.full_rows (a int, b text);
      ALTER TABLE public.full_rows REPLICA IDENTITY FULL;
      CREATE TABLE public."Select" (id int PRIMARY KEY);
      CREATE ROLE plain LOGIN PASSWORD 'plain-password';
    `);
    // A physical slot takes the only slot on the misconfigured server (physical slots need no logical WAL).
    await bad.query("SELECT pg_create_physical_replication_slot('someone_elses_slot')");
    await bad.query("CREATE TABLE public.users (id int PRIMARY KEY)");
    client = await good.connect();
  });

  after(async () => {
    await client?.end();
    await Promise.all([good?.stop(), bad?.stop()]);
    if (landing) await rm(landing, { recursive: true, force: true });
  });

  describe("inspectSource / prepareSource", () => {
    it("passes every check on a good server and changes nothing", async () => {
      const checks = await inspectSource(config(good, { TABLE_INCLUDE: "public.users,public.orders", PG_PUBLICATION: "inspect_only" }), client);
      assert.deepEqual(checks.filter((c) => !c.ok), []);
      assert.deepEqual(checks.map((c) => c.name), [
        "platform",
        "server version",
        "wal_level",
        "replication privilege",
        "replication slot",
        "failover",
        "wal senders",
        "publication",
        "table public.users",
        "table public.orders",
      ]);
      assert.equal(byName(checks, "table public.users").detail, "primary key (id)");
      assert.match(byName(checks, "publication").detail, /inspect_only does not exist yet; cdc-engine run creates it: CREATE PUBLICATION inspect_only FOR TABLE public.users, public.orders;/);
      assert.deepEqual(await good.query("SELECT pubname FROM pg_publication WHERE pubname = 'inspect_only'"), []);
    });

    it("creates the publication, and running it again changes nothing (idempotent)", async () => {
      const cfg = config(good, { TABLE_INCLUDE: "public.users, public.orders,public.users", PG_PUBLICATION: "cdc_pub" });
      const first = await prepareSource(cfg, client, silent);
      const second = await prepareSource(cfg, client, silent);
      const expected = [{ schema: "public", table: "users" }, { schema: "public", table: "orders" }];
      assert.deepEqual(first.tables, expected);
      assert.deepEqual(second.tables, expected);
      const published = await good.query("SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = 'cdc_pub' ORDER BY tablename");
      assert.deepEqual(published, [{ schemaname: "public", tablename: "orders" }, { schemaname: "public", tablename: "users" }]);
      assert.deepEqual(await good.query("SELECT count(*)::int AS n FROM pg_publication WHERE pubname = 'cdc_pub'"), [{ n: 1 }]);
      // The slot is the streaming path's to create; setup only checks there is room for it.
      assert.deepEqual(await good.query("SELECT slot_name FROM pg_replication_slots"), []);
    });

    it("adds tables TABLE_INCLUDE lists to an existing publication it owns", async () => {
      await good.query("CREATE PUBLICATION grow_pub FOR TABLE public.users");
      const cfg = config(good, { TABLE_INCLUDE: "public.users,public.full_rows,public.Select", PG_PUBLICATION: "grow_pub" });
      const before = byName(await inspectSource(cfg, client), "publication");
      assert.equal(before.ok, true);
      assert.match(before.detail, /cdc-engine run adds them: ALTER PUBLICATION grow_pub ADD TABLE public.full_rows, public."Select";/);
      const { tables } = await prepareSource(cfg, client, silent);
      assert.deepEqual(tables.map((t) => `${t.schema}.${t.table}`), ["public.users", "public.full_rows", "public.Select"]);
      const published = await good.query<{ tablename: string }>("SELECT tablename FROM pg_publication_tables WHERE pubname = 'grow_pub' ORDER BY 1");
      assert.deepEqual(published.map((r) => r.tablename), ["Select", "full_rows", "users"]);
      assert.equal(byName(await inspectSource(cfg, client), "table public.full_rows").detail, "REPLICA IDENTITY FULL");
    });

    it("requires publish_via_partition_root for a partitioned table, naming the fix, and creates publications with it", async function () {
      // Publications hold partitioned tables from 13 on; before, see partitions.test.ts.
      if (good.versionNum < 130000) this.skip();
      await good.query(`
        CREATE TABLE public.measurements (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
        CREATE TABLE public.measurements_2026 PARTITION OF public.measurements FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
        CREATE PUBLICATION part_pub FOR TABLE public.measurements;
      `);
      const cfg = config(good, { TABLE_INCLUDE: "public.measurements", PG_PUBLICATION: "part_pub" });
      const problem = {
        name: "publication partitions",
        ok: false,
        detail: "publication part_pub does not set publish_via_partition_root, so the changes of the partitioned table public.measurements stream under the partitions' names and would not be captured",
        fix: "ALTER PUBLICATION part_pub SET (publish_via_partition_root = true);",
      };
      assert.deepEqual((await inspectSource(cfg, client)).filter((c) => !c.ok), [problem]);
      // run refuses with the same message.
      await assert.rejects(prepareSource(cfg, client, silent), (err: unknown) => err instanceof SourceSetupError && err.message.includes(`${problem.detail} — fix: ${problem.fix}`));
      await good.query(problem.fix);
      const checks = await inspectSource(cfg, client);
      assert.deepEqual(checks.filter((c) => !c.ok), []);
      assert.equal(byName(checks, "table public.measurements").detail, "primary key (id, at)");
      assert.deepEqual((await prepareSource(cfg, client, silent)).tables, [{ schema: "public", table: "measurements" }]);

      const created = config(good, { TABLE_INCLUDE: "public.measurements,public.users", PG_PUBLICATION: "new_part_pub" });
      assert.match(byName(await inspectSource(created, client), "publication").detail, /CREATE PUBLICATION new_part_pub FOR TABLE public.measurements, public.users WITH \(publish_via_partition_root = true\);/);
      await prepareSource(created, client, silent);
      assert.deepEqual(await good.query("SELECT pubviaroot FROM pg_publication WHERE pubname = 'new_part_pub'"), [{ pubviaroot: true }]);
    });

    it("captures the existing publication's tables when TABLE_INCLUDE is empty, and fails when there is neither", async () => {
      await good.query("CREATE PUBLICATION existing_pub FOR TABLE public.orders, public.users");
      const { tables } = await prepareSource(config(good, { PG_PUBLICATION: "existing_pub" }), client, silent);
      assert.deepEqual(tables, [{ schema: "public", table: "orders" }, { schema: "public", table: "users" }]);

      const err = await prepareSource(config(good, { PG_PUBLICATION: "no_such_pub" }), client, silent).then(
        () => assert.fail("expected SourceSetupError"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof SourceSetupError);
      assert.match(err.message, /publication: publication no_such_pub does not exist and TABLE_INCLUDE is empty, so there is nothing to capture — fix: set TABLE_INCLUDE/);
      assert.deepEqual(await good.query("SELECT pubname FROM pg_publication WHERE pubname = 'no_such_pub'"), []);
    });

    it("reports tables without a usable replica identity, and missing tables, with the exact fix — and creates nothing", async () => {
      const cfg = config(good, { TABLE_INCLUDE: "public.users,public.events,public.codes,public.audit,public.ghost", PG_PUBLICATION: "broken_pub" });
      const checks = await inspectSource(cfg, client);
      assert.deepEqual(byName(checks, "table public.events"), {
        name: "table public.events",
        ok: false,
        detail: "has no primary key and REPLICA IDENTITY DEFAULT, so PostgreSQL sends no key for updates and deletes",
        fix: "ALTER TABLE public.events REPLICA IDENTITY FULL; (or give it a primary key: ALTER TABLE public.events ADD PRIMARY KEY (<key columns>);)",
      });
      // A unique index over NOT NULL columns can become the primary key as is.
      assert.equal(byName(checks, "table public.codes").fix, "ALTER TABLE public.codes ADD PRIMARY KEY (code, region);");
      assert.equal(byName(checks, "table public.audit").fix, "ALTER TABLE public.audit REPLICA IDENTITY DEFAULT;");
      assert.equal(byName(checks, "table public.ghost").ok, false);
      assert.match(byName(checks, "table public.ghost").detail, /does not exist/);

      const err = await prepareSource(cfg, client, silent).then(() => assert.fail("expected SourceSetupError"), (e: unknown) => e);
      assert.ok(err instanceof SourceSetupError);
      assert.deepEqual(err.checks.map((c) => c.name), ["table public.events", "table public.codes", "table public.audit", "table public.ghost"]);
      assert.match(err.message, /^the source database is not ready for CDC \(4 problems\):\n/);
      assert.match(err.message, / {2}- table public.codes: has no primary key .* — fix: ALTER TABLE public.codes ADD PRIMARY KEY \(code, region\);/);
      assert.deepEqual(await good.query("SELECT pubname FROM pg_publication WHERE pubname = 'broken_pub'"), []);

      // Applying the suggested fixes makes the same configuration pass.
      await good.query("ALTER TABLE public.events REPLICA IDENTITY FULL; ALTER TABLE public.codes ADD PRIMARY KEY (code, region); ALTER TABLE public.audit REPLICA IDENTITY DEFAULT");
      const fixed = await prepareSource(config(good, { TABLE_INCLUDE: "public.users,public.events,public.codes,public.audit", PG_PUBLICATION: "broken_pub" }), client, silent);
      assert.equal(fixed.tables.length, 4);
    });

    it("reports a user without REPLICATION, SELECT or table ownership with the exact GRANT/ALTER to run", async () => {
      const { Client: PgClient } = await import("pg");
      const asPlain = new PgClient({ host: good.host, port: good.port, user: "plain", password: "plain-password", database: "postgres" });
      await asPlain.connect();
      try {
        const cfg = config(good, { PG_USER: "plain", PG_PASSWORD: "plain-password", TABLE_INCLUDE: "public.users", PG_PUBLICATION: "plain_pub" });
        const checks = await inspectSource(cfg, asPlain);
        assert.deepEqual(byName(checks, "replication privilege"), {
          name: "replication privilege",
          ok: false,
          detail: "user plain has neither the REPLICATION attribute nor superuser",
          fix: "ALTER ROLE plain WITH REPLICATION;",
        });
        assert.equal(byName(checks, "table public.users").fix, "GRANT SELECT ON public.users TO plain;");
        const pub = byName(checks, "publication");
        assert.equal(pub.ok, false);
        assert.match(pub.detail, /may not create it/);
        assert.equal(pub.fix, "run as the tables' owner: CREATE PUBLICATION plain_pub FOR TABLE public.users;");
        // A publication it does not own gets the exact ALTER PUBLICATION for its owner instead.
        const other = byName(await inspectSource({ ...cfg, pg: { ...cfg.pg, publication: "cdc_pub" }, tables: [{ schema: "public", table: "events" }] }, asPlain), "publication");
        assert.equal(other.ok, false);
        assert.equal(other.fix, "run as the publication's owner: ALTER PUBLICATION cdc_pub ADD TABLE public.events;");
      } finally {
        await asPlain.end();
      }
    });

    it("accepts an existing pgoutput PG_SLOT (resume) and rejects one with another plugin", async () => {
      await good.query("SELECT pg_create_logical_replication_slot('resume_slot', 'pgoutput'), pg_create_logical_replication_slot('wrong_slot', 'test_decoding')");
      try {
        const base = { TABLE_INCLUDE: "public.users", PG_PUBLICATION: "cdc_pub" };
        const resume = byName(await inspectSource(config(good, { ...base, PG_SLOT: "resume_slot" }), client), "replication slot");
        assert.equal(resume.ok, true);
        assert.match(resume.detail, /^resume_slot exists at \d+\/[0-9A-F]+; cdc-engine run resumes from it$/);
        const wrong = byName(await inspectSource(config(good, { ...base, PG_SLOT: "wrong_slot" }), client), "replication slot");
        assert.equal(wrong.ok, false);
        assert.equal(wrong.detail, "wrong_slot exists but is a logical slot with plugin test_decoding; the engine needs a logical slot with plugin pgoutput");
        assert.match(wrong.fix!, /^SELECT pg_drop_replication_slot\('wrong_slot'\);/);
      } finally {
        await good.query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name IN ('resume_slot', 'wrong_slot')");
      }
    });

    it("fails on wal_level=replica and no free slot, listing each problem with its fix", async () => {
      const badClient = await bad.connect();
      try {
        const cfg = config(bad, { TABLE_INCLUDE: "public.users" });
        const err = await prepareSource(cfg, badClient, silent).then(() => assert.fail("expected SourceSetupError"), (e: unknown) => e);
        assert.ok(err instanceof SourceSetupError);
        assert.deepEqual(err.checks.map((c) => c.name), ["wal_level", "replication slot"]);
        assert.match(err.message, /wal_level: is replica, must be logical — fix: ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL/);
        assert.match(err.message, /replication slot: cdc_slot does not exist and all 1 replication slots \(max_replication_slots\) are taken — fix: drop a slot nobody uses/);
        assert.deepEqual(await bad.query("SELECT pubname FROM pg_publication"), []);
      } finally {
        await badClient.end();
      }
    });
  });

  describe("cdc-engine doctor (real CLI process)", () => {
    it("prints one ok line per check and exits 0 on a good server and writable sink", async () => {
      const r = await runCli(["doctor"], { ...good.env, SINK_URL: `file://${landing}/good`, TABLE_INCLUDE: "public.users,public.orders" });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const out = lines(r.stdout);
      assert.deepEqual(out.filter((l) => !l.startsWith("ok   ")), []);
      assert.deepEqual(out.map((l) => l.slice(5, l.indexOf(":"))), [
        "connection",
        "platform",
        "server version",
        "wal_level",
        "replication privilege",
        "replication slot",
        "wal senders",
        "publication",
        "table public.users",
        "table public.orders",
        "replication connection",
        "sink",
      ]);
      assert.match(r.stdout, /^ok {3}publication: cdc_pub publishes 2 tables$/m);
      // The suite's server has no standby: the failover line warns (PostgreSQL 17+: about synchronized standbys).
      assert.match(r.stdout, /^warn failover: /m);
      assert.match(r.stdout, /\nall 13 checks passed \(1 warning\)\n$/);
      // The probe object is deleted again; doctor leaves no trace in the landing zone.
      assert.deepEqual(await readdir(join(landing, "good", "_cdc_probe")).catch(() => []), []);
    });

    it("reports an existing PG_SLOT that this sink's engine did not create (slot ownership)", async () => {
      await good.query("SELECT pg_create_logical_replication_slot('foreign_slot', 'pgoutput')");
      try {
        const r = await runCli(["doctor"], { ...good.env, SINK_URL: `file://${landing}/foreign`, TABLE_INCLUDE: "public.users", PG_SLOT: "foreign_slot" });
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.deepEqual(lines(r.stdout).filter((l) => l.startsWith("FAIL ")), [
          `FAIL slot ownership: foreign_slot exists on database postgres, but file://${landing}/foreign has no record of creating it, so it belongs to another deployment or to an engine that wrote to another SINK_URL; cdc-engine run refuses to use or drop it — fix: give this deployment its own slot (PG_SLOT=<name unique to this deployment and sink>); only if nobody uses foreign_slot any more, drop it: SELECT pg_drop_replication_slot('foreign_slot');`,
        ]);
        assert.equal((await good.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = 'foreign_slot'")).length, 1, "doctor changed nothing");
      } finally {
        await good.query("SELECT pg_drop_replication_slot('foreign_slot')");
      }
    });

    it("prints FAIL lines with the fix and exits 1 on a misconfigured server", async () => {
      const r = await runCli(["doctor"], { ...bad.env, SINK_URL: `file://${landing}/bad`, TABLE_INCLUDE: "public.users,public.nokey" });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const fails = lines(r.stdout).filter((l) => l.startsWith("FAIL "));
      assert.deepEqual(fails, [
        "FAIL wal_level: is replica, must be logical — fix: ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL (Amazon RDS/Aurora: set rds.logical_replication = 1 in the parameter group; Azure: server parameter wal_level = logical; Cloud SQL: database flag cloudsql.logical_decoding = on)",
        "FAIL replication slot: cdc_slot does not exist and all 1 replication slots (max_replication_slots) are taken — fix: drop a slot nobody uses (SELECT slot_name, active FROM pg_replication_slots; then SELECT pg_drop_replication_slot('<name>');) or ALTER SYSTEM SET max_replication_slots = 10; and restart PostgreSQL",
        "FAIL table public.nokey: does not exist (or is not a table) — fix: create the table, or remove public.nokey from TABLE_INCLUDE (names are case-sensitive, as stored in the catalog)",
      ]);
      assert.match(r.stdout, /^ok {3}sink: /m);
      assert.match(r.stdout, /\n3 of \d+ checks failed( \(\d+ warnings?\))?\n$/);
    });

    it("names a table without a primary key and the SQL that fixes it", async () => {
      await good.query("CREATE TABLE public.nopk (a int, b text)");
      const r2 = await runCli(["doctor"], { ...good.env, SINK_URL: `file://${landing}/nopk`, TABLE_INCLUDE: "public.users,public.nopk", PG_PUBLICATION: "fresh_pub" });
      assert.equal(r2.code, 1);
      assert.deepEqual(lines(r2.stdout).filter((l) => l.startsWith("FAIL")), [
        "FAIL table public.nopk: has no primary key and REPLICA IDENTITY DEFAULT, so PostgreSQL sends no key for updates and deletes — fix: ALTER TABLE public.nopk REPLICA IDENTITY FULL; (or give it a primary key: ALTER TABLE public.nopk ADD PRIMARY KEY (<key columns>);)",
      ]);
    });

    it("explains a refused connection and still checks the sink", async () => {
      const r = await runCli(["doctor"], { ...good.env, PG_PASSWORD: "wrong-password", SINK_URL: `file://${landing}/conn`, TABLE_INCLUDE: "public.users" });
      assert.equal(r.code, 1);
      const out = lines(r.stdout);
      assert.match(out[0], /^FAIL connection: cannot connect to 127\.0\.0\.1:\d+\/postgres as postgres: password authentication failed for user "postgres" — fix: check PG_USER and PG_PASSWORD/);
      assert.match(out[1], /^ok {3}sink: /);
      assert.ok(!r.stdout.includes("wrong-password"));
    });

    it("fails the sink probe clearly when the file:// directory cannot be written", async () => {
      // Tests may run as root, which ignores file modes, so make the "directory" sit under a regular file.
      const blocker = join(landing, "not-a-directory");
      await writeFile(blocker, "x");
      const r = await runCli(["doctor"], { ...good.env, SINK_URL: `file://${blocker}/landing`, TABLE_INCLUDE: "public.users" });
      assert.equal(r.code, 1, r.stdout);
      const sinkLine = lines(r.stdout).find((l) => l.includes(" sink: "));
      assert.ok(sinkLine);
      assert.match(sinkLine, new RegExp(`^FAIL sink: file://${blocker}/landing: cannot write .*ENOTDIR.* — fix: make ${blocker}/landing an existing or creatable directory writable by user \\d+, or choose another SINK_URL$`));
      assert.deepEqual(lines(r.stdout).filter((l) => l.startsWith("FAIL")).length, 1);
    });

    it("fails the sink probe when the directory is not writable for the engine's user (EACCES)", async function () {
      const readOnly = join(landing, "read-only");
      await mkdir(readOnly);
      await chmod(readOnly, 0o555);
      await chmod(landing, 0o755);
      const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
      const r = await runCli(["doctor"], { ...good.env, SINK_URL: `file://${readOnly}/landing`, TABLE_INCLUDE: "public.users" }, asNobody);
      if (r.code !== 1 && /EACCES|Cannot find module|permission denied/i.test(r.stderr)) this.skip(); // this machine cannot run node as another user
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`^FAIL sink: file://${readOnly}/landing: cannot write .*EACCES.*— fix: make ${readOnly}/landing`, "m"));
    });

    it("exits 2 with the config problem before connecting", async () => {
      const r = await runCli(["doctor"], { ...good.env, PG_PORT: "not-a-port", SINK_URL: `file://${landing}` });
      assert.equal(r.code, 2);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, /PG_PORT must be a whole number from 1 to 65535 \(got "not-a-port"\); for example PG_PORT=5432/);
    });
  });
});
