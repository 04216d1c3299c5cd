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
const raw = (name: string) => readFileSync(path.join(REPO, ".github", "workflows", name), "utf8");

/**
 * `uses:` lines that do not pin a third-party action to a full commit SHA with the release named in
 * a comment (`owner/repo@<40 hex> # vX.Y.Z`). Local actions (./…) need no pin.
 */
function unpinnedActions(workflowText: string): string[] {
  return workflowText
    .split("\n")
    .map((line) => line.trim().replace(/^- /, ""))
    .filter((line) => line.startsWith("uses:") && !line.startsWith("uses: ./"))
    .filter((line) => !/^uses: [\w.-]+\/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+){0,2}$/.test(line));
}

/** Every value of every `with`/`env` in a job, as text. */
const jobText = (job: any) => JSON.stringify(job);

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
    assert.deepEqual(preview.strategy.matrix.stack, ["dev", "staging", "prod"]);
    assert.equal(preview.permissions["id-token"], "write");
    assert.equal(preview.permissions["pull-requests"], "write");
    const pulumi = uses(preview, "pulumi/actions@");
    assert.equal(pulumi.with.command, "preview");
    assert.match(String(pulumi.with["comment-on-pr"]), /pull_request/);
    assert.ok(uses(preview, "pulumi/auth-actions@"), "Pulumi Cloud via OIDC, no stored token");
    for (const a of ["aws-actions/configure-aws-credentials@", "azure/login@", "google-github-actions/auth@"]) assert.ok(uses(preview, a), a);
    assert.ok(!JSON.stringify(ci).match(/AWS_SECRET_ACCESS_KEY|AZURE_CLIENT_SECRET|credentials_json|PULUMI_ACCESS_TOKEN/), "no long-lived cloud keys");
  });

  it("every third-party action is pinned by commit SHA with its release in a comment", () => {
    for (const name of WORKFLOWS) assert.deepEqual(unpinnedActions(raw(name)), [], name);
    // The check can fail: tags, branches, short SHAs and a SHA without its release are all refused.
    const bad = ["      - uses: actions/checkout@v4", "        uses: pulumi/actions@main", "      - uses: docker/setup-qemu-action@29109295", "      - uses: azure/login@a457da9ea143d694b1b9c7c869ebb04ebe844ef5"];
    assert.deepEqual(unpinnedActions(bad.join("\n")).length, bad.length);
    assert.deepEqual(unpinnedActions("      - uses: ./.github/actions/local"), []);
  });

  it("previews and the drift check use read-only identities only; deploy identities appear only in deploy.yml", () => {
    for (const [file, job] of [["ci.yml", load("ci.yml").jobs.preview], ["drift.yml", load("drift.yml").jobs.drift]] as const) {
      const text = jobText(job);
      assert.equal(uses(job, "aws-actions/configure-aws-credentials@").with["role-to-assume"], "${{ vars.AWS_PREVIEW_ROLE_ARN }}", file);
      assert.equal(uses(job, "azure/login@").with["client-id"], "${{ vars.AZURE_PREVIEW_CLIENT_ID }}", file);
      assert.equal(uses(job, "google-github-actions/auth@").with.service_account, "${{ vars.GCP_PREVIEW_SERVICE_ACCOUNT }}", file);
      const pulumiLogin = uses(job, "pulumi/auth-actions@").with;
      assert.deepEqual([pulumiLogin["requested-token-type"], pulumiLogin.scope], ["urn:pulumi:token-type:access_token:team", "team:${{ vars.PULUMI_PREVIEW_TEAM }}"], `${file}: a team token with the preview team's (read) stack permissions`);
      assert.ok(!/DEPLOY|AZURE_CLIENT_ID \}\}|access_token:organization/.test(text), `${file} must not use a deploy identity`);
      const command = uses(job, "pulumi/actions@").with.command;
      assert.equal(command, "preview", `${file} only previews`);
    }
    const deploy = jobText(load("deploy.yml").jobs.up);
    for (const v of ["AWS_DEPLOY_ROLE_ARN", "AZURE_CLIENT_ID", "GCP_DEPLOY_SERVICE_ACCOUNT"]) assert.ok(deploy.includes(`vars.${v}`), v);
  });

  it("pull requests from forks get no credentials and decrypt no stack's secrets", () => {
    const ci = load("ci.yml");
    assert.ok(!("pull_request_target" in ci.on), "pull_request_target would run with the base repository's secrets");
    for (const name of WORKFLOWS) assert.ok(!("pull_request_target" in load(name).on), name);
    // The preview (the only job that logs in and decrypts config) never runs for a fork's pull request.
    assert.equal(ci.jobs.preview.if, "github.event_name == 'push' || github.event.pull_request.head.repo.full_name == github.repository");
    // The test job has no cloud or Pulumi login and no secrets at all.
    const test = jobText(ci.jobs.test);
    assert.ok(!/secrets\.|id-token|auth-actions|configure-aws-credentials|azure\/login|google-github-actions\/auth/.test(test), "the test job stays credential-free");
    assert.equal(ci.jobs.test.permissions, undefined, "the test job keeps the workflow's read-only token");
    assert.deepEqual(ci.permissions, { contents: "read" });
    // Only GITHUB_TOKEN is ever referenced as a secret (for the PR comment).
    assert.deepEqual([...new Set(raw("ci.yml").match(/secrets\.[A-Z_]+/g))], ["secrets.GITHUB_TOKEN"]);
    for (const job of Object.values(ci.jobs) as any[]) for (const s of steps(job)) if (s.uses?.startsWith("actions/checkout@")) assert.equal(s.with?.["persist-credentials"], false, "no git credentials left for later steps");
  });

  it("deploy: manual dispatch from main with the stack chosen, through the stack's GitHub environment (required reviewers)", () => {
    const deploy = load("deploy.yml");
    assert.deepEqual(Object.keys(deploy.on), ["workflow_dispatch"]);
    assert.deepEqual(deploy.on.workflow_dispatch.inputs.stack.options, ["dev", "staging", "prod"]);
    const up = deploy.jobs.up;
    assert.equal(up.environment, "${{ inputs.stack }}");
    assert.equal(up.if, "github.ref == 'refs/heads/main'", "only main is deployed");
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
