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
