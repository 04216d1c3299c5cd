/**
 * AWS: Unity Catalog reads the landing bucket through an IAM role that Databricks' UC master role
 * assumes with the storage credential's external ID. Databricks also requires the role to be able
 * to assume itself; that statement trusts the account root narrowed to this role's own ARN, so the
 * trust policy is valid before the role exists. The role's permissions cover the landing prefix of
 * the landing bucket and nothing else.
 */
import * as pulumi from "@pulumi/pulumi";
import * as databricks from "@pulumi/databricks";
import * as iam from "@pulumi/aws/iam";
import { getCallerIdentityOutput } from "@pulumi/aws/getCallerIdentity";
import { AwsLanding, UC_MASTER_ROLE_ARN } from "./landing";
import { iamRoleName, ucObjectName } from "./naming";
import { LandingCredential } from "./credential";
import { afterPropagation, AWS_IAM_PROPAGATION_MS } from "./propagation";

export interface AwsLandingCredentialArgs {
  landing: AwsLanding;
  /** Stack-unique prefix for names, e.g. "cdc-prod". */
  namePrefix: string;
  tags: Record<string, string>;
}

/** The trust policy Databricks documents for Unity Catalog roles (with the self-assume statement). */
export function unityCatalogTrustPolicy(p: { ucMasterRoleArn: string; externalId: string; roleArn: string; accountRootArn: string }) {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "UnityCatalogMasterRole",
        Effect: "Allow",
        Principal: { AWS: [p.ucMasterRoleArn] },
        Action: "sts:AssumeRole",
        Condition: { StringEquals: { "sts:ExternalId": p.externalId } },
      },
      {
        Sid: "ExplicitSelfRoleAssumption",
        Effect: "Allow",
        Principal: { AWS: p.accountRootArn },
        Action: "sts:AssumeRole",
        Condition: { ArnLike: { "aws:PrincipalArn": p.roleArn }, StringEquals: { "sts:ExternalId": p.externalId } },
      },
    ],
  };
}

/** Read/write on the landing prefix only (plus listing it), self-assume, and the bucket's KMS key when there is one. */
export function landingAccessPolicy(p: { bucketArn: string; prefix: string; roleArn: string; kmsKeyArn?: string }) {
  const prefix = p.prefix.replace(/^\/+|\/+$/g, "");
  const objects = prefix ? `${p.bucketArn}/${prefix}/*` : `${p.bucketArn}/*`;
  const statements: Record<string, unknown>[] = [
    {
      Sid: "LandingObjects",
      Effect: "Allow",
      Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
      Resource: [objects],
    },
    {
      Sid: "ListLandingPrefix",
      Effect: "Allow",
      Action: ["s3:ListBucket"],
      Resource: [p.bucketArn],
      ...(prefix ? { Condition: { StringLike: { "s3:prefix": [prefix, `${prefix}/*`] } } } : {}),
    },
    {
      Sid: "LandingBucketLocation",
      Effect: "Allow",
      Action: ["s3:GetBucketLocation"],
      Resource: [p.bucketArn],
    },
    {
      Sid: "SelfAssume",
      Effect: "Allow",
      Action: ["sts:AssumeRole"],
      Resource: [p.roleArn],
    },
  ];
  if (p.kmsKeyArn) {
    statements.push({
      Sid: "LandingKmsKey",
      Effect: "Allow",
      Action: ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*"],
      Resource: [p.kmsKeyArn],
    });
  }
  return { Version: "2012-10-17", Statement: statements };
}

export class AwsLandingCredential extends pulumi.ComponentResource implements LandingCredential {
  readonly credentialName: pulumi.Output<string>;
  readonly roleArn: pulumi.Output<string>;
  /** Everything the external location must wait for (the role must allow access before UC validates it). */
  readonly accessGranted: pulumi.Resource[];

  constructor(name: string, args: AwsLandingCredentialArgs, opts?: pulumi.ComponentResourceOptions) {
    super("postgres-cdc-multicloud:aws:DatabricksLandingCredential", name, {}, opts);
    const { landing } = args;

    const accountId = landing.accountId ? pulumi.output(landing.accountId) : getCallerIdentityOutput({}, { parent: this }).accountId;
    // The bucket's partition is the role's (aws, aws-us-gov, aws-cn): no lookup needed.
    const partition = pulumi.output(landing.bucketArn).apply((arn) => {
      const m = /^arn:([a-z-]+):s3:::/.exec(arn);
      if (!m) throw new Error(`landing bucketArn "${arn}" is not an S3 bucket ARN (arn:aws:s3:::bucket)`);
      return m[1];
    });
    const roleName = iamRoleName(args.namePrefix, "uc-landing");
    // Computed, not taken from the role: the role's trust policy needs the credential's external
    // ID, so the credential has to exist first.
    const roleArn = pulumi.interpolate`arn:${partition}:iam::${accountId}:role/${roleName}`;

    const credential = new databricks.StorageCredential(
      `${name}-credential`,
      {
        name: ucObjectName(args.namePrefix, "landing"),
        comment: "postgres-cdc-multicloud: read the CDC landing zone",
        awsIamRole: { roleArn },
      },
      { parent: this },
    );
    const iamRole = credential.awsIamRole.apply((r) => {
      if (!r) throw new Error("the storage credential did not report its AWS IAM role settings");
      return r;
    });

    const role = new iam.Role(
      `${name}-role`,
      {
        name: roleName,
        description: "Unity Catalog access to the postgres-cdc-multicloud landing zone",
        assumeRolePolicy: pulumi
          .all([iamRole, partition, accountId, roleArn])
          .apply(([r, part, account, arn]) =>
            JSON.stringify(
              unityCatalogTrustPolicy({
                ucMasterRoleArn: r.unityCatalogIamArn || UC_MASTER_ROLE_ARN,
                externalId: r.externalId,
                roleArn: arn,
                accountRootArn: `arn:${part}:iam::${account}:root`,
              }),
            ),
          ),
        tags: args.tags,
      },
      { parent: this },
    );

    const policy = new iam.RolePolicy(
      `${name}-landing-access`,
      {
        role: role.id,
        policy: pulumi
          .all([landing.bucketArn, landing.prefix, roleArn, landing.kmsKeyArn])
          .apply(([bucketArn, prefix, arn, kmsKeyArn]) => JSON.stringify(landingAccessPolicy({ bucketArn, prefix, roleArn: arn, kmsKeyArn }))),
      },
      { parent: this },
    );

    // The external location uses the credential only once a freshly created role can be assumed.
    this.credentialName = afterPropagation(
      pulumi.all([credential.name, policy.id]).apply(([n]) => n),
      role.createDate,
      AWS_IAM_PROPAGATION_MS,
    );
    this.roleArn = role.arn;
    this.accessGranted = [role, policy];
    this.registerOutputs({ credentialName: this.credentialName, roleArn: this.roleArn });
  }
}
