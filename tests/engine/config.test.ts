/**
 * Every configuration error path of loadConfig: each bad or missing variable yields exactly one
 * line naming the variable, what is wrong and a good example. (The CLI's exit code 2 and "nothing
 * touched the database" are proven with the real process in cli.test.ts.)
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, DEFAULT_SNAPSHOT_PARALLELISM, VARIABLES, loadConfig } from "../../container/src/config";
import { clientConfig } from "../../container/src/source/connection";

const REQUIRED = { PG_HOST: "db.example.com", PG_DATABASE: "app", PG_USER: "cdc", SINK_URL: "file:///var/lib/cdc/landing" };

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.message, err.problems.join("\n"));
    return err.problems;
  }
  return [];
}

/** [variable, bad value, what the message must say]. */
const INVALID: [keyof typeof VARIABLES, string, RegExp][] = [
  ["PG_PORT", "abc", /must be a whole number from 1 to 65535/],
  ["PG_PORT", "0", /must be at least 1/],
  ["PG_PORT", "70000", /must be at most 65535/],
  ["PG_SSLMODE", "prefer", /must be one of disable, require, verify-ca, verify-full/],
  ["PG_PUBLICATION", "Bad-Name", /must be a lower-case PostgreSQL publication name/],
  ["PG_SLOT", "slot-1", /must be a lower-case PostgreSQL replication slot name/],
  ["PG_SLOT", "slot$1", /may only contain a-z, 0-9 and _/],
  ["TABLE_INCLUDE", "public.users,orders", /has "orders", which is not a schema-qualified table name \(schema.table\)/],
  ["SNAPSHOT_MODE", "always", /must be one of initial, never, initial_only/],
  ["SNAPSHOT_TRANSCODE", "workers", /must be one of auto, threads, inline/],
  ["SINK_URL", "not a url", /is not a URL/],
  ["SINK_URL", "ftp://host/dir", /has unsupported scheme "ftp:" \(use file:\/\/, s3:\/\/, abfss:\/\/, gs:\/\/, kafka:\/\/ or kafka\+ssl:\/\/\)/],
  ["SINK_URL", "kafka://broker-1", /has "broker-1", which is not host:port/],
  ["SINK_URL", "kafka://b:9092/topics", /must be kafka:\/\/host:port/],
  ["SINK_URL", "file://relative/dir", /must be file:\/\/\/absolute\/dir/],
  ["SINK_URL", "file:///", /must name an absolute directory/],
  ["SINK_URL", "s3://Bad_Bucket/x", /must name a valid S3 bucket/],
  ["SINK_URL", "abfss://landing@account.blob.example.com/x", /must be abfss:\/\/container@account.dfs.core.windows.net\/prefix/],
  ["SINK_URL", "gs://A/x", /must name a valid GCS bucket/],
  ["SINK_URL", "s3://bucket/%E0%A4%A", /has a malformed %-escape/],
  ["SINK_URL", "s3://AKIAEXAMPLE:secret@my-bucket/landing", /must not contain credentials/],
  ["SINK_URL", "file:///data/landing?mode=fast", /must not have a query/],
  ["SNAPSHOT_PARALLELISM", "0", /must be at least 1/],
  ["SNAPSHOT_PARALLELISM", "65", /must be at most 64/],
  ["SNAPSHOT_PARALLELISM", "auto", /must be a whole number from 1 to 64/],
  ["INCREMENTAL_CHUNK_SIZE", "0", /must be at least 1/],
  ["SINK_COMPRESSION", "zstd", /must be one of none, gzip/],
  ["BATCH_MAX_SIZE", "0", /must be at least 1/],
  ["BATCH_MAX_SIZE", "-5", /must be a whole number/],
  ["BATCH_MAX_SIZE", "1.5", /must be a whole number/],
  ["BATCH_MAX_BYTES", "100", /must be at least 1024/],
  ["BATCH_MAX_WAIT_MS", "0", /must be at least 1/],
  ["BATCH_MAX_WAIT_MS", "5s", /must be a whole number/],
  ["MAX_RECORD_BYTES", "1000", /must be at least 65536/],
  ["MAX_RECORD_BYTES", "100MB", /must be a whole number from 65536 to 1073741824/],
  ["HEARTBEAT_INTERVAL_MS", "-1", /must be a whole number from 0 to 3600000/],
  ["HTTP_PORT", "65536", /must be at most 65535/],
  ["PG_SLOT_FAILOVER", "auto", /must be true or false/],
  ["PG_BINARY", "yes", /must be one of auto, on, off/],
  ["PG_SSLROOTCERT_PEM", "/etc/ssl/ca.pem", /must hold PEM certificates/],
  ["PG_AUTH", "iam", /must be one of password, aws-iam, azure-entra, gcp-iam/],
  ["PG_AUTH_REGION", "Europe", /must be an AWS region such as eu-west-1/],
  ["HTTP_HOST", "0.0.0.0:8080", /must be an IP address or a host name of this machine/],
  ["LOG_LEVEL", "verbose", /must be one of trace, debug, info, warn, error, fatal, silent/],
  ["METRICS_LOG", "prometheus", /must be one of json, emf, off/],
  ["S3_ENDPOINT", "minio:9000", /must be an http:\/\/ or https:\/\/ URL/],
  ["S3_FORCE_PATH_STYLE", "yes", /must be true or false/],
  ["GCS_ENDPOINT", "localhost", /must be an http:\/\/ or https:\/\/ URL/],
  ["KAFKA_TOPIC_PREFIX", "cdc/landing", /must be 1 to 120 of the characters Kafka allows in topic names/],
  ["KAFKA_TOMBSTONES", "sometimes", /must be true or false/],
  ["KAFKA_CREATE_TOPICS", "yes", /must be true or false/],
  ["KAFKA_TOPIC_PARTITIONS", "0", /must be at least 1/],
  ["KAFKA_TOPIC_REPLICATION", "x", /must be a whole number/],
  ["KAFKA_AUTH", "plain", /must be one of none, scram-sha-256, scram-sha-512, aws-msk-iam, azure-entra, google-adc/],
  ["KAFKA_REGION", "Europe", /must be an AWS region name/],
];

describe("engine config", () => {
  it("takes SNAPSHOT_PARALLELISM, and defaults it from the CPU count (2 to 8)", () => {
    assert.equal(loadConfig({ ...REQUIRED, SNAPSHOT_PARALLELISM: "1" }).snapshotParallelism, 1);
    assert.equal(loadConfig({ ...REQUIRED, SNAPSHOT_PARALLELISM: " 16 " }).snapshotParallelism, 16);
    assert.ok(DEFAULT_SNAPSHOT_PARALLELISM >= 2 && DEFAULT_SNAPSHOT_PARALLELISM <= 8, String(DEFAULT_SNAPSHOT_PARALLELISM));
  });

  it("applies the documented defaults when only the required variables are set", () => {
    const config = loadConfig(REQUIRED);
    assert.deepEqual(config, {
      pg: {
        host: "db.example.com",
        port: 5432,
        database: "app",
        user: "cdc",
        password: undefined,
        auth: "password",
        authRegion: undefined,
        sslMode: "require",
        sslRootCert: undefined,
        sslRootCertPem: undefined,
        sslCert: undefined,
        sslKey: undefined,
        publication: "cdc_pub",
        slot: "cdc_slot",
        slotFailover: true,
        binary: "auto",
      },
      tables: [],
      snapshotMode: "initial",
      snapshotParallelism: DEFAULT_SNAPSHOT_PARALLELISM,
      incrementalChunkSize: 4096,
      snapshotTranscode: "auto",
      sink: { kind: "file", url: "file:///var/lib/cdc/landing", directory: "/var/lib/cdc/landing" },
      compression: "none",
      batch: { maxSize: 10000, maxBytes: 16 * 1024 * 1024, maxWaitMs: 5000, maxRecordBytes: 144 * 1024 * 1024 },
      heartbeatIntervalMs: 10000,
      httpPort: 8080,
      httpHost: undefined,
      logLevel: "info",
      metricsLog: "json",
      s3: { endpoint: undefined, forcePathStyle: false },
      azure: { connectionString: undefined },
      gcs: { endpoint: undefined },
      kafka: {
        topicPrefix: "cdc",
        tombstones: true,
        createTopics: true,
        partitions: undefined,
        replication: undefined,
        auth: "none",
        username: undefined,
        password: undefined,
        caFile: undefined,
        region: undefined,
      },
    });
  });

  for (const name of ["PG_HOST", "PG_DATABASE", "PG_USER", "SINK_URL"] as const) {
    it(`reports a missing ${name} in one line with an example`, () => {
      const env: Record<string, string> = { ...REQUIRED };
      delete env[name];
      assert.deepEqual(problemsOf(env), [`${name} is required but not set; for example ${name}=${VARIABLES[name].example}`]);
      // Blank counts as missing.
      assert.deepEqual(problemsOf({ ...env, [name]: "   " }), [`${name} is required but not set; for example ${name}=${VARIABLES[name].example}`]);
    });
  }

  for (const [name, value, expected] of INVALID) {
    it(`rejects ${name}=${JSON.stringify(value)} in one line naming the variable, the value and an example`, () => {
      const problems = problemsOf({ ...REQUIRED, [name]: value });
      assert.equal(problems.length, 1, problems.join("\n"));
      const [line] = problems;
      assert.ok(line.startsWith(`${name} `), line);
      assert.match(line, expected);
      const shown = value.includes(":secret@") ? value.replace("AKIAEXAMPLE:secret", "(credentials hidden)") : value;
      assert.ok(line.includes(`(got ${JSON.stringify(shown)})`), line);
      assert.ok(!line.includes("secret@"), line);
      assert.ok(line.endsWith(`; for example ${name}=${VARIABLES[name].example}`), line);
    });
  }

  it("has an invalid-value test for every variable that can be invalid", () => {
    const free = new Set(["PG_HOST", "PG_DATABASE", "PG_USER", "PG_PASSWORD", "PG_SSLROOTCERT", "PG_SSLCERT", "PG_SSLKEY", "AZURE_STORAGE_CONNECTION_STRING", "KAFKA_USERNAME", "KAFKA_PASSWORD", "KAFKA_CA_FILE"]);
    const untested = Object.keys(VARIABLES).filter((k) => !free.has(k) && !INVALID.some(([n]) => n === k));
    assert.deepEqual(untested, []);
  });

  it("accepts every variable's documented example", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cdc-config-"));
    try {
      const ca = join(dir, "ca.pem");
      await writeFile(ca, "-----BEGIN CERTIFICATE-----\n");
      for (const [name, spec] of Object.entries(VARIABLES)) {
        const env: Record<string, string> = { ...REQUIRED, [name]: spec.example };
        if (name === "PG_SSLROOTCERT") Object.assign(env, { PG_SSLMODE: "verify-full", PG_SSLROOTCERT: ca });
        if (name === "PG_SSLCERT" || name === "PG_SSLKEY") Object.assign(env, { PG_SSLCERT: ca, PG_SSLKEY: ca });
        if (name === "PG_AUTH_REGION") env.PG_AUTH = "aws-iam";
        assert.deepEqual(problemsOf(env), [], `${name}=${spec.example}`);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("reports every bad variable at once, one line each", () => {
    const problems = problemsOf({ PG_PORT: "x", LOG_LEVEL: "loud", SINK_URL: "ftp://a/b", PG_DATABASE: "app" });
    assert.deepEqual(
      problems.map((p) => p.split(" ")[0]),
      ["PG_HOST", "PG_PORT", "PG_USER", "SINK_URL", "LOG_LEVEL"],
    );
  });

  it("checks PG_SSLROOTCERT against PG_SSLMODE and that the file is readable", () => {
    assert.deepEqual(problemsOf({ ...REQUIRED, PG_SSLMODE: "require", PG_SSLROOTCERT: "/etc/hostname" }), [
      "PG_SSLROOTCERT is only used with PG_SSLMODE=verify-full or verify-ca (got PG_SSLMODE=require); for example PG_SSLMODE=verify-full",
    ]);
    // Where the CA is given, the default is to verify it fully; verify-ca when asked.
    assert.equal(loadConfig({ ...REQUIRED, PG_SSLROOTCERT: "/etc/hostname" }).pg.sslMode, "verify-full");
    assert.equal(loadConfig({ ...REQUIRED, PG_SSLMODE: "verify-ca", PG_SSLROOTCERT: "/etc/hostname" }).pg.sslMode, "verify-ca");
    assert.equal(loadConfig({ ...REQUIRED }).pg.sslMode, "require");
    // The bundle as PEM text (from a secret store, no file): the same default, once only.
    const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const fromPem = loadConfig({ ...REQUIRED, PG_SSLROOTCERT_PEM: pem });
    assert.equal(fromPem.pg.sslMode, "verify-full");
    assert.equal((clientConfig(fromPem).ssl as { ca: string }).ca, pem.trim());
    assert.deepEqual(problemsOf({ ...REQUIRED, PG_SSLROOTCERT_PEM: pem, PG_SSLROOTCERT: "/etc/hostname" }), ["PG_SSLROOTCERT and PG_SSLROOTCERT_PEM are both set; give the CA bundle once, as a file or as PEM text"]);
    assert.deepEqual(problemsOf({ ...REQUIRED, PG_SSLROOTCERT_PEM: pem, PG_SSLMODE: "require" }), [
      "PG_SSLROOTCERT_PEM is only used with PG_SSLMODE=verify-full or verify-ca (got PG_SSLMODE=require); for example PG_SSLMODE=verify-full",
    ]);
    const [line] = problemsOf({ ...REQUIRED, PG_SSLMODE: "verify-full", PG_SSLROOTCERT: "/nonexistent/ca.pem" });
    assert.match(line, /^PG_SSLROOTCERT names a file that cannot be read \(ENOENT: "\/nonexistent\/ca.pem"\); for example PG_SSLROOTCERT=/);
  });

  it("takes PG_AUTH tokens instead of a password, only over TLS, and PG_AUTH_REGION only for aws-iam", () => {
    const config = loadConfig({ ...REQUIRED, PG_AUTH: "aws-iam", PG_AUTH_REGION: "eu-west-1" });
    assert.equal(config.pg.auth, "aws-iam");
    assert.equal(config.pg.authRegion, "eu-west-1");
    assert.equal(loadConfig(REQUIRED).pg.auth, "password");
    assert.deepEqual(problemsOf({ ...REQUIRED, PG_AUTH: "azure-entra", PG_PASSWORD: "pw" }), [
      "PG_PASSWORD must not be set with PG_AUTH=azure-entra, which logs in with a token from the platform identity; unset PG_PASSWORD, or set PG_AUTH=password",
    ]);
    assert.deepEqual(problemsOf({ ...REQUIRED, PG_AUTH: "gcp-iam", PG_SSLMODE: "disable" }), [
      "PG_AUTH=gcp-iam sends a bearer token as the password, which needs TLS (got PG_SSLMODE=disable); for example PG_SSLMODE=verify-full",
    ]);
    assert.deepEqual(problemsOf({ ...REQUIRED, PG_AUTH_REGION: "eu-west-1" }), ["PG_AUTH_REGION is only used with PG_AUTH=aws-iam (got PG_AUTH=password); for example PG_AUTH=aws-iam"]);
    assert.match(problemsOf({ ...REQUIRED, PG_AUTH: "aws-iam", PG_AUTH_REGION: "Europe" })[0], /^PG_AUTH_REGION must be an AWS region such as eu-west-1/);
  });

  it("takes a client certificate only as PG_SSLCERT and PG_SSLKEY together, over TLS, from readable files", () => {
    assert.deepEqual(problemsOf({ ...REQUIRED, PG_SSLCERT: "/etc/hostname" }), ["PG_SSLCERT is set but PG_SSLKEY is not: a client certificate needs both; for example PG_SSLKEY=/etc/cdc/client.key"]);
    assert.deepEqual(problemsOf({ ...REQUIRED, PG_SSLKEY: "/etc/hostname" }), ["PG_SSLKEY is set but PG_SSLCERT is not: a client certificate needs both; for example PG_SSLCERT=/etc/cdc/client.crt"]);
    assert.deepEqual(problemsOf({ ...REQUIRED, PG_SSLMODE: "disable", PG_SSLCERT: "/etc/hostname", PG_SSLKEY: "/etc/hostname" }), [
      "PG_SSLCERT and PG_SSLKEY need TLS (got PG_SSLMODE=disable); for example PG_SSLMODE=verify-full",
    ]);
    const [line] = problemsOf({ ...REQUIRED, PG_SSLCERT: "/etc/hostname", PG_SSLKEY: "/nonexistent/client.key" });
    assert.match(line, /^PG_SSLKEY names a file that cannot be read \(ENOENT/);
  });

  it("never echoes secrets, and keeps a password exactly as given", () => {
    const config = loadConfig({ ...REQUIRED, PG_PASSWORD: "  spaced secret ", AZURE_STORAGE_CONNECTION_STRING: "UseDevelopmentStorage=true" });
    assert.equal(config.pg.password, "  spaced secret ");
    assert.equal(config.azure.connectionString, "UseDevelopmentStorage=true");
    const problems = problemsOf({ PG_PASSWORD: "hunter22", AZURE_STORAGE_CONNECTION_STRING: "AccountKey=abc" });
    assert.ok(!problems.join("\n").includes("hunter22"));
    assert.ok(!problems.join("\n").includes("AccountKey"));
  });

  it("parses TABLE_INCLUDE (spaces, duplicates, case) and every SINK_URL scheme", () => {
    const config = loadConfig({ ...REQUIRED, TABLE_INCLUDE: " public.users , sales.Orders,public.users,, " });
    assert.deepEqual(config.tables, [{ schema: "public", table: "users" }, { schema: "sales", table: "Orders" }]);
    const sink = (url: string, extra: Record<string, string> = {}) => loadConfig({ ...REQUIRED, SINK_URL: url, ...extra });
    assert.deepEqual(sink("file:///data/landing/").sink, { kind: "file", url: "file:///data/landing/", directory: "/data/landing" });
    assert.deepEqual(sink("s3://my-bucket/cdc/landing/").sink, { kind: "s3", url: "s3://my-bucket/cdc/landing/", bucket: "my-bucket", prefix: "cdc/landing" });
    assert.deepEqual(sink("abfss://landing@acct123.dfs.core.windows.net/cdc").sink, {
      kind: "abfss",
      url: "abfss://landing@acct123.dfs.core.windows.net/cdc",
      container: "landing",
      account: "acct123",
      host: "acct123.dfs.core.windows.net",
      prefix: "cdc",
    });
    assert.deepEqual(sink("gs://my-bucket").sink, { kind: "gs", url: "gs://my-bucket", bucket: "my-bucket", prefix: "" });
    // An S3-compatible endpoint implies path-style addressing unless told otherwise.
    assert.equal(sink("s3://b-1/x", { S3_ENDPOINT: "http://127.0.0.1:9000" }).s3.forcePathStyle, true);
    assert.equal(sink("s3://b-1/x", { S3_ENDPOINT: "http://127.0.0.1:9000", S3_FORCE_PATH_STYLE: "false" }).s3.forcePathStyle, false);
  });

  it("maps PG_SSLMODE onto node-postgres options as libpq means it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cdc-config-"));
    try {
      const ca = join(dir, "ca.pem");
      await writeFile(ca, "CA-PEM");
      assert.equal(clientConfig(loadConfig({ ...REQUIRED, PG_SSLMODE: "disable" })).ssl, false);
      assert.deepEqual(clientConfig(loadConfig({ ...REQUIRED, PG_SSLMODE: "require" })).ssl, { rejectUnauthorized: false });
      assert.deepEqual(clientConfig(loadConfig({ ...REQUIRED, PG_SSLMODE: "verify-full", PG_SSLROOTCERT: ca })).ssl, {
        rejectUnauthorized: true,
        servername: "db.example.com",
        ca: "CA-PEM",
      });
      const verifyCa = clientConfig(loadConfig({ ...REQUIRED, PG_SSLMODE: "verify-ca", PG_SSLROOTCERT: ca, PG_SSLCERT: ca, PG_SSLKEY: ca })).ssl as Record<string, unknown>;
      assert.deepEqual({ ...verifyCa, checkServerIdentity: undefined }, { rejectUnauthorized: true, ca: "CA-PEM", cert: "CA-PEM", key: "CA-PEM", checkServerIdentity: undefined });
      assert.equal((verifyCa.checkServerIdentity as () => unknown)(), undefined, "verify-ca accepts any name on a certificate from the CA");
      const opts = clientConfig(loadConfig({ ...REQUIRED, PG_PORT: "6543", PG_PASSWORD: "pw" }));
      assert.deepEqual([opts.host, opts.port, opts.database, opts.user, opts.password], ["db.example.com", 6543, "app", "cdc", "pw"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("engine config: docs/engine.md", () => {
  const doc = readFileSync(join(__dirname, "../../docs/engine.md"), "utf8");
  const rows = new Map<string, string[]>();
  for (const line of doc.split("\n")) {
    const m = /^\| `([A-Z0-9_]+)` \|(.*)\|$/.exec(line);
    if (m) rows.set(m[1], m[2].split(" | ").map((c) => c.trim()));
  }

  it("documents every variable the engine reads, and nothing it does not", () => {
    assert.deepEqual([...rows.keys()].sort(), Object.keys(VARIABLES).sort());
  });

  it("states each variable's real default and an example the engine accepts", () => {
    for (const [name, spec] of Object.entries(VARIABLES) as [string, { default?: string; optional?: boolean; example: string }][]) {
      const [defaultCell, meaning, exampleCell] = rows.get(name)!;
      const expected = spec.default === undefined ? (spec.optional ? "(none)" : "—") : spec.default === "" ? "(empty)" : `\`${spec.default}\``;
      assert.equal(defaultCell, expected, `default of ${name}`);
      assert.ok(meaning.length > 20, `meaning of ${name}`);
      const example = /^`([^`]+)`$/.exec(exampleCell)?.[1];
      assert.ok(example, `example of ${name}: ${exampleCell}`);
      if (name === "PG_SSLROOTCERT" || name === "PG_SSLCERT" || name === "PG_SSLKEY") continue; // a path on the reader's machine
      if (name === "PG_AUTH_REGION") {
        assert.deepEqual(problemsOf({ ...REQUIRED, PG_AUTH: "aws-iam", [name]: example }), [], `${name}=${example}`);
        continue;
      }
      assert.deepEqual(problemsOf({ ...REQUIRED, [name]: example }), [], `${name}=${example}`);
    }
  });

  it("shows one example record per operation, each with the contract's metadata fields", () => {
    const records = [...doc.matchAll(/```json\n(.*)\n```/g)].map((m) => JSON.parse(m[1]) as Record<string, unknown>);
    assert.deepEqual(records.map((r) => r.__op), ["b", "r", "c", "u", "u", "d", "t"]);
    for (const r of records) {
      assert.equal(r.__deleted, r.__op === "d" ? "true" : "false");
      assert.equal(typeof r.__lsn, "number");
      assert.equal(typeof r.__seq, "number");
      assert.equal(typeof r.__ts_ms, "number");
    }
    const unchanged = records.filter((r) => r.__unchanged);
    assert.equal(unchanged.length, 1);
    assert.deepEqual(unchanged[0].__unchanged, ["notes"]);
    assert.ok(!("notes" in unchanged[0]), "unchanged columns are absent, never null");
  });
});
