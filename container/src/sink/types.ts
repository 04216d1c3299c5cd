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
  /**
   * Create-only write (S3 `If-None-Match: *`, Azure `If-None-Match: *`, GCS `ifGenerationMatch=0`,
   * locally a hard link that fails on an existing name): "exists" when the key is there already,
   * which is then left as it is. Landing data objects and manifests are written this way, so an
   * instance can never replace an object another one wrote.
   */
  create(key: string, body: Uint8Array, contentType?: string): Promise<"created" | "exists">;
  /**
   * Optional: create() of `parts` joined, written without joining them in memory (the engine's
   * batches are chunks of records). The parts are read only until the returned promise settles.
   */
  createFrom?(key: string, parts: readonly Uint8Array[], contentType?: string): Promise<"created" | "exists">;
  /** Reads an object with its version; undefined when it does not exist. */
  read(key: string): Promise<VersionedObject | undefined>;
  /** The version of an object without its body; undefined when it does not exist. */
  stat(key: string): Promise<ObjectVersion | undefined>;
  /**
   * Compare-and-swap: writes the object only if its current version is `expected` (null: only if
   * it does not exist), else throws SinkConditionFailedError. Resolves with the new version.
   */
  replace(key: string, body: Uint8Array, expected: ObjectVersion | null, contentType?: string): Promise<ObjectVersion>;
  /**
   * Deletes the object only while it is still `version`; false when it is gone or was written
   * again meanwhile (that newer object is left alone).
   */
  deleteVersion(key: string, version: ObjectVersion): Promise<boolean>;
  /** Releases connections and handles. */
  close(): Promise<void>;
}

/**
 * One stored version of an object, opaque to callers: S3's ETag, Azure's ETag, GCS's generation,
 * a file's inode and change time.
 */
export type ObjectVersion = string;

export interface VersionedObject {
  body: Uint8Array;
  version: ObjectVersion;
}

/** A conditional write or delete found another version than the one it was made for (HTTP 412). */
export class SinkConditionFailedError extends Error {
  constructor(
    readonly url: string,
    readonly key: string,
    options?: { cause?: unknown },
  ) {
    super(`sink ${url}: ${key} is not the version this instance last read (another writer changed it)`, options);
    this.name = "SinkConditionFailedError";
  }
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

/**
 * Another instance took over the sink (a newer writer epoch is in the engine state): this one
 * must stop at once and write nothing more. Never retried.
 */
export class WriterFencedError extends Error {
  constructor(
    readonly url: string,
    readonly slot: string,
    readonly ours: number,
    readonly theirs: number,
    readonly holder: string | undefined,
  ) {
    super(
      `another instance took over sink ${url} for slot ${slot} (writer epoch ${theirs} > ours ${ours}${holder ? `, held by ${holder}` : ""}); ` +
        `this instance stops without writing anything more. During a rollout this is expected for the old instance; otherwise make sure only one engine runs per PG_SLOT and SINK_URL`,
    );
    this.name = "WriterFencedError";
  }
}
