/**
 * A password kept in the stack's Key Vault (the PostgreSQL password, the Kafka SCRAM password):
 * the Container App resolves it with the engine's identity, never as a plain value.
 */
import * as keyvault from "@pulumi/azure-native/keyvault";
import * as pulumi from "@pulumi/pulumi";
import { checkName } from "../limits";

export interface VaultPasswordArgs {
  /** The secret's name in the vault. */
  key: "postgres-password" | "kafka-password";
  vaultName: pulumi.Input<string>;
  resourceGroupName: pulumi.Input<string>;
  password: pulumi.Input<string>;
  tags: Record<string, string>;
}

export interface VaultPassword {
  /** ARM id of the secret: the scope its read grant is limited to. */
  secretId: pulumi.Output<string>;
  /** Versionless URI: the app reads the latest version. */
  secretUri: pulumi.Output<string>;
  /** The current version (new whenever the password changes): the app's revision carries it so a new password rolls it. */
  version: pulumi.Output<string>;
}

/** The secret as a child of `parent` (named `<name>-secret`). */
export function storeVaultPassword(name: string, args: VaultPasswordArgs, parent: pulumi.Resource): VaultPassword {
  const secret = new keyvault.Secret(`${name}-secret`, {
    secretName: checkName("keyVaultSecret", args.key),
    vaultName: args.vaultName,
    resourceGroupName: args.resourceGroupName,
    properties: { value: pulumi.secret(args.password), contentType: "text/plain" },
    tags: args.tags,
  }, { parent });
  return {
    secretId: secret.id,
    secretUri: secret.properties.secretUri,
    // A version id is not secret; only the value is.
    version: pulumi.unsecret(secret.properties.secretUriWithVersion).apply((uri) => uri.split("/").pop() ?? ""),
  };
}
