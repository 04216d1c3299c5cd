/**
 * Storage servers for the sink tests, each started on a free loopback port and restartable on the
 * same port with its data kept (to simulate an outage):
 * - S3: s3rver, a real S3-compatible server from npm (checks SigV4 signatures and Content-MD5).
 * - Azure: Azurite, Microsoft's own emulator (checks SharedKey/SAS, transactional MD5).
 * - GCS: no GCS JSON-API emulator runs from npm here, so `startGcsStandIn` is a minimal GCS JSON-API
 *   server written for these tests (see gcs-stand-in.ts): a stand-in, not Google's implementation.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlobServiceClient } from "@azure/storage-blob";
import { freePort } from "../../support/postgres";
import { GcsStandIn } from "./gcs-stand-in";

export interface StorageServer {
  port: number;
  endpoint: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops for good and removes its data. */
  dispose(): Promise<void>;
}

export const S3RVER_CREDENTIALS = { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER", AWS_REGION: "us-east-1" };

/** Puts S3RVER_CREDENTIALS into process.env, where the AWS SDK reads them; returns what puts the previous values back. */
export function useS3rverCredentials(): () => void {
  const saved = Object.fromEntries(Object.keys(S3RVER_CREDENTIALS).map((k) => [k, process.env[k]]));
  Object.assign(process.env, S3RVER_CREDENTIALS);
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

export async function startS3rver(buckets: string[]): Promise<StorageServer> {
  // s3rver ships no type declarations; this is the part of its API used here.
  const S3rver = require("s3rver") as new (options: object) => { run(): Promise<unknown>; close(): Promise<void> };
  const directory = await mkdtemp(join(tmpdir(), "cdc-s3rver-"));
  const port = await freePort();
  let server: { close(): Promise<void> } | undefined;
  const handle: StorageServer = {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    async start() {
      if (server) return;
      const s = new S3rver({ port, address: "127.0.0.1", silent: true, directory, configureBuckets: buckets.map((name) => ({ name })) });
      await s.run();
      server = s;
    },
    async stop() {
      if (!server) return;
      const s = server;
      server = undefined;
      await s.close();
    },
    async dispose() {
      await handle.stop();
      await rm(directory, { recursive: true, force: true });
    },
  };
  await handle.start();
  return handle;
}

export const AZURITE_ACCOUNT = "devstoreaccount1";
export const AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

export function azuriteConnectionString(port: number, key = AZURITE_KEY): string {
  return `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${key};BlobEndpoint=http://127.0.0.1:${port}/${AZURITE_ACCOUNT};`;
}

/** Azurite's blob service with `containers` created; data on disk in a temp dir so a restart keeps what was written. */
export async function startAzurite(containers: string[] = []): Promise<StorageServer> {
  const location = await mkdtemp(join(tmpdir(), "cdc-azurite-"));
  const port = await freePort();
  const bin = require.resolve("azurite/dist/src/blob/main.js");
  let child: ChildProcess | undefined;
  const handle: StorageServer = {
    port,
    endpoint: `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`,
    async start() {
      if (child) return;
      child = spawn(process.execPath, [bin, "--blobHost", "127.0.0.1", "--blobPort", String(port), "--location", location, "--skipApiVersionCheck", "--loose", "--silent", "--disableProductStyleUrl"], {
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr!.on("data", (d) => (stderr += String(d)));
      const exited = new Promise<never>((_, reject) => child!.once("exit", (code) => reject(new Error(`azurite exited with ${code}: ${stderr}`))));
      await Promise.race([waitForPort(port, 30_000), exited]);
    },
    async stop() {
      if (!child) return;
      const c = child;
      child = undefined;
      if (c.exitCode !== null) return;
      // SIGTERM: Azurite saves its metadata to --location and exits, as a service restart would.
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => c.kill("SIGKILL"), 10_000);
        c.once("exit", () => {
          clearTimeout(force);
          resolve();
        });
        c.kill("SIGTERM");
      });
    },
    async dispose() {
      await handle.stop();
      await rm(location, { recursive: true, force: true });
    },
  };
  await handle.start();
  const service = BlobServiceClient.fromConnectionString(azuriteConnectionString(port));
  for (const name of containers) await service.getContainerClient(name).create();
  return handle;
}

export async function startGcsStandIn(buckets: string[], options: { deniedBuckets?: string[] } = {}): Promise<StorageServer & { standIn: GcsStandIn }> {
  const port = await freePort();
  const standIn = new GcsStandIn(buckets, options.deniedBuckets ?? []);
  const handle = {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    standIn,
    start: () => standIn.listen(port),
    stop: () => standIn.close(),
    dispose: () => standIn.close(),
  };
  await handle.start();
  return handle;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host: "127.0.0.1" }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
