/**
 * GCP: GCS landing bucket, Artifact Registry, Secret Manager, a dedicated service account, a
 * Cloud Logging bucket with retention, and one Cloud Run service running the engine.
 *
 * Why a Cloud Run *service* and not a worker pool: worker pools have no URL and no request
 * scaling, which fits, but they offer no readiness probe and fewer rollout controls. A service with
 * manual scaling (exactly one instance), CPU always allocated, internal-only ingress and its default
 * URL disabled behaves like a worker pool while keeping startup, liveness and readiness probes.
 */
import * as artifactregistry from "@pulumi/gcp/artifactregistry";
import * as cloudrunv2 from "@pulumi/gcp/cloudrunv2";
import * as logging from "@pulumi/gcp/logging";
import * as monitoring from "@pulumi/gcp/monitoring";
import * as organizations from "@pulumi/gcp/organizations";
import * as projects from "@pulumi/gcp/projects";
import * as secretmanager from "@pulumi/gcp/secretmanager";
import * as serviceaccount from "@pulumi/gcp/serviceaccount";
import * as storage from "@pulumi/gcp/storage";
import * as pulumi from "@pulumi/pulumi";
import { databaseLoginSetup } from "../database-login";
import { EngineImage } from "../engineImage";
import { checkName, LIMITS } from "../limits";
import { METRICS_LOG_MESSAGE } from "../../container/src/ops/metrics-log";
import { gcpServiceAccountId, gcsBucketName } from "../naming";
import { recreatableSuffix } from "../recreatable";
import { ENGINE_STARTING_MESSAGE, engineEnvironment, ENGINE_HTTP_PORT, engineSpecs, slotSource, type AlertThresholds, type PlatformSettings } from "../settings";
import { childOf, engineChildOf } from "../children";
import { KafkaCluster, KafkaPasswordSecret } from "./kafka";
import { storePassword } from "./secret";
import { kafkaFacts } from "../kafka";
import type { LandingFacts, RegistryFacts, ServiceFacts, TargetOutputs } from "../types";

const T = "postgres-cdc-multicloud:gcp";

interface Placement {
  project: string;
  region: string;
  labels: Record<string, string>;
  /** The project APIs this stack uses; every resource waits for them. */
  apis: pulumi.Resource;
}

/** The Google APIs the platform calls, in this order of need. */
export const REQUIRED_APIS = ["iam", "storage", "artifactregistry", "secretmanager", "logging", "run", "monitoring"] as const;

export interface ProjectApisArgs {
  project: string;
}

/**
 * Enables the APIs the stack needs in the project (a fresh project has them off). They stay
 * enabled when the stack is destroyed: other workloads in the project may use them.
 */
export class ProjectApis extends pulumi.ComponentResource {
  constructor(name: string, args: ProjectApisArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:ProjectApis`, name, {}, opts);
    for (const api of REQUIRED_APIS) {
      new projects.Service(`${name}-${api}`, {
        project: args.project,
        service: `${api}.googleapis.com`,
        disableOnDestroy: false,
        disableDependentServices: false,
      }, { parent: this });
    }
    this.registerOutputs({});
  }
}

export interface LandingStorageArgs extends Placement {
  baseName: string;
  prefix: string;
  retentionDays: number;
  deletionProtection: boolean;
}

/**
 * GCS landing bucket: uniform bucket-level access, public access prevention enforced, versioning,
 * landing objects deleted after the retention period (old versions a day after replacement).
 * GCS serves only over TLS and encrypts at rest always.
 */
export class LandingStorage extends pulumi.ComponentResource {
  readonly bucketName: pulumi.Output<string>;
  readonly url: pulumi.Output<string>;
  readonly rootUrl: pulumi.Output<string>;

  constructor(name: string, args: LandingStorageArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:LandingStorage`, name, {}, opts);
    const bucket = new storage.Bucket(`${name}-bucket`, {
      name: checkName("gcsBucket", gcsBucketName(args.baseName, "landing", args.project)),
      project: args.project,
      location: args.region.toUpperCase(),
      storageClass: "STANDARD",
      uniformBucketLevelAccess: true,
      publicAccessPrevention: "enforced",
      versioning: { enabled: true },
      forceDestroy: !args.deletionProtection,
      lifecycleRules: [
        { action: { type: "Delete" }, condition: { age: args.retentionDays, matchesPrefixes: [`${args.prefix}/`] } },
        { action: { type: "Delete" }, condition: { daysSinceNoncurrentTime: 1, withState: "ARCHIVED" } },
      ],
      labels: args.labels,
    }, { parent: this, protect: args.deletionProtection, dependsOn: [args.apis] });
    this.bucketName = bucket.name;
    this.rootUrl = pulumi.interpolate`gs://${bucket.name}`;
    this.url = pulumi.interpolate`gs://${bucket.name}/${args.prefix}`;
    this.registerOutputs({ bucketName: this.bucketName, url: this.url });
  }
}

export interface ContainerRegistryArgs extends Placement {
  baseName: string;
}

/**
 * Artifact Registry Docker repository (keeps the 20 most recent images). Push credentials: the
 * deployer's own OAuth access token (user `oauth2accesstoken`), short-lived, nothing stored.
 */
export class ContainerRegistry extends pulumi.ComponentResource {
  readonly repositoryId: pulumi.Output<string>;
  readonly facts: RegistryFacts;

  constructor(name: string, args: ContainerRegistryArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:ContainerRegistry`, name, {}, opts);
    const repoId = checkName("gcpId", `${args.baseName}-images`);
    const repo = new artifactregistry.Repository(`${name}-repo`, {
      repositoryId: repoId,
      project: args.project,
      location: args.region,
      format: "DOCKER",
      description: "CDC engine images",
      cleanupPolicies: [
        { id: "keep-recent", action: "KEEP", mostRecentVersions: { keepCount: 20 } },
        { id: "delete-old", action: "DELETE", condition: { tagState: "ANY", olderThan: "2592000s" } },
      ],
      labels: args.labels,
    }, { parent: this, dependsOn: [args.apis] });
    const token = organizations.getClientConfigOutput({ parent: this }).accessToken;
    const server = `${args.region}-docker.pkg.dev`;
    this.repositoryId = repo.repositoryId;
    this.facts = {
      server: pulumi.output(server),
      repository: pulumi.interpolate`${server}/${args.project}/${repo.repositoryId}/cdc-engine`,
      username: pulumi.output("oauth2accesstoken"),
      password: pulumi.secret(token),
    };
    this.registerOutputs({ repository: this.facts.repository });
  }
}

export interface PasswordSecretArgs extends Placement {
  baseName: string;
  password: pulumi.Input<string>;
  deletionProtection: boolean;
}

/** Secret Manager secret (automatic replication) with the PostgreSQL password as its version. */
export class PasswordSecret extends pulumi.ComponentResource {
  readonly secretId: pulumi.Output<string>;
  readonly name: pulumi.Output<string>;
  /** The current version number: new whenever the password changes (the service pins it, so a new one rolls it). */
  readonly version: pulumi.Output<string>;

  constructor(name: string, args: PasswordSecretArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:PasswordSecret`, name, {}, opts);
    const { secret, version } = storePassword(name, { ...args, key: "postgres-password" }, this);
    this.secretId = secret.secretId;
    this.name = secret.name;
    this.version = version.version;
    this.registerOutputs({ secretId: this.secretId, version: this.version });
  }
}

export interface EngineLogsArgs extends Placement {
  baseName: string;
  retentionDays: number;
  /** The Cloud Run service whose logs are routed here. */
  serviceName: string;
  /** With several engines (pipelines): all their services (serviceName is the first). */
  serviceNames?: string[];
}

/** The Cloud Logging filter that selects the logs of the engine's Cloud Run service (or of several). */
export function engineLogFilter(...serviceNames: string[]): string {
  const services = serviceNames.map((n) => `resource.labels.service_name="${n}"`);
  return `resource.type="cloud_run_revision" AND ${services.length === 1 ? services[0] : `(${services.join(" OR ")})`}`;
}

/**
 * A Cloud Logging bucket with the configured retention, a sink routing the engine's logs to it, and
 * an exclusion on the project's _Default sink so the same logs are not stored (and billed) twice.
 * A deleted log bucket keeps its id for 7 days, so the id ends in a suffix that is new after each
 * destroy.
 */
export class EngineLogs extends pulumi.ComponentResource {
  readonly bucketName: pulumi.Output<string>;
  readonly bucketId: pulumi.Output<string>;

  constructor(name: string, args: EngineLogsArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:EngineLogs`, name, {}, opts);
    const filter = engineLogFilter(...(args.serviceNames ?? [args.serviceName]));
    const bucket = new logging.ProjectBucketConfig(`${name}-bucket`, {
      project: args.project,
      location: args.region,
      bucketId: recreatableSuffix(`${name}-bucket-suffix`, this).apply((suffix) => checkName("gcpId", `${args.baseName}-logs-${suffix}`)),
      retentionDays: args.retentionDays,
      description: "CDC engine logs",
    }, { parent: this, dependsOn: [args.apis] });
    const sink = new logging.ProjectSink(`${name}-sink`, {
      name: checkName("gcpId", `${args.baseName}-engine-logs`),
      project: args.project,
      destination: pulumi.interpolate`logging.googleapis.com/${bucket.name}`,
      filter,
      description: "Routes the CDC engine's logs to its retention bucket",
    }, { parent: this, dependsOn: [args.apis] });
    // Only once the sink routes them, so no log line is lost in between.
    new logging.ProjectExclusion(`${name}-default-exclusion`, {
      name: checkName("logExclusion", `${args.baseName}-engine-logs`),
      project: args.project,
      filter,
      description: "The CDC engine's logs are kept in their own bucket; do not store them in _Default too",
    }, { parent: this, dependsOn: [args.apis, sink] });
    this.bucketName = bucket.name;
    this.bucketId = bucket.bucketId;
    this.registerOutputs({ bucketName: this.bucketName, bucketId: this.bucketId });
  }
}

export interface EngineServiceArgs extends Placement {
  settings: PlatformSettings;
  serviceName: string;
  imageRef: pulumi.Input<string>;
  bucketName: pulumi.Input<string>;
  sinkUrl: pulumi.Input<string>;
  /** The password secret (postgres.auth password); none with gcp-iam, where the service account logs in itself. */
  secretId?: pulumi.Input<string>;
  /**
   * The password version the engine reads ("latest" when omitted). Cloud Run resolves a secret when
   * an instance starts; pinning the version in the template makes a new password a new revision.
   */
  secretVersion?: pulumi.Input<string>;
  /** With a Kafka sink created here: its bootstrap brokers. */
  kafkaBootstrap?: pulumi.Input<string>;
  /** With SCRAM to an existing cluster (sink.auth scram-*): the password's secret, read like the PostgreSQL one. */
  kafkaPassword?: KafkaPasswordSecret;
}

/**
 * The engine's service account (object access on the landing bucket and access to the password
 * secret, nothing else; with postgres.auth=gcp-iam no secret, and instead Cloud SQL IAM login:
 * roles/cloudsql.instanceUser and roles/cloudsql.client on the project, since Cloud SQL has no
 * instance-level IAM policy) and its Cloud Run service: exactly one instance (manual scaling, max 1),
 * CPU always allocated, no URL, probes on /healthz and /readyz.
 */
export class EngineService extends pulumi.ComponentResource {
  readonly name: pulumi.Output<string>;
  readonly id: pulumi.Output<string>;
  readonly serviceAccountEmail: pulumi.Output<string>;

  constructor(name: string, args: EngineServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:EngineService`, name, {}, opts);
    const s = args.settings;
    const account = new serviceaccount.Account(`${name}-sa`, {
      accountId: checkName("gcpServiceAccount", gcpServiceAccountId(s.baseName)),
      project: args.project,
      displayName: `CDC engine (${s.stack}${s.pipelines ? `, slot ${s.postgres.slot}` : ""})`,
      description: "Runs the CDC engine: writes landing objects, reads its PostgreSQL password",
    }, { parent: this, dependsOn: [args.apis] });
    const member = pulumi.interpolate`serviceAccount:${account.email}`;
    // objectUser = create, read, overwrite and delete objects (a replay overwrites deterministic
    // names; doctor deletes its probe) — on this bucket only.
    const landingWriter = new storage.BucketIAMMember(`${name}-landing-writer`, {
      bucket: args.bucketName,
      role: "roles/storage.objectUser",
      member,
    }, { parent: this, dependsOn: [args.apis] });
    const secretReader = args.secretId === undefined ? undefined : new secretmanager.SecretIamMember(`${name}-secret-reader`, {
      project: args.project,
      secretId: args.secretId,
      role: "roles/secretmanager.secretAccessor",
      member,
    }, { parent: this, dependsOn: [args.apis] });
    const kafkaPasswordReader = args.kafkaPassword?.grantReader(`${name}-kafka-secret-reader`, member, this);
    // Cloud SQL IAM database authentication: the service account logs in as its IAM database user;
    // with postgres.cloudSqlInstance only on that instance (Cloud SQL's instance-scoped grant is an IAM condition).
    const instance = s.postgres.cloudSqlInstance;
    const onlyInstance = instance === undefined ? {} : {
      condition: {
        title: "cdc-engine-source-instance",
        description: `only the CDC engine's source instance ${instance}`,
        expression: `resource.name == 'projects/${args.project}/instances/${instance}' && resource.type == 'sqladmin.googleapis.com/Instance'`,
      },
    };
    const databaseLogin = s.postgres.auth !== "gcp-iam" ? [] : LIMITS.gcp.cloudSqlIamLoginRoles.map((role) =>
      new projects.IAMMember(`${name}-${role.replace(/^roles\/cloudsql\./, "cloudsql-").toLowerCase()}`, { project: args.project, role, member, ...onlyInstance }, { parent: this, dependsOn: [args.apis] }));

    const network = s.gcp!.network;
    const vpcAccess = network === undefined ? undefined : network.vpcConnector
      ? { connector: network.vpcConnector, egress: network.egress }
      : { networkInterfaces: [{ network: network.network, subnetwork: network.subnetwork }], egress: network.egress };

    const envs = pulumi.all([args.sinkUrl, args.secretId, args.secretVersion, args.kafkaBootstrap, args.kafkaPassword?.secretId, args.kafkaPassword?.version]).apply(([sinkUrl, secretId, secretVersion, kafkaBootstrap, kafkaSecretId, kafkaSecretVersion]) => [
      ...Object.entries(engineEnvironment(s, sinkUrl, kafkaBootstrap)).map(([n, value]) => ({ name: n, value })),
      // The password comes from Secret Manager at start, never as a plain value (keyless: no password at all).
      ...(secretId === undefined ? [] : [{ name: "PG_PASSWORD", valueSource: { secretKeyRef: { secret: secretId, version: secretVersion ?? "latest" } } }]),
      ...(kafkaSecretId ? [{ name: "KAFKA_PASSWORD", valueSource: { secretKeyRef: { secret: kafkaSecretId, version: kafkaSecretVersion ?? "latest" } } }] : []),
    ]);
    const probe = (path: string, failureThreshold: number) => ({
      httpGet: { path, port: ENGINE_HTTP_PORT },
      periodSeconds: 10,
      timeoutSeconds: 5,
      failureThreshold,
    });
    const service = new cloudrunv2.Service(`${name}-service`, {
      name: checkName("cloudRun", args.serviceName),
      project: args.project,
      location: args.region,
      description: "CDC engine (one instance: a replication slot has one consumer)",
      ingress: "INGRESS_TRAFFIC_INTERNAL_ONLY",
      defaultUriDisabled: true,
      invokerIamDisabled: false,
      deletionProtection: s.deletionProtection,
      // Readiness probes are a preview feature of Cloud Run: the service must opt into BETA for them.
      launchStage: "BETA",
      // Manual scaling: exactly one instance, never driven by requests (the revision's own
      // scaling limits are ignored under manual scaling, so none are set).
      scaling: { scalingMode: "MANUAL", manualInstanceCount: 1 },
      template: {
        serviceAccount: account.email,
        executionEnvironment: "EXECUTION_ENVIRONMENT_GEN2",
        maxInstanceRequestConcurrency: 1,
        ...(vpcAccess ? { vpcAccess } : {}),
        labels: args.labels,
        containers: [{
          name: "cdc-engine",
          image: args.imageRef,
          ports: { name: "http1", containerPort: ENGINE_HTTP_PORT },
          resources: {
            // Always-allocated CPU requires at least 1 vCPU on Cloud Run.
            limits: { cpu: String(Math.max(1, s.container.cpu)), memory: `${s.container.memoryMiB}Mi` },
            cpuIdle: false,
            startupCpuBoost: true,
          },
          envs,
          // 24 × 10 s: Cloud Run allows a startup probe at most 240 s in all (components/limits.ts).
          startupProbe: probe("/healthz", 24),
          livenessProbe: probe("/healthz", 3),
          readinessProbe: probe("/readyz", 3),
        }],
      },
      labels: args.labels,
    }, { parent: this, dependsOn: [args.apis, landingWriter, ...(secretReader ? [secretReader] : []), ...databaseLogin, ...(kafkaPasswordReader ? [kafkaPasswordReader] : [])] });

    this.name = service.name;
    this.id = service.id;
    this.serviceAccountEmail = account.email;
    this.registerOutputs({ name: this.name, id: this.id, serviceAccountEmail: this.serviceAccountEmail });
  }
}

/** An engine the alerts watch. */
export interface AlertedEngine {
  /** Prefix of its policies' Pulumi names (`<alerts>-<label>-…`); none for a platform's only engine. */
  label?: string;
  /** Base of its log-based metric names and policy display names. */
  baseName: string;
  /** Its Cloud Run service. */
  serviceName: string;
  source: string;
  slot: string;
}

export interface EngineAlertsArgs extends Placement {
  baseName: string;
  engines: AlertedEngine[];
  /** Who is paged (one email notification channel per address). */
  emails: string[];
  thresholds: AlertThresholds;
}

/** Cloud Monitoring's filter for a user-defined log-based metric on Cloud Run. */
const userMetricFilter = (metricName: pulumi.Input<string>) => pulumi.interpolate`metric.type="logging.googleapis.com/user/${metricName}" AND resource.type="cloud_run_revision"`;

/**
 * Pages someone through an email notification channel per address, for each engine:
 * - not running: the Cloud Run service's instance count below 1, or no instance metric at all, for
 *   five minutes;
 * - restarts, replication lag, landing stalled: alert policies on log-based metrics made from the
 *   engine's start line and its metrics line (docs/engine.md). User-defined log-based metrics count
 *   every log the project receives, whatever the exclusion on _Default.
 */
export class EngineAlerts extends pulumi.ComponentResource {
  readonly policyName: pulumi.Output<string>;

  constructor(name: string, args: EngineAlertsArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:EngineAlerts`, name, {}, opts);
    const t = args.thresholds;
    const channels = args.emails.map((email, i) => new monitoring.NotificationChannel(`${name}-email-${i}`, {
      project: args.project,
      type: "email",
      displayName: `CDC engine (${args.baseName}): ${email}`,
      labels: { email_address: email },
      userLabels: args.labels,
    }, { parent: this, dependsOn: [args.apis] }));
    const notificationChannels = channels.map((c) => c.name);
    const policy = (resourceName: string, displayName: string, content: string, conditions: monitoring.AlertPolicyArgs["conditions"], dependsOn: pulumi.Resource[] = []) =>
      new monitoring.AlertPolicy(resourceName, {
        project: args.project,
        displayName,
        combiner: "OR",
        conditions,
        notificationChannels,
        documentation: { content, mimeType: "text/markdown" },
        userLabels: args.labels,
      }, { parent: this, dependsOn: [args.apis, ...dependsOn] });
    const policies: monitoring.AlertPolicy[] = [];
    for (const e of args.engines) {
      const n = e.label ? `${name}-${e.label}` : name;
      const what = `The CDC engine of slot ${e.slot} (${e.source})`;
      const filter = `${engineLogFilter(e.serviceName)} AND metric.type="run.googleapis.com/container/instance_count"`;
      const aggregations = [{ alignmentPeriod: "60s", perSeriesAligner: "ALIGN_MAX", crossSeriesReducer: "REDUCE_SUM" }];
      policies.push(policy(`${n}-not-running`, `${e.baseName}: CDC engine not running`, `${what} has no running instance: changes are not being captured and the replication slot retains WAL.`, [
        { displayName: "no running instance", conditionThreshold: { filter, comparison: "COMPARISON_LT", thresholdValue: 1, duration: "300s", aggregations } },
        { displayName: "no instance metric", conditionAbsent: { filter, duration: "300s", aggregations } },
      ]));

      const lines = (message: string) => `${engineLogFilter(e.serviceName)} AND jsonPayload.msg="${message}"`;
      const starts = new logging.Metric(`${n}-engine-starts`, {
        project: args.project,
        name: checkName("gcpLogMetric", `${e.baseName}-engine-starts`),
        description: `Starts of the CDC engine of slot ${e.slot}`,
        filter: lines(ENGINE_STARTING_MESSAGE),
        metricDescriptor: { metricKind: "DELTA", valueType: "INT64", unit: "1" },
      }, { parent: this, dependsOn: [args.apis] });
      const distribution = (suffix: string, field: string, unit: string, description: string) => new logging.Metric(`${n}-${suffix}`, {
        project: args.project,
        name: checkName("gcpLogMetric", `${e.baseName}-${suffix}`),
        description,
        filter: `${lines(METRICS_LOG_MESSAGE)} AND jsonPayload.${field}:*`,
        metricDescriptor: { metricKind: "DELTA", valueType: "DISTRIBUTION", unit },
        valueExtractor: `EXTRACT(jsonPayload.${field})`,
        bucketOptions: { exponentialBuckets: { numFiniteBuckets: 64, growthFactor: 2, scale: 1 } },
      }, { parent: this, dependsOn: [args.apis] });
      const lag = distribution("replication-lag", "lagBytes", "By", `Replication lag of the CDC engine of slot ${e.slot}, bytes`);
      const stalled = distribution("landing-stalled", "stalledSeconds", "s", `Seconds the CDC engine of slot ${e.slot} has landed and confirmed nothing while changes wait`);
      // One metrics line a minute: the mean of a minute is that line's exact value (a distribution keeps its mean).
      const perMinute = [{ alignmentPeriod: "60s", perSeriesAligner: "ALIGN_MEAN", crossSeriesReducer: "REDUCE_MAX" }];
      policies.push(policy(`${n}-engine-restarts`, `${e.baseName}: CDC engine restarts`, `${what} started ${t.restarts} or more times within ${t.restartWindowMinutes} minutes: it is crash-looping; see its logs.`, [{
        displayName: `${t.restarts}+ starts in ${t.restartWindowMinutes} min`,
        conditionThreshold: {
          filter: userMetricFilter(starts.name),
          comparison: "COMPARISON_GE",
          thresholdValue: t.restarts,
          duration: "0s",
          aggregations: [{ alignmentPeriod: `${t.restartWindowMinutes * 60}s`, perSeriesAligner: "ALIGN_SUM", crossSeriesReducer: "REDUCE_SUM" }],
        },
      }], [starts]));
      policies.push(policy(`${n}-replication-lag`, `${e.baseName}: CDC replication lag`, `${what} is more than ${t.replicationLagMiB} MiB behind the server's WAL for ${LIMITS.alerts.lagSustainedMinutes} minutes: the slot retains that WAL on the primary.`, [{
        displayName: `lag above ${t.replicationLagMiB} MiB`,
        conditionThreshold: { filter: userMetricFilter(lag.name), comparison: "COMPARISON_GT", thresholdValue: t.replicationLagMiB * 1024 * 1024, duration: `${LIMITS.alerts.lagSustainedMinutes * 60}s`, aggregations: perMinute },
      }], [lag]));
      policies.push(policy(`${n}-landing-stalled`, `${e.baseName}: CDC landing stalled`, `${what} has written no landing object and confirmed nothing for ${t.landingStallMinutes} minutes while the source has changes waiting.`, [{
        displayName: `stalled ${t.landingStallMinutes} min`,
        conditionThreshold: { filter: userMetricFilter(stalled.name), comparison: "COMPARISON_GE", thresholdValue: t.landingStallMinutes * 60, duration: "0s", aggregations: perMinute },
      }], [stalled]));
    }
    this.policyName = policies[0].name;
    this.registerOutputs({ policyName: this.policyName });
  }
}

/**
 * postgres.auth=gcp-iam: the engine logs in as its service account's Cloud SQL IAM user, which is
 * the account's e-mail without `.gserviceaccount.com`; settings derived `user` from the same
 * account id, and this checks the two agree.
 */
function cloudSqlIamLogin(serviceAccountEmail: pulumi.Output<string>, user: string, instance = "<instance>"): NonNullable<ServiceFacts["databaseLogin"]> {
  const checked = serviceAccountEmail.apply((email) => {
    const iamUser = email.replace(/\.gserviceaccount\.com$/, "");
    if (iamUser !== user) throw new pulumi.RunError(`the engine's service account ${email} logs in to Cloud SQL as ${iamUser}, not as PG_USER=${user}`);
    return checkName("cloudSqlIamUser", iamUser);
  });
  return {
    user: checked,
    setup: checked.apply((iamUser) => databaseLoginSetup("gcp-iam", iamUser, instance)),
  };
}

/** Builds the GCP target under `parent`. */
export function deployGcp(name: string, s: PlatformSettings, parent: pulumi.Resource): TargetOutputs {
  const at = (legacy: string) => childOf(parent, name, legacy);
  const g = s.gcp!;
  const apis = new ProjectApis(at("apis").name, { project: g.project }, at("apis").opts);
  const placement: Placement = { project: g.project, region: g.region, labels: s.tags, apis };

  const landing = new LandingStorage(at("landing").name, {
    ...placement,
    baseName: s.baseName,
    prefix: s.landingPrefix,
    retentionDays: s.landingRetentionDays,
    deletionProtection: s.deletionProtection,
  }, at("landing").opts);
  const registry = new ContainerRegistry(at("registry").name, { ...placement, baseName: s.baseName }, at("registry").opts);
  const image = new EngineImage(at("engine-image").name, {
    repository: registry.facts.repository,
    platform: "linux/amd64",
    registry: { server: registry.facts.server, username: registry.facts.username, password: registry.facts.password },
  }, at("engine-image").opts);
  // Keyless (postgres.auth=gcp-iam): no password exists, so no secret.
  const secret = s.postgres.password === undefined ? undefined : new PasswordSecret(at("postgres-password").name, { ...placement, baseName: s.baseName, password: s.postgres.password, deletionProtection: s.deletionProtection }, at("postgres-password").opts);
  const specs = engineSpecs(s).map((e) => ({ ...e, serviceName: `${e.settings.baseName}-engine` }));
  const logs = new EngineLogs(at("logs").name, {
    ...placement,
    baseName: s.baseName,
    retentionDays: s.logRetentionDays,
    serviceName: specs[0].serviceName,
    ...(s.pipelines ? { serviceNames: specs.map((e) => e.serviceName) } : {}),
  }, at("logs").opts);
  // sink: {kind: kafka} without bootstrap: one Managed Kafka cluster per stack in the engines' VPC subnetwork (settings require one).
  const kafka = s.sink.kind === "kafka" && !s.sink.bootstrap
    ? new KafkaCluster(at("kafka").name, { baseName: s.baseName, project: g.project, region: g.region, subnetwork: g.network!.subnetwork!, topicPrefix: s.sink.topicPrefix, labels: s.tags, apis }, at("kafka").opts)
    : undefined;
  // sink.auth scram-*: the password in Secret Manager beside the PostgreSQL one, shared by the engines.
  const kafkaPassword = s.kafkaPassword
    ? new KafkaPasswordSecret(at("kafka-password").name, { baseName: s.baseName, project: g.project, password: s.kafkaPassword, deletionProtection: s.deletionProtection, labels: s.tags, apis }, at("kafka-password").opts)
    : undefined;
  const engines = specs.map(({ pipeline, settings, serviceName: engineServiceName }) => {
    const child = engineChildOf(parent, name, "engine", pipeline);
    const service = new EngineService(child.name, {
      ...placement,
      settings,
      serviceName: engineServiceName,
      imageRef: image.ref,
      bucketName: landing.bucketName,
      sinkUrl: landing.url,
      secretId: secret?.secretId,
      secretVersion: secret?.version,
      kafkaBootstrap: kafka?.bootstrap,
      kafkaPassword,
    }, child.opts);
    return { pipeline, settings, serviceName: engineServiceName, service, name: child.name };
  });
  // In the pipelines form each engine may write only its own tables' topics (and the shared state and schema topics).
  kafka?.grantEngines(engines.map((e) => ({ name: e.name, serviceAccountEmail: e.service.serviceAccountEmail, ...(e.pipeline ? { tables: e.settings.postgres.tables } : {}) })));
  if (s.alerts) {
    new EngineAlerts(at("alerts").name, {
      ...placement,
      baseName: s.baseName,
      engines: engines.map(({ pipeline, settings, serviceName: engineServiceName }) => ({
        label: pipeline,
        baseName: settings.baseName,
        serviceName: engineServiceName,
        source: slotSource(settings.postgres),
        slot: settings.postgres.slot,
      })),
      emails: s.alerts.emails,
      thresholds: s.alerts.thresholds,
    }, at("alerts").opts);
  }

  const facts: LandingFacts = {
    cloud: "gcp",
    url: landing.url,
    rootUrl: landing.rootUrl,
    prefix: s.landingPrefix,
    region: g.region,
    tags: s.tags,
    gcp: { project: g.project, bucketName: landing.bucketName },
  };
  const serviceFactsOf = ({ service, serviceName: engineServiceName, settings }: (typeof engines)[number]): ServiceFacts => ({
    name: service.name,
    id: service.id,
    logLocation: pulumi.interpolate`cloud-logging:${logs.bucketName}`,
    runtime: pulumi.output(`cloud-run:${g.project}/${g.region}`),
    identities: { serviceAccountEmail: service.serviceAccountEmail },
    ...(settings.postgres.auth === "gcp-iam" ? { databaseLogin: cloudSqlIamLogin(service.serviceAccountEmail, settings.postgres.user, settings.postgres.cloudSqlInstance) } : {}),
    commands: {
      // The engine's logs live in their own bucket (excluded from _Default): read them through its view.
      tailLogs: pulumi.interpolate`gcloud logging read '${engineLogFilter(engineServiceName)}' --project ${g.project} --bucket ${logs.bucketId} --location ${g.region} --view _AllLogs --freshness 1h --order asc`,
      checkHealth: pulumi.interpolate`gcloud run services describe ${service.name} --project ${g.project} --region ${g.region} --format "table(status.conditions[].type,status.conditions[].status)"`,
    },
  });
  const serviceFacts = serviceFactsOf(engines[0]);
  const pipelines = s.pipelines ? Object.fromEntries(engines.map((e) => [e.pipeline!, serviceFactsOf(e)])) : undefined;
  return { landing: facts, imageRef: image.ref, service: serviceFacts, pipelines, kafka: kafkaFacts(s.sink, kafka?.bootstrap) };
}
