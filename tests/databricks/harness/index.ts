/**
 * Runs tests/databricks/harness/child.ts for one configuration in its own process and returns
 * what the Databricks component registered. At most two children run at once (2 cores).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type { ChildInput } from "./child";

export const REPO = path.resolve(__dirname, "..", "..", "..");

export interface Registered {
  type: string;
  name: string;
  urn: string;
  parent: string;
  custom: boolean;
  /** Inputs as sent to the engine, secret values wrapped as {"$secret": value}. */
  inputs: Record<string, any>;
  /** URNs this resource depends on. */
  dependencies: string[];
  provider: string;
}

export interface Run {
  resources: Registered[];
  invokes: { token: string; inputs: unknown }[];
  outputs: Record<string, any>;
  created: boolean;
  error?: string;
  kind?: string;
}

let running = 0;
const queue: (() => void)[] = [];
async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= 2) await new Promise<void>((resolve) => queue.push(resolve));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    queue.shift()?.();
  }
}

export function runDatabricks(opts: Partial<ChildInput> & Pick<ChildInput, "cloud" | "databricks">): Promise<Run> {
  const input: ChildInput = { engineTables: [], dryRun: false, ...opts };
  return slot(
    () =>
      new Promise<Run>((resolve, reject) => {
        const dir = mkdtempSync(path.join(tmpdir(), "dbx-harness-"));
        const out = path.join(dir, "result.json");
        const child = spawn(process.execPath, ["--import", "tsx", path.join(__dirname, "child.ts")], {
          cwd: REPO,
          env: {
            PATH: process.env.PATH,
            HOME: process.env.HOME,
            NODE_OPTIONS: "--max-old-space-size=1536",
            HARNESS_OUT: out,
            HARNESS_INPUT: JSON.stringify(input),
          },
          stdio: ["ignore", "ignore", "pipe"],
        });
        let stderr = "";
        child.stderr.on("data", (d) => (stderr += d));
        child.on("error", reject);
        child.on("close", (code) => {
          try {
            resolve(JSON.parse(readFileSync(out, "utf8")) as Run);
          } catch {
            reject(new Error(`harness child exited ${code} without a result:\n${stderr}`));
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        });
      }),
  );
}

export const byType = (run: Run, type: string) => run.resources.filter((r) => r.type === type);
export function one(run: Run, type: string): Registered {
  const found = byType(run, type);
  if (found.length !== 1) throw new Error(`expected one ${type}, got ${found.length} (${run.error ?? run.resources.map((r) => r.type).join(", ")})`);
  return found[0];
}

/** Plain value of a possibly-secret input. */
export function reveal(value: unknown): any {
  if (Array.isArray(value)) return value.map(reveal);
  if (value && typeof value === "object") {
    if ("$secret" in (value as object)) return reveal((value as { $secret: unknown }).$secret);
    return Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, reveal(v)]));
  }
  return value;
}

/** The inputs with every secret replaced by a marker: what a reader of plain state would see. */
export function withoutSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutSecrets);
  if (value && typeof value === "object") {
    if ("$secret" in (value as object)) return "[secret]";
    return Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, withoutSecrets(v)]));
  }
  return value;
}

export interface ProgramRun {
  exitCode: number;
  error?: string;
  kind?: string;
  resources: { type: string; name: string; inputs: Record<string, any>; provider?: string }[];
  invokes: { token: string; inputs: unknown }[];
  outputs?: Record<string, any>;
  stderr: string;
}

/**
 * Runs the real index.ts for one stack config under the platform's mock harness (plus the
 * Databricks providers' computed outputs): see program-child.ts.
 */
export function runProgram(opts: { stack: string; config: Record<string, unknown>; secretKeys: string[]; dryRun?: boolean }): Promise<ProgramRun> {
  return slot(
    () =>
      new Promise<ProgramRun>((resolve, reject) => {
        const dir = mkdtempSync(path.join(tmpdir(), "dbx-program-"));
        const out = path.join(dir, "result.json");
        const config = Object.fromEntries(Object.entries(opts.config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
        const child = spawn(process.execPath, ["--import", "tsx", path.join(__dirname, "program-child.ts")], {
          cwd: REPO,
          env: {
            PATH: process.env.PATH,
            HOME: process.env.HOME,
            NODE_OPTIONS: "--max-old-space-size=1536",
            HARNESS_OUT: out,
            HARNESS_INPUT: JSON.stringify({ project: "postgres-cdc-multicloud", stack: opts.stack, dryRun: opts.dryRun ?? false, config, secretKeys: opts.secretKeys }),
          },
          stdio: ["ignore", "ignore", "pipe"],
        });
        let stderr = "";
        child.stderr.on("data", (d) => (stderr += d));
        child.on("error", reject);
        child.on("close", (code) => {
          try {
            resolve({ ...(JSON.parse(readFileSync(out, "utf8")) as Omit<ProgramRun, "exitCode" | "stderr">), exitCode: code ?? -1, stderr });
          } catch {
            reject(new Error(`program child exited ${code} without a result:\n${stderr}`));
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        });
      }),
  );
}
