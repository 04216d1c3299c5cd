/**
 * SASL for the Kafka sink, by KAFKA_AUTH. Only SCRAM takes a stored secret; the managed services
 * use the platform identity through their SDK's credential providers, as OAUTHBEARER tokens the
 * client asks for at each (re-)authentication:
 * - aws-msk-iam: Amazon MSK's IAM access control, the token signed with the task role's
 *   credentials (aws-msk-iam-sasl-signer-js, the default AWS credential chain).
 * - azure-entra: Azure Event Hubs' Kafka endpoint, a Microsoft Entra token for
 *   `https://<namespace>.servicebus.windows.net/.default` (DefaultAzureCredential: the managed identity).
 * - google-adc: Google Cloud Managed Service for Apache Kafka, an access token from application
 *   default credentials wrapped in the JWT-shaped token its OAUTHBEARER endpoint expects.
 */
import type { KafkaSettings } from "../config";

export interface SaslOptions {
  mechanism: "SCRAM-SHA-256" | "SCRAM-SHA-512" | "OAUTHBEARER";
  username?: string;
  password?: string;
  token?: () => Promise<string>;
}

/** The credential sources, replaceable in tests (where no cloud identity exists). */
export interface KafkaAuthDeps {
  awsToken?: (region: string) => Promise<string>;
  azureToken?: (scope: string) => Promise<string>;
  googleAccessToken?: () => Promise<{ token: string; principal: string; expiresAtMs?: number }>;
  now?: () => number;
}

const b64url = (s: string) => Buffer.from(s).toString("base64url");

/** The OAUTHBEARER token Google Cloud Managed Kafka accepts: header.payload.access-token, each base64url. */
export function googleKafkaToken(accessToken: string, principal: string, nowMs: number, expiresAtMs = nowMs + 3_600_000): string {
  const header = { typ: "JWT", alg: "GOOG_OAUTH2_TOKEN" };
  const payload = { exp: Math.floor(expiresAtMs / 1000), iat: Math.floor(nowMs / 1000), iss: "Google", sub: principal, scope: "kafka" };
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}.${b64url(accessToken)}`;
}

/** `https://<namespace>.servicebus.windows.net/.default` for an Event Hubs bootstrap `<namespace>.servicebus.windows.net:9093`. */
export function eventHubsScope(brokers: string[]): string {
  const host = brokers[0].replace(/:\d+$/, "");
  return `https://${host}/.default`;
}

async function defaultAwsToken(region: string): Promise<string> {
  const { generateAuthToken } = await import("aws-msk-iam-sasl-signer-js");
  return (await generateAuthToken({ region })).token;
}

async function defaultAzureToken(scope: string): Promise<string> {
  const { DefaultAzureCredential } = await import("@azure/identity");
  const token = await new DefaultAzureCredential().getToken(scope);
  if (!token) throw new Error(`no Microsoft Entra token for ${scope}`);
  return token.token;
}

async function defaultGoogleAccessToken(): Promise<{ token: string; principal: string; expiresAtMs?: number }> {
  const { GoogleAuth } = await import("google-auth-library");
  const auth = new GoogleAuth({ scopes: ["https://www.googleapis.com/auth/cloud-platform"] });
  const client = await auth.getClient();
  const { token } = await client.getAccessToken();
  if (!token) throw new Error("application default credentials gave no access token");
  const credentials = await auth.getCredentials();
  const principal = credentials.client_email;
  if (!principal) throw new Error("application default credentials name no service account (client_email); run the engine as a service account");
  return { token, principal, expiresAtMs: (client.credentials as { expiry_date?: number }).expiry_date ?? undefined };
}

export function kafkaSasl(settings: KafkaSettings, brokers: string[], deps: KafkaAuthDeps = {}): SaslOptions | undefined {
  switch (settings.auth) {
    case "none":
      return undefined;
    case "scram-sha-256":
    case "scram-sha-512":
      return { mechanism: settings.auth === "scram-sha-256" ? "SCRAM-SHA-256" : "SCRAM-SHA-512", username: settings.username, password: settings.password };
    case "aws-msk-iam": {
      const region = settings.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? /\.kafka(?:-serverless)?\.([a-z0-9-]+)\.amazonaws\.com/.exec(brokers[0])?.[1];
      if (!region) throw new Error("KAFKA_AUTH=aws-msk-iam needs the region: set KAFKA_REGION (or AWS_REGION)");
      return { mechanism: "OAUTHBEARER", token: () => (deps.awsToken ?? defaultAwsToken)(region) };
    }
    case "azure-entra":
      return { mechanism: "OAUTHBEARER", token: () => (deps.azureToken ?? defaultAzureToken)(eventHubsScope(brokers)) };
    case "google-adc":
      return {
        mechanism: "OAUTHBEARER",
        token: async () => {
          const { token, principal, expiresAtMs } = await (deps.googleAccessToken ?? defaultGoogleAccessToken)();
          return googleKafkaToken(token, principal, (deps.now ?? Date.now)(), expiresAtMs);
        },
      };
  }
}
