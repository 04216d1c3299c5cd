/**
 * Keyless database authentication (PG_AUTH): the token providers against a local STAND-IN for the
 * database's login (a TLS server speaking just enough of the PostgreSQL protocol to ask for a
 * cleartext password, record it and refuse the login, since no real RDS, Entra or Cloud SQL runs
 * here). The RDS signer really signs offline with fixed credentials (checked here by recomputing
 * its SigV4 signature, as RDS does); Google's library gets its token from a stand-in for the
 * metadata server Cloud Run provides.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TLSSocket } from "node:tls";
import { loadConfig } from "../../container/src/config";
import { connect } from "../../container/src/source/connection";
import { permanentSourceError } from "../../container/src/source/errors";

/** Asks every client for a cleartext password over TLS, records it, and refuses the login with 28P01. */
class LoginStandIn {
  readonly passwords: string[] = [];
  private server!: Server;
  port = 0;
  constructor(private readonly tls: { key: string; cert: string }) {}

  async start(): Promise<void> {
    this.server = createServer((socket) => this.serve(socket));
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  private readonly sockets = new Set<Socket>();

  stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private serve(raw: Socket): void {
    this.sockets.add(raw);
    raw.on("close", () => this.sockets.delete(raw));
    raw.once("data", (request) => {
      // SSLRequest (80877103): accept, then speak the protocol inside TLS.
      if (request.readInt32BE(4) !== 80877103) return void raw.destroy();
      raw.write("S");
      const socket = new TLSSocket(raw, { isServer: true, ...this.tls });
      let buffer = Buffer.alloc(0);
      let started = false;
      socket.on("data", (d: Buffer) => {
        buffer = Buffer.concat([buffer, d]);
        if (!started) {
          if (buffer.length < 4 || buffer.length < buffer.readInt32BE(0)) return;
          buffer = buffer.subarray(buffer.readInt32BE(0));
          started = true;
          const ask = Buffer.alloc(9);
          ask.write("R", 0);
          ask.writeInt32BE(8, 1);
          ask.writeInt32BE(3, 5); // AuthenticationCleartextPassword
          socket.write(ask);
        }
        if (buffer.length < 5 || buffer.length < 1 + buffer.readInt32BE(1)) return;
        assert.equal(String.fromCharCode(buffer[0]), "p");
        this.passwords.push(buffer.subarray(5, buffer.readInt32BE(1)).toString("utf8").replace(/\0$/, ""));
        const fields = Buffer.from("SFATAL\0C28P01\0Mstand-in: the token was recorded, not checked\0\0");
        const error = Buffer.alloc(5);
        error.write("E", 0);
        error.writeInt32BE(4 + fields.length, 1);
        socket.end(Buffer.concat([error, fields]));
      });
      socket.on("error", () => undefined);
    });
    raw.on("error", () => undefined);
  }
}

const hmac = (key: Buffer | string, data: string) => createHmac("sha256", key).update(data).digest();
const sha256 = (data: string) => createHash("sha256").update(data).digest("hex");

/** What RDS does with an IAM token: recompute its SigV4 query signature with the secret key. */
function verifyRdsToken(token: string, expected: { host: string; port: number; user: string; region: string; accessKeyId: string; secret: string }): Date {
  const url = new URL(`https://${token}`);
  assert.equal(url.host, `${expected.host}:${expected.port}`);
  const q = url.searchParams;
  assert.equal(q.get("Action"), "connect");
  assert.equal(q.get("DBUser"), expected.user);
  assert.equal(q.get("X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
  assert.equal(q.get("X-Amz-Expires"), "900");
  const date = q.get("X-Amz-Date")!;
  const day = date.slice(0, 8);
  assert.equal(q.get("X-Amz-Credential"), `${expected.accessKeyId}/${day}/${expected.region}/rds-db/aws4_request`);
  const params = [...q.entries()].filter(([k]) => k !== "X-Amz-Signature").sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
  const canonicalQuery = params.map(([k, v]) => `${enc(k)}=${enc(v)}`).join("&");
  const canonical = ["GET", "/", canonicalQuery, `host:${url.host}\n`, q.get("X-Amz-SignedHeaders"), sha256("")].join("\n");
  const scope = `${day}/${expected.region}/rds-db/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", date, scope, sha256(canonical)].join("\n");
  const key = hmac(hmac(hmac(hmac(`AWS4${expected.secret}`, day), expected.region), "rds-db"), "aws4_request");
  assert.equal(q.get("X-Amz-Signature"), createHmac("sha256", key).update(toSign).digest("hex"), "the signature verifies with the secret key");
  return new Date(`${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`);
}

describe("engine: keyless database authentication (PG_AUTH, against stand-ins)", function () {
  this.timeout(60_000);
  let dir: string;
  let standIn: LoginStandIn;
  const saved = { ...process.env };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "cdc-auth-"));
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "1", "-subj", "/CN=localhost"], { cwd: dir, stdio: "ignore" });
    standIn = new LoginStandIn({ key: readFileSync(join(dir, "key.pem"), "utf8"), cert: readFileSync(join(dir, "cert.pem"), "utf8") });
    await standIn.start();
  });
  after(async () => {
    process.env = saved;
    await standIn?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const env = (extra: Record<string, string>) => ({ PG_HOST: "127.0.0.1", PG_PORT: String(standIn.port), PG_DATABASE: "app", PG_USER: "cdc_iam", SINK_URL: "file:///tmp/unused", PG_SSLMODE: "require", ...extra });

  it("aws-iam: signs a fresh RDS IAM token for every connection with the AWS credentials", async () => {
    // Fixed credentials through the SDK's default chain (the task role in ECS).
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: "AKIAIOSFODNN7EXAMPLE", AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" });
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
    const config = loadConfig(env({ PG_AUTH: "aws-iam", PG_AUTH_REGION: "eu-west-1" }));
    const before = standIn.passwords.length;
    const started = Date.now();
    for (let i = 0; i < 2; i++) {
      const err = await connect(config, "cdc-engine auth test").then(
        () => assert.fail("the stand-in refuses every login"),
        (e: unknown) => e as Error,
      );
      // What the engine makes of the refusal: permanent, with the database-side step as the fix.
      const permanent = permanentSourceError(err, config);
      assert.match(permanent!.message, /rejected the PG_AUTH=aws-iam token of PG_USER=cdc_iam/);
      assert.match(permanent!.message, /fix: on the database: GRANT rds_iam TO cdc_iam; and give the task role rds-db:connect on arn:aws:rds-db:/);
    }
    const tokens = standIn.passwords.slice(before);
    assert.equal(tokens.length, 2, "one token per connection");
    for (const token of tokens) {
      const signedAt = verifyRdsToken(token, { host: "127.0.0.1", port: standIn.port, user: "cdc_iam", region: "eu-west-1", accessKeyId: "AKIAIOSFODNN7EXAMPLE", secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" });
      assert.ok(signedAt.getTime() >= Math.floor(started / 1000) * 1000, "signed when the connection was made, not before");
    }
  });

  it("gcp-iam: sends the service account's OAuth token for Cloud SQL's login scope, from the metadata server (a stand-in)", async () => {
    const requests: string[] = [];
    let issued = 0;
    // Stand-in for the metadata server Cloud Run gives every container (GCE_METADATA_HOST points the library at it).
    const metadata: HttpServer = createHttpServer((req, res) => {
      requests.push(req.url ?? "");
      if (req.headers["metadata-flavor"] !== "Google") {
        res.writeHead(403);
        return void res.end();
      }
      res.setHeader("Metadata-Flavor", "Google");
      if ((req.url ?? "").startsWith("/computeMetadata/v1/instance/service-accounts/default/token")) {
        res.writeHead(200, { "content-type": "application/json" });
        return void res.end(JSON.stringify({ access_token: `ya29.stand-in-${++issued}`, expires_in: 3600, token_type: "Bearer" }));
      }
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("stand-in");
    });
    await new Promise<void>((resolve) => metadata.listen(0, "127.0.0.1", resolve));
    try {
      Object.assign(process.env, { GCE_METADATA_HOST: `127.0.0.1:${(metadata.address() as { port: number }).port}`, HOME: dir });
      delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
      const config = loadConfig(env({ PG_AUTH: "gcp-iam", PG_USER: "cdc-engine@stand-in.iam" }));
      const before = standIn.passwords.length;
      await assert.rejects(connect(config, "cdc-engine auth test"), (e: Error & { code?: string }) => e.code === "28P01");
      assert.deepEqual(standIn.passwords.slice(before), ["ya29.stand-in-1"]);
      const tokenRequest = requests.find((r) => r.includes("/token"))!;
      assert.match(decodeURIComponent(tokenRequest), /scopes=https:\/\/www\.googleapis\.com\/auth\/sqlservice\.login/);
    } finally {
      delete process.env.GCE_METADATA_HOST;
      await new Promise<void>((resolve) => metadata.close(() => resolve()));
    }
  });

  it("azure-entra: sends the managed identity's Entra token for Azure Database for PostgreSQL, from the identity endpoint (a stand-in)", async () => {
    const requests: { url: string; header: string | undefined }[] = [];
    // Stand-in for the identity endpoint Container Apps gives every container (IDENTITY_ENDPOINT / IDENTITY_HEADER).
    const identity: HttpServer = createHttpServer((req, res) => {
      requests.push({ url: req.url ?? "", header: req.headers["x-identity-header"] as string | undefined });
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ access_token: "eyJ.stand-in-entra-token", expires_on: String(Math.floor(Date.now() / 1000) + 3600), resource: "https://ossrdbms-aad.database.windows.net", token_type: "Bearer" }));
    });
    await new Promise<void>((resolve) => identity.listen(0, "127.0.0.1", resolve));
    try {
      Object.assign(process.env, { IDENTITY_ENDPOINT: `http://127.0.0.1:${(identity.address() as { port: number }).port}/msi/token`, IDENTITY_HEADER: "stand-in-header" });
      for (const k of ["AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE", "MSI_ENDPOINT", "MSI_SECRET"]) delete process.env[k];
      const config = loadConfig(env({ PG_AUTH: "azure-entra", PG_USER: "cdc-engine-identity" }));
      const before = standIn.passwords.length;
      const err = await connect(config, "cdc-engine auth test").then(
        () => assert.fail("the stand-in refuses every login"),
        (e: unknown) => e as Error & { code?: string },
      );
      assert.equal(err.code, "28P01", String(err));
      assert.deepEqual(standIn.passwords.slice(before), ["eyJ.stand-in-entra-token"]);
      assert.ok(requests.some((r) => /resource=https%3A%2F%2Fossrdbms-aad\.database\.windows\.net/.test(r.url) && r.header === "stand-in-header"), JSON.stringify(requests));
      assert.match(permanentSourceError(err, config)!.message, /fix: enable Microsoft Entra authentication .*pgaadauth_create_principal\('cdc-engine-identity', false, false\)/);
    } finally {
      delete process.env.IDENTITY_ENDPOINT;
      delete process.env.IDENTITY_HEADER;
      await new Promise<void>((resolve) => identity.close(() => resolve()));
    }
  });
});
