/**
 * Runs the real index.ts under Pulumi mocks for one stack configuration, in a child process, and
 * returns what it registered. At most two children run at once (the machine has 2 cores), across
 * every harness that spawns through `runChild` (tests/databricks uses it too).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { reveal, withoutSecrets } from "./secrets";

export { reveal, withoutSecrets };

export const REPO = path.resolve(__dirname, "..", "..", "..");
export const PROJECT = "postgres-cdc-multicloud";
/** The password every test stack uses; it must never show up outside a secret. */
export const TEST_PASSWORD = "Pw-for-tests-7c1e9a";

export interface RegisteredResource {
  type: string;
  name: string;
  /** Inputs with secret values wrapped as {"$secret": value}. */
  inputs: Record<string, any>;
}

export interface ProgramRun {
  exitCode: number;
  error?: string;
  kind?: string;
  resources: RegisteredResource[];
  invokes: { token: string; inputs: unknown }[];
  fetches: { url: string; body: string }[];
  /** What the program logged with pulumi.log.info. */
  logs: string[];
  /** The URN of every registered resource (urn:pulumi:<stack>::<project>::<parent types$type>::<name>). */
  urns: string[];
  /** Provider SDK modules the run loaded: "aws", "gcp", "docker", "azure-native/<submodule>", … */
  modules: string[];
  outputs?: Record<string, unknown>;
  stderr: string;
}

export interface RunOptions {
  stack: string;
  /** Config values: strings stay strings, objects/arrays/numbers/booleans are JSON-stringified as the CLI does. */
  config: Record<string, unknown>;
  /** Keys (full, with namespace) whose values are secrets. */
  secretKeys?: string[];
  dryRun?: boolean;
  /** A module whose `computed(type, name, inputs, id)` export adds outputs for providers the mocks do not know (see child.ts). */
  computedOutputs?: string;
  /** Another checkout of this repository to run the program from (its own index.ts, as its working directory). */
  checkout?: string;
  /** Another program than index.ts, relative to the repository (e.g. tests/pulumi/programs/two-platforms.ts). */
  program?: string;
}

let running = 0;
const waiting: (() => void)[] = [];
async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= 2) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

/**
 * Runs `script` (a harness child) with HARNESS_INPUT = `input` in its own process, and returns the
 * JSON the child wrote to HARNESS_OUT with its exit code and stderr.
 */
export function runChild<T>(script: string, input: unknown, cwd = REPO): Promise<{ result: T; exitCode: number; stderr: string }> {
  return slot(() => new Promise((resolve, reject) => {
    const dir = mkdtempSync(path.join(tmpdir(), "pulumi-harness-"));
    const out = path.join(dir, "result.json");
    const child = spawn(process.execPath, ["--import", "tsx", script], {
      cwd,
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
        resolve({ result: JSON.parse(readFileSync(out, "utf8")) as T, exitCode: code ?? -1, stderr });
      } catch {
        reject(new Error(`${path.basename(script)} exited ${code} without a result:\n${stderr}`));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }));
}

export async function runProgram(opts: RunOptions): Promise<ProgramRun> {
  const config = Object.fromEntries(Object.entries(opts.config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
  const root = opts.checkout ?? REPO;
  const { result, exitCode, stderr } = await runChild<Omit<ProgramRun, "exitCode" | "stderr">>(path.join(root, path.relative(REPO, __dirname), "child.ts"), {
    project: PROJECT,
    stack: opts.stack,
    dryRun: opts.dryRun ?? false,
    config,
    secretKeys: opts.secretKeys ?? [],
    computedOutputs: opts.computedOutputs,
    program: opts.program,
  }, root);
  return { ...result, exitCode, stderr };
}

/** A stack file's config as the CLI would hand it to the program; `secure:` values become TEST_PASSWORD secrets. */
export function stackFileConfig(file: string): { config: Record<string, unknown>; secretKeys: string[] } {
  const yaml = require("js-yaml") as { load(s: string): unknown };
  const doc = yaml.load(readFileSync(path.join(REPO, file), "utf8")) as { config?: Record<string, unknown> };
  const config: Record<string, unknown> = {};
  const secretKeys: string[] = [];
  for (const [key, value] of Object.entries(doc.config ?? {})) {
    const full = key.includes(":") ? key : `${PROJECT}:${key}`;
    if (value && typeof value === "object" && "secure" in (value as object)) {
      config[full] = TEST_PASSWORD;
      secretKeys.push(full);
    } else {
      config[full] = value;
    }
  }
  return { config, secretKeys };
}

interface Registrations<R extends { type: string }> {
  resources: R[];
  error?: string;
}
export const byType = <R extends { type: string }>(run: Registrations<R>, type: string): R[] => run.resources.filter((r) => r.type === type);
export const one = <R extends { type: string }>(run: Registrations<R>, type: string): R => {
  const found = byType(run, type);
  if (found.length !== 1) throw new Error(`expected exactly one ${type}, got ${found.length}: ${run.error ?? run.resources.map((r) => r.type).join(", ")}`);
  return found[0];
};
