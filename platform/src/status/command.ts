/**
 * `cdc-platform status`: the deployed engine's health in one screen, from the stack's outputs and
 * the cloud's APIs; exit 0 healthy, 1 unhealthy.
 */
import type { Command } from "commander";
import { EXIT_OK, EXIT_PROBLEM, UsageError } from "../cli";
import { readOutputs } from "./outputs";
import { formatReport, healthy, type StatusReport } from "./report";

interface StatusFlags {
  stack?: string;
  outputs?: string;
  json?: boolean;
}

export function statusCommand(program: Command, run: (code: Promise<number>) => void): void {
  program
    .command("status")
    .description("the deployed engine's health: service, restarts, engine progress, alerts, newest landing objects; exit 1 when unhealthy")
    .option("--stack <name>", "the stack (default: the Pulumi CLI's selected stack)")
    .option("--outputs <file>", "read the stack outputs from this file (the JSON of `pulumi stack output --json`)")
    .option("--json", "print the report as JSON")
    .action((flags: StatusFlags) => run(status(flags)));
}

async function status(flags: StatusFlags): Promise<number> {
  const outputs = await readOutputs({ file: flags.outputs, stack: flags.stack });
  let report: StatusReport;
  switch (outputs.cloud) {
    case "aws": {
      const { awsStatus, awsTarget } = require("./aws") as typeof import("./aws");
      report = await awsStatus(awsTarget(outputs));
      break;
    }
    case "azure": {
      const { azureStatus, azureTarget } = require("./azure") as typeof import("./azure");
      report = await azureStatus(azureTarget(outputs));
      break;
    }
    case "gcp": {
      const { gcpStatus, gcpTarget } = require("./gcp") as typeof import("./gcp");
      report = await gcpStatus(gcpTarget(outputs));
      break;
    }
    default:
      throw new UsageError(`status covers aws, azure and gcp stacks (the stack's cloud output is ${JSON.stringify(outputs.cloud)}); for a local stack run its healthCommand output (docker ps, /readyz)`);
  }
  const ok = healthy(report);
  process.stdout.write(flags.json ? `${JSON.stringify({ ...report, healthy: ok }, null, 2)}\n` : formatReport(report));
  return ok ? EXIT_OK : EXIT_PROBLEM;
}
