/**
 * A password kept in Secrets Manager (the PostgreSQL password, the Kafka SCRAM password): the task
 * gets it through the execution role (ECS `secrets`), never as a plain value. A deleted secret
 * keeps its name for the recovery window, so the name ends in a suffix that is new after each
 * destroy.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { checkName } from "../limits";
import { recreatableSuffix } from "../recreatable";

export interface StoredPasswordArgs {
  baseName: string;
  /** What the secret holds, in its name: `<baseName>/<key>-<suffix>`. */
  key: "postgres-password" | "kafka-password";
  description: string;
  password: pulumi.Input<string>;
  /** Days Secrets Manager keeps a deleted secret (0 deletes at once). */
  recoveryWindowInDays: number;
  tags: Record<string, string>;
}

/** The secret and its value as children of `parent` (named from `name`); its ARN and the current version's id. */
export function storePassword(name: string, args: StoredPasswordArgs, parent: pulumi.Resource): { arn: pulumi.Output<string>; versionId: pulumi.Output<string> } {
  const secret = new aws.secretsmanager.Secret(`${name}-secret`, {
    name: recreatableSuffix(`${name}-suffix`, parent).apply((suffix) => checkName("secretsManager", `${args.baseName}/${args.key}-${suffix}`)),
    description: args.description,
    recoveryWindowInDays: args.recoveryWindowInDays,
    tags: args.tags,
  }, { parent });
  const version = new aws.secretsmanager.SecretVersion(`${name}-value`, {
    secretId: secret.id,
    secretString: pulumi.secret(args.password),
  }, { parent });
  return { arn: secret.arn, versionId: version.versionId };
}
