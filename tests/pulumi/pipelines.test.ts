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
      const missing = recorded[cloud].filter((u) => !now[cloud]!.includes(u));
      assert.deepEqual(missing, [], `${cloud}: these resources would be replaced in existing stacks`);
    }
  });
});
