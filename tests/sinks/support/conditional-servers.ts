/**
 * Storage servers that ENFORCE conditional writes, for the fencing tests (s3rver ignores
 * `If-None-Match`/`If-Match` on PutObject, so it cannot show that a stale writer is refused):
 * - S3: moto in server mode (PyPI, pinned; the one virtualenv of tests/support/moto.ts under
 *   `.cache/moto/`). moto answers 412 PreconditionFailed to PutObject with `If-None-Match: *` on an
 *   existing key and with a stale `If-Match`, and to DeleteObject with a stale `If-Match` (checked by
 *   the tests themselves before they rely on it).
 * - GCS: fake-gcs-server (Go, `go install github.com/fsouza/fake-gcs-server@<pin>` through the Go
 *   module proxy), built once under `.cache/fake-gcs-server/`. It enforces `ifGenerationMatch` on
 *   uploads. It does not enforce it on deletes, and it answers a missing object with the same bare
 *   404 as a missing bucket (GCS says "No such object: …"), so the GCS contract and the conditional
 *   delete stay on the labelled stand-in (gcs-stand-in.ts).
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, promises as fs } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort } from "../../support/postgres";
import type { StorageServer } from "./emulators";
import { ensureMoto } from "../../support/moto";
import { setupCommand } from "../../support/priority";

export { ensureMoto };

const REPO = resolve(__dirname, "../../..");
const CACHE = join(REPO, ".cache");

export const FAKE_GCS_SERVER_VERSION = "v1.56.1";

/** Credentials moto accepts (any), exported into process.env by the S3 tests like s3rver's. */
export const MOTO_CREDENTIALS = { AWS_ACCESS_KEY_ID: "moto", AWS_SECRET_ACCESS_KEY: "moto", AWS_REGION: "us-east-1" };

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    execFile(command, args, { env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(" ")} failed: ${err.message}\n${`${stdout}\n${stderr}`.trim().split("\n").slice(-20).join("\n")}`));
      else resolvePromise();
    });
  });
}

/** Builds `target` once: `build(dir)` fills a fresh directory that is then renamed into place (so a killed build leaves nothing half-made). */
async function once(target: string, stamp: string, build: (dir: string) => Promise<void>): Promise<void> {
  const stampFile = join(target, "stamp.txt");
  if (existsSync(stampFile) && (await fs.readFile(stampFile, "utf8")) === stamp) return;
  await fs.mkdir(CACHE, { recursive: true });
  const dir = `${target}.building-${process.pid}`;
  await rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  try {
    await build(dir);
    await fs.writeFile(join(dir, "stamp.txt"), stamp);
    await rm(target, { recursive: true, force: true });
    await fs.rename(dir, target);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

let building: Promise<string> | undefined;

/**
 * `.cache/fake-gcs-server/bin/fake-gcs-server`, built on first use from the Go module proxy. Once
 * per process: concurrent callers (tests/support/prefetch.ts and the tests) share one build.
 */
export function ensureFakeGcsServer(): Promise<string> {
  return (building ??= buildFakeGcsServer());
}

async function buildFakeGcsServer(): Promise<string> {
  const target = join(CACHE, "fake-gcs-server");
  const go = process.env.GO ?? (existsSync("/usr/local/go/bin/go") ? "/usr/local/go/bin/go" : "go");
  await once(target, `github.com/fsouza/fake-gcs-server@${FAKE_GCS_SERVER_VERSION}`, async (dir) => {
    process.stderr.write(`      (building fake-gcs-server ${FAKE_GCS_SERVER_VERSION} into ${target} once: several minutes)\n`);
    // Module and build caches only for this build (over 1 GB), removed once the binary is there.
    const work = join(dir, "go");
    const env = { ...process.env, GOBIN: join(dir, "bin"), GOPATH: join(work, "path"), GOMODCACHE: join(work, "mod"), GOCACHE: join(work, "build"), GOTOOLCHAIN: "local", CGO_ENABLED: "0" };
    // At low priority: it usually runs beside other tests (tests/support/prefetch.ts).
    await run(...setupCommand(go, ["install", `github.com/fsouza/fake-gcs-server@${FAKE_GCS_SERVER_VERSION}`]), env);
    await run(go, ["clean", "-cache", "-modcache"], env);
    await rm(work, { recursive: true, force: true });
  });
  return join(target, "bin", "fake-gcs-server");
}

/** A child process serving on `port`; stop() sends SIGTERM. */
function serve(start: () => ChildProcess, port: number, cleanup: () => Promise<void>): Promise<StorageServer> {
  let child: ChildProcess | undefined;
  const handle: StorageServer = {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    async start() {
      if (child) return;
      child = start();
      let stderr = "";
      child.stderr?.on("data", (d) => (stderr = (stderr + String(d)).slice(-4000)));
      const exited = new Promise<never>((_, reject) => child!.once("exit", (code) => reject(new Error(`exited with ${code}: ${stderr}`))));
      exited.catch(() => undefined);
      await Promise.race([waitForPort(port, 60_000), exited]);
    },
    async stop() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null) return;
      await new Promise<void>((resolvePromise) => {
        c.once("exit", () => resolvePromise());
        c.kill("SIGTERM");
      });
    },
    async dispose() {
      await handle.stop();
      await cleanup();
    },
  };
  return handle.start().then(() => handle);
}

/** moto's S3 on a free port, with `buckets` created. Its data lives in memory. */
export async function startMoto(buckets: string[]): Promise<StorageServer> {
  const bin = await ensureMoto();
  const port = await freePort();
  const server = await serve(() => spawn(bin, ["-H", "127.0.0.1", "-p", String(port)], { stdio: ["ignore", "ignore", "pipe"] }), port, async () => undefined);
  for (const bucket of buckets) {
    const res = await fetch(`${server.endpoint}/${bucket}`, { method: "PUT" });
    if (!res.ok) throw new Error(`moto: creating bucket ${bucket} answered ${res.status}`);
  }
  return server;
}

/** fake-gcs-server over HTTP on a free port, with `buckets` created; data on disk in a temp dir. */
export async function startFakeGcsServer(buckets: string[]): Promise<StorageServer> {
  const bin = await ensureFakeGcsServer();
  const port = await freePort();
  const root = await mkdtemp(join(tmpdir(), "cdc-fake-gcs-"));
  const data = join(root, "seed");
  for (const bucket of buckets) await fs.mkdir(join(data, bucket), { recursive: true });
  const args = ["-scheme", "http", "-host", "127.0.0.1", "-port", String(port), "-backend", "filesystem", "-filesystem-root", join(root, "store"), "-data", data, "-public-host", `127.0.0.1:${port}`, "-log-level", "error"];
  return serve(() => spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] }), port, () => rm(root, { recursive: true, force: true }));
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolvePromise) => {
      const socket = createConnection({ port, host: "127.0.0.1" }, () => {
        socket.destroy();
        resolvePromise(true);
      });
      socket.on("error", () => resolvePromise(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
