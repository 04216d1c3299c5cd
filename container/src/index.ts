/**
 * The engine as a library: the same pieces `cdc-engine run` wires together, for embedding the
 * engine in another Node.js process or building tools on the landing contract.
 */
export { loadConfig, parseSinkUrl, ConfigError, VARIABLES } from "./config";
/** Kept under its published name: the pg ClientConfig the engine connects with. */
export { clientConfig as pgClientConfig } from "./source/connection";
export type { EngineConfig, TableName, SinkLocation } from "./config";
export { runEngine } from "./engine";
export type { EngineDeps } from "./engine";
export { prepareSource, inspectSource, SourceSetupError } from "./source/setup";
export type { SourceCheck } from "./source/setup";
export { createSink, probeSink, SinkPermanentError } from "./sink";
export type { LandingSink } from "./sink";
export type { EngineMetrics } from "./ops/metrics";
export { PrometheusMetrics } from "./ops/prometheus";
export type { EnginePhase, Readiness } from "./ops/prometheus";
export { createLogger } from "./ops/logger";
export { MetricsLog, teeMetrics, METRICS_LOG_MESSAGE, EMF_NAMESPACE } from "./ops/metrics-log";
export { startOpsServer } from "./ops/http";
export type { OpsServer } from "./ops/http";
export { main, sourceDoctorChecks } from "./cli";
