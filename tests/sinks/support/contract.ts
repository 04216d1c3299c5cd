/**
 * The behaviour every cloud sink must show, run against each storage server: round trips,
 * overwrite, prefix placement, verified writes (a body damaged in transit is never stored),
 * an outage in the middle (the put waits, then lands; nothing written before is lost), and
 * close() ending a put that is still retrying.
 */
import assert from "node:assert/strict";
import { loadConfig, type EngineConfig } from "../../../container/src/config";
import { createSink, probeSink, SinkRetryAbortedError, type LandingSink, type SinkLogger } from "../../../container/src/sink";
import type { StorageServer } from "./emulators";
import { startCorruptingProxy } from "./corrupting-proxy";

export interface RecordingLogger extends SinkLogger {
  warnings: string[];
}

export function recordingLogger(): RecordingLogger {
  const warnings: string[] = [];
  return { warnings, info: () => undefined, warn: (_obj, msg) => void warnings.push(msg) };
}

/** An EngineConfig as the engine would load it, for a sink URL and the sink's own variables. */
export function sinkConfig(sinkUrl: string, env: Record<string, string> = {}): EngineConfig {
  return loadConfig({ PG_HOST: "127.0.0.1", PG_DATABASE: "app", PG_USER: "cdc", SINK_URL: sinkUrl, LOG_LEVEL: "silent", ...env });
}

export interface ContractTarget {
  /** The server under test (restartable on the same port). */
  server: () => StorageServer;
  /** SINK_URL with a prefix, and the same bucket/container without one. */
  url: string;
  rootUrl: string;
  prefix: string;
  /** Sink variables pointing at a given endpoint port (the server's, or a proxy's). */
  env(port: number): Record<string, string>;
}

export async function openSink(target: ContractTarget, url: string, port: number, logger: SinkLogger = recordingLogger()): Promise<LandingSink> {
  return createSink(sinkConfig(url, target.env(port)), { logger, initialDelayMs: 50, maxDelayMs: 500 });
}

export function sinkContract(target: ContractTarget): void {
  const key = (name: string) => `cdc.public.items/date=2026-11-21/hour=12/${name}-${Math.random().toString(36).slice(2)}.ndjson`;
  const ndjson = (n: number, marker = "") =>
    Buffer.from(Array.from({ length: n }, (_, i) => JSON.stringify({ id: i, name: `row ${i} ${marker}`, __op: "c" })).join("\n") + "\n");

  it("puts, gets and deletes objects under the URL's prefix; missing objects read as undefined", async () => {
    const sink = await openSink(target, target.url, target.server().port);
    const root = await openSink(target, target.rootUrl, target.server().port);
    try {
      const k = key("roundtrip");
      const body = ndjson(1000);
      await sink.put(k, body);
      assert.deepEqual(Buffer.from((await sink.get(k))!), body);
      // The object lives under the prefix of the SINK_URL, nowhere else.
      assert.deepEqual(Buffer.from((await root.get(`${target.prefix}/${k}`))!), body);
      assert.equal(await root.get(k), undefined);
      await sink.delete(k);
      assert.equal(await sink.get(k), undefined);
      await sink.delete(k); // deleting a missing key is not an error
      assert.equal(await sink.get(key("never-written")), undefined);
    } finally {
      await sink.close();
      await root.close();
    }
  });

  it("replaces an object whole when the same key is written again (a replay overwrites)", async () => {
    const sink = await openSink(target, target.url, target.server().port);
    try {
      const k = key("overwrite");
      await sink.put(k, ndjson(5000));
      const shorter = ndjson(3);
      await sink.put(k, shorter);
      assert.deepEqual(Buffer.from((await sink.get(k))!), shorter);
      const empty = Buffer.alloc(0);
      await sink.put(k, empty);
      assert.deepEqual(Buffer.from((await sink.get(k))!), empty);
    } finally {
      await sink.close();
    }
  });

  it("never stores a body damaged in transit: the service rejects it and the put is retried until the intact body lands", async () => {
    const proxy = await startCorruptingProxy(target.server(), "CORRUPT-ME", 2);
    const logger = recordingLogger();
    const sink = await openSink(target, target.url, proxy.port, logger);
    try {
      const k = key("verified");
      const body = ndjson(200, "CORRUPT-ME");
      await sink.put(k, body);
      assert.equal(proxy.corrupted, 2, "the proxy damaged the first two uploads");
      assert.equal(logger.warnings.length >= 2, true, `both rejected attempts were logged: ${logger.warnings.join(" | ")}`);
      const direct = await openSink(target, target.url, target.server().port);
      try {
        assert.deepEqual(Buffer.from((await direct.get(k))!), body);
      } finally {
        await direct.close();
      }
    } finally {
      await sink.close();
      await proxy.close();
    }
  });

  it("waits through an outage: a put made while the server is down lands once it is back, and nothing is lost", async () => {
    const logger = recordingLogger();
    const sink = await openSink(target, target.url, target.server().port, logger);
    try {
      const before = key("before-outage");
      await sink.put(before, ndjson(10));
      await target.server().stop();
      const during = key("during-outage");
      const body = ndjson(50);
      let settled: "resolved" | "rejected" | undefined;
      const pending = sink.put(during, body).then(
        () => void (settled = "resolved"),
        (err) => {
          settled = "rejected";
          throw err;
        },
      );
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(settled, undefined, "the put must not settle while the storage is down");
      assert.ok(logger.warnings.length >= 1, "the failed attempts are logged");
      await target.server().start();
      await pending;
      assert.equal(settled, "resolved");
      assert.deepEqual(Buffer.from((await sink.get(during))!), body);
      assert.deepEqual(Buffer.from((await sink.get(before))!), ndjson(10));
    } finally {
      await target.server().start().catch(() => undefined);
      await sink.close();
    }
  });

  it("doctor's probe writes, reads back and deletes one object, and reports an unreachable server in one attempt", async () => {
    const ok = await probeSink(sinkConfig(target.url, target.env(target.server().port)));
    assert.equal(ok.ok, true, ok.message);
    assert.match(ok.message, new RegExp(`^sink ${target.url.replace(/[/.]/g, "\\$&")} is writable \\(wrote, read back and deleted _cdc_probe/.+\\.txt\\)$`));
    const root = await openSink(target, target.rootUrl, target.server().port);
    try {
      const probeKey = /deleted (_cdc_probe\/\S+\.txt)/.exec(ok.message)![1];
      assert.equal(await root.get(`${target.prefix}/${probeKey}`), undefined, "the probe object is gone");
    } finally {
      await root.close();
    }
    await target.server().stop();
    try {
      const down = await probeSink(sinkConfig(target.url, target.env(target.server().port)), 10_000);
      assert.equal(down.ok, false);
      assert.match(down.message, new RegExp(`^sink ${target.url.replace(/[/.]/g, "\\$&")}: probe write failed: `));
    } finally {
      await target.server().start();
    }
  });

  it("close() ends a put that is still retrying, with an error naming the key", async () => {
    const sink = await openSink(target, target.url, target.server().port);
    await target.server().stop();
    try {
      const k = key("abandoned");
      const pending = sink.put(k, ndjson(1));
      await new Promise((r) => setTimeout(r, 300));
      await sink.close();
      await assert.rejects(pending, (err: Error) => err instanceof SinkRetryAbortedError && err.message.includes(k) && err.message.includes(target.url));
    } finally {
      await target.server().start();
    }
  });
}
