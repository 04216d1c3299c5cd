/**
 * Resource names, made valid for each cloud's rules from the stack's base name. The base name ends
 * in a short hash of the full project and stack name, so stacks whose names share a prefix never
 * collide. Globally unique names (S3 and GCS buckets, storage accounts, registries, key vaults)
 * also carry a short hash of the account/subscription/project so two users with a "dev" stack do
 * not collide, and names a cloud keeps reserved after deletion carry a random suffix made anew
 * after each destroy (components/recreatable.ts). The validators are the rules as the clouds
 * document them; tests check every generated name against them.
 */
import { createHash } from "node:crypto";

export function shortHash(...parts: string[]): string {
  return createHash("sha256").update(parts.join("\u0000")).digest("hex").slice(0, 8);
}

function alnum(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]/g, "");
}

function trimTo(s: string, max: number): string {
  return s.slice(0, max).replace(/[-_.]+$/, "");
}

/** The naming rules live in the one table of documented limits; re-exported for the name builders' users. */
export { checkName, NAME_RULES as RULES } from "./limits";

/** Longest base name: `ca-<base>-engine` must fit the 32 characters of a Container App name. */
export const BASE_NAME_MAX = 22;
/** Hex digits of the project/stack hash at the end of the base name. */
const BASE_HASH_LENGTH = 6;

/**
 * `<namePrefix>-<stack, shortened>-<hash of project and full stack name>`: lower-case, DNS-safe,
 * at most BASE_NAME_MAX characters, and different for any two stacks even when their names only
 * differ past the part that fits.
 */
export function baseName(namePrefix: string, stack: string, project: string): string {
  const room = BASE_NAME_MAX - namePrefix.length - BASE_HASH_LENGTH - 2;
  const stackPart = trimTo(stack.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/-+/g, "-").replace(/^-+/, ""), room) || "stack";
  return `${namePrefix}-${stackPart}-${shortHash(project, stack).slice(0, BASE_HASH_LENGTH)}`;
}

/**
 * The base name of one pipeline's engine (`pipelines`): `<namePrefix>-<pipeline>-<stack, shortened
 * to what fits>-<hash of project, full stack name and pipeline>`, at most BASE_NAME_MAX characters
 * like every base name, so the same name builders fit it; different for every pipeline and stack.
 */
export function pipelineBaseName(namePrefix: string, pipeline: string, stack: string, project: string): string {
  const hash = shortHash(project, stack, pipeline).slice(0, BASE_HASH_LENGTH);
  const room = BASE_NAME_MAX - namePrefix.length - pipeline.length - BASE_HASH_LENGTH - 3;
  const stackPart = room > 0 ? trimTo(stack.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/-+/g, "-").replace(/^-+/, ""), room) : "";
  return [namePrefix, pipeline, stackPart, hash].filter(Boolean).join("-");
}

export function s3BucketName(base: string, purpose: string, accountId: string): string {
  return trimTo(`${base}-${purpose}-${accountId}`, 63);
}

export function storageAccountName(base: string, uniqueness: string): string {
  return (alnum(base).slice(0, 16) + shortHash(uniqueness)).slice(0, 24);
}

export function acrName(base: string, uniqueness: string): string {
  return (alnum(base).slice(0, 40) + shortHash(uniqueness)).padEnd(5, "0");
}

/** `suffix`: the vault's recreatable suffix, because a deleted vault keeps its name for the soft-delete retention. */
export function keyVaultName(base: string, uniqueness: string, suffix: string): string {
  return `kv${alnum(base).slice(0, 10)}${shortHash(uniqueness)}${alnum(suffix).slice(0, 4)}`;
}

export function gcsBucketName(base: string, purpose: string, project: string): string {
  const name = `${base}-${purpose}-${project}`;
  return name.length <= 63 ? name : trimTo(`${base}-${purpose}-${shortHash(project)}`, 63);
}

export function gcpServiceAccountId(base: string): string {
  const id = trimTo(`${base}-engine`, 30);
  return id.length >= 6 ? id : id.padEnd(6, "0");
}

/** `<base>-kafka-<hash of subscription and base>`: an Event Hubs namespace name is global (`<name>.servicebus.windows.net`). */
export function eventHubsNamespaceName(base: string, uniqueness: string): string {
  return `${base}-kafka-${shortHash(uniqueness)}`;
}

/** The engine's user-assigned managed identity (Azure): with postgres.auth=azure-entra also its PostgreSQL role (an Entra principal of that name). */
export function azureEngineIdentityName(base: string): string {
  return `id-${base}-engine`;
}

/**
 * The Cloud SQL IAM database user of a service account: its e-mail without `.gserviceaccount.com`
 * (https://cloud.google.com/sql/docs/postgres/add-manage-iam-users), the PG_USER it logs in as.
 */
export function cloudSqlIamUser(serviceAccountId: string, project: string): string {
  return `${serviceAccountId}@${project}.iam`;
}
