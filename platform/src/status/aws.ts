/**
 * Health of an AWS stack through the AWS SDK: the ECS service and its tasks, stopped tasks
 * (restarts), the engine's metrics line in CloudWatch Logs, the CloudWatch alarms on the service,
 * and the newest S3 landing object per table. AWS_ENDPOINT_URL points every client elsewhere
 * (the tests' moto server); credentials and region come from the usual AWS chain.
 */
import { CloudWatchClient, DescribeAlarmsCommand, type MetricAlarm } from "@aws-sdk/client-cloudwatch";
import { CloudWatchLogsClient, FilterLogEventsCommand } from "@aws-sdk/client-cloudwatch-logs";
import { DescribeServicesCommand, DescribeTasksCommand, ECSClient, ListTasksCommand } from "@aws-sdk/client-ecs";
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { landingLines } from "./landing";
import { progressLines, scanLogs } from "./progress";
import type { StackOutputs } from "./outputs";
import { ago, type StatusLine, type StatusReport } from "./report";
import { UsageError } from "../cli";

export interface AwsTarget {
  region: string;
  cluster: string;
  service: string;
  logGroup: string;
  bucket: string;
  prefix: string;
}

export function awsTarget(o: StackOutputs): AwsTarget {
  const runtime = /^ecs:([^:]+):(.+)$/.exec(o.engineRuntime ?? "");
  const logs = /^cloudwatch:([^:]+):(.+)$/.exec(o.logLocation ?? "");
  const landing = /^s3:\/\/([^/]+)\/?(.*)$/.exec(o.landingUrl ?? "");
  if (!runtime || !logs || !landing || !o.serviceName) {
    throw new UsageError("the stack outputs lack engineRuntime (ecs:<region>:<cluster>), serviceName, logLocation (cloudwatch:<region>:<group>) or landingUrl (s3://…): is this an aws stack that `pulumi up` deployed?");
  }
  return { region: runtime[1], cluster: runtime[2], service: o.serviceName, logGroup: logs[2], bucket: landing[1], prefix: landing[2].replace(/\/+$/, "") };
}

export async function awsStatus(t: AwsTarget, now = new Date()): Promise<StatusReport> {
  const endpoint = process.env.AWS_ENDPOINT_URL || undefined;
  const common = { region: t.region, ...(endpoint ? { endpoint } : {}) };
  const ecs = new ECSClient(common);
  const logs = new CloudWatchLogsClient(common);
  const cloudwatch = new CloudWatchClient(common);
  const s3 = new S3Client({ ...common, forcePathStyle: Boolean(endpoint) });
  const lines: StatusLine[] = [];

  const { services = [] } = await ecs.send(new DescribeServicesCommand({ cluster: t.cluster, services: [t.service] }));
  const service = services[0];
  if (!service || service.status === "INACTIVE") {
    lines.push({ ok: false, what: "service", detail: `ECS service ${t.service} not found in cluster ${t.cluster}` });
  } else {
    const primary = service.deployments?.find((d) => d.status === "PRIMARY");
    const running = service.runningCount ?? 0;
    const desired = service.desiredCount ?? 0;
    const failed = primary?.rolloutState === "FAILED";
    lines.push({
      ok: service.status === "ACTIVE" && running >= 1 && running === desired && !failed,
      what: "service",
      detail: `${service.status}, ${running} of ${desired} running${service.pendingCount ? `, ${service.pendingCount} pending` : ""}${primary?.rolloutState ? `, rollout ${primary.rolloutState}` : ""}${failed && primary?.rolloutStateReason ? ` (${primary.rolloutStateReason})` : ""}`,
    });
  }

  const running = await ecs.send(new ListTasksCommand({ cluster: t.cluster, serviceName: t.service, desiredStatus: "RUNNING" }));
  const stopped = await ecs.send(new ListTasksCommand({ cluster: t.cluster, serviceName: t.service, desiredStatus: "STOPPED" }));
  const arns = [...(running.taskArns ?? []), ...(stopped.taskArns ?? [])];
  const { tasks = [] } = arns.length > 0 ? await ecs.send(new DescribeTasksCommand({ cluster: t.cluster, tasks: arns })) : {};
  for (const task of tasks.filter((x) => x.desiredStatus === "RUNNING")) {
    const id = task.taskArn?.split("/").pop() ?? "?";
    lines.push({
      ok: task.lastStatus === "RUNNING" && task.healthStatus !== "UNHEALTHY",
      what: `task ${id}`,
      detail: `${task.lastStatus}, health ${task.healthStatus ?? "UNKNOWN"}${task.startedAt ? `, started ${ago(task.startedAt, now)}` : ""}`,
    });
  }
  const gone = tasks.filter((x) => x.desiredStatus === "STOPPED").sort((a, b) => (b.stoppedAt?.getTime() ?? 0) - (a.stoppedAt?.getTime() ?? 0));
  lines.push({
    ok: undefined,
    what: "restarts",
    detail: gone.length === 0 ? "no stopped tasks (ECS keeps them about an hour)" : `${gone.length} task${gone.length === 1 ? "" : "s"} stopped recently; last: ${gone[0].stoppedReason ?? "no reason given"}${gone[0].stoppedAt ? ` (${ago(gone[0].stoppedAt, now)})` : ""}`,
  });

  const events: { timestamp?: number; message: string }[] = [];
  let nextToken: string | undefined;
  for (let page = 0; page < 20; page++) {
    const result = await logs.send(new FilterLogEventsCommand({ logGroupName: t.logGroup, startTime: now.getTime() - 30 * 60_000, nextToken }));
    for (const e of result.events ?? []) events.push({ timestamp: e.timestamp, message: e.message ?? "" });
    nextToken = result.nextToken;
    if (!nextToken) break;
  }
  lines.push(...progressLines(scanLogs(events), now, `log group ${t.logGroup}`));

  const alarms: MetricAlarm[] = [];
  let alarmToken: string | undefined;
  do {
    const result = await cloudwatch.send(new DescribeAlarmsCommand({ NextToken: alarmToken }));
    alarms.push(...(result.MetricAlarms ?? []));
    alarmToken = result.NextToken;
  } while (alarmToken);
  const mine = alarms.filter((a) => {
    const d = Object.fromEntries((a.Dimensions ?? []).map((x) => [x.Name, x.Value]));
    return d.ClusterName === t.cluster && d.ServiceName === t.service;
  });
  if (mine.length === 0) lines.push({ ok: undefined, what: "alerts", detail: "none configured (alerts.emails)" });
  for (const a of mine) lines.push({ ok: a.StateValue !== "ALARM", what: `alert ${a.AlarmName}`, detail: `${a.StateValue}${a.StateValue === "ALARM" && a.StateReason ? `: ${a.StateReason}` : ""}` });

  lines.push(
    ...(await landingLines(async (prefix) => {
      const result = await s3.send(new ListObjectsV2Command({ Bucket: t.bucket, Prefix: prefix, Delimiter: "/" }));
      return {
        prefixes: (result.CommonPrefixes ?? []).map((p) => p.Prefix!).filter(Boolean),
        objects: (result.Contents ?? []).map((o) => ({ key: o.Key!, lastModified: o.LastModified })),
      };
    }, t.prefix, now)),
  );
  return { title: `aws ${t.region}: ECS service ${t.service} in cluster ${t.cluster}, landing s3://${t.bucket}/${t.prefix}`, lines };
}
