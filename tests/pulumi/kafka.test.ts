/**
 * `sink: {kind: kafka}` under Pulumi mocks (the real index.ts, one process per stack config): on
 * AWS without `bootstrap` the program creates MSK Serverless with IAM access control, lets only
 * the engine's security group reach its IAM port, grants the task role its own topics only; on
 * GCP it creates Managed Kafka in the engine's subnetwork with ACLs for the engine alone; both wire
 * the engine's Kafka variables. With `bootstrap` (any cloud) it points the engine at the existing
 * cluster with the cloud's keyless mechanism; creating a service on Azure is refused with one
 * message. Every registered value also passes components/limits.ts.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../../container/src/config";
import { RESOURCE_LIMITS } from "../../components/limits";
import { byType, one, PROJECT, runProgram, TEST_PASSWORD, type ProgramRun } from "./harness";

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
  const azure = runProgram({ stack: "test", config: config("azure", { "azure-native:location": "westeurope" }, { kind: "kafka" }), secretKeys: [P("postgresPassword")] });
  // Two pipelines on one cluster: each engine its own tables' topics (and the shared state and schema topics).
  const PIPELINES = { [P("postgres")]: { ...POSTGRES, tables: [] }, [P("pipelines")]: [{ name: "orders", tables: ["public.orders"] }, { name: "users", tables: ["public.users", "public.accounts"] }] };
  const awsPipelines = runProgram({ stack: "test", config: config("aws", { "aws:region": "eu-west-1" }, { kind: "kafka" }, { ...PIPELINES, [P("alerts")]: { emails: ["oncall@example.com"] } }), secretKeys: [P("postgresPassword")] });
  const gcpPipelines = runProgram({ stack: "test", config: config("gcp", GCP, { kind: "kafka", topicPrefix: "pg" }, { ...PIPELINES, [P("network")]: { network: "default", subnetwork: "cdc-subnet" } }), secretKeys: [P("postgresPassword")] });
  for (const run of [aws, gcp, gcpCreate, azure, awsPipelines, gcpPipelines]) run.catch(() => undefined);

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

  it("azure: refuses to create a Kafka service it does not implement, with one message naming the fix", async () => {
    const r = await azure;
    assert.notEqual(r.exitCode, 0);
    assert.match(r.error ?? r.stderr, /sink\.bootstrap is required on azure: the program creates a Kafka service on aws \(MSK Serverless\) and gcp \(Managed Kafka\) only; point the engine at your existing cluster, e\.g\. <namespace>\.servicebus\.windows\.net:9093/);
  });
});
