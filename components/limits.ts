/**
 * The one table of the cloud APIs' documented limits this program relies on: name lengths and
 * character sets, probe thresholds, CPU/memory pairs, retention values. The program builds its
 * values from these rows (checkName, the size checks in settings.ts, the retention helpers), and
 * tests/pulumi/limits.test.ts applies RESOURCE_LIMITS to every resource each cloud and stack file
 * registers, so a value a real `pulumi up` would have rejected fails a test instead. Mocks accept
 * anything; this table is what stands in for the clouds' validation. Each row cites its source.
 */
import * as pulumi from "@pulumi/pulumi";

/** An inclusive whole-number range. */
export interface Range {
  min: number;
  max: number;
}

const pgRole = (n: string): boolean => n.length >= 1 && Buffer.byteLength(n) <= 63;
const rdsResourceId = (n: string): boolean => /^(db|cluster)-[A-Z0-9]{1,64}$/.test(n);

export const NAME_RULES = {
  // https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html (general purpose buckets)
  /** S3: 3-63, lower-case letters, digits, hyphens and dots, alnum at both ends, not an IP, no reserved prefix or suffix. */
  s3Bucket: (n: string) => /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(n) && !n.includes("..") && !/^\d+\.\d+\.\d+\.\d+$/.test(n)
    && !["xn--", "sthree-", "amzn-s3-demo-"].some((p) => n.startsWith(p)) && !["-s3alias", "--ol-s3", ".mrap", "--x-s3"].some((x) => n.endsWith(x)),
  // https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules (Microsoft.Storage)
  /** Azure storage account: 3-24 lower-case letters and digits. */
  storageAccount: (n: string) => /^[a-z0-9]{3,24}$/.test(n),
  // https://learn.microsoft.com/dotnet/api/microsoft.azure.powershell.cmdlets.storage.models.storageidentity.containername:
  // 3-63 of numbers, lower-case letters and dashes, every dash between a letter or number
  /** Azure blob container: 3-63, lower-case letters, digits, single hyphens, alnum first. */
  blobContainer: (n: string) => /^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/.test(n),
  // https://azure.github.io/PSRule.Rules.Azure/en/rules/Azure.ACR.Name (5-50 alphanumerics)
  /** ACR: 5-50 letters and digits. */
  acr: (n: string) => /^[a-zA-Z0-9]{5,50}$/.test(n),
  // resource-name-rules (Microsoft.KeyVault/vaults): 3-24, alphanumerics and hyphens, letter first, no consecutive hyphens
  /** Key Vault: 3-24, letters, digits, single hyphens, letter first, no hyphen last. */
  keyVault: (n: string) => /^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$/.test(n),
  // resource-name-rules (Microsoft.KeyVault/vaults/secrets): 1-127, alphanumerics and hyphens
  keyVaultSecret: (n: string) => /^[a-zA-Z0-9-]{1,127}$/.test(n),
  // resource-name-rules (Microsoft.App/containerApps, managedEnvironments): 2-32, lower-case alnum and hyphens, letter first, alnum last
  /** Container App / environment: 2-32 lower-case letters, digits, hyphens; letter first, alnum last. */
  containerApp: (n: string) => /^[a-z](?!.*--)[a-z0-9-]{0,30}[a-z0-9]$/.test(n),
  // https://learn.microsoft.com/azure/azure-monitor/logs/quick-create-workspace: 4-63, letters, digits, '-', not first or last
  /** Log Analytics workspace: 4-63, letters, digits, hyphens, alnum at both ends. */
  logAnalytics: (n: string) => /^[A-Za-z0-9][A-Za-z0-9-]{2,61}[A-Za-z0-9]$/.test(n),
  // resource-name-rules (resourcegroups): 1-90, alphanumerics, underscores, parentheses, hyphens, periods; not ending in a period
  /** Resource group: 1-90, letters, digits, _ - . ( ), not ending in a dot. */
  resourceGroup: (n: string) => /^[-\w.()]{0,89}[-\w()]$/.test(n),
  // resource-name-rules (Microsoft.ManagedIdentity/userAssignedIdentities): 3-128, alphanumerics, hyphens, underscores, alnum first
  /** User-assigned identity: 3-128, letters, digits, - _, alnum first. */
  managedIdentity: (n: string) => /^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$/.test(n),
  // https://cloud.google.com/storage/docs/buckets#naming (3-63 of a-z 0-9 - _ ., alnum at both ends, not an IP, no goog/google)
  /** GCS: 3-63, lower-case letters, digits, - _ ., alnum at both ends, no "goog" prefix or "google". */
  gcsBucket: (n: string) => /^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/.test(n) && !n.startsWith("goog") && !n.includes("google") && !/^\d+\.\d+\.\d+\.\d+$/.test(n),
  // https://cloud.google.com/iam/reference/rest/v1/projects.serviceAccounts/create: 6-30, [a-z]([-a-z0-9]*[a-z0-9])
  /** GCP service account id: 6-30, lower-case letter first, letters digits hyphens, alnum last. */
  gcpServiceAccount: (n: string) => /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/.test(n),
  // https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services (service id: up to 49, RFC 1035 label)
  /** Cloud Run service: up to 49, lower-case letter first, letters digits hyphens, alnum last. */
  cloudRun: (n: string) => /^[a-z][a-z0-9-]{0,47}[a-z0-9]$/.test(n),
  // Artifact Registry repository id (letter first, lower-case, digits, hyphens, up to 63), Secret Manager secret id
  // (up to 255 of [A-Za-z0-9_-]), log bucket id and sink name (up to 100): the strictest of them, used for all three.
  /** Artifact Registry repository / Secret Manager secret / log bucket id / sink. */
  gcpId: (n: string) => /^[a-z][a-z0-9-]{0,61}[a-z0-9]$/.test(n),
  // https://docs.cloud.google.com/logging/docs/reference/v2/rest/v2/projects.exclusions: up to 100 of letters, digits, _ - ., alnum first
  logExclusion: (n: string) => /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/.test(n),
  // ECS cluster/service/family (up to 255 of letters, digits, - _), IAM role (64 of [\w+=,.@-]): the strictest of them.
  /** ECS cluster/service, ECR repository, IAM role (<=64). */
  awsName: (n: string) => /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$/.test(n),
  // https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html (2-256, lower-case path components)
  ecrRepository: (n: string) => /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/.test(n) && n.length >= 2 && n.length <= 256,
  // https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html: 1-512 of letters, digits and /_+=.@-,
  // and not ending in a hyphen plus six characters (Secrets Manager's own ARN suffix)
  secretsManager: (n: string) => /^[A-Za-z0-9/_+=.@-]{1,512}$/.test(n) && !/-[A-Za-z0-9]{6}$/.test(n),
  // https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html: 1-512 of a-z A-Z 0-9 _ - / .
  logGroup: (n: string) => /^[\w/.-]{1,512}$/.test(n),
  // https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSecurityGroup.html: up to 255, not starting with sg-
  // https://docs.aws.amazon.com/msk/1.0/apireference-v2/v2-clusters.html (CreateClusterV2 clusterName: 1-64, pattern ^[0-9A-Za-z][0-9A-Za-z-]{0,63}$)
  // https://cloud.google.com/managed-kafka/docs/create-cluster (cluster ID: 1-63, lower-case letters, digits and hyphens, letter first, no hyphen last)
  /** Managed Kafka cluster id: 1-63 lower-case letters, digits, hyphens; letter first, alnum last. */
  gcpKafkaCluster: (n: string) => /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/.test(n),
  // resource-name-rules (Microsoft.EventHub/namespaces): 6-50, alphanumerics and hyphens, letter first, letter or digit last;
  // https://learn.microsoft.com/rest/api/eventhub/namespaces/create-or-update: not ending in -sb or -mgmt (reserved)
  /** Event Hubs namespace: 6-50 letters, digits, hyphens; letter first, alnum last, no -sb/-mgmt ending. */
  eventHubsNamespace: (n: string) => /^[a-zA-Z][a-zA-Z0-9-]{4,48}[a-zA-Z0-9]$/.test(n) && !/-(sb|mgmt)$/i.test(n),
  // resource-name-rules (Microsoft.EventHub/namespaces/eventhubs): 1-256, alphanumerics, periods, hyphens, underscores,
  // a letter or number at both ends (https://learn.microsoft.com/azure/event-hubs/event-hubs-quotas: 256 characters)
  /** Event hub (a Kafka topic of the namespace): 1-256 of letters, digits, . _ -, alnum at both ends. */
  eventHub: (n: string) => /^[A-Za-z0-9]([A-Za-z0-9._-]{0,254}[A-Za-z0-9])?$/.test(n),
  /** MSK (Serverless) cluster: 1-64 letters, digits and hyphens, alnum first. */
  mskCluster: (n: string) => /^[0-9A-Za-z][0-9A-Za-z-]{0,63}$/.test(n),
  securityGroup: (n: string) => /^[\w .:/()#,@[\]+=&;{}!$*-]{1,255}$/.test(n) && !n.startsWith("sg-"),
  // https://docs.aws.amazon.com/sns/latest/api/API_CreateTopic.html: up to 256 of letters, digits, - and _
  snsTopic: (n: string) => /^[A-Za-z0-9_-]{1,256}$/.test(n),
  // https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html: AlarmName 1-255
  cloudWatchAlarm: (n: string) => n.length >= 1 && n.length <= 255,
  // https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutMetricFilter.html: filterName 1-512 of [^:*]
  logMetricFilter: (n: string) => /^[^:*]{1,512}$/.test(n),
  // https://cloud.google.com/logging/docs/reference/v2/rest/v2/projects.metrics: up to 100 of A-Z a-z 0-9 _-.,+!*',()%/, not starting with /
  gcpLogMetric: (n: string) => /^[A-Za-z0-9_.,+!*'()%-][A-Za-z0-9_.,+!*'()%/-]{0,99}$/.test(n),
  // https://learn.microsoft.com/azure/azure-monitor/alerts/action-groups: short name at most 12 characters
  actionGroupShortName: (n: string) => /^.{1,12}$/.test(n),
  // resource-name-rules (Microsoft.Insights/actionGroups 1-260, metricAlerts 1-260): no < > * % { } & : \ ? + / # |
  azureInsights: (n: string) => /^[^<>*%{}&:\\?+/#|]{1,260}$/.test(n) && !/[. ]$/.test(n),
  // https://docs.docker.com/engine/api/ (container names: [a-zA-Z0-9][a-zA-Z0-9_.-]+)
  /** Docker container name. */
  docker: (n: string) => /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(n),
  // https://docs.docker.com/reference/cli/docker/image/tag/: up to 128 of [\w.-], not starting with . or -
  imageTag: (n: string) => /^\w[\w.-]{0,127}$/.test(n),
  // ---- keyless database login (postgres.auth) ----
  // https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-IDENTIFIERS: NAMEDATALEN-1 = 63 bytes;
  // a longer role name is truncated, so the identity could never log in as itself
  /** A PostgreSQL role name: at most 63 bytes. */
  pgRole,
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.IAMDBAuth.IAMPolicy.html: the DB instance's
  // DbiResourceId (e.g. db-12ABC34DEFG5HIJ6KLMNOP78QR) or the Aurora cluster's DbClusterResourceId (cluster-ABCDEFGHIJKL01234):
  // db- or cluster-, then upper-case letters and digits; not the instance or cluster name
  /** RDS/Aurora resource id: `db-` or `cluster-` and upper-case letters and digits. */
  rdsResourceId,
  // https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrdsiamauthentication.html (db-user):
  // arn:${Partition}:rds-db:${Region}:${Account}:dbuser:${DbiResourceId}/${DbUserName}
  /** The rds-db:connect resource of exactly one database user. */
  rdsDbUserArn: (n: string) => {
    const m = /^arn:aws(-cn|-us-gov)?:rds-db:[a-z]{2}(-[a-z]+)+-\d:\d{12}:dbuser:([^/]+)\/(.+)$/.exec(n);
    return Boolean(m) && rdsResourceId(m![3]) && pgRole(m![4]) && !/[*?]/.test(m![4]);
  },
  // https://cloud.google.com/sql/docs/postgres/add-manage-iam-users: a service account's database user is its e-mail
  // without .gserviceaccount.com, i.e. <account id>@<project id>.iam (account id 6-30, project id 6-30 characters)
  /** Cloud SQL IAM user of a service account: `<account id>@<project id>.iam`, at most 63 bytes (a role name). */
  cloudSqlIamUser: (n: string) => /^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z][a-z0-9-]{4,28}[a-z0-9]\.iam$/.test(n) && pgRole(n),
  // https://learn.microsoft.com/azure/postgresql/flexible-server/security-entra-manage-users (pgaadauth_create_principal:
  // roleName is the managed identity's name): the identity's name, and a role name
  // https://cloud.google.com/sql/docs/postgres/create-instance: an instance ID is lower-case letters, numbers and hyphens,
  // starts with a letter (and, like every Cloud SQL resource name here, ends with a letter or digit)
  /** Cloud SQL instance ID (the name, not the connection name project:region:instance). */
  cloudSqlInstance: (n: string) => /^[a-z]([a-z0-9-]{0,94}[a-z0-9])?$/.test(n),
  /** Entra principal of a user-assigned managed identity on Azure Database for PostgreSQL: its resource name, a role name. */
  entraIdentityRole: (n: string) => /^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$/.test(n) && pgRole(n),
} as const;


export const LIMITS = {
  /**
   * Alert thresholds a user may choose: only values every cloud's alerting accepts (the rows below
   * for CloudWatch alarms, Azure log search alerts and Cloud Monitoring conditions). Restart windows
   * are whole minutes that are a CloudWatch period (a multiple of 60 s, at most a day with one
   * evaluation period), an Azure log search window (1 minute to 2 days, not shorter than the 5-minute
   * frequency used) and a Cloud Monitoring alignment period (at least 60 s).
   */
  alerts: {
    thresholds: {
      replicationLagMiB: { min: 1, max: 1_048_576 },
      restarts: { min: 2, max: 100 },
      restartWindowMinutes: [5, 10, 15, 30, 45, 60, 120, 180, 240, 360, 720, 1440],
      landingStallMinutes: { min: 5, max: 1440 },
    },
    /** Minutes a replication lag must stay above its threshold before it pages. */
    lagSustainedMinutes: 5,
  },
  aws: {
    // https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html: Period 10, 20, 30 or a
    // multiple of 60; Period × EvaluationPeriods at most 7 days, and at most 1 day when Period is under an hour;
    // DatapointsToAlarm 1..EvaluationPeriods
    alarmEvaluationSeconds: { max: 604_800, maxBelowHourPeriod: 86_400 },
    // https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_MetricTransformation.html: up to 3
    // dimensions, and no defaultValue together with dimensions
    metricFilterDimensionsMax: 3,
    // https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html ("Possible values are")
    logRetentionDays: [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653],
    // https://docs.aws.amazon.com/cdk/api/latest/python/aws_cdk.aws_ecs/HealthCheck.html (ECS container health check)
    healthCheck: { interval: { min: 5, max: 300 }, timeout: { min: 2, max: 60 }, retries: { min: 1, max: 10 }, startPeriod: { min: 0, max: 300 } },
    // https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html (stopTimeout: at most 120 s on Fargate)
    stopTimeoutSeconds: { min: 2, max: 120 },
    // https://docs.aws.amazon.com/msk/latest/developerguide/port-info.html: SASL/IAM clients connect on 9098 (inside the VPC)
    mskIamPort: 9098,
    // https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DeleteSecret.html: 0 (force) or 7-30
    secretRecoveryWindowDays: { min: 7, max: 30 },
    // https://docs.aws.amazon.com/AmazonECS/latest/userguide/task-cpu-memory-error.html: CPU units -> [min, max, step] MiB
    // (0.25 vCPU allows exactly 512, 1024 and 2048; 0.5 vCPU 1-4 GB; 1 vCPU 2-8 GB)
    fargateMemoryMiB: {
      256: [512, 2048, 512], 512: [1024, 4096, 1024], 1024: [2048, 8192, 1024], 2048: [4096, 16384, 1024],
      4096: [8192, 30720, 1024], 8192: [16384, 61440, 4096], 16384: [32768, 122880, 8192],
    } as Record<number, [number, number, number]>,
  },
  azure: {
    // ContainerAppProbe in @pulumi/azure-native (from the Microsoft.App API spec): failureThreshold 1-10,
    // initialDelaySeconds 1-60, periodSeconds 1-240, timeoutSeconds 1-240, successThreshold 1 for liveness/startup;
    // https://learn.microsoft.com/azure/container-apps/health-probes
    probe: { failureThreshold: { min: 1, max: 10 }, periodSeconds: { min: 1, max: 240 }, timeoutSeconds: { min: 1, max: 240 }, initialDelaySeconds: { min: 1, max: 60 } },
    // https://docs.azure.cn/container-apps/workload-profiles-overview (Consumption profile: 0.25-4 vCPU, 0.5-8 GiB, per replica)
    // in steps of 0.25 vCPU with 2 GiB per vCPU (https://learn.microsoft.com/azure/container-apps/containers#allocations)
    cpu: { min: 0.25, max: 4, step: 0.25 },
    memoryGiBPerCpu: 2,
    // https://learn.microsoft.com/azure/azure-monitor/logs/data-retention-configure (PerGB2018: 30 days up to 730 interactive)
    logRetentionDays: { min: 30, max: 730 },
    // keyvault VaultProperties.softDeleteRetentionInDays in @pulumi/azure-native: "It accepts >=7 and <=90"
    keyVaultSoftDeleteDays: { min: 7, max: 90 },
    // https://learn.microsoft.com/azure/storage/blobs/lifecycle-management-overview (daysAfterModificationGreaterThan 0-99999)
    lifecycleDays: { min: 0, max: 99999 },
    // https://docs.azure.cn/container-apps/quotas (replicas per revision up to 1000 with the CLI/API)
    replicas: { min: 0, max: 1000 },
    // https://learn.microsoft.com/azure/azure-monitor/alerts/alerts-create-log-alert-rule: frequency of evaluation from one
    // minute to one day, query time range at most two days, window not shorter than the frequency; severity 0-4
    // (ScheduledQueryRule in @pulumi/azure-native)
    logAlertFrequencyMinutes: { min: 1, max: 1440 },
    logAlertWindowMinutes: { min: 1, max: 2880 },
    logAlertTimeAggregations: ["Count", "Average", "Minimum", "Maximum", "Total"],
    logAlertOperators: ["Equals", "GreaterThan", "GreaterThanOrEqual", "LessThan", "LessThanOrEqual"],
    /**
     * Event Hubs for the Kafka sink. https://learn.microsoft.com/azure/event-hubs/event-hubs-quotas ("Basic vs. standard vs.
     * premium vs. dedicated tiers"): event hubs per namespace 10 (Standard) / 100 (Premium); partitions per event hub 32 /
     * 100, and at most 200 per processing unit (Premium); retention 7 days / 90 days; publication size 1 MB. The Kafka
     * endpoint is in every tier but Basic (https://learn.microsoft.com/azure/event-hubs/azure-event-hubs-apache-kafka-overview),
     * and so is log compaction (https://learn.microsoft.com/azure/event-hubs/log-compaction: "not supported in the basic
     * tier"), which the state and schema topics need; Standard is therefore the smallest tier the sink can use.
     * Capacity (SkuArgs.capacity in @pulumi/azure-native): 1-20 throughput units (Standard); processing units 1, 2, 4, 8
     * (the values both the quotas page, 1/2/4/8/16, and the API's "0 to 10 premium units" accept).
     */
    eventHubs: {
      Standard: { eventHubsPerNamespace: 10, partitionsPerEventHub: 32, retentionHoursMax: 168, capacity: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20] },
      Premium: { eventHubsPerNamespace: 100, partitionsPerEventHub: 100, retentionHoursMax: 2160, capacity: [1, 2, 4, 8], partitionsPerCapacityUnit: 200 },
      /** The data event hubs' retention unless sink.eventHubs.retentionHours says otherwise: the longest Standard allows. */
      defaultRetentionHours: 168,
      /** How long a compacted event hub keeps a tombstone (RetentionDescription.tombstoneRetentionTimeInHours): a day, for consumers that rebuild from the start. */
      tombstoneRetentionHours: 24,
      /** The Kafka endpoint of a namespace: `<namespace>.servicebus.windows.net:9093` (SASL_SSL). */
      kafkaPort: 9093,
    },
  },
  gcp: {
    // https://cloud.google.com/managed-kafka/docs/create-cluster#properties: at least 3 vCPUs, 1-8 GiB of memory per vCPU
    managedKafka: { minVcpu: 3, memoryGiBPerVcpu: { min: 1, max: 8 } },
    // https://docs.cloud.google.com/run/docs/configuring/healthchecks and the GoogleCloudRunV2Probe reference: period 1-240 for
    // startup (1-3600 for liveness/readiness), timeout 1..period, failureThreshold >= 1, and a startup probe must succeed
    // within failureThreshold × periodSeconds <= 240 s.
    probe: {
      startupPeriodSeconds: { min: 1, max: 240 },
      periodSeconds: { min: 1, max: 3600 },
      timeoutSeconds: { min: 1, max: 3600 },
      failureThreshold: { min: 1, max: 1000 },
      startupWindowSeconds: 240,
    },
    // https://cloud.google.com/run/docs/configuring/services/cpu: 1, 2, 4, 6 or 8 vCPU with CPU always allocated;
    // https://cloud.google.com/run/docs/configuring/services/memory-limits: 512 MiB (second generation) to 32 GiB, and more
    // than 4/8/16/24 GiB needs at least 2/4/6/8 vCPU
    cpuAlwaysAllocated: [1, 2, 4, 6, 8],
    memoryMiB: { min: 512, max: 32768 },
    minCpuAboveMemoryMiB: [[24576, 8], [16384, 6], [8192, 4], [4096, 2]] as [number, number][],
    // https://cloud.google.com/logging/docs/reference/v2/rest/v2/locations.buckets (retentionDays: at least 1) and
    // https://cloud.google.com/logging/quotas (custom retention up to 3650 days)
    logRetentionDays: { min: 1, max: 3650 },
    // https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.alertPolicies: displayName at most 512 characters;
    // condition durations are whole seconds (at most a day)
    alertDisplayNameMax: 512,
    alertDurationSeconds: { min: 0, max: 86400 },
    // https://cloud.google.com/monitoring/alerts/concepts-indepth: an alerting policy can contain up to 6 conditions;
    // https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.alertPolicies: alignment periods are whole seconds,
    // at least 60 s for alerting (this program never uses more than a day)
    alertConditionsMax: 6,
    alignmentPeriodSeconds: { min: 60, max: 86_400 },
    // https://cloud.google.com/logging/docs/reference/v2/rest/v2/projects.metrics: filter at most 20000 characters; a
    // DISTRIBUTION metric needs a DELTA kind, a value extractor and bucket options
    logMetricFilterMax: 20_000,
    // https://docs.cloud.google.com/run/docs/configuring/healthchecks: readiness probes are Preview (launchStage BETA)
    readinessProbeLaunchStages: ["BETA", "ALPHA"],
    // https://cloud.google.com/sql/docs/postgres/iam-logins: logging in with IAM database authentication needs
    // cloudsql.instances.login (roles/cloudsql.instanceUser); roles/cloudsql.client (cloudsql.instances.connect) is what a
    // Cloud SQL connector or Auth Proxy needs. Cloud SQL has no instance-level IAM policy: both are project bindings,
    // limited to one instance by an IAM condition (resource.name == 'projects/P/instances/I' && resource.type ==
    // 'sqladmin.googleapis.com/Instance'; github.com/terraform-google-modules/terraform-docs-samples cloud_sql/instance_iam_condition).
    cloudSqlIamLoginRoles: ["roles/cloudsql.instanceUser", "roles/cloudsql.client"],
    // Every project-level role this program grants an engine: the Cloud SQL login above and the Managed Kafka client
    // (components/gcp/kafka.ts); anything else on the project would be a wider grant than the engine needs.
    engineProjectRoles: ["roles/cloudsql.instanceUser", "roles/cloudsql.client", "roles/managedkafka.client"],
  },
} as const;

/** `name` if it satisfies the cloud's rule for `kind`, else the deployment stops with what to shorten. */
export function checkName(kind: keyof typeof NAME_RULES, name: string): string {
  if (!NAME_RULES[kind](name)) throw new pulumi.RunError(`generated ${kind} name ${JSON.stringify(name)} is invalid; shorten postgres-cdc-multicloud:namePrefix or the stack name`);
  return name;
}

/** The CloudWatch retention for `days`: the next allowed value up (the longest one beyond it). */
export function cloudWatchRetention(days: number): number {
  const allowed = LIMITS.aws.logRetentionDays;
  return allowed.find((d) => d >= days) ?? allowed[allowed.length - 1];
}

/** `days` brought into Log Analytics' allowed retention. */
export function logAnalyticsRetention(days: number): number {
  const { min, max } = LIMITS.azure.logRetentionDays;
  return Math.min(max, Math.max(min, days));
}

// ---- checks of registered resources (the tests run them on every resource of every run) ----

type Problems = string[];
// Registered inputs are the providers' JSON, of any shape; each check reads only the fields it knows.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Inputs = Record<string, any>;

function range(problems: Problems, what: string, value: unknown, r: Range): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isInteger(value) || value < r.min || value > r.max) problems.push(`${what} = ${JSON.stringify(value)} is outside ${r.min}-${r.max}`);
}

function name(problems: Problems, what: string, value: unknown, kind: keyof typeof NAME_RULES): void {
  if (typeof value !== "string" || !NAME_RULES[kind](value)) problems.push(`${what} ${JSON.stringify(value)} breaks the ${kind} naming rule`);
}

/** What is wrong with a CPU/memory pair: which of the two, why (a "must …" phrase), and a valid value for it. */
export interface SizeProblem {
  of: "cpu" | "memory";
  what: string;
  valid: number;
}

/** Fargate's CPU/memory pairs (LIMITS.aws.fargateMemoryMiB); undefined when the pair is valid. */
export function fargateSizeProblem(cpu: number, memoryMiB: number): SizeProblem | undefined {
  const units = cpu * 1024;
  const r = LIMITS.aws.fargateMemoryMiB[units];
  if (!r) return { of: "cpu", what: `must be a Fargate size: ${Object.keys(LIMITS.aws.fargateMemoryMiB).map((u) => Number(u) / 1024).join(", ")} vCPU`, valid: 0.25 };
  const [min, max, step] = r;
  const ok = units === 256 ? [512, 1024, 2048].includes(memoryMiB) : memoryMiB >= min && memoryMiB <= max && memoryMiB % step === 0;
  return ok ? undefined : { of: "memory", what: `must be from ${min} to ${max} MiB in steps of ${step} for ${cpu} vCPU on Fargate`, valid: min };
}

/** Container Apps' CPU/memory pairs (LIMITS.azure); undefined when the pair is valid. */
export function containerAppSizeProblem(cpu: number, memoryMiB: number): SizeProblem | undefined {
  const { min, max, step } = LIMITS.azure.cpu;
  if (!(cpu >= min && cpu <= max && (cpu / step) % 1 === 0)) return { of: "cpu", what: `must be ${min} to ${max} vCPU in steps of ${step} on Container Apps`, valid: min };
  const expected = cpu * LIMITS.azure.memoryGiBPerCpu * 1024;
  return memoryMiB === expected ? undefined : { of: "memory", what: `must be ${expected} (${LIMITS.azure.memoryGiBPerCpu} GiB per vCPU) for ${cpu} vCPU on Container Apps`, valid: expected };
}

/** Cloud Run's CPU/memory with CPU always allocated (LIMITS.gcp); undefined when valid. */
export function cloudRunSizeProblem(cpu: number, memoryMiB: number): SizeProblem | undefined {
  const allowed = LIMITS.gcp.cpuAlwaysAllocated as readonly number[];
  if (!allowed.includes(cpu)) return { of: "cpu", what: `must be ${allowed.join(", ")} vCPU on Cloud Run`, valid: 1 };
  const { min, max } = LIMITS.gcp.memoryMiB;
  if (!(memoryMiB >= min && memoryMiB <= max)) return { of: "memory", what: `must be from ${min} to ${max} MiB on Cloud Run`, valid: min };
  const needed = LIMITS.gcp.minCpuAboveMemoryMiB.find(([above]) => memoryMiB > above);
  return needed && cpu < needed[1] ? { of: "cpu", what: `must be at least ${needed[1]} vCPU for more than ${needed[0] / 1024} GiB on Cloud Run`, valid: needed[1] } : undefined;
}

const mebibytes = (quantity: string): number => {
  const m = /^(\d+(?:\.\d+)?)(Mi|Gi)$/.exec(quantity);
  if (!m) return NaN;
  return Number(m[1]) * (m[2] === "Gi" ? 1024 : 1);
};

function ecsTaskDefinition(i: Inputs): Problems {
  const p: Problems = [];
  name(p, "family", i.family, "awsName");
  const size = fargateSizeProblem(Number(i.cpu) / 1024, Number(i.memory));
  if (size) p.push(`${size.of} ${size.what} (cpu ${i.cpu}, memory ${i.memory})`);
  if (typeof i.containerDefinitions !== "string") return p; // unknown until the image is built (preview)
  for (const c of JSON.parse(i.containerDefinitions) as Inputs[]) {
    const hc = c.healthCheck ?? {};
    const l = LIMITS.aws.healthCheck;
    range(p, "healthCheck.interval", hc.interval, l.interval);
    range(p, "healthCheck.timeout", hc.timeout, l.timeout);
    range(p, "healthCheck.retries", hc.retries, l.retries);
    range(p, "healthCheck.startPeriod", hc.startPeriod, l.startPeriod);
    if (hc.timeout !== undefined && hc.interval !== undefined && hc.timeout >= hc.interval) p.push("healthCheck.timeout must be shorter than its interval");
    range(p, "stopTimeout", c.stopTimeout, LIMITS.aws.stopTimeoutSeconds);
    name(p, "awslogs-group", c.logConfiguration?.options?.["awslogs-group"], "logGroup");
  }
  return p;
}

function containerApp(i: Inputs): Problems {
  const p: Problems = [];
  name(p, "containerAppName", i.containerAppName, "containerApp");
  const scale = i.template?.scale ?? {};
  range(p, "scale.minReplicas", scale.minReplicas, LIMITS.azure.replicas);
  range(p, "scale.maxReplicas", scale.maxReplicas, LIMITS.azure.replicas);
  for (const c of i.template?.containers ?? []) {
    const size = containerAppSizeProblem(c.resources?.cpu, mebibytes(c.resources?.memory));
    if (size) p.push(`${size.of} ${size.what} (cpu ${c.resources?.cpu}, memory ${c.resources?.memory})`);
    for (const probe of c.probes ?? []) {
      const l = LIMITS.azure.probe;
      range(p, `${probe.type} failureThreshold`, probe.failureThreshold, l.failureThreshold);
      range(p, `${probe.type} periodSeconds`, probe.periodSeconds, l.periodSeconds);
      range(p, `${probe.type} timeoutSeconds`, probe.timeoutSeconds, l.timeoutSeconds);
      range(p, `${probe.type} initialDelaySeconds`, probe.initialDelaySeconds, l.initialDelaySeconds);
    }
  }
  return p;
}

function cloudRunService(i: Inputs): Problems {
  const p: Problems = [];
  name(p, "name", i.name, "cloudRun");
  // Under manual scaling the revision's own scaling limits are ignored; setting them only misleads.
  if (i.scaling?.scalingMode === "MANUAL" && i.template?.scaling !== undefined) p.push("template.scaling is set although the service scales manually (Cloud Run ignores it)");
  const l = LIMITS.gcp.probe;
  for (const c of i.template?.containers ?? []) {
    const size = cloudRunSizeProblem(Number(c.resources?.limits?.cpu), mebibytes(c.resources?.limits?.memory));
    if (size) p.push(`${size.of} ${size.what} (limits ${JSON.stringify(c.resources?.limits)})`);
    for (const kind of ["startupProbe", "livenessProbe", "readinessProbe"] as const) {
      const probe = c[kind];
      if (!probe) continue;
      range(p, `${kind}.periodSeconds`, probe.periodSeconds, kind === "startupProbe" ? l.startupPeriodSeconds : l.periodSeconds);
      range(p, `${kind}.timeoutSeconds`, probe.timeoutSeconds, l.timeoutSeconds);
      range(p, `${kind}.failureThreshold`, probe.failureThreshold, l.failureThreshold);
      if (probe.timeoutSeconds > (probe.periodSeconds ?? 10)) p.push(`${kind}.timeoutSeconds must not exceed its periodSeconds`);
    }
    const startup = c.startupProbe;
    if (startup && (startup.failureThreshold ?? 3) * (startup.periodSeconds ?? 10) > l.startupWindowSeconds) p.push(`startupProbe failureThreshold × periodSeconds exceeds ${l.startupWindowSeconds} s`);
    if (c.readinessProbe && !(LIMITS.gcp.readinessProbeLaunchStages as readonly string[]).includes(i.launchStage)) p.push(`a readiness probe needs launchStage ${LIMITS.gcp.readinessProbeLaunchStages.join(" or ")} (it is a preview feature), got ${JSON.stringify(i.launchStage)}`);
  }
  return p;
}

const noLimitedValues = (): Problems => [];

/** "300s" → 300; anything else NaN (the API takes whole seconds with an "s"). */
const seconds = (d: unknown): number => (typeof d === "string" && /^\d+s$/.test(d) ? Number(d.slice(0, -1)) : NaN);

/** ISO 8601 durations of whole minutes, hours or days ("PT5M", "PT1H", "P1D") → minutes; anything else NaN. */
export function isoMinutes(d: unknown): number {
  const m = typeof d === "string" && d !== "P" && d !== "PT" ? /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$/.exec(d) : null;
  if (!m) return NaN;
  return Number(m[1] ?? 0) * 1440 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

/** Minutes as an ISO 8601 duration ("PT30M", "PT2H", "P1D"). */
export function isoDuration(minutes: number): string {
  if (minutes % 1440 === 0) return `P${minutes / 1440}D`;
  if (minutes % 60 === 0) return `PT${minutes / 60}H`;
  return `PT${minutes}M`;
}

/** The check of a resource whose name is in `field` (rule `kind`), with `more` checks of its other fields. */
function named(field: string, kind: keyof typeof NAME_RULES, more?: (i: Inputs, p: Problems) => void): (i: Inputs) => Problems {
  return (i) => {
    const p: Problems = [];
    name(p, field, i[field], kind);
    more?.(i, p);
    return p;
  };
}

/**
 * Every resource type the program registers, with the check of the values it sends that have
 * documented limits. A type missing here fails the tests: a new resource gets its row first.
 */
export const RESOURCE_LIMITS: Record<string, (inputs: Inputs) => Problems> = {
  // AWS
  "aws:s3/bucket:Bucket": named("bucket", "s3Bucket"),
  "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": (i) => {
    const p: Problems = [];
    // https://docs.aws.amazon.com/AmazonS3/latest/API/API_LifecycleExpiration.html: Days must be a positive integer
    for (const r of i.rules ?? []) {
      range(p, `${r.id} expiration.days`, r.expiration?.days, { min: 1, max: 2_147_483_647 });
      range(p, `${r.id} noncurrentDays`, r.noncurrentVersionExpiration?.noncurrentDays, { min: 1, max: 2_147_483_647 });
    }
    return p;
  },
  "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": noLimitedValues,
  "aws:s3/bucketOwnershipControls:BucketOwnershipControls": noLimitedValues,
  "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": noLimitedValues,
  "aws:s3/bucketVersioning:BucketVersioning": noLimitedValues,
  "aws:s3/bucketPolicy:BucketPolicy": noLimitedValues,
  "aws:ecr/repository:Repository": named("name", "ecrRepository"),
  "aws:ecr/lifecyclePolicy:LifecyclePolicy": noLimitedValues,
  "aws:secretsmanager/secret:Secret": named("name", "secretsManager", (i, p) => {
    // 0 deletes at once; otherwise the documented window.
    if (i.recoveryWindowInDays !== 0) range(p, "recoveryWindowInDays", i.recoveryWindowInDays, LIMITS.aws.secretRecoveryWindowDays);
  }),
  "aws:secretsmanager/secretVersion:SecretVersion": noLimitedValues,
  "aws:cloudwatch/logGroup:LogGroup": named("name", "logGroup", (i, p) => {
    if (!(LIMITS.aws.logRetentionDays as readonly number[]).includes(i.retentionInDays)) p.push(`retentionInDays ${i.retentionInDays} is not a CloudWatch retention value`);
  }),
  "aws:iam/role:Role": named("name", "awsName"),
  "aws:iam/rolePolicy:RolePolicy": (i) => {
    const p: Problems = [];
    if (typeof i.policy !== "string") return p;
    // rds-db:connect has one resource type, a single database user (wildcards would let the role log in as anyone).
    // Statement may be one object or a list (IAM policy grammar).
    for (const st of [(JSON.parse(i.policy) as Inputs).Statement ?? []].flat() as Inputs[]) {
      if (![st.Action].flat().includes("rds-db:connect")) continue;
      for (const r of [st.Resource].flat()) name(p, "rds-db:connect Resource", r, "rdsDbUserArn");
    }
    return p;
  },
  "gcp:managedkafka/cluster:Cluster": named("clusterId", "gcpKafkaCluster", (i, p) => {
    const vcpu = Number(i.capacityConfig?.vcpuCount);
    const gib = Number(i.capacityConfig?.memoryBytes) / 1024 ** 3;
    const l = LIMITS.gcp.managedKafka;
    if (!(vcpu >= l.minVcpu)) p.push(`capacityConfig.vcpuCount must be at least ${l.minVcpu} (got ${i.capacityConfig?.vcpuCount})`);
    if (!(gib >= vcpu * l.memoryGiBPerVcpu.min && gib <= vcpu * l.memoryGiBPerVcpu.max)) p.push(`capacityConfig.memoryBytes must be ${l.memoryGiBPerVcpu.min}-${l.memoryGiBPerVcpu.max} GiB per vCPU (got ${gib} GiB for ${vcpu} vCPU)`);
    if (!(i.gcpConfig?.accessConfig?.networkConfigs?.length >= 1)) p.push("gcpConfig.accessConfig.networkConfigs needs a subnet");
  }),
  "aws:msk/serverlessCluster:ServerlessCluster": named("clusterName", "mskCluster", (i, p) => {
    // MSK Serverless supports IAM access control only, and needs subnets in at least two Availability Zones (CreateClusterV2).
    if (i.clientAuthentication?.sasl?.iam?.enabled !== true) p.push("clientAuthentication.sasl.iam.enabled must be true (MSK Serverless supports IAM access control only)");
    for (const v of i.vpcConfigs ?? []) if (Array.isArray(v.subnetIds) && v.subnetIds.length < 2) p.push("vpcConfigs.subnetIds needs at least 2 subnets (Availability Zones)");
    return p;
  }),
  "aws:ec2/securityGroup:SecurityGroup": named("name", "securityGroup", (i, p) => {
    for (const e of i.egress ?? []) { range(p, "egress.fromPort", e.fromPort, { min: 0, max: 65535 }); range(p, "egress.toPort", e.toPort, { min: 0, max: 65535 }); }
  }),
  "aws:ecs/cluster:Cluster": named("name", "awsName"),
  "aws:ecs/taskDefinition:TaskDefinition": ecsTaskDefinition,
  "aws:sns/topic:Topic": named("name", "snsTopic"),
  "aws:sns/topicSubscription:TopicSubscription": noLimitedValues,
  "aws:cloudwatch/metricAlarm:MetricAlarm": named("name", "cloudWatchAlarm", (i, p) => {
    // PutMetricAlarm: Period 10, 20, 30 or a multiple of 60; EvaluationPeriods at least 1.
    if (!([10, 20, 30].includes(i.period) || (Number.isInteger(i.period) && i.period % 60 === 0 && i.period > 0))) p.push(`period ${i.period} must be 10, 20, 30 or a multiple of 60`);
    range(p, "evaluationPeriods", i.evaluationPeriods, { min: 1, max: 100_000 });
    const l = LIMITS.aws.alarmEvaluationSeconds;
    const total = i.period * i.evaluationPeriods;
    if (total > l.max || (i.period < 3600 && total > l.maxBelowHourPeriod)) p.push(`period × evaluationPeriods = ${total} s exceeds CloudWatch's evaluation range (1 day for periods under an hour, 7 days otherwise)`);
    if (i.datapointsToAlarm !== undefined) range(p, "datapointsToAlarm", i.datapointsToAlarm, { min: 1, max: i.evaluationPeriods });
    if (!(typeof i.threshold === "number" && Number.isFinite(i.threshold))) p.push(`threshold ${i.threshold} must be a number`);
  }),
  "aws:cloudwatch/logMetricFilter:LogMetricFilter": named("name", "logMetricFilter", (i, p) => {
    const t = i.metricTransformation ?? {};
    const dimensions = Object.keys(t.dimensions ?? {});
    if (dimensions.length > LIMITS.aws.metricFilterDimensionsMax) p.push(`metricTransformation has ${dimensions.length} dimensions; at most ${LIMITS.aws.metricFilterDimensionsMax}`);
    if (dimensions.length > 0 && t.defaultValue !== undefined) p.push("metricTransformation cannot have a defaultValue together with dimensions");
    name(p, "logGroupName", i.logGroupName, "logGroup");
  }),
  "aws:ecs/service:Service": named("name", "awsName"),
  // Azure
  "azure-native:resources:ResourceGroup": named("resourceGroupName", "resourceGroup"),
  "azure-native:storage:StorageAccount": named("accountName", "storageAccount"),
  "azure-native:storage:BlobContainer": named("containerName", "blobContainer"),
  "azure-native:storage:ManagementPolicy": (i) => {
    const p: Problems = [];
    for (const r of i.policy?.rules ?? []) range(p, `${r.name} daysAfterModificationGreaterThan`, r.definition?.actions?.baseBlob?.delete?.daysAfterModificationGreaterThan, LIMITS.azure.lifecycleDays);
    return p;
  },
  "azure-native:containerregistry:Registry": named("registryName", "acr"),
  "azure-native:keyvault:Vault": named("vaultName", "keyVault", (i, p) => {
    range(p, "softDeleteRetentionInDays", i.properties?.softDeleteRetentionInDays, LIMITS.azure.keyVaultSoftDeleteDays);
  }),
  "azure-native:keyvault:Secret": named("secretName", "keyVaultSecret"),
  "azure-native:operationalinsights:Workspace": named("workspaceName", "logAnalytics", (i, p) => {
    range(p, "retentionInDays", i.retentionInDays, LIMITS.azure.logRetentionDays);
  }),
  "azure-native:managedidentity:UserAssignedIdentity": named("resourceName", "managedIdentity"),
  "azure-native:eventhub:Namespace": named("namespaceName", "eventHubsNamespace", (i, p) => {
    const tier = LIMITS.azure.eventHubs[i.sku?.name as "Standard" | "Premium"];
    if (!tier || i.sku?.tier !== i.sku?.name) p.push(`sku ${JSON.stringify(i.sku)} must be Standard or Premium (Basic has no Kafka endpoint), with tier equal to name`);
    else if (!(tier.capacity as readonly number[]).includes(i.sku.capacity)) p.push(`sku.capacity ${i.sku.capacity} is not a ${i.sku.name} capacity`);
    if (i.disableLocalAuth !== true) p.push("disableLocalAuth must be true: the engine authenticates with Microsoft Entra only, no SAS keys");
    if (i.minimumTlsVersion !== "1.2") p.push("minimumTlsVersion must be 1.2");
  }),
  "azure-native:eventhub:EventHub": named("eventHubName", "eventHub", (i, p) => {
    const r = i.retentionDescription ?? {};
    if (r.cleanupPolicy === "Compact") {
      if (r.retentionTimeInHours !== undefined) p.push("a compacted event hub takes no retentionTimeInHours (it keeps every key's latest event)");
      range(p, "tombstoneRetentionTimeInHours", r.tombstoneRetentionTimeInHours, { min: 1, max: LIMITS.azure.eventHubs.Premium.retentionHoursMax });
    } else if (r.cleanupPolicy === "Delete") {
      range(p, "retentionTimeInHours", r.retentionTimeInHours, { min: 1, max: LIMITS.azure.eventHubs.Premium.retentionHoursMax });
    } else p.push(`retentionDescription.cleanupPolicy must be Delete or Compact (got ${r.cleanupPolicy})`);
    range(p, "partitionCount", i.partitionCount, { min: 1, max: LIMITS.azure.eventHubs.Premium.partitionsPerEventHub });
  }),
  "azure-native:authorization:RoleAssignment": noLimitedValues,
  "azure-native:app:ManagedEnvironment": named("environmentName", "containerApp", (i, p) => {
    // https://learn.microsoft.com/azure/container-apps/networking: a VNet-integrated environment for UDR/NAT egress is a
    // workload-profiles environment (subnet /27 or larger, delegated to Microsoft.App/environments)
    if (i.vnetConfiguration && !(i.workloadProfiles?.length > 0)) p.push("a VNet-integrated environment must be a workload-profiles environment");
  }),
  "azure-native:app:ContainerApp": containerApp,
  "azure-native:monitor:ActionGroup": named("actionGroupName", "azureInsights", (i, p) => {
    name(p, "groupShortName", i.groupShortName, "actionGroupShortName");
    // https://learn.microsoft.com/azure/azure-monitor/alerts/action-groups: at most 1000 email actions per group
    range(p, "emailReceivers", (i.emailReceivers ?? []).length, { min: 0, max: 1000 });
  }),
  "azure-native:monitor:MetricAlert": named("ruleName", "azureInsights", (i, p) => {
    // https://learn.microsoft.com/rest/api/monitor/metric-alerts/create-or-update: severity 0-4; frequency PT1M-PT1H;
    // window PT1M-P1D, not shorter than the frequency
    range(p, "severity", i.severity, { min: 0, max: 4 });
    if (!["PT1M", "PT5M", "PT15M", "PT30M", "PT1H"].includes(i.evaluationFrequency)) p.push(`evaluationFrequency ${i.evaluationFrequency} is not an allowed frequency`);
    if (!["PT1M", "PT5M", "PT15M", "PT30M", "PT1H", "PT6H", "PT12H", "P1D"].includes(i.windowSize)) p.push(`windowSize ${i.windowSize} is not an allowed window`);
  }),
  "azure-native:monitor:ScheduledQueryRule": named("ruleName", "azureInsights", (i, p) => {
    const l = LIMITS.azure;
    range(p, "severity", i.severity, { min: 0, max: 4 });
    const frequency = isoMinutes(i.evaluationFrequency);
    const window = isoMinutes(i.windowSize);
    range(p, "evaluationFrequency (minutes)", frequency, l.logAlertFrequencyMinutes);
    range(p, "windowSize (minutes)", window, l.logAlertWindowMinutes);
    if (window < frequency) p.push(`windowSize ${i.windowSize} is shorter than evaluationFrequency ${i.evaluationFrequency}`);
    if (i.kind !== "LogAlert") p.push(`kind must be LogAlert for a windowed log search alert (got ${JSON.stringify(i.kind)})`);
    if (!(i.scopes?.length === 1)) p.push("a log search alert is scoped to exactly one workspace here");
    for (const c of i.criteria?.allOf ?? []) {
      if (!(l.logAlertTimeAggregations as readonly string[]).includes(c.timeAggregation)) p.push(`timeAggregation ${c.timeAggregation} is not one of ${l.logAlertTimeAggregations.join(", ")}`);
      if (!(l.logAlertOperators as readonly string[]).includes(c.operator)) p.push(`operator ${c.operator} is not one of ${l.logAlertOperators.join(", ")}`);
      if (c.timeAggregation !== "Count" && !c.metricMeasureColumn) p.push(`timeAggregation ${c.timeAggregation} needs a metricMeasureColumn`);
      const fp = c.failingPeriods;
      if (fp && !(fp.minFailingPeriodsToAlert >= 1 && fp.minFailingPeriodsToAlert <= fp.numberOfEvaluationPeriods)) p.push("failingPeriods.minFailingPeriodsToAlert must be 1..numberOfEvaluationPeriods");
    }
  }),
  // GCP
  "gcp:logging/metric:Metric": named("name", "gcpLogMetric", (i, p) => {
    if (typeof i.filter !== "string" || i.filter.length > LIMITS.gcp.logMetricFilterMax) p.push(`filter must be at most ${LIMITS.gcp.logMetricFilterMax} characters`);
    const d = i.metricDescriptor ?? {};
    if (d.valueType === "DISTRIBUTION") {
      if (d.metricKind !== "DELTA") p.push("a DISTRIBUTION log-based metric must be DELTA");
      if (!/^(EXTRACT|REGEXP_EXTRACT)\(/.test(i.valueExtractor ?? "")) p.push("a DISTRIBUTION log-based metric needs a valueExtractor EXTRACT(field)");
      const e = i.bucketOptions?.exponentialBuckets;
      if (!e || !(e.numFiniteBuckets > 0 && e.growthFactor > 1 && e.scale > 0)) p.push("a DISTRIBUTION log-based metric needs exponential buckets with numFiniteBuckets > 0, growthFactor > 1, scale > 0");
    }
  }),
  "gcp:projects/service:Service": noLimitedValues,
  "gcp:storage/bucket:Bucket": named("name", "gcsBucket"),
  "gcp:artifactregistry/repository:Repository": named("repositoryId", "gcpId"),
  "gcp:secretmanager/secret:Secret": named("secretId", "gcpId"),
  "gcp:secretmanager/secretVersion:SecretVersion": noLimitedValues,
  "gcp:logging/projectBucketConfig:ProjectBucketConfig": named("bucketId", "gcpId", (i, p) => {
    range(p, "retentionDays", i.retentionDays, LIMITS.gcp.logRetentionDays);
  }),
  "gcp:logging/projectSink:ProjectSink": named("name", "gcpId"),
  "gcp:logging/projectExclusion:ProjectExclusion": named("name", "logExclusion"),
  "gcp:serviceaccount/account:Account": named("accountId", "gcpServiceAccount"),
  "gcp:storage/bucketIAMMember:BucketIAMMember": noLimitedValues,
  "gcp:secretmanager/secretIamMember:SecretIamMember": noLimitedValues,
  "gcp:projects/iAMMember:IAMMember": (i) => {
    const p: Problems = [];
    if (!(LIMITS.gcp.engineProjectRoles as readonly string[]).includes(i.role)) p.push(`role ${i.role} is not one of the project roles this program grants (${LIMITS.gcp.engineProjectRoles.join(", ")})`);
    // An instance-scoped grant is an IAM condition on the instance's resource name (Cloud SQL's documented form).
    if (i.condition !== undefined && !/^resource\.name == 'projects\/[a-z][a-z0-9-]{4,28}[a-z0-9]\/instances\/[a-z]([a-z0-9-]{0,94}[a-z0-9])?' && resource\.type == 'sqladmin\.googleapis\.com\/Instance'$/.test(i.condition?.expression ?? "")) p.push(`condition ${JSON.stringify(i.condition?.expression)} is not a Cloud SQL instance condition`);
    if (typeof i.member === "string" && !/^serviceAccount:[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z][a-z0-9-]{4,28}[a-z0-9]\.iam\.gserviceaccount\.com$/.test(i.member)) p.push(`member ${i.member} is not a service account of this project`);
    return p;
  },
  "gcp:cloudrunv2/service:Service": cloudRunService,
  "gcp:monitoring/notificationChannel:NotificationChannel": noLimitedValues,
  "gcp:monitoring/alertPolicy:AlertPolicy": (i) => {
    const p: Problems = [];
    if (!(typeof i.displayName === "string" && i.displayName.length >= 1 && i.displayName.length <= LIMITS.gcp.alertDisplayNameMax)) p.push(`displayName must be 1-${LIMITS.gcp.alertDisplayNameMax} characters`);
    const conditions = i.conditions ?? [];
    if (conditions.length < 1 || conditions.length > LIMITS.gcp.alertConditionsMax) p.push(`an alert policy has 1-${LIMITS.gcp.alertConditionsMax} conditions (got ${conditions.length})`);
    if (!["OR", "AND", "AND_WITH_MATCHING_RESOURCE"].includes(i.combiner)) p.push(`combiner ${i.combiner} is not OR, AND or AND_WITH_MATCHING_RESOURCE`);
    for (const c of conditions) {
      const condition = c.conditionThreshold ?? c.conditionAbsent;
      range(p, `${c.displayName} duration (s)`, seconds(condition?.duration), LIMITS.gcp.alertDurationSeconds);
      for (const a of condition?.aggregations ?? []) range(p, `${c.displayName} alignmentPeriod (s)`, seconds(a.alignmentPeriod), LIMITS.gcp.alignmentPeriodSeconds);
    }
    return p;
  },
  // Docker, random
  "docker:index/container:Container": named("name", "docker"),
  "docker:index/image:Image": (i) => { const p: Problems = []; name(p, "tag", String(i.imageName).split(":").pop(), "imageTag"); return p; },
  "random:index/randomString:RandomString": noLimitedValues,
};
