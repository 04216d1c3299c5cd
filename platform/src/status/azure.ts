/**
 * Health of an Azure stack through the Azure SDK: the Container App and its latest revision, the
 * revision's replicas and their container restarts, the engine's metrics line from Log Analytics
 * (ContainerAppConsoleLogs_CL), the state of the metric alerts on the app, and the newest ADLS
 * landing object per table. Credentials: DefaultAzureCredential (AZURE_TOKEN_CREDENTIALS selects
 * one, e.g. AzureCliCredential); AZURE_STORAGE_CONNECTION_STRING, when set, is used for the landing
 * zone as the engine does. CDC_AZURE_ARM_ENDPOINT / CDC_AZURE_LOGS_ENDPOINT point the management
 * and Log Analytics clients elsewhere (the tests' stand-in).
 */
import { ContainerAppsAPIClient } from "@azure/arm-appcontainers";
import { MonitorClient } from "@azure/arm-monitor";
import { OperationalInsightsManagementClient } from "@azure/arm-operationalinsights";
import { DefaultAzureCredential } from "@azure/identity";
import { LogsQueryClient } from "@azure/monitor-query-logs";
import { BlobServiceClient } from "@azure/storage-blob";
import { landingLines } from "./landing";
import { progressLines, scanLogs } from "./progress";
import type { StackOutputs } from "./outputs";
import type { StatusLine, StatusReport } from "./report";
import { UsageError } from "../cli";

export interface AzureTarget {
  subscriptionId: string;
  resourceGroup: string;
  app: string;
  appId: string;
  workspace: string;
  account: string;
  container: string;
  prefix: string;
}

export function azureTarget(o: StackOutputs): AzureTarget {
  const id = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.App\/containerApps\/([^/]+)$/i.exec(o.serviceId ?? "");
  const logs = /^log-analytics:([^/]+)\/([^\s]+)/.exec(o.logLocation ?? "");
  const landing = /^abfss:\/\/([^@]+)@([^.]+)\.dfs\.core\.windows\.net\/?(.*)$/.exec(o.landingUrl ?? "");
  if (!id || !logs || !landing) {
    throw new UsageError("the stack outputs lack serviceId (/subscriptions/…/containerApps/…), logLocation (log-analytics:<group>/<workspace>) or landingUrl (abfss://…): is this an azure stack that `pulumi up` deployed?");
  }
  return { subscriptionId: id[1], resourceGroup: id[2], app: id[3], appId: o.serviceId!, workspace: logs[2], container: landing[1], account: landing[2], prefix: landing[3].replace(/\/+$/, "") };
}

/** Metric alert statuses Azure Monitor reports while the condition holds. */
const FIRING = /^(unhealthy|fired|active|alert)$/i;

export async function azureStatus(t: AzureTarget, now = new Date()): Promise<StatusReport> {
  const credential = new DefaultAzureCredential();
  const arm = process.env.CDC_AZURE_ARM_ENDPOINT?.replace(/\/+$/, "");
  const armOptions = arm ? { endpoint: arm, $host: arm } : {};
  const apps = new ContainerAppsAPIClient(credential, t.subscriptionId, armOptions);
  const monitor = new MonitorClient(credential, t.subscriptionId, armOptions);
  const insights = new OperationalInsightsManagementClient(credential, t.subscriptionId, armOptions);
  const logsEndpoint = process.env.CDC_AZURE_LOGS_ENDPOINT?.replace(/\/+$/, "");
  const logs = new LogsQueryClient(credential, logsEndpoint ? { endpoint: logsEndpoint } : {});
  const lines: StatusLine[] = [];

  const app = await apps.containerApps.get(t.resourceGroup, t.app).catch((err: { statusCode?: number }) => {
    if (err.statusCode === 404) return undefined;
    throw err;
  });
  if (!app) {
    lines.push({ ok: false, what: "container app", detail: `${t.app} not found in resource group ${t.resourceGroup}` });
  } else {
    const current = app.latestReadyRevisionName === app.latestRevisionName;
    lines.push({
      ok: app.provisioningState === "Succeeded" && app.runningStatus === "Running" && current,
      what: "container app",
      detail: `${app.provisioningState ?? "?"}, ${app.runningStatus ?? "status unknown"}, revision ${app.latestRevisionName ?? "none"}${current ? "" : ` not ready (serving ${app.latestReadyRevisionName ?? "nothing"})`}`,
    });
    if (app.latestRevisionName) {
      const revision = await apps.containerAppsRevisions.getRevision(t.resourceGroup, t.app, app.latestRevisionName);
      lines.push({
        ok: revision.healthState !== "Unhealthy" && revision.runningState !== "Failed" && (revision.replicas ?? 0) >= 1,
        what: `revision ${app.latestRevisionName}`,
        detail: `${revision.runningState ?? "?"}, health ${revision.healthState ?? "?"}, ${revision.replicas ?? 0} replica(s)`,
      });
      const { value: replicas = [] } = await apps.containerAppsRevisionReplicas.listReplicas(t.resourceGroup, t.app, app.latestRevisionName);
      const restarts = replicas.flatMap((r) => r.containers ?? []).reduce((n, c) => n + (c.restartCount ?? 0), 0);
      for (const r of replicas) {
        lines.push({ ok: r.runningState !== "NotRunning", what: `replica ${r.name}`, detail: `${r.runningState ?? "?"}${r.runningStateDetails ? ` (${r.runningStateDetails})` : ""}` });
      }
      lines.push({ ok: undefined, what: "restarts", detail: `${restarts} container restart${restarts === 1 ? "" : "s"} in the current replica${replicas.length === 1 ? "" : "s"}` });
    }
  }

  const workspace = await insights.workspaces.get(t.resourceGroup, t.workspace);
  const messages: { timestamp?: number; message: string }[] = [];
  if (workspace.customerId) {
    const query = `ContainerAppConsoleLogs_CL | where ContainerAppName_s == "${t.app.replace(/"/g, "")}" | project TimeGenerated, Log_s | order by TimeGenerated asc`;
    const result = await logs.queryWorkspace(workspace.customerId, query, { duration: "PT30M" });
    const table = "tables" in result ? result.tables[0] : undefined;
    const rows = (table?.rows ?? []) as unknown[][];
    for (const row of rows) {
      const at = row[0] instanceof Date ? row[0].getTime() : Date.parse(String(row[0]));
      messages.push({ timestamp: at, message: String(row[1] ?? "") });
    }
  }
  lines.push(...progressLines(scanLogs(messages), now, `workspace ${t.workspace}`));

  const alerts = [];
  for await (const rule of monitor.metricAlerts.listByResourceGroup(t.resourceGroup)) {
    if ((rule.scopes ?? []).some((s) => s.toLowerCase() === t.appId.toLowerCase())) alerts.push(rule);
  }
  if (alerts.length === 0) lines.push({ ok: undefined, what: "alerts", detail: "none configured (alerts.emails)" });
  for (const rule of alerts) {
    const status = await monitor.metricAlertsStatus.list(t.resourceGroup, rule.name!);
    const states = (status.value ?? []).map((v) => v.properties?.status ?? "unknown");
    const firing = states.some((s) => FIRING.test(s));
    lines.push({ ok: !firing, what: `alert ${rule.name}`, detail: `${rule.enabled === false ? "disabled, " : ""}${states.length > 0 ? states.join(", ") : "no evaluations yet"}` });
  }

  const connection = process.env.AZURE_STORAGE_CONNECTION_STRING;
  const blobs = connection ? BlobServiceClient.fromConnectionString(connection) : new BlobServiceClient(`https://${t.account}.blob.core.windows.net`, credential);
  const container = blobs.getContainerClient(t.container);
  lines.push(
    ...(await landingLines(async (prefix) => {
      const prefixes: string[] = [];
      const objects: { key: string; lastModified?: Date }[] = [];
      for await (const item of container.listBlobsByHierarchy("/", { prefix })) {
        if (item.kind === "prefix") prefixes.push(item.name);
        else objects.push({ key: item.name, lastModified: item.properties.lastModified });
      }
      return { prefixes, objects };
    }, t.prefix, now)),
  );
  return { title: `azure ${t.resourceGroup}: Container App ${t.app}, landing abfss://${t.container}@${t.account}.dfs.core.windows.net/${t.prefix}`, lines };
}
