/**
 * `cdc-platform init` driven through a real pseudo-terminal (tests/support/pty.ts) with keystrokes
 * — arrow keys, a hidden password, Ctrl-C — against the embedded PostgreSQL, with a table the
 * engine's doctor rejects fixed midway and re-checked; and `--non-interactive` for every cloud.
 * Every file written must pass the Pulumi program's own settings validation.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as YAML from "yaml";
import { validateStackConfig } from "../../platform/src/stack-file";
import { KEYS, PtyProcess } from "../support/pty";
import { startPostgres, type TestPostgres } from "../support/postgres";

const REPO = path.resolve(__dirname, "..", "..");
const BIN = path.join(REPO, "platform", "bin", "cdc-platform.js");
const P = "postgres-cdc-multicloud:";

function project(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "cdc-init-"));
  copyFileSync(path.join(REPO, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
  return dir;
}

/** PATH without any `pulumi` (the CI machine has none either), plus `extra` first. */
function pathWithout(extra?: string): string {
  const dirs = (process.env.PATH ?? "").split(":").filter((d) => d && !existsSync(path.join(d, "pulumi")));
  return [extra, ...dirs].filter(Boolean).join(":");
}

function run(args: string[], options: { cwd: string; stdin?: string; env?: NodeJS.ProcessEnv }): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [BIN, ...args], { cwd: options.cwd, env: { ...process.env, PATH: pathWithout(), ...options.env } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    child.stdin!.end(options.stdin ?? "");
  });
}

const stackFile = (dir: string, stack: string) => YAML.parse(readFileSync(path.join(dir, `Pulumi.${stack}.yaml`), "utf8")).config as Record<string, unknown>;

describe("cdc-platform init", function () {
  this.timeout(120_000);
  let pg: TestPostgres;

  before(async () => {
    pg = await startPostgres();
    await pg.query(`
      CREATE TABLE public.users (id bigint PRIMARY KEY, name text);
      CREATE TABLE public.orders (id bigint PRIMARY KEY, user_id bigint);
      CREATE TABLE public.audit (at timestamptz, what text);   -- no key: doctor refuses it
      CREATE SCHEMA warehouse;
      CREATE TABLE warehouse.stock_item (sku text NOT NULL, site int NOT NULL, qty int);
      CREATE UNIQUE INDEX stock_item_key ON warehouse.stock_item (sku, site);
      ALTER TABLE warehouse.stock_item REPLICA IDENTITY USING INDEX stock_item_key;`);
  });
  after(async () => {
    await pg?.stop();
  });

  it("wizard in a terminal: arrow keys, hidden password, tables with their keys, a doctor failure fixed and re-checked", async () => {
    const dir = project();
    const term = new PtyProcess(process.execPath, [BIN, "init"], { cwd: dir, env: { PATH: pathWithout() } });
    try {
      await term.expect(/Where should the engine run\?/);
      term.send(KEYS.down + KEYS.down); // aws → azure → gcp
      await term.expect(/GCP \(Cloud Run/);
      term.send(KEYS.enter);
      await term.expect(/Region \(gcp:region\)/);
      term.send(KEYS.enter); // the default, europe-west1
      await term.expect(/GCP project id/);
      term.line("Bad_Project"); // the program's own parser answers at once
      await term.expect(/gcp:project is not a GCP project id \(got "Bad_Project"\)/);
      term.send(KEYS.backspace.repeat(11));
      term.line("acme-data-123");
      await term.expect(/Stack name/);
      term.line("staging");
      await term.expect(/PostgreSQL host/);
      term.line("127.0.0.1");
      await term.expect(/Port/);
      term.send(KEYS.backspace.repeat(4));
      term.line(String(pg.port));
      await term.expect(/Database/);
      term.line("postgres");
      await term.expect(/Replication user/);
      term.line("postgres");
      await term.expect(/TLS to the database/);
      term.send(KEYS.down + KEYS.down + KEYS.enter); // require → verify-full → disable
      await term.expect(/Publication/);
      term.send(KEYS.enter);
      await term.expect(/Replication slot/);
      term.line("cdc_staging");
      await term.expect(/Password of postgres \(hidden; never written to a file\)/);
      const before = term.rawOutput.length;
      term.line(pg.password);

      // The tables, each with what identifies its rows; all selectable ones start checked.
      await term.expect(/Tables to capture/);
      await term.expect(/public\.audit +— no key: updates and deletes need a primary key or REPLICA IDENTITY FULL/);
      await term.expect(/public\.orders +— primary key \(id\)/);
      await term.expect(/public\.users +— primary key \(id\)/);
      await term.expect(/warehouse\.stock_item +— replica identity index stock_item_key \(sku, site\)/);
      term.send(KEYS.down + KEYS.space + KEYS.enter); // uncheck public.orders
      assert.ok(!term.rawOutput.slice(before).includes(pg.password), "the password is never echoed");

      await term.expect(/Checking the database \(cdc-engine doctor's checks\)/);
      await term.expect(/ok {3}wal_level: logical/);
      await term.expect(/FAIL table public\.audit: has no primary key and REPLICA IDENTITY DEFAULT[^\n]*\r?\n\s+fix: ALTER TABLE public\.audit REPLICA IDENTITY FULL;/);
      await term.expect(/1 of \d+ checks failed\. Fix them \(each line says how\), then:/);
      // The user applies the fix doctor printed, in another terminal, and re-checks.
      await pg.query("ALTER TABLE public.audit REPLICA IDENTITY FULL");
      term.send(KEYS.enter); // re-check
      await term.expect(/ok {3}table public\.audit/);
      await term.expect(/all \d+ checks passed/);

      await term.expect(/Batching/);
      term.send(KEYS.down + KEYS.enter); // balanced → throughput
      await term.expect(/Retention/);
      term.send(KEYS.up + KEYS.enter); // standard → short
      await term.expect(/E-mail addresses to page/);
      term.line("oncall@example.com");
      await term.expect(/Deploy the Databricks job/);
      term.line("y");
      await term.expect(/Databricks workspace URL/);
      term.line("https://1234567890123456.7.gcp.databricks.com");
      await term.expect(/wrote Pulumi\.staging\.yaml \(checked by the program's settings parser\)/);
      await term.expect(/The Pulumi CLI is not on the PATH[^\n]*\r?\n\s+pulumi stack init staging\r?\n\s+pulumi config set --secret postgres-cdc-multicloud:postgresPassword --stack staging\r?\n/);
      assert.equal(await term.exited, 0);
      assert.ok(!term.rawOutput.includes(pg.password), "the password is never shown");
    } finally {
      term.kill();
    }

    const text = readFileSync(path.join(dir, "Pulumi.staging.yaml"), "utf8");
    assert.ok(!text.includes(pg.password), "the password is not in the stack file");
    assert.deepEqual(readdirSync(dir).sort(), ["Pulumi.staging.yaml", "Pulumi.yaml"], "no temp file left");
    const config = stackFile(dir, "staging");
    assert.equal(config[`${P}cloud`], "gcp");
    assert.equal(config["gcp:region"], "europe-west1");
    assert.equal(config["gcp:project"], "acme-data-123");
    assert.deepEqual(config[`${P}postgres`], {
      host: "127.0.0.1", port: pg.port, database: "postgres", user: "postgres", sslmode: "disable",
      publication: "cdc_pub", slot: "cdc_staging", tables: ["public.audit", "public.users", "warehouse.stock_item"],
    });
    assert.deepEqual(config[`${P}batching`], { maxSize: 20000, maxBytes: 33554432, maxWaitMs: 10000 });
    assert.equal(config[`${P}landingRetentionDays`], 7);
    assert.deepEqual(config[`${P}alerts`], { emails: ["oncall@example.com"] });
    assert.deepEqual(config[`${P}databricks`], { enabled: true, host: "https://1234567890123456.7.gcp.databricks.com" });
    const settings = validateStackConfig(config);
    assert.equal(settings.args.cloud, "gcp");
    assert.deepEqual(settings.args.postgres.tables, ["public.audit", "public.users", "warehouse.stock_item"]);
  });

  it("Ctrl-C in the middle (at the password, after typing part of it) writes nothing and keeps an existing stack file", async () => {
    const dir = project();
    const original = "# mine\nconfig:\n  postgres-cdc-multicloud:cloud: aws\n";
    writeFileSync(path.join(dir, "Pulumi.dev.yaml"), original);
    const term = new PtyProcess(process.execPath, [BIN, "init", "--cloud", "azure", "--region", "westeurope", "--stack", "dev", "--pg-host", "127.0.0.1", "--pg-port", String(pg.port)], { cwd: dir, env: { PATH: pathWithout() } });
    try {
      await term.expect(/Database/);
      term.line("postgres");
      await term.expect(/Replication user/);
      term.line("postgres");
      await term.expect(/TLS to the database/);
      term.send(KEYS.down + KEYS.down + KEYS.enter);
      await term.expect(/Publication/);
      term.send(KEYS.enter);
      await term.expect(/Replication slot/);
      term.send(KEYS.enter);
      await term.expect(/Password of postgres/);
      term.send("half-typed");
      term.send(KEYS.ctrlC);
      await term.expect(/interrupted: nothing was written/);
      assert.equal(await term.exited, 130);
    } finally {
      term.kill();
    }
    assert.deepEqual(readdirSync(dir).sort(), ["Pulumi.dev.yaml", "Pulumi.yaml"]);
    assert.equal(readFileSync(path.join(dir, "Pulumi.dev.yaml"), "utf8"), original, "the existing file is untouched");
  });

  it("--non-interactive writes a stack file that passes the settings validation, for every cloud", async function () {
    const dir = project();
    const common = ["init", "--non-interactive", "--no-check", "--pg-host", "db.internal.example.com", "--pg-database", "app", "--pg-user", "cdc_user", "--tables", "public.users,public.orders"];
    const clouds: [string, string[]][] = [
      ["aws", ["--cloud", "aws", "--region", "us-east-1", "--alert-email", "a@example.com", "b@example.com", "--databricks"]],
      ["azure", ["--cloud", "azure", "--region", "northeurope", "--batching", "low-latency", "--retention", "long"]],
      ["gcp", ["--cloud", "gcp", "--region", "europe-west3", "--gcp-project", "acme-data-123", "--no-databricks"]],
      ["local", ["--cloud", "local", "--pg-host", "host.docker.internal"]],
    ];
    await Promise.all(clouds.map(async ([cloud, flags]) => {
      const result = await run([...common, "--stack", `s-${cloud}`, ...flags], { cwd: dir });
      assert.equal(result.code, 0, result.stderr + result.stdout);
      const settings = validateStackConfig(stackFile(dir, `s-${cloud}`));
      assert.equal(settings.args.cloud, cloud);
      assert.deepEqual(settings.args.postgres.tables, ["public.users", "public.orders"]);
    }));
    assert.deepEqual((stackFile(dir, "s-aws")[`${P}alerts`] as { emails: string[] }).emails, ["a@example.com", "b@example.com"]);
    assert.equal(stackFile(dir, "s-azure")[`${P}logRetentionDays`], 365);
    assert.equal(stackFile(dir, "s-local")[`${P}alerts`], undefined);

    // One clear error for what the settings parser rejects; nothing written.
    const bad = await run([...common, "--stack", "bad", "--cloud", "aws", "--region", "europe"], { cwd: dir });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /aws:region is not an AWS region \(got "europe"\); for example: pulumi config set aws:region eu-west-1/);
    const missing = await run(["init", "--non-interactive", "--cloud", "gcp"], { cwd: dir });
    assert.match(missing.stderr, /--non-interactive needs --stack, --gcp-project, --pg-host, --pg-database, --pg-user/);
    assert.ok(!existsSync(path.join(dir, "Pulumi.bad.yaml")));
    const exists = await run([...common, "--stack", "s-aws", "--cloud", "aws"], { cwd: dir });
    assert.match(exists.stderr, /Pulumi\.s-aws\.yaml exists: pass --force to replace it/);
  });

  it("--non-interactive checks the database, refuses to write on a failed check, and hands the password to `pulumi config set --secret` on stdin", async () => {
    const dir = project();
    const flags = ["init", "--non-interactive", "--stack", "prod", "--cloud", "aws", "--pg-host", "127.0.0.1", "--pg-port", String(pg.port), "--pg-database", "postgres", "--pg-user", "postgres", "--pg-sslmode", "disable", "--password-stdin"];
    await pg.query("CREATE TABLE public.events (at timestamptz)");
    const failed = await run([...flags, "--tables", "public.users,public.events"], { cwd: dir, stdin: `${pg.password}\n` });
    assert.equal(failed.code, 1);
    assert.match(failed.stdout, /FAIL table public\.events: has no primary key/);
    assert.match(failed.stdout, /fix them and run init again \(nothing was written/);
    assert.ok(!existsSync(path.join(dir, "Pulumi.prod.yaml")));

    // A stand-in for the Pulumi CLI (none can run here) that records how it was called.
    const bin = path.join(dir, "fake-bin");
    mkdirSync(bin);
    const log = path.join(dir, "pulumi-calls.jsonl");
    writeFileSync(path.join(bin, "pulumi"), `#!/usr/bin/env node
const input = require("node:fs").readFileSync(0, "utf8");
require("node:fs").appendFileSync(${JSON.stringify(log)}, JSON.stringify({ argv: process.argv.slice(2), stdin: input, cwd: process.cwd() }) + "\\n");
`);
    chmodSync(path.join(bin, "pulumi"), 0o755);
    const ok = await run([...flags, "--tables", "public.users"], { cwd: dir, stdin: `${pg.password}\n`, env: { PATH: pathWithout(bin) } });
    assert.equal(ok.code, 0, ok.stderr + ok.stdout);
    assert.match(ok.stdout, /all|ok {3}/);
    assert.match(ok.stdout, /stored the password as the secret postgres-cdc-multicloud:postgresPassword/);
    const calls = readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { argv: string[]; stdin: string });
    const stackInit = calls.find((c) => c.argv[0] === "stack" && c.argv[1] === "init");
    assert.deepEqual(stackInit?.argv, ["stack", "init", "prod"]);
    const secret = calls.find((c) => c.argv[0] === "config");
    assert.deepEqual(secret?.argv, ["config", "set", "--secret", "postgres-cdc-multicloud:postgresPassword", "--stack", "prod"]);
    assert.equal(secret?.stdin, pg.password, "the password arrives on stdin");
    assert.ok(!calls.some((c) => c.argv.some((a) => a.includes(pg.password))), "never on a command line");
    assert.ok(!readFileSync(path.join(dir, "Pulumi.prod.yaml"), "utf8").includes(pg.password));
  });
});
