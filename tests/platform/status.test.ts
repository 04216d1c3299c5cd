/**
 * `cdc-platform status` for an AWS stack against moto in server mode (real ECS, CloudWatch Logs,
 * CloudWatch and S3 wire protocols, tests/support/moto.ts): a healthy stack exits 0, an unhealthy
 * one (no running task, an alarm firing, stale progress after a fatal error) exits 1 naming why.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { CloudWatchClient, PutMetricAlarmCommand, SetAlarmStateCommand } from "@aws-sdk/client-cloudwatch";
import { CloudWatchLogsClient, CreateLogGroupCommand, CreateLogStreamCommand, PutLogEventsCommand } from "@aws-sdk/client-cloudwatch-logs";
import { CreateClusterCommand, CreateServiceCommand, ECSClient, RegisterContainerInstanceCommand, RegisterTaskDefinitionCommand, RunTaskCommand, StopTaskCommand, UpdateServiceCommand } from "@aws-sdk/client-ecs";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { createLogger } from "../../container/src/ops/logger";
import { MetricsLog } from "../../container/src/ops/metrics-log";
import type { EngineMetrics } from "../../container/src/ops/metrics";
import { scanLogs } from "../../platform/src/status/progress";
import { startMoto, type Moto } from "../support/moto";

const REPO = path.resolve(__dirname, "..", "..");
const BIN = path.join(REPO, "platform", "bin", "cdc-platform.js");
const REGION = "eu-west-1";
const CLUSTER = "cdc-prod-1a2b3c-cluster";

function status(outputs: Record<string, unknown>, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), "cdc-status-"));
  const file = path.join(dir, "outputs.json");
  writeFileSync(file, JSON.stringify(outputs));
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, "status", "--outputs", file], { cwd: dir, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/**
 * Fargate tasks need a subnet; EC2 is only test set-up here, so one Query API call to moto (which
 * routes on the signed service name and does not verify signatures) instead of another SDK.
 */
async function motoEc2(endpoint: string, params: Record<string, string>): Promise<string> {
  const response = await fetch(endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: `AWS4-HMAC-SHA256 Credential=testing/20261201/${REGION}/ec2/aws4_request, SignedHeaders=host, Signature=0` },
    body: new URLSearchParams({ ...params, Version: "2016-11-15" }).toString(),
  });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return text;
}

/** What the engine's logger writes (docs/engine.md, "Logs"): level names, ISO-8601 times. */
const logLine = (at: number, fields: Record<string, unknown>, level = "info") => JSON.stringify({ level, time: new Date(at).toISOString(), service: "cdc-engine", ...fields });

describe("cdc-platform status (aws, against moto)", function () {
  this.timeout(180_000);
  let moto: Moto;
  const outputs = (service: string, group: string) => ({
    cloud: "aws",
    engineRuntime: `ecs:${REGION}:${CLUSTER}`,
    serviceName: service,
    logLocation: `cloudwatch:${REGION}:${group}`,
    landingUrl: "s3://cdc-prod-landing/landing",
  });

  before(async function () {
    // The first run installs moto into .cache/moto (about a minute); later runs reuse it.
    this.timeout(600_000);
    // moto reports services with this many running tasks (it runs no containers).
    moto = await startMoto({ MOTO_ECS_SERVICE_RUNNING: "1" });
    await setUp().catch((err: Error) => {
      throw new Error(`${err.message}\nmoto's log:\n${moto.log().split("\n").filter((l) => !l.startsWith("127.0.0.1")).slice(-30).join("\n")}`);
    });
  });

  async function setUp(): Promise<void> {
    const config = { region: REGION, endpoint: moto.endpoint, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } };
    const ecs = new ECSClient(config);
    const logs = new CloudWatchLogsClient(config);
    const cw = new CloudWatchClient(config);
    const s3 = new S3Client({ ...config, forcePathStyle: true });
    const now = Date.now();

    // moto moves a task one lifecycle state further on every DescribeTasks by default; a running
    // task stays running until stopped here.
    const transition = await fetch(`${moto.endpoint}/moto-api/state-manager/set-transition`, {
      method: "POST", body: JSON.stringify({ model_name: "ecs::task", transition: { progression: "manual", times: 1_000_000 } }),
    });
    assert.equal(transition.status, 201, await transition.text());
    await ecs.send(new CreateClusterCommand({ clusterName: CLUSTER }));
    // moto runs a service's tasks on EC2 container instances only (its Fargate task placement is
    // broken in 5.2.5); which launch type the stand-in task uses does not matter to status.
    const instance = /<instanceId>([^<]+)<\/instanceId>/.exec(await motoEc2(moto.endpoint, { Action: "RunInstances", ImageId: "ami-12c6146b", MinCount: "1", MaxCount: "1", InstanceType: "m5.large" }))![1];
    await ecs.send(new RegisterContainerInstanceCommand({ cluster: CLUSTER, instanceIdentityDocument: JSON.stringify({ instanceId: instance, region: REGION, accountId: "123456789012", availabilityZone: `${REGION}a` }) }));
    const { taskDefinition } = await ecs.send(new RegisterTaskDefinitionCommand({
      family: "cdc-prod-engine", requiresCompatibilities: ["EC2"], networkMode: "bridge", cpu: "512", memory: "1024",
      containerDefinitions: [{ name: "engine", image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/engine@sha256:abc", essential: true, cpu: 512, memory: 1024 }],
    }));
    for (const name of ["good-engine", "bad-engine"]) {
      await ecs.send(new CreateServiceCommand({ cluster: CLUSTER, serviceName: name, taskDefinition: taskDefinition!.taskDefinitionArn, desiredCount: 1, launchType: "FARGATE" }));
    }
    await ecs.send(new RunTaskCommand({ cluster: CLUSTER, taskDefinition: taskDefinition!.taskDefinitionArn, launchType: "EC2", count: 1, startedBy: "ecs-svc/1" }));
    const old = await ecs.send(new RunTaskCommand({ cluster: CLUSTER, taskDefinition: taskDefinition!.taskDefinitionArn, launchType: "EC2", count: 1, startedBy: "ecs-svc/1" }));
    await ecs.send(new StopTaskCommand({ cluster: CLUSTER, task: old.tasks![0].taskArn, reason: "Essential container in task exited" }));
    // The bad service lost its task.
    await ecs.send(new UpdateServiceCommand({ cluster: CLUSTER, service: "bad-engine", desiredCount: 0 }));

    for (const [group, events] of [
      ["/ecs/good-engine", [
        logLine(now - 20 * 60_000, { msg: "streaming changes", slot: "cdc_slot" }),
        logLine(now - 90_000, { msg: "cdc metrics", phase: "streaming", confirmedLsn: "0/1A2B3C8", lagBytes: 2048, lastFlushAt: new Date(now - 100_000).toISOString(), landingObjects: 1234, eventsLanded: 98765 }),
        logLine(now - 30_000, { msg: "cdc metrics", phase: "streaming", confirmedLsn: "0/1A2B4D0", lagBytes: 512, lastFlushAt: new Date(now - 40_000).toISOString(), landingObjects: 1240, eventsLanded: 99001 }),
      ]],
      ["/ecs/bad-engine", [
        logLine(now - 10 * 60_000, { msg: "cdc metrics", phase: "reconnecting", confirmedLsn: "0/1A2B3C8", lagBytes: 7_340_032, landingObjects: 0, eventsLanded: 0 }),
        logLine(now - 9 * 60_000, { msg: "cdc-engine stopped on a fatal error: password authentication failed for user \"cdc_user\"" }, "fatal"),
      ]],
    ] as const) {
      await logs.send(new CreateLogGroupCommand({ logGroupName: group }));
      await logs.send(new CreateLogStreamCommand({ logGroupName: group, logStreamName: "engine/engine/1" }));
      await logs.send(new PutLogEventsCommand({ logGroupName: group, logStreamName: "engine/engine/1", logEvents: events.map((message) => ({ message, timestamp: Date.parse((JSON.parse(message) as { time: string }).time) })) }));
    }

    for (const [service, state] of [["good-engine", "OK"], ["bad-engine", "ALARM"]] as const) {
      const name = `${service}-not-running`;
      await cw.send(new PutMetricAlarmCommand({
        AlarmName: name, Namespace: "ECS/ContainerInsights", MetricName: "RunningTaskCount", Statistic: "Minimum", Period: 60, EvaluationPeriods: 5,
        Threshold: 1, ComparisonOperator: "LessThanThreshold", TreatMissingData: "breaching",
        Dimensions: [{ Name: "ClusterName", Value: CLUSTER }, { Name: "ServiceName", Value: service }],
      }));
      await cw.send(new SetAlarmStateCommand({ AlarmName: name, StateValue: state, StateReason: state === "ALARM" ? "Threshold Crossed: 5 datapoints were less than the threshold (1.0)" : "recovered" }));
    }

    await s3.send(new CreateBucketCommand({ Bucket: "cdc-prod-landing", CreateBucketConfiguration: { LocationConstraint: REGION } }));
    for (const key of [
      "landing/_cdc_state/cdc_slot.json",
      "landing/cdc.public.users/_schema/00000000014E2D80-0000000001.json",
      "landing/cdc.public.users/date=2026-11-30/hour=23/00000000014E2D80-0000000001-00000000014E2D80-0000000100.ndjson",
      "landing/cdc.public.users/date=2026-12-01/hour=09/00000000024E2D80-0000000001-00000000024E2D80-0000000007.ndjson",
      "landing/cdc.public.users/date=2026-12-01/hour=10/00000000034E2D80-0000000001-00000000034E2D80-0000000003.ndjson",
      "landing/cdc.public.users/date=2026-12-01/hour=10/00000000034F0000-0000000001-00000000034F0000-0000000002.ndjson",
      "landing/cdc.public.orders/date=2026-12-01/hour=08/00000000014E2D80-0000000101-00000000014E2D80-0000000200.ndjson.gz",
    ]) {
      await s3.send(new PutObjectCommand({ Bucket: "cdc-prod-landing", Key: key, Body: "{}\n" }));
    }
  }
  after(async () => {
    await moto?.stop();
  });

  it("a healthy stack: one screen, exit 0", async () => {
    const { code, stdout, stderr } = await status(outputs("good-engine", "/ecs/good-engine"), moto.env);
    assert.equal(code, 0, stdout + stderr);
    assert.match(stdout, /^aws eu-west-1: ECS service good-engine in cluster cdc-prod-1a2b3c-cluster, landing s3:\/\/cdc-prod-landing\/landing$/m);
    assert.match(stdout, /^ok {4}service: ACTIVE, 1 of 1 running/m);
    assert.match(stdout, /^ok {4}task [0-9a-f-]+: RUNNING/m);
    assert.match(stdout, /^info {2}restarts: 1 task stopped recently; last: Essential container in task exited/m);
    assert.match(stdout, /^ok {4}engine: streaming, confirmed LSN 0\/1A2B4D0, lag 512 B, last flush [^,]+ ago, 1,240 objects \/ 99,001 changes landed in the minute before \(reported [^)]+ ago\)$/m);
    assert.match(stdout, /^ok {4}alert good-engine-not-running: OK$/m);
    assert.match(stdout, /^info {2}landing cdc\.public\.orders: date=2026-12-01\/hour=08\/00000000014E2D80-0000000101-00000000014E2D80-0000000200\.ndjson\.gz/m);
    assert.match(stdout, /^info {2}landing cdc\.public\.users: date=2026-12-01\/hour=10\/00000000034F0000-0000000001-00000000034F0000-0000000002\.ndjson/m);
    assert.match(stdout, /^healthy$/m);
  });

  it("an unhealthy stack: each problem named, exit 1", async () => {
    const { code, stdout } = await status(outputs("bad-engine", "/ecs/bad-engine"), moto.env);
    assert.equal(code, 1, stdout);
    assert.match(stdout, /^FAIL {2}service: ACTIVE, 0 of 0 running/m);
    assert.match(stdout, /^FAIL {2}engine: reconnecting, confirmed LSN 0\/1A2B3C8, lag 7\.0 MiB, nothing flushed yet, 0 objects \/ 0 changes landed in the minute before \(reported \d+ min ago: too long ago\)$/m);
    assert.match(stdout, /^info {2}last error: cdc-engine stopped on a fatal error: password authentication failed for user "cdc_user" \(\d+ min ago\)$/m);
    assert.match(stdout, /^FAIL {2}alert bad-engine-not-running: ALARM: Threshold Crossed/m);
    assert.match(stdout, /^UNHEALTHY$/m);
  });

  it("says what is wrong with the outputs instead of guessing", async () => {
    const missing = await status({ cloud: "aws", serviceName: "x" }, moto.env);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^cdc-platform: the stack outputs lack engineRuntime \(ecs:<region>:<cluster>\)/);
  });

  it("the engine's metrics line carries what status reads", () => {
    const lines: string[] = [];
    // The engine's own logger, so the line is exactly what lands in the cloud's logs.
    const logger = createLogger({ level: "info", destination: { write: (line: string) => void lines.push(line.trim()) } });
    const metrics = new MetricsLog({ logger, format: "emf", source: "db:5432/app", slot: "cdc_slot", now: () => 1_800_000_000_000 });
    const engine: EngineMetrics = metrics; // what the engine calls
    engine.phase("streaming");
    engine.confirmedLsn(0x1a2b4d0n);
    engine.replicationLagBytes(512n);
    engine.flushed(1_799_999_990_000);
    engine.fileWritten("public.users", 10);
    engine.fileWritten("public.users", 10);
    engine.eventsWritten("public.users", 7, 700);
    metrics.emit();
    const found = scanLogs(lines.map((message) => ({ message })));
    assert.ok(found.progress && !Number.isNaN(found.progress.at.getTime()), lines[0]);
    assert.deepEqual({ ...found.progress, at: undefined }, {
      at: undefined, phase: "streaming", confirmedLsn: "0/1A2B4D0", lagBytes: 512,
      lastFlushAt: new Date(1_799_999_990_000).toISOString(), landingObjects: 2, eventsLanded: 7, stalledSeconds: 0,
    });
  });
});
