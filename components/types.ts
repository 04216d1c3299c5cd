/**
 * The cloud-agnostic shape of a deployment. Every target (components/aws, azure, gcp, local)
 * implements the same concepts — landing storage, container registry, engine image, password
 * secret, logs, engine service — and hands the top-level component these facts.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { Cloud, PlatformSettings } from "./settings";

/**
 * Where the engine lands files, with everything a consumer of the landing zone (the Databricks
 * component, outside tools) needs to grant itself access the cloud's own way.
 */
export interface LandingFacts {
  cloud: Cloud;
  /** The engine's SINK_URL: s3://bucket/prefix, abfss://container@account.dfs.core.windows.net/prefix, gs://bucket/prefix or file:///dir. */
  url: pulumi.Output<string>;
  /** The bucket/container root (same scheme, no prefix): external locations and checkpoints go under it. */
  rootUrl: pulumi.Output<string>;
  /** The prefix inside the bucket/container the engine writes under (no leading/trailing slash). */
  prefix: string;
  /** AWS region, Azure location or GCP region ("local" for the local target). */
  region: string;
  /** Tags/labels every resource of this stack carries. */
  tags: Record<string, string>;
  /** AWS: the S3 bucket. */
  aws?: { bucketName: pulumi.Output<string>; bucketArn: pulumi.Output<string>; accountId: pulumi.Output<string> };
  /** Azure: the ADLS Gen2 account and container, and the resource group they live in. */
  azure?: {
    resourceGroupName: pulumi.Output<string>;
    storageAccountName: pulumi.Output<string>;
    storageAccountId: pulumi.Output<string>;
    containerName: pulumi.Output<string>;
    /** ARM id of the blob container: the scope to grant data roles on. */
    containerId: pulumi.Output<string>;
    subscriptionId: pulumi.Output<string>;
    tenantId: pulumi.Output<string>;
  };
  /** GCP: the GCS bucket and its project. */
  gcp?: { project: string; bucketName: pulumi.Output<string> };
  /** Local: the host directory the container writes into. */
  local?: { directory: string };
}

/** A registry the engine image is pushed to, with short-lived push credentials. */
export interface RegistryFacts {
  /** Registry host (e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com). */
  server: pulumi.Output<string>;
  /** Full repository name without tag, where the engine image goes. */
  repository: pulumi.Output<string>;
  /** Push credentials; the password is a secret and short-lived (token based, no admin users). */
  username: pulumi.Output<string>;
  password: pulumi.Output<string>;
}

/** The running engine. */
export interface ServiceFacts {
  name: pulumi.Output<string>;
  id: pulumi.Output<string>;
  /** Where its logs are: a CloudWatch log group, a Log Analytics workspace, a Cloud Logging bucket, or `docker logs NAME`. */
  logLocation: pulumi.Output<string>;
  /** What it runs in: the ECS cluster, the Container Apps environment, the Cloud Run project/region, the Docker host. */
  runtime: pulumi.Output<string>;
  /** AWS: the engine's own security group (let your database admit it). */
  securityGroupId?: pulumi.Output<string>;
  /** The identities the engine acts as, by what they are (e.g. taskRoleArn, principalId, serviceAccountEmail). */
  identities: Record<string, pulumi.Output<string>>;
  /**
   * Keyless database login (postgres.auth other than password): the PostgreSQL role the engine logs
   * in as, and the one-time database-side step for it (docs/deploy.md "Keyless database login").
   */
  databaseLogin?: { user: pulumi.Output<string>; setup: pulumi.Output<string> };
  /** Shell commands to paste: follow the engine's logs, and see whether it is up. */
  commands: { tailLogs: pulumi.Output<string>; checkHealth: pulumi.Output<string> };
}

/** What a target builds; the top-level component exports it. */
export interface TargetOutputs {
  landing: LandingFacts;
  /** The exact image the service runs: repository@sha256:digest. */
  imageRef: pulumi.Output<string>;
  /** The first (or only) engine. */
  service: ServiceFacts;
  /** With `pipelines`: every engine, by pipeline name. */
  pipelines?: Record<string, ServiceFacts>;
  /** With `sink: {kind: kafka}`: where the engines publish (the lakehouse's bronze reads the topics there). */
  kafka?: KafkaFacts;
}

/** The Kafka cluster the engines publish to and their topics' prefix. */
export interface KafkaFacts {
  bootstrap: pulumi.Output<string>;
  topicPrefix: string;
}

/**
 * What every target implements: build the concepts under `parent` (the platform named `name`; the
 * children's names start with it), return the facts.
 */
export type DeployTarget = (name: string, settings: PlatformSettings, parent: pulumi.Resource) => TargetOutputs;
