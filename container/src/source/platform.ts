/**
 * Which kind of PostgreSQL the source is — Amazon RDS, Aurora, Azure Database for PostgreSQL
 * Flexible Server, Google Cloud SQL or plain — recognised from the settings and roles each service
 * adds, so `doctor` can print the fix that works there: on a managed service server settings are
 * changed in its console or CLI (parameter group, server parameters, database flags), never with
 * ALTER SYSTEM, and replication is granted the service's way.
 */
import type pg from "pg";

export type PlatformKind = "aurora" | "rds" | "azure" | "cloudsql" | "plain";

export interface Platform {
  kind: PlatformKind;
  /** What gave it away, for the doctor line. */
  evidence: string[];
  /** The server is a standby (read replica, Aurora reader): it cannot host the engine's slot. */
  inRecovery: boolean;
}

export const PLATFORM_NAMES: Record<PlatformKind, string> = {
  aurora: "Amazon Aurora PostgreSQL",
  rds: "Amazon RDS for PostgreSQL",
  azure: "Azure Database for PostgreSQL flexible server",
  cloudsql: "Google Cloud SQL for PostgreSQL",
  plain: "PostgreSQL (self-managed)",
};

export async function readPlatform(client: pg.Client): Promise<Platform> {
  const { rows } = await client.query(
    `SELECT current_setting('rds.logical_replication', true) AS rds_logical,
            current_setting('azure.replication_support', true) AS azure_replication,
            current_setting('azure.extensions', true) AS azure_extensions,
            current_setting('cloudsql.logical_decoding', true) AS cloudsql_logical,
            current_setting('cloudsql.iam_authentication', true) AS cloudsql_iam,
            to_regproc('aurora_version') IS NOT NULL AS aurora_function,
            EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_superuser') AS rds_role,
            EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'azure_pg_admin') AS azure_role,
            EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cloudsqlsuperuser') AS cloudsql_role,
            pg_is_in_recovery() AS in_recovery`,
  );
  const r = rows[0];
  const found = (entries: [string, unknown][]) => entries.filter(([, v]) => v !== null && v !== false && v !== "").map(([what]) => what);
  const aurora = found([["function aurora_version()", r.aurora_function]]);
  const rds = found([["setting rds.logical_replication", r.rds_logical], ["role rds_superuser", r.rds_role]]);
  const azure = found([["setting azure.replication_support", r.azure_replication], ["setting azure.extensions", r.azure_extensions], ["role azure_pg_admin", r.azure_role]]);
  const cloudsql = found([["setting cloudsql.logical_decoding", r.cloudsql_logical], ["setting cloudsql.iam_authentication", r.cloudsql_iam], ["role cloudsqlsuperuser", r.cloudsql_role]]);
  const inRecovery = r.in_recovery === true;
  if (aurora.length > 0) return { kind: "aurora", evidence: [...aurora, ...rds], inRecovery };
  if (rds.length > 0) return { kind: "rds", evidence: rds, inRecovery };
  if (azure.length > 0) return { kind: "azure", evidence: azure, inRecovery };
  if (cloudsql.length > 0) return { kind: "cloudsql", evidence: cloudsql, inRecovery };
  return { kind: "plain", evidence: [], inRecovery };
}

/** How to change a server setting on this platform (then restart where the setting needs it). */
export function settingFix(platform: PlatformKind, name: "wal_level" | "max_replication_slots" | "max_wal_senders", value: string | number): string {
  switch (platform) {
    case "rds":
    case "aurora": {
      const group = platform === "aurora" ? "the DB cluster parameter group" : "the DB parameter group";
      const parameter = name === "wal_level" ? "rds.logical_replication = 1 (it sets wal_level = logical)" : `${name} = ${value}`;
      return `in ${group} of the ${platform === "aurora" ? "cluster" : "instance"}, set ${parameter} (console, or aws rds modify-db-${platform === "aurora" ? "cluster-" : ""}parameter-group --parameters ParameterName=${name === "wal_level" ? "rds.logical_replication" : name},ParameterValue=${name === "wal_level" ? 1 : value},ApplyMethod=pending-reboot), then reboot the ${platform === "aurora" ? "writer instance" : "instance"}`;
    }
    case "azure":
      return `set the server parameter ${name} = ${value} (portal: Server parameters, or az postgres flexible-server parameter set --resource-group <rg> --server-name <server> --name ${name} --value ${value}), then restart the server`;
    case "cloudsql": {
      const flag = name === "wal_level" ? "cloudsql.logical_decoding=on" : `${name}=${value}`;
      return `set the database flag ${flag} (console: Edit → Flags, or gcloud sql instances patch <instance> --database-flags=${flag},… listing every flag the instance already has, since --database-flags replaces them all); the instance restarts. cloudsql.enable_pglogical is not needed`;
    }
    default:
      return `ALTER SYSTEM SET ${name} = ${value}; then restart PostgreSQL`;
  }
}

/** How to give `quotedUser` what logical replication needs on this platform. */
export function replicationGrantFix(platform: PlatformKind, quotedUser: string): string {
  switch (platform) {
    case "rds":
    case "aurora":
      return `GRANT rds_replication TO ${quotedUser}; (as the master user)`;
    case "azure":
      return `ALTER ROLE ${quotedUser} WITH REPLICATION; (as the server admin, a member of azure_pg_admin)`;
    case "cloudsql":
      return `ALTER ROLE ${quotedUser} WITH REPLICATION; (as a cloudsqlsuperuser, e.g. the postgres user)`;
    default:
      return `ALTER ROLE ${quotedUser} WITH REPLICATION;`;
  }
}

/** A standby cannot host the engine's slot (and publications, heartbeats need writes): name the endpoint to use. */
export function primaryEndpointFix(platform: PlatformKind): string {
  switch (platform) {
    case "aurora":
      return "set PG_HOST to the cluster (writer) endpoint, <cluster>.cluster-<id>.<region>.rds.amazonaws.com, not the reader endpoint (cluster-ro-) or a reader instance";
    case "rds":
      return "set PG_HOST to the primary instance's endpoint, not a read replica's";
    case "azure":
      return "set PG_HOST to the primary server, <server>.postgres.database.azure.com, not a read replica";
    case "cloudsql":
      return "set PG_HOST to the primary instance's address, not a read replica's";
    default:
      return "set PG_HOST to the primary, not a standby";
  }
}

/** What the database says about the keyless login of PG_USER (PG_AUTH other than password). */
export interface KeylessLoginFacts {
  auth: "aws-iam" | "azure-entra" | "gcp-iam";
  user: string;
  /** aws-iam: whether the server has the role rds_iam at all, and whether PG_USER is a member. */
  rdsIamRole: boolean;
  rdsIamMember: boolean;
  /** azure-entra: PG_USER carries the pgaadauth security label / is listed by pgaadauth_list_principals; undefined when neither can be read. */
  entraPrincipal: boolean | undefined;
  /** gcp-iam: cloudsql.iam_authentication, and membership in the role Cloud SQL puts IAM service accounts in (when it exists). */
  cloudSqlIamFlag: string | null;
  cloudSqlIamServiceAccountRole: boolean;
  cloudSqlIamServiceAccountMember: boolean;
}

/** Reads what decides whether the database side of the keyless login is done (nothing for password). */
export async function readKeylessLogin(client: pg.Client, auth: string, user: string): Promise<KeylessLoginFacts | undefined> {
  if (auth !== "aws-iam" && auth !== "azure-entra" && auth !== "gcp-iam") return undefined;
  const { rows } = await client.query(
    `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam') AS rds_iam_role,
            EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam') AND pg_has_role(current_user, 'rds_iam', 'MEMBER') AS rds_iam_member,
            EXISTS (SELECT 1 FROM pg_shseclabel l JOIN pg_roles r ON r.oid = l.objoid WHERE l.provider = 'pgaadauth' AND r.rolname = current_user) AS entra_label,
            EXISTS (SELECT 1 FROM pg_shseclabel WHERE provider = 'pgaadauth') AS entra_labels_exist,
            to_regproc('pgaadauth_list_principals') IS NOT NULL AS entra_function,
            current_setting('cloudsql.iam_authentication', true) AS cloudsql_iam,
            EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cloudsqliamserviceaccount') AS cloudsql_sa_role,
            EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cloudsqliamserviceaccount') AND pg_has_role(current_user, 'cloudsqliamserviceaccount', 'MEMBER') AS cloudsql_sa_member`,
  );
  const r = rows[0];
  let entraPrincipal: boolean | undefined = r.entra_label ? true : r.entra_labels_exist ? false : undefined;
  if (!entraPrincipal && r.entra_function && auth === "azure-entra") {
    // The extension's own list (admins and others); it may be unavailable to this role, then the label decides.
    try {
      const listed = await client.query("SELECT EXISTS (SELECT 1 FROM pgaadauth_list_principals(false) p WHERE p.rolname = current_user) AS listed");
      entraPrincipal = listed.rows[0].listed === true;
    } catch {
      // not readable here: keep what the labels said
    }
  }
  return {
    auth,
    user,
    rdsIamRole: r.rds_iam_role,
    rdsIamMember: r.rds_iam_member,
    entraPrincipal,
    cloudSqlIamFlag: r.cloudsql_iam,
    cloudSqlIamServiceAccountRole: r.cloudsql_sa_role,
    cloudSqlIamServiceAccountMember: r.cloudsql_sa_member,
  };
}

/**
 * The doctor line for the database side of a keyless login: what the DBA must have done once for
 * PG_USER, checked where the server shows it, else named as what to confirm.
 */
export function keylessLoginCheck(f: KeylessLoginFacts, quotedUser: string): { ok: boolean; warning?: boolean; detail: string; fix?: string } {
  switch (f.auth) {
    case "aws-iam":
      if (!f.rdsIamRole) {
        return { ok: false, detail: "PG_AUTH=aws-iam, but this server has no rds_iam role: IAM database authentication exists only on Amazon RDS and Aurora", fix: "point PG_HOST at the RDS/Aurora endpoint, or log in with PG_AUTH=password" };
      }
      return f.rdsIamMember
        ? { ok: true, detail: `PG_AUTH=aws-iam: ${f.user} is a member of rds_iam (IAM authentication tokens are accepted for it)` }
        : { ok: false, detail: `PG_AUTH=aws-iam: ${f.user} is not a member of rds_iam, so RDS rejects its IAM authentication tokens`, fix: `GRANT rds_iam TO ${quotedUser}; (as the master user; a member of rds_iam can log in only with IAM tokens)` };
    case "azure-entra": {
      const create = `as the server's Entra admin, in the postgres database: SELECT * FROM pgaadauth_create_principal('${f.user}', false, false); (PG_USER must be the managed identity's name)`;
      if (f.entraPrincipal === true) return { ok: true, detail: `PG_AUTH=azure-entra: ${f.user} is a Microsoft Entra principal on this server` };
      if (f.entraPrincipal === false) return { ok: false, detail: `PG_AUTH=azure-entra: ${f.user} is not a Microsoft Entra principal on this server, so its Entra tokens are rejected`, fix: create };
      return { ok: true, warning: true, detail: `PG_AUTH=azure-entra: whether ${f.user} is a Microsoft Entra principal cannot be read on this server (no pgaadauth security labels, no pgaadauth_list_principals)`, fix: `enable Microsoft Entra authentication on the server; ${create}` };
    }
    case "gcp-iam": {
      const name = /\.gserviceaccount\.com$/.test(f.user)
        ? { ok: false, detail: `PG_AUTH=gcp-iam: PG_USER=${f.user} is a full service account e-mail; Cloud SQL names the IAM user without .gserviceaccount.com`, fix: `set PG_USER=${f.user.replace(/\.gserviceaccount\.com$/, "")}` }
        : undefined;
      if (name) return name;
      const flag = f.cloudSqlIamFlag;
      if (flag !== null && flag !== "on") {
        return { ok: false, detail: `PG_AUTH=gcp-iam: the database flag cloudsql.iam_authentication is ${flag}, so Cloud SQL accepts no IAM login`, fix: "set the database flag cloudsql.iam_authentication=on (console: Edit → Flags, or gcloud sql instances patch <instance> --database-flags=cloudsql.iam_authentication=on,… listing every flag the instance already has)" };
      }
      const addUser = `gcloud sql users create ${f.user} --instance=<instance> --type=cloud_iam_service_account; the service account needs roles/cloudsql.instanceUser`;
      if (f.cloudSqlIamServiceAccountRole && !f.cloudSqlIamServiceAccountMember) {
        return { ok: false, detail: `PG_AUTH=gcp-iam: ${f.user} is not a Cloud SQL IAM service account user (not in cloudsqliamserviceaccount)`, fix: addUser };
      }
      if (flag === "on" && f.cloudSqlIamServiceAccountMember) return { ok: true, detail: `PG_AUTH=gcp-iam: ${f.user} is a Cloud SQL IAM service account user, cloudsql.iam_authentication=on` };
      return { ok: true, warning: true, detail: `PG_AUTH=gcp-iam: ${f.user} logs in as the Cloud SQL IAM user of the service account${flag === "on" ? " (cloudsql.iam_authentication=on)" : "; this server shows no cloudsql.iam_authentication flag"}`, fix: `confirm the database flag cloudsql.iam_authentication=on and ${addUser}` };
    }
  }
}
