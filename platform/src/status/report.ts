/**
 * What `cdc-platform status` shows: one line per thing checked, each healthy, unhealthy or just
 * information; the stack is healthy when no line is unhealthy.
 */
export interface StatusLine {
  /** true healthy, false unhealthy, undefined information only. */
  ok: boolean | undefined;
  what: string;
  detail: string;
}

export interface StatusReport {
  title: string;
  lines: StatusLine[];
}

export const healthy = (r: StatusReport): boolean => r.lines.every((l) => l.ok !== false);

export function formatReport(r: StatusReport): string {
  const mark = (ok: boolean | undefined) => (ok === true ? "ok  " : ok === false ? "FAIL" : "info");
  return [r.title, ...r.lines.map((l) => `${mark(l.ok)}  ${l.what}: ${l.detail}`), healthy(r) ? "healthy" : "UNHEALTHY", ""].join("\n");
}

/** "3 min ago" for an instant, against `now`. */
export function ago(at: Date, now: Date): string {
  const s = Math.max(0, Math.round((now.getTime() - at.getTime()) / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  if (s < 172_800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86_400)} days ago`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = -1;
  do {
    v /= 1024;
    i++;
  } while (v >= 1024 && i < units.length - 1);
  return `${v.toFixed(1)} ${units[i]}`;
}
