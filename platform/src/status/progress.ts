/**
 * The engine's metrics log line (`"msg":"cdc metrics"`, container/src/ops/metrics-log.ts,
 * docs/engine.md "Metrics log line"), found among log events and judged: streaming and reported
 * recently is healthy. It is the same line the stack's alerts read.
 */
import { METRICS_LOG_MESSAGE, METRICS_LOG_INTERVAL_MS } from "../../../container/src/ops/metrics-log";
import { ago, bytes, type StatusLine } from "./report";

/** Three lines missed in a row means the engine is not working. */
export const PROGRESS_STALE_MS = 3 * METRICS_LOG_INTERVAL_MS;

export interface Progress {
  at: Date;
  phase: string;
  confirmedLsn: string | null;
  lagBytes: number | null;
  lastFlushAt: string | null;
  /** Landing objects and change events made durable in the interval before the line. */
  landingObjects: number;
  eventsLanded: number;
  stalledSeconds: number;
}

/** The newest metrics line and the newest error among log messages (pino JSON, one per event). */
export function scanLogs(messages: { timestamp?: number; message: string }[]): { progress?: Progress; lastError?: { at: Date; msg: string } } {
  let progress: Progress | undefined;
  let lastError: { at: Date; msg: string } | undefined;
  for (const m of messages) {
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(m.message) as Record<string, unknown>;
    } catch {
      continue;
    }
    const time = typeof line.time === "number" || typeof line.time === "string" ? new Date(line.time) : new Date(m.timestamp ?? 0);
    const at = Number.isNaN(time.getTime()) ? new Date(m.timestamp ?? 0) : time;
    if (line.msg === METRICS_LOG_MESSAGE) {
      if (!progress || at >= progress.at) {
        progress = {
          at,
          phase: String(line.phase ?? "unknown"),
          confirmedLsn: typeof line.confirmedLsn === "string" ? line.confirmedLsn : null,
          lagBytes: typeof line.lagBytes === "number" ? line.lagBytes : null,
          lastFlushAt: typeof line.lastFlushAt === "string" ? line.lastFlushAt : null,
          landingObjects: Number(line.landingObjects ?? 0),
          eventsLanded: Number(line.eventsLanded ?? 0),
          stalledSeconds: Number(line.stalledSeconds ?? 0),
        };
      }
    } else if (isError(line.level) && (!lastError || at >= lastError.at)) {
      lastError = { at, msg: String(line.msg ?? "") };
    }
  }
  return { progress, lastError };
}

/** pino levels: numbers by default, names in the engine's logger (docs/engine.md, "Logs"). */
function isError(level: unknown): boolean {
  return (typeof level === "number" && level >= 50) || level === "error" || level === "fatal";
}

export function progressLines(found: ReturnType<typeof scanLogs>, now: Date, where: string): StatusLine[] {
  const lines: StatusLine[] = [];
  const p = found.progress;
  if (!p) {
    lines.push({ ok: false, what: "engine", detail: `no metrics line in ${where} in the last 30 minutes: the engine is not running (or runs with METRICS_LOG=off)` });
  } else {
    const stale = now.getTime() - p.at.getTime() > PROGRESS_STALE_MS;
    const flush = p.lastFlushAt ? `last flush ${ago(new Date(p.lastFlushAt), now)}` : "nothing flushed yet";
    const stalled = p.stalledSeconds > 0 ? `, no progress for ${p.stalledSeconds} s` : "";
    lines.push({
      ok: !stale && p.phase === "streaming" && p.stalledSeconds === 0,
      what: "engine",
      detail:
        `${p.phase}, confirmed LSN ${p.confirmedLsn ?? "none yet"}, lag ${p.lagBytes === null ? "unknown" : bytes(p.lagBytes)}, ${flush}${stalled}, ` +
        `${p.landingObjects.toLocaleString("en-US")} objects / ${p.eventsLanded.toLocaleString("en-US")} changes landed in the minute before (reported ${ago(p.at, now)}${stale ? ": too long ago" : ""})`,
    });
  }
  if (found.lastError && (!p || found.lastError.at >= new Date(now.getTime() - 30 * 60_000))) {
    lines.push({ ok: undefined, what: "last error", detail: `${found.lastError.msg} (${ago(found.lastError.at, now)})` });
  }
  return lines;
}
