/**
 * `sink: {kind: kafka}` under Pulumi mocks (the real index.ts, one process per stack config): on
 * AWS without `bootstrap` the program creates MSK Serverless with IAM access control, lets only
 * the engine's security group reach its IAM port, grants the task role its own topics only; on
 * GCP it creates Managed Kafka in the engine's subnetwork with ACLs for the engine alone; on Azure
 * an Event Hubs namespace (Entra only) with an event hub per topic and per-event-hub data roles for
 * the engine's identity; all wire the engine's Kafka variables. With `bootstrap` (any cloud) it
 * points the engine at the existing cluster with the cloud's keyless mechanism. A stack Event Hubs
 * cannot hold is refused with one message. Every registered value also passes components/limits.ts.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../../container/src/config";
import { kafkaSinkProblems, sinkSchema } from "../../components/kafka";
import { LIMITS, NAME_RULES, RESOURCE_LIMITS } from "../../components/limits";
import { ROLES } from "../../components/azure/roles";
import { byType, one, PROJECT, reveal, runProgram, TEST_PASSWORD, withoutSecrets, type ProgramRun } from "./harness";

const P = (k: string) => `${PROJECT}:${k}`;
const POSTGRES = { host: "db.example.com", port: 5432, database: "app", user: "cdc_user", tables: ["public.users"] };

function config(cloud: string, provider: Record<string, string>, sink: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { [P("cloud")]: cloud, ...provider, [P("postgres")]: POSTGRES, [P("postgresPassword")]: TEST_PASSWORD, [P("sink")]: sink, ...extra };
}
const GCP = { "gcp:project": "acme-data-123", "gcp:region": "europe-west1" };

function withinLimits(run: ProgramRun): void {
  for (const r of run.resources) {
    const problems = RESOURCE_LIMITS[r.type]?.(r.inputs) ?? [];
    assert.deepEqual(problems, [], `${r.type} ${r.name}`);
  }
}

describe("pulumi: sink kind kafka under mocks", function () {
  this.timeout(240_000);
  const aws = runProgram({ stack: "test", config: config("aws", { "aws:region": "eu-west-1" }, { kind: "kafka", topicPrefix: "cdc", partitions: 6 }), secretKeys: [P("postgresPassword")] });
  const gcp = runProgram({ stack: "test", config: config("gcp", GCP, { kind: "kafka", bootstrap: "bootstrap.cdc.europe-west1.managedkafka.acme-data-123.cloud.goog:9092" }), secretKeys: [P("postgresPassword")] });
  const gcpCreate = runProgram({ stack: "test", config: config("gcp", GCP, { kind: "kafka", topicPrefix: "pg" }, { [P("network")]: { network: "default", subnetwork: "cdc-subnet" } }), secretKeys: [P("postgresPassword")] });
  const AZ = { "azure-native:location": "westeurope" };
  const azure = runProgram({ stack: "test", config: config("azure", AZ, { kind: "kafka", partitions: 4 }, { [P("postgres")]: { ...POSTGRES, tables: ["public.users", "public.orders"] } }), secretKeys: [P("postgresPassword")] });
  // Nine tables need eleven event hubs: one more than a Standard namespace holds.
  const NINE = Array.from({ length: 9 }, (_, i) => `public.t${i}`);
  const azureTooMany = runProgram({ stack: "test", config: config("azure", AZ, { kind: "kafka" }, { [P("postgres")]: { ...POSTGRES, tables: NINE } }), secretKeys: [P("postgresPassword")] });
  // Two pipelines on one cluster: each engine its own tables' topics (and the shared state and schema topics).
  const PIPELINES = { [P("postgres")]: { ...POSTGRES, tables: [] }, [P("pipelines")]: [{ name: "orders", tables: ["public.orders"] }, { name: "users", tables: ["public.users", "public.accounts"] }] };
  const awsPipelines = runProgram({ stack: "test", config: config("aws", { "aws:region": "eu-west-1" }, { kind: "kafka" }, { ...PIPELINES, [P("alerts")]: { emails: ["oncall@example.com"] } }), secretKeys: [P("postgresPassword")] });
  const azurePipelines = runProgram({ stack: "test", config: config("azure", AZ, { kind: "kafka", topicPrefix: "pg", eventHubs: { tier: "Premium", capacity: 1 } }, PIPELINES), secretKeys: [P("postgresPassword")] });
  const gcpPipelines = runProgram({ stack: "test", config: config("gcp", GCP, { kind: "kafka", topicPrefix: "pg" }, { ...PIPELINES, [P("network")]: { network: "default", subnetwork: "cdc-subnet" } }), secretKeys: [P("postgresPassword")] });
  // SCRAM to an existing cluster: the password from secret config into each cloud's secret store.
  const KAFKA_PASSWORD = "Kafka-scram-pw-4d2b91";
  const SCRAM = { kind: "kafka", bootstrap: "kafka-1.internal.example.com:9093,kafka-2.internal.example.com:9093", auth: "scram-sha-512", username: "cdc-engine" };
  const scram = (cloud: string, provider: Record<string, string>, extra: Record<string, unknown> = {}) =>
    runProgram({ stack: "test", config: config(cloud, provider, SCRAM, { [P("kafkaPassword")]: KAFKA_PASSWORD, ...extra }), secretKeys: [P("postgresPassword"), P("kafkaPassword")] });
  const awsScram = scram("aws", { "aws:region": "eu-west-1" });
  const azureScram = scram("azure", AZ);
  const gcpScram = scram("gcp", GCP);
  const awsScramNoPassword = runProgram({ stack: "test", config: config("aws", { "aws:region": "eu-west-1" }, SCRAM), secretKeys: [P("postgresPassword")] });
  for (const run of [aws, gcp, gcpCreate, azure, azureTooMany, awsPipelines, azurePipelines, gcpPipelines, awsScram, azureScram, gcpScram, awsScramNoPassword]) run.catch(() => undefined);

  it("aws: creates MSK Serverless (IAM only) reachable from the engine alone, grants the task role its own topics only, and wires the engine", async () => {
    const r = await aws;
    assert.equal(r.exitCode, 0, r.error ?? r.stderr);
    withinLimits(r);
    const cluster = one(r, "aws:msk/serverlessCluster:ServerlessCluster").inputs;
    assert.equal(cluster.clientAuthentication.sasl.iam.enabled, true);
    assert.deepEqual(cluster.vpcConfigs[0].subnetIds, ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"]);
    const ingress = byType(r, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule");
    assert.equal(ingress.length, 1);
    assert.deepEqual([ingress[0].inputs.fromPort, ingress[0].inputs.toPort, ingress[0].inputs.ipProtocol], [9098, 9098, "tcp"]);
    assert.ok(ingress[0].inputs.referencedSecurityGroupId && !ingress[0].inputs.cidrIpv4, "only the engine's security group, no CIDR");
    const policies = byType(r, "aws:iam/rolePolicy:RolePolicy").map((p) => JSON.parse(p.inputs.policy) as { Statement: { Sid: string; Action: string[]; Resource: string | string[] }[] });
    const kafka = policies.find((p) => p.Statement.some((s) => s.Sid === "WriteOwnTopics"))!;
    assert.ok(kafka, "a task-role policy for the cluster");
    const bySid = Object.fromEntries(kafka.Statement.map((s) => [s.Sid, s]));
    assert.match(String(bySid.ConnectToCluster.Resource), /^arn:aws:kafka:eu-west-1:\d{12}:cluster\/[A-Za-z0-9-]+\/[0-9a-f-]+-s1$/);
    assert.deepEqual(bySid.WriteOwnTopics.Action, ["kafka-cluster:DescribeTopic", "kafka-cluster:CreateTopic", "kafka-cluster:WriteData"]);
    assert.match(String(bySid.WriteOwnTopics.Resource), /:topic\/[A-Za-z0-9-]+\/[0-9a-f-]+-s1\/cdc\.\*$/);
    assert.deepEqual((bySid.ReadOwnState.Resource as string[]).map((a) => a.split("/").pop()), ["cdc._cdc_state", "cdc._schema"]);
    assert.ok(!JSON.stringify(kafka).includes('"*"'), "no wildcard resource");
    const defs = JSON.parse(one(r, "aws:ecs/taskDefinition:TaskDefinition").inputs.containerDefinitions) as { environment: { name: string; value: string }[] }[];
    const env = Object.fromEntries(defs[0].environment.map((e) => [e.name, e.value]));
    assert.equal(env.SINK_URL, "kafka+ssl://boot-abcd1234.c1.kafka-serverless.eu-west-1.amazonaws.com:9098");
    assert.deepEqual([env.KAFKA_AUTH, env.KAFKA_TOPIC_PREFIX, env.KAFKA_TOPIC_PARTITIONS], ["aws-msk-iam", "cdc", "6"]);
    const parsed = loadConfig({ ...env, PG_PASSWORD: "x" });
    assert.equal(parsed.sink.kind, "kafka");
  });

  it("gcp: an existing Managed Kafka cluster gets the engine's variables with application default credentials", async () => {
    const r = await gcp;
    assert.equal(r.exitCode, 0, r.error ?? r.stderr);
    const envs = one(r, "gcp:cloudrunv2/service:Service").inputs.template.containers[0].envs as { name: string; value: string }[];
    const env = Object.fromEntries(envs.filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
    assert.equal(env.SINK_URL, "kafka+ssl://bootstrap.cdc.europe-west1.managedkafka.acme-data-123.cloud.goog:9092");
    assert.equal(env.KAFKA_AUTH, "google-adc");
    assert.equal(loadConfig({ ...env, PG_PASSWORD: "x" }).kafka.auth, "google-adc");
  });

  it("gcp: creates Managed Kafka in the engine's subnetwork, with the client role and Kafka ACLs on its own topics for the engine's service account only", async () => {
    const r = await gcpCreate;
    assert.equal(r.exitCode, 0, r.error ?? r.stderr);
    withinLimits(r);
    const cluster = one(r, "gcp:managedkafka/cluster:Cluster").inputs;
    assert.deepEqual(cluster.gcpConfig.accessConfig.networkConfigs, [{ subnet: "projects/acme-data-123/regions/europe-west1/subnetworks/cdc-subnet" }]);
    assert.equal(cluster.capacityConfig.vcpuCount, "3");
    const email = one(r, "gcp:cloudrunv2/service:Service").inputs.template.serviceAccount;
    const acls = byType(r, "gcp:managedkafka/acl:Acl").map((a) => [a.inputs.aclId, a.inputs.aclEntries.map((e: { operation: string; principal: string }) => { assert.equal(e.principal, `User:${email}`); return e.operation; })]);
    assert.deepEqual(acls.sort(), [["cluster", ["IDEMPOTENT_WRITE"]], ["topic/pg._cdc_state", ["READ"]], ["topic/pg._schema", ["READ"]], ["topicPrefixed/pg.", ["DESCRIBE", "CREATE", "WRITE"]]]);
    const client = byType(r, "gcp:projects/iAMMember:IAMMember").filter((m) => m.inputs.role === "roles/managedkafka.client");
    assert.deepEqual(client.map((m) => m.inputs.member), [`serviceAccount:${email}`]);
    const envs = one(r, "gcp:cloudrunv2/service:Service").inputs.template.containers[0].envs as { name: string; value: string }[];
    const env = Object.fromEntries(envs.filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
    assert.equal(env.SINK_URL, `kafka+ssl://bootstrap.${cluster.clusterId}.europe-west1.managedkafka.acme-data-123.cloud.goog:9092`);
    assert.deepEqual([env.KAFKA_AUTH, env.KAFKA_TOPIC_PREFIX], ["google-adc", "pg"]);
  });

  it("aws with two pipelines: one MSK Serverless cluster; each engine gets the bootstrap, its own security-group path and a task-role policy for its own tables' topics only (alerts keep METRICS_LOG=emf)", async () => {
    const r = await awsPipelines;
    assert.equal(r.exitCode, 0, r.error ?? r.stderr);
    withinLimits(r);
    assert.equal(byType(r, "aws:msk/serverlessCluster:ServerlessCluster").length, 1, "one cluster per stack");
    assert.equal(byType(r, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule").length, 2, "one ingress rule per engine");
    const grants = byType(r, "aws:iam/rolePolicy:RolePolicy")
      .map((p) => ({ name: p.name, policy: JSON.parse(p.inputs.policy) as { Statement: { Sid: string; Resource: string | string[] }[] } }))
      .filter((p) => p.policy.Statement.some((st) => st.Sid === "WriteOwnTopics"));
    const topicsOf = (pipeline: string) => {
      const grant = grants.find((g) => g.name.includes(`-engine-${pipeline}-`));
      assert.ok(grant, `a Kafka policy for pipeline ${pipeline} (have ${grants.map((g) => g.name).join(", ")})`);
      const write = grant.policy.Statement.find((st) => st.Sid === "WriteOwnTopics")!.Resource as string[];
      return write.map((a) => a.split("/").pop()).sort();
    };
    assert.equal(grants.length, 2);
    assert.deepEqual(topicsOf("orders"), ["cdc._cdc_state", "cdc._schema", "cdc.public.orders"]);
    assert.deepEqual(topicsOf("users"), ["cdc._cdc_state", "cdc._schema", "cdc.public.accounts", "cdc.public.users"]);
    const envs = byType(r, "aws:ecs/taskDefinition:TaskDefinition").map((t) => Object.fromEntries((JSON.parse(t.inputs.containerDefinitions) as { environment: { name: string; value: string }[] }[])[0].environment.map((e) => [e.name, e.value])));
    assert.equal(envs.length, 2);
    for (const env of envs) {
      assert.equal(env.SINK_URL, "kafka+ssl://boot-abcd1234.c1.kafka-serverless.eu-west-1.amazonaws.com:9098");
      assert.equal(env.KAFKA_AUTH, "aws-msk-iam");
      assert.equal(env.METRICS_LOG, "emf");
    }
    assert.deepEqual(envs.map((e) => e.PG_SLOT).sort(), ["cdc_slot_orders", "cdc_slot_users"]);
  });

  it("gcp with two pipelines: one Managed Kafka cluster; each engine's service account gets the client role and literal ACLs on its own tables' topics, the state, schema and cluster ACLs name both", async () => {
    const r = await gcpPipelines;
    assert.equal(r.exitCode, 0, r.error ?? r.stderr);
    withinLimits(r);
    const cluster = one(r, "gcp:managedkafka/cluster:Cluster").inputs;
    const services = byType(r, "gcp:cloudrunv2/service:Service");
    assert.equal(services.length, 2);
    const emailOf = (slot: string) => {
      const service = services.find((sv) => (sv.inputs.template.containers[0].envs as { name: string; value?: string }[]).some((e) => e.name === "PG_SLOT" && e.value === slot))!;
      const env = Object.fromEntries((service.inputs.template.containers[0].envs as { name: string; value?: string }[]).filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
      assert.equal(env.SINK_URL, `kafka+ssl://bootstrap.${cluster.clusterId}.europe-west1.managedkafka.acme-data-123.cloud.goog:9092`);
      return service.inputs.template.serviceAccount as string;
    };
    const orders = emailOf("cdc_slot_orders");
    const users = emailOf("cdc_slot_users");
    assert.notEqual(orders, users);
    const acls = Object.fromEntries(byType(r, "gcp:managedkafka/acl:Acl").map((a) => [a.inputs.aclId, (a.inputs.aclEntries as { operation: string; principal: string }[]).map((e) => `${e.principal} ${e.operation}`).sort()]));
    const ops = (email: string, ...operations: string[]) => operations.map((o) => `User:${email} ${o}`);
    assert.deepEqual(Object.keys(acls).sort(), ["cluster", "topic/pg._cdc_state", "topic/pg._schema", "topic/pg.public.accounts", "topic/pg.public.orders", "topic/pg.public.users"]);
    assert.deepEqual(acls["topic/pg.public.orders"], ops(orders, "CREATE", "DESCRIBE", "WRITE"));
    assert.deepEqual(acls["topic/pg.public.users"], ops(users, "CREATE", "DESCRIBE", "WRITE"));
    assert.deepEqual(acls["topic/pg.public.accounts"], ops(users, "CREATE", "DESCRIBE", "WRITE"));
    assert.deepEqual(acls["topic/pg._cdc_state"], [...ops(orders, "CREATE", "DESCRIBE", "READ", "WRITE"), ...ops(users, "CREATE", "DESCRIBE", "READ", "WRITE")].sort());
    assert.deepEqual(acls.cluster, [...ops(orders, "IDEMPOTENT_WRITE"), ...ops(users, "IDEMPOTENT_WRITE")].sort());
    const client = byType(r, "gcp:projects/iAMMember:IAMMember").filter((m) => m.inputs.role === "roles/managedkafka.client");
    assert.deepEqual(client.map((m) => m.inputs.member).sort(), [`serviceAccount:${orders}`, `serviceAccount:${users}`].sort());
  });

  type Env = { name: string; value?: string; secretRef?: string }[];
  const appEnv = (app: { inputs: any }) => Object.fromEntries((app.inputs.template.containers[0].env as Env).filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
  /** The engine identities' Event Hubs role assignments: `<principal> <role> <event hub>`. */
  const eventHubGrants = (r: ProgramRun) => byType(r, "azure-native:authorization:RoleAssignment")
    .filter((g) => String(g.inputs.scope).includes("/Microsoft.EventHub/"))
    .map((g) => {
      const role = String(g.inputs.roleDefinitionId).split("/").pop();
      return `${g.inputs.principalId} ${role === ROLES.eventHubsDataSender ? "sender" : role === ROLES.eventHubsDataReceiver ? "receiver" : role} ${String(g.inputs.scope).split("/eventhubs/").pop()}`;
    }).sort();

  it("azure: creates an Event Hubs namespace (Standard, Entra only, TLS 1.2) with an event hub per table and compacted state and schema event hubs, grants the engine's identity per event hub, and wires the engine", async () => {
    const r = await azure;
    assert.equal(r.exitCode, 0, r.error ?? r.stderr);
    withinLimits(r);
    const ns = one(r, "azure-native:eventhub:Namespace").inputs;
    assert.deepEqual(ns.sku, { name: "Standard", tier: "Standard", capacity: 1 });
    assert.equal(ns.disableLocalAuth, true, "no SAS keys");
    assert.equal(ns.kafkaEnabled, true);
    assert.ok(NAME_RULES.eventHubsNamespace(ns.namespaceName), ns.namespaceName);
    const hubs = Object.fromEntries(byType(r, "azure-native:eventhub:EventHub").map((h) => [h.inputs.eventHubName, h.inputs]));
    assert.deepEqual(Object.keys(hubs).sort(), ["cdc._cdc_state", "cdc._schema", "cdc.public.orders", "cdc.public.users"]);
    for (const t of ["cdc.public.orders", "cdc.public.users"]) {
      assert.equal(hubs[t].namespaceName, ns.namespaceName);
      assert.equal(hubs[t].partitionCount, 4);
      assert.deepEqual(hubs[t].retentionDescription, { cleanupPolicy: "Delete", retentionTimeInHours: LIMITS.azure.eventHubs.Standard.retentionHoursMax });
    }
    for (const t of ["cdc._cdc_state", "cdc._schema"]) {
      assert.equal(hubs[t].partitionCount, 1);
      assert.deepEqual(hubs[t].retentionDescription, { cleanupPolicy: "Compact", tombstoneRetentionTimeInHours: LIMITS.azure.eventHubs.tombstoneRetentionHours });
    }
    assert.ok(Object.keys(hubs).length <= LIMITS.azure.eventHubs.Standard.eventHubsPerNamespace);
    const principal = byType(r, "azure-native:authorization:RoleAssignment").find((g) => g.name.endsWith("-landing-writer"))!.inputs.principalId;
    assert.deepEqual(eventHubGrants(r), [
      `${principal} receiver cdc._cdc_state`, `${principal} receiver cdc._schema`,
      `${principal} sender cdc._cdc_state`, `${principal} sender cdc._schema`, `${principal} sender cdc.public.orders`, `${principal} sender cdc.public.users`,
    ].sort());
    assert.ok(!byType(r, "azure-native:authorization:RoleAssignment").some((g) => /Microsoft\.EventHub\/namespaces\/[^/]+$/.test(String(g.inputs.scope))), "nothing granted on the whole namespace");
    const app = one(r, "azure-native:app:ContainerApp");
    const env = appEnv(app);
    assert.equal(env.SINK_URL, `kafka+ssl://${ns.namespaceName}.servicebus.windows.net:9093`);
    assert.deepEqual([env.KAFKA_AUTH, env.KAFKA_TOPIC_PREFIX, env.KAFKA_CREATE_TOPICS], ["azure-entra", "cdc", "false"]);
    assert.equal(env.KAFKA_TOPIC_PARTITIONS, undefined, "partitions are the event hubs', not the engine's");
    assert.ok(env.AZURE_CLIENT_ID, "DefaultAzureCredential picks the user-assigned identity");
    const parsed = loadConfig({ ...env, PG_PASSWORD: "x" });
    assert.equal(parsed.kafka.auth, "azure-entra");
    assert.equal(parsed.kafka.createTopics, false);
    // The app waits for its Event Hubs grants like for its other grants.
    const grantNames = byType(r, "azure-native:authorization:RoleAssignment").filter((g) => String(g.inputs.scope).includes("/Microsoft.EventHub/")).map((g) => g.name);
    assert.equal(grantNames.length, 6);
  });

  it("azure with two pipelines (Premium): one namespace; each engine's identity may send only to its own tables' event hubs and the shared state and schema event hubs", async () => {
    const r = await azurePipelines;
    assert.equal(r.exitCode, 0, r.error ?? r.stderr);
    withinLimits(r);
    assert.equal(byType(r, "azure-native:eventhub:Namespace").length, 1);
    assert.deepEqual(one(r, "azure-native:eventhub:Namespace").inputs.sku, { name: "Premium", tier: "Premium", capacity: 1 });
    const principals = byType(r, "azure-native:authorization:RoleAssignment").filter((g) => g.name.endsWith("-landing-writer"));
    assert.equal(principals.length, 2);
    const of = (pipeline: string) => principals.find((g) => g.name.includes(`-engine-${pipeline}-`))!.inputs.principalId as string;
    const [orders, users] = [of("orders"), of("users")];
    assert.notEqual(orders, users);
    const shared = (p: string) => [`${p} receiver pg._cdc_state`, `${p} receiver pg._schema`, `${p} sender pg._cdc_state`, `${p} sender pg._schema`];
    assert.deepEqual(eventHubGrants(r), [...shared(orders), `${orders} sender pg.public.orders`, ...shared(users), `${users} sender pg.public.accounts`, `${users} sender pg.public.users`].sort());
    const apps = byType(r, "azure-native:app:ContainerApp").map(appEnv);
    assert.equal(apps.length, 2);
    const ns = one(r, "azure-native:eventhub:Namespace").inputs.namespaceName;
    for (const env of apps) assert.equal(env.SINK_URL, `kafka+ssl://${ns}.servicebus.windows.net:9093`);
  });

  it("azure: a stack whose topics a Standard namespace cannot hold stops with one message naming the limit and the fix", async () => {
    const r = await azureTooMany;
    assert.notEqual(r.exitCode, 0);
    assert.match(r.error ?? r.stderr, /an Event Hubs Standard namespace holds at most 10 event hubs, and these 9 tables need 11 \(one per table plus cdc\._cdc_state and cdc\._schema\): set sink\.eventHubs\.tier Premium \(up to 100\), or use an existing cluster with sink\.bootstrap/);
  });

  it("azure: the Event Hubs rules of the sink setting, each one clear message", () => {
    const sink = (s: object) => sinkSchema.parse({ kind: "kafka", ...s });
    assert.match(kafkaSinkProblems(sink({}), "azure", { tables: [] }).join("\n"), /creating Event Hubs needs the tables listed/);
    assert.match(kafkaSinkProblems(sink({ partitions: 33 }), "azure", { tables: ["public.a"] }).join("\n"), /sink\.partitions 33 is more than an Event Hubs Standard event hub allows \(32\)/);
    assert.deepEqual(kafkaSinkProblems(sink({ partitions: 33, eventHubs: { tier: "Premium" } }), "azure", { tables: ["public.a"] }), []);
    assert.match(kafkaSinkProblems(sink({ eventHubs: { tier: "Premium", capacity: 3 } }), "azure", { tables: ["public.a"] }).join("\n"), /capacity 3 is not an Event Hubs Premium capacity \(1, 2, 4, 8\)/);
    assert.match(kafkaSinkProblems(sink({ partitions: 100, eventHubs: { tier: "Premium" } }), "azure", { tables: ["public.a", "public.b"] }).join("\n"), /202 partitions in all exceed the 200 of an Event Hubs Premium namespace with 1 processing unit/);
    assert.match(kafkaSinkProblems(sink({ eventHubs: { retentionHours: 200 } }), "azure", { tables: ["public.a"] }).join("\n"), /retentionHours 200 is more than Event Hubs Standard keeps events \(168 hours\)/);
    assert.match(kafkaSinkProblems(sink({}), "azure", { tables: ["public.a$b"] }).join("\n"), /cdc\.public\.a\$b cannot be an event hub name/);
    assert.match(kafkaSinkProblems(sink({ auth: "none" }), "azure", { tables: ["public.a"] }).join("\n"), /sink\.auth must be azure-entra/);
    assert.match(kafkaSinkProblems(sink({ bootstrap: "ns.servicebus.windows.net:9093", eventHubs: {} }), "azure").join("\n"), /sink\.eventHubs is only used when the program creates an Event Hubs namespace/);
    assert.match(kafkaSinkProblems(sink({}), "local").join("\n"), /sink\.bootstrap is required on local/);
  });

  /** The SCRAM password is stored (as a secret) and appears nowhere else in plain state. */
  function passwordOnlyInSecrets(r: ProgramRun): void {
    assert.ok(JSON.stringify(r.resources.map((x) => x.inputs)).includes(KAFKA_PASSWORD), "the Kafka password was stored nowhere");
    assert.ok(!JSON.stringify(withoutSecrets(r.resources.map((x) => x.inputs))).includes(KAFKA_PASSWORD), "the Kafka password appears outside a secret");
  }

  it("aws with SCRAM: the password goes into its own Secrets Manager secret, the task gets it as KAFKA_PASSWORD through the execution role, never as a plain value", async () => {
    const r = await awsScram;
    assert.equal(r.exitCode, 0, r.error ?? r.stderr);
    withinLimits(r);
    passwordOnlyInSecrets(r);
    const secret = byType(r, "aws:secretsmanager/secret:Secret").find((x) => String(x.inputs.name).includes("/kafka-password-"));
    assert.ok(secret, "a Secrets Manager secret for the Kafka password");
    const version = byType(r, "aws:secretsmanager/secretVersion:SecretVersion").find((v) => reveal(v.inputs.secretString) === KAFKA_PASSWORD);
    assert.ok(version, "the password is that secret's value");
    const defs = JSON.parse(one(r, "aws:ecs/taskDefinition:TaskDefinition").inputs.containerDefinitions) as { environment: { name: string; value: string }[]; secrets: { name: string; valueFrom: string }[]; dockerLabels?: Record<string, string> }[];
    const kafkaRef = defs[0].secrets.find((x) => x.name === "KAFKA_PASSWORD");
    assert.ok(kafkaRef && /^arn:aws:secretsmanager:eu-west-1:\d{12}:secret:.+\/kafka-password-/.test(kafkaRef.valueFrom), JSON.stringify(defs[0].secrets));
    assert.ok(!defs[0].environment.some((e) => e.name === "KAFKA_PASSWORD"));
    assert.ok(defs[0].dockerLabels?.["postgres-cdc-multicloud.kafka-password-version"], "a new password rolls the task");
    const env = Object.fromEntries(defs[0].environment.map((e) => [e.name, e.value]));
    assert.deepEqual([env.SINK_URL, env.KAFKA_AUTH, env.KAFKA_USERNAME], [`kafka+ssl://${SCRAM.bootstrap}`, "scram-sha-512", "cdc-engine"]);
    const readers = byType(r, "aws:iam/rolePolicy:RolePolicy").map((p) => JSON.parse(p.inputs.policy) as { Statement: { Sid: string; Action: string; Resource: string }[] }).flatMap((p) => p.Statement).filter((st) => st.Sid === "ReadKafkaPasswordSecret");
    assert.deepEqual(readers.map((st) => [st.Action, st.Resource]), [["secretsmanager:GetSecretValue", kafkaRef.valueFrom]]);
    assert.equal(loadConfig({ ...env, PG_PASSWORD: "x", KAFKA_PASSWORD: KAFKA_PASSWORD }).kafka.password, KAFKA_PASSWORD);
  });

  it("azure with SCRAM: the password is a Key Vault secret the Container App resolves with the engine's identity (Secrets User on that secret only) into KAFKA_PASSWORD", async () => {
    const r = await azureScram;
    assert.equal(r.exitCode, 0, r.error ?? r.stderr);
    withinLimits(r);
    passwordOnlyInSecrets(r);
    const secret = byType(r, "azure-native:keyvault:Secret").find((x) => x.inputs.secretName === "kafka-password");
    assert.ok(secret);
    assert.equal(reveal(secret.inputs).properties.value, KAFKA_PASSWORD);
    const app = one(r, "azure-native:app:ContainerApp");
    const secrets = app.inputs.configuration.secrets as { name: string; keyVaultUrl: string }[];
    assert.deepEqual(secrets.find((x) => x.name === "kafka-password")?.keyVaultUrl, `https://${secret.inputs.vaultName}.vault.azure.net/secrets/kafka-password`);
    const env = app.inputs.template.containers[0].env as Env;
    assert.deepEqual(env.find((e) => e.name === "KAFKA_PASSWORD"), { name: "KAFKA_PASSWORD", secretRef: "kafka-password" });
    assert.ok(env.find((e) => e.name === "KAFKA_PASSWORD_VERSION")?.value, "a new password rolls a revision");
    assert.equal(appEnv(app).KAFKA_USERNAME, "cdc-engine");
    const readers = byType(r, "azure-native:authorization:RoleAssignment").filter((g) => String(g.inputs.roleDefinitionId).endsWith(ROLES.keyVaultSecretsUser)).map((g) => String(g.inputs.scope).split("/").pop()).sort();
    assert.deepEqual(readers, ["kafka-password", "postgres-password"]);
    assert.equal(byType(r, "azure-native:eventhub:Namespace").length, 0, "an existing cluster: no namespace");
  });

  it("gcp with SCRAM: the password is a Secret Manager secret the engine's service account alone may access, referenced (pinned version) as KAFKA_PASSWORD", async () => {
    const r = await gcpScram;
    assert.equal(r.exitCode, 0, r.error ?? r.stderr);
    withinLimits(r);
    passwordOnlyInSecrets(r);
    const secret = byType(r, "gcp:secretmanager/secret:Secret").find((x) => String(x.inputs.secretId).endsWith("-kafka-password"));
    assert.ok(secret);
    assert.ok(byType(r, "gcp:secretmanager/secretVersion:SecretVersion").some((v) => reveal(v.inputs.secretData) === KAFKA_PASSWORD));
    const service = one(r, "gcp:cloudrunv2/service:Service");
    const envs = service.inputs.template.containers[0].envs as { name: string; value?: string; valueSource?: { secretKeyRef: { secret: string; version: string } } }[];
    const ref = envs.find((e) => e.name === "KAFKA_PASSWORD");
    assert.equal(ref?.value, undefined);
    assert.equal(ref?.valueSource?.secretKeyRef.secret, secret.inputs.secretId);
    assert.match(String(ref?.valueSource?.secretKeyRef.version), /^\S+$/);
    const members = byType(r, "gcp:secretmanager/secretIamMember:SecretIamMember").filter((m) => m.inputs.secretId === secret.inputs.secretId);
    assert.deepEqual(members.map((m) => [m.inputs.role, m.inputs.member]), [["roles/secretmanager.secretAccessor", `serviceAccount:${service.inputs.template.serviceAccount}`]]);
    assert.equal(envs.find((e) => e.name === "KAFKA_USERNAME")?.value, "cdc-engine");
  });

  it("SCRAM without the kafkaPassword secret stops with one message saying how to set it; the SCRAM rules of the setting", async () => {
    const r = await awsScramNoPassword;
    assert.notEqual(r.exitCode, 0);
    assert.match(r.error ?? r.stderr, /postgres-cdc-multicloud:kafkaPassword is required with sink\.auth scram-sha-512 .*pulumi config set --secret postgres-cdc-multicloud:kafkaPassword '<password>'/);
    const sink = (s: object) => sinkSchema.parse({ kind: "kafka", ...s });
    assert.match(kafkaSinkProblems(sink({ auth: "scram-sha-256", username: "u" }), "aws", { passwordSet: true }).join("\n"), /sink\.auth scram-sha-256 needs sink\.bootstrap/);
    assert.match(kafkaSinkProblems(sink({ auth: "scram-sha-256", bootstrap: "k:9092" }), "aws", { passwordSet: true }).join("\n"), /sink\.username is required with sink\.auth scram-sha-256/);
    assert.match(kafkaSinkProblems(sink({ bootstrap: "k:9092", username: "u" }), "aws", {}).join("\n"), /sink\.username and kafkaPassword are only used with sink\.auth scram-sha-256 or scram-sha-512 \(got aws-msk-iam\)/);
    assert.match(kafkaSinkProblems({ kind: "object" }, "aws", { passwordSet: true }).join("\n"), /kafkaPassword is only used with sink \{kind: kafka/);
    assert.deepEqual(kafkaSinkProblems(sink({ auth: "scram-sha-512", bootstrap: "k:9092", username: "u", tls: false }), "local", { passwordSet: true }), []);
  });
});
