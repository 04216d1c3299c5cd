/**
 * The real index.ts with `databricks.enabled` on each cloud (and off), under the platform's mock
 * harness: the Databricks part is wired to the landing storage the same stack creates, and the
 * job URL is a stack output. One process per stack config.
 */
import assert from "node:assert/strict";
import { runProgram, type ProgramRun } from "./harness";

const P = (k: string) => `postgres-cdc-multicloud:${k}`;
const PROVIDER: Record<string, Record<string, string>> = {
  aws: { "aws:region": "eu-west-1" },
  azure: { "azure-native:location": "westeurope" },
  gcp: { "gcp:project": "acme-data-123", "gcp:region": "europe-west1" },
};
const TABLES = ["public.users", "public.orders", "warehouse.stock_item"];
const PASSWORD = "pg-password-for-databricks-tests";
const TOKEN = "dapi-program-test-token-0042";

function stack(cloud: string, databricks: Record<string, unknown>, dryRun = false, extra: Record<string, unknown> = {}) {
  return runProgram({
    stack: "prod",
    dryRun,
    secretKeys: [P("postgresPassword"), ...("token" in databricks ? [P("databricks")] : [])],
    config: {
      [P("cloud")]: cloud,
      ...PROVIDER[cloud],
      [P("postgres")]: { host: "db.example.com", database: "app", user: "cdc_user", tables: TABLES },
      [P("postgresPassword")]: PASSWORD,
      [P("tags")]: { team: "data-platform" },
      [P("databricks")]: databricks,
      ...extra,
    },
  });
}

const ENABLED = {
  enabled: true,
  primaryKeys: { "public.users": ["user_id"], "public.orders": ["order_id"], "warehouse.stock_item": ["item_id"] },
};
const of = (run: ProgramRun, type: string) => run.resources.filter((r) => r.type === type);
const jobParams = (run: ProgramRun): Record<string, string> =>
  Object.fromEntries((of(run, "databricks:index/job:Job")[0].inputs.parameters as { name: string; default: string }[]).map((p) => [p.name, p.default]));

describe("databricks: wired into index.ts", function () {
  this.timeout(120_000);
  let aws: ProgramRun, azure: ProgramRun, gcpPreview: ProgramRun, off: ProgramRun, azureKafka: ProgramRun;
  const KAFKA_OPTIONS = { "kafka.security.protocol": "SASL_SSL", "kafka.sasl.mechanism": "OAUTHBEARER" };

  before(async () => {
    [aws, azure, gcpPreview, off, azureKafka] = await Promise.all([
      stack("aws", { ...ENABLED, token: TOKEN, host: "https://dbc-1234abcd-5678.cloud.databricks.com" }),
      stack("azure", ENABLED, false, { [P("alerts")]: { emails: ["oncall@example.com"] } }),
      stack("gcp", ENABLED, true),
      stack("aws", { enabled: false }),
      stack("azure", { ...ENABLED, kafkaOptions: KAFKA_OPTIONS }, false, { [P("sink")]: { kind: "kafka", topicPrefix: "pg" } }),
    ]);
    for (const run of [aws, azure, gcpPreview, off, azureKafka]) assert.equal(run.exitCode, 0, `${run.error}\n${run.stderr.slice(0, 2000)}`);
  });

  it("AWS: the Unity Catalog role reads the bucket and prefix the engine writes, and the job URL is a stack output", () => {
    const landingUrl = aws.outputs!.landingUrl as string;
    const bucket = /^s3:\/\/([^/]+)\/(.*)$/.exec(landingUrl)!;
    assert.equal(of(aws, "databricks:index/externalLocation:ExternalLocation")[0].inputs.url, landingUrl);
    const role = of(aws, "aws:iam/role:Role").find((r) => r.name === "cdc-databricks-access-role")!;
    const policy = JSON.parse(of(aws, "aws:iam/rolePolicy:RolePolicy").find((r) => r.name === "cdc-databricks-access-landing-access")!.inputs.policy);
    assert.deepEqual(policy.Statement.find((s: any) => s.Sid === "LandingObjects").Resource, [`arn:aws:s3:::${bucket[1]}/${bucket[2]}/*`]);
    assert.equal(of(aws, "databricks:index/storageCredential:StorageCredential")[0].inputs.awsIamRole.roleArn, `arn:aws:iam::123456789012:role/${role.inputs.name}`);
    assert.match(aws.outputs!.databricksJobUrl as string, /^https:\/\/dbc\.example\.cloud\.databricks\.com\/#job\//);
    assert.equal(jobParams(aws).landing_url, landingUrl);
    // Tables from the engine's list, keyed by the configured primary keys.
    assert.deepEqual(JSON.parse(jobParams(aws).tables).map((t: any) => [t.name, t.primary_key]), TABLES.map((t) => [t, ENABLED.primaryKeys[t as keyof typeof ENABLED.primaryKeys]]));
    // The stack's tags reach the Databricks side too.
    assert.equal(of(aws, "databricks:index/job:Job")[0].inputs.tags.team, "data-platform");
    assert.equal(role.inputs.tags.team, "data-platform");
  });

  it("sink kind kafka: the job's bronze reads the engine's topics (bootstrap, prefix, the kafkaOptions) and silver the manifests bronze mirrors under the checkpoint root", () => {
    const params = jobParams(azureKafka);
    const ns = of(azureKafka, "azure-native:eventhub:Namespace")[0].inputs.namespaceName as string;
    assert.equal(params.kafka_bootstrap, `${ns}.servicebus.windows.net:9093`);
    assert.equal(params.kafka_topic_prefix, "pg");
    assert.deepEqual(JSON.parse(params.kafka_options), KAFKA_OPTIONS);
    assert.equal(params.landing_url, `${params.checkpoint_root.replace(/\/+$/, "")}/kafka-landing`);
    for (const k of ["kafka_bootstrap", "kafka_topic_prefix", "kafka_options"]) assert.equal(jobParams(aws)[k], "", `${k} only with a Kafka sink`);
  });

  it("a failed job run pages the platform's alerts.emails (the job's failure emails)", () => {
    const azureJob = of(azure, "databricks:index/job:Job")[0].inputs;
    assert.deepEqual(azureJob.emailNotifications.onFailures, ["oncall@example.com"]);
    assert.equal(of(aws, "databricks:index/job:Job")[0].inputs.emailNotifications, undefined, "no alerts, no failure emails");
  });

  it("AWS: the workspace token is only ever a secret", () => {
    const provider = of(aws, "pulumi:providers:databricks");
    assert.equal(provider.length, 1);
    assert.deepEqual(provider[0].inputs.token, { $secret: TOKEN });
    const plain = JSON.stringify(aws.resources.map((r) => r.inputs), (_k, v) => (v && typeof v === "object" && "$secret" in v ? "[secret]" : v));
    assert.ok(!plain.includes(TOKEN));
    assert.ok(!JSON.stringify(aws.outputs).includes(TOKEN));
  });

  it("Azure: the access connector gets the same Storage Blob Data Contributor role as the engine, on the same container only", () => {
    const assignments = of(azure, "azure-native:authorization:RoleAssignment");
    const uc = assignments.find((a) => a.name === "cdc-databricks-access-blob-contributor")!;
    const engineWriter = assignments.find((a) => a.inputs.description?.includes("landing") && a !== uc)!;
    assert.ok(engineWriter, `the platform's landing writer assignment (${assignments.map((a) => a.name).join(", ")})`);
    assert.equal(uc.inputs.scope, engineWriter.inputs.scope, "scoped to the landing container, like the engine's");
    assert.match(uc.inputs.scope, /\/blobServices\/default\/containers\/[^/]+$/);
    assert.equal(uc.inputs.roleDefinitionId, engineWriter.inputs.roleDefinitionId, "Storage Blob Data Contributor");
    const connector = of(azure, "azure-native:databricks:AccessConnector")[0];
    assert.deepEqual(connector.inputs.identity, { type: "SystemAssigned" });
    assert.match(uc.inputs.principalId, /^principal-/);
    assert.equal(of(azure, "databricks:index/externalLocation:ExternalLocation")[0].inputs.url, azure.outputs!.landingUrl);
  });

  it("GCP (preview): the Databricks-managed service account is granted on the landing bucket only", () => {
    const bucket = /^gs:\/\/([^/]+)\//.exec(gcpPreview.outputs!.landingUrl as string)![1];
    const members = of(gcpPreview, "gcp:storage/bucketIAMMember:BucketIAMMember").filter((m) => m.name.startsWith("cdc-databricks-"));
    assert.deepEqual(members.map((m) => m.inputs.role).sort(), ["roles/storage.legacyBucketReader", "roles/storage.objectAdmin"]);
    for (const m of members) assert.equal(m.inputs.bucket, bucket);
    assert.equal(of(gcpPreview, "databricks:index/job:Job").length, 1);
  });

  it("creates nothing Databricks-related when databricks.enabled is false", () => {
    const related = off.resources.filter((r) => /databricks|Databricks/.test(r.type) || r.name.startsWith("databricks"));
    assert.deepEqual(related.map((r) => `${r.type} ${r.name}`), []);
    assert.equal(off.outputs!.databricksJobUrl, undefined);
    assert.ok(off.resources.length > 10, "the rest of the platform is there");
  });
});
