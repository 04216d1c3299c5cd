/**
 * Names derived from the stack's name prefix, valid for each system they land in.
 */

/** Unity Catalog object names (credentials, external locations): lower-case letters, digits and _. */
export function ucObjectName(prefix: string, suffix: string): string {
  const base = `${prefix}_${suffix}`.toLowerCase().replace(/[^a-z0-9_]+/g, "_").replace(/_+/g, "_");
  return base.replace(/^_+|_+$/g, "").slice(0, 255);
}

/** AWS IAM role names: at most 64 of [A-Za-z0-9+=,.@_-]. */
export function iamRoleName(prefix: string, suffix: string): string {
  const cleaned = prefix.replace(/[^A-Za-z0-9+=,.@_-]+/g, "-");
  return `${cleaned.slice(0, 63 - suffix.length)}-${suffix}`;
}

/** Azure Databricks access connector names: 3-64 of [A-Za-z0-9_-]. */
export function accessConnectorName(prefix: string, suffix: string): string {
  const cleaned = prefix.replace(/[^A-Za-z0-9_-]+/g, "-");
  return `${cleaned.slice(0, 63 - suffix.length)}-${suffix}`;
}
