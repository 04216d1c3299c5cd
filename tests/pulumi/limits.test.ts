/**
 * The table of documented limits (components/limits.ts) rejects what the clouds reject: the checks
 * tests/pulumi/targets.test.ts applies to every registered resource can fail.
 */
import assert from "node:assert/strict";
import { cloudWatchRetention, isoDuration, isoMinutes, LIMITS, logAnalyticsRetention, RESOURCE_LIMITS } from "../../components/limits";

const check = (type: string, inputs: Record<string, any>) => RESOURCE_LIMITS[type](inputs);

describe("documented limits", () => {
  it("Container Apps: failureThreshold above 10, a memory that does not match the CPU, VNet without workload profiles", () => {
    const app = (failureThreshold: number, memory = "0.5Gi") => ({
      containerAppName: "ca-cdc-dev-96bc8d-engine",
      template: { scale: { minReplicas: 1, maxReplicas: 1 }, containers: [{ resources: { cpu: 0.25, memory }, probes: [{ type: "Startup", periodSeconds: 10, timeoutSeconds: 5, failureThreshold }] }] },
    });
    assert.deepEqual(check("azure-native:app:ContainerApp", app(10)), []);
    assert.match(check("azure-native:app:ContainerApp", app(30)).join(), /Startup failureThreshold = 30 is outside 1-10/);
    assert.match(check("azure-native:app:ContainerApp", app(3, "1Gi")).join(), /must be 512 \(2 GiB per vCPU\)/);
    assert.match(check("azure-native:app:ManagedEnvironment", { environmentName: "cae-cdc-dev", vnetConfiguration: { infrastructureSubnetId: "x" } }).join(), /workload-profiles/);
    assert.match(check("azure-native:keyvault:Vault", { vaultName: "kvcdcdev", properties: { softDeleteRetentionInDays: 120 } }).join(), /softDeleteRetentionInDays/);
  });

  it("Cloud Run: revision scaling under manual scaling, a readiness probe without a preview launch stage, a startup window over 240 s", () => {
    const service = (extra: Record<string, any>, startup = { periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 24 }) => ({
      name: "cdc-dev-96bc8d-engine",
      launchStage: "BETA",
      scaling: { scalingMode: "MANUAL", manualInstanceCount: 1 },
      template: { containers: [{ resources: { limits: { cpu: "1", memory: "512Mi" } }, startupProbe: startup, readinessProbe: { periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 } }] },
      ...extra,
    });
    assert.deepEqual(check("gcp:cloudrunv2/service:Service", service({})), []);
    assert.match(check("gcp:cloudrunv2/service:Service", service({ launchStage: undefined })).join(), /readiness probe needs launchStage BETA/);
    const scaled = service({});
    (scaled.template as any).scaling = { maxInstanceCount: 1 };
    assert.match(check("gcp:cloudrunv2/service:Service", scaled).join(), /template\.scaling is set/);
    assert.match(check("gcp:cloudrunv2/service:Service", service({}, { periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 30 })).join(), /exceeds 240 s/);
    const big = service({});
    (big.template.containers[0].resources.limits as any) = { cpu: "1", memory: "8Gi" };
    assert.match(check("gcp:cloudrunv2/service:Service", big).join(), /at least 2 vCPU for more than 4 GiB/);
    assert.match(check("gcp:logging/projectBucketConfig:ProjectBucketConfig", { bucketId: "cdc-logs-ab12", retentionDays: 4000 }).join(), /retentionDays/);
  });

  it("AWS: CloudWatch retention values, secret recovery windows and names, Fargate sizes, ECS health checks", () => {
    assert.match(check("aws:s3/bucket:Bucket", { bucket: "sthree-landing" }).join(), /s3Bucket naming rule/);
    assert.match(check("aws:cloudwatch/logGroup:LogGroup", { name: "/ecs/x/engine", retentionInDays: 8 }).join(), /not a CloudWatch retention value/);
    assert.deepEqual(check("aws:secretsmanager/secret:Secret", { name: "cdc/postgres-password-ab12", recoveryWindowInDays: 0 }), []);
    assert.match(check("aws:secretsmanager/secret:Secret", { name: "cdc/postgres-password-ab12", recoveryWindowInDays: 3 }).join(), /recoveryWindowInDays/);
    assert.match(check("aws:secretsmanager/secret:Secret", { name: "cdc/password-abcdef", recoveryWindowInDays: 0 }).join(), /secretsManager naming rule/, "a hyphen and six characters look like Secrets Manager's own ARN suffix");
    const task = (cpu: string, memory: string, healthCheck: Record<string, number>) => ({ family: "cdc-engine", cpu, memory, containerDefinitions: JSON.stringify([{ healthCheck, stopTimeout: 30, logConfiguration: { options: { "awslogs-group": "/ecs/x/engine" } } }]) });
    assert.deepEqual(check("aws:ecs/taskDefinition:TaskDefinition", task("256", "512", { interval: 15, timeout: 5, retries: 3, startPeriod: 60 })), []);
    assert.match(check("aws:ecs/taskDefinition:TaskDefinition", task("256", "4096", { interval: 15 })).join(), /memory must be from 512 to 2048/);
    assert.match(check("aws:ecs/taskDefinition:TaskDefinition", task("1024", "2048", { interval: 15, retries: 11 })).join(), /retries = 11/);
  });

  it("alerts: Azure's 12-character action group short name, CloudWatch alarm periods, alert policy durations", () => {
    assert.match(check("azure-native:monitor:ActionGroup", { actionGroupName: "ag-cdc", groupShortName: "cdc-engine-alerts" }).join(), /groupShortName/);
    assert.match(check("aws:cloudwatch/metricAlarm:MetricAlarm", { name: "x", period: 45, evaluationPeriods: 5 }).join(), /period 45/);
    assert.match(check("gcp:monitoring/alertPolicy:AlertPolicy", { displayName: "x", conditions: [{ displayName: "c", conditionAbsent: { duration: "5m" } }] }).join(), /duration/);
  });

  it("alerts: CloudWatch's evaluation range, metric filter dimensions, Azure log search windows, log-based metric names, policy alignment", () => {
    const alarm = (period: number, evaluationPeriods: number) => ({ name: "a", period, evaluationPeriods, threshold: 1 });
    assert.deepEqual(check("aws:cloudwatch/metricAlarm:MetricAlarm", alarm(86_400, 1)), []);
    assert.match(check("aws:cloudwatch/metricAlarm:MetricAlarm", alarm(60, 1441)).join(), /exceeds CloudWatch's evaluation range/);
    assert.match(check("aws:cloudwatch/metricAlarm:MetricAlarm", alarm(86_400, 8)).join(), /exceeds/);
    const filter = (dimensions: Record<string, string>, defaultValue?: string) => ({ name: "f", logGroupName: "/ecs/x/engine", metricTransformation: { dimensions, defaultValue } });
    assert.deepEqual(check("aws:cloudwatch/logMetricFilter:LogMetricFilter", filter({ Source: "$.source" })), []);
    assert.match(check("aws:cloudwatch/logMetricFilter:LogMetricFilter", filter({ a: "$.a", b: "$.b", c: "$.c", d: "$.d" })).join(), /at most 3/);
    assert.match(check("aws:cloudwatch/logMetricFilter:LogMetricFilter", filter({ a: "$.a" }, "0")).join(), /defaultValue/);
    const rule = (evaluationFrequency: string, windowSize: string, timeAggregation = "Count") => ({ ruleName: "r", kind: "LogAlert", severity: 1, scopes: ["/w"], evaluationFrequency, windowSize, criteria: { allOf: [{ timeAggregation, operator: "GreaterThan", query: "T" }] } });
    assert.deepEqual(check("azure-native:monitor:ScheduledQueryRule", rule("PT5M", "P1D")), []);
    assert.match(check("azure-native:monitor:ScheduledQueryRule", rule("PT5M", "P3D")).join(), /windowSize \(minutes\) = 4320 is outside 1-2880/);
    assert.match(check("azure-native:monitor:ScheduledQueryRule", rule("PT15M", "PT5M")).join(), /shorter than evaluationFrequency/);
    assert.match(check("azure-native:monitor:ScheduledQueryRule", rule("PT5M", "PT5M", "Minimum")).join(), /needs a metricMeasureColumn/);
    assert.match(check("gcp:logging/metric:Metric", { name: "/starts", filter: "x" }).join(), /gcpLogMetric naming rule/);
    assert.match(check("gcp:logging/metric:Metric", { name: "lag", filter: "x", metricDescriptor: { metricKind: "DELTA", valueType: "DISTRIBUTION" } }).join(), /valueExtractor/);
    const policy = (alignmentPeriod: string, n = 1) => ({ displayName: "p", combiner: "OR", conditions: Array.from({ length: n }, () => ({ displayName: "c", conditionThreshold: { duration: "0s", aggregations: [{ alignmentPeriod }] } })) });
    assert.deepEqual(check("gcp:monitoring/alertPolicy:AlertPolicy", policy("3600s")), []);
    assert.match(check("gcp:monitoring/alertPolicy:AlertPolicy", policy("30s")).join(), /alignmentPeriod/);
    assert.match(check("gcp:monitoring/alertPolicy:AlertPolicy", policy("60s", 7)).join(), /1-6 conditions/);
    // Every restart window a user may choose is valid on all three clouds.
    for (const minutes of LIMITS.alerts.thresholds.restartWindowMinutes) {
      assert.deepEqual(check("aws:cloudwatch/metricAlarm:MetricAlarm", alarm(minutes * 60, 1)), [], `${minutes} min on CloudWatch`);
      assert.deepEqual(check("azure-native:monitor:ScheduledQueryRule", rule("PT5M", isoDuration(minutes))), [], `${minutes} min on Azure`);
      assert.equal(isoMinutes(isoDuration(minutes)), minutes);
      assert.deepEqual(check("gcp:monitoring/alertPolicy:AlertPolicy", policy(`${minutes * 60}s`)), [], `${minutes} min on GCP`);
    }
  });

  it("retention helpers land on allowed values", () => {
    for (const days of [1, 2, 8, 30, 366, 3650, 5000]) assert.ok((LIMITS.aws.logRetentionDays as readonly number[]).includes(cloudWatchRetention(days)), String(days));
    assert.equal(cloudWatchRetention(8), 14);
    assert.deepEqual([logAnalyticsRetention(7), logAnalyticsRetention(90), logAnalyticsRetention(3650)], [30, 90, 730]);
  });
});
