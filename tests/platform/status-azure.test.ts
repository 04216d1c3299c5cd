/**
 * `cdc-platform status` for an Azure stack through the Azure SDK, against a STAND-IN for the
 * management and Log Analytics APIs (tests/support/azure-stand-in.ts, HTTPS), a stand-in `az` CLI
 * for the credential (AzureCliCredential, selected with AZURE_TOKEN_CREDENTIALS), and Azurite
 * (real) for the landing zone: healthy exits 0, unhealthy exits 1.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { BlobServiceClient } from "@azure/storage-blob";
import { ARM_TOKEN, startAzureStandIn, type AzureStandIn } from "../support/azure-stand-in";
import { azuriteConnectionString, startAzurite, type StorageServer } from "../sinks/support/emulators";

const REPO = path.resolve(__dirname, "..", "..");
const BIN = path.join(REPO, "platform", "bin", "cdc-platform.js");
const SUB = "00000000-0000-0000-0000-000000000001";
const RG = `/subscriptions/${SUB}/resourcegroups/cdc-prod-rg`;
const APPS = `${RG}/providers/microsoft.app/containerapps`;
const WORKSPACE_ID = "11111111-2222-3333-4444-555555555555";

describe("cdc-platform status (azure, against a stand-in for ARM and Log Analytics, and Azurite)", function () {
  this.timeout(120_000);
  let arm: AzureStandIn;
  let azurite: StorageServer;
  let env: Record<string, string>;
  // Set when the fixtures are made, so their ages do not depend on when mocha loaded this file.
  let now = 0;
  const iso = (msAgo: number) => new Date(now - msAgo).toISOString();
  const engineLine = (msAgo: number, fields: Record<string, unknown>, level = "info") => JSON.stringify({ level, time: iso(msAgo), service: "cdc-engine", ...fields });
  const app = (name: string, ready: string, latest: string, running = "Running") => ({ id: `${APPS}/${name}`, name, location: "westeurope", properties: { provisioningState: "Succeeded", runningStatus: running, latestRevisionName: latest, latestReadyRevisionName: ready } });
  const alert = (name: string, app: string) => ({
    id: `${RG}/providers/Microsoft.Insights/metricAlerts/${name}`, name, type: "Microsoft.Insights/metricAlerts", location: "global",
    properties: { severity: 1, enabled: true, scopes: [`/subscriptions/${SUB}/resourceGroups/cdc-prod-rg/providers/Microsoft.App/containerApps/${app}`], evaluationFrequency: "PT1M", windowSize: "PT5M", criteria: { "odata.type": "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria", allOf: [] } },
  });

  before(async () => {
    now = Date.now();
    azurite = await startAzurite();
    const blobs = BlobServiceClient.fromConnectionString(azuriteConnectionString(azurite.port));
    const container = blobs.getContainerClient("landing");
    await container.create();
    for (const key of [
      "landing/_cdc_state/cdc_slot.json",
      "landing/cdc.warehouse.stock_item/date=2026-12-01/hour=22/0000000005000028-0000000001-0000000005000028-0000000009.ndjson",
      "landing/cdc.warehouse.stock_item/date=2026-12-01/hour=23/00000000050000F0-0000000001-00000000050000F0-0000000003.ndjson",
    ]) await container.getBlockBlobClient(key).upload("{}\n", 3);

    arm = await startAzureStandIn({
      resources: {
        [`${APPS}/good-engine`]: app("good-engine", "good-engine--r3", "good-engine--r3"),
        [`${APPS}/good-engine/revisions/good-engine--r3`]: { name: "good-engine--r3", properties: { active: true, replicas: 1, healthState: "Healthy", runningState: "Running", provisioningState: "Provisioned" } },
        [`${APPS}/good-engine/revisions/good-engine--r3/replicas`]: { value: [{ name: "good-engine--r3-7d9f-abcde", properties: { runningState: "Running", containers: [{ name: "engine", ready: true, started: true, restartCount: 0, runningState: "Running" }] } }] },
        [`${APPS}/bad-engine`]: app("bad-engine", "bad-engine--r1", "bad-engine--r2"),
        [`${APPS}/bad-engine/revisions/bad-engine--r2`]: { name: "bad-engine--r2", properties: { active: true, replicas: 1, healthState: "Unhealthy", runningState: "Failed", provisioningState: "Provisioned" } },
        [`${APPS}/bad-engine/revisions/bad-engine--r2/replicas`]: { value: [{ name: "bad-engine--r2-55c6-fghij", properties: { runningState: "NotRunning", runningStateDetails: "CrashLoopBackOff", containers: [{ name: "engine", ready: false, started: false, restartCount: 7, runningState: "Waiting" }] } }] },
        [`${RG}/providers/microsoft.operationalinsights/workspaces/cdc-prod-logs`]: { id: `${RG}/providers/Microsoft.OperationalInsights/workspaces/cdc-prod-logs`, name: "cdc-prod-logs", location: "westeurope", properties: { customerId: WORKSPACE_ID, retentionInDays: 30 } },
        [`${RG}/providers/microsoft.insights/metricalerts`]: { value: [alert("good-engine-not-running", "good-engine"), alert("bad-engine-not-running", "bad-engine")] },
        [`${RG}/providers/microsoft.insights/metricalerts/good-engine-not-running/status`]: { value: [{ name: "status", properties: { dimensions: {}, status: "Healthy", timestamp: iso(60_000) } }] },
        [`${RG}/providers/microsoft.insights/metricalerts/bad-engine-not-running/status`]: { value: [{ name: "status", properties: { dimensions: {}, status: "Unhealthy", timestamp: iso(60_000) } }] },
      },
      logs: {
        [WORKSPACE_ID]: [
          { app: "good-engine", at: iso(20 * 60_000), line: engineLine(20 * 60_000, { msg: "cdc-engine starting" }) },
          { app: "good-engine", at: iso(45_000), line: engineLine(45_000, { msg: "cdc metrics", phase: "streaming", confirmedLsn: "0/50000F0", lagBytes: 128, lastFlushAt: iso(50_000), landingObjects: 3, eventsLanded: 12 }) },
          { app: "bad-engine", at: iso(6 * 60_000), line: engineLine(6 * 60_000, { msg: "cdc-engine stopped on a fatal error: cannot connect to db:5432" }, "fatal") },
        ],
      },
    });

    const dir = mkdtempSync(path.join(tmpdir(), "cdc-status-azure-"));
    // A stand-in for the Azure CLI: what `az account get-access-token` prints.
    const bin = path.join(dir, "bin");
    mkdirSync(bin);
    writeFileSync(path.join(bin, "az"), `#!/bin/sh\necho '{"accessToken":"${ARM_TOKEN}","expiresOn":"2099-01-01 00:00:00.000000","expires_on":4070908800,"subscription":"${SUB}","tenant":"t","tokenType":"Bearer"}'\n`);
    chmodSync(path.join(bin, "az"), 0o755);
    env = {
      PATH: `${bin}:${process.env.PATH}`,
      AZURE_TOKEN_CREDENTIALS: "AzureCliCredential",
      NODE_EXTRA_CA_CERTS: arm.caFile,
      CDC_AZURE_ARM_ENDPOINT: arm.endpoint,
      CDC_AZURE_LOGS_ENDPOINT: `${arm.endpoint}/loganalytics/v1`,
      AZURE_STORAGE_CONNECTION_STRING: azuriteConnectionString(azurite.port),
    };
  });
  after(async () => {
    await arm?.stop();
    await azurite?.dispose();
  });

  function status(service: string): Promise<{ code: number; stdout: string; stderr: string }> {
    const dir = mkdtempSync(path.join(tmpdir(), "cdc-status-azure-"));
    const file = path.join(dir, "outputs.json");
    writeFileSync(file, JSON.stringify({
      cloud: "azure",
      serviceName: service,
      serviceId: `/subscriptions/${SUB}/resourceGroups/cdc-prod-rg/providers/Microsoft.App/containerApps/${service}`,
      engineRuntime: "container-apps:cdc-prod-rg/cdc-prod-env",
      logLocation: `log-analytics:cdc-prod-rg/cdc-prod-logs (table ContainerAppConsoleLogs_CL, ContainerAppName_s == "${service}")`,
      landingUrl: "abfss://landing@devstoreaccount1.dfs.core.windows.net/landing",
    }));
    return new Promise((resolve) => {
      execFile(process.execPath, [BIN, "status", "--outputs", file], { cwd: dir, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
  }

  it("a healthy stack: one screen, exit 0", async () => {
    const { code, stdout, stderr } = await status("good-engine");
    assert.equal(code, 0, stdout + stderr);
    assert.match(stdout, /^azure cdc-prod-rg: Container App good-engine, landing abfss:\/\/landing@devstoreaccount1\.dfs\.core\.windows\.net\/landing$/m);
    assert.match(stdout, /^ok {4}container app: Succeeded, Running, revision good-engine--r3$/m);
    assert.match(stdout, /^ok {4}revision good-engine--r3: Running, health Healthy, 1 replica\(s\)$/m);
    assert.match(stdout, /^ok {4}replica good-engine--r3-7d9f-abcde: Running$/m);
    assert.match(stdout, /^info {2}restarts: 0 container restarts in the current replica$/m);
    assert.match(stdout, /^ok {4}engine: streaming, confirmed LSN 0\/50000F0, lag 128 B, last flush [^,]+ ago, 3 objects \/ 12 changes landed in the minute before/m);
    assert.match(stdout, /^ok {4}alert good-engine-not-running: Healthy$/m);
    assert.match(stdout, /^info {2}landing cdc\.warehouse\.stock_item: date=2026-12-01\/hour=23\/00000000050000F0-0000000001-00000000050000F0-0000000003\.ndjson/m);
    assert.match(stdout, /^healthy$/m);
  });

  it("an unhealthy stack: failed revision in a crash loop, no progress, alert firing, exit 1", async () => {
    const { code, stdout } = await status("bad-engine");
    assert.equal(code, 1, stdout);
    assert.match(stdout, /^FAIL {2}container app: Succeeded, Running, revision bad-engine--r2 not ready \(serving bad-engine--r1\)$/m);
    assert.match(stdout, /^FAIL {2}revision bad-engine--r2: Failed, health Unhealthy, 1 replica\(s\)$/m);
    assert.match(stdout, /^FAIL {2}replica bad-engine--r2-55c6-fghij: NotRunning \(CrashLoopBackOff\)$/m);
    assert.match(stdout, /^info {2}restarts: 7 container restarts in the current replica$/m);
    assert.match(stdout, /^FAIL {2}engine: no metrics line in workspace cdc-prod-logs/m);
    assert.match(stdout, /^info {2}last error: cdc-engine stopped on a fatal error: cannot connect to db:5432/m);
    assert.match(stdout, /^FAIL {2}alert bad-engine-not-running: Unhealthy$/m);
    assert.match(stdout, /^UNHEALTHY$/m);
  });
});
