/**
 * A wrong or missing setting stops the program before any resource is registered, with one
 * message that names the key and shows a valid example (what `pulumi preview` prints).
 */
import assert from "node:assert/strict";
import { PROJECT, runProgram, stackFileConfig, TEST_PASSWORD } from "./harness";

const P = (k: string) => `${PROJECT}:${k}`;
const POSTGRES = { host: "db.example.com", database: "app", user: "cdc_user", tables: ["public.users"] };
const base = { [P("cloud")]: "aws", "aws:region": "eu-west-1", [P("postgres")]: POSTGRES, [P("postgresPassword")]: TEST_PASSWORD };

const CASES: { title: string; config: Record<string, unknown>; expect: RegExp[] }[] = [
  {
    title: "postgres.host missing",
    config: { ...base, [P("postgres")]: { database: "app", user: "cdc_user" } },
    expect: [/postgres-cdc-multicloud:postgres\.host is required but not set/, /for example: pulumi config set --path postgres-cdc-multicloud:postgres\.host db\.internal\.example\.com/],
  },
  {
    title: "unknown cloud",
    config: { ...base, [P("cloud")]: "oracle" },
    expect: [/postgres-cdc-multicloud:cloud must be one of local, aws, azure, gcp \(got "oracle"\)/, /for example: pulumi config set postgres-cdc-multicloud:cloud aws/],
  },
  {
    title: "gcp without a project",
    config: { ...base, [P("cloud")]: "gcp", "gcp:region": "europe-west1" },
    expect: [/^gcp:project is required when cloud is gcp; for example: pulumi config set gcp:project my-project-id$/],
  },
  {
    title: "an alert address that is not an email",
    config: { ...base, [P("alerts")]: { emails: ["oncall"] } },
    expect: [/postgres-cdc-multicloud:alerts\.emails\[0\] is invalid \(Invalid email address, got "oncall"\)/, /for example: pulumi config set --path postgres-cdc-multicloud:alerts\.emails\[0\] oncall@example\.com/],
  },
  {
    title: "alerts on the local target",
    config: { ...base, [P("cloud")]: "local", [P("postgres")]: { ...POSTGRES, host: "host.docker.internal" }, [P("alerts")]: { emails: ["oncall@example.com"] } },
    expect: [/^postgres-cdc-multicloud:alerts is not available on the local target .*; remove it: pulumi config rm postgres-cdc-multicloud:alerts$/],
  },
  {
    title: "a container size Container Apps does not offer",
    config: { ...base, [P("cloud")]: "azure", "azure-native:location": "westeurope", [P("containerMemoryMiB")]: "1024" },
    expect: [/containerMemoryMiB must be 512 \(2 GiB per vCPU\) for 0\.25 vCPU on Container Apps/, /for example: pulumi config set postgres-cdc-multicloud:containerMemoryMiB 512/],
  },
  {
    title: "a record limit the container's memory cannot hold",
    config: { ...base, [P("batching")]: { maxRecordBytes: 314572800 } },
    expect: [/^postgres-cdc-multicloud:containerMemoryMiB is 512, too little for batching\.maxRecordBytes 314572800: a record that large needs about 945 MiB .* or lower batching\.maxRecordBytes to 150994944 or remove it \(the most this container holds\); for example: pulumi config set postgres-cdc-multicloud:containerMemoryMiB 945$/],
  },
  {
    title: "a table name that is not schema-qualified",
    config: { ...base, [P("postgres")]: { ...POSTGRES, tables: ["users"] } },
    expect: [/postgres-cdc-multicloud:postgres\.tables\[0\] is invalid/, /for example: pulumi config set --path postgres-cdc-multicloud:postgres\.tables\[0\] public\.users/],
  },
  {
    title: "local target pointed at localhost (the container itself)",
    config: { ...base, [P("cloud")]: "local", [P("postgres")]: { ...POSTGRES, host: "localhost" } },
    expect: [/postgres-cdc-multicloud:postgres\.host is localhost, which inside the engine's container is the container itself/, /pulumi config set --path postgres-cdc-multicloud:postgres\.host host\.docker\.internal/],
  },
  {
    title: "an alert threshold no cloud's alerting accepts",
    config: { ...base, [P("alerts")]: { emails: ["oncall@example.com"], thresholds: { restartWindowMinutes: 7 } } },
    expect: [/postgres-cdc-multicloud:alerts\.thresholds\.restartWindowMinutes is invalid \(must be one of 5, 10, 15, 30, 45, 60, 120, 180, 240, 360, 720, 1440/, /for example: pulumi config set --path postgres-cdc-multicloud:alerts\.thresholds\.restartWindowMinutes 30/],
  },
  {
    title: "two pipelines on one slot, and postgres.tables beside pipelines",
    config: { ...base, [P("pipelines")]: [{ name: "a", tables: ["public.a"], slot: "s1" }, { name: "b", tables: ["public.b"], slot: "s1" }] },
    expect: [/postgres-cdc-multicloud:postgres\.tables must be empty when pipelines are set/, /postgres-cdc-multicloud:pipelines\[1\]\.slot "s1" is also pipelines\[0\]'s: each pipeline needs its own replication slot .*; for example: pulumi config set --path postgres-cdc-multicloud:pipelines\[1\]\.slot cdc_slot_b/],
  },
  {
    title: "the password not set",
    config: { [P("cloud")]: "aws", "aws:region": "eu-west-1", [P("postgres")]: POSTGRES },
    expect: [/postgres-cdc-multicloud:postgresPassword is required but not set; for example: pulumi config set --secret postgres-cdc-multicloud:postgresPassword/],
  },
  {
    title: "the example stack file's placeholders left in place",
    config: { ...stackFileConfig("Pulumi.dev.yaml").config, [P("postgresPassword")]: TEST_PASSWORD },
    expect: [/postgres-cdc-multicloud:postgres\.host still holds a <placeholder>/],
  },
];

describe("pulumi program: bad configuration", function () {
  this.timeout(180_000);
  const results = new Map<string, ReturnType<typeof runProgram>>();
  before(() => {
    for (const c of CASES) {
      const secretKeys = P("postgresPassword") in c.config ? [P("postgresPassword")] : [];
      const run = runProgram({ stack: "bad", config: c.config, secretKeys, dryRun: true });
      run.catch(() => undefined);
      results.set(c.title, run);
    }
  });

  for (const c of CASES) {
    it(`${c.title}: one message naming the key with an example, nothing registered`, async () => {
      const r = await results.get(c.title)!;
      assert.notEqual(r.exitCode, 0);
      assert.equal(r.kind, "SettingsError", `${r.kind}: ${r.error}`);
      for (const re of c.expect) assert.match(r.error!, re);
      assert.ok(!r.error!.includes(TEST_PASSWORD), "the password must not be echoed");
      assert.ok(!/\n\s+at /.test(r.error!), "no stack trace in the message");
      assert.deepEqual(r.resources, [], "nothing is registered when the configuration is wrong");
    });
  }
});

describe("pulumi program: loads under the Pulumi CLI's own TypeScript loader", function () {
  this.timeout(120_000);
  it("index.ts runs through @pulumi/pulumi's ts-node registration with this repo's tsconfig", () => {
    const { spawnSync } = require("node:child_process") as typeof import("node:child_process");
    const path = require("node:path") as typeof import("node:path");
    const r = spawnSync(process.execPath, [path.join(__dirname, "harness", "pulumi-loader.js")], {
      encoding: "utf8",
      env: {
        PATH: process.env.PATH,
        LOADER_CONFIG: JSON.stringify({ [P("cloud")]: "local", [P("postgres")]: JSON.stringify({ host: "host.docker.internal", database: "app", user: "cdc_user" }), [P("postgresPassword")]: TEST_PASSWORD }),
        LOADER_SECRET_KEYS: JSON.stringify([P("postgresPassword")]),
      },
    });
    const line = r.stdout.trim().split("\n").pop() ?? "";
    assert.equal(r.status, 0, `${line}\n${r.stderr.slice(0, 2000)}`);
    const result = JSON.parse(line);
    assert.deepEqual(result.exports, ["cloud", "databaseLogin", "databricksJobUrl", "engineIdentities", "engineRuntime", "engineSecurityGroupId", "healthCommand", "imageRef", "landingUrl", "logLocation", "pipelines", "serviceId", "serviceName", "tailLogsCommand"]);
  });
});
