/**
 * GCP: Unity Catalog creates and manages its own service account for a storage credential; the
 * stack grants that account object access and bucket metadata read on the landing bucket only.
 */
import * as pulumi from "@pulumi/pulumi";
import * as databricks from "@pulumi/databricks";
import { BucketIAMMember } from "@pulumi/gcp/storage";
import { GcpLanding } from "./landing";
import { ucObjectName } from "./naming";
import { LandingCredential } from "./credential";

export interface GcpLandingCredentialArgs {
  landing: GcpLanding;
  namePrefix: string;
}

/** The bucket roles Databricks documents for a Unity Catalog storage credential on GCS. */
export const GCS_UNITY_CATALOG_ROLES = ["roles/storage.objectAdmin", "roles/storage.legacyBucketReader"] as const;

export class GcpLandingCredential extends pulumi.ComponentResource implements LandingCredential {
  readonly credentialName: pulumi.Output<string>;
  readonly serviceAccountEmail: pulumi.Output<string>;
  readonly accessGranted: pulumi.Resource[];

  constructor(name: string, args: GcpLandingCredentialArgs, opts?: pulumi.ComponentResourceOptions) {
    super("postgres-cdc-multicloud:gcp:DatabricksLandingCredential", name, {}, opts);

    const credential = new databricks.StorageCredential(
      `${name}-credential`,
      {
        name: ucObjectName(args.namePrefix, "landing"),
        comment: "postgres-cdc-multicloud: read the CDC landing zone",
        databricksGcpServiceAccount: {},
      },
      { parent: this },
    );
    const email = credential.databricksGcpServiceAccount.apply((sa) => {
      if (!sa?.email) throw new Error("the storage credential did not report its Databricks-managed service account");
      return sa.email;
    });

    this.accessGranted = GCS_UNITY_CATALOG_ROLES.map(
      (role) =>
        new BucketIAMMember(
          `${name}-${role.split(".").pop()}`,
          { bucket: args.landing.bucketName, role, member: pulumi.interpolate`serviceAccount:${email}` },
          { parent: this },
        ),
    );
    this.credentialName = credential.name;
    this.serviceAccountEmail = email;
    this.registerOutputs({ credentialName: this.credentialName, serviceAccountEmail: this.serviceAccountEmail });
  }
}
