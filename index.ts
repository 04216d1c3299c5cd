/**
 * postgres-cdc-multicloud: PostgreSQL CDC → landing zone (S3 | ADLS Gen2 | GCS | local dir) →
 * Databricks lakehouse, on the cloud `postgres-cdc-multicloud:cloud` selects. This program only
 * reads the typed, validated stack settings and builds one CdcPlatform from them; other programs
 * build theirs from typed arguments (`import { CdcPlatform } from "postgres-cdc-multicloud"`). See
 * docs/deploy.md.
 */
import * as pulumi from "@pulumi/pulumi";
import { CdcPlatform, legacyPlatformName, readSettings, stackLakehouse } from "./components";

const stack = readSettings();
const platform = new CdcPlatform(stack.name, { ...stack.args, lakehouse: stackLakehouse(stack) }, {
  // Stacks created before the platform was named after namePrefix keep their resources.
  aliases: [{ name: legacyPlatformName(stack.name, pulumi.getStack()) }],
});

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
/** Keyless database login (postgres.auth): the PostgreSQL role the engine logs in as, and the one-time step on the database for it. */
export const databaseLogin = platform.databaseLogin ? pulumi.output(platform.databaseLogin) : undefined;
/** The Databricks job, when databricks.enabled. */
export const databricksJobUrl = platform.lakehouseJobUrl;
/** With `pipelines`: each engine's service name, identities and commands, by pipeline (the outputs above are the first's). */
export const pipelines = platform.pipelines
  ? pulumi.output(Object.fromEntries(Object.entries(platform.pipelines).map(([p, f]) => [p, { serviceName: f.name, identities: f.identities, tailLogsCommand: f.commands.tailLogs, healthCommand: f.commands.checkHealth, ...(f.databaseLogin ? { databaseLogin: f.databaseLogin } : {}) }])))
  : undefined;
export const cloud = platform.settings.cloud;
