/**
 * moto in server mode: a local AWS endpoint answering ECS, CloudWatch Logs, CloudWatch and S3 with
 * their real wire protocols. Installed once (PyPI, pinned) into `<repo>/.cache/moto/venv`, like
 * the Spark venv (lakehouse/src/spark/env.ts), and reused while the pinned versions are there.
 *
 * Not the `moto[server]` extra: it pulls in every service's dependencies (cfn-lint, docker,
 * aws-xray-sdk, …; over 3 minutes to install here). Serving needs only Flask and flask-cors — what
 * that extra adds for the server — and these four services need only S3's extra.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { freePort } from "./postgres";
import { setupCommand } from "./priority";

export const MOTO_VERSION = "5.2.5";
const REQUIREMENTS = [`moto[s3]==${MOTO_VERSION}`, "flask==3.1.3", "flask-cors==6.0.5"];
const REPO = path.resolve(__dirname, "..", "..");
const VENV = path.join(REPO, ".cache", "moto", "venv");
const run = promisify(execFile);

let installing: Promise<string> | undefined;

/**
 * The venv's moto_server, installing the pinned moto first if it is not there. Once per process:
 * concurrent callers (tests/support/prefetch.ts and the tests) share one install.
 */
export function ensureMoto(): Promise<string> {
  return (installing ??= installMoto());
}

async function installMoto(): Promise<string> {
  const python = path.join(VENV, "bin", "python");
  const server = path.join(VENV, "bin", "moto_server");
  if (existsSync(python)) {
    const { stdout } = await run(python, ["-c", "import flask, flask_cors, yaml, moto; print(moto.__version__)"]).catch(() => ({ stdout: "" }));
    if (stdout.trim() === MOTO_VERSION && existsSync(server)) return server;
  }
  try {
    // At idle priority when it runs beside the tests (tests/support/prefetch.ts).
    if (!existsSync(python)) await run(...setupCommand("python3", ["-m", "venv", VENV]));
    await run(...setupCommand(path.join(VENV, "bin", "pip"), ["install", "--quiet", "--disable-pip-version-check", ...REQUIREMENTS]), { maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`installing ${REQUIREMENTS.join(" ")} into ${VENV} failed (needs python3 with venv and PyPI): ${e.message}\n${e.stderr ?? ""}`);
  }
  return server;
}

export interface Moto {
  endpoint: string;
  /** Environment for an AWS SDK client (and a child process) that talks to this server. */
  env: Record<string, string>;
  /** The end of the server's log, for a failure message. */
  log(): string;
  stop(): Promise<void>;
}

export async function startMoto(env: Record<string, string> = {}): Promise<Moto> {
  const server = await ensureMoto();
  const port = await freePort();
  const child: ChildProcess = spawn(server, ["-H", "127.0.0.1", "-p", String(port)], { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
  const endpoint = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`moto_server exited (${child.exitCode}): ${stderr}`);
    const up = await fetch(`${endpoint}/moto-api/`).then((r) => r.ok, () => false);
    if (up) break;
    if (i > 300) throw new Error(`moto_server did not answer on ${endpoint}: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    endpoint,
    log: () => stderr,
    env: { AWS_ENDPOINT_URL: endpoint, AWS_ACCESS_KEY_ID: "testing", AWS_SECRET_ACCESS_KEY: "testing", AWS_REGION: "eu-west-1" },
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}
