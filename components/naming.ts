/**
 * Resource names, made valid for each cloud's rules from the stack's base name. Globally unique
 * names (S3 and GCS buckets, storage accounts, registries, key vaults) carry a short hash of the
 * account/subscription/project so two users with a "dev" stack do not collide. The validators are
 * the rules as the clouds document them; tests check every generated name against them.
 */
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";

export function shortHash(...parts: string[]): string {
  return createHash("sha256").update(parts.join("\u0000")).digest("hex").slice(0, 8);
}

function alnum(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]/g, "");
}

function trimTo(s: string, max: number): string {
  return s.slice(0, max).replace(/[-_.]+$/, "");
}

export const RULES = {
  /** S3: 3-63, lower-case letters, digits, hyphens and dots, alnum at both ends, not an IP, no xn-- prefix or -s3alias suffix. */
  s3Bucket: (n: string) => /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(n) && !n.includes("..") && !/^\d+\.\d+\.\d+\.\d+$/.test(n) && !n.startsWith("xn--") && !n.endsWith("-s3alias") && !n.endsWith("--ol-s3"),
  /** Azure storage account: 3-24 lower-case letters and digits. */
  storageAccount: (n: string) => /^[a-z0-9]{3,24}$/.test(n),
  /** Azure blob container: 3-63, lower-case letters, digits, single hyphens, alnum first. */
  blobContainer: (n: string) => /^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/.test(n),
  /** ACR: 5-50 letters and digits. */
  acr: (n: string) => /^[a-zA-Z0-9]{5,50}$/.test(n),
  /** Key Vault: 3-24, letters, digits, single hyphens, letter first, no hyphen last. */
  keyVault: (n: string) => /^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$/.test(n),
  /** Container App / environment: 2-32 lower-case letters, digits, hyphens; letter first, alnum last. */
  containerApp: (n: string) => /^[a-z](?!.*--)[a-z0-9-]{0,30}[a-z0-9]$/.test(n),
  /** Log Analytics workspace: 4-63, letters, digits, hyphens, alnum at both ends. */
  logAnalytics: (n: string) => /^[A-Za-z0-9][A-Za-z0-9-]{2,61}[A-Za-z0-9]$/.test(n),
  /** Resource group: 1-90, letters, digits, _ - . ( ), not ending in a dot. */
  resourceGroup: (n: string) => /^[-\w.()]{0,89}[-\w()]$/.test(n),
  /** User-assigned identity: 3-128, letters, digits, - _, alnum first. */
  managedIdentity: (n: string) => /^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$/.test(n),
  /** GCS: 3-63, lower-case letters, digits, - _ ., alnum at both ends, no "goog" prefix or "google". */
  gcsBucket: (n: string) => /^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/.test(n) && !n.startsWith("goog") && !n.includes("google") && !/^\d+\.\d+\.\d+\.\d+$/.test(n),
  /** GCP service account id: 6-30, lower-case letter first, letters digits hyphens, alnum last. */
  gcpServiceAccount: (n: string) => /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/.test(n),
  /** Cloud Run service: up to 49, lower-case letter first, letters digits hyphens, alnum last. */
  cloudRun: (n: string) => /^[a-z][a-z0-9-]{0,47}[a-z0-9]$/.test(n),
  /** Artifact Registry repository / Secret Manager secret / log bucket id. */
  gcpId: (n: string) => /^[a-z][a-z0-9-]{0,61}[a-z0-9]$/.test(n),
  /** ECS cluster/service, CloudWatch log group tail, ECR repository, IAM role (<=64). */
  awsName: (n: string) => /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$/.test(n),
  ecrRepository: (n: string) => /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/.test(n) && n.length >= 2 && n.length <= 256,
  /** Docker container name. */
  docker: (n: string) => /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(n),
} as const;

export function s3BucketName(base: string, purpose: string, accountId: string): string {
  return trimTo(`${base}-${purpose}-${accountId}`, 63);
}

export function storageAccountName(base: string, uniqueness: string): string {
  return (alnum(base).slice(0, 16) + shortHash(uniqueness)).slice(0, 24);
}

export function acrName(base: string, uniqueness: string): string {
  return (alnum(base).slice(0, 40) + shortHash(uniqueness)).padEnd(5, "0");
}

export function keyVaultName(base: string, uniqueness: string): string {
  return `kv${alnum(base).slice(0, 13)}${shortHash(uniqueness)}`;
}

export function gcsBucketName(base: string, purpose: string, project: string): string {
  const name = `${base}-${purpose}-${project}`;
  return name.length <= 63 ? name : trimTo(`${base}-${purpose}-${shortHash(project)}`, 63);
}

export function gcpServiceAccountId(base: string): string {
  const id = trimTo(`${base}-engine`, 30);
  return id.length >= 6 ? id : id.padEnd(6, "0");
}

/** `name` if it satisfies the cloud's rule for `kind`, else the deployment stops with what to shorten. */
export function checkName(kind: keyof typeof RULES, name: string): string {
  if (!RULES[kind](name)) throw new pulumi.RunError(`generated ${kind} name ${JSON.stringify(name)} is invalid; shorten postgres-cdc-multicloud:namePrefix or the stack name`);
  return name;
}
