/**
 * Azure: resource group, ADLS Gen2 landing container, ACR, Key Vault, Log Analytics, and one
 * Container App running the engine under a user-assigned managed identity.
 */
import * as app from "@pulumi/azure-native/app";
import * as authorization from "@pulumi/azure-native/authorization";
import * as containerregistry from "@pulumi/azure-native/containerregistry";
import * as keyvault from "@pulumi/azure-native/keyvault";
import * as managedidentity from "@pulumi/azure-native/managedidentity";
import * as monitor from "@pulumi/azure-native/monitor";
import * as operationalinsights from "@pulumi/azure-native/operationalinsights";
import * as resources from "@pulumi/azure-native/resources";
import * as storage from "@pulumi/azure-native/storage";
import * as pulumi from "@pulumi/pulumi";
import { databaseLoginSetup } from "../database-login";
import { EngineImage } from "../engineImage";
import { checkName, isoDuration, LIMITS, logAnalyticsRetention } from "../limits";
import { METRICS_LOG_MESSAGE } from "../../container/src/ops/metrics-log";
import { acrName, azureEngineIdentityName, keyVaultName, storageAccountName } from "../naming";
import { afterPropagation, AZURE_RBAC_PROPAGATION_MS } from "../propagation";
import { recreatableSuffix } from "../recreatable";
import { capturedTables, ENGINE_STARTING_MESSAGE, engineEnvironment, ENGINE_HTTP_PORT, engineSpecs, slotSource, type AlertThresholds, type PlatformSettings } from "../settings";
import { childOf, engineChildOf } from "../children";
import type { LandingFacts, RegistryFacts, ServiceFacts, TargetOutputs } from "../types";
import { roleDefinitionId, ROLES } from "./roles";
import { storeVaultPassword } from "./secret";
import { EventHubsKafka, KafkaPasswordSecret, type KafkaGrant } from "./kafka";
import { kafkaFacts } from "../kafka";

const T = "postgres-cdc-multicloud:azure";

export { ROLES };

/** What every Azure component needs to place its resources. */
interface Placement {
  resourceGroupName: pulumi.Input<string>;
  location: string;
  tags: Record<string, string>;
}

export interface LandingStorageArgs extends Placement {
  baseName: string;
  /** Makes the globally unique account name unique per subscription and stack. */
  uniqueness: pulumi.Input<string>;
  prefix: string;
  retentionDays: number;
  deletionProtection: boolean;
}

/**
 * ADLS Gen2 (hierarchical namespace) account and the landing container: no public blob access,
 * HTTPS and TLS 1.2+ only, shared keys disabled (Entra ID only), infrastructure encryption, and a
 * lifecycle rule that deletes landing blobs after the retention period.
 */
export class LandingStorage extends pulumi.ComponentResource {
  readonly accountName: pulumi.Output<string>;
  readonly accountId: pulumi.Output<string>;
  readonly containerName: pulumi.Output<string>;
  readonly containerId: pulumi.Output<string>;
  readonly url: pulumi.Output<string>;
  readonly rootUrl: pulumi.Output<string>;

  constructor(name: string, args: LandingStorageArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:LandingStorage`, name, {}, opts);
    const account = new storage.StorageAccount(`${name}-account`, {
      accountName: pulumi.output(args.uniqueness).apply((u) => checkName("storageAccount", storageAccountName(args.baseName, u))),
      resourceGroupName: args.resourceGroupName,
      location: args.location,
      kind: "StorageV2",
      sku: { name: "Standard_LRS" },
      accessTier: "Hot",
      isHnsEnabled: true,
      allowBlobPublicAccess: false,
      allowSharedKeyAccess: false,
      defaultToOAuthAuthentication: true,
      enableHttpsTrafficOnly: true,
      minimumTlsVersion: "TLS1_2",
      allowCrossTenantReplication: false,
      encryption: {
        keySource: "Microsoft.Storage",
        requireInfrastructureEncryption: true,
        services: { blob: { enabled: true, keyType: "Account" }, file: { enabled: true, keyType: "Account" } },
      },
      tags: args.tags,
    }, { parent: this, protect: args.deletionProtection });
    const containerName = "landing";
    const container = new storage.BlobContainer(`${name}-container`, {
      containerName: checkName("blobContainer", containerName),
      accountName: account.name,
      resourceGroupName: args.resourceGroupName,
      publicAccess: "None",
    }, { parent: this });
    new storage.ManagementPolicy(`${name}-lifecycle`, {
      managementPolicyName: "default",
      accountName: account.name,
      resourceGroupName: args.resourceGroupName,
      policy: {
        rules: [{
          name: "expire-landing",
          type: "Lifecycle",
          enabled: true,
          definition: {
            actions: { baseBlob: { delete: { daysAfterModificationGreaterThan: args.retentionDays } } },
            filters: { blobTypes: ["blockBlob"], prefixMatch: [`${containerName}/${args.prefix}/`] },
          },
        }],
      },
    }, { parent: this });

    this.accountName = account.name;
    this.accountId = account.id;
    this.containerName = container.name;
    this.containerId = container.id;
    this.rootUrl = pulumi.interpolate`abfss://${container.name}@${account.name}.dfs.core.windows.net`;
    this.url = pulumi.interpolate`${this.rootUrl}/${args.prefix}`;
    this.registerOutputs({ accountName: this.accountName, containerName: this.containerName, url: this.url });
  }
}

export interface ContainerRegistryArgs extends Placement {
  baseName: string;
  uniqueness: pulumi.Input<string>;
  /** Entra ID tenant of the deploying identity (for the token exchange). */
  tenantId: pulumi.Input<string>;
}

/** The ACR refresh-token username (a fixed GUID by ACR's convention). */
export const ACR_TOKEN_USERNAME = "00000000-0000-0000-0000-000000000000";

/**
 * Exchanges an Entra ID access token for an ACR refresh token, exactly as `az acr login` does
 * (POST /oauth2/exchange). The result authorizes what the caller's Azure RBAC allows on this
 * registry (Owner/Contributor/AcrPush can push) for about three hours.
 */
export async function exchangeAcrToken(loginServer: string, accessToken: string, tenantId: string): Promise<string> {
  const res = await fetch(`https://${loginServer}/oauth2/exchange`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "access_token", service: loginServer, tenant: tenantId, access_token: accessToken }).toString(),
  });
  if (!res.ok) throw new Error(`ACR token exchange at ${loginServer} failed with HTTP ${res.status}: the deploying identity needs AcrPush (or Contributor) on the registry`);
  const body = (await res.json()) as { refresh_token?: string };
  if (!body.refresh_token) throw new Error(`ACR token exchange at ${loginServer} returned no refresh token`);
  return body.refresh_token;
}

/**
 * ACR with the admin user disabled and anonymous pull off. Push credentials come from the
 * deployer's own Entra ID identity through the ACR token exchange (what `az acr login` does): no
 * admin password, no repository token to store or rotate, nothing long-lived in state. The engine
 * pulls with its managed identity (AcrPull).
 */
export class ContainerRegistry extends pulumi.ComponentResource {
  readonly id: pulumi.Output<string>;
  readonly loginServer: pulumi.Output<string>;
  readonly facts: RegistryFacts;

  constructor(name: string, args: ContainerRegistryArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:ContainerRegistry`, name, {}, opts);
    const registry = new containerregistry.Registry(`${name}-acr`, {
      registryName: pulumi.output(args.uniqueness).apply((u) => checkName("acr", acrName(args.baseName, u))),
      resourceGroupName: args.resourceGroupName,
      location: args.location,
      sku: { name: "Basic" },
      adminUserEnabled: false,
      anonymousPullEnabled: false,
      tags: args.tags,
    }, { parent: this });
    // Only `pulumi up` pushes, so only `up` logs in: a preview (e.g. CI with a read-only identity)
    // makes no registry call, and the credential stays unknown there.
    const refreshToken: pulumi.Output<string> = pulumi.runtime.isDryRun()
      ? (pulumi.output(pulumi.unknown) as pulumi.Output<string>)
      : pulumi.all([registry.loginServer, authorization.getClientTokenOutput({}, { parent: this }).token, args.tenantId])
        .apply(([server, token, tenant]) => exchangeAcrToken(server, token, tenant));
    this.id = registry.id;
    this.loginServer = registry.loginServer;
    this.facts = {
      server: registry.loginServer,
      repository: pulumi.interpolate`${registry.loginServer}/cdc-engine`,
      username: pulumi.output(ACR_TOKEN_USERNAME),
      password: pulumi.secret(refreshToken),
    };
    this.registerOutputs({ loginServer: this.loginServer });
  }
}

export interface PasswordSecretArgs extends Placement {
  baseName: string;
  uniqueness: pulumi.Input<string>;
  tenantId: pulumi.Input<string>;
  /** The PostgreSQL password; absent with a keyless postgres.auth, when the vault holds only the Kafka SCRAM password. */
  password?: pulumi.Input<string>;
  /** Purge protection (a deleted vault cannot be purged before its 90 days are up) and Pulumi `protect`. */
  deletionProtection: boolean;
}

/** Days a deleted vault stays recoverable (Azure's default and maximum). */
export const KEY_VAULT_SOFT_DELETE_DAYS = 90;

/**
 * Key Vault (RBAC authorization, soft delete) holding the PostgreSQL password (and beside it the
 * Kafka SCRAM password, components/azure/kafka.ts). A deleted vault
 * keeps its name for the soft-delete retention, so the name ends in a suffix that is new after each
 * destroy; the retention is the same for every stack because Azure never lets it change after
 * creation (turning deletionProtection on later only adds purge protection, which Azure allows).
 */
export class PasswordSecret extends pulumi.ComponentResource {
  readonly vaultName: pulumi.Output<string>;
  /** ARM id of the PostgreSQL password secret: the scope its read grant is limited to (none when keyless). */
  readonly secretId?: pulumi.Output<string>;
  /** Versionless URI: the app reads the latest version. */
  readonly secretUri?: pulumi.Output<string>;
  /** The current version (new whenever the password changes): the app's revision carries it so a new password rolls it. */
  readonly version?: pulumi.Output<string>;

  constructor(name: string, args: PasswordSecretArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:PasswordSecret`, name, {}, opts);
    const vault = new keyvault.Vault(`${name}-vault`, {
      vaultName: pulumi.all([args.uniqueness, recreatableSuffix(`${name}-vault-suffix`, this)]).apply(([u, suffix]) => checkName("keyVault", keyVaultName(args.baseName, u, suffix))),
      resourceGroupName: args.resourceGroupName,
      location: args.location,
      properties: {
        tenantId: args.tenantId,
        sku: { family: "A", name: "standard" },
        enableRbacAuthorization: true,
        enableSoftDelete: true,
        softDeleteRetentionInDays: KEY_VAULT_SOFT_DELETE_DAYS,
        // Purge protection cannot be turned off again; only protected (prod) stacks get it.
        ...(args.deletionProtection ? { enablePurgeProtection: true } : {}),
        enabledForDeployment: false,
        enabledForTemplateDeployment: false,
        enabledForDiskEncryption: false,
      },
      tags: args.tags,
      // Vaults created before the retention was fixed keep theirs: Azure rejects any change to it.
    }, { parent: this, protect: args.deletionProtection, ignoreChanges: ["properties.softDeleteRetentionInDays"] });
    this.vaultName = vault.name;
    if (args.password !== undefined) {
      ({ secretId: this.secretId, secretUri: this.secretUri, version: this.version } = storeVaultPassword(name, { key: "postgres-password", vaultName: vault.name, resourceGroupName: args.resourceGroupName, password: args.password, tags: args.tags }, this));
    }
    this.registerOutputs({ vaultName: this.vaultName, secretUri: this.secretUri, version: this.version });
  }
}

export interface EngineLogsArgs extends Placement {
  baseName: string;
  retentionDays: number;
}

/** Log Analytics workspace the Container Apps environment ships logs to. */
export class EngineLogs extends pulumi.ComponentResource {
  readonly workspaceName: pulumi.Output<string>;
  /** ARM id of the workspace: the scope of log search alerts. */
  readonly workspaceId: pulumi.Output<string>;
  readonly customerId: pulumi.Output<string>;
  readonly sharedKey: pulumi.Output<string>;

  constructor(name: string, args: EngineLogsArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:EngineLogs`, name, {}, opts);
    const workspace = new operationalinsights.Workspace(`${name}-workspace`, {
      workspaceName: checkName("logAnalytics", `log-${args.baseName}`),
      resourceGroupName: args.resourceGroupName,
      location: args.location,
      sku: { name: "PerGB2018" },
      retentionInDays: logAnalyticsRetention(args.retentionDays),
      tags: args.tags,
    }, { parent: this });
    const keys = operationalinsights.getSharedKeysOutput({ resourceGroupName: args.resourceGroupName, workspaceName: workspace.name }, { parent: this });
    this.workspaceName = workspace.name;
    this.workspaceId = workspace.id;
    this.customerId = workspace.customerId;
    this.sharedKey = pulumi.secret(keys.apply((k) => k.primarySharedKey ?? ""));
    this.registerOutputs({ workspaceName: this.workspaceName });
  }
}

export interface EngineServiceArgs extends Placement {
  settings: PlatformSettings;
  subscriptionId: pulumi.Input<string>;
  imageRef: pulumi.Input<string>;
  registryId: pulumi.Input<string>;
  registryServer: pulumi.Input<string>;
  sinkUrl: pulumi.Input<string>;
  landingContainerId: pulumi.Input<string>;
  /** The password secret (postgres.auth password); none with azure-entra, where the identity logs in with an Entra token. */
  secretId?: pulumi.Input<string>;
  secretUri?: pulumi.Input<string>;
  /**
   * The password secret's current version. A running replica keeps the secret it started with, and
   * a secret change alone makes no new revision; the version in the template (PG_PASSWORD_VERSION,
   * which the engine does not read) does, so a new password rolls the app.
   */
  secretVersion?: pulumi.Input<string>;
  /** Run in this existing Container Apps environment instead of creating one (the platform's other engines). */
  environment?: SharedEnvironment;
  logCustomerId: pulumi.Input<string>;
  logSharedKey: pulumi.Input<string>;
  /**
   * The Kafka sink (components/azure/kafka.ts): with Event Hubs made here, its Kafka endpoint and
   * this engine's grants on its event hubs; with SCRAM to an existing cluster, the password's secret.
   */
  kafka?: { bootstrap?: pulumi.Input<string>; grants?: KafkaGrant[]; password?: { secretId: pulumi.Input<string>; secretUri: pulumi.Input<string>; version: pulumi.Input<string> } };
}

/** A Container Apps environment several engines share. */
export interface SharedEnvironment {
  id: pulumi.Input<string>;
  name: pulumi.Output<string>;
}

/** The workload profile the engine runs on: serverless, billed per use, like a Consumption-only environment. */
export const WORKLOAD_PROFILE = "Consumption";

/**
 * The Container Apps environment and the engine's Container App: exactly one replica (min = max =
 * 1, no scale rules, no ingress), restarts by its liveness probe. Its user-assigned identity holds
 * three grants: Storage Blob Data Contributor on the landing container, AcrPull on the registry,
 * Key Vault Secrets User on the password secret (none with postgres.auth=azure-entra: the identity
 * is then the database's Entra principal, created on the server by its Entra admin; and with Event
 * Hubs made for the Kafka sink, its data roles on its event hubs, components/azure/kafka.ts). The
 * app is created only once they have propagated: it resolves the Key Vault reference and pulls the
 * image with that identity at once.
 *
 * The environment is a workload-profiles environment (Consumption profile): that is the type a
 * VNet-integrated environment needs for user-defined routes and NAT egress, on a subnet delegated to
 * Microsoft.App/environments of at least /27 (a Consumption-only environment needs /23).
 */
export class EngineService extends pulumi.ComponentResource {
  readonly name: pulumi.Output<string>;
  readonly id: pulumi.Output<string>;
  readonly environmentName: pulumi.Output<string>;
  readonly environmentId: pulumi.Output<string>;
  readonly identityId: pulumi.Output<string>;
  readonly identityPrincipalId: pulumi.Output<string>;
  readonly identityClientId: pulumi.Output<string>;
  /** The identity's name: with postgres.auth=azure-entra also its database role (its Entra principal). */
  readonly identityName: pulumi.Output<string>;

  constructor(name: string, args: EngineServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:EngineService`, name, {}, opts);
    const s = args.settings;
    const placement = { resourceGroupName: args.resourceGroupName, location: args.location };

    const identity = new managedidentity.UserAssignedIdentity(`${name}-identity`, {
      resourceName: checkName("managedIdentity", azureEngineIdentityName(s.baseName)),
      ...placement,
      tags: args.tags,
    }, { parent: this });
    const grant = (grantName: string, role: string, scope: pulumi.Input<string>, description: string) =>
      new authorization.RoleAssignment(`${name}-${grantName}`, {
        principalId: identity.principalId,
        principalType: "ServicePrincipal",
        roleDefinitionId: pulumi.output(args.subscriptionId).apply((subscriptionId) => roleDefinitionId(subscriptionId, role)),
        scope,
        description,
      }, { parent: this });
    const grants = [
      grant("landing-writer", ROLES.storageBlobDataContributor, args.landingContainerId, "CDC engine writes landing files to this container only"),
      grant("acr-pull", ROLES.acrPull, args.registryId, "CDC engine pulls its image"),
      ...(args.secretId ? [grant("secret-reader", ROLES.keyVaultSecretsUser, args.secretId, "CDC engine reads the PostgreSQL password secret only")] : []),
      // Kafka sink on Event Hubs: the engine's first publish must not outrun these grants either.
      ...(args.kafka?.grants ?? []).map((g) => grant(g.name, g.role, g.scope, g.description)),
      ...(args.kafka?.password ? [grant("kafka-secret-reader", ROLES.keyVaultSecretsUser, args.kafka.password.secretId, "CDC engine reads the Kafka SCRAM password secret only")] : []),
    ];

    const network = s.azure!.network;
    const environment = args.environment ?? new app.ManagedEnvironment(`${name}-env`, {
      environmentName: checkName("containerApp", `cae-${s.baseName}`),
      ...placement,
      appLogsConfiguration: {
        destination: "log-analytics",
        logAnalyticsConfiguration: { customerId: args.logCustomerId, sharedKey: args.logSharedKey },
      },
      workloadProfiles: [{ name: WORKLOAD_PROFILE, workloadProfileType: WORKLOAD_PROFILE }],
      ...(network ? { vnetConfiguration: { infrastructureSubnetId: network.infrastructureSubnetId, internal: network.internal } } : {}),
      zoneRedundant: false,
      tags: args.tags,
    }, { parent: this });

    const env = pulumi.all([args.sinkUrl, identity.clientId, args.secretVersion, args.kafka?.bootstrap, args.kafka?.password?.version]).apply(([sinkUrl, clientId, secretVersion, kafkaBootstrap, kafkaPasswordVersion]) => [
      ...Object.entries(engineEnvironment(s, sinkUrl, kafkaBootstrap)).map(([n, value]) => ({ name: n, value })),
      // @azure/identity's DefaultAzureCredential picks the user-assigned identity by this standard variable.
      { name: "AZURE_CLIENT_ID", value: clientId },
      ...(args.secretUri ? [{ name: "PG_PASSWORD", secretRef: "pg-password" }] : []),
      ...(secretVersion ? [{ name: "PG_PASSWORD_VERSION", value: secretVersion }] : []),
      ...(args.kafka?.password ? [{ name: "KAFKA_PASSWORD", secretRef: "kafka-password" }, { name: "KAFKA_PASSWORD_VERSION", value: kafkaPasswordVersion ?? "" }] : []),
    ]);
    // The identity as the app references it, once its grants can be relied on.
    const newestGrant = pulumi.all(grants.map((g) => g.createdOn)).apply((dates) => dates.filter(Boolean).sort().pop());
    const appIdentity = afterPropagation(identity.id, newestGrant, AZURE_RBAC_PROPAGATION_MS, "the Container App reads its Key Vault secret and pulls its image");
    const probe = (type: "Liveness" | "Startup", path: string, periodSeconds: number, failureThreshold: number) => ({
      type,
      httpGet: { path, port: ENGINE_HTTP_PORT, scheme: "HTTP" },
      periodSeconds,
      timeoutSeconds: 5,
      failureThreshold,
    });
    const containerApp = new app.ContainerApp(`${name}-app`, {
      containerAppName: checkName("containerApp", `ca-${s.baseName}-engine`),
      ...placement,
      managedEnvironmentId: environment.id,
      identity: { type: "UserAssigned", userAssignedIdentities: [appIdentity] },
      workloadProfileName: WORKLOAD_PROFILE,
      configuration: {
        activeRevisionsMode: "Single",
        // No ingress: nothing can drive HTTP scaling, and the engine is not reachable from outside.
        registries: [{ server: args.registryServer, identity: appIdentity }],
        // The password stays in Key Vault; the app resolves it with its identity.
        ...(args.secretUri || args.kafka?.password ? {
          secrets: [
            ...(args.secretUri ? [{ name: "pg-password", keyVaultUrl: args.secretUri, identity: appIdentity }] : []),
            ...(args.kafka?.password ? [{ name: "kafka-password", keyVaultUrl: args.kafka.password.secretUri, identity: appIdentity }] : []),
          ],
        } : {}),
      },
      template: {
        containers: [{
          name: "cdc-engine",
          image: args.imageRef,
          resources: { cpu: s.container.cpu, memory: `${s.container.memoryMiB / 1024}Gi` },
          env,
          // Liveness and startup on /healthz (the process answers). /readyz is not a readiness
          // gate here: a new revision waits for the replication slot its predecessor holds, so
          // gating the rollout on "streaming" would never let the old revision go.
          // Startup allows 10 × 30 s for a first start; Container Apps caps failureThreshold at 10.
          probes: [probe("Startup", "/healthz", 30, 10), probe("Liveness", "/healthz", 10, 3)],
        }],
        scale: { minReplicas: 1, maxReplicas: 1, rules: [] },
        terminationGracePeriodSeconds: 30,
      },
      tags: args.tags,
    }, { parent: this, dependsOn: grants });

    this.name = containerApp.name;
    this.id = containerApp.id;
    this.environmentName = environment.name;
    this.environmentId = pulumi.output(environment.id);
    this.identityId = identity.id;
    this.identityPrincipalId = identity.principalId;
    this.identityClientId = identity.clientId;
    this.identityName = identity.name.apply((n) => checkName("entraIdentityRole", n));
    this.registerOutputs({ name: this.name, id: this.id, environmentName: this.environmentName, identityId: this.identityId, identityPrincipalId: this.identityPrincipalId, identityClientId: this.identityClientId, identityName: this.identityName });
  }
}

/** An engine the alerts watch. */
export interface AlertedEngine {
  /** Prefix of its alerts' Pulumi names (`<alerts>-<label>-…`); none for a platform's only engine. */
  label?: string;
  /** Base of its alerts' rule names. */
  baseName: string;
  /** ARM id and name of its Container App. */
  containerAppId: pulumi.Input<string>;
  containerAppName: pulumi.Input<string>;
  source: string;
  slot: string;
}

export interface EngineAlertsArgs extends Placement {
  baseName: string;
  /** ARM id of the Log Analytics workspace the engines' console logs go to. */
  workspaceId: pulumi.Input<string>;
  engines: AlertedEngine[];
  /** Who is paged (Azure Monitor email receivers). */
  emails: string[];
  thresholds: AlertThresholds;
}

/** How often the log search alerts run: 5 minutes avoids the query limits of 1-minute rules and Log Analytics' ingestion delay. */
export const LOG_ALERT_FREQUENCY_MINUTES = 5;

/** The KQL selecting an app's lines of the engine's JSON log with `msg` == `message` (the console log table of a Log Analytics destination). */
export function engineLogQuery(containerAppName: string, message: string): string {
  return [
    "ContainerAppConsoleLogs_CL",
    `| where ContainerAppName_s == ${JSON.stringify(containerAppName)}`,
    "| extend line = parse_json(Log_s)",
    `| where tostring(line.msg) == ${JSON.stringify(message)}`,
  ].join("\n");
}

/**
 * Pages someone through one action group (an email receiver per address), for each engine:
 * - not running: an Azure Monitor metric alert on the Container App's replica count below 1 over
 *   five minutes;
 * - restarts, replication lag, landing stalled: log search alerts (scheduled query rules) on the
 *   Log Analytics workspace, over the engine's start line and its metrics line (docs/engine.md).
 * Every alert resolves itself when the condition clears.
 */
export class EngineAlerts extends pulumi.ComponentResource {
  readonly actionGroupId: pulumi.Output<string>;

  constructor(name: string, args: EngineAlertsArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:EngineAlerts`, name, {}, opts);
    const t = args.thresholds;
    const group = new monitor.ActionGroup(`${name}-action-group`, {
      actionGroupName: checkName("azureInsights", `ag-${args.baseName}-engine`),
      resourceGroupName: args.resourceGroupName,
      location: "global",
      groupShortName: checkName("actionGroupShortName", "cdc-engine"),
      enabled: true,
      emailReceivers: args.emails.map((emailAddress, i) => ({ name: `email-${i}`, emailAddress, useCommonAlertSchema: true })),
      tags: args.tags,
    }, { parent: this });
    const frequency = isoDuration(LOG_ALERT_FREQUENCY_MINUTES);
    for (const e of args.engines) {
      const n = e.label ? `${name}-${e.label}` : name;
      const what = `The CDC engine of slot ${e.slot} (${e.source})`;
      new monitor.MetricAlert(`${n}-not-running`, {
        ruleName: checkName("azureInsights", `${e.baseName}-engine-not-running`),
        resourceGroupName: args.resourceGroupName,
        location: "global",
        description: `${what} has no running replica: changes are not being captured and the replication slot retains WAL`,
        severity: 1,
        enabled: true,
        scopes: [e.containerAppId],
        evaluationFrequency: "PT1M",
        windowSize: "PT5M",
        autoMitigate: true,
        criteria: {
          odataType: "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
          allOf: [{
            criterionType: "StaticThresholdCriterion",
            name: "no-replica",
            metricNamespace: "Microsoft.App/containerApps",
            metricName: "Replicas",
            operator: "LessThan",
            threshold: 1,
            timeAggregation: "Maximum",
          }],
        },
        actions: [{ actionGroupId: group.id }],
        tags: args.tags,
      }, { parent: this });
      const logAlert = (suffix: string, description: string, severity: number, windowMinutes: number, condition: {
        query: pulumi.Input<string>; timeAggregation: string; metricMeasureColumn?: string; operator: string; threshold: number;
      }) => new monitor.ScheduledQueryRule(`${n}-${suffix}`, {
        ruleName: checkName("azureInsights", `${e.baseName}-${suffix}`),
        resourceGroupName: args.resourceGroupName,
        location: args.location,
        kind: "LogAlert",
        description,
        severity,
        enabled: true,
        scopes: [args.workspaceId],
        evaluationFrequency: frequency,
        windowSize: isoDuration(windowMinutes),
        criteria: { allOf: [{ ...condition, failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 } }] },
        autoMitigate: true,
        actions: { actionGroups: [group.id] },
        tags: args.tags,
      }, { parent: this });
      const app = pulumi.output(e.containerAppName);
      logAlert("engine-restarts", `${what} started ${t.restarts} or more times within ${t.restartWindowMinutes} minutes: it is crash-looping; see its logs`, 1, t.restartWindowMinutes, {
        query: app.apply((a) => engineLogQuery(a, ENGINE_STARTING_MESSAGE)),
        timeAggregation: "Count",
        operator: "GreaterThanOrEqual",
        threshold: t.restarts,
      });
      logAlert("replication-lag", `${what} is more than ${t.replicationLagMiB} MiB behind the server's WAL for ${LIMITS.alerts.lagSustainedMinutes} minutes: the slot retains that WAL on the primary`, 2, LIMITS.alerts.lagSustainedMinutes, {
        query: app.apply((a) => `${engineLogQuery(a, METRICS_LOG_MESSAGE)}\n| where isnotnull(line.lagBytes)\n| project TimeGenerated, lagBytes = todouble(line.lagBytes)`),
        timeAggregation: "Minimum",
        metricMeasureColumn: "lagBytes",
        operator: "GreaterThan",
        threshold: t.replicationLagMiB * 1024 * 1024,
      });
      logAlert("landing-stalled", `${what} has written no landing object and confirmed nothing for ${t.landingStallMinutes} minutes while the source has changes waiting`, 1, LOG_ALERT_FREQUENCY_MINUTES, {
        query: app.apply((a) => `${engineLogQuery(a, METRICS_LOG_MESSAGE)}\n| project TimeGenerated, stalledSeconds = todouble(line.stalledSeconds)`),
        timeAggregation: "Maximum",
        metricMeasureColumn: "stalledSeconds",
        operator: "GreaterThanOrEqual",
        threshold: t.landingStallMinutes * 60,
      });
    }
    this.actionGroupId = group.id;
    this.registerOutputs({ actionGroupId: this.actionGroupId });
  }
}

/**
 * postgres.auth=azure-entra: the engine's role is the Entra principal of its managed identity,
 * which has the identity's name; the server's Entra admin creates it once.
 */
function entraLogin(identityName: pulumi.Output<string>): NonNullable<ServiceFacts["databaseLogin"]> {
  return {
    user: identityName,
    setup: identityName.apply((name) => databaseLoginSetup("azure-entra", name)),
  };
}

/** Builds the Azure target under `parent`. */
export function deployAzure(name: string, s: PlatformSettings, parent: pulumi.Resource): TargetOutputs {
  const opts = { parent };
  const at = (legacy: string) => childOf(parent, name, legacy);
  const az = s.azure!;
  const client = authorization.getClientConfigOutput(opts);
  const group = new resources.ResourceGroup(at("resource-group").name, {
    resourceGroupName: checkName("resourceGroup", `rg-${s.baseName}`),
    location: az.location,
    tags: s.tags,
  }, at("resource-group").opts);
  const placement: Placement = { resourceGroupName: group.name, location: az.location, tags: s.tags };
  const uniqueness = pulumi.interpolate`${client.subscriptionId}/${s.baseName}`;

  const storageAccount = new LandingStorage(at("landing").name, {
    ...placement,
    baseName: s.baseName,
    uniqueness,
    prefix: s.landingPrefix,
    retentionDays: s.landingRetentionDays,
    deletionProtection: s.deletionProtection,
  }, at("landing").opts);
  const registry = new ContainerRegistry(at("registry").name, { ...placement, baseName: s.baseName, uniqueness, tenantId: client.tenantId }, at("registry").opts);
  const image = new EngineImage(at("engine-image").name, {
    repository: registry.facts.repository,
    platform: "linux/amd64",
    registry: { server: registry.facts.server, username: registry.facts.username, password: registry.facts.password },
  }, at("engine-image").opts);
  // Keyless (postgres.auth=azure-entra): no PostgreSQL password, so no vault unless the Kafka SCRAM password needs one.
  const secret = s.postgres.password === undefined && !s.kafkaPassword ? undefined : new PasswordSecret(at("postgres-password").name, {
    ...placement,
    baseName: s.baseName,
    uniqueness,
    tenantId: client.tenantId,
    password: s.postgres.password,
    deletionProtection: s.deletionProtection,
  }, at("postgres-password").opts);
  const logs = new EngineLogs(at("logs").name, { ...placement, baseName: s.baseName, retentionDays: s.logRetentionDays }, at("logs").opts);
  // sink: {kind: kafka} without bootstrap: one Event Hubs namespace per stack, an event hub per topic, grants per engine.
  const eventHubs = s.sink.kind === "kafka" && !s.sink.bootstrap
    ? new EventHubsKafka(at("kafka").name, {
      ...placement,
      baseName: s.baseName,
      uniqueness,
      topicPrefix: s.sink.topicPrefix,
      tables: capturedTables(s),
      tier: s.sink.eventHubs?.tier ?? "Standard",
      capacity: s.sink.eventHubs?.capacity ?? 1,
      partitions: s.sink.partitions ?? 1,
      retentionHours: s.sink.eventHubs?.retentionHours ?? LIMITS.azure.eventHubs.defaultRetentionHours,
    }, at("kafka").opts)
    : undefined;
  // sink.auth scram-*: the password in the stack's Key Vault beside the PostgreSQL one.
  const kafkaPassword = s.kafkaPassword
    ? new KafkaPasswordSecret(at("kafka-password").name, { vaultName: secret!.vaultName, resourceGroupName: group.name, password: s.kafkaPassword, tags: s.tags }, at("kafka-password").opts)
    : undefined;
  // Engines share the first one's Container Apps environment: a VNet-integrated environment owns its subnet.
  let sharedEnvironment: SharedEnvironment | undefined;
  const engines = engineSpecs(s).map(({ pipeline, settings }) => {
    const child = engineChildOf(parent, name, "engine", pipeline);
    const service = new EngineService(child.name, {
      ...placement,
      settings,
      subscriptionId: client.subscriptionId,
      imageRef: image.ref,
      registryId: registry.id,
      registryServer: registry.loginServer,
      sinkUrl: storageAccount.url,
      landingContainerId: storageAccount.containerId,
      secretId: secret?.secretId,
      secretUri: secret?.secretUri,
      secretVersion: secret?.version,
      logCustomerId: logs.customerId,
      logSharedKey: logs.sharedKey,
      environment: sharedEnvironment,
      kafka: eventHubs ? { bootstrap: eventHubs.bootstrap, grants: eventHubs.engineGrants(settings.postgres.tables) }
        : kafkaPassword ? { password: { secretId: kafkaPassword.secretId, secretUri: kafkaPassword.secretUri, version: kafkaPassword.version } } : undefined,
    }, child.opts);
    sharedEnvironment ??= { id: service.environmentId, name: service.environmentName };
    return { pipeline, settings, service };
  });
  if (s.alerts) {
    new EngineAlerts(at("alerts").name, {
      ...placement,
      baseName: s.baseName,
      workspaceId: logs.workspaceId,
      engines: engines.map(({ pipeline, settings, service }) => ({
        label: pipeline,
        baseName: settings.baseName,
        containerAppId: service.id,
        containerAppName: service.name,
        source: slotSource(settings.postgres),
        slot: settings.postgres.slot,
      })),
      emails: s.alerts.emails,
      thresholds: s.alerts.thresholds,
    }, at("alerts").opts);
  }

  const landing: LandingFacts = {
    cloud: "azure",
    url: storageAccount.url,
    rootUrl: storageAccount.rootUrl,
    prefix: s.landingPrefix,
    region: az.location,
    tags: s.tags,
    azure: {
      resourceGroupName: group.name,
      storageAccountName: storageAccount.accountName,
      storageAccountId: storageAccount.accountId,
      containerName: storageAccount.containerName,
      containerId: storageAccount.containerId,
      subscriptionId: client.subscriptionId,
      tenantId: client.tenantId,
    },
  };
  const facts = ({ service }: (typeof engines)[number]): ServiceFacts => ({
    name: service.name,
    id: service.id,
    logLocation: pulumi.interpolate`log-analytics:${group.name}/${logs.workspaceName} (table ContainerAppConsoleLogs_CL, ContainerAppName_s == "${service.name}")`,
    runtime: pulumi.interpolate`container-apps:${group.name}/${service.environmentName}`,
    identities: { identityId: service.identityId, principalId: service.identityPrincipalId, clientId: service.identityClientId },
    ...(s.postgres.auth === "azure-entra" ? { databaseLogin: entraLogin(service.identityName) } : {}),
    commands: {
      tailLogs: pulumi.interpolate`az containerapp logs show --name ${service.name} --resource-group ${group.name} --follow --format text`,
      checkHealth: pulumi.interpolate`az containerapp replica list --name ${service.name} --resource-group ${group.name} --output table`,
    },
  });
  const serviceFacts = facts(engines[0]);
  const pipelines = s.pipelines ? Object.fromEntries(engines.map((e) => [e.pipeline!, facts(e)])) : undefined;
  return { landing, imageRef: image.ref, service: serviceFacts, pipelines, kafka: kafkaFacts(s.sink, eventHubs?.bootstrap) };
}
