/**
 * What `init` collects, the presets it offers, and the stack file it writes from them. The file is
 * checked by the Pulumi program's own settings parser (../stack-file validateStackConfig) before
 * it is written, and each answer is checked the same way as it is given.
 */
import * as YAML from "yaml";
import { PASSWORD_KEY, PROJECT, StackFileError, validateStackConfig } from "../stack-file";

export const CLOUD_CHOICES = ["aws", "azure", "gcp", "local"] as const;
export type InitCloud = (typeof CLOUD_CHOICES)[number];

export const DEFAULT_REGIONS: Record<Exclude<InitCloud, "local">, string> = { aws: "eu-west-1", azure: "westeurope", gcp: "europe-west1" };

/** The provider setting that places the stack, per cloud. */
export const REGION_KEYS: Record<Exclude<InitCloud, "local">, string> = { aws: "aws:region", azure: "azure-native:location", gcp: "gcp:region" };

export const BATCHING_PRESETS = {
  "low-latency": { description: "flush every second, small files (more requests)", batching: { maxSize: 5_000, maxBytes: 8 * 1024 * 1024, maxWaitMs: 1_000 } },
  balanced: { description: "the engine's defaults: flush every 5 s or 10,000 changes", batching: { maxSize: 10_000, maxBytes: 16 * 1024 * 1024, maxWaitMs: 5_000 } },
  throughput: { description: "flush every 10 s or 20,000 changes, fewer and larger files", batching: { maxSize: 20_000, maxBytes: 32 * 1024 * 1024, maxWaitMs: 10_000 } },
} as const;
export type BatchingPreset = keyof typeof BATCHING_PRESETS;

export const RETENTION_PRESETS = {
  short: { description: "landing files 7 days, logs 30 days (dev)", landingRetentionDays: 7, logRetentionDays: 30 },
  standard: { description: "landing files 30 days, logs 30 days", landingRetentionDays: 30, logRetentionDays: 30 },
  long: { description: "landing files 90 days, logs 365 days (prod)", landingRetentionDays: 90, logRetentionDays: 365 },
} as const;
export type RetentionPreset = keyof typeof RETENTION_PRESETS;

export interface InitAnswers {
  stack: string;
  cloud: InitCloud;
  /** aws:region, azure-native:location or gcp:region; unused for local. */
  region?: string;
  gcpProject?: string;
  postgres: {
    host: string;
    port: number;
    database: string;
    user: string;
    sslmode: "disable" | "require" | "verify-full";
    publication: string;
    slot: string;
    tables: string[];
  };
  batching: BatchingPreset;
  retention: RetentionPreset;
  alertEmails: string[];
  databricks: { enabled: boolean; host?: string };
}

/** Pulumi stack names: letters, digits, '-', '_' and '.'. */
export const STACK_NAME = /^[A-Za-z0-9_.-]{1,100}$/;

const P = (key: string) => `${PROJECT}:${key}`;

/** The stack file's `config:` map for these answers (the password is never part of it). */
export function stackConfig(a: InitAnswers): Record<string, unknown> {
  const config: Record<string, unknown> = { [P("cloud")]: a.cloud };
  if (a.cloud !== "local") config[REGION_KEYS[a.cloud]] = a.region;
  if (a.cloud === "gcp") config["gcp:project"] = a.gcpProject;
  config[P("postgres")] = { ...a.postgres };
  config[P("batching")] = { ...BATCHING_PRESETS[a.batching].batching };
  config[P("landingRetentionDays")] = RETENTION_PRESETS[a.retention].landingRetentionDays;
  config[P("logRetentionDays")] = RETENTION_PRESETS[a.retention].logRetentionDays;
  if (a.alertEmails.length > 0) config[P("alerts")] = { emails: a.alertEmails };
  config[P("databricks")] = a.databricks.enabled ? { enabled: true, ...(a.databricks.host ? { host: a.databricks.host } : {}) } : { enabled: false };
  return config;
}

/** The problems the program's settings parser reports for these answers (empty: the file is valid). */
export function answerProblems(a: InitAnswers): string[] {
  try {
    validateStackConfig(stackConfig(a));
    return [];
  } catch (err) {
    if (err instanceof StackFileError) return err.problems;
    throw err;
  }
}

/**
 * The parser's verdict on one answer: the problems naming any of `keys`, with the rest of the
 * answers as given so far (defaults fill what is not asked yet). A prompt shows these at once.
 */
export function problemsFor(a: InitAnswers, keys: string[]): string | true {
  const mine = answerProblems(a).filter((p) => keys.some((k) => p.startsWith(`${k} `) || p.startsWith(`${k}.`) || p.startsWith(`${k}[`)));
  return mine.length === 0 ? true : mine.map((p) => p.replace(/; for example: .*$/, "")).join("; ");
}

export function renderStackFile(a: InitAnswers, now = new Date()): string {
  const doc = new YAML.Document({ config: stackConfig(a) });
  doc.commentBefore = [
    ` ${a.stack}: ${a.cloud} stack written by \`cdc-platform init\` on ${now.toISOString().slice(0, 10)}.`,
    " The password is not in this file; set it as a secret:",
    `   pulumi config set --secret ${PASSWORD_KEY} --stack ${a.stack}`,
  ].join("\n");
  return doc.toString({ lineWidth: 0 });
}
