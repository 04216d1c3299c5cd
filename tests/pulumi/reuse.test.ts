/**
 * The package as a library: another program imports CdcPlatform from "postgres-cdc-multicloud" and
 * deploys two platforms in one stack (tests/pulumi/programs/two-platforms.ts) — no two resources
 * share a Pulumi name or a cloud name, and every value is within the documented limits.
 */
import assert from "node:assert/strict";
import { childOf } from "../../components/children";
import { RESOURCE_LIMITS } from "../../components/limits";
import { legacyPlatformName, resolvePlatform } from "../../components/settings";
import { byType, reveal, runProgram, TEST_PASSWORD, withoutSecrets, type ProgramRun } from "./harness";

/** The inputs that are a resource's name in its cloud, per type (the ones two platforms could collide on). */
const CLOUD_NAME_FIELDS = ["bucket", "name", "family", "accountName", "registryName", "vaultName", "resourceGroupName", "workspaceName", "environmentName", "containerAppName", "resourceName", "bucketId", "secretId", "repositoryId", "accountId"];

describe("another program reusing the package", function () {
  this.timeout(180_000);
  let run: ProgramRun;
  before(async () => {
    run = await runProgram({ stack: "test", config: {}, program: "tests/pulumi/programs/two-platforms.ts" });
  });

  it("deploys two platforms in one stack: distinct Pulumi names and cloud names, each named after its component", () => {
    assert.equal(run.exitCode, 0, `${run.error}\n${run.stderr}`);
    const platforms = byType(run, "postgres-cdc-multicloud:index:CdcPlatform").map((p) => p.name).sort();
    assert.deepEqual(platforms, ["billing", "orders"]);
    const urns = run.resources.map((r) => `${r.type}::${r.name}`);
    assert.equal(new Set(urns).size, urns.length, `duplicate Pulumi names: ${urns.filter((u, i) => urns.indexOf(u) !== i).join(", ")}`);
    for (const r of run.resources) if (!r.type.startsWith("pulumi:")) assert.match(r.name, /^(orders|billing)(-|$)/, `${r.type} ${r.name} is not named after its platform`);

    const cloudNames = new Map<string, string>();
    for (const r of run.resources) {
      const inputs = reveal(r.inputs) as Record<string, unknown>;
      for (const field of CLOUD_NAME_FIELDS) {
        const value = inputs[field];
        if (typeof value !== "string" || r.type.startsWith("postgres-cdc-multicloud:")) continue;
        const key = `${r.type} ${field}=${value}`;
        assert.ok(!cloudNames.has(key), `${key} is used by both ${cloudNames.get(key)} and ${r.name}`);
        cloudNames.set(key, r.name);
      }
    }
    const roles = byType(run, "aws:iam/role:Role").map((r) => r.inputs.name as string).sort();
    assert.equal(roles.length, 4);
    assert.ok(roles.some((n) => n.startsWith("orders-test-")) && roles.some((n) => n.startsWith("billing-test-")), roles.join(", "));
  });

  it("takes typed arguments: defaults filled in, per-platform settings kept, the password only as a secret", () => {
    const tasks = byType(run, "aws:ecs/taskDefinition:TaskDefinition").map((t) => [t.inputs.family, t.inputs.cpu, t.inputs.memory]).sort();
    assert.deepEqual(tasks.map((t) => t.slice(1)), [["512", "1024"], ["256", "512"]], "billing 0.5 vCPU / 1 GiB, orders the defaults");
    const lifecycles = byType(run, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").map((l) => l.inputs.rules[0].expiration.days).sort();
    assert.deepEqual(lifecycles, [30, 90]);
    assert.ok(!JSON.stringify(withoutSecrets(run.resources.map((r) => r.inputs))).includes(TEST_PASSWORD), "the password appears outside a secret");
    for (const r of run.resources) {
      const check = RESOURCE_LIMITS[r.type];
      if (check) assert.deepEqual(check(reveal(r.inputs) as Record<string, any>), [], `${r.type} ${r.name}`);
    }
    assert.match(String(run.outputs?.ordersLogs), /^aws logs tail \/ecs\/orders-test-[0-9a-f]{6}\/engine /);
    assert.match(String(run.outputs?.billingLogs), /^aws logs tail \/ecs\/billing-test-[0-9a-f]{6}\/engine /);
  });

  it("bad typed arguments stop the program with one message naming each problem", () => {
    assert.throws(
      () => resolvePlatform("Orders-EU", { cloud: "azure", azure: { location: "westeurope" }, postgres: { host: "db", database: "app", user: "u", password: "x" }, container: { cpu: 1, memoryMiB: 512 } }, "dev", "p"),
      (err: Error) => /CdcPlatform "Orders-EU": name "Orders-EU" must be 1-8 lower-case letters/.test(err.message) && /container\.memoryMiB must be 2048/.test(err.message),
    );
  });

  it("existing stacks keep their resources: children and the stack's platform are aliased to their old names", () => {
    const parent = {} as never;
    assert.deepEqual(childOf(parent, "cdc", "landing"), { name: "cdc-landing", opts: { parent, aliases: [{ name: "landing" }] } });
    // The platform index.ts builds used to be named <namePrefix>-<stack, 12 characters>.
    assert.equal(legacyPlatformName("cdc", "dev"), "cdc-dev");
    assert.equal(legacyPlatformName("cdc", "data-platform-dev-eu"), "cdc-data-platfor");
  });
});
