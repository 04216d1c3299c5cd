/**
 * `cdc-platform`: `init` writes a validated stack file (interactive wizard, or flags with
 * --non-interactive), `status` shows a deployed engine's health from the cloud's APIs, `cost`
 * estimates a stack's monthly bill. Exit codes: 0 done / healthy, 1 unhealthy or a failed check,
 * 2 bad usage or configuration, 130 interrupted (Ctrl-C).
 */
import { Command, CommanderError, InvalidArgumentError } from "commander";
import { estimateCost, formatEstimate } from "./cost/estimate";
import { selectedStack } from "./pulumi-cli";
import { fillPlaceholders, readStackFile, StackFileError, stackFilePath, validateStackConfig } from "./stack-file";

export const EXIT_OK = 0;
export const EXIT_PROBLEM = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERRUPTED = 130;

/** A failure the user can fix: printed as one message, no stack trace. */
export class UsageError extends Error {
  constructor(message: string, readonly exitCode = EXIT_USAGE) {
    super(message);
    this.name = "UsageError";
  }
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value.trim()) || !(n > 0)) throw new InvalidArgumentError("must be a positive number");
  return n;
}

/** The stack to act on: --stack, else the Pulumi CLI's selected stack. */
export function resolveStack(option: string | undefined): string {
  const stack = option ?? selectedStack();
  if (!stack) throw new UsageError("name the stack with --stack NAME (no Pulumi CLI with a selected stack was found)");
  return stack;
}

interface CostFlags {
  stack?: string;
  file?: string;
  changesPerDay?: number;
  bytesPerChange?: number;
  json?: boolean;
}

async function cost(flags: CostFlags, out: NodeJS.WritableStream): Promise<number> {
  const stack = resolveStack(flags.stack);
  const file = await readStackFile(stack, flags.file ?? stackFilePath(stack));
  // An example stack file can be priced before its <…> placeholders are filled in: none changes a price.
  const { config, filled } = fillPlaceholders(file.config);
  const settings = validateStackConfig(config, { stack });
  const estimate = estimateCost(settings.args as Parameters<typeof estimateCost>[0], { changesPerDay: flags.changesPerDay, bytesPerChange: flags.bytesPerChange });
  if (filled.length > 0) estimate.notes.unshift(`Priced as if the placeholders in ${filled.join(", ")} were filled in (they change no price); fill them in before \`pulumi preview\`.`);
  out.write(flags.json ? `${JSON.stringify(estimate, null, 2)}\n` : formatEstimate(estimate, stack));
  return EXIT_OK;
}

export function buildProgram(run: (code: Promise<number>) => void): Command {
  const program = new Command("cdc-platform")
    .description("Set up, check and price a postgres-cdc-multicloud stack (docs/deploy.md).")
    .showHelpAfterError("(run cdc-platform --help for usage)")
    .exitOverride();

  program
    .command("cost")
    .description("estimate the stack's monthly cost from its settings (Databricks excluded)")
    .option("--stack <name>", "the stack (default: the Pulumi CLI's selected stack)")
    .option("--file <path>", "the stack file (default: ./Pulumi.<stack>.yaml)")
    .option("--changes-per-day <n>", "changes captured per day (default: batching.maxSize × 24, one full batch an hour)", positiveNumber)
    .option("--bytes-per-change <n>", "average landed bytes per change before compression (default 600)", positiveNumber)
    .option("--json", "print the estimate as JSON")
    .action((flags: CostFlags) => run(cost(flags, process.stdout)));

  registerInit(program, run);
  registerStatus(program, run);
  return program;
}

// The wizard and the health check load their (larger) dependencies only when used.
function registerInit(program: Command, run: (code: Promise<number>) => void): void {
  const { initCommand } = require("./init/command") as typeof import("./init/command");
  initCommand(program, run);
}

function registerStatus(program: Command, run: (code: Promise<number>) => void): void {
  const { statusCommand } = require("./status/command") as typeof import("./status/command");
  statusCommand(program, run);
}

/** Runs the CLI; resolves to the exit code. */
export async function main(argv: string[] = process.argv): Promise<number> {
  let pending: Promise<number> | undefined;
  const program = buildProgram((code) => (pending = code));
  try {
    if (argv.length <= 2) {
      program.outputHelp({ error: true });
      return EXIT_USAGE;
    }
    await program.parseAsync(argv);
    return pending ? await pending : EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    if (err instanceof UsageError || err instanceof StackFileError) {
      process.stderr.write(`cdc-platform: ${err.message}\n`);
      return err instanceof UsageError ? err.exitCode : EXIT_USAGE;
    }
    process.stderr.write(`cdc-platform: ${(err as Error).stack ?? String(err)}\n`);
    return EXIT_PROBLEM;
  }
}
