/**
 * The GitHub Actions workflows are valid (checked with @action-validator/cli, which validates
 * against GitHub's workflow schema) and do what docs/deploy.md promises.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { REPO } from "./harness";

const yaml = require("js-yaml") as { load(s: string): any };
const WORKFLOWS = ["ci.yml", "deploy.yml", "drift.yml"];
const validator = path.join(REPO, "node_modules", ".bin", "action-validator");
const validate = (file: string) => spawnSync(validator, [file], { encoding: "utf8" });
const load = (name: string) => yaml.load(readFileSync(path.join(REPO, ".github", "workflows", name), "utf8"));
const steps = (job: any): any[] => job.steps;
const uses = (job: any, action: string) => steps(job).find((s) => typeof s.uses === "string" && s.uses.startsWith(action));

describe("github workflows", () => {
  for (const name of WORKFLOWS) {
    it(`${name} passes action-validator`, () => {
      const r = validate(path.join(REPO, ".github", "workflows", name));
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    });
  }

  it("action-validator rejects a broken workflow (the check can fail)", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "wf-"));
    try {
      const file = path.join(dir, "bad.yml");
      writeFileSync(file, "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n        wrongkey: 1\n");
      assert.notEqual(validate(file).status, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("ci: lint, type-check and tests on every push and pull request, then a preview per stack posted on the PR with OIDC credentials", () => {
    const ci = load("ci.yml");
    assert.ok("push" in ci.on && "pull_request" in ci.on);
    const runs = steps(ci.jobs.test).map((s) => s.run ?? "").join("\n");
    for (const cmd of ["action-validator", "npm run lint", "npm run typecheck", "npm test"]) assert.ok(runs.includes(cmd), cmd);
    const preview = ci.jobs.preview;
    assert.equal(preview.needs, "test");
    assert.deepEqual(preview.strategy.matrix.stack, ["dev", "prod"]);
    assert.equal(preview.permissions["id-token"], "write");
    assert.equal(preview.permissions["pull-requests"], "write");
    const pulumi = uses(preview, "pulumi/actions@");
    assert.equal(pulumi.with.command, "preview");
    assert.match(String(pulumi.with["comment-on-pr"]), /pull_request/);
    assert.ok(uses(preview, "pulumi/auth-actions@"), "Pulumi Cloud via OIDC, no stored token");
    for (const a of ["aws-actions/configure-aws-credentials@", "azure/login@", "google-github-actions/auth@"]) assert.ok(uses(preview, a), a);
    assert.ok(!JSON.stringify(ci).match(/AWS_SECRET_ACCESS_KEY|AZURE_CLIENT_SECRET|credentials_json|PULUMI_ACCESS_TOKEN/), "no long-lived cloud keys");
  });

  it("deploy: manual dispatch with the stack chosen, through the stack's GitHub environment (approval for prod)", () => {
    const deploy = load("deploy.yml");
    assert.deepEqual(Object.keys(deploy.on), ["workflow_dispatch"]);
    assert.deepEqual(deploy.on.workflow_dispatch.inputs.stack.options, ["dev", "prod"]);
    const up = deploy.jobs.up;
    assert.equal(up.environment, "${{ inputs.stack }}");
    assert.equal(uses(up, "pulumi/actions@").with.command, "up");
    assert.equal(deploy.concurrency["cancel-in-progress"], false);
    assert.ok(uses(up, "docker/setup-buildx-action@"), "pulumi up builds the engine image");
  });

  it("drift: nightly refresh-preview of prod that fails on any change", () => {
    const drift = load("drift.yml");
    assert.match(drift.on.schedule[0].cron, /^\d+ \d+ \* \* \*$/);
    const step = uses(drift.jobs.drift, "pulumi/actions@");
    assert.equal(step.with.command, "preview");
    assert.equal(step.with.refresh, true);
    assert.equal(step.with["expect-no-changes"], true);
    assert.match(step.with["stack-name"], /\/prod$/);
  });
});
