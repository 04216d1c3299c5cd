/**
 * postgres-cdc-multicloud: PostgreSQL CDC → landing zone (S3 | ADLS Gen2 | GCS | local dir) →
 * Databricks lakehouse, on the cloud `postgres-cdc-multicloud:cloud` selects. This file only reads
 * the typed, validated stack settings and builds the one top-level component; see docs/deploy.md.
 */
import * as pulumi from "@pulumi/pulumi";
import { buildPlatform, type LakehouseFactory } from "./components/platform";
import { readSettings, SettingsError, type PlatformSettings } from "./components/settings";

/**
 * The Databricks lakehouse on top of the landing zone, when `databricks.enabled` (docs/databricks.md).
 * Loaded only then: a stack without Databricks never loads its provider SDK.
 */
function databricksLakehouse(settings: PlatformSettings): LakehouseFactory | undefined {
  const { parseDatabricksSettings, DATABRICKS_CONFIG_KEY } = require("./components/databricks/settings") as typeof import("./components/databricks/settings");
  const raw = settings.config.getObject<unknown>(DATABRICKS_CONFIG_KEY);
  const lakehouse = asSettingsError(() => parseDatabricksSettings(raw, `${settings.config.name}:${DATABRICKS_CONFIG_KEY}`));
  if (!lakehouse.enabled) return undefined;
  return (landing, opts) => asSettingsError(() => {
    const { createDatabricksPipeline } = require("./components/databricks") as typeof import("./components/databricks");
    return createDatabricksPipeline("databricks", {
      landing,
      settings: lakehouse,
      engineTables: settings.postgres.tables,
      namePrefix: settings.baseName,
      tags: settings.tags,
    }, opts);
  });
}

/** Configuration errors from other components become the same one-message preview failure. */
function asSettingsError<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const problems = (err as { problems?: unknown }).problems;
    if (Array.isArray(problems)) throw new SettingsError(problems.map(String));
    throw err;
  }
}

const settings = readSettings();
const platform = buildPlatform(settings, databricksLakehouse(settings));

/** Where the engine lands files (the engine's SINK_URL). */
export const landingUrl = platform.landingUrl;
/** The image the service runs, by digest. */
export const imageRef = platform.imageRef;
export const serviceName = platform.serviceName;
export const serviceId = platform.serviceId;
/** Where to read the engine's logs. */
export const logLocation = platform.logLocation;
/** What the engine runs in: the ECS cluster, Container Apps environment, Cloud Run project/region or Docker. */
export const engineRuntime = platform.runtime;
/** AWS: the engine's security group; admit it in your database's security group. */
export const engineSecurityGroupId = platform.securityGroupId;
/** The identities the engine acts as (role ARNs, managed identity ids, service account). */
export const engineIdentities = pulumi.output(platform.identities);
/** Paste to follow the engine's logs. */
export const tailLogsCommand = platform.commands.tailLogs;
/** Paste to see whether the engine is up. */
export const healthCommand = platform.commands.checkHealth;
/** The Databricks job, when databricks.enabled. */
export const databricksJobUrl = platform.lakehouseJobUrl;
export const cloud = settings.cloud;
