/**
 * The drain phase run twice by the engine, once per pgoutput format (PG_BINARY; docs/engine.md
 * "Binary mode"), each on its own slot of the same backlog, so binary and text are compared side by
 * side in one run: rate, and CPU per change of the engine and of its walsender (the figure binary
 * mode is meant to lower).
 */
import { createHash } from "node:crypto";
import { readFile, readdir } from "node:fs/promises";
import { join, relative } from "node:path";

export type DrainFormat = "binary" | "text";

export interface FormatFigures {
  /** From process start until the slot is confirmed past the backlog. */
  seconds: number;
  cpu: { consumer: number; walsender: number };
  /** The engine's CPU seconds when its slot became active (start-up), when seen. */
  startupCpu: number | undefined;
  peakRssMb: number;
}

/** The engine's default format (PG_BINARY=auto: binary on PostgreSQL 14+ for the bench table's types): its run gives the drain phase's figures. */
export const MAIN_FORMAT: DrainFormat = "binary";

/** The slot each format's engine run drains. */
export const FORMAT_SLOTS: Record<DrainFormat, string> = { binary: "bench_drain_engine", text: "bench_drain_engine_text" };

/** PG_BINARY for each run. */
export const FORMAT_ENV: Record<DrainFormat, Record<string, string>> = { binary: { PG_BINARY: "on" }, text: { PG_BINARY: "off" } };

export const formatFigures: Partial<Record<DrainFormat, FormatFigures>> = {};

/** SHA-256 over every landed object's name and bytes, per format: equal when the records are byte for byte the same. */
const digests: Partial<Record<DrainFormat, string>> = {};

export async function recordLandingDigest(format: DrainFormat, tableDir: string): Promise<void> {
  const files = (await readdir(tableDir, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
  const hash = createHash("sha256");
  for (const file of files) {
    hash.update(relative(tableDir, file) + "\n");
    hash.update(await readFile(file));
  }
  digests[format] = hash.digest("hex");
}

function identical(): string {
  if (!digests.binary || !digests.text) return "not compared";
  return digests.binary === digests.text ? "landing objects byte for byte identical" : "LANDING OBJECTS DIFFER";
}

/** µs of CPU per change. */
export const usPerChange = (cpuSeconds: number, changes: number): number => (cpuSeconds * 1e6) / changes;

const afterStartup = (f: FormatFigures, changes: number) => (f.startupCpu === undefined ? "?" : `${usPerChange(f.cpu.consumer - f.startupCpu, changes).toFixed(2)} µs`);

/** The results.md row comparing the two runs, or undefined when one is missing. */
export function formatComparisonRow(changes: number): string | undefined {
  const b = formatFigures.binary;
  const t = formatFigures.text;
  if (!b || !t) return undefined;
  const one = (name: string, f: FormatFigures) =>
    `${name}: ${Math.round(changes / f.seconds).toLocaleString("en-US")} changes/s (${f.seconds.toFixed(2)} s), engine ${usPerChange(f.cpu.consumer, changes).toFixed(2)} µs (${afterStartup(f, changes)} after start-up) + walsender ${usPerChange(f.cpu.walsender, changes).toFixed(2)} µs = ${usPerChange(f.cpu.consumer + f.cpu.walsender, changes).toFixed(2)} µs per change, peak RSS ${f.peakRssMb.toFixed(1)} MB`;
  return `| Engine drain by pgoutput format (same backlog, one slot each; binary = PG_BINARY=on, text = PG_BINARY=off) | ${one("binary", b)}; ${one("text", t)}; ${identical()} |`;
}

/** The log line of the comparison. */
export function formatComparisonLog(changes: number): string | undefined {
  const b = formatFigures.binary;
  const t = formatFigures.text;
  if (!b || !t) return undefined;
  const cell = (f: FormatFigures) => `${Math.round(changes / f.seconds)} changes/s, engine ${usPerChange(f.cpu.consumer, changes).toFixed(2)} µs (${afterStartup(f, changes)} after start-up) + walsender ${usPerChange(f.cpu.walsender, changes).toFixed(2)} µs per change`;
  return `drain by format: binary ${cell(b)} | text ${cell(t)} | ${identical()}`;
}
