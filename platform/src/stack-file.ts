/**
 * A stack file (`Pulumi.<stack>.yaml`) read and checked by the Pulumi program's own settings
 * parser (components/settings.ts readSettings, and the Databricks settings), in this process:
 * the values go into the Pulumi SDK's configuration store exactly as the CLI would hand them to
 * the program, so whatever passes here passes `pulumi preview`'s validation too.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import * as YAML from "yaml";
import type { StackSettings } from "../../components/settings";

export const PROJECT = "postgres-cdc-multicloud";
export const PASSWORD_KEY = `${PROJECT}:postgresPassword`;

export interface StackFile {
  stack: string;
  file: string;
  /** The `config:` map as written: keys with their namespace, values scalars or objects. */
  config: Record<string, unknown>;
}

/** Thrown when a stack file is missing, unreadable or fails validation; `message` says what to do. */
export class StackFileError extends Error {
  constructor(message: string, readonly problems: string[] = []) {
    super(message);
    this.name = "StackFileError";
  }
}

export function stackFilePath(stack: string, dir = process.cwd()): string {
  return path.join(dir, `Pulumi.${stack}.yaml`);
}

export async function readStackFile(stack: string, file = stackFilePath(stack)): Promise<StackFile> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new StackFileError(`${file} does not exist: run \`npx cdc-platform init --stack ${stack}\` (or name another stack with --stack)`);
    }
    throw err;
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new StackFileError(`${file} is not valid YAML: ${(err as Error).message}`);
  }
  const config = (doc as { config?: unknown } | null)?.config ?? {};
  if (typeof config !== "object" || Array.isArray(config)) throw new StackFileError(`${file}: "config" must be a map of settings`);
  return { stack, file, config: config as Record<string, unknown> };
}

/**
 * The configuration as the Pulumi CLI passes it to a program: every key namespaced, objects as
 * JSON, scalars as strings; `secure:` values (encrypted secrets) are reported as secret keys.
 */
export function programConfig(config: Record<string, unknown>): { values: Record<string, string>; secretKeys: string[] } {
  const values: Record<string, string> = {};
  const secretKeys: string[] = [];
  for (const [rawKey, value] of Object.entries(config)) {
    const key = rawKey.includes(":") ? rawKey : `${PROJECT}:${rawKey}`;
    if (value && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length === 1 && "secure" in value) {
      // An encrypted value: present, and a secret; its plain text only the Pulumi CLI can know.
      values[key] = "(encrypted in the stack file)";
      secretKeys.push(key);
    } else {
      values[key] = value !== null && typeof value === "object" ? JSON.stringify(value) : String(value);
    }
  }
  return { values, secretKeys };
}

/**
 * Syntactically valid values for the `<…>` placeholders of the example stack files, by the key
 * that holds them: what `cost` prices a not yet filled-in example with (none changes a price).
 */
const PLACEHOLDER_STAND_INS: Record<string, string> = {
  host: "placeholder.example.com",
  vpcId: "vpc-00000000000000000",
  subnetIds: "subnet-00000000000000000",
  securityGroupIds: "sg-00000000000000000",
};

/** The config with known `<…>` placeholders replaced (see PLACEHOLDER_STAND_INS), and the paths replaced. */
export function fillPlaceholders(config: Record<string, unknown>): { config: Record<string, unknown>; filled: string[] } {
  const filled: string[] = [];
  const walk = (value: unknown, key: string, path: string): unknown => {
    if (typeof value === "string" && /<[^<>]+>/.test(value) && PLACEHOLDER_STAND_INS[key]) {
      filled.push(path);
      return PLACEHOLDER_STAND_INS[key];
    }
    if (Array.isArray(value)) return value.map((v, i) => walk(v, key, `${path}[${i}]`));
    if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, k, `${path}.${k}`)]));
    return value;
  };
  const out = Object.fromEntries(Object.entries(config).map(([k, v]) => [k, walk(v, k, k)]));
  return { config: out, filled };
}

export interface ValidateOptions {
  /**
   * The password is never in a stack file written by `init` (it goes to `pulumi config set
   * --secret`): validate as if it were set (unless postgres.auth is keyless). Default true.
   */
  assumePasswordSet?: boolean;
  /**
   * The stack the file belongs to: names derived from it (the engine's Entra identity and Cloud
   * SQL IAM user with a keyless postgres.auth, and the length checks on them) are the deployed ones.
   */
  stack?: string;
}

/** The SDK's own setters of the running stack and project (what `pulumi up` passes in its environment); internal to @pulumi/pulumi, hence typed here. */
type StackSetters = { _setStack(stack: string): void; _setProject(project: string): void };

/** The stack's settings as the Pulumi program reads them; throws StackFileError listing every problem. */
export function validateStackConfig(config: Record<string, unknown>, options: ValidateOptions = {}): StackSettings {
  const pulumi = require("@pulumi/pulumi") as typeof import("@pulumi/pulumi");
  const { readSettings } = require("../../components/settings") as typeof import("../../components/settings");
  const { parseDatabricksSettings, DATABRICKS_CONFIG_KEY } = require("../../components/databricks/settings") as typeof import("../../components/databricks/settings");
  const { values, secretKeys } = programConfig(config);
  // A keyless postgres.auth has no password (and refuses one).
  const auth = (() => {
    try {
      return (JSON.parse(values[`${PROJECT}:postgres`] ?? "{}") as { auth?: unknown }).auth ?? "password";
    } catch {
      return "password";
    }
  })();
  if ((options.assumePasswordSet ?? true) && values[PASSWORD_KEY] === undefined && auth === "password") {
    values[PASSWORD_KEY] = "(set with pulumi config set --secret)";
    secretKeys.push(PASSWORD_KEY);
  }
  pulumi.runtime.setAllConfig(values, secretKeys);
  if (options.stack !== undefined) {
    const setters = pulumi.runtime as unknown as StackSetters;
    setters._setProject(PROJECT);
    setters._setStack(options.stack);
  }
  const problems: string[] = [];
  let settings: StackSettings | undefined;
  try {
    settings = readSettings();
  } catch (err) {
    const listed = (err as { problems?: unknown }).problems;
    if (!Array.isArray(listed)) throw err;
    problems.push(...listed.map(String));
  }
  const databricks = values[`${PROJECT}:${DATABRICKS_CONFIG_KEY}`];
  if (databricks !== undefined) {
    try {
      parseDatabricksSettings(JSON.parse(databricks), `${PROJECT}:${DATABRICKS_CONFIG_KEY}`);
    } catch (err) {
      const listed = (err as { problems?: unknown }).problems;
      if (!Array.isArray(listed)) throw err;
      problems.push(...listed.map(String));
    }
  }
  if (problems.length > 0 || !settings) {
    throw new StackFileError(`the stack configuration is invalid (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n  ${problems.join("\n  ")}`, problems);
  }
  return settings;
}
