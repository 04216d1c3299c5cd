/**
 * What the Databricks part needs to know about the landing storage another component created:
 * enough to grant Unity Catalog access to exactly that bucket/container (and nothing else).
 */
import * as pulumi from "@pulumi/pulumi";
import { ROLES } from "../azure/roles";

interface LandingCommon {
  /**
   * The engine's SINK_URL: `s3://bucket/prefix`, `abfss://container@account.dfs.core.windows.net/prefix`
   * or `gs://bucket/prefix`. Databricks reads `<landingUrl>/cdc.<schema>.<table>/…`.
   */
  landingUrl: pulumi.Input<string>;
}

export interface AwsLanding extends LandingCommon {
  cloud: "aws";
  /** The landing bucket's name. */
  bucketName: pulumi.Input<string>;
  /** The landing bucket's ARN (arn:aws:s3:::bucket). */
  bucketArn: pulumi.Input<string>;
  /** Key prefix of the landing zone inside the bucket, without leading/trailing "/"; "" for the whole bucket. */
  prefix: pulumi.Input<string>;
  /** KMS key that encrypts the bucket, when SSE-KMS is used: Databricks then needs to decrypt with it. */
  kmsKeyArn?: pulumi.Input<string>;
  /** AWS account ID of the role to create; looked up from the caller identity when omitted. */
  accountId?: pulumi.Input<string>;
}

export interface AzureLanding extends LandingCommon {
  cloud: "azure";
  /** Resource group the access connector is created in (usually the landing storage's). */
  resourceGroupName: pulumi.Input<string>;
  /** Azure region of the access connector (the storage account's region). */
  location: pulumi.Input<string>;
  storageAccountName: pulumi.Input<string>;
  containerName: pulumi.Input<string>;
  /**
   * ARM ID of the landing container
   * (/subscriptions/…/resourceGroups/…/providers/Microsoft.Storage/storageAccounts/<account>/blobServices/default/containers/<container>):
   * the only scope the access connector's role assignment gets.
   */
  containerId: pulumi.Input<string>;
}

export interface GcpLanding extends LandingCommon {
  cloud: "gcp";
  /** The landing bucket's name. */
  bucketName: pulumi.Input<string>;
}

export type LandingStorageFacts = AwsLanding | AzureLanding | GcpLanding;

/** Storage Blob Data Contributor, a built-in Azure role (same ID in every tenant). */
export const STORAGE_BLOB_DATA_CONTRIBUTOR = ROLES.storageBlobDataContributor;

/**
 * Databricks' Unity Catalog master role, which assumes customer roles on the standard AWS
 * partition; the storage credential reports the one it really uses, which takes precedence.
 */
export const UC_MASTER_ROLE_ARN = "arn:aws:iam::414351767826:role/unity-catalog-prod-UCMasterRole-14S5ZJVKOTYTL";
