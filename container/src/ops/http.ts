/**
 * The engine's HTTP endpoints: /healthz (liveness: the process answers), /readyz (streaming with a
 * known lag) and /metrics (Prometheus text). Container platforms probe the first two; a Prometheus
 * scraper or the clouds' managed collectors read the third.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import type { PrometheusMetrics } from "./prometheus";

export interface OpsServer {
  /** The port actually bound (useful with HTTP_PORT=0). */
  port: number;
  /** The address bound (HTTP_HOST; "::" or "0.0.0.0" for all interfaces). */
  host: string;
  close(): Promise<void>;
}

export interface OpsServerOptions {
  port: number;
  /** Interface to bind; all interfaces by default (a container must answer its platform's probes). */
  host?: string;
  metrics: PrometheusMetrics;
  logger: Logger;
}

function sendJson(res: ServerResponse, status: number, body: unknown, head: boolean): void {
  const text = JSON.stringify(body) + "\n";
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text), "cache-control": "no-store" });
  res.end(head ? undefined : text);
}

export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const { metrics, logger } = options;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? "/").split("?")[0];
    const head = req.method === "HEAD";
    if (req.method !== "GET" && !head) {
      res.setHeader("allow", "GET, HEAD");
      return sendJson(res, 405, { error: `method ${req.method} not allowed` }, false);
    }
    switch (path) {
      case "/healthz":
        return sendJson(res, 200, { status: "ok" }, head);
      case "/readyz": {
        const r = metrics.readiness();
        return r.ready
          ? sendJson(res, 200, { status: "ready", phase: r.phase, lag_bytes: r.lagBytes }, head)
          : sendJson(res, 503, { status: "not_ready", phase: r.phase, reason: r.reason }, head);
      }
      case "/metrics": {
        const text = await metrics.text();
        res.writeHead(200, { "content-type": metrics.contentType, "content-length": Buffer.byteLength(text) });
        res.end(head ? undefined : text);
        return;
      }
      default:
        return sendJson(res, 404, { error: `no such endpoint ${path}; try /healthz, /readyz or /metrics` }, head);
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      logger.error({ err, path: req.url }, "HTTP handler failed");
      if (!res.headersSent) sendJson(res, 500, { error: "internal error" }, false);
      else res.destroy();
    });
  });
  // Probes use short-lived connections; don't let an idle keep-alive socket delay shutdown.
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        err.code === "EADDRINUSE"
          ? new Error(`HTTP_PORT ${options.port} is already in use by another process; choose a free port, e.g. HTTP_PORT=8081`)
          : err.code === "EADDRNOTAVAIL" || err.code === "ENOTFOUND" || err.code === "EAI_AGAIN"
            ? new Error(`HTTP_HOST ${options.host} is not an address of this machine (${err.code}); unset it to listen on all interfaces, or use one of this machine's addresses, e.g. HTTP_HOST=127.0.0.1`)
            : err,
      );
    };
    server.once("error", onError);
    server.listen(options.port, options.host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const { port, address } = server.address() as AddressInfo;
  logger.info({ port, host: address }, "HTTP endpoints /healthz, /readyz and /metrics listening");

  return {
    port,
    host: address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
