/**
 * The stack's settings, read once from Pulumi config and validated here, at the edge. Everything
 * past this file receives typed values; a wrong or missing setting stops `pulumi preview` with one
 * message that names the key and shows a command that sets a valid value.
 *
 * Scalars are declared (type, description, default) in Pulumi.yaml; the defaults below are the
 * same values, because the Pulumi CLI applies Pulumi.yaml defaults but unit tests and automation
 * without the CLI do not (tests/pulumi/settings.test.ts keeps the two in step). Structured settings
 * (`postgres`, `batching`, `network`, `tags`) are objects read with `requireObject`/`getObject`.
 */
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { ConfigError as EngineConfigError, loadConfig, SNAPSHOT_MODES, VARIABLES } from "../container/src/config";
import { cloudRunSizeProblem, containerAppSizeProblem, fargateSizeProblem, LIMITS, NAME_RULES } from "./limits";
import { PG_AUTH_MODES, type PgAuthMode } from "../container/src/source/auth";
import { azureEngineIdentityName, baseName, cloudSqlIamUser, gcpServiceAccountId, pipelineBaseName } from "./naming";
import { kafkaEnvironment, kafkaSinkProblems, sinkSchema, type SinkSettings } from "./kafka";

export const PROJECT = "postgres-cdc-multicloud";
export const CLOUDS = ["local", "aws", "azure", "gcp"] as const;
export type Cloud = (typeof CLOUDS)[number];

/** Thrown for bad settings; the message is the one a user sees from `pulumi preview`. */
export class SettingsError extends pulumi.RunError {
  constructor(readonly problems: string[]) {
    super(problems.length === 1 ? problems[0] : `invalid stack configuration:\n  ${problems.join("\n  ")}`);
    this.name = "SettingsError";
  }
}

/** One problem line: the key, what is wrong, and a command that sets a valid value. */
function problem(key: string, what: string, example: string, path = false): string {
  const full = key.includes(":") ? key : `${PROJECT}:${key}`;
  return `${full} ${what}; for example: pulumi config set ${path ? "--path " : ""}${full} ${example}`;
}

const pgIdentifier = /^[a-z_][a-z0-9_$]{0,62}$/;
const LANDING_PREFIX = /^[a-z0-9][a-z0-9._/-]{0,200}$/;
const GCP_LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const GCP_LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;
const tableName = /^[A-Za-z_][A-Za-z0-9_$]*\.[A-Za-z_][A-Za-z0-9_$]*$/;

const postgresSchema = z.object({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(5432),
  database: z.string().min(1),
  /** Required, except with auth azure-entra and gcp-iam, where the role is the engine's own identity (engineDatabaseUser). */
  user: z.string().min(1).optional(),
  /** How the engine logs in: with postgresPassword, or keyless with a token of its platform identity (PG_AUTH). */
  auth: z.enum(PG_AUTH_MODES).default("password"),
  /** auth aws-iam: the DB instance's DbiResourceId (db-…) or the Aurora cluster's resource id (cluster-…), the scope of rds-db:connect. */
  awsResourceId: z.string().refine(NAME_RULES.rdsResourceId, "must be the instance's DbiResourceId (db-…) or the Aurora cluster's DbClusterResourceId (cluster-…): upper-case letters and digits after the prefix, not the instance name").optional(),
  /** auth gcp-iam: the Cloud SQL instance ID; the login grants are then limited to it (an IAM condition). */
  cloudSqlInstance: z.string().refine(NAME_RULES.cloudSqlInstance, "must be the Cloud SQL instance ID (lower-case letters, digits and hyphens, starting with a letter), not its connection name project:region:instance").optional(),
  /** auth aws-iam: the database's AWS region, when it is not the stack's (PG_AUTH_REGION; also the rds-db:connect ARN's region). */
  authRegion: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, "must be an AWS region like eu-west-1").optional(),
  sslmode: z.enum(["disable", "require", "verify-ca", "verify-full"]).default("require"),
  publication: z.string().regex(pgIdentifier).default("cdc_pub"),
  slot: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/).default("cdc_slot"),
  tables: z.array(z.string().regex(tableName)).default([]),
  /**
   * The server's CA bundle (PEM text) for verify-full, passed as PG_SSLROOTCERT_PEM: a deployment
   * setting, so a new bundle needs no new image. At most 32 KiB: Cloud Run's limit for one
   * environment variable value (cloud.google.com/run/docs/configuring/services/environment-variables);
   * an RDS region bundle is well below it, the global one is not.
   */
  sslrootcert: z
    .string()
    .refine((v) => v.includes("-----BEGIN CERTIFICATE-----"), "must be PEM certificates (-----BEGIN CERTIFICATE----- …)")
    .refine((v) => Buffer.byteLength(v) <= 32 * 1024, "must be at most 32 KiB (an environment variable); pass the region's bundle, not a global one")
    .optional(),
}).strict();

const MIB = 1024 * 1024;
/** The engine's own MAX_RECORD_BYTES range (container/src/config). */
const MIN_RECORD_BYTES = 64 * 1024;
const MAX_RECORD_BYTES_LIMIT = 1024 * MIB;
const ENGINE_BASE_MIB = 100;
const RECORD_MEMORY_FACTOR = 2.5;
const RECORD_MEMORY_USABLE = 0.9;

const batchingSchema = z.object({
  maxSize: z.number().int().min(1).max(10_000_000).default(10_000),
  maxBytes: z.number().int().min(1024).max(1024 * 1024 * 1024).default(16 * 1024 * 1024),
  maxWaitMs: z.number().int().min(1).max(3_600_000).default(5_000),
  heartbeatIntervalMs: z.number().int().min(0).max(3_600_000).default(10_000),
  /** MAX_RECORD_BYTES; unset: the largest record the container's memory holds (recordBytesForMemory). */
  maxRecordBytes: z.number().int().min(MIN_RECORD_BYTES).max(MAX_RECORD_BYTES_LIMIT).optional(),
}).strict();

/**
 * The engine holds a record while it is built, encoded and buffered for the sink: docs/engine.md
 * asks for about 2.5 × MAX_RECORD_BYTES plus 100 MiB of memory, and a tenth of the container is
 * kept spare on top (the engine's own default, 144 MiB, is exactly what 512 MiB gives). Deriving
 * the limit from the container's size means a larger container takes larger rows without a second
 * setting to keep in step.
 */
export function recordBytesForMemory(memoryMiB: number): number {
  const mib = Math.floor((memoryMiB * RECORD_MEMORY_USABLE - ENGINE_BASE_MIB) / RECORD_MEMORY_FACTOR);
  return Math.max(MIN_RECORD_BYTES, Math.min(MAX_RECORD_BYTES_LIMIT, mib * MIB));
}

/** The container memory (MiB) a record limit needs: the inverse of recordBytesForMemory, rounded up. */
export function memoryForRecordBytes(maxRecordBytes: number): number {
  return Math.ceil((ENGINE_BASE_MIB + (RECORD_MEMORY_FACTOR * maxRecordBytes) / MIB) / RECORD_MEMORY_USABLE);
}

const awsNetworkSchema = z.object({
  /** Subnets the task runs in; the default VPC's subnets when empty. */
  subnetIds: z.array(z.string().regex(/^subnet-[0-9a-f]{8,17}$/)).default([]),
  /** Extra security groups (e.g. the one your database allows); a group with egress only is always created. */
  securityGroupIds: z.array(z.string().regex(/^sg-[0-9a-f]{8,17}$/)).default([]),
  /** Public IP for the task: needed in public subnets without NAT to reach ECR/S3; default true only with the default VPC. */
  assignPublicIp: z.boolean().optional(),
  /** VPC id when subnetIds are given (the engine's security group is created there). */
  vpcId: z.string().regex(/^vpc-[0-9a-f]{8,17}$/).optional(),
}).strict();

const azureNetworkSchema = z.object({
  /** Subnet for the (workload-profiles) Container Apps environment: delegated to Microsoft.App/environments, /27 or larger. */
  infrastructureSubnetId: z.string().regex(/^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.Network\/virtualNetworks\/[^/]+\/subnets\/[^/]+$/i),
  /** Internal-only environment (no public endpoint at all). */
  internal: z.boolean().default(true),
}).strict();

const gcpNetworkSchema = z.object({
  /** Direct VPC egress: the VPC network and subnetwork the service's traffic leaves through. */
  network: z.string().min(1).optional(),
  subnetwork: z.string().min(1).optional(),
  /** Or a Serverless VPC Access connector (projects/P/locations/R/connectors/NAME). */
  vpcConnector: z.string().regex(/^projects\/[^/]+\/locations\/[^/]+\/connectors\/[^/]+$/).optional(),
  /** PRIVATE_RANGES_ONLY (default) or ALL_TRAFFIC. */
  egress: z.enum(["PRIVATE_RANGES_ONLY", "ALL_TRAFFIC"]).default("PRIVATE_RANGES_ONLY"),
}).strict().refine((n) => !(n.vpcConnector && (n.network || n.subnetwork)), { message: "set either vpcConnector or network/subnetwork, not both" })
  .refine((n) => Boolean(n.vpcConnector || n.network || n.subnetwork), { message: "needs vpcConnector or network and subnetwork" });

const localNetworkSchema = z.object({
  /** Docker network to attach to (e.g. the one your PostgreSQL container runs in). */
  dockerNetwork: z.string().min(1),
}).strict();

const { thresholds: T } = LIMITS.alerts;
const inList = (allowed: readonly number[]) => (v: number) => allowed.includes(v);

/** When the alerts fire; every value is within what all three clouds' alerting accepts (components/limits.ts LIMITS.alerts). */
const alertThresholdsSchema = z.object({
  /** Replication lag (WAL the slot retains beyond the engine's confirmed position) above this many MiB for 5 minutes. */
  replicationLagMiB: z.number().int().min(T.replicationLagMiB.min).max(T.replicationLagMiB.max).default(1024),
  /** At least this many engine starts within restartWindowMinutes (a crash loop; a rollout is one start). */
  restarts: z.number().int().min(T.restarts.min).max(T.restarts.max).default(3),
  restartWindowMinutes: z.number().int().refine(inList(T.restartWindowMinutes), { message: `must be one of ${T.restartWindowMinutes.join(", ")} (a window every cloud's alerting accepts)` }).default(30),
  /** No landing object written and nothing confirmed for this many minutes while the slot has unconfirmed changes. */
  landingStallMinutes: z.number().int().min(T.landingStallMinutes.min).max(T.landingStallMinutes.max).default(15),
}).strict();

/** Who gets paged, and when: email addresses (SNS, Azure Monitor action group, Cloud Monitoring channels; the Databricks job's failure emails). */
const alertsSchema = z.object({
  emails: z.array(z.email()).min(1).max(20),
  thresholds: alertThresholdsSchema.prefault({}),
}).strict();

/** The alert thresholds with defaults filled in. */
export type AlertThresholds = z.output<typeof alertThresholdsSchema>;

/** A pipeline's name is part of its engine's cloud names, which must fit beside the stack's base name. */
const PIPELINE_NAME = /^[a-z][a-z0-9]{0,5}$/;
const SLOT_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
/** At most this many engines per platform. */
export const MAX_PIPELINES = 10;

/** One engine of several: its own slot and publication over its own tables, landing where the others land. */
const pipelineSchema = z.object({
  name: z.string().regex(PIPELINE_NAME, "must be 1-6 lower-case letters or digits starting with a letter"),
  /** schema.table names; a table belongs to one pipeline only. */
  tables: z.array(z.string().regex(tableName)).min(1),
  /** Default `<postgres.slot>_<name>`. */
  slot: z.string().regex(SLOT_NAME).optional(),
  /** Default `<postgres.publication>_<name>`. */
  publication: z.string().regex(pgIdentifier).optional(),
}).strict();
const pipelinesSchema = z.array(pipelineSchema).min(1).max(MAX_PIPELINES);

/** A pipeline with every default filled in. */
export interface PipelineSettings {
  name: string;
  tables: string[];
  slot: string;
  publication: string;
  /** Base of its engine's cloud names (components/naming.ts pipelineBaseName). */
  baseName: string;
}

// Keys valid on every cloud: AWS and GCP allow more, Azure forbids < > % & \ ? and /.
const tagsSchema = z.record(z.string().regex(/^[A-Za-z0-9_.:=+@ -]{1,63}$/), z.string().max(256));

/** Container size per cloud: vCPU and memory, default 0.25 vCPU / 512 MiB. */
export interface ContainerSize {
  cpu: number;
  memoryMiB: number;
}

export interface PostgresSettings {
  host: string;
  port: number;
  database: string;
  /** The role the engine logs in as (with azure-entra and gcp-iam its own identity's: engineDatabaseUser). */
  user: string;
  /** password (postgresPassword), or a token of the engine's identity: aws-iam, azure-entra, gcp-iam (PG_AUTH). */
  auth: PgAuthMode;
  /** aws-iam: the DbiResourceId or DbClusterResourceId rds-db:connect is granted on. */
  awsResourceId?: string;
  /** aws-iam: the database's region when it is not the stack's (PG_AUTH_REGION). */
  authRegion?: string;
  /** gcp-iam: the Cloud SQL instance the login grants are limited to. */
  cloudSqlInstance?: string;
  sslmode: "disable" | "require" | "verify-ca" | "verify-full";
  publication: string;
  slot: string;
  /** schema.table names; empty = whatever the existing publication publishes. */
  tables: string[];
  /** The server's CA bundle (PEM), for PG_SSLROOTCERT_PEM. */
  sslrootcert?: string;
  /** The password, always a Pulumi secret; only with auth password (keyless modes create no password secret). */
  password?: pulumi.Output<string>;
}

/**
 * A platform's settings, complete and validated: what each cloud's target builds from
 * (resolvePlatform makes them from CdcPlatformArgs and the component's name).
 */
export interface PlatformSettings {
  cloud: Cloud;
  stack: string;
  /** Lower-case, DNS-safe base for resource names: `<namePrefix>-<stack>-<hash of project and stack>` (components/naming.ts). */
  baseName: string;
  postgres: PostgresSettings;
  /** maxRecordBytes is always resolved here (derived from container.memoryMiB when not set). */
  batching: z.output<typeof batchingSchema> & { maxRecordBytes: number };
  snapshotMode: (typeof SNAPSHOT_MODES)[number];
  logLevel: "trace" | "debug" | "info" | "warn" | "error" | "fatal";
  sinkCompression: "none" | "gzip";
  /** Prefix inside the bucket/container the engine writes under (no leading or trailing slash). */
  landingPrefix: string;
  landingRetentionDays: number;
  logRetentionDays: number;
  container: ContainerSize;
  /** arm64 on AWS by default (Graviton costs less); the other targets run amd64 only. */
  architecture: "arm64" | "amd64";
  deletionProtection: boolean;
  /** Tags/labels applied to every taggable resource (user tags plus project, stack, managed-by). */
  tags: Record<string, string>;
  /** Page these when the engine is not running, crash-loops, lags or stops landing; no alerts when absent. */
  alerts?: z.output<typeof alertsSchema>;
  /** Several engines (one per table group, each with its own slot); absent in the single-pipeline form. */
  pipelines?: PipelineSettings[];
  /** Where the engine writes: object storage (default) or Kafka (components/kafka.ts). */
  sink: SinkSettings;
  /** With SCRAM (`sink.auth`): the Kafka user's password, always a Pulumi secret; each target stores it like the PostgreSQL password. */
  kafkaPassword?: pulumi.Output<string>;
  aws?: { region: string; network: z.output<typeof awsNetworkSchema> };
  azure?: { location: string; network?: z.output<typeof azureNetworkSchema> };
  gcp?: { project: string; region: string; network?: z.output<typeof gcpNetworkSchema> };
  local?: { landingDir: string; httpPort: number; network?: z.output<typeof localNetworkSchema> };
}

type Optional<T, K extends keyof T> = Omit<T, K> & Partial<Pick<T, K>>;

/**
 * The arguments of a CDC platform (components/platform.ts CdcPlatform), typed: what another program
 * passes, and what the stack's config reads into (readSettings). Only the cloud, its placement and
 * the database are required; everything else has the defaults Pulumi.yaml documents.
 */
export interface PlatformArgs {
  cloud: Cloud;
  /** The database; port 5432, sslmode require, publication cdc_pub, slot cdc_slot and all published tables by default. */
  postgres: Optional<Omit<PostgresSettings, "password">, "user" | "auth" | "port" | "sslmode" | "publication" | "slot" | "tables"> & {
    /** The replication user's password (auth password only); kept a secret whatever it is passed as. */
    password?: pulumi.Input<string>;
  };
  batching?: Partial<z.output<typeof batchingSchema>>;
  snapshotMode?: PlatformSettings["snapshotMode"];
  logLevel?: PlatformSettings["logLevel"];
  sinkCompression?: PlatformSettings["sinkCompression"];
  /** Prefix inside the bucket/container the engine writes under; default "landing". */
  landingPrefix?: string;
  /** Days until landing files are deleted; default 30. */
  landingRetentionDays?: number;
  /** Days the engine's logs are kept; default 30. */
  logRetentionDays?: number;
  /** vCPU and MiB; default 0.25 / 512 (Cloud Run runs at least 1 vCPU). */
  container?: Partial<ContainerSize>;
  /** auto (default): arm64 on AWS, the machine's own locally, amd64 elsewhere. */
  architecture?: "auto" | "arm64" | "amd64";
  deletionProtection?: boolean;
  /** Your tags; project, stack and managed-by are added. */
  tags?: Record<string, string>;
  /** Email addresses paged when the engine is not running, crash-loops, lags or stops landing (aws, azure, gcp), and thresholds. */
  alerts?: z.input<typeof alertsSchema>;
  /**
   * One engine per table group instead of one for `postgres.tables`: each its own slot (default
   * `<postgres.slot>_<name>`) and publication (default `<postgres.publication>_<name>`), all on the
   * same database and landing in the same storage. Leave out for the single-pipeline form.
   */
  pipelines?: z.input<typeof pipelineSchema>[];
  /** `{kind: "kafka", …}` publishes to Kafka (components/kafka.ts); object storage by default. */
  sink?: z.input<typeof sinkSchema>;
  /** The SCRAM password with `sink.auth` scram-sha-256/512; kept a secret whatever it is passed as, in the cloud's secret store. */
  kafkaPassword?: pulumi.Input<string>;
  aws?: { region: string; network?: z.input<typeof awsNetworkSchema> };
  azure?: { location: string; network?: z.input<typeof azureNetworkSchema> };
  gcp?: { project: string; region: string; network?: z.input<typeof gcpNetworkSchema> };
  local?: { landingDir?: string; httpPort?: number; network?: z.output<typeof localNetworkSchema> };
}

/** Component names start every resource name: storage account and registry names allow only lower-case letters and digits. */
const PLATFORM_NAME = /^[a-z][a-z0-9]{0,7}$/;

/** Zod issues as `<path> <what>` lines. */
function issues(root: string, result: { success: boolean; error?: z.ZodError }): string[] {
  if (result.success) return [];
  return result.error!.issues.map((issue) => `${zodPath(root, issue.path)} ${zodMessage(issue)}`);
}

/**
 * The complete settings of the platform named `name` in `stack`: defaults filled in, every value
 * checked (one SettingsError listing all problems), the base of its resource names derived from
 * `name` (components/naming.ts baseName), and the project/stack/managed-by tags added.
 */
export function resolvePlatform(name: string, args: PlatformArgs, stack: string, project: string): PlatformSettings {
  const problems: string[] = [];
  if (!PLATFORM_NAME.test(name)) problems.push(`name ${JSON.stringify(name)} must be 1-8 lower-case letters or digits starting with a letter: it starts every resource name, and storage account and registry names allow nothing else`);
  const { password, ...pgArgs } = args.postgres ?? ({} as PlatformArgs["postgres"]);
  const pg = postgresSchema.safeParse(pgArgs);
  problems.push(...issues("postgres", pg));
  if (pg.success && pg.data.auth === "password" && password === undefined) problems.push("postgres.password is required but not set (or choose keyless login with postgres.auth)");
  if (pg.success && pg.data.auth !== "password" && password !== undefined) problems.push(`postgres.password must not be set with postgres.auth=${pg.data.auth}: the engine logs in with a token of its ${KEYLESS[pg.data.auth].identity} and no password secret is created; remove it, or set postgres.auth to password`);
  const batching = batchingSchema.safeParse(args.batching ?? {});
  problems.push(...issues("batching", batching));
  const tags = tagsSchema.safeParse(args.tags ?? {});
  problems.push(...issues("tags", tags));
  const alerts = args.alerts === undefined ? undefined : alertsSchema.safeParse(args.alerts);
  if (alerts) problems.push(...issues("alerts", alerts));
  const sink = sinkSchema.safeParse(args.sink ?? { kind: "object" });
  problems.push(...issues("sink", sink));
  if (alerts && args.cloud === "local") problems.push("alerts are not available on the local target (Docker restarts the engine; watch `docker ps`): remove them");
  const pipelinesParsed = args.pipelines === undefined ? undefined : pipelinesSchema.safeParse(args.pipelines);
  if (pipelinesParsed) problems.push(...issues("pipelines", pipelinesParsed));
  const pipelines = pipelinesParsed?.success && pg.success ? resolvePipelines(pipelinesParsed.data, pg.data, name, stack, project) : undefined;
  if (pipelines) problems.push(...pipelines.problems.map((p) => `${p.path} ${p.what}`));
  const tables = pipelinesParsed?.success ? pipelinesParsed.data.flatMap((p) => p.tables) : (pg.data?.tables ?? []);
  if (sink.success) problems.push(...kafkaSinkProblems(sink.data, args.cloud, { gcpSubnetwork: args.gcp?.network?.subnetwork, tables, passwordSet: args.kafkaPassword !== undefined }));
  const platformBase = baseName(name, stack, project);
  const engineBases = pipelines ? pipelines.pipelines.map((p) => ({ pipeline: p.name, baseName: p.baseName })) : [{ baseName: platformBase }];
  if (pg.success) problems.push(...authProblems(args.cloud, pg.data, engineBases, args.gcp?.project).map((p) => `${p.path} ${p.what}`));
  if (pipelines && args.cloud === "local" && args.local?.httpPort !== undefined && args.local.httpPort + pipelines.pipelines.length - 1 > 65535) problems.push("local.httpPort leaves no room for a port per pipeline (each engine takes the next port)");
  const landingPrefix = (args.landingPrefix ?? SCALAR_DEFAULTS.landingPrefix).replace(/^\/+|\/+$/g, "");
  if (!LANDING_PREFIX.test(landingPrefix) || landingPrefix.includes("//")) problems.push(`landingPrefix ${JSON.stringify(landingPrefix)} must be a path of lower-case letters, digits, '.', '_', '-' and '/'`);
  for (const key of ["landingRetentionDays", "logRetentionDays"] as const) {
    const v = args[key];
    if (v !== undefined && !(Number.isInteger(v) && v >= 1 && v <= 3650)) problems.push(`${key} must be a whole number from 1 to 3650 (got ${v})`);
  }
  const container = { cpu: args.container?.cpu ?? Number(SCALAR_DEFAULTS.containerCpu), memoryMiB: args.container?.memoryMiB ?? SCALAR_DEFAULTS.containerMemoryMiB };
  const size = containerSizeProblem(args.cloud, container);
  if (size) problems.push(`container.${size.key === "containerCpu" ? "cpu" : "memoryMiB"} ${size.what}`);
  const explicitRecordBytes = batching.success ? batching.data.maxRecordBytes : undefined;
  if (explicitRecordBytes !== undefined && memoryForRecordBytes(explicitRecordBytes) > container.memoryMiB) {
    problems.push(`batching.maxRecordBytes ${explicitRecordBytes} needs a container of at least ${memoryForRecordBytes(explicitRecordBytes)} MiB (2.5 × the record plus 100 MiB, docs/engine.md "Large values", and a tenth spare), but container.memoryMiB is ${container.memoryMiB}: raise container.memoryMiB (stack config containerMemoryMiB) to ${memoryForRecordBytes(explicitRecordBytes)}, or lower batching.maxRecordBytes to ${recordBytesForMemory(container.memoryMiB)} or leave it unset (the most this container holds)`);
  }
  const requested = args.architecture ?? "auto";
  // auto: Graviton on AWS (cheaper), the machine's own architecture locally, amd64 elsewhere.
  const architecture: "arm64" | "amd64" = requested !== "auto" ? requested : args.cloud === "aws" || (args.cloud === "local" && process.arch === "arm64") ? "arm64" : "amd64";
  if (architecture === "arm64" && (args.cloud === "azure" || args.cloud === "gcp")) problems.push(`architecture must be amd64 or auto on ${args.cloud} (${args.cloud === "azure" ? "Container Apps" : "Cloud Run"} runs linux/amd64 only)`);

  const placement: Partial<PlatformSettings> = {};
  switch (args.cloud) {
    case "aws": {
      if (!args.aws?.region) { problems.push("aws.region is required when cloud is aws"); break; }
      const network = awsNetworkSchema.safeParse(args.aws.network ?? {});
      problems.push(...issues("aws.network", network));
      if (network.success && network.data.subnetIds.length > 0 && !network.data.vpcId) problems.push("aws.network.vpcId is required when aws.network.subnetIds is set (the engine's security group is created in that VPC)");
      if (network.success) placement.aws = { region: args.aws.region, network: network.data };
      break;
    }
    case "azure": {
      if (!args.azure?.location) { problems.push("azure.location is required when cloud is azure"); break; }
      const network = args.azure.network === undefined ? undefined : azureNetworkSchema.safeParse(args.azure.network);
      if (network) problems.push(...issues("azure.network", network));
      placement.azure = { location: args.azure.location, network: network?.data };
      break;
    }
    case "gcp": {
      if (!args.gcp?.project || !args.gcp.region) { problems.push("gcp.project and gcp.region are required when cloud is gcp"); break; }
      const network = args.gcp.network === undefined ? undefined : gcpNetworkSchema.safeParse(args.gcp.network);
      if (network) problems.push(...issues("gcp.network", network));
      placement.gcp = { project: args.gcp.project, region: args.gcp.region, network: network?.data };
      if (tags.success) {
        for (const [k, v] of Object.entries(tags.data)) if (!GCP_LABEL_KEY.test(k) || !GCP_LABEL_VALUE.test(v)) problems.push(`tags.${k} is not a valid GCP label (keys: lower-case letter first, then a-z 0-9 _ -; values: a-z 0-9 _ -, at most 63) (got ${JSON.stringify(v)})`);
      }
      break;
    }
    case "local":
      placement.local = { landingDir: args.local?.landingDir ?? SCALAR_DEFAULTS.localLandingDir, httpPort: args.local?.httpPort ?? SCALAR_DEFAULTS.localHttpPort, network: args.local?.network };
      break;
    default:
      problems.push(`cloud must be one of ${CLOUDS.join(", ")} (got ${JSON.stringify(args.cloud)})`);
  }
  if (problems.length > 0) throw new SettingsError(problems.map((p) => `CdcPlatform ${JSON.stringify(name)}: ${p}`));

  return {
    cloud: args.cloud,
    stack,
    baseName: platformBase,
    postgres: {
      ...pg.data!,
      user: engineDatabaseUser(pg.data!, platformBase, args.gcp?.project)!,
      ...(password !== undefined ? { password: pulumi.secret(password) } : {}),
    },
    batching: { ...batching.data!, maxRecordBytes: explicitRecordBytes ?? recordBytesForMemory(container.memoryMiB) },
    snapshotMode: args.snapshotMode ?? SCALAR_DEFAULTS.snapshotMode,
    logLevel: args.logLevel ?? SCALAR_DEFAULTS.logLevel,
    sinkCompression: args.sinkCompression ?? SCALAR_DEFAULTS.sinkCompression,
    landingPrefix,
    landingRetentionDays: args.landingRetentionDays ?? SCALAR_DEFAULTS.landingRetentionDays,
    logRetentionDays: args.logRetentionDays ?? SCALAR_DEFAULTS.logRetentionDays,
    container,
    architecture,
    deletionProtection: args.deletionProtection ?? SCALAR_DEFAULTS.deletionProtection,
    tags: { ...tags.data!, project: PROJECT, stack: args.cloud === "gcp" ? dnsSafe(stack).slice(0, 63) : stack, "managed-by": "pulumi" },
    alerts: alerts?.data,
    ...(pipelines ? { pipelines: pipelines.pipelines } : {}),
    sink: sink.data!,
    ...(args.kafkaPassword !== undefined ? { kafkaPassword: pulumi.secret(args.kafkaPassword) } : {}),
    ...placement,
  };
}

/**
 * The pipelines with their defaults, and what is wrong with them as a set: unique names, slots and
 * publications, every table in one pipeline only, and no `postgres.tables` beside them.
 */
function resolvePipelines(
  input: z.output<typeof pipelinesSchema>,
  pg: z.output<typeof postgresSchema>,
  platformName: string,
  stack: string,
  project: string,
): { pipelines: PipelineSettings[]; problems: { path: string; what: string; example: string }[] } {
  const problems: { path: string; what: string; example: string }[] = [];
  if (pg.tables.length > 0) problems.push({ path: "postgres.tables", what: "must be empty when pipelines are set (each pipeline lists its own tables)", example: "'[]'" });
  const pipelines = input.map((p) => ({
    name: p.name,
    tables: p.tables,
    slot: p.slot ?? `${pg.slot}_${p.name}`,
    publication: p.publication ?? `${pg.publication}_${p.name}`,
    baseName: pipelineBaseName(platformName, p.name, stack, project),
  }));
  const owner = new Map<string, string>();
  const seen = { name: new Map<string, number>(), slot: new Map<string, number>(), publication: new Map<string, number>() };
  pipelines.forEach((p, i) => {
    for (const key of ["name", "slot", "publication"] as const) {
      const first = seen[key].get(p[key]);
      if (first !== undefined) problems.push({ path: `pipelines[${i}].${key}`, what: `${JSON.stringify(p[key])} is also pipelines[${first}]'s: each pipeline needs its own ${key === "name" ? "name" : key === "slot" ? "replication slot (a slot has one consumer)" : "publication"}`, example: key === "name" ? "billing" : key === "slot" ? `cdc_slot_${p.name}` : `cdc_pub_${p.name}` });
      else seen[key].set(p[key], i);
    }
    if (!SLOT_NAME.test(p.slot)) problems.push({ path: `pipelines[${i}].slot`, what: `${JSON.stringify(p.slot)} is not a valid slot name (lower-case letters, digits and _, at most 63)`, example: `cdc_slot_${p.name}` });
    if (!pgIdentifier.test(p.publication)) problems.push({ path: `pipelines[${i}].publication`, what: `${JSON.stringify(p.publication)} is not a valid publication name (at most 63)`, example: `cdc_pub_${p.name}` });
    for (const table of p.tables) {
      const other = owner.get(table);
      if (other !== undefined && other !== p.name) problems.push({ path: `pipelines[${i}].tables`, what: `has ${table}, which pipeline ${other} captures too: two engines would land the same table twice`, example: "'[\"public.orders\"]'" });
      owner.set(table, p.name);
    }
  });
  return { pipelines, problems };
}

/** Each keyless login mode: the target whose identity it uses, and what that identity is. */
export const KEYLESS: Record<Exclude<PgAuthMode, "password">, { cloud: Cloud; identity: string }> = {
  "aws-iam": { cloud: "aws", identity: "ECS task role (RDS/Aurora IAM database authentication)" },
  "azure-entra": { cloud: "azure", identity: "user-assigned managed identity (Microsoft Entra authentication)" },
  "gcp-iam": { cloud: "gcp", identity: "service account (Cloud SQL IAM database authentication)" },
};

/**
 * The role an engine logs in as: postgres.user, except with azure-entra (the Entra principal of
 * its managed identity, which has the identity's name) and gcp-iam (its service account's Cloud
 * SQL IAM user, the e-mail without `.gserviceaccount.com`). Each engine has its own identity.
 */
export function engineDatabaseUser(pg: { auth: PgAuthMode; user?: string }, engineBaseName: string, gcpProject: string | undefined): string | undefined {
  switch (pg.auth) {
    case "azure-entra":
      return azureEngineIdentityName(engineBaseName);
    case "gcp-iam":
      return cloudSqlIamUser(gcpServiceAccountId(engineBaseName), gcpProject ?? "");
    default:
      return pg.user;
  }
}

/**
 * What is wrong with the login settings (postgres.auth and what goes with it), as key paths with
 * an example each; the password itself is checked by the callers (its key differs).
 */
function authProblems(
  cloud: Cloud,
  pg: z.output<typeof postgresSchema>,
  engines: { pipeline?: string; baseName: string }[],
  gcpProject: string | undefined,
): { path: string; what: string; example: string }[] {
  const problems: { path: string; what: string; example: string }[] = [];
  const { auth } = pg;
  if (auth !== "password" && KEYLESS[auth].cloud !== cloud) {
    const own = (Object.keys(KEYLESS) as (keyof typeof KEYLESS)[]).find((m) => KEYLESS[m].cloud === cloud);
    problems.push({ path: "postgres.auth", what: `is ${auth}, which logs in with the ${KEYLESS[auth].identity} of the ${KEYLESS[auth].cloud} target, but this stack deploys to ${cloud}`, example: own ?? "password" });
  }
  if (auth !== "password" && pg.sslmode === "disable") {
    problems.push({ path: "postgres.sslmode", what: `is disable, but postgres.auth=${auth} sends a bearer token as the password, which needs TLS`, example: "verify-full" });
  }
  if (auth === "aws-iam" && !pg.awsResourceId) {
    problems.push({ path: "postgres.awsResourceId", what: "is required with postgres.auth=aws-iam: the task role may connect only as postgres.user of that instance or cluster (rds-db:connect on arn:aws:rds-db:<region>:<account>:dbuser:<resource id>/<user>); find it with aws rds describe-db-instances --query 'DBInstances[].DbiResourceId' or describe-db-clusters --query 'DBClusters[].DbClusterResourceId'", example: "db-ABCDEFGHIJKLMNOPQRSTUVWXY1" });
  }
  if (auth !== "aws-iam") {
    for (const key of ["awsResourceId", "authRegion"] as const) {
      if (pg[key] !== undefined) problems.push({ path: `postgres.${key}`, what: `is only used with postgres.auth=aws-iam (got postgres.auth=${auth}); remove it or set postgres.auth to aws-iam`, example: "aws-iam" });
    }
  }
  if (auth !== "gcp-iam" && pg.cloudSqlInstance !== undefined) problems.push({ path: "postgres.cloudSqlInstance", what: `is only used with postgres.auth=gcp-iam (got postgres.auth=${auth}); remove it or set postgres.auth to gcp-iam`, example: "gcp-iam" });
  if ((auth === "password" || auth === "aws-iam") && !pg.user) problems.push({ path: "postgres.user", what: "is required but not set", example: "cdc_user" });
  if (auth === "azure-entra" || auth === "gcp-iam") {
    const rule = auth === "azure-entra" ? NAME_RULES.entraIdentityRole : NAME_RULES.cloudSqlIamUser;
    const users = engines.map((e) => ({ ...e, user: engineDatabaseUser(pg, e.baseName, gcpProject)! }));
    for (const u of users.filter((x) => !rule(x.user))) {
      problems.push({ path: "postgres.auth", what: `makes the engine${u.pipeline ? ` of pipeline ${u.pipeline}` : ""} log in as its identity ${JSON.stringify(u.user)}, which is not a valid ${auth === "gcp-iam" ? "Cloud SQL IAM user" : "Entra principal"} name (a PostgreSQL role has at most 63 bytes); shorten namePrefix, the stack name${auth === "gcp-iam" ? " or the project id" : ""}, or log in with a password`, example: "password" });
    }
    const others = users.filter((u) => pg.user !== undefined && u.user !== pg.user);
    if (others.length > 0) {
      const what = users.length === 1
        ? `is ${JSON.stringify(pg.user)}, but with postgres.auth=${auth} the engine logs in as its own ${KEYLESS[auth].identity}, whose role is ${JSON.stringify(users[0].user)}; set postgres.user to that or leave it out`
        : `must be left out with postgres.auth=${auth} and pipelines: each pipeline's engine logs in as its own ${KEYLESS[auth].identity} (${users.map((u) => `${u.pipeline}: ${u.user}`).join(", ")})`;
      problems.push({ path: "postgres.user", what, example: users[0].user });
    }
  }
  return problems;
}

/** One engine of a platform: its pipeline's name (none in the single-pipeline form) and its settings. */
export interface EngineSpec {
  pipeline?: string;
  /** The platform's settings with this engine's slot, publication, tables, base name (and local port). */
  settings: PlatformSettings;
}

/**
 * The engines a platform runs: one with the platform's own settings in the single-pipeline form,
 * else one per pipeline, each named from its own base name.
 */
export function engineSpecs(s: PlatformSettings): EngineSpec[] {
  if (!s.pipelines) return [{ settings: s }];
  return s.pipelines.map((p, i) => ({
    pipeline: p.name,
    settings: {
      ...s,
      baseName: p.baseName,
      postgres: { ...s.postgres, slot: p.slot, publication: p.publication, tables: p.tables, user: engineDatabaseUser(s.postgres, p.baseName, s.gcp?.project)! },
      ...(s.local ? { local: { ...s.local, httpPort: s.local.httpPort + i } } : {}),
    },
  }));
}

/** Every table the platform captures, over all its engines. */
export function capturedTables(s: Pick<PlatformSettings, "postgres" | "pipelines">): string[] {
  return s.pipelines ? s.pipelines.flatMap((p) => p.tables) : s.postgres.tables;
}

/** What the stack's config says: the platform's name (namePrefix), its arguments, and the config bag for settings other components own (e.g. `databricks`). */
export interface StackSettings {
  name: string;
  args: PlatformArgs;
  config: pulumi.Config;
}

/** Defaults of the scalar settings; Pulumi.yaml declares the same (a test checks). */
export const SCALAR_DEFAULTS = {
  cloud: "local",
  namePrefix: "cdc",
  snapshotMode: "initial",
  logLevel: "info",
  sinkCompression: "none",
  landingPrefix: "landing",
  landingRetentionDays: 30,
  logRetentionDays: 30,
  containerCpu: "0.25",
  containerMemoryMiB: 512,
  architecture: "auto",
  deletionProtection: false,
  localLandingDir: "./cdc-landing",
  localHttpPort: 8080,
} as const;

/** Examples shown in error messages for the structured settings. */
const STRUCTURED_EXAMPLES: Record<string, string> = {
  postgres: `'{"host":"db.example.com","port":5432,"database":"app","user":"cdc_user","sslmode":"require","tables":["public.users"]}'`,
  "postgres.host": "db.internal.example.com",
  "postgres.port": "5432",
  "postgres.database": "app",
  "postgres.user": "cdc_user",
  "postgres.sslmode": "require",
  "postgres.auth": "aws-iam",
  "postgres.awsResourceId": "db-ABCDEFGHIJKLMNOPQRSTUVWXY1",
  "postgres.authRegion": "eu-west-1",
  "postgres.cloudSqlInstance": "orders-db",
  "postgres.publication": "cdc_pub",
  "postgres.slot": "cdc_slot",
  "postgres.tables": `'["public.users","public.orders"]'`,
  "postgres.tables[0]": "public.users",
  batching: `'{"maxSize":10000,"maxBytes":16777216,"maxWaitMs":5000}'`,
  "batching.maxSize": "10000",
  "batching.maxBytes": "16777216",
  "batching.maxWaitMs": "5000",
  "batching.heartbeatIntervalMs": "10000",
  "batching.maxRecordBytes": "268435456",
  network: `'{"subnetIds":["subnet-0123456789abcdef0"]}'`,
  "network.subnetIds": `'["subnet-0123456789abcdef0"]'`,
  "network.securityGroupIds": `'["sg-0123456789abcdef0"]'`,
  "network.subnetIds[0]": "subnet-0123456789abcdef0",
  "network.securityGroupIds[0]": "sg-0123456789abcdef0",
  "network.vpcId": "vpc-0123456789abcdef0",
  "network.infrastructureSubnetId": "/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>",
  "network.vpcConnector": "projects/my-project/locations/europe-west1/connectors/cdc",
  "network.network": "default",
  "network.subnetwork": "default",
  "network.dockerNetwork": "my-postgres-net",
  tags: `'{"team":"data-platform","cost-center":"1234"}'`,
  alerts: `'{"emails":["oncall@example.com"]}'`,
  "alerts.emails": `'["oncall@example.com"]'`,
  "alerts.emails[0]": "oncall@example.com",
  pipelines: `'[{"name":"orders","tables":["public.orders"]},{"name":"users","tables":["public.users"]}]'`,
  "pipelines[0]": `'{"name":"orders","tables":["public.orders"]}'`,
  "pipelines[0].name": "orders",
  "pipelines[0].tables": `'["public.orders"]'`,
  "pipelines[0].slot": "cdc_slot_orders",
  "pipelines[0].publication": "cdc_pub_orders",
  "alerts.thresholds": `'{"replicationLagMiB":1024,"restarts":3,"restartWindowMinutes":30,"landingStallMinutes":15}'`,
  "alerts.thresholds.replicationLagMiB": "1024",
  "alerts.thresholds.restarts": "3",
  "alerts.thresholds.restartWindowMinutes": "30",
  "alerts.thresholds.landingStallMinutes": "15",
};

function exampleFor(path: string): string {
  if (STRUCTURED_EXAMPLES[path]) return STRUCTURED_EXAMPLES[path];
  const generic = path.replace(/\[\d+\]/g, "[0]");
  if (STRUCTURED_EXAMPLES[generic]) return STRUCTURED_EXAMPLES[generic];
  return STRUCTURED_EXAMPLES[path.split(".")[0]] ?? "<value>";
}

function zodPath(root: string, issuePath: PropertyKey[]): string {
  let out = root;
  for (const p of issuePath) out += typeof p === "number" ? `[${p}]` : `.${String(p)}`;
  return out;
}

function zodMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_type" && issue.input === undefined) return "is required but not set";
  if (issue.code === "unrecognized_keys") return `has unknown key(s) ${issue.keys.join(", ")}`;
  if (issue.code === "invalid_format" || issue.code === "invalid_value" || issue.code === "invalid_type" || issue.code === "too_small" || issue.code === "too_big") {
    return `is invalid (${issue.message.replace(/^Invalid input: /, "")}${issue.input !== undefined && typeof issue.input !== "object" ? `, got ${JSON.stringify(issue.input)}` : ""})`;
  }
  return `is invalid (${issue.message})`;
}

/** Reads a structured setting; validates with `schema`; records problems naming the exact key path. */
function readObject<S extends z.ZodType>(config: pulumi.Config, key: string, schema: S, required: boolean, problems: string[]): z.output<S> | undefined {
  let raw: unknown;
  try {
    raw = config.getObject<unknown>(key);
  } catch {
    problems.push(problem(key, "is not valid JSON", exampleFor(key)));
    return undefined;
  }
  if (raw === undefined) {
    if (required) problems.push(problem(key, "is required but not set", exampleFor(key)));
    return undefined;
  }
  const placeholders = findPlaceholders(raw, key);
  if (placeholders.length > 0) {
    for (const path of placeholders) problems.push(problem(path, "still holds a <placeholder> from the example stack file; put your own value", exampleFor(path), path !== key));
    return undefined;
  }
  // reportInput: the message can show the rejected value.
  const parsed = schema.safeParse(raw, { reportInput: true });
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) {
    if (issue.code === "unrecognized_keys") {
      problems.push(problem(zodPath(key, issue.path), zodMessage(issue), exampleFor(key)));
      continue;
    }
    const path = zodPath(key, issue.path);
    problems.push(problem(path, zodMessage(issue), exampleFor(path), path !== key));
  }
  return undefined;
}

/** Paths of string values that are still `<…>` placeholders from the example stack files. */
function findPlaceholders(value: unknown, path: string): string[] {
  if (typeof value === "string") return /<[^<>]+>/.test(value) ? [path] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => findPlaceholders(v, `${path}[${i}]`));
  if (value && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => findPlaceholders(v, `${path}.${k}`));
  return [];
}

function readScalar(config: pulumi.Config, key: string): string | undefined {
  const v = config.get(key);
  return v === undefined || v.trim() === "" ? undefined : v.trim();
}

function readInt(config: pulumi.Config, key: keyof typeof SCALAR_DEFAULTS, min: number, max: number, problems: string[]): number {
  const raw = readScalar(config, key);
  const fallback = SCALAR_DEFAULTS[key] as number;
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    problems.push(problem(key, `must be a whole number from ${min} to ${max} (got ${JSON.stringify(raw)})`, String(fallback)));
    return fallback;
  }
  return Number(raw);
}

function readEnum<T extends string>(config: pulumi.Config, key: keyof typeof SCALAR_DEFAULTS, allowed: readonly T[], problems: string[], example?: T): T {
  const raw = readScalar(config, key) ?? String(SCALAR_DEFAULTS[key]);
  if (!(allowed as readonly string[]).includes(raw)) {
    problems.push(problem(key, `must be one of ${allowed.join(", ")} (got ${JSON.stringify(raw)})`, example ?? allowed[0]));
    return allowed[0];
  }
  return raw as T;
}

/** Lower-case DNS label: letters, digits and hyphens, starting with a letter. */
export function dnsSafe(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^[^a-z]+/, "").replace(/-+/g, "-").replace(/-$/, "");
}

/**
 * The name the stack's platform had before it was named after namePrefix: `<namePrefix>-<stack,
 * 12 characters>`. index.ts aliases it so existing stacks keep their resources.
 */
export function legacyPlatformName(namePrefix: string, stack: string): string {
  return `${namePrefix}-${dnsSafe(stack).slice(0, 12).replace(/-$/, "") || "stack"}`;
}

/**
 * Reads and validates every setting of the current stack. Throws SettingsError (a RunError: Pulumi
 * prints its message without a stack trace) listing each problem with the key and an example.
 */
export function readSettings(): StackSettings {
  const config = new pulumi.Config(PROJECT);
  const problems: string[] = [];

  const cloud = readEnum(config, "cloud", CLOUDS, problems, "aws");
  const namePrefix = readScalar(config, "namePrefix") ?? SCALAR_DEFAULTS.namePrefix;
  if (!/^[a-z][a-z0-9]{0,7}$/.test(namePrefix)) {
    problems.push(problem("namePrefix", `must be 1-8 lower-case letters or digits starting with a letter (got ${JSON.stringify(namePrefix)}), because storage account and registry names allow nothing else`, "cdc"));
  }

  const snapshotMode = readEnum(config, "snapshotMode", SNAPSHOT_MODES, problems);
  const logLevel = readEnum(config, "logLevel", ["trace", "debug", "info", "warn", "error", "fatal"] as const, problems, "info");
  const sinkCompression = readEnum(config, "sinkCompression", ["none", "gzip"] as const, problems, "gzip");

  const landingPrefix = (readScalar(config, "landingPrefix") ?? SCALAR_DEFAULTS.landingPrefix).replace(/^\/+|\/+$/g, "");
  if (!LANDING_PREFIX.test(landingPrefix) || landingPrefix.includes("//")) {
    problems.push(problem("landingPrefix", `must be a path of lower-case letters, digits, '.', '_', '-' and '/' (got ${JSON.stringify(landingPrefix)})`, "landing"));
  }
  const landingRetentionDays = readInt(config, "landingRetentionDays", 1, 3650, problems);
  const logRetentionDays = readInt(config, "logRetentionDays", 1, 3650, problems);

  const cpuRaw = readScalar(config, "containerCpu") ?? SCALAR_DEFAULTS.containerCpu;
  const cpu = Number(cpuRaw);
  if (!/^\d+(\.\d+)?$/.test(cpuRaw) || !(cpu >= 0.25 && cpu <= 16)) {
    problems.push(problem("containerCpu", `must be a number of vCPUs from 0.25 to 16 (got ${JSON.stringify(cpuRaw)})`, "0.25"));
  }
  const memoryMiB = readInt(config, "containerMemoryMiB", 512, 122880, problems);

  const architecture = readEnum(config, "architecture", ["auto", "arm64", "amd64"] as const, problems, "auto");
  if (architecture === "arm64" && (cloud === "azure" || cloud === "gcp")) {
    problems.push(problem("architecture", `must be amd64 or auto on ${cloud} (${cloud === "azure" ? "Container Apps" : "Cloud Run"} runs linux/amd64 only)`, "auto"));
  }

  const deletionRaw = readScalar(config, "deletionProtection");
  let deletionProtection: boolean = SCALAR_DEFAULTS.deletionProtection;
  if (deletionRaw !== undefined) {
    if (!/^(true|false)$/.test(deletionRaw)) problems.push(problem("deletionProtection", `must be true or false (got ${JSON.stringify(deletionRaw)})`, "true"));
    else deletionProtection = deletionRaw === "true";
  }

  const postgres = readObject(config, "postgres", postgresSchema, true, problems);
  const batching = readObject(config, "batching", batchingSchema, false, problems) ?? batchingSchema.parse({});
  const userTags = readObject(config, "tags", tagsSchema, false, problems) ?? {};
  const alerts = readObject(config, "alerts", alertsSchema, false, problems);
  const pipelinesInput = readObject(config, "pipelines", pipelinesSchema, false, problems);
  const pipelines = pipelinesInput && postgres ? resolvePipelines(pipelinesInput, postgres, namePrefix, pulumi.getStack(), pulumi.getProject()) : undefined;
  for (const p of pipelines?.problems ?? []) problems.push(problem(p.path, p.what, p.example, true));
  const sink = readObject(config, "sink", sinkSchema, false, problems);
  const tables = pipelinesInput ? pipelinesInput.flatMap((p) => p.tables) : (postgres?.tables ?? []);
  const kafkaPassword = config.getSecret("kafkaPassword");
  problems.push(...kafkaSinkProblems(sink ?? { kind: "object" }, cloud, { gcpSubnetwork: (config.getObject("network") as { subnetwork?: string } | undefined)?.subnetwork, tables, passwordSet: kafkaPassword !== undefined }).map((p) => `${PROJECT}:${p}`));
  if (alerts && cloud === "local") problems.push(`${PROJECT}:alerts is not available on the local target (Docker restarts the engine; watch docker ps); remove it: pulumi config rm ${PROJECT}:alerts`);

  const password = config.getSecret("postgresPassword");
  const auth = postgres?.auth ?? "password";
  if (auth === "password" && password === undefined && postgres) {
    problems.push(`${PROJECT}:postgresPassword is required but not set; for example: pulumi config set --secret ${PROJECT}:postgresPassword '<password>' (or log in keyless: pulumi config set --path ${PROJECT}:postgres.auth ${cloud === "aws" ? "aws-iam" : cloud === "azure" ? "azure-entra" : cloud === "gcp" ? "gcp-iam" : "password"})`);
  }
  if (auth !== "password" && password !== undefined) {
    problems.push(`${PROJECT}:postgresPassword must not be set with postgres.auth=${auth}: the engine logs in with a token of its ${KEYLESS[auth].identity} and no password secret is created; remove it: pulumi config rm ${PROJECT}:postgresPassword (or set postgres.auth to password)`);
  }

  const settings: Pick<PlatformArgs, "aws" | "azure" | "gcp" | "local"> = {};
  switch (cloud) {
    case "aws": {
      const region = readScalar(new pulumi.Config("aws"), "region");
      if (!region) problems.push(problem("aws:region", "is required when cloud is aws", "eu-west-1"));
      else if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) problems.push(problem("aws:region", `is not an AWS region (got ${JSON.stringify(region)})`, "eu-west-1"));
      const network = readObject(config, "network", awsNetworkSchema, false, problems) ?? awsNetworkSchema.parse({});
      if (network.subnetIds.length > 0 && !network.vpcId) problems.push(problem("network.vpcId", "is required when network.subnetIds is set (the engine's security group is created in that VPC)", "vpc-0123456789abcdef0", true));
      settings.aws = { region: region ?? "", network };
      break;
    }
    case "azure": {
      const location = readScalar(new pulumi.Config("azure-native"), "location");
      if (!location) problems.push(problem("azure-native:location", "is required when cloud is azure", "westeurope"));
      else if (!/^[a-z0-9]+$/.test(location)) problems.push(problem("azure-native:location", `must be an Azure location name like westeurope (got ${JSON.stringify(location)})`, "westeurope"));
      settings.azure = { location: location ?? "", network: readObject(config, "network", azureNetworkSchema, false, problems) };
      break;
    }
    case "gcp": {
      const gcpConfig = new pulumi.Config("gcp");
      const project = readScalar(gcpConfig, "project");
      const region = readScalar(gcpConfig, "region");
      if (!project) problems.push(problem("gcp:project", "is required when cloud is gcp", "my-project-id"));
      else if (!/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/.test(project)) problems.push(problem("gcp:project", `is not a GCP project id (got ${JSON.stringify(project)})`, "my-project-id"));
      if (!region) problems.push(problem("gcp:region", "is required when cloud is gcp", "europe-west1"));
      else if (!/^[a-z]+-[a-z]+\d+$/.test(region)) problems.push(problem("gcp:region", `is not a GCP region (got ${JSON.stringify(region)})`, "europe-west1"));
      settings.gcp = { project: project ?? "", region: region ?? "", network: readObject(config, "network", gcpNetworkSchema, false, problems) };
      break;
    }
    case "local": {
      const dir = readScalar(config, "localLandingDir") ?? SCALAR_DEFAULTS.localLandingDir;
      const httpPort = readInt(config, "localHttpPort", 1, 65535, problems);
      settings.local = { landingDir: dir, httpPort, network: readObject(config, "network", localNetworkSchema, false, problems) };
      if (postgres && /^(localhost|127\.\d+\.\d+\.\d+|::1)$/.test(postgres.host)) {
        problems.push(problem("postgres.host", `is ${postgres.host}, which inside the engine's container is the container itself; use host.docker.internal for a database on this machine`, "host.docker.internal", true));
      }
      break;
    }
  }

  const stackBase = baseName(namePrefix, pulumi.getStack(), pulumi.getProject());
  if (postgres) {
    const engines = pipelines ? pipelines.pipelines.map((p) => ({ pipeline: p.name, baseName: p.baseName })) : [{ baseName: stackBase }];
    for (const p of authProblems(cloud, postgres, engines, settings.gcp?.project)) problems.push(problem(p.path, p.what, p.example, true));
  }

  const sizeProblem = containerSizeProblem(cloud, { cpu, memoryMiB });
  if (sizeProblem) problems.push(problem(sizeProblem.key, sizeProblem.what, sizeProblem.example));
  if (batching.maxRecordBytes !== undefined && memoryForRecordBytes(batching.maxRecordBytes) > memoryMiB) {
    const needed = memoryForRecordBytes(batching.maxRecordBytes);
    problems.push(problem("containerMemoryMiB", `is ${memoryMiB}, too little for batching.maxRecordBytes ${batching.maxRecordBytes}: a record that large needs about ${needed} MiB (2.5 × the record plus 100 MiB, docs/engine.md "Large values", and a tenth spare); raise containerMemoryMiB to a size your cloud offers of at least ${needed}, or lower batching.maxRecordBytes to ${recordBytesForMemory(memoryMiB)} or remove it (the most this container holds)`, String(needed)));
  }

  if (cloud === "gcp") {
    for (const [k, v] of Object.entries(userTags)) {
      if (!GCP_LABEL_KEY.test(k) || !GCP_LABEL_VALUE.test(v)) {
        problems.push(problem(`tags.${k}`, `is not a valid GCP label (keys: lower-case letter first, then a-z 0-9 _ -; values: a-z 0-9 _ -, at most 63) (got ${JSON.stringify(v)})`, "data-platform", true));
      }
    }
  }

  if (problems.length > 0) throw new SettingsError(problems);

  const pg = { ...postgres!, user: engineDatabaseUser(postgres!, stackBase, settings.gcp?.project)! };
  // The engine's own parser is the contract: run it on the environment the service will get, so a
  // value the engine would reject fails here, at preview, not in a crash-looping container.
  const engineProblems = pipelines
    ? pipelines.pipelines.flatMap((p) => checkAgainstEngine({ ...pg, slot: p.slot, publication: p.publication, tables: p.tables, user: engineDatabaseUser(pg, p.baseName, settings.gcp?.project)! }, batching, { snapshotMode, logLevel, sinkCompression }))
    : checkAgainstEngine(pg, batching, { snapshotMode, logLevel, sinkCompression });
  if (engineProblems.length > 0) throw new SettingsError(engineProblems);

  const args: PlatformArgs = {
    cloud,
    postgres: { ...postgres!, ...(password !== undefined ? { password } : {}) },
    batching,
    snapshotMode,
    logLevel,
    sinkCompression,
    landingPrefix,
    landingRetentionDays,
    logRetentionDays,
    container: { cpu, memoryMiB },
    architecture,
    deletionProtection,
    tags: userTags,
    alerts,
    ...(pipelinesInput ? { pipelines: pipelinesInput } : {}),
    sink,
    ...(kafkaPassword !== undefined ? { kafkaPassword } : {}),
    ...settings,
  };
  return { name: namePrefix, args, config };
}

/** Valid container sizes per cloud (the platforms accept only certain combinations; components/limits.ts). */
export function containerSizeProblem(cloud: Cloud, size: ContainerSize): { key: string; what: string; example: string } | undefined {
  const { cpu, memoryMiB } = size;
  const got = `(got containerCpu=${cpu}, containerMemoryMiB=${memoryMiB})`;
  const problem = {
    aws: () => fargateSizeProblem(cpu, memoryMiB),
    azure: () => containerAppSizeProblem(cpu, memoryMiB),
    // Cloud Run rounds less than 1 vCPU up to 1 (always-allocated CPU needs at least 1).
    gcp: () => cloudRunSizeProblem(Math.max(1, cpu), memoryMiB),
    local: () => undefined,
  }[cloud]();
  if (!problem) return undefined;
  return { key: problem.of === "cpu" ? "containerCpu" : "containerMemoryMiB", what: `${problem.what} ${got}`, example: String(problem.valid) };
}

/** Which setting feeds which engine variable, to name the right key when the engine rejects a value. */
const ENGINE_VAR_TO_KEY: Partial<Record<keyof typeof VARIABLES, string>> = {
  PG_HOST: "postgres.host",
  PG_PORT: "postgres.port",
  PG_DATABASE: "postgres.database",
  PG_USER: "postgres.user",
  PG_SSLMODE: "postgres.sslmode",
  PG_AUTH: "postgres.auth",
  PG_AUTH_REGION: "postgres.authRegion",
  PG_PUBLICATION: "postgres.publication",
  PG_SLOT: "postgres.slot",
  TABLE_INCLUDE: "postgres.tables",
  SNAPSHOT_MODE: "snapshotMode",
  SINK_COMPRESSION: "sinkCompression",
  BATCH_MAX_SIZE: "batching.maxSize",
  BATCH_MAX_BYTES: "batching.maxBytes",
  BATCH_MAX_WAIT_MS: "batching.maxWaitMs",
  MAX_RECORD_BYTES: "batching.maxRecordBytes",
  HEARTBEAT_INTERVAL_MS: "batching.heartbeatIntervalMs",
  LOG_LEVEL: "logLevel",
};

function checkAgainstEngine(
  pg: z.output<typeof postgresSchema> & { user: string },
  batching: z.output<typeof batchingSchema>,
  rest: { snapshotMode: string; logLevel: string; sinkCompression: string },
): string[] {
  const env = {
    ...engineEnvironment({ postgres: pg, batching, ...rest } as unknown as EngineEnvInput, "file:///landing"),
    ...(pg.auth === "password" ? { PG_PASSWORD: "checked-separately" } : {}),
  };
  try {
    loadConfig(env);
    return [];
  } catch (err) {
    if (!(err instanceof EngineConfigError)) throw err;
    return err.problems.map((line) => {
      const variable = line.split(" ")[0] as keyof typeof VARIABLES;
      const key = ENGINE_VAR_TO_KEY[variable];
      return key ? problem(key, `is rejected by the engine: ${line}`, exampleFor(key), key.includes(".")) : line;
    });
  }
}

type EngineEnvInput = Pick<PlatformSettings, "snapshotMode" | "logLevel" | "sinkCompression"> & {
  /** maxRecordBytes: MAX_RECORD_BYTES when given (resolvePlatform always gives it), else the engine's default. */
  batching: z.output<typeof batchingSchema>;
  postgres: Omit<PostgresSettings, "password">;
  /** With a Kafka sink, SINK_URL and the KAFKA_* variables come from it (components/kafka.ts). */
  sink?: SinkSettings;
  cloud?: string;
};

/** The engine's log line at every process start (container/src/cli.ts); alerts count restarts by it. */
export const ENGINE_STARTING_MESSAGE = "cdc-engine starting";

/** `host:port/database`: with the slot name it names a replication slot (the engine's metrics dimensions, docs/engine.md). */
export function slotSource(pg: Pick<PostgresSettings, "host" | "port" | "database">): string {
  return `${pg.host}:${pg.port}/${pg.database}`;
}

/** The port the engine serves /healthz, /readyz and /metrics on, inside the container. */
export const ENGINE_HTTP_PORT = 8080;

/**
 * The engine's environment (issue #2's contract, container/src/config VARIABLES), without the
 * password: every target injects PG_PASSWORD from its secret store, never as a plain value.
 */
export function engineEnvironment(s: EngineEnvInput, sinkUrl: string, kafkaBootstrap?: string): Record<string, string> {
  const env: Record<string, string> = {
    PG_HOST: s.postgres.host,
    PG_PORT: String(s.postgres.port),
    PG_DATABASE: s.postgres.database,
    PG_USER: s.postgres.user,
    PG_SSLMODE: s.postgres.sslmode,
    PG_PUBLICATION: s.postgres.publication,
    PG_SLOT: s.postgres.slot,
    TABLE_INCLUDE: s.postgres.tables.join(","),
    SNAPSHOT_MODE: s.snapshotMode,
    SINK_URL: sinkUrl,
    SINK_COMPRESSION: s.sinkCompression,
    BATCH_MAX_SIZE: String(s.batching.maxSize),
    BATCH_MAX_BYTES: String(s.batching.maxBytes),
    BATCH_MAX_WAIT_MS: String(s.batching.maxWaitMs),
    HEARTBEAT_INTERVAL_MS: String(s.batching.heartbeatIntervalMs),
    HTTP_PORT: String(ENGINE_HTTP_PORT),
    LOG_LEVEL: s.logLevel,
  };
  // An empty TABLE_INCLUDE means "what the publication publishes"; leaving it out says the same.
  if (env.TABLE_INCLUDE === "") delete env.TABLE_INCLUDE;
  if (s.batching.maxRecordBytes !== undefined) env.MAX_RECORD_BYTES = String(s.batching.maxRecordBytes);
  if (s.postgres.sslrootcert) env.PG_SSLROOTCERT_PEM = s.postgres.sslrootcert;
  // Keyless: the engine asks its platform identity for a token at every connection (no PG_PASSWORD).
  if (s.postgres.auth !== "password") env.PG_AUTH = s.postgres.auth;
  if (s.postgres.authRegion) env.PG_AUTH_REGION = s.postgres.authRegion;
  return { ...env, ...kafkaEnvironment(s.sink, s.cloud ?? "local", kafkaBootstrap) };
}
