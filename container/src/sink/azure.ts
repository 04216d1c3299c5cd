import { createHash, randomBytes } from "node:crypto";
import { BlobServiceClient, RestError } from "@azure/storage-blob";
import type { BlobRequestConditions, ContainerClient } from "@azure/storage-blob";
import { DefaultAzureCredential } from "@azure/identity";
import type { LandingSink, ObjectVersion, VersionedObject } from "./types";
import { SinkConditionFailedError, SinkPermanentError } from "./types";

export interface AzureSinkOptions {
  /** abfss://container@account.dfs.core.windows.net/prefix */
  url: string;
  account: string;
  container: string;
  /** Without leading or trailing "/"; "" for the container root. */
  prefix: string;
  /** Overrides the managed identity, for emulators (Azurite) and local runs. */
  connectionString?: string;
  /** Per-request timeout; a hung request fails and is retried by the RetryingSink. */
  requestTimeoutMs?: number;
}

type Operation = "put" | "get" | "delete";

const ACTIONS: Record<Operation, string> = {
  put: "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
  get: "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
  delete: "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",
};

/**
 * ADLS Gen2 (abfss://, the Databricks convention) written through the account's Blob endpoint,
 * which serves hierarchical-namespace accounts too. Identity: DefaultAzureCredential (on Container
 * Apps, its managed identity; AZURE_CLIENT_ID selects a user-assigned one), no keys.
 *
 * A put stages the body as one block with a transactional MD5 (the service rejects a damaged body
 * with 400 Md5Mismatch and echoes the MD5 it computed, which is compared) and then commits the block
 * list, which replaces the blob atomically: readers see the old blob or the new one, never a part.
 * Conditional writes put their condition on that commit: create-only `If-None-Match: *` (409
 * BlobAlreadyExists), compare-and-swap `If-Match: <ETag>` (412 ConditionNotMet); the ETag changes
 * with every write, also of the same bytes.
 */
export class AzureBlobSink implements LandingSink {
  readonly url: string;
  private readonly container: ContainerClient;
  private readonly endpoint: string;

  constructor(private readonly options: AzureSinkOptions) {
    this.url = options.url;
    // The SDK's own retries are off: the RetryingSink is the one retry layer (it logs and never gives up).
    const clientOptions = { retryOptions: { maxTries: 1 } };
    const service = options.connectionString
      ? BlobServiceClient.fromConnectionString(options.connectionString, clientOptions)
      : new BlobServiceClient(`https://${options.account}.blob.core.windows.net`, new DefaultAzureCredential(), clientOptions);
    this.endpoint = service.url;
    this.container = service.getContainerClient(options.container);
  }

  async put(key: string, body: Uint8Array, contentType = "application/x-ndjson"): Promise<void> {
    await this.upload(key, body, contentType, undefined);
  }

  async create(key: string, body: Uint8Array, contentType = "application/x-ndjson"): Promise<"created" | "exists"> {
    try {
      await this.upload(key, body, contentType, { ifNoneMatch: "*" });
      return "created";
    } catch (err) {
      if (err instanceof SinkConditionFailedError) return "exists";
      throw err;
    }
  }

  async replace(key: string, body: Uint8Array, expected: ObjectVersion | null, contentType = "application/json"): Promise<ObjectVersion> {
    return this.upload(key, body, contentType, expected === null ? { ifNoneMatch: "*" } : { ifMatch: expected });
  }

  async stat(key: string): Promise<ObjectVersion | undefined> {
    const name = this.blobName(key);
    try {
      const properties = await this.container.getBlobClient(name).getProperties({ abortSignal: this.timeout() });
      return properties.etag;
    } catch (err) {
      if (err instanceof RestError && err.statusCode === 404 && err.code !== "ContainerNotFound") return undefined;
      throw this.classify("get", name, err);
    }
  }

  async deleteVersion(key: string, version: ObjectVersion): Promise<boolean> {
    const name = this.blobName(key);
    try {
      const response = await this.container.getBlobClient(name).deleteIfExists({ conditions: { ifMatch: version }, abortSignal: this.timeout() });
      return response.succeeded;
    } catch (err) {
      if (err instanceof RestError && err.statusCode === 412) return false;
      throw this.classify("delete", name, err);
    }
  }

  /** Stages the body as one block (verified MD5) and commits it under `conditions`; resolves with the new ETag. */
  private async upload(key: string, body: Uint8Array, contentType: string, conditions: BlobRequestConditions | undefined): Promise<ObjectVersion> {
    const name = this.blobName(key);
    const md5 = createHash("md5").update(body).digest();
    const blob = this.container.getBlockBlobClient(name);
    const blockId = randomBytes(24).toString("base64");
    try {
      const staged = await blob.stageBlock(blockId, Buffer.from(body.buffer, body.byteOffset, body.byteLength), body.byteLength, {
        transactionalContentMD5: md5,
        abortSignal: this.timeout(),
      });
      if (staged.contentMD5 !== undefined && !Buffer.from(staged.contentMD5).equals(md5)) {
        throw new Error(`Azure received a block of ${name} with MD5 ${Buffer.from(staged.contentMD5).toString("base64")}, expected ${md5.toString("base64")}`);
      }
      const committed = await blob.commitBlockList([blockId], {
        blobHTTPHeaders: { blobContentType: contentType, blobContentMD5: md5 },
        ...(conditions ? { conditions } : {}),
        abortSignal: this.timeout(),
      });
      if (committed.etag === undefined) throw new Error(`Azure committed ${name} without an ETag`);
      return committed.etag;
    } catch (err) {
      if (conditions && err instanceof RestError && (err.statusCode === 412 || (err.statusCode === 409 && err.code === "BlobAlreadyExists") || (conditions.ifMatch !== undefined && err.statusCode === 404 && err.code !== "ContainerNotFound"))) {
        throw new SinkConditionFailedError(this.url, key, { cause: err });
      }
      throw this.classify("put", name, err);
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    return (await this.read(key))?.body;
  }

  async read(key: string): Promise<VersionedObject | undefined> {
    const name = this.blobName(key);
    try {
      const response = await this.container.getBlobClient(name).download(0, undefined, { abortSignal: this.timeout() });
      const chunks: Buffer[] = [];
      for await (const chunk of response.readableStreamBody!) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
      const bytes = Buffer.concat(chunks);
      if (response.contentLength !== undefined && bytes.byteLength !== response.contentLength) {
        throw new Error(`Azure returned ${bytes.byteLength} of ${response.contentLength} bytes of ${name}`);
      }
      const stored = response.blobContentMD5 ?? response.contentMD5;
      if (stored !== undefined && !createHash("md5").update(bytes).digest().equals(Buffer.from(stored))) {
        throw new Error(`Azure returned ${name} whose MD5 does not match the stored Content-MD5`);
      }
      return { body: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), version: response.etag ?? "" };
    } catch (err) {
      if (err instanceof RestError && err.statusCode === 404 && err.code !== "ContainerNotFound") return undefined;
      throw this.classify("get", name, err);
    }
  }

  async delete(key: string): Promise<void> {
    const name = this.blobName(key);
    try {
      await this.container.getBlobClient(name).deleteIfExists({ abortSignal: this.timeout() });
    } catch (err) {
      throw this.classify("delete", name, err);
    }
  }

  async close(): Promise<void> {}

  private timeout(): AbortSignal {
    return AbortSignal.timeout(this.options.requestTimeoutMs ?? 120_000);
  }

  private blobName(key: string): string {
    if (key.split("/").some((part) => part === "" || part === "." || part === "..")) throw new Error(`invalid landing key ${JSON.stringify(key)}`);
    return this.options.prefix ? `${this.options.prefix}/${key}` : key;
  }

  /** Permanent failures become SinkPermanentError naming the URL and the fix; the rest stay transient. */
  private classify(operation: Operation, name: string, err: unknown): unknown {
    const { account, container } = this.options;
    const code = err instanceof RestError ? err.code : undefined;
    const status = err instanceof RestError ? err.statusCode : undefined;
    const errorName = (err as Error)?.name;
    if (code === "AuthorizationFailure") {
      // The service's answer to a request it will not authorize at all: a key or SAS that does not
      // verify, or (with a valid identity) the account's network rules.
      return new SinkPermanentError(
        this.url,
        `${ACTIONS[operation]} not authorized on container ${container} of account ${account} (blob ${name}, AuthorizationFailure): ${
          this.options.connectionString
            ? "check the account key or SAS in AZURE_STORAGE_CONNECTION_STRING"
            : `assign the engine's managed identity the "Storage Blob Data Contributor" role on the container and allow its network in the account's firewall`
        }`,
        { cause: err },
      );
    }
    if (code === "AuthorizationPermissionMismatch" || code === "AuthorizationResourceTypeMismatch" || code === "InsufficientAccountPermissions") {
      return new SinkPermanentError(
        this.url,
        `${ACTIONS[operation]} denied on container ${container} of account ${account} (blob ${name}, ${code}): assign the engine's managed identity the "Storage Blob Data Contributor" role on the container`,
        { cause: err },
      );
    }
    if (code === "AuthenticationFailed" || code === "InvalidAuthenticationInfo" || code === "NoAuthenticationInformation" || status === 401) {
      return new SinkPermanentError(
        this.url,
        `the credentials were rejected by ${this.endpoint} (${code ?? status}): ${this.options.connectionString ? "fix AZURE_STORAGE_CONNECTION_STRING" : "check the managed identity (AZURE_CLIENT_ID for a user-assigned one) and its tenant"}`,
        { cause: err },
      );
    }
    if (code === "ContainerNotFound") {
      return new SinkPermanentError(this.url, `container ${container} does not exist in ${this.endpoint}: create it or fix SINK_URL`, { cause: err });
    }
    if (code === "AccountIsDisabled" || code === "InvalidResourceName" || code === "InvalidUri") {
      return new SinkPermanentError(this.url, `${code} from ${this.endpoint}: fix SINK_URL`, { cause: err });
    }
    if (status === 403) {
      return new SinkPermanentError(this.url, `${ACTIONS[operation]} forbidden on container ${container} of account ${account} (${code ?? "403"}): assign the "Storage Blob Data Contributor" role and check the account's network rules`, { cause: err });
    }
    if (errorName === "CredentialUnavailableError" || errorName === "AggregateAuthenticationError") {
      return new SinkPermanentError(
        this.url,
        `no Azure identity available (${(err as Error).message.split("\n")[0]}): give the Container App a managed identity with "Storage Blob Data Contributor" on container ${container} (or set AZURE_STORAGE_CONNECTION_STRING for an emulator)`,
        { cause: err },
      );
    }
    return err;
  }
}
