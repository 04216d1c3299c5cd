/**
 * A STAND-IN for the Azure management and Log Analytics APIs `cdc-platform status` calls, written
 * for these tests (no emulator exists for Azure Resource Manager or Log Analytics): Container Apps
 * (app, revision, replicas), Log Analytics workspaces and the workspace query API, and Azure
 * Monitor metric alerts and their status — ARM's JSON resource format ({id, name, properties}),
 * ARM error bodies ({"error":{"code","message"}}), Bearer tokens required. Served over HTTPS with
 * a throw-away self-signed certificate (openssl), because the Azure SDK refuses to send a bearer
 * token over plain HTTP; clients trust it through NODE_EXTRA_CA_CERTS.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

export const ARM_TOKEN = "stand-in-arm-token";

export interface AzureState {
  /** ARM resources by id (lower-case path, no query): the JSON GET returns. */
  resources: Record<string, Record<string, unknown>>;
  /** Log Analytics rows per workspace customerId: ContainerAppName_s, TimeGenerated, Log_s. */
  logs: Record<string, { app: string; at: string; line: string }[]>;
}

export interface AzureStandIn {
  endpoint: string;
  /** The certificate to trust (NODE_EXTRA_CA_CERTS). */
  caFile: string;
  requests: string[];
  stop(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "x-ms-request-id": "stand-in" });
  res.end(JSON.stringify(body));
}

export async function startAzureStandIn(state: AzureState): Promise<AzureStandIn> {
  const dir = mkdtempSync(path.join(tmpdir(), "cdc-azure-stand-in-"));
  const key = path.join(dir, "key.pem");
  const cert = path.join(dir, "cert.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" });
  const requests: string[] = [];
  const server = createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "https://stand-in");
      requests.push(`${req.method} ${url.pathname}`);
      if (req.headers.authorization !== `Bearer ${ARM_TOKEN}`) {
        return send(res, 401, { error: { code: "AuthenticationFailed", message: "Authentication failed. The 'Authorization' header is missing or invalid." } });
      }
      const query = /^\/loganalytics\/v1\/workspaces\/([^/]+)\/query$/.exec(url.pathname);
      if (req.method === "POST" && query) {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as { query?: string };
        const app = /ContainerAppName_s == "([^"]+)"/.exec(body.query ?? "")?.[1];
        const rows = (state.logs[query[1]] ?? []).filter((r) => r.app === app).sort((a, b) => (a.at < b.at ? -1 : 1)).map((r) => [r.at, r.line]);
        return send(res, 200, { tables: [{ name: "PrimaryResult", columns: [{ name: "TimeGenerated", type: "datetime" }, { name: "Log_s", type: "string" }], rows }] });
      }
      if (req.method !== "GET") return send(res, 405, { error: { code: "MethodNotAllowed", message: `${req.method} is not supported here` } });
      const resource = state.resources[url.pathname.toLowerCase()];
      if (!resource) return send(res, 404, { error: { code: "ResourceNotFound", message: `The Resource '${url.pathname}' was not found.` } });
      return send(res, 200, resource);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    caFile: cert,
    requests,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
