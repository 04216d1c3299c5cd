/**
 * The real index.ts under Pulumi mocks (the documented way to unit-test Pulumi programs; no cloud
 * account or Pulumi CLI exists here), once per target and per stack file, in `pulumi up` and
 * `pulumi preview` mode. Each run is its own process (tests/pulumi/harness); the mocks answer
 * only the invokes the program is expected to make.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { loadConfig, VARIABLES } from "../../container/src/config";
import { RESOURCE_LIMITS } from "../../components/limits";
import { RULES } from "../../components/naming";
import { byType, one, PROJECT, reveal, runProgram, stackFileConfig, TEST_PASSWORD, withoutSecrets, type ProgramRun, type RegisteredResource } from "./harness";

type Cloud = "aws" | "azure" | "gcp" | "local";
const P = (k: string) => `${PROJECT}:${k}`;
const USER_TAGS = { team: "data-platform", "cost-center": "c-42" };
const POSTGRES = { host: "db.example.com", port: 6432, database: "app", user: "cdc_user", sslmode: "require", slot: "cdc_slot_test", tables: ["public.users", "warehouse.stock_item"] };
const LOCAL_DIR = mkdtempSync(path.join(tmpdir(), "cdc-local-landing-"));
const ALERT_EMAILS = ["oncall@example.com", "data-platform@example.com"];
/** Not the defaults: the tests see each threshold reach its cloud's alert. */
const THRESHOLDS = { replicationLagMiB: 512, restarts: 4, restartWindowMinutes: 60, landingStallMinutes: 20 };

const PROVIDER_CONFIG: Record<Cloud, Record<string, string>> = {
  aws: { "aws:region": "eu-west-1" },
  azure: { "azure-native:location": "westeurope" },
  gcp: { "gcp:project": "acme-data-123", "gcp:region": "europe-west1" },
  local: {},
};

function cloudConfig(cloud: Cloud, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    [P("cloud")]: cloud,
    ...PROVIDER_CONFIG[cloud],
    [P("postgres")]: cloud === "local" ? { ...POSTGRES, host: "host.docker.internal" } : POSTGRES,
    [P("postgresPassword")]: TEST_PASSWORD,
    [P("tags")]: USER_TAGS,
    [P("batching")]: { maxSize: 5000, maxWaitMs: 2000 },
    ...(cloud === "local" ? { [P("localLandingDir")]: LOCAL_DIR } : { [P("alerts")]: { emails: ALERT_EMAILS, thresholds: THRESHOLDS } }),
    ...extra,
  };
}
const SECRET_KEYS = [P("postgresPassword")];

/** Fills the stack files' `<…>` placeholders the way a user would, with valid values. */
function filled(config: Record<string, unknown>): Record<string, unknown> {
  const fill = (v: unknown): unknown => {
    if (typeof v === "string") {
      return v
        .replace(/^<vpc-id>$/, "vpc-0123456789abcdef0")
        .replace(/^<private-subnet-id-a>$/, "subnet-0123456789abcdef0")
        .replace(/^<private-subnet-id-b>$/, "subnet-0123456789abcdef1")
        .replace(/^<database-client-sg-id>$/, "sg-0123456789abcdef0")
        .replace(/^<oncall-email>$/, "oncall@example.com")
        .replace(/^<your-gcp-project-id>$/, "acme-staging-42")
        .replace(/<[^<>]+>/g, "example");
    }
    if (Array.isArray(v)) return v.map(fill);
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fill(x)]));
    return v;
  };
  return fill(config) as Record<string, unknown>;
}

const CLOUD_PREFIX: Record<Cloud, string> = { aws: "aws:", azure: "azure-native:", gcp: "gcp:", local: "docker:index/container" };

/** Resource types that have no tags/labels field at all (checked against the SDK's Args types). */
const UNTAGGABLE = new Set([
  "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
  "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
  "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
  "aws:s3/bucketVersioning:BucketVersioning",
  "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
  "aws:s3/bucketPolicy:BucketPolicy",
  "aws:ecr/lifecyclePolicy:LifecyclePolicy",
  "aws:iam/rolePolicy:RolePolicy",
  "aws:secretsmanager/secretVersion:SecretVersion",
  "azure-native:storage:BlobContainer",
  "azure-native:storage:ManagementPolicy",
  "azure-native:authorization:RoleAssignment",
  "gcp:secretmanager/secretVersion:SecretVersion",
  "gcp:serviceaccount/account:Account",
  "gcp:storage/bucketIAMMember:BucketIAMMember",
  "gcp:secretmanager/secretIamMember:SecretIamMember",
  "gcp:logging/projectBucketConfig:ProjectBucketConfig",
  "gcp:logging/projectSink:ProjectSink",
  "gcp:projects/service:Service",
  "gcp:logging/projectExclusion:ProjectExclusion",
  "aws:sns/topicSubscription:TopicSubscription",
  "aws:cloudwatch/logMetricFilter:LogMetricFilter",
  "gcp:logging/metric:Metric",
  "docker:index/image:Image",
  "random:index/randomString:RandomString",
]);

/** The base name every test stack's resources carry: `cdc-<stack>-<hash of project and stack>`. */
const BASE = { test: "cdc-test-3bfe9b", dev: "cdc-dev-96bc8d", prod: "cdc-prod-6cd7ec" } as const;
const STACK_CLOUD = { dev: "azure", staging: "gcp", prod: "aws" } as const;
const SHARED_TYPES = new Set(["docker:index/image:Image", "random:index/randomString:RandomString"]);

/** Every value the program sends is within its API's documented limits (components/limits.ts), for every resource. */
function assertWithinLimits(run: ProgramRun): void {
  for (const r of run.resources) {
    if (r.type.startsWith("postgres-cdc-multicloud:") || r.type.startsWith("pulumi:providers:")) continue;
    const check = RESOURCE_LIMITS[r.type];
    assert.ok(check, `${r.type} has no row in components/limits.ts RESOURCE_LIMITS`);
    const problems = check(reveal(r.inputs) as Record<string, any>);
    assert.deepEqual(problems, [], `${r.type} ${r.name} breaks a documented limit`);
  }
}

/** The engine's environment as the service gets it: plain values, and how PG_PASSWORD arrives. */
function engineEnv(run: ProgramRun, cloud: Cloud): { env: Record<string, string>; password: unknown } {
  const env: Record<string, string> = {};
  let password: unknown;
  const take = (name: string, value: unknown, passwordSource: unknown) => {
    if (name === "PG_PASSWORD") password = passwordSource;
    else env[name] = value as string;
  };
  switch (cloud) {
    case "aws": {
      const defs = JSON.parse(one(run, "aws:ecs/taskDefinition:TaskDefinition").inputs.containerDefinitions);
      assert.equal(defs.length, 1);
      for (const e of defs[0].environment) take(e.name, e.value, e);
      for (const s of defs[0].secrets ?? []) take(s.name, undefined, { secretFrom: s.valueFrom });
      break;
    }
    case "azure":
      for (const e of one(run, "azure-native:app:ContainerApp").inputs.template.containers[0].env) take(e.name, e.value, e);
      break;
    case "gcp":
      for (const e of one(run, "gcp:cloudrunv2/service:Service").inputs.template.containers[0].envs) take(e.name, e.value, e);
      break;
    case "local": {
      const envs = one(run, "docker:index/container:Container").inputs.envs;
      assert.ok(envs && "$secret" in envs, "the local container's env (holding the password) must be a secret as a whole");
      for (const line of reveal(envs) as string[]) {
        const i = line.indexOf("=");
        take(line.slice(0, i), line.slice(i + 1), { secretEnv: true });
      }
      break;
    }
  }
  return { env, password };
}

/** True when the value at `path` is inside a secret (the SDK may mark a parent object as a whole). */
function isSecretAt(value: any, keys: string[]): boolean {
  let v = value;
  for (const k of keys) {
    if (v && typeof v === "object" && "$secret" in v) return true;
    v = v?.[k];
  }
  return Boolean(v && typeof v === "object" && "$secret" in v);
}

function tagsOf(r: RegisteredResource): Record<string, string> | undefined {
  if (r.type === "docker:index/container:Container") {
    return Object.fromEntries((r.inputs.labels ?? []).map((l: { label: string; value: string }) => [l.label, l.value]));
  }
  // Cloud Monitoring resources carry their labels as userLabels (a notification channel's labels are its settings).
  return r.type.startsWith("gcp:") ? r.inputs.userLabels ?? r.inputs.labels : r.inputs.tags;
}

function assertCommon(run: ProgramRun, cloud: Cloud, stack: string, userTags: Record<string, string>): void {
  assert.equal(run.exitCode, 0, `program failed: ${run.error}\n${run.stderr}`);
  const custom = run.resources.filter((r) => !r.type.startsWith("postgres-cdc-multicloud:"));
  // The selected cloud's resources, and none of another's.
  for (const other of (["aws", "azure", "gcp", "local"] as Cloud[]).filter((c) => c !== cloud)) {
    const foreign = custom.filter((r) => r.type.startsWith(CLOUD_PREFIX[other]));
    assert.deepEqual(foreign.map((r) => r.type), [], `${cloud} stack registered ${other} resources`);
  }
  assert.ok(custom.some((r) => r.type.startsWith(CLOUD_PREFIX[cloud])), `no ${cloud} resources registered`);
  for (const r of custom) {
    assert.ok(r.type.startsWith(CLOUD_PREFIX[cloud]) || SHARED_TYPES.has(r.type) || r.type.startsWith("pulumi:providers:"), `unexpected resource type ${r.type}`);
  }
  // Components follow the <project>:<cloud|index>:<Concept> token convention.
  const components = run.resources.filter((r) => r.type.startsWith("postgres-cdc-multicloud:"));
  for (const c of components) assert.match(c.type, new RegExp(`^postgres-cdc-multicloud:(index|${cloud}):[A-Z][A-Za-z]+$`));
  for (const concept of ["LandingStorage", "EngineService"]) assert.ok(components.some((c) => c.type === `postgres-cdc-multicloud:${cloud}:${concept}`), `missing ${concept}`);

  // The password only ever as a secret: never readable in plain state or env…
  const plainState = JSON.stringify(withoutSecrets(run.resources.map((r) => r.inputs)));
  assert.ok(!plainState.includes(TEST_PASSWORD), "the PostgreSQL password appears outside a secret");
  assert.ok(!JSON.stringify(withoutSecrets(run.outputs ?? {})).includes(TEST_PASSWORD), "the password appears in stack outputs");
  // …and it did reach the target's secret store, as a secret.
  assert.ok(JSON.stringify(run.resources.map((r) => r.inputs)).includes(TEST_PASSWORD), "the password was stored nowhere");

  // Tags/labels on every taggable resource.
  const expected = { ...userTags, project: PROJECT, "managed-by": "pulumi" };
  for (const r of custom) {
    if (UNTAGGABLE.has(r.type)) continue;
    const tags = tagsOf(r);
    assert.ok(tags, `${r.type} ${r.name} has no tags/labels`);
    for (const [k, v] of Object.entries(expected)) assert.equal(tags[k], v, `${r.type} ${r.name} lacks tag ${k}=${v}`);
    assert.ok(tags.stack, `${r.type} ${r.name} lacks the stack tag`);
    if (cloud === "gcp") for (const [k, v] of Object.entries(tags)) assert.match(`${k}=${v}`, /^[a-z][a-z0-9_-]{0,62}=[a-z0-9_-]{0,63}$/, `invalid GCP label on ${r.name}`);
  }
  // Only the selected cloud's provider SDK was loaded (azure-native by submodule, never its root).
  const packages = new Set(run.modules.map((m) => m.split("/")[0]));
  const allowed = new Set([{ aws: "aws", azure: "azure-native", gcp: "gcp", local: "docker" }[cloud], "docker", "random"]);
  for (const p of packages) assert.ok(allowed.has(p), `${cloud} stack loaded @pulumi/${p}`);
  assert.ok(!run.modules.includes("azure-native/index.js"), "the azure-native root module must not be loaded");
  assert.equal(run.outputs?.cloud, cloud);
  assertWithinLimits(run);
  void stack;
}

/** The engine env must follow the engine's own contract: known variables, values its parser accepts. */
function assertEngineContract(run: ProgramRun, cloud: Cloud, pg: typeof POSTGRES): Record<string, string> {
  const { env, password } = engineEnv(run, cloud);
  const allowed = new Set<string>([...Object.keys(VARIABLES), ...(cloud === "azure" ? ["AZURE_CLIENT_ID", "PG_PASSWORD_VERSION"] : [])]);
  for (const name of Object.keys(env)) assert.ok(allowed.has(name), `${name} is not an engine variable`);
  assert.ok(password !== undefined, "PG_PASSWORD is not delivered to the engine");
  assert.ok(!JSON.stringify(env).includes(TEST_PASSWORD));
  const parsed = loadConfig({ ...env, PG_PASSWORD: TEST_PASSWORD });
  assert.equal(parsed.pg.host, pg.host);
  assert.equal(parsed.pg.port, pg.port);
  assert.equal(parsed.pg.database, pg.database);
  assert.equal(parsed.pg.user, pg.user);
  assert.equal(parsed.pg.sslMode, pg.sslmode);
  assert.deepEqual(parsed.tables.map((t) => `${t.schema}.${t.table}`), pg.tables);
  assert.equal(parsed.httpPort, 8080);
  assert.equal(parsed.sink.kind, { aws: "s3", azure: "abfss", gcp: "gs", local: "file" }[cloud]);
  if (cloud !== "local") assert.equal(env.SINK_URL, run.outputs?.landingUrl, "the engine writes where the stack says it lands");
  return env;
}

function assertImage(run: ProgramRun, cloud: Cloud, preview: boolean): void {
  const image = one(run, "docker:index/image:Image");
  assert.equal(image.inputs.buildOnPreview, false, "preview must not need a Docker daemon");
  // Relative to the project directory: the same inputs from any checkout (tests/pulumi/image.test.ts).
  assert.deepEqual([image.inputs.build.context, image.inputs.build.dockerfile], [".", "container/Dockerfile"]);
  assert.match(image.inputs.imageName, /:[0-9a-f]{20}$/, "tagged with the content hash");
  if (cloud === "local") {
    assert.equal(image.inputs.skipPush, true);
  } else {
    assert.equal(image.inputs.skipPush, false);
    // The push credentials travel as a secret (the SDK marks the whole registry block).
    const registry = image.inputs.registry;
    const unknownInPreview = preview && registry.password && typeof registry.password === "object" && "__pulumiUnknown" in registry.password;
    assert.ok(unknownInPreview || "$secret" in registry || "$secret" in registry.password, "registry password must be a secret");
    assert.ok(unknownInPreview || reveal(registry).password, "registry password is empty");
    assert.ok(!JSON.stringify(withoutSecrets(image.inputs)).includes(reveal(registry).password));
  }
  if (preview) assert.equal(run.outputs?.imageRef, "$unknown", "the digest is only known after a real build");
  else assert.match(String(run.outputs?.imageRef), cloud === "local" ? /^sha256:[0-9a-f]{64}$/ : /@sha256:[0-9a-f]{64}$/);
}

const runs = new Map<string, Promise<ProgramRun>>();
function run(key: string, make: () => Promise<ProgramRun>): Promise<ProgramRun> {
  if (!runs.has(key)) runs.set(key, make());
  return runs.get(key)!;
}
const cloudRun = (cloud: Cloud, preview = false) => run(`${cloud}:${preview}`, () => runProgram({ stack: "test", config: cloudConfig(cloud), secretKeys: SECRET_KEYS, dryRun: preview }));
const stackRun = (stack: "dev" | "staging" | "prod", preview = false) => run(`stack-${stack}:${preview}`, () => {
  const { config, secretKeys } = stackFileConfig(`Pulumi.${stack}.yaml`);
  return runProgram({ stack, config: { ...filled(config), [P("postgresPassword")]: TEST_PASSWORD }, secretKeys: [...secretKeys, P("postgresPassword")], dryRun: preview });
});

describe("pulumi program under mocks", function () {
  this.timeout(180_000);

  before(() => {
    // Start every run now; the harness runs two at a time.
    for (const cloud of ["aws", "azure", "gcp", "local"] as Cloud[]) for (const preview of [false, true]) void cloudRun(cloud, preview).catch(() => undefined);
    for (const stack of ["dev", "staging", "prod"] as const) for (const preview of [false, true]) void stackRun(stack, preview).catch(() => undefined);
  });
  after(() => rmSync(LOCAL_DIR, { recursive: true, force: true }));

  for (const cloud of ["aws", "azure", "gcp", "local"] as Cloud[]) {
    for (const preview of [false, true]) {
      it(`${cloud} (${preview ? "preview" : "up"}): its own resources only, password only as a secret, tags everywhere, engine env per contract`, async () => {
        const r = await cloudRun(cloud, preview);
        assertCommon(r, cloud, "test", USER_TAGS);
        assertImage(r, cloud, preview);
        if (preview && cloud === "azure") assert.deepEqual(r.fetches, [], "preview makes no registry login");
        // In preview the AWS task definition and the Azure app template wait for the image digest (unknown).
        if (!preview || cloud === "gcp" || cloud === "local") assertEngineContract(r, cloud, cloud === "local" ? { ...POSTGRES, host: "host.docker.internal" } : POSTGRES);
      });
    }
  }

  it("aws: S3 private, encrypted, TLS 1.2+ only, versioned, expiring; ECS runs exactly one ARM64 task; grants scoped to the prefix and the secret", async () => {
    const r = await cloudRun("aws");
    const bucket = one(r, "aws:s3/bucket:Bucket");
    assert.ok(RULES.s3Bucket(bucket.inputs.bucket), `invalid S3 bucket name ${bucket.inputs.bucket}`);
    assert.equal(bucket.inputs.acl, undefined);
    const pab = one(r, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs;
    assert.deepEqual([pab.blockPublicAcls, pab.blockPublicPolicy, pab.ignorePublicAcls, pab.restrictPublicBuckets], [true, true, true, true]);
    assert.equal(one(r, "aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs.rule.objectOwnership, "BucketOwnerEnforced");
    assert.equal(one(r, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").inputs.rules[0].applyServerSideEncryptionByDefault.sseAlgorithm, "AES256");
    assert.equal(one(r, "aws:s3/bucketVersioning:BucketVersioning").inputs.versioningConfiguration.status, "Enabled");
    const lifecycle = one(r, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs.rules[0];
    assert.deepEqual([lifecycle.status, lifecycle.filter.prefix, lifecycle.expiration.days], ["Enabled", "landing/", 30]);
    const policy = JSON.parse(one(r, "aws:s3/bucketPolicy:BucketPolicy").inputs.policy);
    const deny = (cond: string) => policy.Statement.find((s: any) => s.Effect === "Deny" && JSON.stringify(s.Condition).includes(cond));
    assert.ok(deny("aws:SecureTransport"), "no deny for plain HTTP");
    assert.equal(deny("s3:TlsVersion").Condition.NumericLessThan["s3:TlsVersion"], "1.2");

    const service = one(r, "aws:ecs/service:Service").inputs;
    assert.deepEqual([service.desiredCount, service.deploymentMinimumHealthyPercent, service.deploymentMaximumPercent, service.launchType], [1, 0, 100, "FARGATE"]);
    assert.equal(service.waitForSteadyState, true, "`up` waits until the task runs, instead of reporting success while it crash-loops");
    assert.deepEqual(service.networkConfiguration.subnets, ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"], "default VPC subnets when none configured");
    const task = one(r, "aws:ecs/taskDefinition:TaskDefinition").inputs;
    assert.deepEqual([task.cpu, task.memory, task.networkMode, task.runtimePlatform.cpuArchitecture], ["256", "512", "awsvpc", "ARM64"]);
    assert.equal(one(r, "docker:index/image:Image").inputs.build.platform, "linux/arm64");
    const container = JSON.parse(task.containerDefinitions)[0];
    assert.match(container.image, new RegExp(`^123456789012\\.dkr\\.ecr\\.eu-west-1\\.amazonaws\\.com/${BASE.test}-engine@sha256:`), "the task runs the pushed digest");
    assert.match(container.healthCheck.command.join(" "), /\/healthz/);
    assert.equal(container.readonlyRootFilesystem, true);
    assert.equal(container.logConfiguration.options["awslogs-group"], `/ecs/${BASE.test}/engine`);
    // The name ends in the secret's recreatable suffix: a deleted secret keeps its name for the recovery window.
    const secretName = one(r, "aws:secretsmanager/secret:Secret").inputs.name;
    assert.match(secretName, new RegExp(`^${BASE.test}/postgres-password-[0-9a-z]{4}$`));
    const secretArn = `arn:aws:secretsmanager:eu-west-1:123456789012:secret:${secretName}-AbCdEf`;
    assert.deepEqual(container.secrets, [{ name: "PG_PASSWORD", valueFrom: secretArn }]);
    assert.equal(one(r, "aws:cloudwatch/logGroup:LogGroup").inputs.retentionInDays, 30);

    const policies = byType(r, "aws:iam/rolePolicy:RolePolicy").map((p) => ({ name: p.name, doc: JSON.parse(p.inputs.policy) }));
    const task_ = policies.find((p) => p.name === "cdc-engine-task-landing")!.doc.Statement;
    const bucketArn = `arn:aws:s3:::${bucket.inputs.bucket}`;
    assert.deepEqual(task_.find((s: any) => s.Sid === "WriteLandingPrefix").Resource, `${bucketArn}/landing/*`);
    assert.deepEqual(task_.find((s: any) => s.Sid === "ListLandingPrefix").Resource, bucketArn);
    for (const s of task_) assert.ok(!JSON.stringify(s).includes('"*"') && !String(s.Action).includes("*"), `task role statement too broad: ${JSON.stringify(s)}`);
    const exec = policies.find((p) => p.name === "cdc-engine-execution")!.doc.Statement;
    assert.equal(exec.find((s: any) => s.Sid === "ReadPasswordSecret").Resource, secretArn);
    for (const s of exec) if (s.Resource === "*") assert.equal(s.Action, "ecr:GetAuthorizationToken", "only the ECR token call may use *");
    const names = [one(r, "aws:ecr/repository:Repository").inputs.name, ...byType(r, "aws:iam/role:Role").map((x) => x.inputs.name), service.name, one(r, "aws:ecs/cluster:Cluster").inputs.name];
    for (const n of names) assert.ok(RULES.awsName(n) || RULES.ecrRepository(n), `invalid AWS name ${n}`);
    // Paging: the running task count below 1 (missing data counts) notifies an SNS topic that emails each address.
    const alarm = byType(r, "aws:cloudwatch/metricAlarm:MetricAlarm").find((a) => a.name === "cdc-alerts-not-running")!.inputs;
    assert.deepEqual([alarm.namespace, alarm.metricName, alarm.comparisonOperator, alarm.threshold, alarm.treatMissingData], ["ECS/ContainerInsights", "RunningTaskCount", "LessThanThreshold", 1, "breaching"]);
    assert.deepEqual(alarm.dimensions, { ClusterName: BASE.test, ServiceName: `${BASE.test}-engine` });
    const topicArn = `arn:aws:sns:eu-west-1:123456789012:${one(r, "aws:sns/topic:Topic").inputs.name}`;
    assert.deepEqual([alarm.alarmActions, alarm.okActions], [[topicArn], [topicArn]]);
    assert.deepEqual(byType(r, "aws:sns/topicSubscription:TopicSubscription").map((x) => [x.inputs.topic, x.inputs.protocol, x.inputs.endpoint]), ALERT_EMAILS.map((e) => [topicArn, "email", e]));
    // Outputs an operator needs: where it runs, its security group and roles, commands to paste.
    const o = r.outputs!;
    assert.equal(o.engineRuntime, `ecs:eu-west-1:${BASE.test}`);
    assert.equal(o.engineSecurityGroupId, "cdc-engine-sg-id");
    assert.deepEqual(o.engineIdentities, { taskRoleArn: `arn:aws:iam::123456789012:role/${BASE.test}-engine-task`, executionRoleArn: `arn:aws:iam::123456789012:role/${BASE.test}-engine-exec` });
    assert.equal(o.tailLogsCommand, `aws logs tail /ecs/${BASE.test}/engine --follow --region eu-west-1`);
    assert.match(String(o.healthCommand), new RegExp(`^aws ecs describe-services --cluster ${BASE.test} --services ${BASE.test}-engine --region eu-west-1 `));
    assert.deepEqual(r.invokes.map((i) => i.token).sort(), ["aws:ec2/getSubnets:getSubnets", "aws:ec2/getVpc:getVpc", "aws:ecr/getAuthorizationToken:getAuthorizationToken", "aws:index/getCallerIdentity:getCallerIdentity"]);
  });

  it("azure: ADLS Gen2 private, TLS 1.2, no shared keys; one replica; identity granted only the container, the registry and the secret; ACR pushed via token exchange", async () => {
    const r = await cloudRun("azure");
    const account = one(r, "azure-native:storage:StorageAccount").inputs;
    assert.ok(RULES.storageAccount(account.accountName), `invalid storage account name ${account.accountName}`);
    assert.deepEqual(
      [account.isHnsEnabled, account.allowBlobPublicAccess, account.minimumTlsVersion, account.enableHttpsTrafficOnly, account.allowSharedKeyAccess, account.encryption.services.blob.enabled],
      [true, false, "TLS1_2", true, false, true],
    );
    const container = one(r, "azure-native:storage:BlobContainer").inputs;
    assert.equal(container.publicAccess, "None");
    const rule = one(r, "azure-native:storage:ManagementPolicy").inputs.policy.rules[0];
    assert.deepEqual(rule.definition.filters.prefixMatch, ["landing/landing/"]);
    assert.equal(rule.definition.actions.baseBlob.delete.daysAfterModificationGreaterThan, 30);

    const registry = one(r, "azure-native:containerregistry:Registry").inputs;
    assert.ok(RULES.acr(registry.registryName));
    assert.equal(registry.adminUserEnabled, false);
    assert.equal(registry.anonymousPullEnabled, false);
    assert.deepEqual(r.fetches.map((f) => f.url), [`https://${registry.registryName}.azurecr.io/oauth2/exchange`]);
    assert.match(r.fetches[0].body, /grant_type=access_token&service=[a-z0-9]+\.azurecr\.io&tenant=[-0-9a-f]+&access_token=aad-access-token-for-arm/);
    assert.deepEqual(reveal(one(r, "docker:index/image:Image").inputs.registry), { server: `${registry.registryName}.azurecr.io`, username: "00000000-0000-0000-0000-000000000000", password: "acr-refresh-token" });

    const vault = one(r, "azure-native:keyvault:Vault").inputs;
    assert.ok(RULES.keyVault(vault.vaultName), `invalid key vault name ${vault.vaultName}`);
    assert.equal(vault.properties.enableRbacAuthorization, true);
    assert.equal(vault.properties.softDeleteRetentionInDays, 90, "one retention for every stack: Azure never changes it after creation");
    assert.match(vault.vaultName, /^kvcdctest3bf[0-9a-f]{8}[0-9a-z]{4}$/, "ends in the vault's recreatable suffix");
    const secret = one(r, "azure-native:keyvault:Secret").inputs;
    assert.ok(isSecretAt(secret, ["properties", "value"]), "the Key Vault secret value is a Pulumi secret");
    assert.equal(reveal(secret).properties.value, TEST_PASSWORD);

    const app = one(r, "azure-native:app:ContainerApp").inputs;
    assert.ok(RULES.containerApp(app.containerAppName));
    assert.deepEqual([app.template.scale.minReplicas, app.template.scale.maxReplicas, app.template.scale.rules], [1, 1, []]);
    assert.equal(app.configuration.ingress, undefined, "no ingress: nothing drives HTTP scaling");
    assert.equal(app.configuration.activeRevisionsMode, "Single");
    assert.equal(app.identity.type, "UserAssigned");
    assert.deepEqual(app.configuration.registries.map((x: any) => x.identity), app.identity.userAssignedIdentities, "the registry is pulled with the managed identity");
    assert.match(app.configuration.secrets[0].keyVaultUrl, /^https:\/\/.+\.vault\.azure\.net\/secrets\/postgres-password$/);
    assert.equal(app.configuration.secrets[0].value, undefined, "no plain secret value in the app");
    const c = app.template.containers[0];
    assert.match(c.image, /\.azurecr\.io\/cdc-engine@sha256:/);
    assert.deepEqual([c.resources.cpu, c.resources.memory], [0.25, "0.5Gi"]);
    assert.deepEqual(c.probes.map((p: any) => `${p.type}:${p.httpGet.path}:${p.httpGet.port}:${p.failureThreshold}x${p.periodSeconds}s`), ["Startup:/healthz:8080:10x30s", "Liveness:/healthz:8080:3x10s"]);
    assert.equal(app.workloadProfileName, "Consumption", "the app runs on the environment's Consumption workload profile");
    assert.deepEqual(c.env.find((e: any) => e.name === "PG_PASSWORD"), { name: "PG_PASSWORD", secretRef: "pg-password" });
    const identity = one(r, "azure-native:managedidentity:UserAssignedIdentity");
    // DefaultAzureCredential picks the user-assigned identity by its client id.
    assert.match(c.env.find((e: any) => e.name === "AZURE_CLIENT_ID").value, /^client-[0-9a-f]{8}$/);

    const grants = byType(r, "azure-native:authorization:RoleAssignment").map((g) => [g.inputs.roleDefinitionId.split("/").pop(), g.inputs.scope]);
    const containerId = grants.find(([role]) => role === "ba92f5b4-2d11-453d-a403-e96b0029c9fe")![1];
    assert.match(containerId, /\/storageAccounts\/[a-z0-9]+\/blobServices\/default\/containers\/landing$/, "Blob Data Contributor only on the container");
    assert.match(grants.find(([role]) => role === "7f951dda-4ed3-4680-a7ca-43fe172d538d")![1], /\/providers\/Microsoft\.ContainerRegistry\/registries\/[a-z0-9]+$/, "AcrPull only on the registry");
    assert.match(grants.find(([role]) => role === "4633458b-17de-408a-b874-0445c86b69e6")![1], /\/vaults\/[^/]+\/secrets\/postgres-password$/, "Secrets User only on the secret");
    assert.equal(grants.length, 3);
    for (const g of byType(r, "azure-native:authorization:RoleAssignment")) assert.equal(g.inputs.principalType, "ServicePrincipal");

    const workspace = one(r, "azure-native:operationalinsights:Workspace").inputs;
    assert.equal(workspace.retentionInDays, 30);
    const env = one(r, "azure-native:app:ManagedEnvironment").inputs;
    assert.ok(isSecretAt(env, ["appLogsConfiguration", "logAnalyticsConfiguration", "sharedKey"]), "the workspace key is a secret");
    const alert = one(r, "azure-native:monitor:MetricAlert").inputs;
    assert.equal(alert.ruleName, `${BASE.test}-engine-not-running`);
    assert.deepEqual(alert.scopes, [`/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/${one(r, "azure-native:resources:ResourceGroup").inputs.resourceGroupName}/providers/Microsoft.App/containerApps/${app.containerAppName}`]);
    assert.deepEqual(alert.criteria.allOf.map((c: any) => [c.metricName, c.operator, c.threshold, c.timeAggregation]), [["Replicas", "LessThan", 1, "Maximum"]]);
    const actionGroup = one(r, "azure-native:monitor:ActionGroup").inputs;
    assert.deepEqual(actionGroup.emailReceivers.map((e: any) => e.emailAddress), ALERT_EMAILS);
    assert.ok(actionGroup.groupShortName.length <= 12, "Azure allows at most 12 characters");
    const o = r.outputs!;
    const rg = one(r, "azure-native:resources:ResourceGroup").inputs.resourceGroupName;
    assert.equal(o.engineRuntime, `container-apps:${rg}/${env.environmentName}`);
    assert.equal(o.engineSecurityGroupId, undefined);
    assert.deepEqual(Object.keys(o.engineIdentities as object).sort(), ["clientId", "identityId", "principalId"]);
    assert.match((o.engineIdentities as any).identityId, /\/userAssignedIdentities\/id-/);
    assert.equal(o.tailLogsCommand, `az containerapp logs show --name ${app.containerAppName} --resource-group ${rg} --follow --format text`);
    assert.equal(o.healthCommand, `az containerapp replica list --name ${app.containerAppName} --resource-group ${rg} --output table`);
    assert.deepEqual(env.workloadProfiles, [{ name: "Consumption", workloadProfileType: "Consumption" }], "a workload-profiles environment (what a VNet-integrated one must be)");
    for (const [rule_, name] of [[RULES.resourceGroup, one(r, "azure-native:resources:ResourceGroup").inputs.resourceGroupName], [RULES.logAnalytics, workspace.workspaceName], [RULES.containerApp, env.environmentName], [RULES.managedIdentity, identity.inputs.resourceName]] as const) {
      assert.ok(rule_(name), `invalid Azure name ${name}`);
    }
  });

  it("azure: the Container App waits for its fresh role assignments to propagate before it uses them, and not on later updates", async () => {
    const WAIT = /^waiting \d+ s for the new cloud grant to propagate before the Container App reads its Key Vault secret and pulls its image$/;
    const fresh = await runProgram({ stack: "test", config: cloudConfig("azure"), secretKeys: SECRET_KEYS, computedOutputs: path.join(__dirname, "fixtures", "fresh-grants.ts") });
    assert.equal(fresh.exitCode, 0, `${fresh.error}\n${fresh.stderr}`);
    assert.equal(fresh.logs.filter((l) => WAIT.test(l)).length, 1, `logs: ${fresh.logs.join(" | ")}`);
    assert.ok(one(fresh, "azure-native:app:ContainerApp").inputs.configuration.registries[0].identity, "the app still gets its identity");
    // Grants without a fresh creation time (an update): no wait.
    assert.deepEqual((await cloudRun("azure")).logs.filter((l) => WAIT.test(l)), []);
  });

  it("gcp: GCS uniform access, public access prevented, lifecycle; one always-on Cloud Run instance without URL; service account scoped to the bucket and the secret", async () => {
    const r = await cloudRun("gcp");
    const bucket = one(r, "gcp:storage/bucket:Bucket").inputs;
    assert.ok(RULES.gcsBucket(bucket.name), `invalid GCS bucket name ${bucket.name}`);
    assert.deepEqual([bucket.uniformBucketLevelAccess, bucket.publicAccessPrevention, bucket.versioning.enabled], [true, "enforced", true]);
    assert.deepEqual(bucket.lifecycleRules[0], { action: { type: "Delete" }, condition: { age: 30, matchesPrefixes: ["landing/"] } });

    const service = one(r, "gcp:cloudrunv2/service:Service").inputs;
    assert.ok(RULES.cloudRun(service.name));
    assert.deepEqual(service.scaling, { scalingMode: "MANUAL", manualInstanceCount: 1 });
    assert.equal(service.template.scaling, undefined, "revision scaling is ignored under manual scaling");
    assert.equal(service.launchStage, "BETA", "readiness probes are a preview feature");
    assert.equal(service.ingress, "INGRESS_TRAFFIC_INTERNAL_ONLY");
    assert.equal(service.defaultUriDisabled, true);
    const c = service.template.containers[0];
    assert.equal(c.resources.cpuIdle, false, "CPU always allocated");
    assert.deepEqual(c.resources.limits, { cpu: "1", memory: "512Mi" });
    assert.deepEqual([c.startupProbe.httpGet.path, c.livenessProbe.httpGet.path, c.readinessProbe.httpGet.path], ["/healthz", "/healthz", "/readyz"]);
    assert.match(c.image, new RegExp(`^europe-west1-docker\\.pkg\\.dev/acme-data-123/${BASE.test}-images/cdc-engine@sha256:`));
    const pw = c.envs.find((e: any) => e.name === "PG_PASSWORD");
    // Pinned to the password's current version: a new password is a new revision (docs/deploy.md, "Rotating the password").
    assert.equal(pw.valueSource.secretKeyRef.secret, `${BASE.test}-postgres-password`);
    assert.match(pw.valueSource.secretKeyRef.version, /^\d+$/, "a version number, not latest");
    assert.equal(pw.value, undefined);

    const sa = one(r, "gcp:serviceaccount/account:Account").inputs;
    assert.ok(RULES.gcpServiceAccount(sa.accountId));
    const member = `serviceAccount:${sa.accountId}@acme-data-123.iam.gserviceaccount.com`;
    assert.equal(service.template.serviceAccount, `${sa.accountId}@acme-data-123.iam.gserviceaccount.com`);
    const bucketGrant = one(r, "gcp:storage/bucketIAMMember:BucketIAMMember").inputs;
    assert.deepEqual([bucketGrant.bucket, bucketGrant.role, bucketGrant.member], [bucket.name, "roles/storage.objectUser", member]);
    const secretGrant = one(r, "gcp:secretmanager/secretIamMember:SecretIamMember").inputs;
    assert.deepEqual([secretGrant.secretId, secretGrant.role, secretGrant.member], [`${BASE.test}-postgres-password`, "roles/secretmanager.secretAccessor", member]);
    const iamTypes = r.resources.filter((x) => /iam|IAM|Iam/.test(x.type)).map((x) => x.type).sort();
    assert.deepEqual(iamTypes, ["gcp:secretmanager/secretIamMember:SecretIamMember", "gcp:storage/bucketIAMMember:BucketIAMMember"], "no project-wide grants");

    const logBucket = one(r, "gcp:logging/projectBucketConfig:ProjectBucketConfig").inputs;
    assert.equal(logBucket.retentionDays, 30);
    assert.match(logBucket.bucketId, new RegExp(`^${BASE.test}-logs-[0-9a-z]{4}$`), "a deleted log bucket keeps its id 7 days: it ends in a recreatable suffix");
    const sink = one(r, "gcp:logging/projectSink:ProjectSink").inputs;
    assert.match(sink.filter, new RegExp(`service_name="${BASE.test}-engine"`));
    const policy = byType(r, "gcp:monitoring/alertPolicy:AlertPolicy").find((p) => p.name === "cdc-alerts-not-running")!.inputs;
    assert.equal(policy.conditions.length, 2, "below one instance, or no instance metric at all");
    for (const c of policy.conditions) assert.match((c.conditionThreshold ?? c.conditionAbsent).filter, new RegExp(`service_name="${BASE.test}-engine" AND metric.type="run.googleapis.com/container/instance_count"`));
    const channels = byType(r, "gcp:monitoring/notificationChannel:NotificationChannel");
    assert.deepEqual(channels.map((c) => [c.inputs.type, c.inputs.labels.email_address]), ALERT_EMAILS.map((e) => ["email", e]));
    assert.equal(policy.notificationChannels.length, ALERT_EMAILS.length);
    const o = r.outputs!;
    assert.equal(o.engineRuntime, "cloud-run:acme-data-123/europe-west1");
    assert.deepEqual(o.engineIdentities, { serviceAccountEmail: `${sa.accountId}@acme-data-123.iam.gserviceaccount.com` });
    assert.equal(o.tailLogsCommand, `gcloud logging read '${sink.filter}' --project acme-data-123 --bucket ${logBucket.bucketId} --location europe-west1 --view _AllLogs --freshness 1h --order asc`);
    assert.match(String(o.healthCommand), new RegExp(`^gcloud run services describe ${service.name} --project acme-data-123 --region europe-west1 `));
    // The _Default sink would store the same logs a second time.
    assert.equal(one(r, "gcp:logging/projectExclusion:ProjectExclusion").inputs.filter, sink.filter);
    assert.ok(RULES.gcpId(one(r, "gcp:artifactregistry/repository:Repository").inputs.repositoryId));
    const apis = byType(r, "gcp:projects/service:Service").map((x) => x.inputs);
    assert.deepEqual(apis.map((a) => a.service).sort(), ["artifactregistry", "iam", "logging", "monitoring", "run", "secretmanager", "storage"].map((a) => `${a}.googleapis.com`));
    for (const a of apis) assert.deepEqual([a.project, a.disableOnDestroy], ["acme-data-123", false], "APIs stay on when the stack goes");
    assert.deepEqual(r.invokes.map((i) => i.token), ["gcp:organizations/getClientConfig:getClientConfig"]);
  });

  it("local: one Docker container with restart policy and health check, landing into the host directory", async () => {
    const r = await cloudRun("local");
    const c = one(r, "docker:index/container:Container").inputs;
    assert.equal(c.restart, "unless-stopped");
    assert.deepEqual(c.healthcheck.tests.slice(0, 3), ["CMD", "node", "-e"]);
    assert.match(c.healthcheck.tests[3], /127\.0\.0\.1:8080\/healthz/);
    assert.deepEqual(c.volumes, [{ hostPath: LOCAL_DIR, containerPath: "/landing" }]);
    assert.deepEqual(c.ports, [{ internal: 8080, external: 8080, ip: "127.0.0.1" }]);
    assert.equal(c.readOnly, true);
    assert.ok(RULES.docker(c.name));
    assert.equal(c.image, reveal(r.outputs?.imageRef));
    assert.equal(engineEnv(r, "local").env.SINK_URL, "file:///landing/landing");
    assert.equal(r.outputs?.landingUrl, `file://${LOCAL_DIR}/landing`);
    assert.equal(r.outputs?.tailLogsCommand, `docker logs --follow ${c.name}`);
    assert.match(String(r.outputs?.healthCommand), /curl -fsS http:\/\/127\.0\.0\.1:8080\/readyz$/);
    assert.deepEqual(r.invokes, []);
  });

  it("aws alerts: restarts from a metric filter on the start line; lag and stall from the engine's EMF metrics; thresholds from config", async () => {
    const r = await cloudRun("aws");
    const alarms = new Map(byType(r, "aws:cloudwatch/metricAlarm:MetricAlarm").map((a) => [a.name, a.inputs]));
    assert.deepEqual([...alarms.keys()].sort(), ["cdc-alerts-landing-stalled", "cdc-alerts-not-running", "cdc-alerts-replication-lag", "cdc-alerts-restarts"]);
    const dims = { Source: "db.example.com:6432/app", Slot: POSTGRES.slot };
    const filter = one(r, "aws:cloudwatch/logMetricFilter:LogMetricFilter").inputs;
    assert.equal(filter.logGroupName, `/ecs/${BASE.test}/engine`);
    assert.equal(filter.pattern, '{ $.msg = "cdc-engine starting" }');
    assert.deepEqual(filter.metricTransformation, { name: "EngineStarts", namespace: "PostgresCdc", value: "1", unit: "Count", dimensions: { Source: "$.source", Slot: "$.slot" } });
    const restarts = alarms.get("cdc-alerts-restarts")!;
    assert.deepEqual([restarts.namespace, restarts.metricName, restarts.statistic, restarts.period, restarts.evaluationPeriods, restarts.threshold, restarts.comparisonOperator, restarts.treatMissingData],
      ["PostgresCdc", "EngineStarts", "Sum", 3600, 1, 4, "GreaterThanOrEqualToThreshold", "notBreaching"]);
    const lag = alarms.get("cdc-alerts-replication-lag")!;
    assert.deepEqual([lag.metricName, lag.statistic, lag.period, lag.evaluationPeriods, lag.threshold, lag.comparisonOperator], ["ReplicationLagBytes", "Minimum", 60, 5, 512 * 1024 * 1024, "GreaterThanThreshold"]);
    const stalled = alarms.get("cdc-alerts-landing-stalled")!;
    assert.deepEqual([stalled.metricName, stalled.statistic, stalled.threshold, stalled.comparisonOperator], ["StalledSeconds", "Maximum", 1200, "GreaterThanOrEqualToThreshold"]);
    for (const a of [restarts, lag, stalled]) assert.deepEqual(a.dimensions, dims, "the dimensions the engine's metrics line uses");
    for (const a of alarms.values()) assert.ok(a.alarmActions.length === 1 && a.okActions.length === 1);
    // The engine writes its metrics line in EMF, and its dimensions are exactly the alarms' (docs/engine.md).
    assert.equal(engineEnv(r, "aws").env.METRICS_LOG, "emf");
    const parsed = loadConfig({ ...engineEnv(r, "aws").env, PG_PASSWORD: "x" });
    assert.deepEqual({ Source: `${parsed.pg.host}:${parsed.pg.port}/${parsed.pg.database}`, Slot: parsed.pg.slot }, dims);
  });

  it("azure alerts: log search alerts on the workspace over the engine's start and metrics lines, thresholds from config", async () => {
    const r = await cloudRun("azure");
    const rules = new Map(byType(r, "azure-native:monitor:ScheduledQueryRule").map((x) => [x.name, x.inputs]));
    assert.deepEqual([...rules.keys()].sort(), ["cdc-alerts-engine-restarts", "cdc-alerts-landing-stalled", "cdc-alerts-replication-lag"]);
    const rg = one(r, "azure-native:resources:ResourceGroup").inputs.resourceGroupName;
    const workspaceId = `/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/${rg}/providers/Microsoft.OperationalInsights/workspaces/${one(r, "azure-native:operationalinsights:Workspace").inputs.workspaceName}`;
    const app = one(r, "azure-native:app:ContainerApp").inputs.containerAppName;
    const groupId = `/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/${rg}/providers/Microsoft.Insights/actionGroups/ag-${BASE.test}-engine`;
    for (const rule of rules.values()) {
      assert.deepEqual([rule.kind, rule.scopes, rule.evaluationFrequency, rule.autoMitigate], ["LogAlert", [workspaceId], "PT5M", true]);
      assert.match(rule.criteria.allOf[0].query, new RegExp(`^ContainerAppConsoleLogs_CL\n\\| where ContainerAppName_s == "${app}"\n`));
      assert.equal(rule.actions.actionGroups.length, 1);
    }
    const c = (name: string) => rules.get(name)!.criteria.allOf[0];
    assert.deepEqual([rules.get("cdc-alerts-engine-restarts")!.windowSize, c("cdc-alerts-engine-restarts").timeAggregation, c("cdc-alerts-engine-restarts").operator, c("cdc-alerts-engine-restarts").threshold], ["PT1H", "Count", "GreaterThanOrEqual", 4]);
    assert.match(c("cdc-alerts-engine-restarts").query, /tostring\(line\.msg\) == "cdc-engine starting"$/);
    assert.deepEqual([rules.get("cdc-alerts-replication-lag")!.windowSize, c("cdc-alerts-replication-lag").timeAggregation, c("cdc-alerts-replication-lag").metricMeasureColumn, c("cdc-alerts-replication-lag").threshold], ["PT5M", "Minimum", "lagBytes", 512 * 1024 * 1024]);
    assert.match(c("cdc-alerts-replication-lag").query, /"cdc metrics"[\s\S]*lagBytes = todouble\(line\.lagBytes\)$/);
    assert.deepEqual([c("cdc-alerts-landing-stalled").timeAggregation, c("cdc-alerts-landing-stalled").metricMeasureColumn, c("cdc-alerts-landing-stalled").operator, c("cdc-alerts-landing-stalled").threshold], ["Maximum", "stalledSeconds", "GreaterThanOrEqual", 1200]);
    void groupId;
  });

  it("gcp alerts: log-based metrics from the engine's start and metrics lines, an alert policy each, thresholds from config", async () => {
    const r = await cloudRun("gcp");
    const metrics = new Map(byType(r, "gcp:logging/metric:Metric").map((m) => [m.name, m.inputs]));
    assert.deepEqual([...metrics.keys()].sort(), ["cdc-alerts-engine-starts", "cdc-alerts-landing-stalled", "cdc-alerts-replication-lag"]);
    const service = `resource.type="cloud_run_revision" AND resource.labels.service_name="${BASE.test}-engine"`;
    assert.equal(metrics.get("cdc-alerts-engine-starts")!.filter, `${service} AND jsonPayload.msg="cdc-engine starting"`);
    assert.deepEqual(metrics.get("cdc-alerts-engine-starts")!.metricDescriptor, { metricKind: "DELTA", valueType: "INT64", unit: "1" });
    assert.equal(metrics.get("cdc-alerts-replication-lag")!.filter, `${service} AND jsonPayload.msg="cdc metrics" AND jsonPayload.lagBytes:*`);
    assert.equal(metrics.get("cdc-alerts-replication-lag")!.valueExtractor, "EXTRACT(jsonPayload.lagBytes)");
    assert.equal(metrics.get("cdc-alerts-landing-stalled")!.valueExtractor, "EXTRACT(jsonPayload.stalledSeconds)");
    const policies = new Map(byType(r, "gcp:monitoring/alertPolicy:AlertPolicy").map((p) => [p.name, p.inputs]));
    assert.deepEqual([...policies.keys()].sort(), ["cdc-alerts-engine-restarts", "cdc-alerts-landing-stalled", "cdc-alerts-not-running", "cdc-alerts-replication-lag"]);
    const cond = (name: string) => policies.get(name)!.conditions[0].conditionThreshold;
    const metricFilter = (m: string) => `metric.type="logging.googleapis.com/user/${metrics.get(m)!.name}" AND resource.type="cloud_run_revision"`;
    assert.deepEqual([cond("cdc-alerts-engine-restarts").filter, cond("cdc-alerts-engine-restarts").comparison, cond("cdc-alerts-engine-restarts").thresholdValue, cond("cdc-alerts-engine-restarts").aggregations[0].alignmentPeriod],
      [metricFilter("cdc-alerts-engine-starts"), "COMPARISON_GE", 4, "3600s"]);
    assert.deepEqual([cond("cdc-alerts-replication-lag").filter, cond("cdc-alerts-replication-lag").thresholdValue, cond("cdc-alerts-replication-lag").duration], [metricFilter("cdc-alerts-replication-lag"), 512 * 1024 * 1024, "300s"]);
    assert.deepEqual([cond("cdc-alerts-landing-stalled").filter, cond("cdc-alerts-landing-stalled").comparison, cond("cdc-alerts-landing-stalled").thresholdValue], [metricFilter("cdc-alerts-landing-stalled"), "COMPARISON_GE", 1200]);
    for (const p of policies.values()) assert.equal(p.notificationChannels.length, ALERT_EMAILS.length);
    assert.equal(engineEnv(r, "gcp").env.METRICS_LOG, undefined, "plain JSON lines (the default) on GCP");
  });

  describe("password rotation: a new password rolls the engine, and nothing else changes", () => {
    const ROTATED = "Pw-rotated-for-tests-42d1";
    const rotated = (cloud: "aws" | "azure" | "gcp") => run(`${cloud}:rotated`, () => runProgram({ stack: "test", config: { ...cloudConfig(cloud), [P("postgresPassword")]: ROTATED }, secretKeys: SECRET_KEYS }));
    /** What makes the service roll: the ECS task definition, the Container App template, the Cloud Run template. */
    const rollingInput: Record<string, (r: ProgramRun) => unknown> = {
      aws: (r) => JSON.parse(one(r, "aws:ecs/taskDefinition:TaskDefinition").inputs.containerDefinitions)[0],
      azure: (r) => one(r, "azure-native:app:ContainerApp").inputs.template,
      gcp: (r) => one(r, "gcp:cloudrunv2/service:Service").inputs.template,
    };
    const versionOf: Record<string, (r: ProgramRun) => unknown> = {
      aws: (r) => (rollingInput.aws(r) as any).dockerLabels["postgres-cdc-multicloud.password-version"],
      azure: (r) => (rollingInput.azure(r) as any).containers[0].env.find((e: any) => e.name === "PG_PASSWORD_VERSION").value,
      gcp: (r) => (rollingInput.gcp(r) as any).containers[0].envs.find((e: any) => e.name === "PG_PASSWORD").valueSource.secretKeyRef.version,
    };
    for (const cloud of ["aws", "azure", "gcp"] as const) {
      it(`${cloud}: the secret's new version reaches the service's template`, async () => {
        const [before, after] = await Promise.all([cloudRun(cloud), rotated(cloud)]);
        assert.equal(after.exitCode, 0, after.error);
        assert.ok(JSON.stringify(after.resources.map((x) => x.inputs)).includes(ROTATED), "the new password reached the secret store");
        assert.ok(!JSON.stringify(withoutSecrets(after.resources.map((x) => x.inputs))).includes(ROTATED), "only as a secret");
        const [v1, v2] = [versionOf[cloud](before), versionOf[cloud](after)];
        assert.ok(typeof v1 === "string" && v1.length > 0, `no password version in the ${cloud} template`);
        assert.notEqual(v1, v2, "a new password must change what rolls the service");
        // Only the version differs: the rotation rolls the engine and changes nothing else about it.
        const without = (r: ProgramRun) => JSON.stringify(rollingInput[cloud](r)).split(String(versionOf[cloud](r))).join("<version>");
        assert.equal(without(after), without(before));
      });
    }
  });

  for (const stack of ["dev", "staging", "prod"] as const) {
    for (const preview of [false, true]) {
      it(`Pulumi.${stack}.yaml (${preview ? "preview" : "up"}) deploys its cloud with its settings`, async () => {
        const r = await stackRun(stack, preview);
        const cloud: Cloud = STACK_CLOUD[stack];
        assertCommon(r, cloud, stack, { dev: { environment: "dev", team: "data-platform" }, staging: { environment: "staging", team: "data-platform" }, prod: { environment: "prod", team: "data-platform", "cost-center": "4711" } }[stack]);
        assertImage(r, cloud, preview);
        if (!preview) {
          const env = engineEnv(r, cloud).env;
          const { config } = stackFileConfig(`Pulumi.${stack}.yaml`);
          const pg = filled(config)[P("postgres")] as typeof POSTGRES;
          assertEngineContract(r, cloud, pg);
          assert.equal(env.SINK_COMPRESSION, stack === "dev" ? "none" : "gzip");
        }
        if (stack === "prod") {
          // prod: deletion protection, longer retention, bigger task, private subnets.
          assert.equal(one(r, "aws:s3/bucket:Bucket").inputs.forceDestroy, false);
          assert.equal(one(r, "aws:ecr/repository:Repository").inputs.forceDelete, false);
          assert.equal(one(r, "aws:secretsmanager/secret:Secret").inputs.recoveryWindowInDays, 30);
          assert.equal(one(r, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs.rules[0].expiration.days, 90);
          assert.equal(one(r, "aws:cloudwatch/logGroup:LogGroup").inputs.retentionInDays, 365);
          const service = one(r, "aws:ecs/service:Service").inputs;
          assert.deepEqual(service.networkConfiguration.subnets, ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]);
          assert.equal(service.networkConfiguration.assignPublicIp, false);
          assert.equal(service.networkConfiguration.securityGroups.length, 2);
          if (!preview) {
            const task = one(r, "aws:ecs/taskDefinition:TaskDefinition").inputs;
            assert.deepEqual([task.cpu, task.memory], ["512", "1024"]);
          }
          assert.ok(!r.invokes.some((i) => i.token === "aws:ec2/getVpc:getVpc"), "configured subnets: no default VPC lookup");
        } else if (stack === "staging") {
          // staging: GCP with direct VPC egress, 1 vCPU, and alerts with its own thresholds.
          const service = one(r, "gcp:cloudrunv2/service:Service").inputs;
          assert.deepEqual(service.template.vpcAccess, { networkInterfaces: [{ network: "default", subnetwork: "default" }], egress: "PRIVATE_RANGES_ONLY" });
          assert.equal(service.deletionProtection, false);
          assert.equal(one(r, "gcp:storage/bucket:Bucket").inputs.lifecycleRules[0].condition.age, 14);
          assert.deepEqual(byType(r, "gcp:monitoring/notificationChannel:NotificationChannel").map((c) => c.inputs.labels.email_address), ["oncall@example.com"]);
          const lag = byType(r, "gcp:monitoring/alertPolicy:AlertPolicy").find((p) => p.name === "cdc-alerts-replication-lag")!;
          assert.equal(lag.inputs.conditions[0].conditionThreshold.thresholdValue, 2048 * 1024 * 1024);
        } else {
          assert.equal(one(r, "azure-native:keyvault:Vault").inputs.properties.enablePurgeProtection, undefined);
          assert.equal(one(r, "azure-native:storage:ManagementPolicy").inputs.policy.rules[0].definition.actions.baseBlob.delete.daysAfterModificationGreaterThan, 7);
        }
        assert.deepEqual(byType(r, "postgres-cdc-multicloud:databricks:DatabricksPipeline"), [], "databricks.enabled is false in the examples");
        assert.equal(r.resources.filter((x) => x.type.endsWith(":EngineAlerts")).length, stack === "staging" ? 1 : 0, "alerts only where alerts.emails is set");
      });
    }
  }
});
