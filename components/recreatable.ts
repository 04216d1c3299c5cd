/**
 * Some clouds keep a name reserved after the resource is deleted: a Key Vault for its soft-delete
 * retention (7-90 days), an AWS secret for its recovery window, a GCP log bucket for 7 days. A fixed
 * name would make `pulumi destroy` then `pulumi up` fail within that time. Those names carry this
 * suffix: random, kept in the stack's state (stable across updates), and new after a destroy.
 */
import * as pulumi from "@pulumi/pulumi";
import type * as randomTypes from "@pulumi/random";

/** Length of the suffix: 36^4 ≈ 1.7 million values, only ever compared with the stack's own previous ones. */
export const RECREATABLE_SUFFIX_LENGTH = 4;

/** A new random suffix `name` under `parent`: lower-case letters and digits. */
export function recreatableSuffix(name: string, parent: pulumi.Resource): pulumi.Output<string> {
  // Loaded here: only the components that need it pay for the provider SDK.
  const random = require("@pulumi/random") as typeof randomTypes;
  return new random.RandomString(name, {
    length: RECREATABLE_SUFFIX_LENGTH,
    lower: true,
    upper: false,
    numeric: true,
    special: false,
  }, { parent }).result;
}
