/**
 * Keyless database login (`postgres.auth`), the real index.ts under Pulumi mocks, one process per
 * stack config (tests/pulumi/harness): per cloud the identity's grant exists with the exact
 * ARN/role/member, no password secret is created anywhere, and the engine gets PG_AUTH and never
 * PG_PASSWORD; a bad combination stops the program with one message naming the key. The grants'
 * formats are also checked against the documented rules in components/limits.ts.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../../container/src/config";
import { NAME_RULES, RESOURCE_LIMITS } from "../../components/limits";
import { baseName, pipelineBaseName } from "../../components/naming";
import { byType, one, PROJECT, runProgram, TEST_PASSWORD, withoutSecrets, type ProgramRun } from "./harness";

type Cloud = "aws" | "azure" | "gcp";
const P = (k: string) => `${PROJECT}:${k}`;
const ACCOUNT = "123456789012"; // the harness's caller identity
const RESOURCE_ID = "db-12ABC34DEFG5HIJ6KLMNOP78QR"; // the form AWS documents for a DbiResourceId
const GCP_PROJECT = "acme-data-123";
const PROVIDER: Record<Cloud, Record<string, string>> = {
  aws: { "aws:region": "eu-west-1" },
  azure: { "azure-native:location": "westeurope" },
  gcp: { "gcp:project": GCP_PROJECT, "gcp:region": "europe-west1" },
};
const POSTGRES = { host: "db.example.com", database: "app", sslmode: "verify-full", tables: ["public.users"] };
const SCRAM_SINK = { kind: "kafka", bootstrap: "kafka-1.internal.example.com:9093", auth: "scram-sha-256", username: "cdc-engine" };
const KAFKA_PASSWORD = "Kafka-scram-pw-77c1e0";
const MODE: Record<Cloud, string> = { aws: "aws-iam", azure: "azure-entra", gcp: "gcp-iam" };

const keyless = (cloud: Cloud, extra: Record<string, unknown> = {}, postgres: Record<string, unknown> = {}) => runProgram({
  stack: "keyless",
  config: {
    [P("cloud")]: cloud,
    ...PROVIDER[cloud],
    [P("postgres")]: { ...POSTGRES, auth: MODE[cloud], ...(cloud === "aws" ? { user: "cdc_iam", awsResourceId: RESOURCE_ID } : {}), ...postgres },
    ...extra,
  },
});

/** Every engine's environment, by variable; secret references included as values. */
function engineEnvs(run: ProgramRun, cloud: Cloud): Record<string, unknown>[] {
  switch (cloud) {
    case "aws":
      return byType(run, "aws:ecs/taskDefinition:TaskDefinition").map((t) => {
        const [def] = JSON.parse(t.inputs.containerDefinitions);
        return { ...Object.fromEntries(def.environment.map((e: { name: string; value: string }) => [e.name, e.value])), ...Object.fromEntries((def.secrets ?? []).map((x: { name: string; valueFrom: string }) => [x.name, x.valueFrom])) };
      });
    case "azure":
      return byType(run, "azure-native:app:ContainerApp").map((a) => Object.fromEntries(a.inputs.template.containers[0].env.map((e: { name: string; value?: string; secretRef?: string }) => [e.name, e.value ?? e.secretRef])));
    case "gcp":
      return byType(run, "gcp:cloudrunv2/service:Service").map((svc) => Object.fromEntries(svc.inputs.template.containers[0].envs.map((e: { name: string; value?: string; valueSource?: unknown }) => [e.name, e.value ?? e.valueSource])));
  }
}

/** No password anywhere: no secret store resource, no PG_PASSWORD, PG_AUTH set, and the engine's parser accepts the env as it is. */
function assertKeyless(run: ProgramRun, cloud: Cloud): Record<string, unknown>[] {
  assert.equal(run.exitCode, 0, `program failed: ${run.error}\n${run.stderr}`);
  const secretTypes = ["aws:secretsmanager/secret:Secret", "aws:secretsmanager/secretVersion:SecretVersion", "azure-native:keyvault:Vault", "azure-native:keyvault:Secret", "gcp:secretmanager/secret:Secret", "gcp:secretmanager/secretVersion:SecretVersion", "gcp:secretmanager/secretIamMember:SecretIamMember"];
  assert.deepEqual(run.resources.filter((r) => secretTypes.includes(r.type)).map((r) => r.type), [], "a keyless stack creates no password secret");
  assert.ok(!run.resources.some((r) => r.type === `${PROJECT}:${cloud}:PasswordSecret`));
  const envs = engineEnvs(run, cloud);
  assert.ok(envs.length >= 1);
  for (const env of envs) {
    assert.equal(env.PG_AUTH, MODE[cloud]);
    assert.ok(!("PG_PASSWORD" in env), "no PG_PASSWORD reference");
    assert.ok(!("PG_PASSWORD_VERSION" in env));
    const plain = Object.fromEntries(Object.entries(env).filter(([k]) => k !== "AZURE_CLIENT_ID").map(([k, v]) => [k, String(v)]));
    assert.equal(loadConfig(plain).pg.auth, MODE[cloud], "the engine accepts the environment without a password");
  }
  for (const r of run.resources) {
    const check = RESOURCE_LIMITS[r.type];
    if (check) assert.deepEqual(check(withoutSecrets(r.inputs) as Record<string, unknown>), [], `${r.type} ${r.name} breaks a documented limit`);
  }
  return envs;
}

const BAD: { title: string; config: Record<string, unknown>; secret?: boolean; expect: RegExp }[] = [
  {
    title: "a password together with a keyless mode",
    config: { [P("cloud")]: "aws", ...PROVIDER.aws, [P("postgres")]: { ...POSTGRES, user: "cdc_iam", auth: "aws-iam", awsResourceId: RESOURCE_ID }, [P("postgresPassword")]: TEST_PASSWORD },
    secret: true,
    expect: /^postgres-cdc-multicloud:postgresPassword must not be set with postgres\.auth=aws-iam: the engine logs in with a token of its ECS task role .* no password secret is created; remove it: pulumi config rm postgres-cdc-multicloud:postgresPassword/,
  },
  {
    title: "aws-iam without the instance's resource id",
    config: { [P("cloud")]: "aws", ...PROVIDER.aws, [P("postgres")]: { ...POSTGRES, user: "cdc_iam", auth: "aws-iam" } },
    expect: /^postgres-cdc-multicloud:postgres\.awsResourceId is required with postgres\.auth=aws-iam: .*; for example: pulumi config set --path postgres-cdc-multicloud:postgres\.awsResourceId db-/,
  },
  {
    title: "an instance name where the resource id belongs",
    config: { [P("cloud")]: "aws", ...PROVIDER.aws, [P("postgres")]: { ...POSTGRES, user: "cdc_iam", auth: "aws-iam", awsResourceId: "my-database-1" } },
    expect: /^postgres-cdc-multicloud:postgres\.awsResourceId is invalid \(must be the instance's DbiResourceId \(db-…\) or the Aurora cluster's DbClusterResourceId/,
  },
  {
    title: "a keyless mode of another cloud",
    config: { [P("cloud")]: "gcp", ...PROVIDER.gcp, [P("postgres")]: { ...POSTGRES, user: "cdc_iam", auth: "aws-iam", awsResourceId: RESOURCE_ID } },
    expect: /^postgres-cdc-multicloud:postgres\.auth is aws-iam, which logs in with the ECS task role .* of the aws target, but this stack deploys to gcp; for example: pulumi config set --path postgres-cdc-multicloud:postgres\.auth gcp-iam$/,
  },
  {
    title: "gcp-iam with a postgres.user that is not the service account's IAM user",
    config: { [P("cloud")]: "gcp", ...PROVIDER.gcp, [P("postgres")]: { ...POSTGRES, user: "cdc_user", auth: "gcp-iam" } },
    expect: new RegExp(`^postgres-cdc-multicloud:postgres\\.user is "cdc_user", but with postgres\\.auth=gcp-iam the engine logs in as its own service account .*, whose role is "${baseName("cdc", "bad", PROJECT)}-engine@${GCP_PROJECT}\\.iam"; set postgres\\.user to that or leave it out`),
  },
  {
    title: "azure-entra with a postgres.user and pipelines (each engine has its own identity)",
    config: { [P("cloud")]: "azure", ...PROVIDER.azure, [P("postgres")]: { ...POSTGRES, tables: [], user: "cdc_user", auth: "azure-entra" }, [P("pipelines")]: [{ name: "a", tables: ["public.a"] }, { name: "b", tables: ["public.b"] }] },
    expect: /^postgres-cdc-multicloud:postgres\.user must be left out with postgres\.auth=azure-entra and pipelines: each pipeline's engine logs in as its own user-assigned managed identity .*\(a: id-cdc-a-.*-engine, b: id-cdc-b-.*-engine\)/,
  },
  {
    title: "a Cloud SQL instance with another login mode",
    config: { [P("cloud")]: "aws", ...PROVIDER.aws, [P("postgres")]: { ...POSTGRES, user: "cdc_iam", auth: "aws-iam", awsResourceId: RESOURCE_ID, cloudSqlInstance: "orders-db" } },
    expect: /^postgres-cdc-multicloud:postgres\.cloudSqlInstance is only used with postgres\.auth=gcp-iam \(got postgres\.auth=aws-iam\)/,
  },
  {
    title: "a keyless mode without TLS",
    config: { [P("cloud")]: "azure", ...PROVIDER.azure, [P("postgres")]: { ...POSTGRES, sslmode: "disable", auth: "azure-entra" } },
    expect: /^postgres-cdc-multicloud:postgres\.sslmode is disable, but postgres\.auth=azure-entra sends a bearer token as the password, which needs TLS; for example: pulumi config set --path postgres-cdc-multicloud:postgres\.sslmode verify-full$/,
  },
];

describe("pulumi program: keyless database login (postgres.auth)", function () {
  this.timeout(240_000);
  const runs = new Map<string, Promise<ProgramRun>>();
  const start = (key: string, make: () => Promise<ProgramRun>) => {
    const p = make();
    p.catch(() => undefined);
    runs.set(key, p);
  };
  before(() => {
    for (const c of BAD) start(c.title, () => runProgram({ stack: "bad", config: c.config, secretKeys: c.secret ? [P("postgresPassword")] : [], dryRun: true }));
    start("aws", () => keyless("aws"));
    start("aws-region", () => keyless("aws", {}, { awsResourceId: "cluster-ABCDEFGHIJKL01234", authRegion: "us-east-2" }));
    start("azure", () => keyless("azure"));
    start("gcp", () => keyless("gcp"));
    start("gcp-instance", () => keyless("gcp", {}, { cloudSqlInstance: "orders-db" }));
    for (const cloud of ["aws", "azure", "gcp"] as const) {
      start(`${cloud}-scram`, () => runProgram({
        stack: "keyless",
        config: { [P("cloud")]: cloud, ...PROVIDER[cloud], [P("postgres")]: { ...POSTGRES, auth: MODE[cloud], ...(cloud === "aws" ? { user: "cdc_iam", awsResourceId: RESOURCE_ID } : {}) }, [P("sink")]: SCRAM_SINK, [P("kafkaPassword")]: KAFKA_PASSWORD },
        secretKeys: [P("kafkaPassword")],
      }));
    }
    start("gcp-pipelines", () => keyless("gcp", { [P("pipelines")]: [{ name: "a", tables: ["public.a"] }, { name: "b", tables: ["public.b"] }] }, { tables: [] }));
  });

  it("aws: the task role may rds-db:connect as exactly postgres.user of the configured instance; no secret, PG_AUTH=aws-iam", async () => {
    const run = await runs.get("aws")!;
    const [env] = assertKeyless(run, "aws");
    assert.equal(env.PG_USER, "cdc_iam");
    const arn = `arn:aws:rds-db:eu-west-1:${ACCOUNT}:dbuser:${RESOURCE_ID}/cdc_iam`;
    assert.ok(NAME_RULES.rdsDbUserArn(arn));
    const policies = byType(run, "aws:iam/rolePolicy:RolePolicy").map((p) => ({ name: p.name, policy: JSON.parse(p.inputs.policy) }));
    const connect = policies.filter((p) => JSON.stringify(p.policy).includes("rds-db:connect"));
    assert.equal(connect.length, 1);
    assert.deepEqual(connect[0].policy.Statement, [{ Sid: "ConnectAsDatabaseUser", Effect: "Allow", Action: "rds-db:connect", Resource: arn }]);
    const taskRole = byType(run, "aws:iam/role:Role").find((r) => r.name.endsWith("-task-role"))!;
    assert.equal(one(run, "aws:ecs/taskDefinition:TaskDefinition").inputs.taskRoleArn, `arn:aws:iam::${ACCOUNT}:role/${taskRole.inputs.name}`);
    assert.ok(byType(run, "aws:iam/rolePolicy:RolePolicy").find((p) => p.name === connect[0].name)!.inputs.role, "granted on the task role");
    // The execution role has no secret left to read.
    const execution = policies.find((p) => p.name.endsWith("-execution"))!;
    assert.ok(!JSON.stringify(execution.policy).includes("secretsmanager"));
    assert.deepEqual(run.invokes.map((i) => i.token).filter((t) => !t.startsWith("aws:ec2/") && !t.startsWith("aws:ecr/")), ["aws:index/getCallerIdentity:getCallerIdentity"], "region and account from the invokes the program already makes");
    const login = run.outputs?.databaseLogin as { user: string; setup: string };
    assert.equal(login.user, "cdc_iam");
    assert.match(login.setup, /GRANT rds_iam TO cdc_iam;/);
  });

  it("aws: an Aurora cluster in another region: the ARN names the cluster resource id and that region, PG_AUTH_REGION tells the signer", async () => {
    const run = await runs.get("aws-region")!;
    const [env] = assertKeyless(run, "aws");
    assert.equal(env.PG_AUTH_REGION, "us-east-2");
    const connect = byType(run, "aws:iam/rolePolicy:RolePolicy").map((p) => JSON.parse(p.inputs.policy)).find((p) => JSON.stringify(p).includes("rds-db:connect"));
    assert.equal(connect.Statement[0].Resource, `arn:aws:rds-db:us-east-2:${ACCOUNT}:dbuser:cluster-ABCDEFGHIJKL01234/cdc_iam`);
  });

  it("azure: the engine's managed identity is its database role (PG_USER = its name), AZURE_CLIENT_ID selects it; no Key Vault, no secret grant", async () => {
    const run = await runs.get("azure")!;
    const [env] = assertKeyless(run, "azure");
    const identity = one(run, "azure-native:managedidentity:UserAssignedIdentity");
    assert.equal(env.PG_USER, identity.inputs.resourceName);
    assert.ok(NAME_RULES.entraIdentityRole(String(env.PG_USER)));
    assert.match(String(env.AZURE_CLIENT_ID), /^client-/);
    const app = one(run, "azure-native:app:ContainerApp");
    assert.equal(app.inputs.configuration.secrets, undefined, "no Key Vault reference");
    assert.equal(byType(run, "azure-native:authorization:RoleAssignment").length, 2, "landing writer and AcrPull only");
    const login = run.outputs?.databaseLogin as { user: string; setup: string };
    assert.equal(login.user, identity.inputs.resourceName);
    assert.ok(login.setup.includes(`SELECT * FROM pgaadauth_create_principal('${identity.inputs.resourceName}', false, false);`));
  });

  it("gcp: the service account gets roles/cloudsql.instanceUser and roles/cloudsql.client; PG_USER is its e-mail without .gserviceaccount.com", async () => {
    const run = await runs.get("gcp")!;
    const [env] = assertKeyless(run, "gcp");
    const account = one(run, "gcp:serviceaccount/account:Account");
    const email = `${account.inputs.accountId}@${GCP_PROJECT}.iam.gserviceaccount.com`;
    assert.equal(env.PG_USER, `${account.inputs.accountId}@${GCP_PROJECT}.iam`);
    assert.ok(NAME_RULES.cloudSqlIamUser(String(env.PG_USER)));
    const members = byType(run, "gcp:projects/iAMMember:IAMMember").map((m) => [m.inputs.project, m.inputs.role, m.inputs.member]);
    assert.deepEqual(members.sort(), [[GCP_PROJECT, "roles/cloudsql.client", `serviceAccount:${email}`], [GCP_PROJECT, "roles/cloudsql.instanceUser", `serviceAccount:${email}`]]);
    const login = run.outputs?.databaseLogin as { user: string; setup: string };
    assert.equal(login.user, env.PG_USER);
    assert.match(login.setup, /cloudsql\.iam_authentication=on; gcloud sql users create .*@acme-data-123\.iam --instance=<instance> --type=cloud_iam_service_account/);
  });

  it("gcp with postgres.cloudSqlInstance: both grants limited to that instance by Cloud SQL's IAM condition", async () => {
    const run = await runs.get("gcp-instance")!;
    assertKeyless(run, "gcp");
    const conditions = byType(run, "gcp:projects/iAMMember:IAMMember").map((m) => m.inputs.condition?.expression);
    assert.deepEqual(conditions, Array(2).fill(`resource.name == 'projects/${GCP_PROJECT}/instances/orders-db' && resource.type == 'sqladmin.googleapis.com/Instance'`));
    assert.match((run.outputs?.databaseLogin as { setup: string }).setup, /--instance=orders-db --type=cloud_iam_service_account/);
  });

  it("gcp with pipelines: each engine logs in as its own service account's IAM user, with its own grants", async () => {
    const run = await runs.get("gcp-pipelines")!;
    const envs = assertKeyless(run, "gcp");
    const expected = ["a", "b"].map((p) => `${pipelineBaseName("cdc", p, "keyless", PROJECT)}-engine@${GCP_PROJECT}.iam`);
    assert.deepEqual(envs.map((e) => e.PG_USER).sort(), expected.sort());
    assert.equal(byType(run, "gcp:projects/iAMMember:IAMMember").length, 4);
  });

  for (const c of BAD) {
    it(`${c.title}: one message naming the key, nothing registered`, async () => {
      const r = await runs.get(c.title)!;
      assert.notEqual(r.exitCode, 0);
      assert.equal(r.kind, "SettingsError", `${r.kind}: ${r.error}`);
      assert.match(r.error!, c.expect);
      assert.ok(!r.error!.includes("invalid stack configuration:"), `exactly one problem, got: ${r.error}`);
      assert.ok(!r.error!.includes(TEST_PASSWORD));
      assert.deepEqual(r.resources, []);
    });
  }

  for (const cloud of ["aws", "azure", "gcp"] as const) {
    it(`${cloud}: keyless PostgreSQL beside a SCRAM Kafka sink stores only the Kafka password, and the engine gets KAFKA_PASSWORD but no PG_PASSWORD`, async () => {
      const run = await runs.get(`${cloud}-scram`)!;
      assert.equal(run.exitCode, 0, `program failed: ${run.error}\n${run.stderr}`);
      const [env] = engineEnvs(run, cloud);
      assert.equal(env.PG_AUTH, MODE[cloud]);
      assert.ok(!("PG_PASSWORD" in env), "no PG_PASSWORD reference");
      assert.ok("KAFKA_PASSWORD" in env, "the Kafka password reaches the engine from the secret store");
      assert.ok(!JSON.stringify(run.resources.map((r) => withoutSecrets(r.inputs))).includes("postgres-password"), "no PostgreSQL password secret");
      assert.ok(!JSON.stringify(engineEnvs(run, cloud)).includes(KAFKA_PASSWORD), "the Kafka password is never a plain value in the engine's definition");
    });
  }

  it("the documented formats reject what the clouds reject", () => {
    assert.ok(NAME_RULES.rdsResourceId("db-12ABC34DEFG5HIJ6KLMNOP78QR") && NAME_RULES.rdsResourceId("cluster-ABCDEFGHIJKL01234"));
    for (const bad of ["mydb", "db-abc123", "cluster_ABC", "arn:aws:rds:eu-west-1:1:db:x"]) assert.ok(!NAME_RULES.rdsResourceId(bad), bad);
    assert.ok(!NAME_RULES.rdsDbUserArn(`arn:aws:rds-db:eu-west-1:${ACCOUNT}:dbuser:${RESOURCE_ID}/*`), "no wildcard user");
    assert.ok(!NAME_RULES.rdsDbUserArn(`arn:aws:rds-db:eu-west-1:${ACCOUNT}:dbuser:mydb/cdc`), "the resource id, not the instance name");
    assert.ok(NAME_RULES.rdsDbUserArn(`arn:aws-cn:rds-db:cn-north-1:${ACCOUNT}:dbuser:${RESOURCE_ID}/cdc`));
    assert.ok(!NAME_RULES.cloudSqlIamUser("engine@acme-data-123.iam.gserviceaccount.com"), "without .gserviceaccount.com");
    assert.ok(!NAME_RULES.cloudSqlIamUser(`${"a".repeat(30)}@${"b".repeat(30)}.iam`), "a role name has at most 63 bytes");
    assert.ok(!NAME_RULES.entraIdentityRole(`id-${"x".repeat(70)}`));
    const policy = (resource: string) => ({ policy: JSON.stringify({ Statement: [{ Action: "rds-db:connect", Resource: resource }] }) });
    assert.match(RESOURCE_LIMITS["aws:iam/rolePolicy:RolePolicy"](policy("*")).join(), /rdsDbUserArn/);
    assert.match(RESOURCE_LIMITS["gcp:projects/iAMMember:IAMMember"]({ role: "roles/owner", member: "serviceAccount:e@p.iam.gserviceaccount.com" }).join(), /roles\/owner is not one of/);
    assert.match(RESOURCE_LIMITS["gcp:projects/iAMMember:IAMMember"]({ role: "roles/cloudsql.client", member: "serviceAccount:engine1@acme-data-123.iam.gserviceaccount.com", condition: { expression: "resource.name.startsWith('projects/')" } }).join(), /is not a Cloud SQL instance condition/);
    assert.ok(NAME_RULES.cloudSqlInstance("orders-db") && !NAME_RULES.cloudSqlInstance("acme:europe-west1:orders-db"), "the instance ID, not the connection name");
  });
});
