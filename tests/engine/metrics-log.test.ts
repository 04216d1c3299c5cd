/**
 * The periodic metrics log line (container/src/ops/metrics-log.ts): the figures the clouds'
 * log-based alerts read, and a CloudWatch Embedded Metric Format document that follows the spec
 * (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
 * A manual clock drives it: nothing here depends on real time.
 */
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { createLogger } from "../../container/src/ops/logger";
import { EMF_NAMESPACE, METRICS_LOG_MESSAGE, MetricsLog, teeMetrics } from "../../container/src/ops/metrics-log";
import type { EngineMetrics } from "../../container/src/ops/metrics";
import { PrometheusMetrics } from "../../container/src/ops/prometheus";

// Parsed JSON log lines, read field by field.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Line = Record<string, any>;
type Metric = { Name: string; Unit: string };

function setup(format: "json" | "emf", level: "info" | "warn" = "info") {
  const lines: Line[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  let clock = 1_700_000_000_000;
  const logger = createLogger({ level, destination: destination as never });
  const log: MetricsLog & EngineMetrics = new MetricsLog({ logger, format, source: "db.example.com:5432/app", slot: "cdc_slot", now: () => clock });
  return { log, lines, advance: (ms: number) => (clock += ms), now: () => clock };
}

describe("engine ops: metrics log line", () => {
  it("reports what landed in the interval, the lag while streaming, and counts restart from zero", () => {
    const { log, lines } = setup("json");
    log.phase("streaming");
    log.eventsWritten("public.users", 40, 4000);
    log.fileWritten("public.users", 900);
    log.eventsWritten("public.orders", 2, 300);
    log.fileWritten("public.orders", 120);
    log.confirmedLsn(100n);
    log.replicationLagBytes(2048n);
    log.emit();
    log.emit();
    assert.equal(lines.length, 2);
    const [first, second] = lines;
    assert.deepEqual(
      [first.msg, first.level, first.landingObjects, first.eventsLanded, first.lagBytes, first.phase, first.Source, first.Slot],
      [METRICS_LOG_MESSAGE, "info", 2, 42, 2048, "streaming", "db.example.com:5432/app", "cdc_slot"],
    );
    assert.deepEqual([second.landingObjects, second.eventsLanded], [0, 0]);
    assert.equal(first._aws, undefined, "plain JSON has no EMF block");
  });

  it("counts stalled seconds only while the slot holds unconfirmed WAL and nothing lands or is confirmed", () => {
    const { log, advance } = setup("json");
    log.phase("streaming");
    log.replicationLagBytes(0n);
    advance(600_000);
    assert.equal(log.take().stalledSeconds, 0, "nothing to do is not a stall");
    log.replicationLagBytes(5_000n);
    advance(120_000);
    assert.equal(log.take().stalledSeconds, 720, "changes waiting since the last progress");
    log.confirmedLsn(200n);
    advance(30_000);
    assert.equal(log.take().stalledSeconds, 30, "a confirmation is progress");
    log.confirmedLsn(200n);
    advance(30_000);
    assert.equal(log.take().stalledSeconds, 60, "confirming the same LSN again is not");
    log.fileWritten("public.users", 10);
    assert.equal(log.take().stalledSeconds, 0, "a landing object is progress");
    // A reconnect loop that never gets back to streaming keeps counting, without a lag figure.
    log.phase("reconnecting");
    advance(900_000);
    const line = log.take();
    assert.equal(line.stalledSeconds, 900);
    assert.equal(line.lagBytes, undefined, "a lag from before the reconnect is not reported as current");
  });

  it("emf: a valid Embedded Metric Format document (namespace, dimension set, metric values at the root)", () => {
    const { log, lines, now } = setup("emf");
    log.phase("streaming");
    log.replicationLagBytes(123n);
    log.fileWritten("public.users", 1);
    log.emit();
    const doc = lines[0];
    assert.equal(doc._aws.Timestamp, now());
    assert.equal(doc._aws.CloudWatchMetrics.length, 1);
    const directive = doc._aws.CloudWatchMetrics[0];
    assert.equal(directive.Namespace, EMF_NAMESPACE);
    assert.deepEqual(directive.Dimensions, [["Source", "Slot"]]);
    // Every dimension is a string member of the root; every metric a number member.
    for (const d of directive.Dimensions[0]) assert.equal(typeof doc[d], "string", d);
    assert.deepEqual(directive.Metrics.map((m: Metric) => m.Name), ["ReplicationLagBytes", "LandingObjects", "EventsLanded", "StalledSeconds"]);
    for (const m of directive.Metrics) assert.equal(typeof doc[m.Name], "number", m.Name);
    assert.deepEqual([doc.ReplicationLagBytes, doc.LandingObjects, doc.StalledSeconds], [123, 1, 0]);
    // No lag while not streaming: the metric is left out rather than sent stale.
    log.phase("waiting_for_slot");
    log.emit();
    assert.deepEqual(lines[1]._aws.CloudWatchMetrics[0].Metrics.map((m: Metric) => m.Name), ["LandingObjects", "EventsLanded", "StalledSeconds"]);
    assert.equal(lines[1].ReplicationLagBytes, undefined);
  });

  it("is written even when LOG_LEVEL hides info lines (alerts depend on it)", () => {
    const { log, lines } = setup("json", "warn");
    log.emit();
    assert.equal(lines.length, 1);
    assert.equal(lines[0].msg, METRICS_LOG_MESSAGE);
  });

  it("teeMetrics feeds the Prometheus metrics and the metrics line alike", async () => {
    const { log } = setup("json");
    const prom = new PrometheusMetrics({ defaultMetrics: false });
    const both = teeMetrics(prom, log);
    both.phase("streaming");
    both.fileWritten("public.users", 10);
    both.replicationLagBytes(7n);
    assert.equal(prom.readiness().lagBytes, 7);
    assert.match(await prom.text(), /cdc_files_written_total\{table="public.users"\} 1/);
    assert.equal(log.take().landingObjects, 1);
    // The reason reaches /readyz through the tee too.
    both.phase("waiting_for_slot", "replication slot cdc_slot is in use by another consumer (PID 7)");
    assert.match(JSON.stringify(prom.readiness()), /in use by another consumer \(PID 7\)/);
  });
});
