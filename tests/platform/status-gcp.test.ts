/**
 * `cdc-platform status` for a GCP stack through Google's API clients, against a local STAND-IN for
 * Cloud Run, Cloud Logging, Cloud Storage and the OAuth token endpoint (tests/support/gcp-stand-in.ts;
 * no Google emulator covers Cloud Run or Cloud Logging): healthy exits 0, unhealthy exits 1.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startGcpStandIn, SUBJECT_TOKEN, type GcpStandIn, type LogEntry } from "../support/gcp-stand-in";

const REPO = path.resolve(__dirname, "..", "..");
const BIN = path.join(REPO, "platform", "bin", "cdc-platform.js");
const SERVICES = "projects/acme-data-123/locations/europe-west1/services";
const LOG_BUCKET = "projects/acme-data-123/locations/europe-west1/buckets/cdc-prod-1a2b3c-engine-x1y2";

describe("cdc-platform status (gcp, against a stand-in for the Google APIs)", function () {
  this.timeout(120_000);
  let google: GcpStandIn;
  let env: Record<string, string>;
  // Set when the fixtures are made, so their ages do not depend on when mocha loaded this file.
  let now = 0;
  const iso = (msAgo: number) => new Date(now - msAgo).toISOString();
  const entry = (service: string, msAgo: number, payload: Record<string, unknown>): LogEntry => ({ serviceName: service, timestamp: iso(msAgo), jsonPayload: { service: "cdc-engine", ...payload } });

  before(async () => {
    now = Date.now();
    google = await startGcpStandIn({
      services: {
        [`${SERVICES}/good-engine`]: { terminalCondition: { type: "Ready", state: "CONDITION_SUCCEEDED" }, latestReadyRevision: `${SERVICES}/good-engine/revisions/good-engine-00003-abc`, latestCreatedRevision: `${SERVICES}/good-engine/revisions/good-engine-00003-abc`, scaling: { manualInstanceCount: 1 } },
        [`${SERVICES}/bad-engine`]: { terminalCondition: { type: "Ready", state: "CONDITION_FAILED", message: "The user-provided container failed the configured startup probe checks." }, latestReadyRevision: `${SERVICES}/bad-engine/revisions/bad-engine-00001-aaa`, latestCreatedRevision: `${SERVICES}/bad-engine/revisions/bad-engine-00002-bbb`, scaling: { manualInstanceCount: 1 } },
      },
      revisions: {
        [`${SERVICES}/good-engine/revisions/good-engine-00003-abc`]: { conditions: [{ type: "Ready", state: "CONDITION_SUCCEEDED" }] },
        [`${SERVICES}/bad-engine/revisions/bad-engine-00002-bbb`]: { conditions: [{ type: "Ready", state: "CONDITION_FAILED", message: "Container called exit(1)." }] },
      },
      entries: [
        entry("good-engine", 25 * 60_000, { level: "info", msg: "cdc-engine starting" }),
        entry("good-engine", 150_000, { level: "info", msg: "cdc metrics", phase: "streaming", confirmedLsn: "0/3000060", lagBytes: 4096, lastFlushAt: iso(160_000), landingObjects: 10, eventsLanded: 500 }),
        entry("good-engine", 30_000, { level: "info", msg: "cdc metrics", phase: "streaming", confirmedLsn: "0/3000148", lagBytes: 0, lastFlushAt: iso(35_000), landingObjects: 12, eventsLanded: 640 }),
        entry("bad-engine", 20 * 60_000, { level: "info", msg: "cdc-engine starting" }),
        entry("bad-engine", 12 * 60_000, { level: "info", msg: "cdc-engine starting" }),
        entry("bad-engine", 11 * 60_000, { level: "fatal", msg: "cdc-engine stopped on a fatal error: the source database is not ready for CDC (1 problem)" }),
        { serviceName: "bad-engine", timestamp: iso(11 * 60_000), textPayload: "Container called exit(1)." },
        entry("other-service", 10_000, { level: "info", msg: "cdc metrics", phase: "streaming" }),
      ],
      objects: {
        "cdc-prod-landing-acme": {
          "landing/_cdc_state/cdc_slot.json": iso(30_000),
          "landing/cdc.public.orders/date=2026-12-01/hour=07/0000000003000060-0000000001-0000000003000060-0000000004.ndjson.gz": iso(3 * 3_600_000),
          "landing/cdc.public.orders/date=2026-12-01/hour=11/0000000003000148-0000000001-0000000003000148-0000000002.ndjson.gz": iso(40_000),
          "landing/cdc.public.orders/_schema/0000000003000060-0000000001.json": iso(3 * 3_600_000),
        },
      },
    });
    const dir = mkdtempSync(path.join(tmpdir(), "cdc-status-gcp-"));
    const oidc = path.join(dir, "oidc-token");
    writeFileSync(oidc, SUBJECT_TOKEN);
    const key = path.join(dir, "credentials.json");
    writeFileSync(key, JSON.stringify(google.credentials(oidc)));
    env = { GOOGLE_APPLICATION_CREDENTIALS: key, CDC_GCP_API_ENDPOINT: google.endpoint, GOOGLE_CLOUD_PROJECT: "acme-data-123" };
  });
  after(async () => {
    await google?.stop();
  });

  function status(service: string): Promise<{ code: number; stdout: string; stderr: string }> {
    const dir = mkdtempSync(path.join(tmpdir(), "cdc-status-gcp-"));
    const file = path.join(dir, "outputs.json");
    writeFileSync(file, JSON.stringify({ cloud: "gcp", engineRuntime: "cloud-run:acme-data-123/europe-west1", serviceName: service, logLocation: `cloud-logging:${LOG_BUCKET}`, landingUrl: "gs://cdc-prod-landing-acme/landing" }));
    return new Promise((resolve) => {
      execFile(process.execPath, [BIN, "status", "--outputs", file], { cwd: dir, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
  }

  it("a healthy stack: one screen, exit 0", async () => {
    const { code, stdout, stderr } = await status("good-engine");
    assert.equal(code, 0, stdout + stderr);
    assert.match(stdout, /^gcp acme-data-123\/europe-west1: Cloud Run service good-engine, landing gs:\/\/cdc-prod-landing-acme\/landing$/m);
    assert.match(stdout, /^ok {4}service: Ready CONDITION_SUCCEEDED, 1 instance\(s\) configured, serving good-engine-00003-abc$/m);
    assert.match(stdout, /^ok {4}revision good-engine-00003-abc: Ready CONDITION_SUCCEEDED$/m);
    assert.match(stdout, /^info {2}restarts: 1 engine start in the last 30 minutes$/m);
    assert.match(stdout, /^ok {4}engine: streaming, confirmed LSN 0\/3000148, lag 0 B, last flush [^,]+ ago, 12 objects \/ 640 changes landed in the minute before/m);
    assert.match(stdout, /^info {2}landing cdc\.public\.orders: date=2026-12-01\/hour=11\/0000000003000148-0000000001-0000000003000148-0000000002\.ndjson\.gz/m);
    assert.match(stdout, /^healthy$/m);
    // Authenticated through the token exchange, not anonymously.
    assert.ok(google.requests.includes("POST /v1/token"), google.requests.join("\n"));
  });

  it("an unhealthy stack: failed rollout, restarts, no progress, exit 1", async () => {
    const { code, stdout } = await status("bad-engine");
    assert.equal(code, 1, stdout);
    assert.match(stdout, /^FAIL {2}service: Ready CONDITION_FAILED \(The user-provided container failed the configured startup probe checks\.\), 1 instance\(s\) configured, serving bad-engine-00001-aaa; the newest revision bad-engine-00002-bbb is not ready$/m);
    assert.match(stdout, /^FAIL {2}revision bad-engine-00002-bbb: Ready CONDITION_FAILED \(Container called exit\(1\)\.\)$/m);
    assert.match(stdout, /^info {2}restarts: 2 engine starts in the last 30 minutes \(it restarted\)$/m);
    assert.match(stdout, /^FAIL {2}engine: no metrics line in log bucket .* in the last 30 minutes/m);
    assert.match(stdout, /^info {2}last error: cdc-engine stopped on a fatal error: the source database is not ready for CDC \(1 problem\)/m);
    assert.match(stdout, /^UNHEALTHY$/m);
  });
});
