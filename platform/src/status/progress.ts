/**
 * The engine's "progress" log line (container/src/ops/progress.ts, docs/engine.md), found among
 * log events and judged: streaming and reported recently is healthy.
 */
import { ago, bytes, type StatusLine } from "./report";

/** Progress lines come every 60 s; three missed in a row means the engine is not working. */
export const PROGRESS_STALE_MS = 3 * 60_000;

export interface Progress {
  at: Date;
  phase: string;
  confirmedLsn: string | null;
  lagBytes: number | null;
  lastFlushAt: string | null;
  filesLanded: number;
  eventsLanded: number;
}

/** The newest progress line and the newest error among log messages (pino JSON, one per event). */
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
    // The engine writes `time` as ISO-8601 and `level` as a name (docs/engine.md, "Logs"); plain pino numbers are read too.
    const at = new Date(typeof line.time === "number" || typeof line.time === "string" ? line.time : (m.timestamp ?? 0));
    if (Number.isNaN(at.getTime())) continue;
    if (line.msg === "progress") {
      if (!progress || at >= progress.at) {
        progress = {
          at,
          phase: String(line.phase ?? "unknown"),
          confirmedLsn: (line.confirmedLsn as string | null) ?? null,
          lagBytes: typeof line.lagBytes === "number" ? line.lagBytes : null,
          lastFlushAt: (line.lastFlushAt as string | null) ?? null,
          filesLanded: Number(line.filesLanded ?? 0),
          eventsLanded: Number(line.eventsLanded ?? 0),
        };
      }
    } else if ((line.level === "error" || line.level === "fatal" || (typeof line.level === "number" && line.level >= 50)) && (!lastError || at >= lastError.at)) {
      lastError = { at, msg: String(line.msg ?? "") };
    }
  }
  return { progress, lastError };
}

export function progressLines(found: ReturnType<typeof scanLogs>, now: Date, where: string): StatusLine[] {
  const lines: StatusLine[] = [];
  const p = found.progress;
  if (!p) {
    lines.push({ ok: false, what: "engine", detail: `no progress line in ${where} in the last 30 minutes: the engine is not running (or logs below info)` });
  } else {
    const stale = now.getTime() - p.at.getTime() > PROGRESS_STALE_MS;
    const flush = p.lastFlushAt ? `last flush ${ago(new Date(p.lastFlushAt), now)}` : "nothing flushed yet";
    lines.push({
      ok: !stale && p.phase === "streaming",
      what: "engine",
      detail:
        `${p.phase}, confirmed LSN ${p.confirmedLsn ?? "none yet"}, lag ${p.lagBytes === null ? "unknown" : bytes(p.lagBytes)}, ${flush}, ` +
        `${p.filesLanded.toLocaleString("en-US")} files / ${p.eventsLanded.toLocaleString("en-US")} changes landed since start (reported ${ago(p.at, now)}${stale ? ": too long ago" : ""})`,
    });
  }
  if (found.lastError && (!p || found.lastError.at >= new Date(now.getTime() - 30 * 60_000))) {
    lines.push({ ok: undefined, what: "last error", detail: `${found.lastError.msg} (${ago(found.lastError.at, now)})` });
  }
  return lines;
}
