/**
 * The shape every cloud's Unity Catalog storage access has: a storage credential that can reach
 * the landing storage, and the resources that must exist before Databricks can validate it.
 */
import * as pulumi from "@pulumi/pulumi";

export interface LandingCredential {
  /** Name of the Unity Catalog storage credential. */
  readonly credentialName: pulumi.Output<string>;
  /** Cloud-side grants the external location must wait for. */
  readonly accessGranted: pulumi.Resource[];
}
