/** Query results as a plain-text table a person can read in a terminal. */

const MAX_CELL = 48;

function cell(v: unknown): string {
  if (v === null || v === undefined) return "NULL";
  const s = typeof v === "object" ? JSON.stringify(v) : String(v);
  const oneLine = s.replace(/\s+/g, " ");
  return oneLine.length > MAX_CELL ? `${oneLine.slice(0, MAX_CELL - 1)}…` : oneLine;
}

const numeric = (v: unknown): boolean => typeof v === "number" || typeof v === "bigint" || (typeof v === "string" && /^-?\d+(\.\d+)?$/.test(v));

export function formatTable(columns: string[], rows: unknown[][], options: { maxRows?: number } = {}): string {
  const maxRows = options.maxRows ?? Infinity;
  const shown = rows.slice(0, maxRows);
  const cells = shown.map((r) => r.map(cell));
  const right = columns.map((_, i) => shown.length > 0 && shown.every((r) => r[i] === null || numeric(r[i])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const pad = (s: string, i: number) => (right[i] ? s.padStart(widths[i]) : s.padEnd(widths[i]));
  const lines = [
    ` ${columns.map((c, i) => pad(c, i)).join(" | ")}`,
    `-${widths.map((w) => "-".repeat(w)).join("-+-")}-`,
    ...cells.map((r) => ` ${r.map((v, i) => pad(v, i)).join(" | ")}`),
  ];
  const more = rows.length - shown.length;
  lines.push(more > 0 ? `(${rows.length} rows, first ${shown.length} shown)` : `(${rows.length} row${rows.length === 1 ? "" : "s"})`);
  return lines.map((l) => l.trimEnd()).join("\n");
}
