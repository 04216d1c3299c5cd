/**
 * Cloud IAM is eventually consistent, and whatever uses a grant first checks it the moment it is
 * created: Unity Catalog validates an external location against the cloud, a Container App resolves
 * its Key Vault secret reference and pulls from ACR with its identity. Right after the stack creates
 * the role or role assignment, that can fail although the grant is right. The stack therefore waits
 * out the propagation time — only when the grant is fresh, so later `pulumi up`s do not wait at all.
 */
import * as pulumi from "@pulumi/pulumi";

/** AWS IAM roles and inline policies are usable everywhere within seconds. */
export const AWS_IAM_PROPAGATION_MS = 20_000;
/** Azure RBAC role assignments usually take effect within a minute. */
export const AZURE_RBAC_PROPAGATION_MS = 60_000;

/** How long to still wait for a grant created at `createdAt` (ISO-8601), or 0. */
export function propagationWaitMs(createdAt: string | undefined, propagationMs: number, now = Date.now()): number {
  const created = createdAt ? Date.parse(createdAt) : NaN;
  if (Number.isNaN(created)) return 0;
  return Math.max(0, Math.min(propagationMs, created + propagationMs - now));
}

/**
 * `value`, resolved only once the grant created at `createdAt` has had time to propagate (never in
 * preview). `user` says in the log what is waiting.
 */
export function afterPropagation(value: pulumi.Output<string>, createdAt: pulumi.Output<string | undefined>, propagationMs: number, user = "Unity Catalog validates it"): pulumi.Output<string> {
  return pulumi.all([value, createdAt]).apply(async ([v, created]) => {
    const wait = pulumi.runtime.isDryRun() ? 0 : propagationWaitMs(created, propagationMs);
    if (wait > 0) {
      pulumi.log.info(`waiting ${Math.ceil(wait / 1000)} s for the new cloud grant to propagate before ${user}`);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
    return v;
  });
}
