/**
 * A monthly estimate of what a stack costs, from its validated settings (components/settings.ts
 * PlatformArgs) and the unit prices in ./prices. Databricks is excluded (its DBUs and clusters
 * depend on the workspace's plan). Every line states its quantity and unit price, so a reader can
 * redo the arithmetic.
 */
import type { PlatformArgs } from "../../../components/settings";
import { ASSUMPTIONS, AWS, AZURE, DAYS_PER_MONTH, GCP, HOURS_PER_MONTH, PRICES_AS_OF, SECONDS_PER_MONTH } from "./prices";

export interface CostLine {
  item: string;
  /** What is billed, e.g. "0.25 vCPU × 730 h". */
  quantity: string;
  /** The unit price, e.g. "$0.03238 / vCPU-hour". */
  unitPrice: string;
  monthly: number;
}

export interface CostEstimate {
  cloud: PlatformArgs["cloud"];
  region: string;
  /** The region whose prices were used (the reference region when `region` has no row). */
  pricedRegion: string;
  pricesAsOf: string;
  volume: Volume;
  lines: CostLine[];
  total: number;
  notes: string[];
}

export interface CostOptions {
  /** Changes captured per day; default: one full batch (batching.maxSize) an hour. */
  changesPerDay?: number;
  /** Average landed bytes per change before compression. */
  bytesPerChange?: number;
}

/** What the engine does in a month at the assumed change rate. */
export interface Volume {
  changesPerDay: number;
  /** Flush rounds a day: one per BATCH_MAX_WAIT_MS window with changes, more when batches fill. */
  flushesPerDay: number;
  /** Objects written a day: one per table with changes per flush round, plus the engine's state object. */
  objectsPerDay: number;
  /** GB landed a day (after compression). */
  landedGbPerDay: number;
  /** GB held in the landing zone once landingRetentionDays of files exist (steady state). */
  storedGb: number;
  /** Log GB ingested a month. */
  logGbPerMonth: number;
}

type Settings = Required<Pick<PlatformArgs, "batching" | "landingRetentionDays" | "logRetentionDays" | "logLevel" | "sinkCompression" | "container">> & PlatformArgs;

const usd = (n: number, digits = 2): string => `$${n.toFixed(digits)}`;
const unit = (n: number): string => `$${String(n)}`;
const num = (n: number): string => (Number.isInteger(n) ? n.toLocaleString("en-US") : n.toLocaleString("en-US", { maximumFractionDigits: 3 }));

export function volume(settings: Settings, options: CostOptions = {}): Volume {
  const { batching } = settings;
  const maxSize = batching.maxSize ?? 10_000;
  const maxWaitMs = batching.maxWaitMs ?? 5_000;
  const maxBytes = batching.maxBytes ?? 16 * 1024 * 1024;
  const changesPerDay = options.changesPerDay ?? maxSize * 24;
  const bytesPerChange = options.bytesPerChange ?? ASSUMPTIONS.bytesPerChange;
  const windowsPerDay = 86_400_000 / maxWaitMs;
  // Changes arriving evenly: every window that sees one flushes; full batches flush early.
  const flushesPerDay = Math.max(Math.ceil(changesPerDay / maxSize), Math.ceil((changesPerDay * bytesPerChange) / maxBytes), Math.min(changesPerDay, windowsPerDay));
  const tables = Math.max(1, settings.postgres.tables?.length ?? 0);
  const perFlush = flushesPerDay === 0 ? 0 : Math.min(tables, Math.max(1, changesPerDay / flushesPerDay));
  const objectsPerDay = flushesPerDay * perFlush + flushesPerDay;
  const landedGbPerDay = (changesPerDay * bytesPerChange * (settings.sinkCompression === "gzip" ? ASSUMPTIONS.gzipRatio : 1)) / 1e9;
  const storedGb = landedGbPerDay * settings.landingRetentionDays;
  let logGbPerMonth = ASSUMPTIONS.infoLogGbMonth;
  if (settings.logLevel === "debug" || settings.logLevel === "trace") logGbPerMonth += (flushesPerDay * DAYS_PER_MONTH * ASSUMPTIONS.debugBytesPerFlush) / 1e9;
  if (settings.logLevel === "trace") logGbPerMonth += (changesPerDay * DAYS_PER_MONTH * ASSUMPTIONS.traceBytesPerChange) / 1e9;
  return { changesPerDay, flushesPerDay, objectsPerDay, landedGbPerDay, storedGb, logGbPerMonth };
}

function priced<T>(regions: Record<string, T>, region: string, reference: string): { prices: T; pricedRegion: string } {
  return regions[region] ? { prices: regions[region], pricedRegion: region } : { prices: regions[reference], pricedRegion: reference };
}

export function estimateCost(settings: Settings, options: CostOptions = {}): CostEstimate {
  const v = volume(settings, options);
  const { cpu, memoryMiB } = { cpu: settings.container.cpu ?? 0.25, memoryMiB: settings.container.memoryMiB ?? 512 };
  const memGb = memoryMiB / 1024;
  const requestsPerMonth = v.objectsPerDay * DAYS_PER_MONTH;
  const lines: CostLine[] = [];
  const notes: string[] = [];
  const add = (item: string, quantity: string, unitPrice: string, monthly: number) => lines.push({ item, quantity, unitPrice, monthly });
  let region = "";
  let pricedRegion = "";
  // A keyless postgres.auth creates no password secret.
  const hasSecret = (settings.postgres?.auth ?? "password") === "password";

  switch (settings.cloud) {
    case "aws": {
      region = settings.aws!.region;
      const { prices: p, pricedRegion: r } = priced(AWS.regions, region, AWS.referenceRegion);
      pricedRegion = r;
      const arch = settings.architecture === "amd64" ? "amd64" : "arm64";
      const f = p.fargate[arch];
      add(`Fargate vCPU (${arch === "arm64" ? "Linux/ARM, Graviton" : "Linux/x86"})`, `${cpu} vCPU × ${HOURS_PER_MONTH} h`, `${unit(f.vcpuHour)} / vCPU-hour`, cpu * HOURS_PER_MONTH * f.vcpuHour);
      add("Fargate memory", `${num(memGb)} GB × ${HOURS_PER_MONTH} h`, `${unit(f.gbHour)} / GB-hour`, memGb * HOURS_PER_MONTH * f.gbHour);
      const network = settings.aws!.network ?? {};
      const configured = (network.subnetIds?.length ?? 0) > 0;
      const publicIp = network.assignPublicIp ?? !configured;
      if (publicIp) add("public IPv4 address (task)", `1 × ${HOURS_PER_MONTH} h`, `${unit(AWS.publicIpv4Hour)} / hour`, HOURS_PER_MONTH * AWS.publicIpv4Hour);
      if (configured && !publicIp) {
        const natGb = ASSUMPTIONS.natBaseGbMonth + v.landedGbPerDay * DAYS_PER_MONTH;
        add("NAT gateway (private subnets)", `1 × ${HOURS_PER_MONTH} h`, `${unit(p.natHour)} / hour`, HOURS_PER_MONTH * p.natHour);
        add("NAT gateway data processed", `${num(natGb)} GB`, `${unit(p.natGb)} / GB`, natGb * p.natGb);
        notes.push("Private subnets need a NAT gateway or VPC endpoints (ECR, S3, Secrets Manager, CloudWatch Logs); a NAT gateway is assumed, shared ones cost nothing extra here.");
      }
      add("S3 Standard storage", `${num(v.storedGb)} GB`, `${unit(p.s3GbMonth)} / GB-month`, v.storedGb * p.s3GbMonth);
      add("S3 PUT requests", `${num(Math.round(requestsPerMonth))} PUTs`, `${unit(p.s3PutPer1000)} / 1,000`, (requestsPerMonth / 1000) * p.s3PutPer1000);
      const stored = v.logGbPerMonth * Math.min(settings.logRetentionDays, 3650) / DAYS_PER_MONTH;
      add("CloudWatch Logs ingestion", `${num(v.logGbPerMonth)} GB`, `${unit(p.logsIngestGb)} / GB`, v.logGbPerMonth * p.logsIngestGb);
      add("CloudWatch Logs storage", `${num(stored)} GB`, `${unit(p.logsStoreGbMonth)} / GB-month`, stored * p.logsStoreGbMonth);
      add("Container Insights metrics", `${ASSUMPTIONS.containerInsightsMetrics} metrics`, `${unit(AWS.customMetricMonth)} / metric-month`, ASSUMPTIONS.containerInsightsMetrics * AWS.customMetricMonth);
      if (hasSecret) add("Secrets Manager secret", "1 secret", `${unit(AWS.secretMonth)} / secret-month`, AWS.secretMonth);
      const imageGb = ASSUMPTIONS.imageGb * ASSUMPTIONS.imagesKept;
      add("ECR image storage", `${num(imageGb)} GB`, `${unit(AWS.registryGbMonth)} / GB-month`, imageGb * AWS.registryGbMonth);
      if (settings.alerts) add("CloudWatch alarm (+ SNS e-mail, free tier)", "1 alarm", `${unit(AWS.alarmMonth)} / alarm-month`, AWS.alarmMonth);
      break;
    }
    case "azure": {
      region = settings.azure!.location;
      const { prices: p, pricedRegion: r } = priced(AZURE.regions, region, AZURE.referenceRegion);
      pricedRegion = r;
      const ca = AZURE.containerApps;
      const vcpuSeconds = Math.max(0, cpu * SECONDS_PER_MONTH - ca.freeVcpuSeconds);
      const gibSeconds = Math.max(0, memGb * SECONDS_PER_MONTH - ca.freeGibSeconds);
      add("Container Apps vCPU (active, after free grant)", `${num(vcpuSeconds)} vCPU-s`, `${unit(ca.vcpuSecond)} / vCPU-second`, vcpuSeconds * ca.vcpuSecond);
      add("Container Apps memory (after free grant)", `${num(gibSeconds)} GiB-s`, `${unit(ca.gibSecond)} / GiB-second`, gibSeconds * ca.gibSecond);
      notes.push(`The Container Apps free grant (${num(ca.freeVcpuSeconds)} vCPU-s, ${num(ca.freeGibSeconds)} GiB-s a month) is per subscription: other apps may already use it.`);
      add("Container Registry Basic", `${num(DAYS_PER_MONTH)} days`, `${unit(AZURE.registryBasicDay)} / day`, DAYS_PER_MONTH * AZURE.registryBasicDay);
      add("ADLS Gen2 hot LRS storage", `${num(v.storedGb)} GB`, `${unit(p.storageGbMonth)} / GB-month`, v.storedGb * p.storageGbMonth);
      add("ADLS Gen2 write operations", `${num(Math.round(requestsPerMonth))} writes`, `${unit(p.writePer10k)} / 10,000`, (requestsPerMonth / 10_000) * p.writePer10k);
      const billableLogs = Math.max(0, v.logGbPerMonth - AZURE.logsFreeGb);
      add("Log Analytics ingestion (after 5 GB free)", `${num(billableLogs)} GB`, `${unit(p.logsIngestGb)} / GB`, billableLogs * p.logsIngestGb);
      const retention = Math.max(30, settings.logRetentionDays);
      const extraRetained = (v.logGbPerMonth * Math.max(0, retention - AZURE.logsIncludedRetentionDays)) / DAYS_PER_MONTH;
      if (extraRetained > 0) add("Log Analytics retention beyond 31 days", `${num(extraRetained)} GB`, `${unit(AZURE.logsRetentionGbMonth)} / GB-month`, extraRetained * AZURE.logsRetentionGbMonth);
      if (hasSecret) add("Key Vault secret operations", "a few reads per revision start", "$0.03 / 10,000", 0);
      if (settings.alerts) add("Azure Monitor metric alert (+ e-mail, free tier)", "1 time series", `${unit(AZURE.metricAlertMonth)} / time series-month`, AZURE.metricAlertMonth);
      break;
    }
    case "gcp": {
      region = settings.gcp!.region;
      const { prices: p, pricedRegion: r } = priced(GCP.regions, region, GCP.referenceRegion);
      pricedRegion = r;
      const tier1 = GCP.regions[GCP.referenceRegion].run;
      // Always-allocated CPU needs at least 1 vCPU (components/settings.ts rounds up the same way).
      const runCpu = Math.max(1, cpu);
      const vcpuSeconds = runCpu * SECONDS_PER_MONTH;
      const gibSeconds = memGb * SECONDS_PER_MONTH;
      // The free tier is a spending discount at tier-1 prices, whatever the region's tier.
      const cpuCost = Math.max(0, vcpuSeconds * p.run.vcpuSecond - Math.min(vcpuSeconds, GCP.runFreeVcpuSeconds) * tier1.vcpuSecond);
      const memCost = Math.max(0, gibSeconds * p.run.gibSecond - Math.min(gibSeconds, GCP.runFreeGibSeconds) * tier1.gibSecond);
      add(`Cloud Run vCPU (instance-based${cpu < 1 ? `, ${cpu} rounded up to 1` : ""}, after free tier)`, `${num(vcpuSeconds)} vCPU-s − ${num(GCP.runFreeVcpuSeconds)} free`, `${unit(p.run.vcpuSecond)} / vCPU-second`, cpuCost);
      add("Cloud Run memory (after free tier)", `${num(gibSeconds)} GiB-s − ${num(GCP.runFreeGibSeconds)} free`, `${unit(p.run.gibSecond)} / GiB-second`, memCost);
      notes.push("The Cloud Run free tier is per billing account: other services may already use it.");
      add("Cloud Storage Standard", `${num(v.storedGb)} GB`, `${unit(p.storageGbMonth)} / GB-month`, v.storedGb * p.storageGbMonth);
      add("Cloud Storage Class A operations", `${num(Math.round(requestsPerMonth))} writes`, `${unit(GCP.storageClassAPer1000)} / 1,000`, (requestsPerMonth / 1000) * GCP.storageClassAPer1000);
      const billableLogs = Math.max(0, v.logGbPerMonth - GCP.logsFreeGib);
      add("Cloud Logging ingestion (after 50 GiB free)", `${num(billableLogs)} GiB`, `${unit(GCP.logsIngestGib)} / GiB`, billableLogs * GCP.logsIngestGib);
      const extraRetained = (v.logGbPerMonth * Math.max(0, settings.logRetentionDays - GCP.logsIncludedRetentionDays)) / DAYS_PER_MONTH;
      if (extraRetained > 0) add("Cloud Logging retention beyond 30 days", `${num(extraRetained)} GiB`, `${unit(GCP.logsRetentionGibMonth)} / GiB-month`, extraRetained * GCP.logsRetentionGibMonth);
      if (hasSecret) add("Secret Manager secret version", "1 version", `${unit(GCP.secretVersionMonth)} / version-month`, GCP.secretVersionMonth);
      const imageGb = ASSUMPTIONS.imageGb * ASSUMPTIONS.imagesKept;
      const billableImages = Math.max(0, imageGb - GCP.registryFreeGb);
      add("Artifact Registry storage (after 0.5 GB free)", `${num(billableImages)} GB`, `${unit(GCP.registryGbMonth)} / GB-month`, billableImages * GCP.registryGbMonth);
      if (settings.gcp!.network?.vpcConnector) {
        add("Serverless VPC Access connector (2 × e2-micro minimum)", `2 × ${HOURS_PER_MONTH} h`, `${unit(GCP.vpcConnectorInstanceHour)} / instance-hour`, 2 * HOURS_PER_MONTH * GCP.vpcConnectorInstanceHour);
      }
      if (settings.alerts) add("Cloud Monitoring alert condition", "1 condition", `${unit(GCP.alertConditionMonth)} / condition-month`, GCP.alertConditionMonth);
      break;
    }
    case "local":
      region = "this machine";
      pricedRegion = "this machine";
      notes.push("The local target runs on your own Docker host: no cloud charges.");
      break;
  }
  if (region !== pricedRegion) notes.push(`No price row for region ${region}: ${pricedRegion} prices are used (add the region to platform/src/cost/prices.ts).`);
  notes.push("Databricks is excluded (DBUs and its clusters depend on the workspace's plan); so are data transfer out of the cloud and taxes.");
  const total = lines.reduce((sum, l) => sum + l.monthly, 0);
  return { cloud: settings.cloud, region, pricedRegion, pricesAsOf: PRICES_AS_OF, volume: v, lines, total, notes };
}

/** The estimate as the table `cdc-platform cost` prints. */
export function formatEstimate(e: CostEstimate, stack: string): string {
  const rows = [["item", "quantity", "unit price", "per month"], ...e.lines.map((l) => [l.item, l.quantity, l.unitPrice, usd(l.monthly)])];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === 3 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ").trimEnd();
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  const v = e.volume;
  return [
    `Monthly estimate for stack ${stack}: ${e.cloud}${e.cloud === "local" ? "" : ` ${e.region}`} (list prices of ${e.pricesAsOf}, USD, ${e.pricedRegion === e.region ? "this region" : `${e.pricedRegion} prices`})`,
    `Assumed: ${num(v.changesPerDay)} changes/day → ${num(Math.round(v.flushesPerDay))} flushes/day, ${num(Math.round(v.objectsPerDay))} objects/day, ${num(v.landedGbPerDay)} GB/day landed, ${num(v.storedGb)} GB kept; ${num(v.logGbPerMonth)} GB logs/month`,
    "",
    fmt(rows[0]),
    rule,
    ...rows.slice(1).map(fmt),
    rule,
    fmt(["total", "", "", usd(e.total)]),
    "",
    ...e.notes.map((n) => `- ${n}`),
    "",
  ].join("\n");
}
