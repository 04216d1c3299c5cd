/**
 * Runs the Databricks component (child.ts) or the real index.ts with the Databricks providers'
 * computed outputs (computed.ts) for one configuration, each in its own process, through the
 * platform's harness (tests/pulumi/harness), which also keeps at most two children running.
 */
import * as path from "node:path";
import { runChild, runProgram as runPlatformProgram, type ProgramRun, type RunOptions } from "../../pulumi/harness";
import type { ChildInput } from "./child";

export { byType, one, reveal, withoutSecrets, type ProgramRun } from "../../pulumi/harness";
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

export async function runDatabricks(opts: Partial<ChildInput> & Pick<ChildInput, "cloud" | "databricks">): Promise<Run> {
  const input: ChildInput = { engineTables: [], dryRun: false, ...opts };
  return (await runChild<Run>(path.join(__dirname, "child.ts"), input)).result;
}

/** Runs the real index.ts for one stack config under the platform's mock harness, plus the Databricks providers' computed outputs. */
export function runProgram(opts: Omit<RunOptions, "computedOutputs">): Promise<ProgramRun> {
  return runPlatformProgram({ ...opts, computedOutputs: path.join(__dirname, "computed.ts") });
}
