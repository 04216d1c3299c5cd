/**
 * Reading back what a sink landed, per store, for the end-to-end sink tests: every object under a
 * prefix with its bytes (keys relative to the prefix), and a copy of them into a directory that the
 * landing readers (tests/engine/fixtures/landing.ts, the local lakehouse) take as a landing zone.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { BlobServiceClient } from "@azure/storage-blob";
import { Storage } from "@google-cloud/storage";
import type { GcsStandIn } from "./gcs-stand-in";

export type StoredObjects = Map<string, Buffer>;

export async function listS3Objects(endpoint: string, credentials: { accessKeyId: string; secretAccessKey: string }, bucket: string, prefix: string): Promise<StoredObjects> {
  const client = new S3Client({ endpoint, forcePathStyle: true, region: "us-east-1", credentials });
  const out: StoredObjects = new Map();
  try {
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/`, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key! }));
        out.set(o.Key!.slice(prefix.length + 1), Buffer.from(await got.Body!.transformToByteArray()));
      }
      token = page.NextContinuationToken;
    } while (token);
  } finally {
    client.destroy();
  }
  return out;
}

export async function listAzureBlobs(connectionString: string, containerName: string, prefix: string): Promise<StoredObjects> {
  const container = BlobServiceClient.fromConnectionString(connectionString).getContainerClient(containerName);
  const out: StoredObjects = new Map();
  for await (const blob of container.listBlobsFlat({ prefix: `${prefix}/` })) {
    out.set(blob.name.slice(prefix.length + 1), await container.getBlobClient(blob.name).downloadToBuffer());
  }
  return out;
}

/** Through the JSON API, as the sink writes (fake-gcs-server). */
export async function listGcsObjects(endpoint: string, bucketName: string, prefix: string): Promise<StoredObjects> {
  const bucket = new Storage({ apiEndpoint: endpoint, projectId: "local-emulator" }).bucket(bucketName);
  const [files] = await bucket.getFiles({ prefix: `${prefix}/` });
  const out: StoredObjects = new Map();
  for (const f of files) out.set(f.name.slice(prefix.length + 1), (await f.download())[0]);
  return out;
}

/** The GCS stand-in's own memory, which its tests inspect directly. */
export function listGcsStandIn(standIn: GcsStandIn, bucketName: string, prefix: string): StoredObjects {
  const out: StoredObjects = new Map();
  for (const [name, object] of standIn.buckets.get(bucketName) ?? []) {
    if (name.startsWith(`${prefix}/`)) out.set(name.slice(prefix.length + 1), Buffer.from(object.data));
  }
  return out;
}

/** Writes the objects under dir by their keys, so that dir reads as a landing zone. */
export async function writeObjects(objects: StoredObjects, dir: string): Promise<number> {
  for (const [key, body] of objects) {
    await mkdir(dirname(join(dir, key)), { recursive: true });
    await writeFile(join(dir, key), body);
  }
  return objects.size;
}
