/**
 * A STAND-IN for the Google Cloud APIs `cdc-platform status` calls, written for these tests (no
 * Google emulator covers Cloud Run or Cloud Logging): the Security Token Service token exchange
 * Workload Identity Federation credentials name (`token_url`), Cloud Run Admin API v2 `services.get` and
 * `revisions.get`, Cloud Logging v2 `entries:list` (the filter terms status sends: service name
 * and a timestamp lower bound, newest first, paged), and the Cloud Storage JSON API object list
 * with `prefix`/`delimiter`. Wire format as Google documents it: JSON resources, Google error
 * bodies ({"error":{"code","message","status"}}), Bearer tokens required on Run and Logging.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface LogEntry {
  timestamp: string;
  serviceName: string;
  jsonPayload?: Record<string, unknown>;
  textPayload?: string;
}

export interface GcpState {
  services: Record<string, Record<string, unknown>>;
  revisions: Record<string, Record<string, unknown>>;
  entries: LogEntry[];
  /** bucket → object name → updated (RFC 3339). */
  objects: Record<string, Record<string, string>>;
}

export interface GcpStandIn {
  endpoint: string;
  state: GcpState;
  /**
   * Application Default Credentials for GOOGLE_APPLICATION_CREDENTIALS: Workload Identity
   * Federation (what keyless CI uses) exchanging the OIDC token in `subjectTokenFile` at this
   * stand-in's token endpoint.
   */
  credentials(subjectTokenFile: string): Record<string, unknown>;
  /** The paths of the requests answered, in order. */
  requests: string[];
  stop(): Promise<void>;
}

const TOKEN = "stand-in-access-token";
/** The OIDC token a CI workload would hold (what Workload Identity Federation exchanges). */
export const SUBJECT_TOKEN = "stand-in-oidc-token";

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json; charset=UTF-8" });
  res.end(JSON.stringify(body));
}

const googleError = (res: ServerResponse, code: number, status: string, message: string) => send(res, code, { error: { code, message, status } });

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export async function startGcpStandIn(state: GcpState): Promise<GcpStandIn> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? "/", "http://stand-in");
      requests.push(`${req.method} ${url.pathname}`);
      const text = await body(req);
      if (req.method === "POST" && url.pathname === "/v1/token") {
        // Security Token Service: exchange the workload's OIDC token for a Google access token.
        const form = new URLSearchParams(text);
        if (form.get("grant_type") !== "urn:ietf:params:oauth:grant-type:token-exchange" || form.get("subject_token") !== SUBJECT_TOKEN) {
          return send(res, 400, { error: "invalid_grant", error_description: "the subject token is not valid" });
        }
        return send(res, 200, { access_token: TOKEN, issued_token_type: "urn:ietf:params:oauth:token-type:access_token", token_type: "Bearer", expires_in: 3600 });
      }
      if (url.pathname.startsWith("/storage/v1/b/")) {
        const m = /^\/storage\/v1\/b\/([^/]+)\/o$/.exec(url.pathname);
        const objects = m ? state.objects[decodeURIComponent(m[1])] : undefined;
        if (!m || !objects) return googleError(res, 404, "NOT_FOUND", "The specified bucket does not exist.");
        const prefix = url.searchParams.get("prefix") ?? "";
        const delimiter = url.searchParams.get("delimiter");
        const items: { kind: string; name: string; bucket: string; updated: string }[] = [];
        const prefixes = new Set<string>();
        for (const [name, updated] of Object.entries(objects).sort()) {
          if (!name.startsWith(prefix)) continue;
          const rest = name.slice(prefix.length);
          const cut = delimiter ? rest.indexOf(delimiter) : -1;
          if (cut >= 0) prefixes.add(prefix + rest.slice(0, cut + delimiter!.length));
          else items.push({ kind: "storage#object", name, bucket: m[1], updated });
        }
        return send(res, 200, { kind: "storage#objects", items, prefixes: [...prefixes] });
      }
      if (req.headers.authorization !== `Bearer ${TOKEN}`) return googleError(res, 401, "UNAUTHENTICATED", "Request had invalid authentication credentials.");
      if (req.method === "POST" && url.pathname === "/v2/entries:list") {
        const request = JSON.parse(text || "{}") as { filter?: string; pageSize?: number; pageToken?: string; resourceNames?: string[] };
        const service = /resource\.labels\.service_name="([^"]+)"/.exec(request.filter ?? "")?.[1];
        const since = /timestamp>="([^"]+)"/.exec(request.filter ?? "")?.[1];
        if (!request.resourceNames?.length) return googleError(res, 400, "INVALID_ARGUMENT", "resourceNames is required");
        const matching = state.entries
          .filter((e) => (!service || e.serviceName === service) && (!since || e.timestamp >= since))
          .sort((a, b) => (a.timestamp < b.timestamp ? 1 : -1));
        const start = Number(request.pageToken ?? 0);
        const size = Math.min(request.pageSize ?? 50, 2); // small pages: paging must work
        const page = matching.slice(start, start + size).map((e) => ({
          logName: `${request.resourceNames![0]}/logs/run.googleapis.com%2Fstdout`,
          resource: { type: "cloud_run_revision", labels: { service_name: e.serviceName } },
          timestamp: e.timestamp,
          ...(e.jsonPayload ? { jsonPayload: e.jsonPayload } : { textPayload: e.textPayload }),
        }));
        return send(res, 200, { entries: page, ...(start + size < matching.length ? { nextPageToken: String(start + size) } : {}) });
      }
      const name = url.pathname.replace(/^\/v2\//, "");
      if (req.method === "GET" && state.services[name]) return send(res, 200, { name, ...state.services[name] });
      if (req.method === "GET" && state.revisions[name]) return send(res, 200, { name, ...state.revisions[name] });
      return googleError(res, 404, "NOT_FOUND", `Resource '${name}' was not found`);
    })().catch((err: Error) => googleError(res, 500, "INTERNAL", err.message));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    state,
    requests,
    credentials: (subjectTokenFile: string) => ({
      type: "external_account",
      audience: "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/ci/providers/github",
      subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
      token_url: `${endpoint}/v1/token`,
      credential_source: { file: subjectTokenFile },
    }),
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
