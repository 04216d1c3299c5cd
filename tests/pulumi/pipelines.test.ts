/**
 * More than one engine per stack (`pipelines`), and the single-pipeline default form unchanged:
 * - the default form registers every URN it registered before `pipelines` existed
 *   (tests/pulumi/fixtures/single-pipeline-urns.json, recorded from the program before the change:
 *   a resource may be added, none renamed or dropped, so existing stacks keep their resources);
 * - a stack with three pipelines per cloud: one engine per pipeline with its own slot,
 *   publication and tables, all landing in the one storage, no two resources sharing a Pulumi
 *   name or a cloud name, every value within the documented limits, alerts per engine.
 * One process per stack config (tests/pulumi/harness). Regenerate the fixture only for resources
 * that are new: UPDATE_URN_FIXTURE=1 npx mocha tests/pulumi/pipelines.test.ts
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { loadConfig } from "../../container/src/config";
import { RESOURCE_LIMITS } from "../../components/limits";
import { resolvePlatform } from "../../components/settings";
import { byType, one, PROJECT, reveal, runProgram, TEST_PASSWORD, type ProgramRun } from "./harness";

type Cloud = "aws" | "azure" | "gcp" | "local";
const P = (k: string) => `${PROJECT}:${k}`;
const FIXTURE = path.join(__dirname, "fixtures", "single-pipeline-urns.json");
const PROVIDER: Record<Cloud, Record<string, string>> = {
  aws: { "aws:region": "eu-west-1" },
  azure: { "azure-native:location": "westeurope" },
  gcp: { "gcp:project": "acme-data-123", "gcp:region": "europe-west1" },
  local: {},
};
const POSTGRES = { host: "db.example.com", database: "app", user: "cdc_user", tables: ["public.users", "public.orders"] };
const ALERTS = { emails: ["oncall@example.com"] };

const single = (cloud: Cloud) => runProgram({
  stack: "urns",
  secretKeys: [P("postgresPassword")],
  config: {
    [P("cloud")]: cloud,
    ...PROVIDER[cloud],
    [P("postgres")]: cloud === "local" ? { ...POSTGRES, host: "host.docker.internal" } : POSTGRES,
    [P("postgresPassword")]: TEST_PASSWORD,
    ...(cloud === "local" ? { [P("localLandingDir")]: "/tmp/cdc-urns-landing" } : { [P("alerts")]: ALERTS }),
  },
});

describe("pipelines: the single-pipeline form keeps its URNs", function () {
  this.timeout(240_000);
  const runs: Partial<Record<Cloud, Promise<ProgramRun>>> = {};
  before(() => {
    for (const cloud of ["aws", "azure", "gcp", "local"] as Cloud[]) runs[cloud] = single(cloud);
  });

  it("registers every URN the program registered before pipelines existed (aws, azure, gcp, local)", async () => {
    const recorded = existsSync(FIXTURE) ? (JSON.parse(readFileSync(FIXTURE, "utf8")) as Record<Cloud, string[]>) : undefined;
    const now: Partial<Record<Cloud, string[]>> = {};
    for (const cloud of ["aws", "azure", "gcp", "local"] as Cloud[]) {
      const r = await runs[cloud]!;
      assert.equal(r.exitCode, 0, `${cloud}: ${r.error}\n${r.stderr.slice(0, 2000)}`);
      now[cloud] = [...r.urns].sort();
      assert.ok(now[cloud]!.length > 3, `${cloud}: the harness recorded no URNs`);
    }
    if (process.env.UPDATE_URN_FIXTURE) {
      // Keep every URN recorded before (never drop one), add the new ones.
      const merged = Object.fromEntries((["aws", "azure", "gcp", "local"] as Cloud[]).map((c) => [c, [...new Set([...(recorded?.[c] ?? []), ...now[c]!])].sort()]));
      writeFileSync(FIXTURE, JSON.stringify(merged, null, 2) + "\n");
      return;
    }
    assert.ok(recorded, `${FIXTURE} is missing`);
    for (const cloud of ["aws", "azure", "gcp", "local"] as Cloud[]) {
      const missing: string[] = recorded[cloud].filter((u) => !now[cloud]!.includes(u));
      assert.deepEqual(missing, [], `${cloud}: these resources would be replaced in existing stacks`);
    }
  });
});

/** Three table groups, each its own engine; `inventory` names its own slot and publication. */
const PIPELINES = [
  { name: "orders", tables: ["public.orders", "public.order_items"] },
  { name: "users", tables: ["public.users"] },
  { name: "stock", tables: ["warehouse.stock_item"], slot: "cdc_stock", publication: "stock_pub" },
];
const EXPECTED = [
  { slot: "cdc_slot_orders", publication: "cdc_pub_orders", tables: "public.orders,public.order_items" },
  { slot: "cdc_slot_users", publication: "cdc_pub_users", tables: "public.users" },
  { slot: "cdc_stock", publication: "stock_pub", tables: "warehouse.stock_item" },
];
const multi = (cloud: Exclude<Cloud, "local">) => runProgram({
  stack: "multi-pipeline-stack",
  secretKeys: [P("postgresPassword")],
  config: {
    [P("cloud")]: cloud,
    ...PROVIDER[cloud],
    [P("postgres")]: { host: "db.example.com", database: "app", user: "cdc_user" },
    [P("postgresPassword")]: TEST_PASSWORD,
    [P("pipelines")]: PIPELINES,
    [P("alerts")]: ALERTS,
    [P("tags")]: { team: "data" },
  },
});

/** The engines' environments, one per service, as the platform hands them over. */
function engineEnvs(run: ProgramRun, cloud: Exclude<Cloud, "local">): Record<string, string>[] {
  const plain = (entries: { name: string; value?: string }[]) => Object.fromEntries(entries.filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
  if (cloud === "aws") return byType(run, "aws:ecs/taskDefinition:TaskDefinition").map((t) => plain(JSON.parse(t.inputs.containerDefinitions)[0].environment));
  if (cloud === "azure") return byType(run, "azure-native:app:ContainerApp").map((a) => plain(a.inputs.template.containers[0].env));
  return byType(run, "gcp:cloudrunv2/service:Service").map((svc) => plain(svc.inputs.template.containers[0].envs));
}

/** Inputs that are a resource's name in its cloud (the ones two engines could collide on). */
const CLOUD_NAME_FIELDS = ["bucket", "name", "family", "accountName", "registryName", "vaultName", "resourceGroupName", "workspaceName", "environmentName", "containerAppName", "resourceName", "bucketId", "secretId", "repositoryId", "accountId", "ruleName", "actionGroupName", "displayName"];

describe("pipelines: one engine per table group", function () {
  this.timeout(240_000);
  const runs: Partial<Record<Cloud, Promise<ProgramRun>>> = {};
  before(() => {
    for (const cloud of ["aws", "azure", "gcp"] as const) runs[cloud] = multi(cloud);
  });

  for (const cloud of ["aws", "azure", "gcp"] as const) {
    it(`${cloud}: an engine per pipeline with its own slot, publication and tables, all landing in one storage`, async () => {
      const r = await runs[cloud]!;
      assert.equal(r.exitCode, 0, `${r.error}\n${r.stderr.slice(0, 2000)}`);
      const envs = engineEnvs(r, cloud).map((env) => loadConfig({ ...env, PG_PASSWORD: "x" }));
      assert.deepEqual(envs.map((c) => ({ slot: c.pg.slot, publication: c.pg.publication, tables: c.tables.map((t) => `${t.schema}.${t.table}`).join(",") })), EXPECTED);
      assert.equal(new Set(envs.map((c) => c.sink.url)).size, 1, "every engine lands in the same storage");
      assert.equal(envs[0].sink.url, r.outputs?.landingUrl);
      // One storage, one registry, one image, one password secret for all of them.
      const shared = { aws: ["aws:s3/bucket:Bucket", "aws:ecr/repository:Repository", "aws:secretsmanager/secret:Secret"], azure: ["azure-native:storage:StorageAccount", "azure-native:containerregistry:Registry", "azure-native:keyvault:Vault", "azure-native:app:ManagedEnvironment"], gcp: ["gcp:storage/bucket:Bucket", "gcp:artifactregistry/repository:Repository", "gcp:secretmanager/secret:Secret", "gcp:logging/projectBucketConfig:ProjectBucketConfig"] }[cloud];
      for (const type of [...shared, "docker:index/image:Image"]) one(r, type);
      const outputs = r.outputs!.pipelines as Record<string, { serviceName: string; tailLogsCommand: string }>;
      assert.deepEqual(Object.keys(outputs).sort(), ["orders", "stock", "users"]);
      assert.equal(new Set(Object.values(outputs).map((o) => o.serviceName)).size, 3);
    });

    it(`${cloud}: no two resources share a Pulumi name or a cloud name; every value within the documented limits; alerts per engine`, async () => {
      const r = await runs[cloud]!;
      const urns = r.urns;
      assert.equal(new Set(urns).size, urns.length, "duplicate URNs");
      const names = new Map<string, string>();
      for (const res of r.resources) {
        if (res.type.startsWith("postgres-cdc-multicloud:") || res.type.startsWith("pulumi:")) continue;
        const inputs = reveal(res.inputs) as Record<string, unknown>;
        for (const field of CLOUD_NAME_FIELDS) {
          const value = inputs[field];
          // Fields that name another resource (a grant's secret, a child's resource group) are references, not names.
          if (typeof value !== "string" || (field === "resourceGroupName" && res.type !== "azure-native:resources:ResourceGroup") || /iammember/i.test(res.type)) continue;
          const key = `${res.type} ${field}=${value}`;
          assert.ok(!names.has(key), `${key} is used by both ${names.get(key)} and ${res.name}`);
          names.set(key, res.name);
        }
        const check = RESOURCE_LIMITS[res.type];
        assert.ok(check, `${res.type} has no row in components/limits.ts`);
        assert.deepEqual(check(inputs as Record<string, any>), [], `${res.type} ${res.name}`);
      }
      const alertType = { aws: "aws:cloudwatch/metricAlarm:MetricAlarm", azure: "azure-native:monitor:MetricAlert", gcp: "gcp:monitoring/alertPolicy:AlertPolicy" }[cloud];
      const notRunning = byType(r, alertType).filter((a) => a.name.endsWith("-not-running")).map((a) => a.name).sort();
      assert.deepEqual(notRunning, ["cdc-alerts-orders-not-running", "cdc-alerts-stock-not-running", "cdc-alerts-users-not-running"]);
      if (cloud === "aws") {
        const lagDims = byType(r, alertType).filter((a) => a.name.endsWith("-replication-lag")).map((a) => a.inputs.dimensions.Slot).sort();
        assert.deepEqual(lagDims, ["cdc_slot_orders", "cdc_slot_users", "cdc_stock"]);
        assert.equal(byType(r, "aws:cloudwatch/logMetricFilter:LogMetricFilter").length, 3, "one start counter per engine log group");
      }
      if (cloud === "gcp") {
        // One log bucket routes every engine's logs, and the _Default exclusion covers them all.
        const filter = one(r, "gcp:logging/projectSink:ProjectSink").inputs.filter as string;
        for (const svc of byType(r, "gcp:cloudrunv2/service:Service")) assert.ok(filter.includes(`service_name="${svc.inputs.name}"`), filter);
        assert.equal(one(r, "gcp:logging/projectExclusion:ProjectExclusion").inputs.filter, filter);
      }
      if (cloud === "azure") {
        const envId = byType(r, "azure-native:app:ContainerApp").map((a) => a.inputs.managedEnvironmentId);
        assert.equal(new Set(envId).size, 1, "the engines share one Container Apps environment (a VNet environment owns its subnet)");
      }
    });
  }

  it("local: a container per pipeline, each on the next host port, all writing into the one landing directory", async () => {
    const r = await runProgram({
      stack: "multi-pipeline-stack",
      secretKeys: [P("postgresPassword")],
      config: {
        [P("cloud")]: "local",
        [P("postgres")]: { host: "host.docker.internal", database: "app", user: "cdc_user" },
        [P("postgresPassword")]: TEST_PASSWORD,
        [P("pipelines")]: PIPELINES,
        [P("localLandingDir")]: "/tmp/cdc-pipelines-landing",
        [P("localHttpPort")]: "9100",
      },
    });
    assert.equal(r.exitCode, 0, `${r.error}\n${r.stderr.slice(0, 2000)}`);
    const containers = byType(r, "docker:index/container:Container").map((c) => c.inputs);
    assert.deepEqual(containers.map((c) => c.ports[0].external), [9100, 9101, 9102]);
    assert.equal(new Set(containers.map((c) => c.name)).size, 3);
    assert.equal(new Set(containers.map((c) => JSON.stringify(c.volumes))).size, 1, "one landing directory");
    const slots = containers.map((c) => (reveal(c.envs) as string[]).find((e) => e.startsWith("PG_SLOT="))).sort();
    assert.deepEqual(slots, ["PG_SLOT=cdc_slot_orders", "PG_SLOT=cdc_slot_users", "PG_SLOT=cdc_stock"]);
  });

  it("refuses pipelines that would share a slot, a publication, a name or a table, or sit beside postgres.tables — one message naming each", () => {
    const args = (pipelines: unknown[], tables: string[] = []) => ({ cloud: "aws" as const, aws: { region: "eu-west-1" }, postgres: { host: "db", database: "app", user: "u", password: "x", tables }, pipelines: pipelines as never });
    assert.throws(() => resolvePlatform("cdc", args([{ name: "a", tables: ["public.a"], slot: "s1" }, { name: "b", tables: ["public.b"], slot: "s1" }]), "dev", "p"), /pipelines\[1\]\.slot "s1" is also pipelines\[0\]'s/);
    assert.throws(() => resolvePlatform("cdc", args([{ name: "a", tables: ["public.a"] }, { name: "a", tables: ["public.b"] }]), "dev", "p"), /pipelines\[1\]\.name "a" is also pipelines\[0\]'s/);
    assert.throws(() => resolvePlatform("cdc", args([{ name: "a", tables: ["public.a"], publication: "p" }, { name: "b", tables: ["public.b"], publication: "p" }]), "dev", "p"), /pipelines\[1\]\.publication/);
    assert.throws(() => resolvePlatform("cdc", args([{ name: "a", tables: ["public.a"] }, { name: "b", tables: ["public.a"] }]), "dev", "p"), /pipelines\[1\]\.tables has public\.a, which pipeline a captures too/);
    assert.throws(() => resolvePlatform("cdc", args([{ name: "a", tables: ["public.a"] }], ["public.x"]), "dev", "p"), /postgres\.tables must be empty when pipelines are set/);
    assert.throws(() => resolvePlatform("cdc", args([{ name: "toolongname", tables: ["public.a"] }]), "dev", "p"), /pipelines\[0\]\.name/);
    assert.throws(() => resolvePlatform("cdc", args([{ name: "a", tables: [] }]), "dev", "p"), /pipelines\[0\]\.tables/);
    const ok = resolvePlatform("cdc", args([{ name: "a", tables: ["public.a"] }, { name: "b", tables: ["public.b"] }]), "dev", "p");
    assert.deepEqual(ok.pipelines!.map((x) => [x.slot, x.publication]), [["cdc_slot_a", "cdc_pub_a"], ["cdc_slot_b", "cdc_pub_b"]]);
    assert.ok(ok.pipelines!.every((x) => x.baseName.length <= 22) && new Set(ok.pipelines!.map((x) => x.baseName)).size === 2);
  });
});
