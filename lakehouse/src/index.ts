/**
 * The local lakehouse as a library: the medallion SQL renderer (shared with the Databricks
 * notebooks), the DuckDB runner, and the demo's schemas and workload. See docs/lakehouse.md.
 */
export * from "./sql/render";
export { refresh, ensureCatalog, bronzeTableName, RefreshError } from "./runner";
export type { RefreshOptions, RefreshResult, TableRefresh } from "./runner";
export { scanLanding, LandingError } from "./landing";
export type { LandingFile, LandingTable } from "./landing";
export { Duck } from "./duck";
export { formatTable } from "./format";
export { main } from "./cli";
export { DEMO_TABLES, DEMO_KEYS, DEMO_DDL, createDemoSchema, seedSql } from "./demo/schema";
export { runWorkload, prng } from "./demo/workload";
export { runDemo } from "./demo/demo";
