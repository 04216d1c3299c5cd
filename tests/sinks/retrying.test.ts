/**
 * The RetryingSink's policy on its own, with an in-memory sink that fails on cue (the storage
 * servers' behaviour is covered by the per-cloud tests): transient errors are retried with capped
 * backoff and logged, permanent errors pass through at once, an AbortSignal ends retrying.
 */
import assert from "node:assert/strict";
import { RetryingSink, SinkPermanentError, SinkRetryAbortedError, type LandingSink } from "../../container/src/sink";
import { SinkConditionFailedError, WriterFencedError } from "../../container/src/sink/types";

class FlakySink implements LandingSink {
  readonly url = "s3://flaky/prefix";
  readonly objects = new Map<string, Uint8Array>();
  attempts = 0;
  constructor(private readonly failures: (() => Error)[]) {}
  async put(key: string, body: Uint8Array): Promise<void> {
    this.attempts++;
    const failure = this.failures.shift();
    if (failure) throw failure();
    this.objects.set(key, body);
  }
  async get(key: string): Promise<Uint8Array | undefined> {
    return this.objects.get(key);
  }
  async delete(key: string): Promise<void> {
    this.objects.delete(key);
  }
  async create(key: string, body: Uint8Array): Promise<"created" | "exists"> {
    if (this.objects.has(key)) return "exists";
    await this.put(key, body);
    return "created";
  }
  async read(key: string) {
    const body = this.objects.get(key);
    return body && { body, version: String(body.length) };
  }
  async stat(key: string) {
    return (await this.read(key))?.version;
  }
  async replace(key: string, body: Uint8Array): Promise<string> {
    await this.put(key, body);
    return String(body.length);
  }
  async deleteVersion(key: string): Promise<boolean> {
    return this.objects.delete(key);
  }
  async close(): Promise<void> {}
}

const errno = (code: string) => Object.assign(new Error(`socket ${code}`), { code });
const http = (name: string, status: number) => Object.assign(new Error(`${name} from the service`), { name, $metadata: { httpStatusCode: status } });

describe("sinks: RetryingSink policy", () => {
  it("retries throttling, 5xx, timeouts and connection errors with capped, jittered backoff, logging each failure", async () => {
    const failures = [() => errno("ECONNRESET"), () => errno("ECONNREFUSED"), () => http("SlowDown", 503), () => http("InternalError", 500), () => http("TooManyRequests", 429), () => errno("ETIMEDOUT"), () => new Error("socket hang up")];
    const inner = new FlakySink([...failures]);
    const warnings: { obj: Record<string, unknown>; msg: string }[] = [];
    const infos: string[] = [];
    const sink = new RetryingSink(inner, {
      initialDelayMs: 5,
      maxDelayMs: 20,
      logger: { warn: (obj, msg) => void warnings.push({ obj: obj as Record<string, unknown>, msg }), info: (_o, msg) => void infos.push(msg) },
    });
    await sink.put("k", Buffer.from("x"));
    assert.equal(inner.attempts, failures.length + 1);
    assert.deepEqual(Buffer.from(inner.objects.get("k")!), Buffer.from("x"));
    assert.equal(warnings.length, failures.length);
    for (const w of warnings) {
      assert.equal(w.obj.sink, "s3://flaky/prefix");
      assert.equal(w.obj.operation, "put");
      assert.equal(w.obj.key, "k");
      assert.ok((w.obj.retryInMs as number) >= 0 && (w.obj.retryInMs as number) <= 20, `delay ${w.obj.retryInMs} within the cap`);
    }
    assert.match(warnings[0].msg, /ECONNRESET/);
    assert.match(warnings[2].msg, /SlowDown 503/);
    assert.deepEqual(infos, [`sink put succeeded after ${failures.length} failed attempt(s)`]);
  });

  it("passes a permanent error through on the first attempt", async () => {
    const inner = new FlakySink([() => new SinkPermanentError("s3://flaky/prefix", "s3:PutObject denied")]);
    const sink = new RetryingSink(inner, { initialDelayMs: 5 });
    await assert.rejects(sink.put("k", Buffer.from("x")), { name: "SinkPermanentError", message: "sink s3://flaky/prefix: s3:PutObject denied" });
    assert.equal(inner.attempts, 1);
  });

  it("keeps retrying past any fixed attempt count, until the caller's AbortSignal ends it", async () => {
    const inner = new FlakySink(Array.from({ length: 10_000 }, () => () => errno("ECONNREFUSED")));
    const controller = new AbortController();
    const sink = new RetryingSink(inner, { initialDelayMs: 1, maxDelayMs: 2, signal: controller.signal });
    const pending = sink.put("k", Buffer.from("x"));
    while (inner.attempts < 50) await new Promise((r) => setTimeout(r, 10));
    controller.abort();
    await assert.rejects(pending, (err: Error) => err instanceof SinkRetryAbortedError && /put k abandoned while retrying .*ECONNREFUSED/.test(err.message));
    const attempts = inner.attempts;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(inner.attempts, attempts, "no attempt after the abort");
    await assert.rejects(sink.put("k2", Buffer.from("y")), SinkRetryAbortedError);
  });

  it("checks the fence before every retry: a replaced instance's failed write is not tried again", async () => {
    const inner = new FlakySink([() => errno("ECONNRESET"), () => errno("ECONNRESET")]);
    const sink = new RetryingSink(inner, { initialDelayMs: 1, maxDelayMs: 2 });
    let checks = 0;
    sink.setFence(async () => {
      checks++;
      throw new WriterFencedError(sink.url, "cdc_slot", 1, 2, undefined);
    });
    await assert.rejects(sink.create("k", Buffer.from("x")), WriterFencedError);
    assert.equal(inner.attempts, 1, "only the first attempt was made");
    assert.equal(checks, 1);
    assert.equal(inner.objects.has("k"), false);
  });

  it("does not fence reads (the fence check itself reads, through the same sink)", async () => {
    const inner = new FlakySink([]);
    inner.objects.set("state", Buffer.from("{}"));
    const sink = new RetryingSink(inner, { initialDelayMs: 1, maxDelayMs: 2 });
    let checks = 0;
    sink.setFence(async () => {
      checks++;
      await sink.read("state");
    });
    const flaky = inner as unknown as { read(key: string): Promise<unknown> };
    let failures = 2;
    const read = flaky.read.bind(inner);
    flaky.read = async (key: string) => {
      if (failures-- > 0) throw errno("ECONNRESET");
      return read(key);
    };
    assert.deepEqual(Buffer.from((await sink.read("state"))!.body).toString(), "{}");
    assert.equal(checks, 0, "a retried read runs no fence check");
  });

  it("passes a failed write condition through at once (retrying cannot change it)", async () => {
    const inner = new FlakySink([() => new SinkConditionFailedError("s3://flaky/prefix", "k")]);
    const sink = new RetryingSink(inner, { initialDelayMs: 1 });
    await assert.rejects(sink.replace("k", Buffer.from("x"), "v1"), SinkConditionFailedError);
    assert.equal(inner.attempts, 1);
  });
});
