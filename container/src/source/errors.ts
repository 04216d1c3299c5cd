/**
 * Which failures of a PostgreSQL session are worth retrying. Transient ones (a lost connection, a
 * restarting or overloaded server, a slot still held by the previous instance) are retried with
 * backoff; permanent ones (wrong credentials, a missing database or privilege, a certificate that
 * does not verify, a publication the slot can no longer decode with, a slot that lost its WAL)
 * would fail the same way for ever, so the engine stops with one message naming the cause and the
 * fix instead of looping.
 */
import type { EngineConfig } from "../config";
import { databaseSideFix } from "./auth";

/** A source failure retrying cannot fix; `message` names the cause and the fix. */
export class SourcePermanentError extends Error {
  constructor(
    readonly reason: string,
    readonly fix: string,
    options?: { cause?: unknown },
  ) {
    super(`${reason} — fix: ${fix}`, options);
    this.name = "SourcePermanentError";
  }
}

interface PgErrorLike {
  code?: string;
  message?: string;
}

/** Node's TLS verification failures (the server's certificate chain or name), by error code. */
const CERTIFICATE_CHAIN_CODES = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "INVALID_CA",
]);

/**
 * The permanent error `err` amounts to, or undefined when it is transient (retry with backoff).
 * Unknown errors count as transient: backing off costs little, stopping on a blip costs an outage.
 */
export function permanentSourceError(err: unknown, config: EngineConfig): SourcePermanentError | undefined {
  if (err instanceof SourcePermanentError) return err;
  const e = (err ?? {}) as PgErrorLike;
  const message = e.message ?? String(err);
  const { pg } = config;
  const where = `${pg.host}:${pg.port}/${pg.database}`;
  const fail = (reason: string, fix: string) => new SourcePermanentError(reason, fix, { cause: err });

  const tls = tlsProblem(e, config);
  if (tls) return fail(tls.reason, tls.fix);
  if (/server does not support SSL/i.test(message)) {
    return fail(`${where} does not accept TLS connections, but PG_SSLMODE=${pg.sslMode} requires TLS`, "enable ssl on the server, or (only on a trusted network) set PG_SSLMODE=disable");
  }
  switch (e.code) {
    case "28P01":
      return fail(`PostgreSQL rejected the ${pg.auth === "password" ? "credentials" : `PG_AUTH=${pg.auth} token`} of PG_USER=${pg.user} on ${where} (${message})`, databaseSideFix(config));
    case "28000":
      return fail(`PostgreSQL refused the login of PG_USER=${pg.user} on ${where} (${message})`, `allow it in pg_hba.conf (hostssl ${pg.database} ${pg.user} <engine address> scram-sha-256, and a "replication" line is not needed for logical replication) and check the role may log in`);
    case "3D000":
      return fail(`database ${pg.database} does not exist on ${pg.host}:${pg.port}`, "check PG_DATABASE");
    case "42501":
      return fail(`PG_USER=${pg.user} lacks a privilege the engine needs: ${message}`, "run cdc-engine doctor: it names each missing privilege and the GRANT that gives it");
  }
  if (/publication "[^"]*" does not exist/.test(message)) {
    return fail(
      `PostgreSQL cannot decode the changes of slot ${pg.slot} with publication ${pg.publication} (${message}): the publication was dropped (perhaps dropped and created again) ` +
        "while the slot still had changes from before that to stream, and a slot decodes each change with the catalog as of that change, so it can never use a new publication for them",
      `drop the slot and let the engine take a new initial snapshot: SELECT pg_drop_replication_slot('${pg.slot}'); then restart (with SNAPSHOT_MODE=initial; the changes made while the publication was missing are not streamed). ` +
        "To change what a publication publishes, use ALTER PUBLICATION … ADD/DROP TABLE instead of dropping it",
    );
  }
  if (/replication slot "[^"]*" (was|has been) invalidated|can no longer (get|access) changes from replication slot|requested WAL segment \S+ has already been removed/i.test(message)) {
    return fail(
      `replication slot ${pg.slot} can no longer stream (${message}): PostgreSQL removed WAL the slot still needed (max_slot_wal_keep_size, or the slot was invalidated), so changes since its position are gone`,
      `drop the slot and let the engine take a new initial snapshot: SELECT pg_drop_replication_slot('${pg.slot}'); then restart with SNAPSHOT_MODE=initial`,
    );
  }
  return undefined;
}

/** A TLS verification failure explained in terms of the PG_SSL* variables. */
export function tlsProblem(e: PgErrorLike, config: EngineConfig): { reason: string; fix: string } | undefined {
  const { pg } = config;
  const ca = pg.sslRootCert ? `PG_SSLROOTCERT=${pg.sslRootCert}` : pg.sslRootCertPem ? "PG_SSLROOTCERT_PEM" : "Node's default CA list (PG_SSLROOTCERT is not set)";
  if (e.code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    return {
      reason: `the server's certificate does not name PG_HOST=${pg.host} (${e.message ?? "host name mismatch"}), so PG_SSLMODE=verify-full refuses it`,
      fix: "set PG_HOST to a name the certificate lists (the server's DNS name, not an IP address or an alias), or PG_SSLMODE=verify-ca to check only the CA",
    };
  }
  if (e.code === "CERT_HAS_EXPIRED" || e.code === "CERT_NOT_YET_VALID") {
    return { reason: `the server's certificate is not valid now (${e.message})`, fix: "renew or rotate the server's certificate (RDS: modify the instance's certificate authority)" };
  }
  if (e.code !== undefined && CERTIFICATE_CHAIN_CODES.has(e.code)) {
    return {
      reason: `the server's certificate is not signed by a CA in ${ca} (${e.message}), so PG_SSLMODE=${pg.sslMode} refuses it`,
      fix: "set PG_SSLROOTCERT to the server's CA bundle (RDS/Aurora: the region's bundle from truststore.pki.rds.amazonaws.com; Azure: the DigiCert Global Root G2 and Microsoft RSA Root CA 2017 roots; Cloud SQL: the instance's server CA from gcloud sql instances describe), see docs/engine.md",
    };
  }
  return undefined;
}
