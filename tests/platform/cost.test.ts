/**
 * `cdc-platform cost`: the figures for each cloud's default and prod stack against expectations
 * computed by hand from the unit prices (platform/src/cost/prices.ts, dated) and the stated
 * assumptions. Default stack: 0.25 vCPU / 512 MiB, balanced batching (10,000 / 16 MiB / 5 s), one
 * table, 30-day retention. Prod stack: throughput batching (20,000 / 32 MiB / 10 s), five tables,
 * gzip, landing 90 days, logs 365 days, alerts, private networking.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { estimateCost, type CostEstimate } from "../../platform/src/cost/estimate";
import { validateStackConfig } from "../../platform/src/stack-file";
import { stackConfig, renderStackFile, type InitAnswers } from "../../platform/src/init/answers";

const REPO = path.resolve(__dirname, "..", "..");
const P = "postgres-cdc-multicloud:";
const TABLES5 = ["public.users", "public.products", "public.orders", "warehouse.stock_item", "warehouse.stock_movement"];

function answers(cloud: InitAnswers["cloud"], region: string | undefined, over: Partial<InitAnswers> = {}): InitAnswers {
  return {
    stack: "dev", cloud, region, gcpProject: cloud === "gcp" ? "acme-data-123" : undefined,
    postgres: { host: "db.internal.example.com", port: 5432, database: "app", user: "cdc_user", auth: "password", sslmode: "require", publication: "cdc_pub", slot: "cdc_slot", tables: ["public.users"] },
    batching: "balanced", retention: "standard", alertEmails: [], databricks: { enabled: false },
    ...over,
  };
}

function estimate(config: Record<string, unknown>, options = {}): CostEstimate {
  return estimateCost(validateStackConfig(config).args as Parameters<typeof estimateCost>[0], options);
}

const line = (e: CostEstimate, item: RegExp) => {
  const found = e.lines.find((l) => item.test(l.item));
  assert.ok(found, `no line ${item} in ${e.lines.map((l) => l.item).join(", ")}`);
  return found.monthly;
};
const near = (actual: number, expected: number, what: string) => assert.ok(Math.abs(actual - expected) < 1e-6, `${what}: ${actual} ≠ ${expected}`);

/** The prod variants: answers plus the settings init does not ask for. */
function prod(cloud: "aws" | "azure" | "gcp", region: string): Record<string, unknown> {
  const config = stackConfig(answers(cloud, region, { stack: "prod", batching: "throughput", retention: "long", alertEmails: ["oncall@example.com"], postgres: { ...answers(cloud, region).postgres, tables: TABLES5 } }));
  config[`${P}sinkCompression`] = "gzip";
  config[`${P}containerCpu`] = cloud === "gcp" ? "1" : "0.5";
  config[`${P}containerMemoryMiB`] = 1024;
  config[`${P}network`] = {
    aws: { vpcId: "vpc-0123456789abcdef0", subnetIds: ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"], securityGroupIds: ["sg-0123456789abcdef0"] },
    azure: { infrastructureSubnetId: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/aca" },
    gcp: { vpcConnector: "projects/acme-data-123/locations/europe-west1/connectors/cdc" },
  }[cloud];
  return config;
}

describe("cdc-platform cost", () => {
  // Volumes by hand. Default: 240,000 changes/day (maxSize × 24); 86,400,000 / 5,000 = 17,280
  // windows a day, each with changes → 17,280 flushes; 1 table → 17,280 data + 17,280 state
  // objects = 34,560/day × 30.41667 days = 1,051,200 writes a month; 240,000 × 600 B = 0.144 GB/day,
  // × 30 days kept = 4.32 GB. Prod: 480,000 changes/day; 8,640 flushes; 5 tables → 8,640 × 6 =
  // 51,840 objects/day = 1,576,800 a month; × 600 B × 0.15 (gzip) = 0.0432 GB/day, × 90 = 3.888 GB.

  it("aws default stack (eu-west-1, Graviton, default VPC with a public IP)", () => {
    const e = estimate(stackConfig(answers("aws", "eu-west-1")));
    assert.equal(e.volume.objectsPerDay, 34_560);
    near(e.volume.storedGb, 4.32, "stored GB");
    near(line(e, /^Fargate vCPU/), 0.25 * 730 * 0.03238, "vCPU"); // 5.90935
    near(line(e, /^Fargate memory/), 0.5 * 730 * 0.00356, "memory"); // 1.2994
    near(line(e, /^public IPv4/), 3.65, "IPv4");
    near(line(e, /^S3 PUT/), 5.256, "PUTs");
    assert.ok(!e.lines.some((l) => /NAT/.test(l.item)), "no NAT gateway in the default VPC");
    // 5.90935 + 1.2994 + 3.65 + 0.09936 (S3) + 5.256 + 0.005 (log ingestion) + 0.000296 (log
    // storage: 0.01 GB × 30/30.41667 × $0.03) + 7.2 (24 Container Insights metrics) + 0.4 + 0.045 (ECR)
    near(e.total, 23.86440603, "total");
    assert.equal(e.pricedRegion, "eu-west-1");
  });

  it("aws prod stack (private subnets → NAT gateway, alarms, 0.5 vCPU / 1 GiB)", () => {
    const e = estimate(prod("aws", "eu-west-1"));
    assert.equal(e.volume.objectsPerDay, 51_840);
    near(e.volume.storedGb, 3.888, "stored GB");
    near(line(e, /^NAT gateway \(/), 730 * 0.048, "NAT hours");
    near(line(e, /^NAT gateway data/), (2 + 0.0432 * (730 / 24)) * 0.048, "NAT GB");
    assert.ok(!e.lines.some((l) => /IPv4/.test(l.item)), "no public IP in private subnets");
    // 11.8187 + 2.5988 + 35.04 + 0.159072 + 0.089424 + 7.884 + 0.005 + 0.0036 + 7.2 + 0.4 + 0.045 + 0.1
    near(e.total, 65.343596, "total");
  });

  it("azure default stack (westeurope, Container Apps after the free grant, ACR Basic)", () => {
    const e = estimate(stackConfig(answers("azure", "westeurope")));
    near(line(e, /^Container Apps vCPU/), (657_000 - 180_000) * 0.000024, "vCPU"); // 11.448
    near(line(e, /^Container Apps memory/), (1_314_000 - 360_000) * 0.000003, "memory"); // 2.862
    near(line(e, /^Container Registry/), (730 / 24) * 0.1666, "ACR");
    near(line(e, /write operations/), 105.12 * 0.0715, "writes"); // 7.51608
    // 11.448 + 2.862 + 5.0674167 + 0.089856 (4.32 GB × 0.0208) + 7.51608; logs inside the 5 GB free
    near(e.total, 26.98335267, "total");
  });

  it("azure prod stack (0.5 vCPU / 1 GiB, 365 days of logs, alert)", () => {
    const e = estimate(prod("azure", "westeurope"));
    near(line(e, /^Container Apps vCPU/), (1_314_000 - 180_000) * 0.000024, "vCPU"); // 27.216
    near(line(e, /retention beyond 31 days/), ((0.01 * 334) / (730 / 24)) * 0.1, "log retention");
    // 27.216 + 6.804 + 5.0674167 + 0.0808704 + 11.27412 + 0.0109808 + 0.1
    near(e.total, 50.55338788, "total");
  });

  it("gcp default stack (europe-west1, Cloud Run rounds 0.25 vCPU up to 1, free tier applied)", () => {
    const e = estimate(stackConfig(answers("gcp", "europe-west1")));
    near(line(e, /^Cloud Run vCPU/), (2_628_000 - 240_000) * 0.000018, "vCPU"); // 42.984
    near(line(e, /^Cloud Run memory/), (1_314_000 - 450_000) * 0.000002, "memory"); // 1.728
    // 42.984 + 1.728 + 0.0864 (4.32 GB × 0.02) + 5.256 (Class A) + 0.06 (secret); registry within 0.5 GB free
    near(e.total, 50.1144, "total");
  });

  it("gcp prod stack (1 vCPU / 1 GiB, VPC connector, alert)", () => {
    const e = estimate(prod("gcp", "europe-west1"));
    near(line(e, /VPC Access connector/), 2 * 730 * 0.0084, "connector"); // 12.264
    // 42.984 + 4.356 + 0.07776 + 7.884 + 0.00110137 (log retention) + 0.06 + 12.264 + 0.1
    near(e.total, 67.72686137, "total");
  });

  it("uses the region's prices where they differ, and says when a region has no row", () => {
    const frankfurt = estimate(stackConfig(answers("aws", "eu-central-1")));
    near(line(frankfurt, /^Fargate vCPU/), 0.25 * 730 * 0.03725, "Frankfurt vCPU");
    const unknown = estimate(stackConfig(answers("aws", "ap-south-2")));
    assert.equal(unknown.pricedRegion, "us-east-1");
    assert.ok(unknown.notes.some((n) => /No price row for region ap-south-2: us-east-1 prices are used/.test(n)), unknown.notes.join("\n"));
    const london = estimate(stackConfig(answers("gcp", "europe-west2")));
    // Tier 2 price, free tier discounted at tier-1 prices.
    near(line(london, /^Cloud Run vCPU/), 2_628_000 * 0.0000252 - 240_000 * 0.000018, "tier-2 vCPU");
  });

  it("--changes-per-day drives storage and requests; the x86 and local targets price as configured", () => {
    const quiet = estimate(stackConfig(answers("aws", "eu-west-1")), { changesPerDay: 1_000 });
    // 1,000 changes/day: 1,000 flushes (fewer than 17,280 windows), 1 object + 1 state each.
    assert.equal(quiet.volume.flushesPerDay, 1_000);
    near(line(quiet, /^S3 PUT/), ((2_000 * 730) / 24 / 1000) * 0.005, "PUTs");
    const x86 = stackConfig(answers("aws", "eu-west-1"));
    x86[`${P}architecture`] = "amd64";
    near(line(estimate(x86), /^Fargate vCPU \(Linux\/x86/), 0.25 * 730 * 0.04048, "x86 vCPU");
    const local = estimate(stackConfig(answers("local", undefined, { postgres: { ...answers("local", undefined).postgres, host: "host.docker.internal" } })));
    assert.equal(local.total, 0);
  });

  it("prices the repository's example stacks before their placeholders are filled in", async function () {
    this.timeout(60_000);
    const run = (stack: string) => promisify(execFile)(process.execPath, [path.join(REPO, "platform/bin/cdc-platform.js"), "cost", "--stack", stack, "--json"], { cwd: REPO });
    const [dev, prod] = (await Promise.all([run("dev"), run("prod")])).map((r) => JSON.parse(r.stdout) as CostEstimate);
    // Pulumi.prod.yaml: the prod stack above without alerts: 65.343596 − 0.1.
    near(prod.total, 65.243596, "prod example");
    assert.match(prod.notes[0], /^Priced as if the placeholders in postgres-cdc-multicloud:postgres\.host, postgres-cdc-multicloud:network\.vpcId, .* were filled in/);
    // Pulumi.dev.yaml (azure, 5 tables, landing 7 days, debug logs): 103,680 objects/day =
    // 3,153,600 writes (× $0.0715 / 10,000 = 22.54824), 1.008 GB kept (× 0.0208 = 0.0209664);
    // 0.141 GB of debug logs stay inside the 5 GB free: 11.448 + 2.862 + 5.0674167 + 0.0209664 + 22.54824.
    near(dev.total, 41.94662307, "dev example");
  });

  it("prints a table with the unit prices, their date and the total, from a stack file", async function () {
    this.timeout(30_000);
    const dir = mkdtempSync(path.join(tmpdir(), "cdc-cost-"));
    copyFileSync(path.join(REPO, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
    writeFileSync(path.join(dir, "Pulumi.dev.yaml"), renderStackFile(answers("azure", "westeurope")));
    const { stdout } = await promisify(execFile)(process.execPath, [path.join(REPO, "platform/bin/cdc-platform.js"), "cost", "--stack", "dev"], { cwd: dir });
    assert.match(stdout, /Monthly estimate for stack dev: azure westeurope \(list prices of \d{4}-\d{2}-\d{2}, USD/);
    assert.match(stdout, /Container Apps vCPU .*\$0\.000024 \/ vCPU-second +\$11\.45/);
    assert.match(stdout, /^total +\$26\.98$/m);
    assert.match(stdout, /Databricks is excluded/);
    const bad = await promisify(execFile)(process.execPath, [path.join(REPO, "platform/bin/cdc-platform.js"), "cost", "--stack", "nope"], { cwd: dir }).catch((err: { code: number; stderr: string }) => err);
    assert.equal((bad as { code: number }).code, 2);
    assert.match((bad as { stderr: string }).stderr, /Pulumi\.nope\.yaml does not exist: run `npx cdc-platform init --stack nope`/);
  });

  it("a keyless stack file validates without a password (postgres.auth gcp-iam), and prices no secret", () => {
    const config = stackConfig(answers("gcp", "europe-west1"));
    config[`${P}postgres`] = { ...(config[`${P}postgres`] as Record<string, unknown>), user: undefined, auth: "gcp-iam" };
    const settings = validateStackConfig(config);
    assert.equal(settings.args.postgres.auth, "gcp-iam");
    assert.equal(settings.args.postgres.password, undefined);
    const e = estimateCost(settings.args as Parameters<typeof estimateCost>[0]);
    assert.ok(!e.lines.some((l) => /Secret Manager/.test(l.item)), "no password secret to pay for");
    assert.ok(estimate(stackConfig(answers("gcp", "europe-west1"))).lines.some((l) => /Secret Manager/.test(l.item)));
  });
});
