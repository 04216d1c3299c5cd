/**
 * The package's API for other Pulumi programs: `import { CdcPlatform, EngineImage } from
 * "postgres-cdc-multicloud"`. Components take typed arguments (never pulumi.Config); each cloud's
 * own components are at "postgres-cdc-multicloud/aws", "/azure", "/gcp" and "/local", loaded only
 * when imported. This module loads no provider SDK by itself.
 */
export { CdcPlatform, type CdcPlatformArgs, type LakehouseFactory, type LakehousePlacement } from "./platform";
export { EngineImage, type EngineImageArgs, buildContextFiles, buildContentHash } from "./engineImage";
export { databricksLakehouse, stackLakehouse } from "./lakehouse";
export { LIMITS, NAME_RULES, RESOURCE_LIMITS } from "./limits";
export { baseName } from "./naming";
export {
  capturedTables,
  engineSpecs,
  legacyPlatformName,
  MAX_PIPELINES,
  type AlertThresholds,
  type EngineSpec,
  type PipelineSettings,
  readSettings,
  resolvePlatform,
  SettingsError,
  type Cloud,
  type PlatformArgs,
  type PlatformSettings,
  type StackSettings,
} from "./settings";
export type { LandingFacts, ServiceFacts } from "./types";
