/**
 * The computed outputs the Databricks and access-connector providers return (the storage
 * credential's external ID or managed service account, the connector's identity, the volume and
 * workspace paths, the job URL), which the platform's mock harness (tests/pulumi/harness) does not
 * know about. Used by this folder's component child and, through `computedOutputs`, by the
 * platform harness when it runs the real index.ts.
 */
import { createHash } from "node:crypto";
import type { ComputedOutputs } from "../../pulumi/harness/child";
import { UC_MASTER } from "./fixtures";

const h = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 12);

export const computed: ComputedOutputs = (type, name, inputs, id) => {
  switch (type) {
    case "databricks:index/storageCredential:StorageCredential":
      if (inputs.awsIamRole) return { awsIamRole: { ...inputs.awsIamRole, externalId: `ext-${h(name)}`, unityCatalogIamArn: UC_MASTER } };
      if (inputs.databricksGcpServiceAccount) return { databricksGcpServiceAccount: { email: `db-uc-storage-${h(name)}@uc-useast1.iam.gserviceaccount.com`, credentialId: id } };
      return {};
    case "azure-native:databricks:AccessConnector":
      return { identity: { type: inputs.identity?.type, principalId: `principal-${h(name)}`, tenantId: "tenant" } };
    case "databricks:index/volume:Volume":
      return { volumePath: `/Volumes/${inputs.catalogName}/${inputs.schemaName}/${inputs.name}` };
    case "databricks:index/notebook:Notebook":
    case "databricks:index/workspaceFile:WorkspaceFile":
      return { workspacePath: `/Workspace${inputs.path}`, url: `https://dbc.example.cloud.databricks.com/#workspace${inputs.path}` };
    case "databricks:index/job:Job":
      return { url: `https://dbc.example.cloud.databricks.com/#job/${id}` };
    default:
      return {};
  }
};
