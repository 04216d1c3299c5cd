/**
 * In-process checks that need no Pulumi program run: Pulumi.yaml declares every scalar setting
 * with the defaults the code applies, and the naming helpers satisfy the clouds' rules.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { acrName, baseName, BASE_NAME_MAX, gcpServiceAccountId, gcsBucketName, keyVaultName, RULES, s3BucketName, storageAccountName } from "../../components/naming";
import { containerSizeProblem, engineEnvironment, memoryForRecordBytes, recordBytesForMemory, resolvePlatform, SCALAR_DEFAULTS, type PlatformArgs } from "../../components/settings";
import { loadConfig, VARIABLES } from "../../container/src/config";
import { REPO } from "./harness";

const yaml = require("js-yaml") as { load(s: string): any };
const read = (f: string) => yaml.load(require("node:fs").readFileSync(path.join(REPO, f), "utf8"));

describe("pulumi settings", () => {
  it("Pulumi.yaml declares every scalar setting with a type, a description and the code's default", () => {
    const project = read("Pulumi.yaml");
    assert.equal(project.name, "postgres-cdc-multicloud");
    assert.equal(project.runtime.name, "nodejs");
    for (const [key, value] of Object.entries(SCALAR_DEFAULTS)) {
      const declared = project.config[key];
      assert.ok(declared, `${key} is not declared in Pulumi.yaml`);
      assert.equal(declared.type, typeof value === "number" ? "integer" : typeof value === "boolean" ? "boolean" : "string", key);
      assert.ok(declared.description?.length > 10, `${key} has no description`);
      assert.deepEqual(declared.default, value, `${key}: Pulumi.yaml default differs from the code`);
    }
    // The secrets (read with config.getSecret): declared, never with a default.
    const secrets = ["postgresPassword", "kafkaPassword"];
    for (const key of secrets) {
      assert.equal(project.config[key]?.type, "string", key);
      assert.equal(project.config[key].default, undefined, `${key} has no default`);
    }
    for (const key of Object.keys(project.config)) assert.ok(key in SCALAR_DEFAULTS || secrets.includes(key), `${key} is declared but never read`);
  });

  it("the stack files are dev, staging and prod on three different clouds, prod protected and retained longer", () => {
    const dev = read("Pulumi.dev.yaml").config;
    const staging = read("Pulumi.staging.yaml").config;
    const prod = read("Pulumi.prod.yaml").config;
    assert.equal(new Set([dev, staging, prod].map((c) => c["postgres-cdc-multicloud:cloud"])).size, 3);
    for (const c of [staging, prod]) assert.ok(c["postgres-cdc-multicloud:landingRetentionDays"] > dev["postgres-cdc-multicloud:landingRetentionDays"]);
    assert.equal(staging["postgres-cdc-multicloud:deletionProtection"], false, "staging stays disposable");
    assert.ok(staging["postgres-cdc-multicloud:alerts"].emails.length > 0, "staging pages someone");
    assert.equal(prod["postgres-cdc-multicloud:deletionProtection"], true);
    assert.ok(prod["postgres-cdc-multicloud:landingRetentionDays"] > dev["postgres-cdc-multicloud:landingRetentionDays"]);
    assert.ok(prod["postgres-cdc-multicloud:logRetentionDays"] > dev["postgres-cdc-multicloud:logRetentionDays"]);
    for (const c of [dev, staging, prod]) assert.equal(c["postgres-cdc-multicloud:postgresPassword"], undefined, "no secret (or fake secret) committed");
  });

  it("generated names satisfy each cloud's rules, even for long stack names", () => {
    for (const base of ["cdc-dev", "cdc-prod", "cdcdata1-averylongsta", "c-x"]) {
      assert.ok(RULES.s3Bucket(s3BucketName(base, "landing", "123456789012")), base);
      const sa = storageAccountName(base, "sub/" + base);
      assert.ok(RULES.storageAccount(sa) && sa.length <= 24, sa);
      assert.ok(RULES.acr(acrName(base, "sub")), acrName(base, "sub"));
      assert.ok(RULES.keyVault(keyVaultName(base, "sub", "a1b2")), keyVaultName(base, "sub", "a1b2"));
      assert.ok(RULES.gcsBucket(gcsBucketName(base, "landing", "acme-data-123")));
      assert.ok(RULES.gcsBucket(gcsBucketName(base, "landing", "a-very-long-project-id-30chars")));
      assert.ok(RULES.gcpServiceAccount(gcpServiceAccountId(base)), gcpServiceAccountId(base));
    }
    // The rules themselves reject what the clouds reject.
    assert.ok(!RULES.storageAccount("Cdc-dev"));
    assert.ok(!RULES.storageAccount("averyveryverylongaccount1"));
    assert.ok(!RULES.s3Bucket("Cdc_bucket"));
    assert.ok(!RULES.gcsBucket("google-landing"));
    assert.ok(!RULES.keyVault("kv--double"));
    // Different subscriptions get different globally unique names.
    assert.notEqual(storageAccountName("cdc-dev", "sub-a"), storageAccountName("cdc-dev", "sub-b"));
  });

  it("base names are unique per stack even when stack names share a long prefix, and short enough for every rule", () => {
    const stacks = ["data-platform-dev-eu", "data-platform-dev-us", "data-platform-dev", "Dev", "dev", "-x", "123", "a".repeat(200)];
    const names = stacks.map((stack) => baseName("cdcdata1", stack, "postgres-cdc-multicloud"));
    assert.equal(new Set(names).size, stacks.length, names.join(", "));
    for (const n of names) {
      assert.ok(n.length <= BASE_NAME_MAX, n);
      assert.match(n, /^[a-z][a-z0-9-]*-[0-9a-f]{6}$/, n);
      assert.ok(RULES.containerApp(`ca-${n}-engine`) && RULES.gcpServiceAccount(`${n}-engine`.slice(0, 30)), n);
    }
    assert.equal(baseName("cdc", "dev", "postgres-cdc-multicloud"), baseName("cdc", "dev", "postgres-cdc-multicloud"), "stable");
    assert.notEqual(baseName("cdc", "dev", "project-a"), baseName("cdc", "dev", "project-b"), "another project's dev stack gets other names");
  });

  it("container sizes: the defaults fit every cloud, invalid combinations name the key", () => {
    for (const cloud of ["aws", "azure", "gcp", "local"] as const) assert.equal(containerSizeProblem(cloud, { cpu: 0.25, memoryMiB: 512 }), undefined, cloud);
    assert.equal(containerSizeProblem("aws", { cpu: 0.3, memoryMiB: 512 })?.key, "containerCpu");
    assert.equal(containerSizeProblem("aws", { cpu: 1, memoryMiB: 512 })?.key, "containerMemoryMiB");
    assert.equal(containerSizeProblem("azure", { cpu: 1, memoryMiB: 2048 }), undefined);
    assert.equal(containerSizeProblem("gcp", { cpu: 3, memoryMiB: 2048 })?.key, "containerCpu");
  });

  it("the engine environment uses only the engine's variables and parses with the engine's own loader", () => {
    const env = engineEnvironment({
      postgres: { host: "db", port: 5432, database: "app", user: "u", auth: "password", sslmode: "require", publication: "cdc_pub", slot: "cdc_slot", tables: [] },
      batching: { maxSize: 1, maxBytes: 1024, maxWaitMs: 1, heartbeatIntervalMs: 0 },
      snapshotMode: "never",
      logLevel: "warn",
      sinkCompression: "gzip",
    }, "s3://bucket/landing");
    for (const k of Object.keys(env)) assert.ok(k in VARIABLES, k);
    assert.equal(env.TABLE_INCLUDE, undefined, "an empty table list is left to the publication");
    assert.equal(env.PG_PASSWORD, undefined);
    const parsed = loadConfig({ ...env, PG_PASSWORD: "x" });
    assert.deepEqual([parsed.snapshotMode, parsed.compression, parsed.heartbeatIntervalMs, parsed.sink.kind], ["never", "gzip", 0, "s3"]);
  });

  it("the largest record follows the container's memory unless set, and a limit the container cannot hold is refused", () => {
    const base = { cloud: "aws" as const, aws: { region: "eu-west-1" }, postgres: { host: "db", database: "app", user: "u", password: "x" } };
    const recordLimit = (args: Partial<PlatformArgs>) => {
      const s = resolvePlatform("cdc", { ...base, ...args } as PlatformArgs, "dev", "p");
      const env = engineEnvironment(s, "s3://bucket/landing");
      assert.equal(env.MAX_RECORD_BYTES, String(s.batching.maxRecordBytes));
      return loadConfig({ ...env, PG_PASSWORD: "x" }).batch.maxRecordBytes;
    };
    // docs/engine.md: about 2.5 × MAX_RECORD_BYTES plus 100 MiB of memory; a tenth of the container spare.
    assert.equal(recordLimit({}), 150994944, "the default 512 MiB container keeps the engine's own default, 144 MiB");
    assert.equal(recordLimit({ container: { cpu: 1, memoryMiB: 2048 } }), Math.floor((2048 * 0.9 - 100) / 2.5) * 1024 * 1024);
    assert.equal(recordLimit({ container: { cpu: 4, memoryMiB: 16384 } }), 1024 * 1024 * 1024, "capped at the engine's 1 GiB");
    assert.equal(recordLimit({ batching: { maxRecordBytes: 64 * 1024 * 1024 } }), 64 * 1024 * 1024, "an explicit, smaller limit is kept");
    for (const memoryMiB of [512, 1024, 2048, 8192]) {
      assert.ok(memoryForRecordBytes(recordBytesForMemory(memoryMiB)) <= memoryMiB, `the derived limit fits ${memoryMiB} MiB`);
    }
    assert.throws(
      () => resolvePlatform("cdc", { ...base, batching: { maxRecordBytes: 300 * 1024 * 1024 } }, "dev", "p"),
      (err: Error) => /batching\.maxRecordBytes 314572800 needs a container of at least 945 MiB .* but container\.memoryMiB is 512: raise container\.memoryMiB \(stack config containerMemoryMiB\) to 945, or lower batching\.maxRecordBytes to 150994944/.test(err.message) && err.message.split("\n").length === 1,
    );
    assert.doesNotThrow(() => resolvePlatform("cdc", { ...base, container: { cpu: 0.5, memoryMiB: 1024 }, batching: { maxRecordBytes: 300 * 1024 * 1024 } }, "dev", "p"));
    assert.throws(() => resolvePlatform("cdc", { ...base, batching: { maxRecordBytes: 1000 } }, "dev", "p"), /batching\.maxRecordBytes/);
  });

  it("passes snapshotMode incremental to the engine as SNAPSHOT_MODE=incremental", () => {
    const args = (snapshotMode: string) => ({ cloud: "gcp" as const, gcp: { project: "p", region: "europe-west1" }, postgres: { host: "db", database: "app", user: "u", password: "x" }, snapshotMode });
    const settings = resolvePlatform("cdc", args("incremental") as never, "dev", "p");
    assert.equal(settings.snapshotMode, "incremental");
    const env = engineEnvironment(settings, "gs://bucket/landing");
    assert.equal(env.SNAPSHOT_MODE, "incremental");
    assert.equal(loadConfig({ ...env, PG_PASSWORD: "x" }).snapshotMode, "incremental");
  });

  it("puts a CA bundle from the settings into the engine's environment, so a new bundle needs no new image", () => {
    const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
    const env = engineEnvironment({
      postgres: { host: "db.example.com", port: 5432, database: "app", user: "u", auth: "password", sslmode: "verify-full", publication: "cdc_pub", slot: "cdc_slot", tables: [], sslrootcert: pem },
      batching: { maxSize: 1, maxBytes: 1024, maxWaitMs: 1, heartbeatIntervalMs: 0 },
      snapshotMode: "never",
      logLevel: "warn",
      sinkCompression: "gzip",
    }, "s3://bucket/landing");
    assert.equal(env.PG_SSLROOTCERT_PEM, pem);
    const parsed = loadConfig({ ...env, PG_PASSWORD: "x" });
    assert.equal(parsed.pg.sslMode, "verify-full");
    assert.equal(parsed.pg.sslRootCertPem, pem);
  });

  it("rejects a CA bundle setting that is not PEM, or too large for an environment variable", () => {
    const args = (sslrootcert: string) => ({ cloud: "gcp" as const, gcp: { project: "p", region: "europe-west1" }, postgres: { host: "db", database: "app", user: "u", password: "x", sslmode: "verify-full" as const, sslrootcert } });
    assert.throws(() => resolvePlatform("cdc", args("/etc/ssl/rds.pem") as never, "dev", "p"), /postgres\.sslrootcert is invalid \(must be PEM certificates/);
    const huge = "-----BEGIN CERTIFICATE-----\n" + "A".repeat(40 * 1024);
    assert.throws(() => resolvePlatform("cdc", args(huge) as never, "dev", "p"), /postgres\.sslrootcert is invalid \(must be at most 32 KiB/);
  });

  it("typed arguments (CdcPlatform): a keyless login derives the role from the engine's identity and needs no password; a password beside it is refused", () => {
    const gcp = resolvePlatform("cdc", { cloud: "gcp", gcp: { project: "acme-data-123", region: "europe-west1" }, postgres: { host: "db", database: "app", auth: "gcp-iam" } }, "dev", "p");
    assert.equal(gcp.postgres.password, undefined);
    assert.equal(gcp.postgres.user, `${gcp.baseName}-engine@acme-data-123.iam`);
    assert.equal(engineEnvironment({ ...gcp, postgres: gcp.postgres }, "gs://b/landing").PG_AUTH, "gcp-iam");
    const azure = resolvePlatform("cdc", { cloud: "azure", azure: { location: "westeurope" }, postgres: { host: "db", database: "app", auth: "azure-entra" } }, "dev", "p");
    assert.equal(azure.postgres.user, `id-${azure.baseName}-engine`);
    assert.throws(
      () => resolvePlatform("cdc", { cloud: "aws", aws: { region: "eu-west-1" }, postgres: { host: "db", database: "app", user: "u", auth: "aws-iam", awsResourceId: "db-ABC123", password: "x" } }, "dev", "p"),
      /CdcPlatform "cdc": postgres\.password must not be set with postgres\.auth=aws-iam/,
    );
    assert.throws(() => resolvePlatform("cdc", { cloud: "aws", aws: { region: "eu-west-1" }, postgres: { host: "db", database: "app", user: "u" } }, "dev", "p"), /postgres\.password is required but not set/);
  });
});
