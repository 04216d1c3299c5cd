/**
 * A STAND-IN for Google Cloud Storage, written for these tests: the slice of the GCS JSON API that
 * @google-cloud/storage uses for single-request uploads, media downloads and deletes, served over
 * plain HTTP. The real fake-gcs-server (Go, built by conditional-servers.ts) is used where it
 * behaves as GCS does — the generation preconditions of uploads, in the fencing tests — but it
 * answers a missing object with the same bare 404 as a missing bucket (GCS: "No such object: …"),
 * ignores `ifGenerationMatch` on deletes and has no IAM denial (it does check uploaded hashes), so
 * the GCS contract, the conditional delete and the injected faults stay here.
 * It behaves as GCS documents: objects are replaced atomically; uploads whose metadata carries
 * `crc32c`/`md5Hash` that do not match the received bytes are rejected with 400; uploads, reads
 * and deletes honour `ifGenerationMatch` (412) and `generation`; responses carry
 * the stored hashes (object resource, `x-goog-hash`); missing buckets answer 404 "The specified
 * bucket does not exist."; buckets listed as denied answer 403 like an IAM denial.
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

interface StoredObject {
  data: Buffer;
  contentType: string;
  generation: number;
  crc32c: string;
  md5Hash: string;
  updated: string;
}

/** CRC32C (Castagnoli), independent of the client library's implementation. */
const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
})();

export function crc32cBase64(data: Buffer): string {
  let crc = 0xffffffff;
  for (const byte of data) crc = CRC32C_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  const out = Buffer.alloc(4);
  out.writeUInt32BE((crc ^ 0xffffffff) >>> 0);
  return out.toString("base64");
}

export class GcsStandIn {
  /** bucket -> object name -> object; kept across close()/listen() so an outage loses nothing. */
  readonly buckets = new Map<string, Map<string, StoredObject>>();
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private generation = 1;

  constructor(
    buckets: string[],
    private readonly denied: string[] = [],
  ) {
    for (const b of [...buckets, ...denied]) this.buckets.set(b, new Map());
  }

  listen(port: number): Promise<void> {
    if (this.server) return Promise.resolve();
    const server = createServer((req, res) => void this.handle(req, res).catch((err) => this.fail(res, 500, String(err), "backendError")));
    server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
  }

  close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return Promise.resolve();
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://stand-in");
    const body = await readBody(req);
    let m: RegExpExecArray | null;
    if (req.method === "POST" && (m = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(url.pathname))) {
      const bucket = this.bucket(res, decodeURIComponent(m[1]), "storage.objects.create");
      if (!bucket) return;
      return this.upload(req, res, url, body, decodeURIComponent(m[1]), bucket);
    }
    if ((m = /^\/storage\/v1\/b\/([^/]+)\/o\/(.+)$/.exec(url.pathname))) {
      const bucketName = decodeURIComponent(m[1]);
      const name = decodeURIComponent(m[2]);
      const permission = req.method === "DELETE" ? "storage.objects.delete" : "storage.objects.get";
      const bucket = this.bucket(res, bucketName, permission);
      if (!bucket) return;
      const object = bucket.get(name);
      // Without object versioning only the live generation exists.
      const generation = url.searchParams.get("generation");
      if (!object || (generation !== null && Number(generation) !== object.generation)) return this.fail(res, 404, `No such object: ${bucketName}/${name}`, "notFound");
      const precondition = url.searchParams.get("ifGenerationMatch");
      if (precondition !== null && Number(precondition) !== object.generation) return this.fail(res, 412, "At least one of the pre-conditions you specified did not hold.", "conditionNotMet");
      if (req.method === "DELETE") {
        bucket.delete(name);
        res.writeHead(204).end();
        return;
      }
      if (req.method === "GET" && url.searchParams.get("alt") === "media") {
        res.writeHead(200, {
          "content-type": object.contentType,
          "content-length": object.data.byteLength,
          "x-goog-hash": `crc32c=${object.crc32c},md5=${object.md5Hash}`,
          "x-goog-stored-content-encoding": "identity",
          "x-goog-generation": String(object.generation),
        });
        res.end(object.data);
        return;
      }
      if (req.method === "GET") return this.json(res, 200, this.resource(bucketName, name, object));
    }
    if (req.method === "GET" && (m = /^\/storage\/v1\/b\/([^/]+)$/.exec(url.pathname))) {
      const bucketName = decodeURIComponent(m[1]);
      if (!this.bucket(res, bucketName, "storage.buckets.get")) return;
      return this.json(res, 200, { kind: "storage#bucket", id: bucketName, name: bucketName });
    }
    this.fail(res, 400, `the GCS stand-in does not implement ${req.method} ${url.pathname}`, "invalid");
  }

  private upload(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer, bucketName: string, bucket: Map<string, StoredObject>): void {
    const contentType = req.headers["content-type"] ?? "";
    const boundary = /boundary="?([^";]+)"?/.exec(contentType)?.[1];
    if (url.searchParams.get("uploadType") !== "multipart" || !boundary) return this.fail(res, 400, "only uploadType=multipart is implemented by the stand-in", "invalid");
    const parts = splitMultipart(body, boundary);
    if (parts.length !== 2) return this.fail(res, 400, `expected 2 multipart parts, got ${parts.length}`, "invalid");
    const metadata = JSON.parse(parts[0].body.toString("utf8")) as { name?: string; contentType?: string; crc32c?: string; md5Hash?: string };
    const name = url.searchParams.get("name") ?? metadata.name;
    if (!name) return this.fail(res, 400, "Required: object name", "required");
    const precondition = url.searchParams.get("ifGenerationMatch");
    if (precondition !== null && Number(precondition) !== (bucket.get(name)?.generation ?? 0)) {
      return this.fail(res, 412, "At least one of the pre-conditions you specified did not hold.", "conditionNotMet");
    }
    const data = parts[1].body;
    const crc32c = crc32cBase64(data);
    const md5Hash = createHash("md5").update(data).digest("base64");
    if (metadata.crc32c !== undefined && metadata.crc32c !== crc32c) {
      return this.fail(res, 400, `Provided CRC32C "${metadata.crc32c}" doesn't match calculated CRC32C "${crc32c}".`, "invalid");
    }
    if (metadata.md5Hash !== undefined && metadata.md5Hash !== md5Hash) {
      return this.fail(res, 400, `Provided MD5 hash "${metadata.md5Hash}" doesn't match calculated MD5 hash "${md5Hash}".`, "invalid");
    }
    const object: StoredObject = {
      data,
      contentType: metadata.contentType ?? parts[1].headers["content-type"] ?? "application/octet-stream",
      generation: this.generation++,
      crc32c,
      md5Hash,
      updated: new Date().toISOString(),
    };
    bucket.set(name, object);
    this.json(res, 200, this.resource(bucketName, name, object));
  }

  private bucket(res: ServerResponse, name: string, permission: string): Map<string, StoredObject> | undefined {
    if (this.denied.includes(name)) {
      this.fail(res, 403, `stand-in-sa@project.iam.gserviceaccount.com does not have ${permission} access to the Google Cloud Storage bucket. Permission '${permission}' denied on resource (or it may not exist).`, "forbidden");
      return undefined;
    }
    const bucket = this.buckets.get(name);
    if (!bucket) this.fail(res, 404, "The specified bucket does not exist.", "notFound");
    return bucket;
  }

  private resource(bucket: string, name: string, o: StoredObject): object {
    return {
      kind: "storage#object",
      id: `${bucket}/${name}/${o.generation}`,
      name,
      bucket,
      generation: String(o.generation),
      metageneration: "1",
      contentType: o.contentType,
      size: String(o.data.byteLength),
      crc32c: o.crc32c,
      md5Hash: o.md5Hash,
      timeCreated: o.updated,
      updated: o.updated,
    };
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json; charset=UTF-8", "content-length": Buffer.byteLength(text) });
    res.end(text);
  }

  private fail(res: ServerResponse, code: number, message: string, reason: string): void {
    if (res.headersSent) return void res.destroy();
    this.json(res, code, { error: { code, message, errors: [{ message, domain: "global", reason }] } });
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function splitMultipart(body: Buffer, boundary: string): { headers: Record<string, string>; body: Buffer }[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: { headers: Record<string, string>; body: Buffer }[] = [];
  let start = body.indexOf(delimiter);
  while (start !== -1) {
    const afterDelimiter = start + delimiter.length;
    if (body.subarray(afterDelimiter, afterDelimiter + 2).toString() === "--") break;
    const next = body.indexOf(delimiter, afterDelimiter);
    if (next === -1) break;
    const part = body.subarray(afterDelimiter + 2, next - 2); // strip the CRLF after the delimiter and before the next
    const headerEnd = part.indexOf("\r\n\r\n");
    const headers: Record<string, string> = {};
    for (const line of part.subarray(0, headerEnd).toString("utf8").split("\r\n")) {
      const i = line.indexOf(":");
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    parts.push({ headers, body: Buffer.from(part.subarray(headerEnd + 4)) });
    start = next;
  }
  return parts;
}
