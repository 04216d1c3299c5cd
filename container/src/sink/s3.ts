import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import type { LandingSink, ObjectVersion, VersionedObject } from "./types";
import { SinkConditionFailedError, SinkPermanentError } from "./types";

export interface S3SinkOptions {
  url: string;
  bucket: string;
  /** Without leading or trailing "/"; "" for the bucket root. */
  prefix: string;
  /** An S3-compatible endpoint (MinIO, s3rver, …); AWS itself when undefined. */
  endpoint?: string;
  forcePathStyle?: boolean;
  /** Per-request socket timeout; a hung request fails and is retried by the RetryingSink. */
  requestTimeoutMs?: number;
}

/**
 * s3://bucket/prefix through the AWS SDK's default credential chain (on ECS: the task role; never
 * keys in configuration). Every PUT carries Content-MD5 and a CRC32 checksum, so S3 rejects a body
 * that was damaged on the way, and the response is checked against them before put() resolves.
 * S3 PUTs are atomic: readers see the old object or the new one, never a part.
 *
 * Conditional writes: create-only is `If-None-Match: *`, compare-and-swap is `If-Match: <ETag>`;
 * S3 answers 412 PreconditionFailed (404 for If-Match on a missing key) when the condition fails.
 */
export class S3Sink implements LandingSink {
  readonly url: string;
  private readonly client: S3Client;

  constructor(private readonly options: S3SinkOptions) {
    this.url = options.url;
    const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? (options.endpoint ? "us-east-1" : undefined);
    this.client = new S3Client({
      ...(region ? { region } : {}),
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      forcePathStyle: options.forcePathStyle ?? false,
      followRegionRedirects: true,
      // The RetryingSink is the one retry layer: it logs every failure and never gives up.
      maxAttempts: 1,
      requestHandler: { connectionTimeout: 10_000, requestTimeout: options.requestTimeoutMs ?? 120_000 },
    });
  }

  async put(key: string, body: Uint8Array, contentType = "application/x-ndjson"): Promise<void> {
    await this.send(key, body, contentType, {});
  }

  async create(key: string, body: Uint8Array, contentType = "application/x-ndjson"): Promise<"created" | "exists"> {
    try {
      await this.send(key, body, contentType, { IfNoneMatch: "*" });
      return "created";
    } catch (err) {
      if (err instanceof SinkConditionFailedError) return "exists";
      throw err;
    }
  }

  async replace(key: string, body: Uint8Array, expected: ObjectVersion | null, contentType = "application/json"): Promise<ObjectVersion> {
    return this.send(key, body, contentType, expected === null ? { IfNoneMatch: "*" } : { IfMatch: expected });
  }

  async read(key: string): Promise<VersionedObject | undefined> {
    return this.fetch(key);
  }

  async stat(key: string): Promise<ObjectVersion | undefined> {
    try {
      const response = await this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: this.objectKey(key) }));
      return response.ETag;
    } catch (err) {
      if (isMissingObject(err)) return undefined;
      throw this.classify("get", key, err);
    }
  }

  async deleteVersion(key: string, version: ObjectVersion): Promise<boolean> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.objectKey(key), IfMatch: version }));
      return true;
    } catch (err) {
      if (isPreconditionFailed(err) || isMissingObject(err)) return false;
      throw this.classify("delete", key, err);
    }
  }

  /** One verified PutObject with the given conditions; resolves with the stored ETag. */
  private async send(key: string, body: Uint8Array, contentType: string, conditions: { IfNoneMatch?: string; IfMatch?: string }): Promise<ObjectVersion> {
    const md5 = createHash("md5").update(body).digest();
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body) >>> 0);
    const checksum = crc.toString("base64");
    const command = new PutObjectCommand({
      Bucket: this.options.bucket,
      Key: this.objectKey(key),
      Body: body,
      ContentLength: body.byteLength,
      ContentType: contentType,
      ContentMD5: md5.toString("base64"),
      ChecksumCRC32: checksum,
      ...conditions,
    });
    let response;
    try {
      response = await this.client.send(command);
    } catch (err) {
      const conditional = conditions.IfMatch !== undefined || conditions.IfNoneMatch !== undefined;
      if (conditional && (isPreconditionFailed(err) || (conditions.IfMatch !== undefined && isMissingObject(err)))) throw new SinkConditionFailedError(this.url, key, { cause: err });
      throw this.classify("put", key, err);
    }
    // S3 has already checked both digests against the bytes it stored; the response confirms it
    // (where the service echoes them: the CRC32 on AWS, the MD5 ETag for unencrypted/SSE-S3 objects).
    if (response.ChecksumCRC32 !== undefined && response.ChecksumCRC32 !== checksum) {
      throw new Error(`S3 stored ${this.objectKey(key)} with CRC32 ${response.ChecksumCRC32}, expected ${checksum}`);
    }
    const etag = response.ETag?.replace(/"/g, "");
    const etagIsMd5 = etag !== undefined && /^[0-9a-f]{32}$/.test(etag) && (response.ServerSideEncryption === undefined || response.ServerSideEncryption === "AES256");
    if (etagIsMd5 && etag !== md5.toString("hex")) {
      throw new Error(`S3 stored ${this.objectKey(key)} with ETag ${etag}, expected MD5 ${md5.toString("hex")}`);
    }
    if (etag === undefined && response.ChecksumCRC32 === undefined) {
      throw new Error(`S3 acknowledged ${this.objectKey(key)} without an ETag or checksum; cannot confirm the write`);
    }
    return response.ETag ?? `"${md5.toString("hex")}"`;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    return (await this.fetch(key))?.body;
  }

  private async fetch(key: string): Promise<VersionedObject | undefined> {
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: this.objectKey(key), ChecksumMode: "ENABLED" }));
      const bytes = await response.Body!.transformToByteArray();
      if (response.ContentLength !== undefined && bytes.byteLength !== response.ContentLength) {
        throw new Error(`S3 returned ${bytes.byteLength} of ${response.ContentLength} bytes of ${this.objectKey(key)}`);
      }
      const etag = response.ETag?.replace(/"/g, "");
      if (etag && /^[0-9a-f]{32}$/.test(etag) && (response.ServerSideEncryption === undefined || response.ServerSideEncryption === "AES256")) {
        const md5 = createHash("md5").update(bytes).digest("hex");
        if (md5 !== etag) throw new Error(`S3 returned ${this.objectKey(key)} with MD5 ${md5}, but its ETag is ${etag}`);
      }
      return { body: bytes, version: response.ETag ?? "" };
    } catch (err) {
      if (isMissingObject(err)) return undefined;
      throw this.classify("get", key, err);
    }
  }

  async delete(key: string): Promise<void> {
    // DeleteObject of a missing key succeeds (204) on S3.
    const command = new DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.objectKey(key) });
    await this.guard("delete", key, () => this.client.send(command));
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private async guard<T>(operation: Operation, key: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw this.classify(operation, key, err);
    }
  }

  private objectKey(key: string): string {
    if (key.split("/").some((part) => part === "" || part === "." || part === "..")) throw new Error(`invalid landing key ${JSON.stringify(key)}`);
    return this.options.prefix ? `${this.options.prefix}/${key}` : key;
  }

  /** Permanent failures become SinkPermanentError naming the URL and the fix; the rest stay transient. */
  private classify(operation: Operation, key: string, err: unknown): unknown {
    const name = (err as Error)?.name ?? "";
    const status = (err as S3ServiceException)?.$metadata?.httpStatusCode;
    const bucket = this.options.bucket;
    const resource = `arn:aws:s3:::${bucket}/${this.options.prefix ? `${this.options.prefix}/` : ""}*`;
    const where = `s3://${bucket}/${this.options.prefix ? `${this.options.prefix}/` : ""}*`;
    const action = { put: "s3:PutObject", get: "s3:GetObject", delete: "s3:DeleteObject" }[operation];
    if (name === "AccessDenied" || name === "AllAccessDisabled" || (status === 403 && !["InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "RequestTimeTooSkewed"].includes(name))) {
      const hint = operation === "get" ? " (also grant s3:ListBucket on the bucket, or a missing object reads as 403 instead of 404)" : "";
      return new SinkPermanentError(this.url, `${action} denied on ${where} (${resource}) for ${this.options.prefix ? "key " : ""}${this.objectKey(key)}: grant it to the task role${hint}`, { cause: err });
    }
    if (name === "NoSuchBucket") {
      return new SinkPermanentError(this.url, `bucket ${bucket} does not exist${this.options.endpoint ? ` at ${this.options.endpoint}` : ""}: create it or fix SINK_URL`, { cause: err });
    }
    if (name === "InvalidAccessKeyId" || name === "SignatureDoesNotMatch") {
      return new SinkPermanentError(this.url, `the AWS credentials were rejected (${name}): run with a task role (or fix the credentials the default chain finds); never put keys in SINK_URL`, { cause: err });
    }
    if (name === "CredentialsProviderError") {
      return new SinkPermanentError(this.url, `no AWS credentials found (${(err as Error).message}): run the task with a task role that may ${action} on ${resource}`, { cause: err });
    }
    if (/Region is missing/i.test((err as Error)?.message ?? "")) {
      return new SinkPermanentError(this.url, `no AWS region configured: set AWS_REGION (for example AWS_REGION=eu-west-1)`, { cause: err });
    }
    return err;
  }
}

type Operation = "put" | "get" | "delete";

const isMissingObject = (err: unknown): boolean => err instanceof S3ServiceException && (err.name === "NoSuchKey" || err.name === "NotFound" || (err.$metadata.httpStatusCode === 404 && err.name !== "NoSuchBucket"));

const isPreconditionFailed = (err: unknown): boolean => err instanceof S3ServiceException && (err.name === "PreconditionFailed" || err.$metadata.httpStatusCode === 412);
