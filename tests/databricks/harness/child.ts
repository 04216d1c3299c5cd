/**
 * Builds the Databricks part for one configuration under Pulumi mocks, in its own process
 * (PULUMI_CONFIG is read once per process). The settings are read the way the stack reads them:
 * from PULUMI_CONFIG, the token as a config secret. Output: HARNESS_OUT gets every registered
 * resource (inputs with secret values wrapped as {"$secret": …}, dependencies by name), every
 * invoke, the pipeline's outputs and the error if construction failed.
 *
 * Mocks stand in for Databricks and the clouds because neither exists here. They answer with the
 * computed values the real providers return (the credential's external ID, the access
 * connector's identity, …); `call` answers only the one invoke the component may make and throws
 * on anything else.
 */
import { writeFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { mark } from "../../pulumi/harness/secrets";
import { computed as databricksComputed } from "./computed";
import { ACCOUNT, CONTAINER_ID, KMS_KEY_ARN, LANDING, SUB } from "./fixtures";

export interface ChildInput {
  cloud: "aws" | "azure" | "gcp" | "local";
  /** The raw `databricks` config object (JSON-stringified into PULUMI_CONFIG, as the CLI does). */
  databricks: unknown;
  /** When set, `databricks.token` is this value and a config secret. */
  token?: string;
  engineTables: string[];
  dryRun: boolean;
  /** Omit the AWS account ID from the landing facts (the component then looks it up). */
  omitAccountId?: boolean;
}

const input = JSON.parse(process.env.HARNESS_INPUT!) as ChildInput;
const outFile = process.env.HARNESS_OUT!;
const config: Record<string, string> = {
  "postgres-cdc-multicloud:cloud": input.cloud,
  "postgres-cdc-multicloud:databricks": JSON.stringify(
    input.token === undefined ? input.databricks : { ...(input.databricks as object), token: input.token },
  ),
};
process.env.PULUMI_CONFIG = JSON.stringify(config);
if (input.token !== undefined) process.env.PULUMI_CONFIG_SECRET_KEYS = JSON.stringify(["postgres-cdc-multicloud:databricks"]);

interface Registered {
  type: string;
  name: string;
  urn: string;
  parent: string;
  custom: boolean;
  inputs: Record<string, unknown>;
  dependencies: string[];
  provider: string;
}
const resources: Registered[] = [];
const invokes: { token: string; inputs: unknown }[] = [];

// Record what the SDK really sends (secret envelopes intact) before the mock monitor unwraps it.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { MockMonitor } = require("@pulumi/pulumi/runtime/mocks") as { MockMonitor: { prototype: any } };
const originalRegister = MockMonitor.prototype.registerResource;
MockMonitor.prototype.registerResource = function (req: any, callback: any) {
  const type = req.getType();
  const name = req.getName();
  const parent = req.getParent();
  const qualified = parent ? `${parent.split("::")[2].split("$").pop()}$${type}` : type;
  resources.push({
    type,
    name,
    urn: `urn:pulumi:${pulumi.getStack()}::${pulumi.getProject()}::${qualified}::${name}`,
    parent,
    custom: req.getCustom(),
    inputs: mark(req.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>,
    dependencies: req.getDependenciesList(),
    provider: req.getProvider(),
  });
  return originalRegister.call(this, req, callback);
};

function computed(type: string, name: string, inputs: Record<string, any>, id: string): Record<string, unknown> {
  if (type === "aws:iam/role:Role") return { arn: `arn:aws:iam::${ACCOUNT}:role/${inputs.name}` };
  return databricksComputed(type, name, inputs, id);
}

function idFor(type: string, name: string, inputs: Record<string, any>): string {
  if (type === "azure-native:databricks:AccessConnector") return `/subscriptions/${SUB}/resourceGroups/${inputs.resourceGroupName}/providers/Microsoft.Databricks/accessConnectors/${inputs.connectorName}`;
  if (type === "databricks:index/job:Job") return "918273645";
  return `${name}-id`;
}

pulumi.runtime.setMocks(
  {
    newResource(args) {
      const id = idFor(args.type, args.name, args.inputs);
      return { id, state: { ...args.inputs, ...computed(args.type, args.name, args.inputs, id) } };
    },
    call(args) {
      invokes.push({ token: args.token, inputs: args.inputs });
      if (args.token === "aws:index/getCallerIdentity:getCallerIdentity") {
        return { accountId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:user/deployer`, userId: "AIDA", id: ACCOUNT };
      }
      throw new Error(`unexpected invoke ${args.token}: add a stub only if the component is meant to call it`);
    },
  },
  "postgres-cdc-multicloud",
  "prod",
  input.dryRun,
);

async function main() {
  // Imported after setMocks, as a program would be loaded by the engine.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const dbx = require("../../../components/databricks") as typeof import("../../../components/databricks");
  const settings = dbx.readDatabricksSettings(new pulumi.Config("postgres-cdc-multicloud"));
  const tags = { project: "postgres-cdc-multicloud", stack: "prod", "managed-by": "pulumi", team: "data" };
  const landing = (() => {
    switch (input.cloud) {
      case "aws":
        return {
          cloud: "aws" as const,
          landingUrl: `s3://${LANDING.aws.bucket}/${LANDING.aws.prefix}`,
          bucketName: LANDING.aws.bucket,
          bucketArn: `arn:aws:s3:::${LANDING.aws.bucket}`,
          prefix: LANDING.aws.prefix,
          kmsKeyArn: KMS_KEY_ARN,
          ...(input.omitAccountId ? {} : { accountId: ACCOUNT }),
        };
      case "azure":
        return {
          cloud: "azure" as const,
          landingUrl: `abfss://${LANDING.azure.container}@${LANDING.azure.account}.dfs.core.windows.net/${LANDING.azure.prefix}`,
          resourceGroupName: LANDING.azure.rg,
          location: "westeurope",
          storageAccountName: LANDING.azure.account,
          containerName: LANDING.azure.container,
          containerId: CONTAINER_ID,
        };
      case "gcp":
        return { cloud: "gcp" as const, landingUrl: `gs://${LANDING.gcp.bucket}/${LANDING.gcp.prefix}`, bucketName: LANDING.gcp.bucket };
      default:
        // The platform's local target: a directory, which Databricks cannot read.
        return {
          cloud: "local" as const,
          url: pulumi.output("file:///var/lib/cdc/landing"),
          rootUrl: pulumi.output("file:///var/lib/cdc/landing"),
          prefix: "",
          region: "local",
          tags,
          local: { directory: "/var/lib/cdc/landing" },
        };
    }
  })();
  const pipeline = dbx.createDatabricksPipeline("databricks", { landing, settings, engineTables: input.engineTables, namePrefix: "cdc-prod", tags });
  const outputs: Record<string, unknown> = {};
  if (pipeline) {
    const values = await new Promise<unknown[]>((resolve) =>
      pulumi.all([pipeline.jobUrl, pipeline.catalogName, pipeline.checkpointRoot, pipeline.externalLocationName]).apply(resolve),
    );
    Object.assign(outputs, { jobUrl: values[0], catalogName: values[1], checkpointRoot: values[2], externalLocationName: values[3], workspaceFolder: pipeline.workspaceFolder });
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  await (require("@pulumi/pulumi/runtime/settings") as { waitForRPCs(): Promise<void> }).waitForRPCs();
  writeFileSync(outFile, JSON.stringify({ resources, invokes, outputs, created: Boolean(pipeline) }));
}

main().catch((err: Error) => {
  writeFileSync(outFile, JSON.stringify({ resources, invokes, outputs: {}, created: false, error: err.message, kind: err.name }));
});
