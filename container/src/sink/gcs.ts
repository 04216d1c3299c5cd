import { createHash } from "node:crypto";
import { CRC32C, Storage } from "@google-cloud/storage";
import type { Bucket } from "@google-cloud/storage";
import type { LandingSink, ObjectVersion, VersionedObject } from "./types";
import { SinkConditionFailedError, SinkPermanentError } from "./types";

export interface GcsSinkOptions {
  /** gs://bucket/prefix */
  url: string;
  bucket: string;
  /** Without leading or trailing "/"; "" for the bucket root. */
  prefix: string;
  /** A JSON-API endpoint for emulators; storage.googleapis.com when undefined. */
  endpoint?: string;
  /** Per-request timeout; a hung request fails and is retried by the RetryingSink. */
  requestTimeoutMs?: number;
}

type Operation = "put" | "get" | "delete";

const PERMISSIONS: Record<Operation, string> = {
  put: "storage.objects.create (and storage.objects.delete, which overwriting a replayed object needs)",
  get: "storage.objects.get",
  delete: "storage.objects.delete",
};

/**
 * gs://bucket/prefix with application default credentials (on Cloud Run: the service's account;
 * no key files). Each put is a single-request upload whose metadata carries the body's CRC32C and
 * MD5, so GCS rejects a damaged body, and the client compares the hashes of the stored object with
 * its own before put() resolves. GCS object writes are atomic: readers never see a part.
 * Conditional writes are generation preconditions: create-only `ifGenerationMatch=0`,
 * compare-and-swap `ifGenerationMatch=<generation>` (412 when the object is another generation).
 */
export class GcsSink implements LandingSink {
  readonly url: string;
  private readonly bucket: Bucket;

  constructor(private readonly options: GcsSinkOptions) {
    this.url = options.url;
    const storage = new Storage({
      ...(options.endpoint ? { apiEndpoint: options.endpoint.replace(/\/+$/, ""), projectId: process.env.GOOGLE_CLOUD_PROJECT ?? "local-emulator" } : {}),
      // The RetryingSink is the one retry layer: it logs every failure and never gives up.
      retryOptions: { autoRetry: false, maxRetries: 0 },
      timeout: options.requestTimeoutMs ?? 120_000,
    });
    this.bucket = storage.bucket(options.bucket);
  }

  async put(key: string, body: Uint8Array, contentType = "application/x-ndjson"): Promise<void> {
    await this.upload(key, body, contentType, undefined);
  }

  async create(key: string, body: Uint8Array, contentType = "application/x-ndjson"): Promise<"created" | "exists"> {
    try {
      await this.upload(key, body, contentType, 0);
      return "created";
    } catch (err) {
      if (err instanceof SinkConditionFailedError) return "exists";
      throw err;
    }
  }

  async replace(key: string, body: Uint8Array, expected: ObjectVersion | null, contentType = "application/json"): Promise<ObjectVersion> {
    return this.upload(key, body, contentType, expected === null ? 0 : Number(expected));
  }

  async read(key: string): Promise<VersionedObject | undefined> {
    const name = this.objectName(key);
    // The metadata names the current generation; downloading exactly that generation keeps the
    // bytes and the version together (a newer write in between makes it 404: read again).
    for (let attempt = 0; attempt < 5; attempt++) {
      const generation = await this.stat(key);
      if (generation === undefined) return undefined;
      try {
        const [bytes] = await this.bucket.file(name, { generation: Number(generation) }).download({ validation: "crc32c" });
        return { body: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), version: generation };
      } catch (err) {
        if (!isObjectNotFound(err)) throw this.classify("get", name, err);
      }
    }
    throw new Error(`GCS object ${name} changed during each of 5 reads`);
  }

  async stat(key: string): Promise<ObjectVersion | undefined> {
    const name = this.objectName(key);
    try {
      const [metadata] = await this.bucket.file(name).getMetadata();
      return String(metadata.generation);
    } catch (err) {
      if (isObjectNotFound(err)) return undefined;
      throw this.classify("get", name, err);
    }
  }

  async deleteVersion(key: string, version: ObjectVersion): Promise<boolean> {
    const name = this.objectName(key);
    try {
      await this.bucket.file(name).delete({ ifGenerationMatch: Number(version) });
      return true;
    } catch (err) {
      if (isObjectNotFound(err) || (err as { code?: unknown })?.code === 412) return false;
      throw this.classify("delete", name, err);
    }
  }

  /** One verified single-request upload, with a generation precondition when given; resolves with the new generation. */
  private async upload(key: string, body: Uint8Array, contentType: string, ifGenerationMatch: number | undefined): Promise<ObjectVersion> {
    const name = this.objectName(key);
    const buffer = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    const crc = new CRC32C();
    crc.update(buffer);
    const crc32c = crc.toString();
    const md5Hash = createHash("md5").update(buffer).digest("base64");
    const file = this.bucket.file(name);
    try {
      await file.save(buffer, {
        resumable: false,
        validation: "crc32c",
        contentType,
        metadata: { contentType, crc32c, md5Hash },
        ...(ifGenerationMatch !== undefined ? { preconditionOpts: { ifGenerationMatch } } : {}),
      });
    } catch (err) {
      if (ifGenerationMatch !== undefined && (err as { code?: unknown })?.code === 412) throw new SinkConditionFailedError(this.url, key, { cause: err });
      throw this.classify("put", name, err);
    }
    const stored = file.metadata;
    if (stored.crc32c !== crc32c || (stored.md5Hash !== undefined && stored.md5Hash !== md5Hash) || Number(stored.size) !== body.byteLength) {
      throw new Error(`GCS stored ${name} with crc32c=${stored.crc32c} md5=${stored.md5Hash} size=${stored.size}, expected crc32c=${crc32c} md5=${md5Hash} size=${body.byteLength}`);
    }
    if (stored.generation === undefined) throw new Error(`GCS stored ${name} without a generation`);
    return String(stored.generation);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const name = this.objectName(key);
    try {
      // download() validates the bytes against the object's CRC32C (x-goog-hash).
      const [bytes] = await this.bucket.file(name).download({ validation: "crc32c" });
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (err) {
      if (isObjectNotFound(err)) return undefined;
      throw this.classify("get", name, err);
    }
  }

  async delete(key: string): Promise<void> {
    const name = this.objectName(key);
    try {
      await this.bucket.file(name).delete();
    } catch (err) {
      if (isObjectNotFound(err)) return;
      throw this.classify("delete", name, err);
    }
  }

  async close(): Promise<void> {}

  private objectName(key: string): string {
    if (key.split("/").some((part) => part === "" || part === "." || part === "..")) throw new Error(`invalid landing key ${JSON.stringify(key)}`);
    return this.options.prefix ? `${this.options.prefix}/${key}` : key;
  }

  /** Permanent failures become SinkPermanentError naming the URL and the fix; the rest stay transient. */
  private classify(operation: Operation, name: string, err: unknown): unknown {
    const status = (err as { code?: unknown })?.code;
    const message = (err as Error)?.message ?? "";
    const bucket = this.options.bucket;
    const where = `gs://${bucket}/${this.options.prefix ? `${this.options.prefix}/` : ""}*`;
    if (status === 403) {
      return new SinkPermanentError(
        this.url,
        `${PERMISSIONS[operation]} denied on ${where} (object ${name}): grant the Cloud Run service account roles/storage.objectUser on bucket ${bucket}`,
        { cause: err },
      );
    }
    if (status === 401) {
      return new SinkPermanentError(this.url, `the Google credentials were rejected (401: ${message.split("\n")[0]}): run as a service account with roles/storage.objectUser on bucket ${bucket}`, { cause: err });
    }
    if (status === 404) {
      return new SinkPermanentError(this.url, `bucket ${bucket} does not exist${this.options.endpoint ? ` at ${this.options.endpoint}` : ""}: create it or fix SINK_URL`, { cause: err });
    }
    if (/Could not load the default credentials|Unable to detect a Project Id/i.test(message)) {
      return new SinkPermanentError(this.url, `no Google application default credentials (${message.split("\n")[0]}): run on Cloud Run with a service account that has roles/storage.objectUser on bucket ${bucket}`, { cause: err });
    }
    return err;
  }
}

/** A missing object ("No such object: b/o"), as opposed to a missing bucket ("The specified bucket does not exist."). */
function isObjectNotFound(err: unknown): boolean {
  return (err as { code?: unknown })?.code === 404 && /no such object/i.test((err as Error).message ?? "");
}
