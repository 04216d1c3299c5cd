/**
 * The one-time database-side step of each keyless login mode (postgres.auth), as text: the
 * `databaseLogin.setup` stack output after `pulumi up`, and what `cdc-platform init` prints when
 * it writes a keyless stack. Plain strings, no provider SDK, so the wizard can load it.
 */
import type { PgAuthMode } from "../container/src/source/auth";

/** What the DBA does once so that `user` (the role the engine logs in as) accepts the engine's tokens. */
export function databaseLoginSetup(auth: Exclude<PgAuthMode, "password">, user: string, cloudSqlInstance = "<instance>"): string {
  switch (auth) {
    case "aws-iam":
      return `enable IAM database authentication on the instance or cluster (aws rds modify-db-instance --enable-iam-database-authentication, or modify-db-cluster); on the database: GRANT rds_iam TO ${user}; (and rds_replication and SELECT on the captured tables; doctor lists each)`;
    case "azure-entra":
      return `enable Microsoft Entra authentication on the server; as its Entra admin, in the postgres database: SELECT * FROM pgaadauth_create_principal('${user}', false, false); then grant "${user}" REPLICATION and SELECT on the captured tables (doctor lists each)`;
    case "gcp-iam":
      return `set the database flag cloudsql.iam_authentication=on; gcloud sql users create ${user} --instance=${cloudSqlInstance} --type=cloud_iam_service_account; then grant "${user}" REPLICATION and SELECT on the captured tables (doctor lists each)`;
  }
}
