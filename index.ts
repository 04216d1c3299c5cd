/**
 * postgres-cdc-multicloud: PostgreSQL CDC → landing zone (S3 | ADLS Gen2 | GCS | local dir) →
 * lakehouse, on the cloud `postgres-cdc-multicloud:cloud` selects. This file only reads the typed,
 * validated stack settings and builds the one top-level component; see docs/deploy.md.
 */
import { buildPlatform } from "./components/platform";
import { readSettings } from "./components/settings";

const settings = readSettings();
const platform = buildPlatform(settings);

/** Where the engine lands files (the engine's SINK_URL). */
export const landingUrl = platform.landingUrl;
/** The image the service runs, by digest. */
export const imageRef = platform.imageRef;
export const serviceName = platform.serviceName;
export const serviceId = platform.serviceId;
/** Where to read the engine's logs. */
export const logLocation = platform.logLocation;
/** The Databricks job, when databricks.enabled. */
export const databricksJobUrl = platform.lakehouseJobUrl;
export const cloud = settings.cloud;
