/**
 * The Databricks part of the platform, as one component: Unity Catalog access to the landing
 * storage (the cloud's own way), the external location, catalog, schemas and checkpoint volume,
 * the notebooks and shared SQL uploaded from this repository, and the bronze → silver → gold job.
 *
 * index.ts builds it on top of the platform's landing storage (see databricksLakehouse there):
 *
 *   const settings = readDatabricksSettings(config);                 // validated; disabled when unset
 *   const pipeline = createDatabricksPipeline("databricks", { landing, settings, engineTables, namePrefix, tags }, { parent });
 *   export const databricksJobUrl = pipeline?.jobUrl;                 // undefined = nothing was created
 */
import * as pulumi from "@pulumi/pulumi";
import * as databricks from "@pulumi/databricks";
import type { LandingFacts } from "../types";
import { LakehouseCatalog } from "./catalog";
import { LandingCredential } from "./credential";
import { MedallionJob } from "./job";
import { LandingStorageFacts } from "./landing";
import { DATABRICKS_CONFIG_KEY, DatabricksConfigError, DatabricksSettings, parseDatabricksSettings, resolveTables } from "./settings";
import { MedallionWorkspace } from "./workspace";

export * from "./settings";
export * from "./landing";
export { MedallionJob, jobParameters, TASK_KEYS } from "./job";
export { MedallionWorkspace, medallionFiles, NOTEBOOKS } from "./workspace";
export { LakehouseCatalog, CHECKPOINT_VOLUME } from "./catalog";
// The per-cloud access components (./aws, ./azure, ./gcp) are loaded only for the stack's cloud:
// each pulls in that cloud's provider SDK.

export interface DatabricksPipelineArgs {
  /** The landing storage the engine writes to (created by the same stack). */
  landing: LandingStorageFacts;
  /** The validated `databricks` setting (see parseDatabricksSettings / readDatabricksSettings). */
  settings: DatabricksSettings;
  /** The engine's captured tables (schema.table), used when settings.tables is not given. */
  engineTables?: readonly string[];
  /** Stack-unique, lower-case name base (e.g. "cdc-prod"): prefixes cloud and Unity Catalog names. */
  namePrefix: string;
  /** Tags/labels for every taggable resource (AWS role, access connector, job, job cluster). */
  tags?: Record<string, string>;
  /** Shown in messages; the full config key of the setting. */
  configKey?: string;
  /** With the engine publishing to Kafka: bronze reads the topics (the notebook's Kafka variant) instead of landing objects. */
  kafka?: { bootstrap: pulumi.Input<string>; topicPrefix: string };
}

/** Reads and validates the `databricks` stack setting (absent = disabled). */
export function readDatabricksSettings(config: pulumi.Config = new pulumi.Config(), key = DATABRICKS_CONFIG_KEY): DatabricksSettings {
  return parseDatabricksSettings(config.getObject<unknown>(key), `${config.name}:${key}`);
}

/** Adapts the platform's landing facts (components/types.ts) to what this component needs. */
export function landingFromPlatform(facts: LandingFacts): LandingStorageFacts {
  switch (facts.cloud) {
    case "aws":
      if (!facts.aws) break;
      return {
        cloud: "aws",
        landingUrl: facts.url,
        bucketName: facts.aws.bucketName,
        bucketArn: facts.aws.bucketArn,
        prefix: facts.prefix,
        accountId: facts.aws.accountId,
      };
    case "azure":
      if (!facts.azure) break;
      return {
        cloud: "azure",
        landingUrl: facts.url,
        resourceGroupName: facts.azure.resourceGroupName,
        location: facts.region,
        storageAccountName: facts.azure.storageAccountName,
        containerName: facts.azure.containerName,
        containerId: facts.azure.containerId,
      };
    case "gcp":
      if (!facts.gcp) break;
      return { cloud: "gcp", landingUrl: facts.url, bucketName: facts.gcp.bucketName };
    default:
      throw new DatabricksConfigError([
        `${DATABRICKS_CONFIG_KEY}.enabled is true, but the landing zone is on "${facts.cloud}": Databricks reads the landing zone ` +
          `from cloud storage, so set postgres-cdc-multicloud:cloud to aws, azure or gcp (or databricks.enabled=false)`,
      ]);
  }
  throw new Error(`landing facts for cloud "${facts.cloud}" lack the ${facts.cloud} storage details`);
}

/**
 * What index.ts calls: the pipeline when `databricks.enabled` is true, nothing at all otherwise.
 * `landing` may be the platform's LandingFacts (components/types.ts) or this component's own shape.
 */
export function createDatabricksPipeline(
  name: string,
  args: Omit<DatabricksPipelineArgs, "landing"> & { landing: LandingFacts | LandingStorageFacts },
  opts?: pulumi.ComponentResourceOptions,
): DatabricksPipeline | undefined {
  if (!args.settings.enabled) return undefined;
  const landing = "landingUrl" in args.landing ? args.landing : landingFromPlatform(args.landing);
  return new DatabricksPipeline(name, { ...args, landing }, opts);
}

export class DatabricksPipeline extends pulumi.ComponentResource {
  /** The job's page in the workspace. */
  readonly jobUrl: pulumi.Output<string>;
  readonly jobId: pulumi.Output<string>;
  readonly catalogName: pulumi.Output<string>;
  readonly externalLocationName: pulumi.Output<string>;
  readonly storageCredentialName: pulumi.Output<string>;
  readonly checkpointRoot: pulumi.Output<string>;
  readonly workspaceFolder: string;

  constructor(name: string, args: DatabricksPipelineArgs, opts?: pulumi.ComponentResourceOptions) {
    super("postgres-cdc-multicloud:databricks:DatabricksPipeline", name, {}, opts);
    const { settings, landing } = args;
    const tags = args.tags ?? {};
    const configKey = args.configKey ?? DATABRICKS_CONFIG_KEY;
    if (!settings.enabled) {
      throw new Error(`DatabricksPipeline was created although ${configKey}.enabled is false; create it only when enabled`);
    }
    const tables = resolveTables(settings, args.engineTables ?? [], configKey);

    // An explicit workspace connection from the setting; otherwise the default provider, which
    // reads the standard databricks:host / databricks:token config (or DATABRICKS_* variables).
    const provider =
      settings.host || settings.token
        ? new databricks.Provider(
            `${name}-workspace`,
            {
              ...(settings.host ? { host: settings.host } : {}),
              ...(settings.token ? { token: pulumi.secret(settings.token) } : {}),
            },
            { parent: this },
          )
        : undefined;
    const childOpts: pulumi.ComponentResourceOptions = { parent: this, ...(provider ? { providers: [provider] } : {}) };

    let credential: LandingCredential;
    switch (landing.cloud) {
      case "aws": {
        const { AwsLandingCredential } = require("./aws") as typeof import("./aws");
        credential = new AwsLandingCredential(`${name}-access`, { landing, namePrefix: args.namePrefix, tags }, childOpts);
        break;
      }
      case "azure": {
        const { AzureLandingCredential } = require("./azure") as typeof import("./azure");
        credential = new AzureLandingCredential(`${name}-access`, { landing, namePrefix: args.namePrefix, tags }, childOpts);
        break;
      }
      case "gcp": {
        const { GcpLandingCredential } = require("./gcp") as typeof import("./gcp");
        credential = new GcpLandingCredential(`${name}-access`, { landing, namePrefix: args.namePrefix }, childOpts);
        break;
      }
    }

    const catalog = new LakehouseCatalog(
      `${name}-catalog`,
      {
        landingUrl: landing.landingUrl,
        credentialName: credential.credentialName,
        accessGranted: credential.accessGranted,
        settings,
        namePrefix: args.namePrefix,
      },
      childOpts,
    );

    const folder = settings.workspaceDir ?? `/Shared/postgres-cdc-multicloud/${args.namePrefix}`;
    const workspace = new MedallionWorkspace(`${name}-notebooks`, { folder }, childOpts);

    const job = new MedallionJob(
      `${name}-job`,
      {
        cloud: landing.cloud,
        settings,
        tables,
        notebookPaths: workspace.notebookPaths,
        workspaceFolder: folder,
        landingUrl: landing.landingUrl,
        catalogName: catalog.catalogName,
        bronzeSchema: catalog.bronzeSchema,
        silverSchema: catalog.silverSchema,
        goldSchema: catalog.goldSchema,
        checkpointRoot: catalog.checkpointRoot,
        namePrefix: args.namePrefix,
        tags,
        kafka: args.kafka,
      },
      { ...childOpts, dependsOn: [workspace] },
    );

    this.jobUrl = job.jobUrl;
    this.jobId = job.jobId;
    this.catalogName = catalog.catalogName;
    this.externalLocationName = catalog.externalLocationName;
    this.storageCredentialName = credential.credentialName;
    this.checkpointRoot = catalog.checkpointRoot;
    this.workspaceFolder = folder;
    this.registerOutputs({
      jobUrl: this.jobUrl,
      jobId: this.jobId,
      catalogName: this.catalogName,
      externalLocationName: this.externalLocationName,
      storageCredentialName: this.storageCredentialName,
      checkpointRoot: this.checkpointRoot,
      workspaceFolder: this.workspaceFolder,
    });
  }
}
