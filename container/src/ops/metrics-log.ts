/**
 * A periodic metrics line in the engine's own logs, so each cloud's log-native alerting can watch
 * the engine without scraping /metrics: CloudWatch extracts metrics from it (Embedded Metric
 * Format, METRICS_LOG=emf), Azure Monitor log search alerts query it in Log Analytics, Cloud
 * Logging log-based metrics extract its fields. One line per interval (docs/engine.md, "Metrics
 * log line"):
 *
 *   {"level":"info",…,"msg":"cdc metrics","lagBytes":0,"landingObjects":3,"eventsLanded":1200,
 *    "stalledSeconds":0,"phase":"streaming","Source":"db:5432/app","Slot":"cdc_slot"}
 */
import type { Logger } from "pino";
import { formatLsn } from "../source/lsn";
import type { EngineMetrics } from "./metrics";

/** The `msg` of the metrics line; alerts select the line by it. */
export const METRICS_LOG_MESSAGE = "cdc metrics";
/** The CloudWatch namespace of the EMF metrics. */
export const EMF_NAMESPACE = "PostgresCdc";
/** How often the line is written. */
export const METRICS_LOG_INTERVAL_MS = 60_000;
export const METRICS_LOG_FORMATS = ["json", "emf", "off"] as const;
export type MetricsLogFormat = (typeof METRICS_LOG_FORMATS)[number];

type Phase = Parameters<EngineMetrics["phase"]>[0];

export interface MetricsLogOptions {
  logger: Logger;
  /** json: plain fields; emf: the same plus CloudWatch's `_aws` block. */
  format: Exclude<MetricsLogFormat, "off">;
  /** `host:port/database` of the source: with the slot it names the replication slot everywhere. */
  source: string;
  slot: string;
  /** Epoch ms; tests pass their own clock. */
  now?: () => number;
}

/** The figures of one line. */
export interface MetricsLine {
  /** Server WAL end minus the confirmed LSN (bytes); only while streaming. */
  lagBytes?: number;
  /** Landing objects made durable since the previous line. */
  landingObjects: number;
  /** Change events made durable since the previous line. */
  eventsLanded: number;
  /**
   * Seconds since the engine last made progress (wrote a landing object or advanced the confirmed
   * LSN) while the slot had WAL it had not confirmed; 0 when there is nothing to do.
   */
  stalledSeconds: number;
  phase: Phase;
  /** The LSN last confirmed to PostgreSQL ("X/Y"); absent before the first. */
  confirmedLsn?: string;
  /** When the last flush completed (ISO-8601); absent before the first. */
  lastFlushAt?: string;
}

/**
 * EngineMetrics that accumulates the figures of the metrics line (pass it next to the Prometheus
 * metrics with teeMetrics) and writes the line on `emit()` or every interval once `start()`ed.
 */
export class MetricsLog implements EngineMetrics {
  private readonly now: () => number;
  private readonly log: Logger;
  private landingObjects = 0;
  private eventsLanded = 0;
  private lag: number | undefined;
  private confirmed = -1n;
  private lastProgressAt: number;
  private currentPhase: Phase = "starting";
  private lastFlushAt: number | undefined;

  constructor(private readonly options: MetricsLogOptions) {
    this.now = options.now ?? Date.now;
    this.lastProgressAt = this.now();
    // The line is operational data, not chatter: written at info even when LOG_LEVEL is warn or error.
    this.log = options.logger.level === "silent" ? options.logger : options.logger.child({}, { level: "info" });
  }

  eventsWritten(_table: string, events: number): void {
    this.eventsLanded += events;
  }

  fileWritten(): void {
    this.landingObjects++;
    this.lastProgressAt = this.now();
  }

  flushed(at: number): void {
    this.lastFlushAt = at;
  }

  confirmedLsn(lsn: bigint): void {
    if (lsn > this.confirmed) {
      this.confirmed = lsn;
      this.lastProgressAt = this.now();
    }
  }

  replicationLagBytes(bytes: bigint): void {
    this.lag = Number(bytes);
    if (bytes === 0n) this.lastProgressAt = this.now();
  }

  phase(phase: Phase): void {
    this.currentPhase = phase;
  }

  /** The current figures; the interval's counts start again from zero. */
  take(): MetricsLine {
    const now = this.now();
    // The last known lag counts through reconnects: a session loop that never lands is a stall too.
    const stalledSeconds = this.lag !== undefined && this.lag > 0 ? Math.max(0, Math.floor((now - this.lastProgressAt) / 1000)) : 0;
    const line: MetricsLine = {
      ...(this.currentPhase === "streaming" && this.lag !== undefined ? { lagBytes: this.lag } : {}),
      landingObjects: this.landingObjects,
      eventsLanded: this.eventsLanded,
      stalledSeconds,
      phase: this.currentPhase,
      ...(this.confirmed >= 0n ? { confirmedLsn: formatLsn(this.confirmed) } : {}),
      ...(this.lastFlushAt !== undefined ? { lastFlushAt: new Date(this.lastFlushAt).toISOString() } : {}),
    };
    this.landingObjects = 0;
    this.eventsLanded = 0;
    return line;
  }

  /** Writes one metrics line. */
  emit(): MetricsLine {
    const line = this.take();
    const dimensions = { Source: this.options.source, Slot: this.options.slot };
    const fields: Record<string, unknown> = { ...line, ...dimensions };
    if (this.options.format === "emf") {
      const metrics = [
        ...(line.lagBytes !== undefined ? [{ Name: "ReplicationLagBytes", Unit: "Bytes" }] : []),
        { Name: "LandingObjects", Unit: "Count" },
        { Name: "EventsLanded", Unit: "Count" },
        { Name: "StalledSeconds", Unit: "Seconds" },
      ];
      Object.assign(fields, {
        ReplicationLagBytes: line.lagBytes,
        LandingObjects: line.landingObjects,
        EventsLanded: line.eventsLanded,
        StalledSeconds: line.stalledSeconds,
        _aws: { Timestamp: this.now(), CloudWatchMetrics: [{ Namespace: EMF_NAMESPACE, Dimensions: [Object.keys(dimensions)], Metrics: metrics }] },
      });
    }
    this.log.info(fields, METRICS_LOG_MESSAGE);
    return line;
  }

  /** Writes the line every `intervalMs` until the returned function is called. */
  start(intervalMs = METRICS_LOG_INTERVAL_MS): () => void {
    const timer = setInterval(() => this.emit(), intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }
}

/** One EngineMetrics that reports to each of `targets`. */
export function teeMetrics(...targets: EngineMetrics[]): EngineMetrics {
  return {
    eventsWritten: (table, events, bytes) => targets.forEach((t) => t.eventsWritten(table, events, bytes)),
    fileWritten: (table, bytes) => targets.forEach((t) => t.fileWritten(table, bytes)),
    flushed: (at) => targets.forEach((t) => t.flushed(at)),
    confirmedLsn: (lsn) => targets.forEach((t) => t.confirmedLsn(lsn)),
    replicationLagBytes: (bytes) => targets.forEach((t) => t.replicationLagBytes(bytes)),
    snapshotProgress: (table, rows, rangesDone, ranges) => targets.forEach((t) => t.snapshotProgress?.(table, rows, rangesDone, ranges)),
    incrementalProgress: (table, chunks, rows) => targets.forEach((t) => t.incrementalProgress?.(table, chunks, rows)),
    snapshotEstimate: (table, rows) => targets.forEach((t) => t.snapshotEstimate?.(table, rows)),
    phase: (phase, reason) => targets.forEach((t) => t.phase(phase, reason)),
  };
}
