/**
 * One Pulumi program run under mocks, in its own process (PULUMI_CONFIG is read once per process
 * and index.ts runs once per process). Input: HARNESS_INPUT (JSON). Output: a JSON file at
 * HARNESS_OUT with every registered resource (secret values wrapped as {"$secret": …}), every
 * invoke, the stack outputs, and the error if the program failed.
 *
 * The mocks stand in for the clouds because no cloud account or Pulumi CLI exists here; `call`
 * answers only the invokes the program is expected to make and throws on anything else.
 */
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { mark, unwrap } from "./secrets";

interface Input {
  project: string;
  stack: string;
  dryRun: boolean;
  config: Record<string, string>;
  secretKeys: string[];
  /** A module whose `computed` export adds the computed outputs of providers this harness does not know. */
  computedOutputs?: string;
  /** The program to run, relative to the repository (index.ts when omitted). */
  program?: string;
}

/** Computed outputs a provider returns for a registered resource, merged over its inputs. */
export type ComputedOutputs = (type: string, name: string, inputs: Record<string, any>, id: string) => Record<string, unknown>;

const input = JSON.parse(process.env.HARNESS_INPUT!) as Input;
const outFile = process.env.HARNESS_OUT!;
const REPO = path.resolve(__dirname, "..", "..", "..");
const extraComputed = input.computedOutputs ? (require(input.computedOutputs) as { computed: ComputedOutputs }).computed : undefined;

const resources: { type: string; name: string; inputs: unknown; provider?: string }[] = [];
const invokes: { token: string; inputs: unknown }[] = [];
const fetches: { url: string; body: string }[] = [];
/** What the program logged with pulumi.log (without an engine the SDK prints it to the console). */
const logs: string[] = [];
const consoleLog = console.log.bind(console);
console.log = (...args: unknown[]) => {
  const line = args.map(String).join(" ");
  if (line.startsWith("info: [runtime] ")) logs.push(line.slice("info: [runtime] ".length));
  else consoleLog(...args);
};

const ACCOUNT = "123456789012";
const SUB = "00000000-0000-0000-0000-000000000001";
const TENANT = "00000000-0000-0000-0000-0000000000aa";
const h = (s: string) => createHash("sha256").update(s).digest("hex");

/** Computed outputs a real provider would return, by resource type. */
function computed(type: string, name: string, inputs: Record<string, any>): Record<string, unknown> {
  const region = input.config["aws:region"] ?? "eu-west-1";
  const gcpProject = input.config["gcp:project"] ?? "proj";
  switch (type) {
    case "aws:s3/bucket:Bucket":
      return { bucket: inputs.bucket, arn: `arn:aws:s3:::${inputs.bucket}` };
    case "aws:ecr/repository:Repository":
      return { repositoryUrl: `${ACCOUNT}.dkr.ecr.${region}.amazonaws.com/${inputs.name}`, registryId: ACCOUNT, arn: `arn:aws:ecr:${region}:${ACCOUNT}:repository/${inputs.name}` };
    case "aws:secretsmanager/secret:Secret":
      return { arn: `arn:aws:secretsmanager:${region}:${ACCOUNT}:secret:${inputs.name}-AbCdEf` };
    case "aws:iam/role:Role":
      return { arn: `arn:aws:iam::${ACCOUNT}:role/${inputs.name}` };
    case "aws:cloudwatch/logGroup:LogGroup":
      return { arn: `arn:aws:logs:${region}:${ACCOUNT}:log-group:${inputs.name}` };
    case "aws:msk/serverlessCluster:ServerlessCluster": {
      const uuid = "0123abcd-4567-89ef-0123-456789abcdef-s1";
      return {
        arn: `arn:aws:kafka:${region}:${ACCOUNT}:cluster/${inputs.clusterName}/${uuid}`,
        clusterUuid: uuid,
        bootstrapBrokersSaslIam: `boot-abcd1234.c1.kafka-serverless.${region}.amazonaws.com:9098`,
      };
    }
    case "aws:ecs/cluster:Cluster":
      return { arn: `arn:aws:ecs:${region}:${ACCOUNT}:cluster/${inputs.name}` };
    case "aws:ecs/taskDefinition:TaskDefinition":
      return { arn: `arn:aws:ecs:${region}:${ACCOUNT}:task-definition/${inputs.family}:1` };
    case "docker:index/image:Image": {
      if (input.dryRun) return {}; // not built on preview: the digest is unknown
      const repo = String(inputs.imageName).replace(/:[^:/]+$/, "");
      return { repoDigest: inputs.skipPush ? `sha256:${h(inputs.imageName)}` : `${repo}@sha256:${h(inputs.imageName)}` };
    }
    case "azure-native:resources:ResourceGroup":
      return { name: inputs.resourceGroupName ?? name };
    case "azure-native:storage:StorageAccount":
      return { name: inputs.accountName };
    case "azure-native:storage:BlobContainer":
      return { name: inputs.containerName };
    case "azure-native:containerregistry:Registry":
      return { name: inputs.registryName, loginServer: `${String(inputs.registryName).toLowerCase()}.azurecr.io` };
    case "azure-native:managedidentity:UserAssignedIdentity":
      return { name: inputs.resourceName, principalId: `principal-${h(name).slice(0, 8)}`, clientId: `client-${h(name).slice(0, 8)}` };
    case "azure-native:keyvault:Vault":
      return { name: inputs.vaultName, properties: { ...inputs.properties, vaultUri: `https://${inputs.vaultName}.vault.azure.net/` } };
    case "azure-native:keyvault:Secret":
      // Key Vault makes a new version for every new value.
      return { name: inputs.secretName, properties: { secretUri: `https://${inputs.vaultName}.vault.azure.net/secrets/${inputs.secretName}`, secretUriWithVersion: `https://${inputs.vaultName}.vault.azure.net/secrets/${inputs.secretName}/${h(JSON.stringify(inputs.properties?.value)).slice(0, 32)}` } };
    case "aws:secretsmanager/secretVersion:SecretVersion":
      return { versionId: `v-${h(JSON.stringify(inputs.secretString)).slice(0, 32)}` };
    case "gcp:secretmanager/secretVersion:SecretVersion":
      return { version: String(parseInt(h(JSON.stringify(inputs.secretData)).slice(0, 6), 16)) };
    case "azure-native:operationalinsights:Workspace":
      return { name: inputs.workspaceName, customerId: `customer-${h(name).slice(0, 8)}` };
    case "azure-native:app:ManagedEnvironment":
      return { name: inputs.environmentName };
    case "azure-native:eventhub:Namespace":
      return { name: inputs.namespaceName };
    case "azure-native:eventhub:EventHub":
      return { name: inputs.eventHubName };
    case "azure-native:app:ContainerApp":
      return { name: inputs.containerAppName };
    case "gcp:storage/bucket:Bucket":
      return { name: inputs.name, url: `gs://${inputs.name}` };
    case "gcp:serviceaccount/account:Account":
      return { email: `${inputs.accountId}@${gcpProject}.iam.gserviceaccount.com`, member: `serviceAccount:${inputs.accountId}@${gcpProject}.iam.gserviceaccount.com` };
    case "gcp:artifactregistry/repository:Repository":
      return { name: inputs.repositoryId, registryUri: `${inputs.location}-docker.pkg.dev/${gcpProject}/${inputs.repositoryId}` };
    case "gcp:secretmanager/secret:Secret":
      return { name: `projects/${gcpProject}/secrets/${inputs.secretId}` };
    case "gcp:cloudrunv2/service:Service":
      return { uid: `uid-${h(name).slice(0, 8)}` };
    case "gcp:logging/projectBucketConfig:ProjectBucketConfig":
      return { name: `projects/${gcpProject}/locations/${inputs.location}/buckets/${inputs.bucketId}` };
    case "docker:index/container:Container":
      return { name: inputs.name };
    case "aws:sns/topic:Topic":
      return { arn: `arn:aws:sns:${region}:${ACCOUNT}:${inputs.name}` };
    case "gcp:monitoring/notificationChannel:NotificationChannel":
      return { name: `projects/${gcpProject}/notificationChannels/${h(name).slice(0, 12)}` };
    case "gcp:monitoring/alertPolicy:AlertPolicy":
      return { name: `projects/${gcpProject}/alertPolicies/${h(name).slice(0, 12)}` };
    case "random:index/randomString:RandomString":
      return { result: h(name).slice(0, inputs.length) };
    default:
      return {};
  }
}

function idFor(type: string, name: string, inputs: Record<string, any>): string {
  if (type.startsWith("azure-native:")) {
    const rg = inputs.resourceGroupName ?? "rg";
    if (type === "azure-native:resources:ResourceGroup") return `/subscriptions/${SUB}/resourceGroups/${inputs.resourceGroupName ?? name}`;
    if (type === "azure-native:storage:BlobContainer") return `/subscriptions/${SUB}/resourceGroups/${rg}/providers/Microsoft.Storage/storageAccounts/${inputs.accountName}/blobServices/default/containers/${inputs.containerName}`;
    if (type === "azure-native:keyvault:Secret") return `/subscriptions/${SUB}/resourceGroups/${rg}/providers/Microsoft.KeyVault/vaults/${inputs.vaultName}/secrets/${inputs.secretName}`;
    const ARM: Record<string, [string, string | undefined]> = {
      "azure-native:storage:StorageAccount": ["Microsoft.Storage/storageAccounts", inputs.accountName],
      "azure-native:containerregistry:Registry": ["Microsoft.ContainerRegistry/registries", inputs.registryName],
      "azure-native:keyvault:Vault": ["Microsoft.KeyVault/vaults", inputs.vaultName],
      "azure-native:managedidentity:UserAssignedIdentity": ["Microsoft.ManagedIdentity/userAssignedIdentities", inputs.resourceName],
      "azure-native:operationalinsights:Workspace": ["Microsoft.OperationalInsights/workspaces", inputs.workspaceName],
      "azure-native:app:ManagedEnvironment": ["Microsoft.App/managedEnvironments", inputs.environmentName],
      "azure-native:app:ContainerApp": ["Microsoft.App/containerApps", inputs.containerAppName],
      "azure-native:storage:ManagementPolicy": [`Microsoft.Storage/storageAccounts/${inputs.accountName}/managementPolicies`, "default"],
      "azure-native:eventhub:Namespace": ["Microsoft.EventHub/namespaces", inputs.namespaceName],
      "azure-native:eventhub:EventHub": [`Microsoft.EventHub/namespaces/${inputs.namespaceName}/eventhubs`, inputs.eventHubName],
    };
    if (type === "azure-native:authorization:RoleAssignment") return `${inputs.scope}/providers/Microsoft.Authorization/roleAssignments/${h(name).slice(0, 32)}`;
    const [armType, leaf] = ARM[type] ?? [type.split(":").slice(1).join("/"), name];
    return `/subscriptions/${SUB}/resourceGroups/${rg}/providers/${armType}/${leaf ?? name}`;
  }
  if (type === "aws:s3/bucket:Bucket") return inputs.bucket;
  if (type === "aws:ecs/service:Service") return `arn:aws:ecs:eu-west-1:${ACCOUNT}:service/${inputs.name}`;
  if (type.startsWith("gcp:")) return `projects/${input.config["gcp:project"] ?? "proj"}/${name}`;
  return `${name}-id`;
}

const INVOKES: Record<string, (args: Record<string, any>) => Record<string, unknown>> = {
  "aws:index/getCallerIdentity:getCallerIdentity": () => ({ accountId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:user/deployer`, userId: "AIDA", id: ACCOUNT }),
  "aws:ecr/getAuthorizationToken:getAuthorizationToken": (a) => ({ authorizationToken: "QVdTOnRva2Vu", userName: "AWS", password: "ecr-token-password", proxyEndpoint: `https://${a.registryId ?? ACCOUNT}.dkr.ecr.${input.config["aws:region"]}.amazonaws.com`, expiresAt: "2030-01-01T00:00:00Z", id: "x" }),
  "aws:ec2/getVpc:getVpc": () => ({ id: "vpc-0aaaaaaaaaaaaaaaa", cidrBlock: "172.31.0.0/16", default: true }),
  "aws:ec2/getSubnets:getSubnets": () => ({ ids: ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"], id: "x" }),
  "azure-native:authorization:getClientConfig": () => ({ clientId: "deployer-client", objectId: "deployer-object", subscriptionId: SUB, tenantId: TENANT }),
  "azure-native:authorization:getClientToken": () => ({ token: "aad-access-token-for-arm" }),
  "azure-native:operationalinsights:getSharedKeys": () => ({ primarySharedKey: "law-primary-key", secondarySharedKey: "law-secondary-key" }),
  "gcp:organizations/getClientConfig:getClientConfig": () => ({ accessToken: "gcp-access-token", project: input.config["gcp:project"], region: input.config["gcp:region"], id: "x" }),
};

// The Azure registry login exchanges an Entra ID token for an ACR refresh token over HTTPS, like
// `az acr login`. No registry exists here: answer that one endpoint and refuse everything else.
globalThis.fetch = (async (url: string | URL, init?: RequestInit) => {
  const u = String(url);
  fetches.push({ url: u, body: String(init?.body ?? "") });
  if (/^https:\/\/[a-z0-9]+\.azurecr\.io\/oauth2\/exchange$/.test(u)) {
    return new Response(JSON.stringify({ refresh_token: "acr-refresh-token" }), { status: 200, headers: { "content-type": "application/json" } });
  }
  throw new Error(`unexpected fetch ${u}`);
}) as typeof fetch;

/** Which provider SDK modules this run loaded (package, or package/submodule for azure-native). */
function loadedModules(): string[] {
  const found = new Set<string>();
  for (const file of Object.keys(require.cache)) {
    const m = /node_modules\/@pulumi\/([^/]+)\/(?:([^/]+)\/)?/.exec(file);
    if (!m || m[1] === "pulumi") continue;
    found.add(m[1] === "azure-native" && m[2] && !m[2].endsWith(".js") ? `${m[1]}/${m[2]}` : m[1] === "azure-native" ? `${m[1]}/${file.split("/").pop()}` : m[1]);
  }
  return [...found].sort();
}

function finish(result: Record<string, unknown>, code: number): never {
  writeFileSync(outFile, JSON.stringify({ resources, invokes, fetches, logs, modules: loadedModules(), urns: registeredUrns(), ...result }));
  process.exit(code);
}

/** The URNs the mock monitor gave every registered resource (what identifies a resource in a real stack's state). */
function registeredUrns(): string[] {
  const monitor = pulumi.runtime.getMonitor() as unknown as { resources?: Map<string, unknown> } | undefined;
  return [...(monitor?.resources?.keys() ?? [])];
}

process.on("unhandledRejection", (err) => finish({ error: String((err as Error)?.message ?? err), kind: "unhandledRejection" }, 3));
process.on("uncaughtException", (err) => finish({ error: String(err?.message ?? err), kind: "uncaughtException" }, 3));

async function main(): Promise<void> {
  process.env.PULUMI_CONFIG = JSON.stringify(input.config);
  process.env.PULUMI_CONFIG_SECRET_KEYS = JSON.stringify(input.secretKeys);
  await pulumi.runtime.setMocks({
    newResource(args) {
      resources.push({ type: args.type, name: args.name, inputs: mark(args.inputs), provider: args.provider });
      const plain = unwrap(args.inputs) as Record<string, any>;
      const id = idFor(args.type, args.name, plain);
      return { id, state: { ...args.inputs, ...computed(args.type, args.name, plain), ...extraComputed?.(args.type, args.name, plain, id) } };
    },
    call(args) {
      invokes.push({ token: args.token, inputs: mark(args.inputs) });
      const stub = INVOKES[args.token];
      if (!stub) throw new Error(`unexpected invoke ${args.token}`);
      return stub(unwrap(args.inputs) as Record<string, any>);
    },
  }, input.project, input.stack, input.dryRun);

  let program: Record<string, unknown>;
  try {
    program = require(path.join(REPO, input.program ?? "index.ts"));
  } catch (err) {
    finish({ error: (err as Error).message, kind: (err as Error).name }, 2);
  }
  const outputs: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(program)) {
    if (!pulumi.Output.isInstance(v)) {
      outputs[k] = v;
      continue;
    }
    // The SDK's own view of an output: its value, whether it is known (preview) and secret.
    const impl = v as unknown as { promise(withUnknowns: boolean): Promise<unknown>; isKnown: Promise<boolean>; isSecret: Promise<boolean> };
    const [value, known, secret] = await Promise.all([impl.promise(true), impl.isKnown, impl.isSecret]);
    const shown = known ? value : "$unknown";
    outputs[k] = secret ? { $secret: shown } : shown;
  }
  // Wait until every registration and invoke has been answered.
  await pulumi.runtime.disconnect();
  finish({ outputs: mark(outputs) }, 0);
}

void main();
