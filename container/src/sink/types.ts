/**
 * The sink interface every landing destination implements (file://, s3://, abfss://, gs://).
 * Keys are "/"-separated and relative to the sink's root (the SINK_URL), e.g.
 * `cdc.public.users/date=2026-11-21/hour=12/00000000016B3748-0000000000.ndjson`.
 */
export interface LandingSink {
  /** The SINK_URL this sink writes to, for logs and error messages. */
  readonly url: string;
  /**
   * Writes the object and resolves only once it is complete and durable (fsync'd and renamed;
   * or acknowledged and verified by the cloud service). Writing an existing key replaces it whole:
   * readers never see a partial object.
   */
  put(key: string, body: Uint8Array, contentType?: string): Promise<void>;
  /** Reads an object (used for the engine's small state object); undefined when it does not exist. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Deletes an object; deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Releases connections and handles. */
  close(): Promise<void>;
}

/**
 * A failure that retrying cannot fix (access denied, missing bucket or container, bad endpoint):
 * the engine stops with this message. Any other error thrown by a sink is treated as transient.
 */
export class SinkPermanentError extends Error {
  constructor(
    readonly url: string,
    /** What is wrong and how to fix it, e.g. "s3:PutObject is denied on arn:aws:s3:::bucket/landing/*; grant it to the task role". */
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(`sink ${url}: ${problem}`, options);
    this.name = "SinkPermanentError";
  }
}
