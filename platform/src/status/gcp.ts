/**
 * Health of a GCP stack through Google's API clients: the Cloud Run service and its latest
 * revision, engine (re)starts and progress from the engine's own Cloud Logging bucket, and the
 * newest Cloud Storage landing object per table. Credentials are Application Default Credentials;
 * CDC_GCP_API_ENDPOINT points every client at another host (the tests' stand-in).
 *
 * Alert state: Cloud Monitoring has no public API for an alert policy's open incidents, so the
 * report says where to look instead of guessing.
 */
import { Storage } from "@google-cloud/storage";
import { logging } from "@googleapis/logging";
import { auth, run } from "@googleapis/run";
import { landingLines } from "./landing";
import { progressLines, scanLogs } from "./progress";
import type { StackOutputs } from "./outputs";
import type { StatusLine, StatusReport } from "./report";
import { UsageError } from "../cli";

export interface GcpTarget {
  project: string;
  region: string;
  service: string;
  /** projects/P/locations/L/buckets/B: the engine's own log bucket. */
  logBucket: string;
  bucket: string;
  prefix: string;
}

export function gcpTarget(o: StackOutputs): GcpTarget {
  const runtime = /^cloud-run:([^/]+)\/(.+)$/.exec(o.engineRuntime ?? "");
  const logs = /^cloud-logging:(projects\/[^/]+\/locations\/[^/]+\/buckets\/[^/\s]+)/.exec(o.logLocation ?? "");
  const landing = /^gs:\/\/([^/]+)\/?(.*)$/.exec(o.landingUrl ?? "");
  if (!runtime || !logs || !landing || !o.serviceName) {
    throw new UsageError("the stack outputs lack engineRuntime (cloud-run:<project>/<region>), serviceName, logLocation (cloud-logging:projects/…/buckets/…) or landingUrl (gs://…): is this a gcp stack that `pulumi up` deployed?");
  }
  return { project: runtime[1], region: runtime[2], service: o.serviceName, logBucket: logs[1], bucket: landing[1], prefix: landing[2].replace(/\/+$/, "") };
}

interface Condition {
  type?: string | null;
  state?: string | null;
  message?: string | null;
  reason?: string | null;
}

const succeeded = (c: Condition | undefined | null) => c?.state === "CONDITION_SUCCEEDED";
const describe = (c: Condition | undefined | null) => (c ? `${c.type ?? "condition"} ${c.state ?? "?"}${c.message ? ` (${c.message})` : ""}` : "no condition reported");

export async function gcpStatus(t: GcpTarget, now = new Date()): Promise<StatusReport> {
  const endpoint = process.env.CDC_GCP_API_ENDPOINT?.replace(/\/+$/, "");
  const googleAuth = new auth.GoogleAuth({ scopes: ["https://www.googleapis.com/auth/cloud-platform"] });
  const runApi = run({ version: "v2", auth: googleAuth, ...(endpoint ? { rootUrl: `${endpoint}/` } : {}) });
  const loggingApi = logging({ version: "v2", auth: googleAuth, ...(endpoint ? { rootUrl: `${endpoint}/` } : {}) });
  const storage = new Storage({ projectId: t.project, ...(endpoint ? { apiEndpoint: endpoint } : {}) });
  const lines: StatusLine[] = [];

  const name = `projects/${t.project}/locations/${t.region}/services/${t.service}`;
  const service = await runApi.projects.locations.services.get({ name }).then((r) => r.data, (err: { code?: number; status?: number; message?: string }) => {
    if ((err.status ?? err.code) === 404) return undefined;
    throw err;
  });
  if (!service) {
    lines.push({ ok: false, what: "service", detail: `Cloud Run service ${name} not found` });
  } else {
    const current = service.latestReadyRevision === service.latestCreatedRevision;
    lines.push({
      ok: succeeded(service.terminalCondition) && current,
      what: "service",
      detail: `${describe(service.terminalCondition)}, ${service.scaling?.manualInstanceCount ?? "?"} instance(s) configured, serving ${service.latestReadyRevision?.split("/").pop() ?? "no revision"}${current ? "" : `; the newest revision ${service.latestCreatedRevision?.split("/").pop()} is not ready`}`,
    });
    if (service.latestCreatedRevision) {
      const revision = (await runApi.projects.locations.services.revisions.get({ name: service.latestCreatedRevision })).data;
      const ready = revision.conditions?.find((c) => c.type === "Ready") ?? revision.conditions?.[0];
      lines.push({ ok: succeeded(ready), what: `revision ${revision.name?.split("/").pop()}`, detail: describe(ready) });
    }
  }

  const since = new Date(now.getTime() - 30 * 60_000).toISOString();
  const messages: { timestamp?: number; message: string }[] = [];
  let pageToken: string | undefined;
  for (let page = 0; page < 20; page++) {
    const { data } = await loggingApi.entries.list({
      requestBody: {
        resourceNames: [`${t.logBucket}/views/_AllLogs`],
        filter: `resource.type="cloud_run_revision" AND resource.labels.service_name="${t.service}" AND timestamp>="${since}"`,
        orderBy: "timestamp desc",
        pageSize: 1000,
        pageToken,
      },
    });
    for (const e of data.entries ?? []) {
      // Cloud Logging parses the engine's JSON lines into jsonPayload and moves `time` into the entry's timestamp.
      const message = e.jsonPayload ? JSON.stringify({ time: e.timestamp, ...e.jsonPayload }) : (e.textPayload ?? "");
      messages.push({ timestamp: e.timestamp ? Date.parse(e.timestamp) : undefined, message });
    }
    pageToken = data.nextPageToken ?? undefined;
    if (!pageToken) break;
  }
  const starts = messages.filter((m) => /"msg":"cdc-engine starting"/.test(m.message)).length;
  lines.push({ ok: undefined, what: "restarts", detail: `${starts} engine start${starts === 1 ? "" : "s"} in the last 30 minutes${starts > 1 ? " (it restarted)" : ""}` });
  lines.push(...progressLines(scanLogs(messages), now, `log bucket ${t.logBucket}`));
  lines.push({ ok: undefined, what: "alerts", detail: `Cloud Monitoring exposes no open-incident state through its API: see the console's Alerting page for project ${t.project}` });

  const bucket = storage.bucket(t.bucket);
  lines.push(
    ...(await landingLines(async (prefix) => {
      const [files, , response] = await bucket.getFiles({ prefix, delimiter: "/", autoPaginate: false });
      return {
        prefixes: ((response as { prefixes?: string[] } | undefined)?.prefixes ?? []).slice(),
        objects: files.map((f) => ({ key: f.name, lastModified: f.metadata.updated ? new Date(f.metadata.updated) : undefined })),
      };
    }, t.prefix, now)),
  );
  return { title: `gcp ${t.project}/${t.region}: Cloud Run service ${t.service}, landing gs://${t.bucket}/${t.prefix}`, lines };
}
