/**
 * Azure: Unity Catalog reads the landing container through a Databricks access connector's
 * system-assigned managed identity, which gets Storage Blob Data Contributor on that one
 * container (not the account, not the resource group).
 */
import * as pulumi from "@pulumi/pulumi";
import * as databricks from "@pulumi/databricks";
import { AccessConnector } from "@pulumi/azure-native/databricks";
import { RoleAssignment } from "@pulumi/azure-native/authorization";
import { roleDefinitionId } from "../azure/roles";
import { AzureLanding, STORAGE_BLOB_DATA_CONTRIBUTOR } from "./landing";
import { accessConnectorName, ucObjectName } from "./naming";
import { LandingCredential } from "./credential";
import { afterPropagation, AZURE_RBAC_PROPAGATION_MS } from "./propagation";

export interface AzureLandingCredentialArgs {
  landing: AzureLanding;
  namePrefix: string;
  tags: Record<string, string>;
}

/** The subscription-scoped ID of a built-in role, for the subscription that holds `scopeId`. */
export function builtInRoleDefinitionId(scopeId: string, roleGuid: string): string {
  const m = /^\/subscriptions\/([^/]+)\//i.exec(scopeId);
  if (!m) throw new Error(`landing containerId "${scopeId}" is not an ARM resource ID (/subscriptions/<id>/resourceGroups/…/containers/<name>)`);
  return roleDefinitionId(m[1], roleGuid);
}

export class AzureLandingCredential extends pulumi.ComponentResource implements LandingCredential {
  readonly credentialName: pulumi.Output<string>;
  readonly accessConnectorId: pulumi.Output<string>;
  readonly principalId: pulumi.Output<string>;
  readonly accessGranted: pulumi.Resource[];

  constructor(name: string, args: AzureLandingCredentialArgs, opts?: pulumi.ComponentResourceOptions) {
    super("postgres-cdc-multicloud:azure:DatabricksLandingCredential", name, {}, opts);
    const { landing } = args;

    const connector = new AccessConnector(
      `${name}-connector`,
      {
        connectorName: accessConnectorName(args.namePrefix, "uc-landing"),
        resourceGroupName: landing.resourceGroupName,
        location: landing.location,
        identity: { type: "SystemAssigned" },
        tags: args.tags,
      },
      { parent: this },
    );
    const principalId = connector.identity.apply((identity) => {
      if (!identity?.principalId) throw new Error("the Databricks access connector has no system-assigned identity");
      return identity.principalId;
    });

    const assignment = new RoleAssignment(
      `${name}-blob-contributor`,
      {
        scope: landing.containerId,
        principalId,
        principalType: "ServicePrincipal",
        roleDefinitionId: pulumi.output(landing.containerId).apply((id) => builtInRoleDefinitionId(id, STORAGE_BLOB_DATA_CONTRIBUTOR)),
        description: "Unity Catalog (postgres-cdc-multicloud) reads the CDC landing container",
      },
      { parent: this },
    );

    const credential = new databricks.StorageCredential(
      `${name}-credential`,
      {
        name: ucObjectName(args.namePrefix, "landing"),
        comment: "postgres-cdc-multicloud: read the CDC landing zone",
        azureManagedIdentity: { accessConnectorId: connector.id },
      },
      { parent: this, dependsOn: [assignment] },
    );

    // The external location uses the credential only once a fresh role assignment has taken effect.
    this.credentialName = afterPropagation(credential.name, assignment.createdOn, AZURE_RBAC_PROPAGATION_MS);
    this.accessConnectorId = connector.id;
    this.principalId = principalId;
    this.accessGranted = [assignment];
    this.registerOutputs({ credentialName: this.credentialName, accessConnectorId: this.accessConnectorId });
  }
}
