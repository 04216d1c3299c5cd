/**
 * AWS: S3 landing bucket, ECR, Secrets Manager, CloudWatch Logs and one ECS Fargate task.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { databaseLoginSetup } from "../database-login";
import { EngineImage } from "../engineImage";
import { checkName, cloudWatchRetention, LIMITS } from "../limits";
import { s3BucketName } from "../naming";
import { EMF_NAMESPACE } from "../../container/src/ops/metrics-log";
import { ENGINE_STARTING_MESSAGE, engineEnvironment, ENGINE_HTTP_PORT, engineSpecs, slotSource, type AlertThresholds, type PlatformSettings } from "../settings";

const MIB = 1024 * 1024;

/** Docker label of the engine's task with the password secret's version (see EngineServiceArgs.secretVersionId). */
export const PASSWORD_VERSION_LABEL = "postgres-cdc-multicloud.password-version";
/** The same for the Kafka SCRAM password's secret (sink.auth scram-*). */
export const KAFKA_PASSWORD_VERSION_LABEL = "postgres-cdc-multicloud.kafka-password-version";
import { childOf, engineChildOf } from "../children";
import { KafkaCluster, KafkaPasswordSecret, connectEngineToKafka } from "./kafka";
import { storePassword } from "./secret";
import { kafkaFacts } from "../kafka";
import type { LandingFacts, RegistryFacts, ServiceFacts, TargetOutputs } from "../types";

const T = "postgres-cdc-multicloud:aws";


export interface LandingStorageArgs {
  /** Base name of the stack's resources. */
  baseName: string;
  /** AWS account id: makes the bucket name globally unique. */
  accountId: pulumi.Input<string>;
  /** Prefix the engine writes under. */
  prefix: string;
  /** Landing objects expire after this many days (noncurrent versions a day later). */
  retentionDays: number;
  /** Keep the bucket (and its objects) when the stack is destroyed. */
  deletionProtection: boolean;
  tags: Record<string, string>;
}

/**
 * The S3 landing bucket: all public access blocked, bucket-owner-enforced ownership, SSE, TLS 1.2+
 * only, versioning (a replayed object overwrite stays recoverable) and expiry of landing objects.
 */
export class LandingStorage extends pulumi.ComponentResource {
  readonly bucketName: pulumi.Output<string>;
  readonly bucketArn: pulumi.Output<string>;
  readonly url: pulumi.Output<string>;
  readonly rootUrl: pulumi.Output<string>;

  constructor(name: string, args: LandingStorageArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:LandingStorage`, name, {}, opts);
    const bucketName = pulumi.output(args.accountId).apply((account) => checkName("s3Bucket", s3BucketName(args.baseName, "landing", account)));
    const bucket = new aws.s3.Bucket(`${name}-bucket`, {
      bucket: bucketName,
      forceDestroy: !args.deletionProtection,
      tags: args.tags,
    }, { parent: this, protect: args.deletionProtection });

    const publicAccess = new aws.s3.BucketPublicAccessBlock(`${name}-public-access`, {
      bucket: bucket.id,
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    }, { parent: this });
    new aws.s3.BucketOwnershipControls(`${name}-ownership`, {
      bucket: bucket.id,
      rule: { objectOwnership: "BucketOwnerEnforced" },
    }, { parent: this });
    new aws.s3.BucketServerSideEncryptionConfiguration(`${name}-sse`, {
      bucket: bucket.id,
      rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" }, bucketKeyEnabled: true }],
    }, { parent: this });
    new aws.s3.BucketVersioning(`${name}-versioning`, {
      bucket: bucket.id,
      versioningConfiguration: { status: "Enabled" },
    }, { parent: this });
    new aws.s3.BucketLifecycleConfiguration(`${name}-lifecycle`, {
      bucket: bucket.id,
      rules: [{
        id: "expire-landing",
        status: "Enabled",
        filter: { prefix: `${args.prefix}/` },
        expiration: { days: args.retentionDays },
        noncurrentVersionExpiration: { noncurrentDays: 1 },
        abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
      }, {
        id: "clean-delete-markers",
        status: "Enabled",
        filter: {},
        expiration: { expiredObjectDeleteMarker: true },
      }],
    }, { parent: this });
    new aws.s3.BucketPolicy(`${name}-tls-only`, {
      bucket: bucket.id,
      policy: pulumi.jsonStringify({
        Version: "2012-10-17",
        Statement: [
          {
            Sid: "DenyInsecureTransport",
            Effect: "Deny",
            Principal: "*",
            Action: "s3:*",
            Resource: [bucket.arn, pulumi.interpolate`${bucket.arn}/*`],
            Condition: { Bool: { "aws:SecureTransport": "false" } },
          },
          {
            Sid: "DenyTlsOlderThan12",
            Effect: "Deny",
            Principal: "*",
            Action: "s3:*",
            Resource: [bucket.arn, pulumi.interpolate`${bucket.arn}/*`],
            Condition: { NumericLessThan: { "s3:TlsVersion": "1.2" } },
          },
        ],
      }),
    }, { parent: this, dependsOn: [publicAccess] });

    this.bucketName = bucket.bucket;
    this.bucketArn = bucket.arn;
    this.rootUrl = pulumi.interpolate`s3://${bucket.bucket}`;
    this.url = pulumi.interpolate`s3://${bucket.bucket}/${args.prefix}`;
    this.registerOutputs({ bucketName: this.bucketName, bucketArn: this.bucketArn, url: this.url });
  }
}

export interface ContainerRegistryArgs {
  baseName: string;
  /** Let `pulumi destroy` delete the repository with its images. */
  forceDelete: boolean;
  tags: Record<string, string>;
}

/** ECR repository (scan on push, encrypted, old images expire); push credentials from an ECR authorization token. */
export class ContainerRegistry extends pulumi.ComponentResource {
  readonly repositoryArn: pulumi.Output<string>;
  readonly facts: RegistryFacts;

  constructor(name: string, args: ContainerRegistryArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:ContainerRegistry`, name, {}, opts);
    const repo = new aws.ecr.Repository(`${name}-repo`, {
      name: checkName("ecrRepository", `${args.baseName}-engine`),
      imageTagMutability: "MUTABLE",
      imageScanningConfiguration: { scanOnPush: true },
      encryptionConfigurations: [{ encryptionType: "AES256" }],
      forceDelete: args.forceDelete,
      tags: args.tags,
    }, { parent: this });
    new aws.ecr.LifecyclePolicy(`${name}-keep-recent`, {
      repository: repo.name,
      policy: JSON.stringify({
        rules: [{
          rulePriority: 1,
          description: "keep the 20 most recent engine images",
          selection: { tagStatus: "any", countType: "imageCountMoreThan", countNumber: 20 },
          action: { type: "expire" },
        }],
      }),
    }, { parent: this });
    // A 12-hour token for the deployer's own identity: no IAM user, no stored password.
    const token = aws.ecr.getAuthorizationTokenOutput({ registryId: repo.registryId }, { parent: this });
    this.repositoryArn = repo.arn;
    this.facts = {
      server: token.proxyEndpoint.apply((e) => e.replace(/^https?:\/\//, "")),
      repository: repo.repositoryUrl,
      username: token.userName,
      password: pulumi.secret(token.password),
    };
    this.registerOutputs({ repositoryUrl: repo.repositoryUrl });
  }
}

export interface PasswordSecretArgs {
  baseName: string;
  /** The PostgreSQL password (a Pulumi secret). */
  password: pulumi.Input<string>;
  /** Days Secrets Manager keeps a deleted secret (0 deletes at once). */
  recoveryWindowInDays: number;
  tags: Record<string, string>;
}

/**
 * Secrets Manager secret holding the PostgreSQL password. A deleted secret keeps its name for the
 * recovery window, so the name ends in a suffix that is new after each destroy.
 */
export class PasswordSecret extends pulumi.ComponentResource {
  readonly arn: pulumi.Output<string>;
  /** The current version's id: new whenever the password changes (the service rolls on it). */
  readonly versionId: pulumi.Output<string>;

  constructor(name: string, args: PasswordSecretArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:PasswordSecret`, name, {}, opts);
    const stored = storePassword(name, { ...args, key: "postgres-password", description: "PostgreSQL password of the CDC engine's replication user" }, this);
    this.arn = stored.arn;
    this.versionId = stored.versionId;
    this.registerOutputs({ arn: this.arn, versionId: this.versionId });
  }
}

export interface EngineLogsArgs {
  baseName: string;
  retentionDays: number;
  tags: Record<string, string>;
}

/** CloudWatch log group with retention. */
export class EngineLogs extends pulumi.ComponentResource {
  readonly name: pulumi.Output<string>;
  readonly arn: pulumi.Output<string>;

  constructor(name: string, args: EngineLogsArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:EngineLogs`, name, {}, opts);
    const group = new aws.cloudwatch.LogGroup(`${name}-group`, {
      name: checkName("logGroup", `/ecs/${args.baseName}/engine`),
      retentionInDays: cloudWatchRetention(args.retentionDays),
      tags: args.tags,
    }, { parent: this });
    this.name = group.name;
    this.arn = group.arn;
    this.registerOutputs({ name: this.name });
  }
}

export interface EngineServiceArgs {
  settings: PlatformSettings;
  accountId: pulumi.Input<string>;
  /** Image the task runs: repository@sha256:digest. */
  imageRef: pulumi.Input<string>;
  repositoryArn: pulumi.Input<string>;
  bucketArn: pulumi.Input<string>;
  sinkUrl: pulumi.Input<string>;
  /** The password secret (postgres.auth password); none with a keyless login. */
  secretArn?: pulumi.Input<string>;
  /**
   * The password secret's current version id. ECS reads the secret only when a task starts, so the
   * task definition carries it (a Docker label): a new password makes a new revision and rolls the task.
   */
  secretVersionId?: pulumi.Input<string>;
  logGroupName: pulumi.Input<string>;
  logGroupArn: pulumi.Input<string>;
  /**
   * With a Kafka sink: the bootstrap brokers the engine publishes to, and the IAM policy it needs
   * (MSK), or the SCRAM password's secret (an existing cluster) and its version.
   */
  kafka?: { bootstrap?: pulumi.Input<string>; policy?: pulumi.Input<string>; password?: { arn: pulumi.Input<string>; versionId: pulumi.Input<string> } };
}

/**
 * ECS Fargate service running exactly one engine task: desired count 1, and deployments stop the
 * old task before starting the new one (min healthy 0%, max 100%), because a replication slot has
 * one consumer. The task role may write only the landing prefix (and, with postgres.auth=aws-iam,
 * connect as exactly one database user: rds-db:connect on that user's ARN); the execution role may
 * read only the password secret (to inject it), pull only the engine repository and write only its
 * log group.
 */
export class EngineService extends pulumi.ComponentResource {
  readonly name: pulumi.Output<string>;
  readonly id: pulumi.Output<string>;
  readonly clusterName: pulumi.Output<string>;
  readonly securityGroupId: pulumi.Output<string>;
  readonly taskRoleArn: pulumi.Output<string>;
  readonly executionRoleArn: pulumi.Output<string>;
  /** postgres.auth=aws-iam: the database user the task role may connect as (rds-db:connect). */
  readonly databaseUserArn?: pulumi.Output<string>;

  constructor(name: string, args: EngineServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:EngineService`, name, {}, opts);
    const s = args.settings;
    const aw = s.aws!;
    const tags = s.tags;
    const prefix = s.landingPrefix;

    const assumeByEcsTasks = pulumi.jsonStringify({
      Version: "2012-10-17",
      Statement: [{
        Effect: "Allow",
        Principal: { Service: "ecs-tasks.amazonaws.com" },
        Action: "sts:AssumeRole",
        Condition: { StringEquals: { "aws:SourceAccount": args.accountId } },
      }],
    });

    const taskRole = new aws.iam.Role(`${name}-task-role`, {
      name: checkName("awsName", `${s.baseName}-engine-task`),
      description: "CDC engine: writes landing objects under its prefix only",
      assumeRolePolicy: assumeByEcsTasks,
      tags,
    }, { parent: this });
    new aws.iam.RolePolicy(`${name}-task-landing`, {
      role: taskRole.id,
      policy: pulumi.jsonStringify({
        Version: "2012-10-17",
        Statement: [
          {
            Sid: "WriteLandingPrefix",
            Effect: "Allow",
            Action: ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
            Resource: pulumi.interpolate`${args.bucketArn}/${prefix}/*`,
          },
          {
            Sid: "ListLandingPrefix",
            Effect: "Allow",
            Action: "s3:ListBucket",
            Resource: args.bucketArn,
            Condition: { StringLike: { "s3:prefix": [`${prefix}/*`, prefix] } },
          },
        ],
      }),
    }, { parent: this });

    if (s.postgres.auth === "aws-iam") {
      // The token the engine signs with this role is accepted for exactly this user of this instance or cluster.
      this.databaseUserArn = pulumi.output(args.accountId).apply((account) =>
        checkName("rdsDbUserArn", rdsDbUserArn(s.postgres.authRegion ?? aw.region, account, s.postgres.awsResourceId!, s.postgres.user)));
      new aws.iam.RolePolicy(`${name}-task-db-connect`, {
        role: taskRole.id,
        policy: pulumi.jsonStringify({
          Version: "2012-10-17",
          Statement: [{ Sid: "ConnectAsDatabaseUser", Effect: "Allow", Action: "rds-db:connect", Resource: this.databaseUserArn }],
        }),
      }, { parent: this });
    }

    const executionRole = new aws.iam.Role(`${name}-execution-role`, {
      name: checkName("awsName", `${s.baseName}-engine-exec`),
      description: "ECS agent for the CDC engine: pulls its image, injects its secret, ships its logs",
      assumeRolePolicy: assumeByEcsTasks,
      tags,
    }, { parent: this });
    new aws.iam.RolePolicy(`${name}-execution`, {
      role: executionRole.id,
      policy: pulumi.jsonStringify({
        Version: "2012-10-17",
        Statement: [
          // GetAuthorizationToken has no resource-level permissions.
          { Sid: "EcrToken", Effect: "Allow", Action: "ecr:GetAuthorizationToken", Resource: "*" },
          { Sid: "PullEngineImage", Effect: "Allow", Action: ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"], Resource: args.repositoryArn },
          ...(args.secretArn ? [{ Sid: "ReadPasswordSecret", Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: args.secretArn }] : []),
          { Sid: "WriteEngineLogs", Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: pulumi.interpolate`${args.logGroupArn}:*` },
        ],
      }),
    }, { parent: this });

    // Network: configured subnets (private, with NAT or VPC endpoints), else the default VPC.
    const configured = aw.network.subnetIds.length > 0;
    const vpcId = configured ? pulumi.output(aw.network.vpcId!) : aws.ec2.getVpcOutput({ default: true }, { parent: this }).id;
    const subnetIds = configured
      ? pulumi.output(aw.network.subnetIds)
      : aws.ec2.getSubnetsOutput({ filters: [{ name: "vpc-id", values: [vpcId] }, { name: "default-for-az", values: ["true"] }] }, { parent: this }).ids;
    const securityGroup = new aws.ec2.SecurityGroup(`${name}-sg`, {
      name: checkName("securityGroup", `${s.baseName}-engine`),
      description: "CDC engine: no inbound; outbound to PostgreSQL and AWS APIs (HTTPS) only",
      vpcId,
      egress: [
        { description: "AWS APIs (S3, ECR, Secrets Manager, CloudWatch)", protocol: "tcp", fromPort: 443, toPort: 443, cidrBlocks: ["0.0.0.0/0"] },
        { description: "PostgreSQL", protocol: "tcp", fromPort: s.postgres.port, toPort: s.postgres.port, cidrBlocks: ["0.0.0.0/0"] },
      ],
      tags,
    }, { parent: this });

    const cluster = new aws.ecs.Cluster(`${name}-cluster`, {
      name: checkName("awsName", s.baseName),
      settings: [{ name: "containerInsights", value: "enabled" }],
      tags,
    }, { parent: this });

    if (args.kafka?.policy) new aws.iam.RolePolicy(`${name}-task-kafka`, { role: taskRole.id, policy: args.kafka.policy }, { parent: this });
    const kafkaPassword = args.kafka?.password;
    if (kafkaPassword) {
      new aws.iam.RolePolicy(`${name}-execution-kafka-password`, {
        role: executionRole.id,
        policy: pulumi.jsonStringify({ Version: "2012-10-17", Statement: [{ Sid: "ReadKafkaPasswordSecret", Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: kafkaPassword.arn }] }),
      }, { parent: this });
    }
    // With alerts, the metrics line carries CloudWatch EMF: CloudWatch Logs makes the alarms' metrics from it.
    const metricsLog: Record<string, string> = s.alerts ? { METRICS_LOG: "emf" } : {};
    const environment = pulumi.all([args.sinkUrl, args.kafka?.bootstrap]).apply(([sinkUrl, kafkaBootstrap]) =>
      Object.entries({ ...engineEnvironment(s, sinkUrl, kafkaBootstrap), ...metricsLog }).map(([n, value]) => ({ name: n, value })));
    const healthCommand = `fetch('http://127.0.0.1:${ENGINE_HTTP_PORT}/healthz').then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))`;
    const taskDefinition = new aws.ecs.TaskDefinition(`${name}-task`, {
      family: checkName("awsName", `${s.baseName}-engine`),
      requiresCompatibilities: ["FARGATE"],
      networkMode: "awsvpc",
      cpu: String(Math.round(s.container.cpu * 1024)),
      memory: String(s.container.memoryMiB),
      runtimePlatform: { operatingSystemFamily: "LINUX", cpuArchitecture: s.architecture === "arm64" ? "ARM64" : "X86_64" },
      taskRoleArn: taskRole.arn,
      executionRoleArn: executionRole.arn,
      volumes: [{ name: "tmp" }],
      containerDefinitions: pulumi.jsonStringify([{
        name: "cdc-engine",
        image: args.imageRef,
        essential: true,
        readonlyRootFilesystem: true,
        mountPoints: [{ sourceVolume: "tmp", containerPath: "/tmp", readOnly: false }],
        environment,
        // The passwords reach the task only through Secrets Manager, never as plain values (keyless PostgreSQL login: no PG_PASSWORD at all).
        ...(args.secretArn || kafkaPassword ? {
          secrets: [
            ...(args.secretArn ? [{ name: "PG_PASSWORD", valueFrom: args.secretArn }] : []),
            ...(kafkaPassword ? [{ name: "KAFKA_PASSWORD", valueFrom: kafkaPassword.arn }] : []),
          ],
        } : {}),
        ...(args.secretVersionId || kafkaPassword ? {
          dockerLabels: {
            ...(args.secretVersionId ? { [PASSWORD_VERSION_LABEL]: args.secretVersionId } : {}),
            ...(kafkaPassword ? { [KAFKA_PASSWORD_VERSION_LABEL]: kafkaPassword.versionId } : {}),
          },
        } : {}),
        portMappings: [{ containerPort: ENGINE_HTTP_PORT, protocol: "tcp" }],
        // ECS has one container health check (unhealthy → replaced): liveness, /healthz.
        healthCheck: { command: ["CMD", "node", "-e", healthCommand], interval: 15, timeout: 5, retries: 3, startPeriod: 60 },
        stopTimeout: 30,
        logConfiguration: {
          logDriver: "awslogs",
          options: { "awslogs-group": args.logGroupName, "awslogs-region": aw.region, "awslogs-stream-prefix": "engine" },
        },
      }]),
      tags,
    }, { parent: this });

    const service = new aws.ecs.Service(`${name}-service`, {
      name: checkName("awsName", `${s.baseName}-engine`),
      cluster: cluster.arn,
      taskDefinition: taskDefinition.arn,
      launchType: "FARGATE",
      platformVersion: "LATEST",
      desiredCount: 1,
      deploymentMinimumHealthyPercent: 0,
      deploymentMaximumPercent: 100,
      deploymentCircuitBreaker: { enable: true, rollback: true },
      // `pulumi up` succeeds only once the task runs and stays healthy, not while it crash-loops
      // (the circuit breaker then fails and rolls back the deployment, and `up` reports it).
      waitForSteadyState: true,
      networkConfiguration: {
        subnets: subnetIds,
        securityGroups: pulumi.output(securityGroup.id).apply((id) => [id, ...aw.network.securityGroupIds]),
        assignPublicIp: aw.network.assignPublicIp ?? !configured,
      },
      enableEcsManagedTags: true,
      propagateTags: "SERVICE",
      tags,
    }, { parent: this });

    this.name = service.name;
    this.id = service.id;
    this.clusterName = cluster.name;
    this.securityGroupId = securityGroup.id;
    this.taskRoleArn = taskRole.arn;
    this.executionRoleArn = executionRole.arn;
    this.registerOutputs({ name: this.name, id: this.id, clusterName: this.clusterName, securityGroupId: this.securityGroupId, taskRoleArn: this.taskRoleArn, executionRoleArn: this.executionRoleArn, databaseUserArn: this.databaseUserArn });
  }
}

/** An engine the alerts watch. */
export interface AlertedEngine {
  /** Prefix of its alarms' Pulumi names (`<alerts>-<label>-…`); none for a platform's only engine. */
  label?: string;
  /** Base of its alarms' cloud names. */
  baseName: string;
  clusterName: pulumi.Input<string>;
  serviceName: pulumi.Input<string>;
  /** Its log group: its starts are counted from it. */
  logGroupName: pulumi.Input<string>;
  /** `host:port/database` and slot: the dimensions of its metrics (the engine's metrics log line, docs/engine.md). */
  source: string;
  slot: string;
}

export interface EngineAlertsArgs {
  baseName: string;
  engines: AlertedEngine[];
  /** Who is paged (SNS email subscriptions; each address confirms its subscription once). */
  emails: string[];
  thresholds: AlertThresholds;
  tags: Record<string, string>;
}

/** CloudWatch namespace of the engine's metrics: the EMF metrics line and the start count below. */
export const METRICS_NAMESPACE = EMF_NAMESPACE;

/**
 * Pages someone through one SNS topic (an email subscription per address), for each engine:
 * - not running: the service's running task count (Container Insights) below 1 for five minutes,
 *   missing data counting as not running;
 * - restarts: `thresholds.restarts` starts within `restartWindowMinutes` (a metric filter counts the
 *   engine's "cdc-engine starting" lines);
 * - replication lag: the EMF metric ReplicationLagBytes above the threshold for five minutes;
 * - landing stalled: StalledSeconds (nothing landed or confirmed while changes wait) at the threshold.
 * The metric alarms treat missing data as fine: a stopped engine is the "not running" alarm's case.
 * Each alarm notifies again when it recovers.
 */
export class EngineAlerts extends pulumi.ComponentResource {
  readonly topicArn: pulumi.Output<string>;

  constructor(name: string, args: EngineAlertsArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${T}:EngineAlerts`, name, {}, opts);
    const t = args.thresholds;
    const topic = new aws.sns.Topic(`${name}-topic`, {
      name: checkName("snsTopic", `${args.baseName}-engine-alerts`),
      tags: args.tags,
    }, { parent: this });
    args.emails.forEach((email, i) => new aws.sns.TopicSubscription(`${name}-email-${i}`, { topic: topic.arn, protocol: "email", endpoint: email }, { parent: this }));
    const notify = { alarmActions: [topic.arn], okActions: [topic.arn], tags: args.tags };
    for (const e of args.engines) {
      const n = e.label ? `${name}-${e.label}` : name;
      // One filter per log group (each engine has its own): two on one group would count every start twice.
      const starts = new aws.cloudwatch.LogMetricFilter(`${n}-engine-starts`, {
        name: checkName("logMetricFilter", `${e.baseName}-engine-starts`),
        logGroupName: e.logGroupName,
        pattern: `{ $.msg = "${ENGINE_STARTING_MESSAGE}" }`,
        metricTransformation: { name: "EngineStarts", namespace: METRICS_NAMESPACE, value: "1", unit: "Count", dimensions: { Source: "$.source", Slot: "$.slot" } },
      }, { parent: this });
      const what = `The CDC engine of slot ${e.slot} (${e.source})`;
      const dimensions = { Source: e.source, Slot: e.slot };
      new aws.cloudwatch.MetricAlarm(`${n}-not-running`, {
        name: checkName("cloudWatchAlarm", `${e.baseName}-engine-not-running`),
        alarmDescription: `${what} has no running task: changes are not being captured and the replication slot retains WAL`,
        namespace: "ECS/ContainerInsights",
        metricName: "RunningTaskCount",
        dimensions: { ClusterName: e.clusterName, ServiceName: e.serviceName },
        statistic: "Minimum",
        period: 60,
        evaluationPeriods: 5,
        threshold: 1,
        comparisonOperator: "LessThanThreshold",
        treatMissingData: "breaching",
        ...notify,
      }, { parent: this });
      new aws.cloudwatch.MetricAlarm(`${n}-restarts`, {
        name: checkName("cloudWatchAlarm", `${e.baseName}-engine-restarts`),
        alarmDescription: `${what} started ${t.restarts} or more times within ${t.restartWindowMinutes} minutes: it is crash-looping; see its logs`,
        namespace: METRICS_NAMESPACE,
        metricName: "EngineStarts",
        dimensions,
        statistic: "Sum",
        period: t.restartWindowMinutes * 60,
        evaluationPeriods: 1,
        threshold: t.restarts,
        comparisonOperator: "GreaterThanOrEqualToThreshold",
        treatMissingData: "notBreaching",
        ...notify,
      }, { parent: this, dependsOn: [starts] });
      new aws.cloudwatch.MetricAlarm(`${n}-replication-lag`, {
        name: checkName("cloudWatchAlarm", `${e.baseName}-replication-lag`),
        alarmDescription: `${what} is more than ${t.replicationLagMiB} MiB behind the server's WAL for ${LIMITS.alerts.lagSustainedMinutes} minutes: the slot retains that WAL on the primary`,
        namespace: METRICS_NAMESPACE,
        metricName: "ReplicationLagBytes",
        dimensions,
        statistic: "Minimum",
        period: 60,
        evaluationPeriods: LIMITS.alerts.lagSustainedMinutes,
        threshold: t.replicationLagMiB * MIB,
        comparisonOperator: "GreaterThanThreshold",
        treatMissingData: "notBreaching",
        ...notify,
      }, { parent: this });
      new aws.cloudwatch.MetricAlarm(`${n}-landing-stalled`, {
        name: checkName("cloudWatchAlarm", `${e.baseName}-landing-stalled`),
        alarmDescription: `${what} has written no landing object and confirmed nothing for ${t.landingStallMinutes} minutes while the source has changes waiting`,
        namespace: METRICS_NAMESPACE,
        metricName: "StalledSeconds",
        dimensions,
        statistic: "Maximum",
        period: 60,
        evaluationPeriods: 1,
        threshold: t.landingStallMinutes * 60,
        comparisonOperator: "GreaterThanOrEqualToThreshold",
        treatMissingData: "notBreaching",
        ...notify,
      }, { parent: this });
    }
    this.topicArn = topic.arn;
    this.registerOutputs({ topicArn: this.topicArn });
  }
}

/** AWS partition of a region: aws, aws-cn (cn-*) or aws-us-gov (us-gov-*). */
function partitionOf(region: string): string {
  return region.startsWith("cn-") ? "aws-cn" : region.startsWith("us-gov-") ? "aws-us-gov" : "aws";
}

/**
 * The resource of rds-db:connect for one database user (components/limits.ts NAME_RULES.rdsDbUserArn):
 * arn:<partition>:rds-db:<region>:<account>:dbuser:<DbiResourceId or DbClusterResourceId>/<user>.
 */
export function rdsDbUserArn(region: string, accountId: string, resourceId: string, user: string): string {
  return `arn:${partitionOf(region)}:rds-db:${region}:${accountId}:dbuser:${resourceId}/${user}`;
}

/** Builds the AWS target under `parent`. */
export function deployAws(name: string, s: PlatformSettings, parent: pulumi.Resource): TargetOutputs {
  const opts = { parent };
  const at = (legacy: string) => childOf(parent, name, legacy);
  const identity = aws.getCallerIdentityOutput({}, opts);
  const accountId = identity.accountId;

  const storage = new LandingStorage(at("landing").name, {
    baseName: s.baseName,
    accountId,
    prefix: s.landingPrefix,
    retentionDays: s.landingRetentionDays,
    deletionProtection: s.deletionProtection,
    tags: s.tags,
  }, at("landing").opts);
  const registry = new ContainerRegistry(at("registry").name, { baseName: s.baseName, forceDelete: !s.deletionProtection, tags: s.tags }, at("registry").opts);
  const image = new EngineImage(at("engine-image").name, {
    repository: registry.facts.repository,
    platform: s.architecture === "arm64" ? "linux/arm64" : "linux/amd64",
    registry: { server: registry.facts.server, username: registry.facts.username, password: registry.facts.password },
  }, at("engine-image").opts);
  // Keyless (postgres.auth=aws-iam): no password exists, so no secret.
  const secret = s.postgres.password === undefined ? undefined : new PasswordSecret(at("postgres-password").name, {
    baseName: s.baseName,
    password: s.postgres.password,
    recoveryWindowInDays: s.deletionProtection ? 30 : 0,
    tags: s.tags,
  }, at("postgres-password").opts);
  // sink: {kind: kafka} without bootstrap: one MSK Serverless cluster per stack in the engines' network, IAM access per engine.
  let kafka: KafkaCluster | undefined;
  if (s.sink.kind === "kafka" && !s.sink.bootstrap) {
    const network = s.aws!.network;
    const configured = network.subnetIds.length > 0;
    const vpcId = configured ? pulumi.output(network.vpcId!) : aws.ec2.getVpcOutput({ default: true }, opts).id;
    const subnetIds = configured
      ? pulumi.output(network.subnetIds)
      : aws.ec2.getSubnetsOutput({ filters: [{ name: "vpc-id", values: [vpcId] }, { name: "default-for-az", values: ["true"] }] }, opts).ids;
    kafka = new KafkaCluster(at("kafka").name, { baseName: s.baseName, region: s.aws!.region, accountId, vpcId, subnetIds, topicPrefix: s.sink.topicPrefix, tags: s.tags }, at("kafka").opts);
  }
  // sink.auth scram-*: the password in Secrets Manager beside the PostgreSQL one, shared by the engines.
  const kafkaPassword = s.kafkaPassword
    ? new KafkaPasswordSecret(at("kafka-password").name, { baseName: s.baseName, password: s.kafkaPassword, recoveryWindowInDays: s.deletionProtection ? 30 : 0, tags: s.tags }, at("kafka-password").opts)
    : undefined;
  const engines = engineSpecs(s).map(({ pipeline, settings }) => {
    const child = (legacy: string) => engineChildOf(parent, name, legacy, pipeline);
    const logs = new EngineLogs(child("logs").name, { baseName: settings.baseName, retentionDays: s.logRetentionDays, tags: s.tags }, child("logs").opts);
    const service = new EngineService(child("engine").name, {
      settings,
      accountId,
      imageRef: image.ref,
      repositoryArn: registry.repositoryArn,
      bucketArn: storage.bucketArn,
      sinkUrl: storage.url,
      secretArn: secret?.arn,
      secretVersionId: secret?.versionId,
      logGroupName: logs.name,
      logGroupArn: logs.arn,
      // In the pipelines form each engine may write only its own tables' topics (and the shared state and schema topics).
      kafka: kafka ? { bootstrap: kafka.bootstrap, policy: kafka.enginePolicy(pipeline ? settings.postgres.tables : undefined) } : kafkaPassword ? { password: { arn: kafkaPassword.arn, versionId: kafkaPassword.versionId } } : undefined,
    }, child("engine").opts);
    if (kafka) connectEngineToKafka(child("engine").name, service.securityGroupId, kafka, parent);
    return { pipeline, settings, logs, service };
  });
  if (s.alerts) {
    new EngineAlerts(at("alerts").name, {
      baseName: s.baseName,
      engines: engines.map(({ pipeline, settings, logs, service }) => ({
        label: pipeline,
        baseName: settings.baseName,
        clusterName: service.clusterName,
        serviceName: service.name,
        logGroupName: logs.name,
        source: slotSource(settings.postgres),
        slot: settings.postgres.slot,
      })),
      emails: s.alerts.emails,
      thresholds: s.alerts.thresholds,
      tags: s.tags,
    }, at("alerts").opts);
  }

  const landing: LandingFacts = {
    cloud: "aws",
    url: storage.url,
    rootUrl: storage.rootUrl,
    prefix: s.landingPrefix,
    region: s.aws!.region,
    tags: s.tags,
    aws: { bucketName: storage.bucketName, bucketArn: storage.bucketArn, accountId },
  };
  const region = s.aws!.region;
  const facts = ({ logs, service, settings }: (typeof engines)[number]): ServiceFacts => ({
    name: service.name,
    id: service.id,
    logLocation: pulumi.interpolate`cloudwatch:${region}:${logs.name}`,
    runtime: pulumi.interpolate`ecs:${region}:${service.clusterName}`,
    securityGroupId: service.securityGroupId,
    identities: { taskRoleArn: service.taskRoleArn, executionRoleArn: service.executionRoleArn, ...(service.databaseUserArn ? { databaseUserArn: service.databaseUserArn } : {}) },
    ...(service.databaseUserArn ? {
      databaseLogin: {
        user: pulumi.output(settings.postgres.user),
        setup: pulumi.output(databaseLoginSetup("aws-iam", settings.postgres.user)),
      },
    } : {}),
    commands: {
      tailLogs: pulumi.interpolate`aws logs tail ${logs.name} --follow --region ${region}`,
      checkHealth: pulumi.interpolate`aws ecs describe-services --cluster ${service.clusterName} --services ${service.name} --region ${region} --query "services[0].{status:status,running:runningCount,desired:desiredCount,rollout:deployments[0].rolloutState}"`,
    },
  });
  const serviceFacts = facts(engines[0]);
  const pipelines = s.pipelines ? Object.fromEntries(engines.map((e) => [e.pipeline!, facts(e)])) : undefined;
  return { landing, imageRef: image.ref, service: serviceFacts, pipelines, kafka: kafkaFacts(s.sink, kafka?.bootstrap) };
}
