/**
 * A password kept in Secret Manager (the PostgreSQL password, the Kafka SCRAM password), with
 * automatic replication: Cloud Run resolves it at start from a reference pinned to its version,
 * never as a plain value.
 */
import * as secretmanager from "@pulumi/gcp/secretmanager";
import * as pulumi from "@pulumi/pulumi";
import { checkName } from "../limits";

export interface StoredPasswordArgs {
  baseName: string;
  project: string;
  /** What the secret holds, in its id: `<baseName>-<key>`. */
  key: "postgres-password" | "kafka-password";
  password: pulumi.Input<string>;
  deletionProtection: boolean;
  labels: Record<string, string>;
  /** The project APIs; the secret waits for them. */
  apis: pulumi.Resource;
}

/** The secret and its version as children of `parent` (named from `name`). */
export function storePassword(name: string, args: StoredPasswordArgs, parent: pulumi.Resource): { secret: secretmanager.Secret; version: secretmanager.SecretVersion } {
  const secret = new secretmanager.Secret(`${name}-secret`, {
    secretId: checkName("gcpId", `${args.baseName}-${args.key}`),
    project: args.project,
    replication: { auto: {} },
    deletionProtection: args.deletionProtection,
    labels: args.labels,
  }, { parent, dependsOn: [args.apis] });
  const version = new secretmanager.SecretVersion(`${name}-value`, {
    secret: secret.id,
    secretData: pulumi.secret(args.password),
  }, { parent, dependsOn: [args.apis] });
  return { secret, version };
}
