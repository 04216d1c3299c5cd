/**
 * What `init` collects, the presets it offers, and the stack file it writes from them. The file is
 * checked by the Pulumi program's own settings parser (../stack-file validateStackConfig) before
 * it is written, and each answer is checked the same way as it is given.
 */
import * as YAML from "yaml";
import type { PgAuthMode } from "../../../container/src/source/auth";
import { databaseLoginSetup } from "../../../components/database-login";
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
    /** The role the engine logs in as; left out with azure-entra and gcp-iam (the engine's own identity is the role). */
    user?: string;
    /** How the engine logs in (postgres.auth): password, or the chosen cloud's keyless mode. */
    auth: PgAuthMode;
    /** aws-iam: the DbiResourceId (db-…) or DbClusterResourceId (cluster-…). */
    awsResourceId?: string;
    /** aws-iam: the database's region when it is not the stack's. */
    authRegion?: string;
    /** gcp-iam: the Cloud SQL instance ID the login grants are limited to. */
    cloudSqlInstance?: string;
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

/** The keyless login mode of each cloud (components/settings.ts KEYLESS); local has none. */
export const KEYLESS_AUTH: Record<InitCloud, Exclude<PgAuthMode, "password"> | undefined> = { aws: "aws-iam", azure: "azure-entra", gcp: "gcp-iam", local: undefined };

/** The login modes a stack on `cloud` can use: password, and the cloud's own keyless mode. */
export function authChoices(cloud: InitCloud): PgAuthMode[] {
  const keyless = KEYLESS_AUTH[cloud];
  return keyless ? ["password", keyless] : ["password"];
}

/** The identity a keyless mode logs in with, as the program names it (components/settings.ts KEYLESS). */
export function keylessIdentity(mode: Exclude<PgAuthMode, "password">): string {
  const { KEYLESS } = require("../../../components/settings") as typeof import("../../../components/settings");
  return KEYLESS[mode].identity;
}

/** Pulumi stack names: letters, digits, '-', '_' and '.'. */
export const STACK_NAME = /^[A-Za-z0-9_.-]{1,100}$/;

const P = (key: string) => `${PROJECT}:${key}`;

/** The stack file's `config:` map for these answers (the password is never part of it). */
export function stackConfig(a: InitAnswers): Record<string, unknown> {
  const config: Record<string, unknown> = { [P("cloud")]: a.cloud };
  if (a.cloud !== "local") config[REGION_KEYS[a.cloud]] = a.region;
  if (a.cloud === "gcp") config["gcp:project"] = a.gcpProject;
  // Unset fields are left out; auth password is the program's default and is written only when keyless.
  const { auth, ...postgres } = a.postgres;
  config[P("postgres")] = Object.fromEntries(Object.entries({ ...postgres, ...(auth !== "password" ? { auth } : {}) }).filter(([, v]) => v !== undefined));
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
    validateStackConfig(stackConfig(a), { stack: a.stack });
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

/**
 * A keyless stack's login as the program derives it: the role the engine logs in as and the
 * one-time database-side step, the same text as the `databaseLogin` stack output after `pulumi up`.
 */
export function keylessLogin(a: InitAnswers): { auth: Exclude<PgAuthMode, "password">; user: string; setup: string } | undefined {
  const { auth } = a.postgres;
  if (auth === "password") return undefined;
  const settings = validateStackConfig(stackConfig(a), { stack: a.stack });
  const { baseName } = require("../../../components/naming") as typeof import("../../../components/naming");
  const { engineDatabaseUser } = require("../../../components/settings") as typeof import("../../../components/settings");
  const postgres = { ...settings.args.postgres, auth };
  const user = engineDatabaseUser(postgres, baseName(settings.name, a.stack, PROJECT), settings.args.gcp?.project)!;
  return { auth, user, setup: databaseLoginSetup(auth, user, a.postgres.cloudSqlInstance) };
}

export function renderStackFile(a: InitAnswers, now = new Date()): string {
  const doc = new YAML.Document({ config: stackConfig(a) });
  const login = keylessLogin(a);
  doc.commentBefore = [
    ` ${a.stack}: ${a.cloud} stack written by \`cdc-platform init\` on ${now.toISOString().slice(0, 10)}.`,
    ...(login
      ? [
          ` Keyless login (postgres.auth ${login.auth}): no password anywhere; the engine logs in as ${login.user}.`,
          ` Once, on the database side: ${login.setup}`,
        ]
      : [" The password is not in this file; set it as a secret:", `   pulumi config set --secret ${PASSWORD_KEY} --stack ${a.stack}`]),
  ].join("\n");
  return doc.toString({ lineWidth: 0 });
}
