/**
 * How the engine proves who it is to PostgreSQL: PG_PASSWORD, or a short-lived token from the
 * platform identity (keyless, like the sinks): an RDS/Aurora IAM authentication token signed with
 * the task role, a Microsoft Entra token of the managed identity (Azure flexible server), or a
 * Google OAuth token of the service account (Cloud SQL IAM database authentication). Tokens
 * expire (RDS: 15 minutes), so node-postgres asks for one on every connection; the SDKs sign or
 * refresh as needed. The SDKs are loaded only when their mode is chosen.
 */
import type { EngineConfig } from "../config";

export const PG_AUTH_MODES = ["password", "aws-iam", "azure-entra", "gcp-iam"] as const;
export type PgAuthMode = (typeof PG_AUTH_MODES)[number];

/** Entra ID resource of Azure Database for PostgreSQL (the token's audience). */
export const AZURE_POSTGRES_SCOPE = "https://ossrdbms-aad.database.windows.net/.default";
/** The OAuth scope Cloud SQL IAM database authentication accepts. */
export const CLOUDSQL_LOGIN_SCOPE = "https://www.googleapis.com/auth/sqlservice.login";

/** A password node-postgres calls for at every connection. */
export type PasswordProvider = () => Promise<string>;

/** Test seams: a credential source instead of the platform's default chain. */
export interface AuthOverrides {
  awsCredentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/** The node-postgres `password` for the configured PG_AUTH: the password itself, or a token provider. */
export function passwordFor(config: EngineConfig, overrides: AuthOverrides = {}): string | PasswordProvider | undefined {
  const { pg } = config;
  switch (pg.auth) {
    case "password":
      return pg.password;
    case "aws-iam": {
      let signer: { getAuthToken(): Promise<string> } | undefined;
      return async () => {
        if (!signer) {
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          const { Signer } = require("@aws-sdk/rds-signer") as typeof import("@aws-sdk/rds-signer");
          signer = new Signer({ hostname: pg.host, port: pg.port, username: pg.user, region: pg.authRegion, credentials: overrides.awsCredentials });
        }
        return tokenOrExplain("aws-iam", () => signer!.getAuthToken());
      };
    }
    case "azure-entra": {
      let credential: import("@azure/identity").TokenCredential | undefined;
      return async () => {
        if (!credential) {
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          const { DefaultAzureCredential } = require("@azure/identity") as typeof import("@azure/identity");
          // AZURE_CLIENT_ID picks the user-assigned managed identity, as for the sink.
          credential = new DefaultAzureCredential();
        }
        return tokenOrExplain("azure-entra", async () => {
          const token = await credential!.getToken(AZURE_POSTGRES_SCOPE);
          if (!token) throw new Error("no token returned");
          return token.token;
        });
      };
    }
    case "gcp-iam": {
      let auth: import("google-auth-library").GoogleAuth | undefined;
      return async () => {
        if (!auth) {
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          const { GoogleAuth } = require("google-auth-library") as typeof import("google-auth-library");
          auth = new GoogleAuth({ scopes: [CLOUDSQL_LOGIN_SCOPE] });
        }
        return tokenOrExplain("gcp-iam", async () => {
          const token = await auth!.getAccessToken();
          if (!token) throw new Error("no token returned");
          return token;
        });
      };
    }
  }
}

/** Thrown when the platform identity gives no token; says which identity and what to check. */
export class TokenError extends Error {
  constructor(
    readonly mode: PgAuthMode,
    cause: unknown,
  ) {
    const what = {
      "password": "",
      "aws-iam": "an RDS IAM authentication token from the AWS credentials (the ECS task role; AWS_REGION or PG_AUTH_REGION sets the region)",
      "azure-entra": "a Microsoft Entra token from the managed identity (AZURE_CLIENT_ID names a user-assigned one)",
      "gcp-iam": "a Google OAuth token from the application default credentials (the Cloud Run service account)",
    }[mode];
    super(`PG_AUTH=${mode}: could not get ${what}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = "TokenError";
  }
}

async function tokenOrExplain(mode: PgAuthMode, get: () => Promise<string>): Promise<string> {
  try {
    return await get();
  } catch (err) {
    throw new TokenError(mode, err);
  }
}

/** The database-side step each mode needs, for error messages and doctor. */
export function databaseSideFix(config: EngineConfig): string {
  const { user } = config.pg;
  switch (config.pg.auth) {
    case "aws-iam":
      return `on the database: GRANT rds_iam TO ${user}; and give the task role rds-db:connect on arn:aws:rds-db:<region>:<account>:dbuser:<DbiResourceId or cluster resource id>/${user} (enable IAM database authentication on the instance or cluster)`;
    case "azure-entra":
      return `enable Microsoft Entra authentication on the server and, as its Entra admin in the postgres database: SELECT * FROM pgaadauth_create_principal('${user}', false, false); where ${user} is the managed identity's name (PG_USER must be that name)`;
    case "gcp-iam":
      return `enable the flag cloudsql.iam_authentication=on, add the service account as an IAM database user (gcloud sql users create ${user} --instance=<instance> --type=cloud_iam_service_account, PG_USER = its e-mail without .gserviceaccount.com), grant it roles/cloudsql.instanceUser, and GRANT the engine's privileges to "${user}"`;
    default:
      return "check PG_USER and PG_PASSWORD, and that the role may log in";
  }
}
