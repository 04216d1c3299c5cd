/**
 * The real index.ts under the platform's own mock harness (tests/pulumi/harness/child.ts), with
 * one addition: the computed outputs the Databricks and access-connector providers return (the
 * storage credential's external ID or managed service account, the connector's identity, the
 * job URL), which that harness does not know about. Same input/output contract as that child.
 */
import { createHash } from "node:crypto";

const h = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 12);
export const UC_MASTER_ARN = "arn:aws:iam::414351767826:role/unity-catalog-prod-UCMasterRole-14S5ZJVKOTYTL";

function databricksComputed(type: string, name: string, inputs: Record<string, any>, id: string): Record<string, unknown> {
  switch (type) {
    case "databricks:index/storageCredential:StorageCredential":
      if (inputs.awsIamRole) return { awsIamRole: { ...inputs.awsIamRole, externalId: `ext-${h(name)}`, unityCatalogIamArn: UC_MASTER_ARN } };
      if (inputs.databricksGcpServiceAccount) return { databricksGcpServiceAccount: { email: `db-uc-storage-${h(name)}@uc-useast1.iam.gserviceaccount.com` } };
      return {};
    case "azure-native:databricks:AccessConnector":
      return { identity: { type: inputs.identity?.type, principalId: `principal-${h(name)}`, tenantId: "tenant" } };
    case "databricks:index/job:Job":
      return { url: `https://dbc.example.cloud.databricks.com/#job/${h(id)}` };
    default:
      return {};
  }
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { MockMonitor } = require("@pulumi/pulumi/runtime/mocks") as { MockMonitor: { prototype: any } };
const register = MockMonitor.prototype.registerResource;
MockMonitor.prototype.registerResource = function (this: any, req: unknown, callback: unknown) {
  if (!this.databricksComputed) {
    const inner = this.mocks;
    this.mocks = {
      call: (args: unknown) => inner.call(args),
      newResource: async (args: { type: string; name: string; inputs: Record<string, any> }) => {
        const result = await inner.newResource(args);
        return { id: result.id, state: { ...result.state, ...databricksComputed(args.type, args.name, args.inputs, result.id ?? "") } };
      },
    };
    this.databricksComputed = true;
  }
  return register.call(this, req, callback);
};

// eslint-disable-next-line @typescript-eslint/no-require-imports
require("../../pulumi/harness/child");
