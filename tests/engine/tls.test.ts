/**
 * TLS that verifies, against the suite's PostgreSQL started with ssl=on and certificates from a
 * certificate authority this test creates (openssl): verify-full passes, a wrong CA and a wrong
 * host name each stop the engine with one clear message; a client certificate is presented.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { loadConfig } from "../../container/src/config";
import { connect } from "../../container/src/source/connection";
import { SourcePermanentError, permanentSourceError } from "../../container/src/source/errors";
import { engineEnv, landingDir, waitFor, waitForRecords } from "./fixtures/harness";
import { startLoggedEngine } from "./fixtures/logged-engine";

const openssl = (dir: string, ...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });

/** A CA, a server certificate for DNS:localhost signed by it, a client certificate, and an unrelated CA. */
function makeCertificates(dir: string): void {
  openssl(dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=cdc test CA");
  openssl(dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other-ca.key", "-out", "other-ca.pem", "-days", "2", "-subj", "/CN=some other CA");
  writeFileSync(join(dir, "server.ext"), "subjectAltName=DNS:localhost\n");
  openssl(dir, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost");
  openssl(dir, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "server.ext");
  openssl(dir, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=postgres");
  openssl(dir, "x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "client.crt", "-days", "2");
  // PostgreSQL runs as `postgres` when the suite runs as root, and insists its key is private to it.
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString());
    const gid = Number(execFileSync("id", ["-g", "postgres"]).toString());
    chmodSync(dir, 0o755);
    for (const f of ["server.crt", "server.key", "ca.pem"]) chownSync(join(dir, f), uid, gid);
  }
  chmodSync(join(dir, "server.key"), 0o600);
}

describe("engine: TLS verification", function () {
  this.timeout(60_000);
  let pg: TestPostgres;
  let certs: string;
  before(async () => {
    certs = mkdtempSync(join(tmpdir(), "cdc-tls-"));
    makeCertificates(certs);
    pg = await startPostgres({
      settings: { ssl: "on", ssl_cert_file: join(certs, "server.crt"), ssl_key_file: join(certs, "server.key"), ssl_ca_file: join(certs, "ca.pem") },
    });
    await pg.query("CREATE TABLE public.t (id int PRIMARY KEY)");
  });
  after(async () => {
    await pg?.stop();
    rmSync(certs, { recursive: true, force: true });
  });

  it("streams over verify-full (the default once PG_SSLROOTCERT is set) with a client certificate", async () => {
    const dir = await landingDir();
    const env = engineEnv(pg, dir, { PG_HOST: "localhost", PG_SSLROOTCERT: join(certs, "ca.pem"), PG_SSLCERT: join(certs, "client.crt"), PG_SSLKEY: join(certs, "client.key"), TABLE_INCLUDE: "public.t", PG_SLOT: "tls_slot", PG_PUBLICATION: "tls_pub" });
    delete env.PG_SSLMODE;
    const engine = startLoggedEngine(env);
    try {
      await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"));
      const sessions = await pg.query<{ ssl: boolean; client_dn: string | null }>(
        // The column is clientdn before PostgreSQL 12.
        "SELECT s.ssl, COALESCE(to_jsonb(s) ->> 'client_dn', to_jsonb(s) ->> 'clientdn') AS client_dn FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name LIKE 'cdc-engine%'",
      );
      assert.ok(sessions.length >= 2);
      assert.ok(sessions.every((s) => s.ssl && s.client_dn === "/CN=postgres"), JSON.stringify(sessions));
      await pg.query("INSERT INTO public.t VALUES (1)");
      await waitForRecords(dir, "public.t", 1);
    } finally {
      await engine.stop();
    }
  });

  it("verifies against PG_SSLROOTCERT_PEM, the bundle as text (no file in the image)", async () => {
    const config = loadConfig({ ...pg.env, PG_HOST: "localhost", PG_SSLMODE: "", PG_SSLROOTCERT_PEM: readFileSync(join(certs, "ca.pem"), "utf8"), SINK_URL: "file:///tmp/unused" });
    assert.equal(config.pg.sslMode, "verify-full");
    const client = await connect(config, "cdc-engine tls test");
    try {
      assert.equal((await client.query<{ ssl: boolean }>("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).rows[0].ssl, true);
    } finally {
      await client.end();
    }
    const wrong = loadConfig({ ...pg.env, PG_HOST: "localhost", PG_SSLMODE: "", PG_SSLROOTCERT_PEM: readFileSync(join(certs, "other-ca.pem"), "utf8"), SINK_URL: "file:///tmp/unused" });
    const err = await connect(wrong, "cdc-engine tls test").then(() => assert.fail("must not verify"), (e: unknown) => e);
    assert.match(permanentSourceError(err, wrong)!.message, /not signed by a CA in PG_SSLROOTCERT_PEM/);
  });

  it("verify-ca accepts the CA's certificate under a name it does not list", async () => {
    const dir = await landingDir();
    const engine = startLoggedEngine(engineEnv(pg, dir, { PG_SSLMODE: "verify-ca", PG_SSLROOTCERT: join(certs, "ca.pem"), TABLE_INCLUDE: "public.t", PG_SLOT: "tls_ca_slot", PG_PUBLICATION: "tls_pub" }));
    try {
      await waitFor("streaming", async () => engine.metrics.phases.includes("streaming"));
    } finally {
      await engine.stop();
    }
  });

  const refused = async (extra: Record<string, string>, message: RegExp, fix: RegExp) => {
    const dir = await landingDir();
    const engine = startLoggedEngine(engineEnv(pg, dir, { PG_SSLMODE: "verify-full", TABLE_INCLUDE: "public.t", PG_SLOT: "tls_bad_slot", PG_PUBLICATION: "tls_pub", ...extra }));
    await assert.rejects(engine.done, (err: unknown) => {
      assert.ok(err instanceof SourcePermanentError, String(err));
      assert.match(err.message, message);
      assert.match(err.message, fix);
      return true;
    });
    assert.deepEqual(engine.said(/reconnecting/).map((l) => l.msg), [], "stopped at once, not retried");
  };

  it("stops with one clear message when the certificate is not from PG_SSLROOTCERT's CA", async () => {
    const ca = join(certs, "other-ca.pem");
    await refused({ PG_HOST: "localhost", PG_SSLROOTCERT: ca }, new RegExp(`the server's certificate is not signed by a CA in PG_SSLROOTCERT=${ca}`), /fix: set PG_SSLROOTCERT to the server's CA bundle/);
  });

  it("stops with one clear message when the certificate does not name PG_HOST", async () => {
    await refused({ PG_HOST: "127.0.0.1", PG_SSLROOTCERT: join(certs, "ca.pem") }, /the server's certificate does not name PG_HOST=127\.0\.0\.1/, /fix: set PG_HOST to a name the certificate lists .* or PG_SSLMODE=verify-ca/);
  });
});
