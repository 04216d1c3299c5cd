import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { createServer } from "node:net";
import { createLogger } from "../../container/src/ops/logger";
import { PrometheusMetrics } from "../../container/src/ops/prometheus";
import { startOpsServer, type OpsServer } from "../../container/src/ops/http";

function captureLogger(level: "info" | "debug" | "warn", secrets: string[] = []) {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split("\n").filter(Boolean));
      done();
    },
  });
  const logger = createLogger({ level, secrets, destination: destination as never });
  return { logger, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>), raw: () => lines.join("\n") };
}

describe("engine ops: logger", () => {
  it("writes one JSON object per line with a level name and honours LOG_LEVEL", () => {
    const { logger, records } = captureLogger("info");
    logger.debug("hidden");
    logger.info({ table: "public.users" }, "flushed");
    logger.warn("careful");
    const recs = records();
    assert.deepEqual(recs.map((r) => [r.level, r.msg]), [["info", "flushed"], ["warn", "careful"]]);
    assert.equal(recs[0].table, "public.users");
    assert.equal(recs[0].service, "cdc-engine");
    assert.match(String(recs[0].time), /^\d{4}-\d\d-\d\dT.*Z$/);
  });

  it("never writes PG_PASSWORD, whether as a field or inside a message", () => {
    const password = 'pa"ss\\word-42';
    const { logger, raw, records } = captureLogger("debug", [password]);
    logger.info({ config: { pg: { host: "db", password } } }, "config loaded");
    logger.info({ password }, "direct field");
    logger.error({ err: new Error(`connect to postgres://cdc:${password}@db failed`) }, `retry with ${password}`);
    const text = raw();
    assert.ok(!text.includes(JSON.stringify(password).slice(1, -1)), text);
    assert.ok(!text.includes("word-42"), text);
    const recs = records();
    assert.equal((recs[0].config as { pg: { password: string; host: string } }).pg.password, "[redacted]");
    assert.equal((recs[0].config as { pg: { host: string } }).pg.host, "db");
    assert.equal(recs[1].password, "[redacted]");
    assert.equal(recs[2].msg, "retry with [redacted]");
  });
});

describe("engine ops: HTTP endpoints and metrics", () => {
  let metrics: PrometheusMetrics;
  let server: OpsServer;
  const silent = createLogger({ level: "silent" });
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${server.port}${path}`);
    return { status: res.status, type: res.headers.get("content-type") ?? "", body: await res.text() };
  };

  before(async () => {
    metrics = new PrometheusMetrics();
    server = await startOpsServer({ port: 0, host: "127.0.0.1", metrics, logger: silent });
  });
  after(async () => server?.close());

  it("answers /healthz with 200 at any phase", async () => {
    for (const phase of ["starting", "reconnecting"] as const) {
      metrics.phase(phase);
      const r = await get("/healthz");
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.body), { status: "ok" });
    }
  });

  it("answers /readyz with 503 and a reason until streaming with a known lag, then 200", async () => {
    metrics.phase("snapshot");
    let r = await get("/readyz");
    assert.equal(r.status, 503);
    assert.deepEqual(JSON.parse(r.body), { status: "not_ready", phase: "snapshot", reason: "engine is snapshot, not streaming" });

    metrics.phase("streaming");
    r = await get("/readyz");
    assert.equal(r.status, 503);
    assert.match(JSON.parse(r.body).reason, /lag is not known/);

    metrics.replicationLagBytes(1234n);
    r = await get("/readyz");
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { status: "ready", phase: "streaming", lag_bytes: 1234 });

    // A reconnect makes the engine unready, and the old lag must not make it ready again.
    metrics.phase("reconnecting");
    assert.equal((await get("/readyz")).status, 503);
    metrics.phase("streaming");
    assert.equal((await get("/readyz")).status, 503);
    metrics.replicationLagBytes(0n);
    assert.equal((await get("/readyz")).status, 200);

    metrics.phase("waiting_for_slot");
    r = await get("/readyz");
    assert.equal(r.status, 503);
    assert.equal(JSON.parse(r.body).reason, "engine is waiting for slot, not streaming");

    // The engine passes why it left streaming (a stall, a failed session); /readyz shows it.
    metrics.phase("reconnecting", "no message from PostgreSQL on the replication connection for 6 s");
    r = await get("/readyz");
    assert.equal(r.status, 503);
    assert.equal(JSON.parse(r.body).reason, "engine is reconnecting, not streaming: no message from PostgreSQL on the replication connection for 6 s");
  });

  it("serves the engine's metrics per table plus process metrics as Prometheus text", async () => {
    metrics.eventsWritten("public.users", 10, 1000);
    metrics.eventsWritten("public.users", 5, 500);
    metrics.eventsWritten("public.orders", 2, 80);
    metrics.fileWritten("public.users", 700);
    metrics.fileWritten("public.users", 300);
    metrics.flushed(1_795_000_000_500);
    metrics.confirmedLsn(0x16b3748n);
    metrics.replicationLagBytes(4096n);
    metrics.snapshotProgress("public.users", 65536, 1, 3);
    metrics.snapshotProgress("public.users", 200000, 3, 3);
    metrics.incrementalProgress("public.orders", 12, 49000);
    metrics.snapshotEstimate("public.users", 199500);
    metrics.phase("streaming");

    const r = await get("/metrics");
    assert.equal(r.status, 200);
    assert.match(r.type, /^text\/plain; version=0\.0\.4/);
    const lines = r.body.split("\n");
    const has = (line: string) => assert.ok(lines.includes(line), `missing "${line}" in:\n${r.body}`);
    has('cdc_events_written_total{table="public.users"} 15');
    has('cdc_events_written_total{table="public.orders"} 2');
    has('cdc_bytes_written_total{table="public.users"} 1500');
    has('cdc_files_written_total{table="public.users"} 2');
    has('cdc_file_bytes_written_total{table="public.users"} 1000');
    has("cdc_last_flush_timestamp_seconds 1795000000.5");
    has(`cdc_confirmed_lsn ${0x16b3748}`);
    has("cdc_replication_lag_bytes 4096");
    has('cdc_phase{phase="streaming"} 1');
    has('cdc_phase{phase="snapshot"} 0');
    has('cdc_snapshot_rows_copied{table="public.users"} 200000');
    has('cdc_snapshot_ranges_done{table="public.users"} 3');
    has('cdc_snapshot_ranges{table="public.users"} 3');
    has('cdc_incremental_snapshot_chunks{table="public.orders"} 12');
    has('cdc_incremental_snapshot_rows{table="public.orders"} 49000');
    has('cdc_snapshot_rows_estimated{table="public.users"} 199500');
    assert.ok(lines.some((l) => l.startsWith("process_resident_memory_bytes ")), "default process metrics are exported");
    assert.ok(lines.some((l) => l.startsWith("# TYPE cdc_events_written_total counter")));
  });

  it("answers unknown paths with 404 and other methods with 405", async () => {
    assert.equal((await get("/nope")).status, 404);
    const res = await fetch(`http://127.0.0.1:${server.port}/healthz`, { method: "POST" });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get("allow"), "GET, HEAD");
  });

  it("binds HTTP_HOST when given, all interfaces otherwise, and explains an address this machine does not have", async () => {
    const all = await startOpsServer({ port: 0, metrics: new PrometheusMetrics({ defaultMetrics: false }), logger: silent });
    try {
      assert.ok(all.host === "::" || all.host === "0.0.0.0", all.host);
    } finally {
      await all.close();
    }
    assert.equal(server.host, "127.0.0.1");
    await assert.rejects(
      startOpsServer({ port: 0, host: "192.0.2.1", metrics: new PrometheusMetrics({ defaultMetrics: false }), logger: silent }),
      /^Error: HTTP_HOST 192\.0\.2\.1 is not an address of this machine \(EADDRNOTAVAIL\); unset it to listen on all interfaces/,
    );
  });

  it("fails with a clear message when HTTP_PORT is taken", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      await assert.rejects(
        startOpsServer({ port, host: "127.0.0.1", metrics: new PrometheusMetrics({ defaultMetrics: false }), logger: silent }),
        new RegExp(`HTTP_PORT ${port} is already in use`),
      );
    } finally {
      blocker.close();
    }
  });
});
