/**
 * The Pulumi CLI, when it is on the PATH: which stack is selected, creating a stack, setting the
 * password as a secret (through stdin, never on a command line), reading a stack's outputs.
 */
import { spawn, spawnSync } from "node:child_process";

export function pulumiOnPath(): boolean {
  const found = spawnSync("pulumi", ["version"], { stdio: "ignore" });
  return !found.error && found.status === 0;
}

/** The selected stack (`pulumi stack --show-name`), or undefined without a CLI or a selection. */
export function selectedStack(cwd = process.cwd()): string | undefined {
  const result = spawnSync("pulumi", ["stack", "--show-name"], { cwd, encoding: "utf8" });
  if (result.error || result.status !== 0) return undefined;
  return result.stdout.trim() || undefined;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `pulumi args…`, writing `stdin` (e.g. the password) to its standard input. */
export function runPulumi(args: string[], options: { cwd?: string; stdin?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("pulumi", args, { cwd: options.cwd, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(options.stdin ?? "");
  });
}

/** Shell-quotes one argument for a command the user pastes. */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}
