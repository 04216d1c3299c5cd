/**
 * EngineMetrics backed by prom-client, on a registry of its own (so tests and embedders can run
 * several engines in one process), plus the readiness state /readyz reports.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import type { EngineMetrics } from "./metrics";

export type EnginePhase = Parameters<EngineMetrics["phase"]>[0];

export const PHASES: readonly EnginePhase[] = ["starting", "snapshot", "streaming", "waiting_for_slot", "reconnecting", "stopping"];

export interface Readiness {
  ready: boolean;
  phase: EnginePhase;
  /** Latest replication lag in bytes, when known. */
  lagBytes: number | undefined;
  /** Why the engine is not ready (absent when ready). */
  reason?: string;
}

export class PrometheusMetrics implements EngineMetrics {
  readonly registry = new Registry();
  private currentPhase: EnginePhase = "starting";
  private lag: number | undefined;
  private phaseReason: string | undefined;

  private readonly events = new Counter({
    name: "cdc_events_written_total",
    help: "Change events made durable in the sink, per source table.",
    labelNames: ["table"],
    registers: [this.registry],
  });
  private readonly eventBytes = new Counter({
    name: "cdc_bytes_written_total",
    help: "NDJSON bytes (before compression) of the change events made durable in the sink, per source table.",
    labelNames: ["table"],
    registers: [this.registry],
  });
  private readonly files = new Counter({
    name: "cdc_files_written_total",
    help: "Landing objects made durable in the sink, per source table.",
    labelNames: ["table"],
    registers: [this.registry],
  });
  private readonly fileBytes = new Counter({
    name: "cdc_file_bytes_written_total",
    help: "Bytes of landing objects as stored in the sink (after compression), per source table.",
    labelNames: ["table"],
    registers: [this.registry],
  });
  private readonly lastFlush = new Gauge({
    name: "cdc_last_flush_timestamp_seconds",
    help: "Unix time of the last completed flush round.",
    registers: [this.registry],
  });
  private readonly confirmed = new Gauge({
    name: "cdc_confirmed_lsn",
    help: "The WAL position (LSN as a number) last confirmed to PostgreSQL; everything before it is in the sink.",
    registers: [this.registry],
  });
  private readonly lagGauge = new Gauge({
    name: "cdc_replication_lag_bytes",
    help: "Server WAL end minus the confirmed LSN, in bytes.",
    registers: [this.registry],
  });
  private readonly snapshotRows = new Gauge({
    name: "cdc_snapshot_rows_copied",
    help: "Rows of a table read by its latest snapshot so far (handed to the batcher; cdc_events_written_total counts the durable ones).",
    labelNames: ["table"],
    registers: [this.registry],
  });
  private readonly incrementalChunks = new Gauge({
    name: "cdc_incremental_snapshot_chunks",
    help: "Chunks of a table's incremental snapshot durable in the sink so far.",
    labelNames: ["table"],
    registers: [this.registry],
  });
  private readonly incrementalRows = new Gauge({
    name: "cdc_incremental_snapshot_rows",
    help: "Rows a table's incremental snapshot landed so far (its chunks' rows not dropped for a streamed change).",
    labelNames: ["table"],
    registers: [this.registry],
  });
  private readonly snapshotRanges = new Gauge({
    name: "cdc_snapshot_ranges_done",
    help: "Block ranges of a table its latest snapshot has copied; cdc_snapshot_ranges is how many it was split into.",
    labelNames: ["table"],
    registers: [this.registry],
  });
  private readonly snapshotEstimateGauge = new Gauge({
    name: "cdc_snapshot_rows_estimated",
    help: "The catalog's estimate (pg_class.reltuples, of the table or its partitions) of the rows its latest snapshot copies: progress is cdc_snapshot_rows_copied / this. Absent while the table was never analyzed or vacuumed.",
    labelNames: ["table"],
    registers: [this.registry],
  });
  private readonly snapshotRangeCount = new Gauge({
    name: "cdc_snapshot_ranges",
    help: "Block ranges the latest snapshot of a table was split into (1: copied as one).",
    labelNames: ["table"],
    registers: [this.registry],
  });
  private readonly phaseGauge = new Gauge({
    name: "cdc_phase",
    help: "1 for the engine's current phase, 0 for the others.",
    labelNames: ["phase"],
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    for (const p of PHASES) this.phaseGauge.set({ phase: p }, p === this.currentPhase ? 1 : 0);
  }

  eventsWritten(table: string, events: number, bytes: number): void {
    this.events.inc({ table }, events);
    this.eventBytes.inc({ table }, bytes);
  }

  fileWritten(table: string, bytes: number): void {
    this.files.inc({ table });
    this.fileBytes.inc({ table }, bytes);
  }

  flushed(at: number): void {
    this.lastFlush.set(at / 1000);
  }

  confirmedLsn(lsn: bigint): void {
    this.confirmed.set(Number(lsn));
  }

  replicationLagBytes(bytes: bigint): void {
    this.lag = Number(bytes);
    this.lagGauge.set(this.lag);
  }

  snapshotProgress(table: string, rows: number, rangesDone: number, ranges: number): void {
    this.snapshotRows.set({ table }, rows);
    this.snapshotRanges.set({ table }, rangesDone);
    this.snapshotRangeCount.set({ table }, ranges);
  }

  incrementalProgress(table: string, chunks: number, rows: number): void {
    this.incrementalChunks.set({ table }, chunks);
    this.incrementalRows.set({ table }, rows);
  }

  snapshotEstimate(table: string, rows: number): void {
    this.snapshotEstimateGauge.set({ table }, rows);
  }

  phase(phase: EnginePhase, reason?: string): void {
    this.phaseReason = reason;
    if (phase !== "streaming") this.lag = undefined; // a lag from before a reconnect says nothing about now
    this.phaseGauge.set({ phase: this.currentPhase }, 0);
    this.currentPhase = phase;
    this.phaseGauge.set({ phase }, 1);
  }

  readiness(): Readiness {
    const base = { phase: this.currentPhase, lagBytes: this.lag };
    if (this.currentPhase !== "streaming") {
      const phase = `engine is ${this.currentPhase.replace(/_/g, " ")}, not streaming`;
      return { ...base, ready: false, reason: this.phaseReason ? `${phase}: ${this.phaseReason}` : phase };
    }
    if (this.lag === undefined) return { ...base, ready: false, reason: "streaming, but the replication lag is not known yet" };
    return { ...base, ready: true };
  }

  /** Prometheus text exposition of every metric. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
