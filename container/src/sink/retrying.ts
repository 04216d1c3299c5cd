import { ExponentialBackoff, fullJitterGenerator, handleWhen, retry, TaskCancelledError } from "cockatiel";
import type { LandingSink, ObjectVersion, VersionedObject } from "./types";
import { SinkConditionFailedError, SinkPermanentError, WriterFencedError } from "./types";

/** Errors that retrying cannot change: passed through at once. */
const isFinal = (err: unknown): boolean => err instanceof SinkPermanentError || err instanceof SinkConditionFailedError || err instanceof WriterFencedError;

/** The slice of a pino logger the sink uses, so tests and the engine can pass their own. */
export interface SinkLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface RetryOptions {
  /** First backoff ceiling; each failure doubles it (full jitter: the wait is uniform in [0, ceiling)). */
  initialDelayMs?: number;
  /** The ceiling never grows past this. */
  maxDelayMs?: number;
  logger?: SinkLogger;
  /** Ends retrying (the pending call rejects) when aborted; close() does the same. */
  signal?: AbortSignal;
}

/** Thrown by a call that was still retrying when the sink was closed or its signal aborted. */
export class SinkRetryAbortedError extends Error {
  constructor(url: string, operation: string, key: string, lastError: unknown) {
    super(`sink ${url}: ${operation} ${key} abandoned while retrying (sink closed); last error: ${describeError(lastError)}`, { cause: lastError });
    this.name = "SinkRetryAbortedError";
  }
}

/**
 * Wraps a sink so every transient failure (anything but SinkPermanentError) is retried with
 * exponential backoff and full jitter, without an attempt limit: while the storage is down a put
 * simply does not resolve, so the engine stops confirming to PostgreSQL and stops reading from the
 * slot (its backpressure). A permanent error, a failed condition and a fenced writer are passed
 * through at once. With a fence set (setFence), every retry first checks that this instance still
 * holds the sink, so a stale instance's retried write never lands after another one took over.
 */
export class RetryingSink implements LandingSink {
  private readonly closing = new AbortController();
  private readonly signal: AbortSignal;
  private readonly backoff: ExponentialBackoff<number>;
  private fence: (() => Promise<void>) | undefined;

  constructor(
    private readonly inner: LandingSink,
    private readonly options: RetryOptions = {},
  ) {
    this.signal = options.signal ? AbortSignal.any([options.signal, this.closing.signal]) : this.closing.signal;
    const { createFrom } = inner;
    if (createFrom !== undefined) this.createFrom = (key, parts, contentType) => this.run("create", key, () => createFrom.call(inner, key, parts, contentType));
    this.backoff = new ExponentialBackoff({
      initialDelay: options.initialDelayMs ?? 200,
      maxDelay: options.maxDelayMs ?? 30_000,
      generator: fullJitterGenerator,
    });
  }

  /** Offered only when the inner sink offers it (the batcher joins the parts itself otherwise). */
  readonly createFrom?: (key: string, parts: readonly Uint8Array[], contentType?: string) => Promise<"created" | "exists">;

  get url(): string {
    return this.inner.url;
  }

  put(key: string, body: Uint8Array, contentType?: string): Promise<void> {
    return this.run("put", key, () => this.inner.put(key, body, contentType));
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return this.run("get", key, () => this.inner.get(key), false);
  }

  delete(key: string): Promise<void> {
    return this.run("delete", key, () => this.inner.delete(key));
  }

  create(key: string, body: Uint8Array, contentType?: string): Promise<"created" | "exists"> {
    return this.run("create", key, () => this.inner.create(key, body, contentType));
  }

  read(key: string): Promise<VersionedObject | undefined> {
    return this.run("read", key, () => this.inner.read(key), false);
  }

  stat(key: string): Promise<ObjectVersion | undefined> {
    return this.run("stat", key, () => this.inner.stat(key), false);
  }

  replace(key: string, body: Uint8Array, expected: ObjectVersion | null, contentType?: string): Promise<ObjectVersion> {
    return this.run("replace", key, () => this.inner.replace(key, body, expected, contentType));
  }

  deleteVersion(key: string, version: ObjectVersion): Promise<boolean> {
    return this.run("delete", key, () => this.inner.deleteVersion(key, version));
  }

  /**
   * A check run before every retry of a write or delete; it throws WriterFencedError once another
   * instance holds the sink. Reads are not fenced (the check itself reads).
   */
  setFence(check: (() => Promise<void>) | undefined): void {
    this.fence = check;
  }

  async close(): Promise<void> {
    this.closing.abort();
    await this.inner.close();
  }

  private async run<T>(operation: string, key: string, attempt: () => Promise<T>, fenced = true): Promise<T> {
    let lastError: unknown;
    let failures = 0;
    const policy = retry(
      handleWhen((err) => !isFinal(err)),
      { maxAttempts: Number.POSITIVE_INFINITY, backoff: this.backoff },
    );
    policy.onRetry((event) => {
      failures++;
      const error = "error" in event ? event.error : undefined;
      lastError = error;
      this.options.logger?.warn(
        { sink: this.inner.url, operation, key, attempt: event.attempt, retryInMs: Math.round(event.delay), err: describeError(error) },
        `sink ${operation} failed, retrying: ${describeError(error)}`,
      );
    });
    if (this.signal.aborted) throw new SinkRetryAbortedError(this.inner.url, operation, key, this.signal.reason);
    try {
      const result = await policy.execute(async ({ attempt: n }) => {
        if (n > 0 && fenced && this.fence) await this.fence();
        return attempt();
      }, this.signal);
      if (failures > 0) this.options.logger?.info({ sink: this.inner.url, operation, key, failures }, `sink ${operation} succeeded after ${failures} failed attempt(s)`);
      return result;
    } catch (err) {
      if (err instanceof TaskCancelledError || (this.signal.aborted && !isFinal(err))) {
        throw new SinkRetryAbortedError(this.inner.url, operation, key, lastError ?? err);
      }
      throw err;
    }
  }
}

/** One line for logs: the error's name/code/status and message. */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const e = err as Error & { code?: unknown; $metadata?: { httpStatusCode?: number }; statusCode?: number; status?: number };
  const status = e.$metadata?.httpStatusCode ?? e.statusCode ?? (typeof e.status === "number" ? e.status : undefined);
  const code = typeof e.code === "string" || typeof e.code === "number" ? e.code : undefined;
  const tags = [e.name, code, status].filter((v, i, all) => v !== undefined && v !== "" && all.indexOf(v) === i);
  const message = e.message || (e as { errors?: unknown[] }).errors?.map(String).join("; ") || "(no message)";
  return `${tags.join(" ")}: ${message.split("\n")[0]}`;
}
