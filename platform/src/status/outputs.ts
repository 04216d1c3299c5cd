/** The stack's outputs, from `pulumi stack output --json` or a file holding that JSON. */
import { promises as fs } from "node:fs";
import { runPulumi } from "../pulumi-cli";
import { UsageError } from "../cli";

export interface StackOutputs {
  cloud?: string;
  landingUrl?: string;
  serviceName?: string;
  serviceId?: string;
  logLocation?: string;
  engineRuntime?: string;
  [key: string]: unknown;
}

export async function readOutputs(options: { file?: string; stack?: string }): Promise<StackOutputs> {
  let text: string;
  if (options.file) {
    try {
      text = await fs.readFile(options.file, "utf8");
    } catch (err) {
      throw new UsageError(`cannot read --outputs ${options.file}: ${(err as Error).message}`);
    }
  } else {
    const args = ["stack", "output", "--json", ...(options.stack ? ["--stack", options.stack] : [])];
    const result = await runPulumi(args).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") throw new UsageError("the Pulumi CLI is not on the PATH: pass --outputs FILE with the JSON of `pulumi stack output --json`");
      throw err;
    });
    if (result.code !== 0) throw new UsageError(`pulumi ${args.join(" ")} failed: ${result.stderr.trim() || result.stdout.trim()}`);
    text = result.stdout;
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not a JSON object");
    return parsed as StackOutputs;
  } catch (err) {
    throw new UsageError(`the stack outputs are not the JSON object \`pulumi stack output --json\` prints: ${(err as Error).message}`);
  }
}
