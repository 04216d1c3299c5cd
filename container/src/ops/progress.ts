/**
 * The engine's progress as a log line: every PROGRESS_INTERVAL_MS one `"msg":"progress"` line with
 * the phase, the confirmed LSN, the replication lag, the last flush and what has landed since the
 * start. /metrics says the same to whoever can reach the port; the cloud services run the engine
 * without ingress, so its logs are where `cdc-platform status` reads it (docs/engine.md).
 */
import type { Logger } from "pino";
import { formatLsn } from "../source/lsn";
import type { EngineMetrics } from "./metrics";

export const PROGRESS_INTERVAL_MS = 60_000;

export class ProgressLog implements EngineMetrics {
  private phaseNow: Parameters<EngineMetrics["phase"]>[0] = "starting";
  private confirmed?: bigint;
  private lag?: bigint;
  private lastFlushAt?: number;
  private files = 0;
  private events = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly inner: EngineMetrics, private readonly logger: Pick<Logger, "info">, intervalMs = PROGRESS_INTERVAL_MS) {
    this.timer = setInterval(() => this.log(), intervalMs);
    this.timer.unref();
  }

  /** One progress line now. */
  log(): void {
    this.logger.info(
      {
        phase: this.phaseNow,
        confirmedLsn: this.confirmed === undefined ? null : formatLsn(this.confirmed),
        lagBytes: this.lag === undefined ? null : Number(this.lag),
        lastFlushAt: this.lastFlushAt === undefined ? null : new Date(this.lastFlushAt).toISOString(),
        filesLanded: this.files,
        eventsLanded: this.events,
      },
      "progress",
    );
  }

  stop(): void {
    clearInterval(this.timer);
  }

  eventsWritten(table: string, events: number, bytes: number): void {
    this.events += events;
    this.inner.eventsWritten(table, events, bytes);
  }
  fileWritten(table: string, bytes: number): void {
    this.files += 1;
    this.inner.fileWritten(table, bytes);
  }
  flushed(at: number): void {
    this.lastFlushAt = at;
    this.inner.flushed(at);
  }
  confirmedLsn(lsn: bigint): void {
    this.confirmed = lsn;
    this.inner.confirmedLsn(lsn);
  }
  replicationLagBytes(bytes: bigint): void {
    this.lag = bytes;
    this.inner.replicationLagBytes(bytes);
  }
  phase(phase: Parameters<EngineMetrics["phase"]>[0]): void {
    this.phaseNow = phase;
    this.inner.phase(phase);
  }
}
