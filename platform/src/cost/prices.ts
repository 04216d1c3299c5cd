/**
 * Unit list prices `cdc-platform cost` uses: on-demand / pay-as-you-go, USD, without tax, free
 * tiers as stated, compiled on PRICES_AS_OF from the vendors' public pricing pages. This is the one
 * place they live; a price the vendor changes is changed here (and in the hand-computed
 * expectations of tests/platform/cost.test.ts). Where a price differs by region, the region's row
 * is used; a region without a row uses the cloud's reference region and the estimate says so.
 */

/** When these prices were compiled. */
export const PRICES_AS_OF = "2026-12-01";

/** Hours in the month every vendor's calculator uses. */
export const HOURS_PER_MONTH = 730;
export const SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600;
export const DAYS_PER_MONTH = HOURS_PER_MONTH / 24;

export interface AwsRegionPrices {
  /** Fargate Linux, per vCPU-hour and per GB-hour, by architecture. */
  fargate: { arm64: { vcpuHour: number; gbHour: number }; amd64: { vcpuHour: number; gbHour: number } };
  /** S3 Standard, first 50 TB, per GB-month. */
  s3GbMonth: number;
  /** S3 PUT/COPY/POST/LIST per 1,000 requests. */
  s3PutPer1000: number;
  /** CloudWatch Logs: ingestion per GB, storage per GB-month. */
  logsIngestGb: number;
  logsStoreGbMonth: number;
  /** NAT gateway per hour and per GB processed. */
  natHour: number;
  natGb: number;
}

const AWS_US_EAST_1: AwsRegionPrices = {
  fargate: { arm64: { vcpuHour: 0.03238, gbHour: 0.00356 }, amd64: { vcpuHour: 0.04048, gbHour: 0.004445 } },
  s3GbMonth: 0.023,
  s3PutPer1000: 0.005,
  logsIngestGb: 0.5,
  logsStoreGbMonth: 0.03,
  natHour: 0.045,
  natGb: 0.045,
};

export const AWS = {
  referenceRegion: "us-east-1",
  regions: {
    "us-east-1": AWS_US_EAST_1,
    "us-east-2": AWS_US_EAST_1,
    "us-west-2": AWS_US_EAST_1,
    "eu-west-1": { ...AWS_US_EAST_1, natHour: 0.048, natGb: 0.048 },
    "eu-central-1": {
      fargate: { arm64: { vcpuHour: 0.03725, gbHour: 0.00409 }, amd64: { vcpuHour: 0.04656, gbHour: 0.00511 } },
      s3GbMonth: 0.0245,
      s3PutPer1000: 0.0054,
      logsIngestGb: 0.63,
      logsStoreGbMonth: 0.0324,
      natHour: 0.052,
      natGb: 0.052,
    },
  } as Record<string, AwsRegionPrices>,
  /** Public IPv4 address per hour (the task's public IP in the default VPC). */
  publicIpv4Hour: 0.005,
  /** Secrets Manager per secret-month (API calls at start-up only: negligible). */
  secretMonth: 0.4,
  /** ECR storage per GB-month. */
  registryGbMonth: 0.1,
  /** CloudWatch standard-resolution metric alarm per month; SNS e-mail: first 1,000 a month free. */
  alarmMonth: 0.1,
  /** CloudWatch custom metric per month (Container Insights metrics are billed as these). */
  customMetricMonth: 0.3,
};

export interface AzureRegionPrices {
  /** ADLS Gen2 (hierarchical namespace), hot, LRS, per GB-month. */
  storageGbMonth: number;
  /** ADLS Gen2 hot write operations per 10,000. */
  writePer10k: number;
  /** Log Analytics (Analytics logs, pay-as-you-go) per GB ingested. */
  logsIngestGb: number;
}

const AZURE_EASTUS: AzureRegionPrices = { storageGbMonth: 0.019, writePer10k: 0.065, logsIngestGb: 2.3 };

export const AZURE = {
  referenceRegion: "eastus",
  regions: {
    eastus: AZURE_EASTUS,
    eastus2: AZURE_EASTUS,
    westus2: AZURE_EASTUS,
    northeurope: { ...AZURE_EASTUS, storageGbMonth: 0.0196 },
    westeurope: { storageGbMonth: 0.0208, writePer10k: 0.0715, logsIngestGb: 2.76 },
  } as Record<string, AzureRegionPrices>,
  /** Container Apps Consumption, active rate, per vCPU-second and GiB-second (the engine never idles: it holds a replication stream). */
  containerApps: { vcpuSecond: 0.000024, gibSecond: 0.000003, freeVcpuSeconds: 180_000, freeGibSeconds: 360_000 },
  /** Container Registry Basic per day. */
  registryBasicDay: 0.1666,
  /** Log Analytics: first 5 GB a month free per billing account; 31 days of retention included, then per GB-month. */
  logsFreeGb: 5,
  logsIncludedRetentionDays: 31,
  logsRetentionGbMonth: 0.1,
  /** Azure Monitor metric alert per monitored time series per month (action group e-mails: first 1,000 free). */
  metricAlertMonth: 0.1,
};

export interface GcpRegionPrices {
  /** Cloud Run with instance-based billing (CPU always allocated), per vCPU-second and GiB-second. */
  run: { vcpuSecond: number; gibSecond: number };
  /** Cloud Storage Standard, regional, per GB-month. */
  storageGbMonth: number;
}

const GCP_TIER1: GcpRegionPrices = { run: { vcpuSecond: 0.000018, gibSecond: 0.000002 }, storageGbMonth: 0.02 };
const GCP_TIER2: GcpRegionPrices = { run: { vcpuSecond: 0.0000252, gibSecond: 0.0000028 }, storageGbMonth: 0.023 };

export const GCP = {
  referenceRegion: "us-central1",
  regions: {
    "us-central1": GCP_TIER1,
    "us-east1": GCP_TIER1,
    "us-east4": { ...GCP_TIER1, storageGbMonth: 0.023 },
    "us-west1": GCP_TIER1,
    "europe-west1": GCP_TIER1,
    "europe-west4": { ...GCP_TIER1, storageGbMonth: 0.023 },
    "europe-north1": GCP_TIER1,
    "europe-west2": GCP_TIER2,
    "europe-west3": GCP_TIER2,
  } as Record<string, GcpRegionPrices>,
  /** Cloud Run instance-based billing free tier per billing account and month (applied at tier-1 prices). */
  runFreeVcpuSeconds: 240_000,
  runFreeGibSeconds: 450_000,
  /** Cloud Storage Class A operations (object writes) per 1,000. */
  storageClassAPer1000: 0.005,
  /** Cloud Logging: per GiB ingested beyond 50 GiB per project and month; retention beyond 30 days per GiB-month. */
  logsIngestGib: 0.5,
  logsFreeGib: 50,
  logsIncludedRetentionDays: 30,
  logsRetentionGibMonth: 0.01,
  /** Secret Manager per active secret version per month (accesses at start-up only: negligible). */
  secretVersionMonth: 0.06,
  /** Artifact Registry per GB-month beyond 0.5 GB free. */
  registryGbMonth: 0.1,
  registryFreeGb: 0.5,
  /** Cloud Monitoring alerting per condition per month. */
  alertConditionMonth: 0.1,
  /** Serverless VPC Access connector: at least two e2-micro instances, per instance-hour. */
  vpcConnectorInstanceHour: 0.0084,
};

/** Assumptions the estimate makes about the engine, stated with every estimate. */
export const ASSUMPTIONS = {
  /** Average size of one landed change record (NDJSON with before/after images and metadata). */
  bytesPerChange: 600,
  /** gzip shrinks NDJSON change records to about this fraction. */
  gzipRatio: 0.15,
  /** The engine image as stored in the registry (compressed layers), GB. */
  imageGb: 0.15,
  /** Images the registry keeps (the cleanup policies keep the most recent few). */
  imagesKept: 3,
  /** Engine log volume per month at info (start-up, slot, rollouts), GB. */
  infoLogGbMonth: 0.01,
  /** One debug line per durable flush round, bytes. */
  debugBytesPerFlush: 250,
  /** trace logs each change, bytes per change. */
  traceBytesPerChange: 400,
  /** Container Insights metrics of a one-service Fargate cluster (cluster-, service- and task-family-level). */
  containerInsightsMetrics: 24,
  /** Traffic a NAT gateway processes per month: image pulls, landing writes and logs, GB beyond the landed data. */
  natBaseGbMonth: 2,
};
