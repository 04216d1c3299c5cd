/**
 * An HTTP proxy in front of a storage server that damages request bodies in transit: the first
 * `times` requests whose body contains `marker` are forwarded with one byte of the marker changed
 * (same length, headers untouched), as a flipped bit on the network would. A sink that verifies its
 * writes must never store the damaged bytes.
 */
import { createServer, request, type Server } from "node:http";
import { freePort } from "../../support/postgres";

export interface CorruptingProxy {
  endpoint: string;
  port: number;
  /** How many request bodies were damaged so far. */
  corrupted: number;
  close(): Promise<void>;
}

export async function startCorruptingProxy(target: { port: number }, marker: string, times: number): Promise<CorruptingProxy> {
  const port = await freePort();
  const needle = Buffer.from(marker);
  const state = { corrupted: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const at = body.indexOf(needle);
      if (at !== -1 && state.corrupted < times) {
        state.corrupted++;
        body[at] = body[at] ^ 0x20; // "C" becomes "c": same length, different bytes
      }
      const upstream = request(
        { host: "127.0.0.1", port: target.port, method: req.method, path: req.url, headers: req.headers },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      upstream.on("error", (err) => {
        res.writeHead(502).end(String(err));
      });
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", () => resolve()));
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    get corrupted() {
      return state.corrupted;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
