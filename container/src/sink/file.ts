import { link, mkdir, open, rename, readFile, rm, stat, unlink, type FileHandle } from "node:fs/promises";
import type { BigIntStats } from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { LandingSink, ObjectVersion, VersionedObject } from "./types";
import { SinkConditionFailedError, SinkPermanentError } from "./types";

/** A lock older than this was left by a writer that died holding it (a state write takes milliseconds). */
const STALE_LOCK_MS = 30_000;

/**
 * file:///abs/dir — write to a temp name, fsync, then an atomic rename (or, create-only, a hard
 * link, which fails on an existing name: O_EXCL for a whole file), fsync the directory.
 * Compare-and-swap writes (the engine state) hold a lock file created with O_EXCL next to the
 * object while they compare its version (inode, mtime, size) and rename the new one over it.
 */
export class FileSink implements LandingSink {
  private readonly knownDirs = new Set<string>();

  constructor(
    readonly url: string,
    private readonly directory: string,
  ) {}

  async put(key: string, body: Uint8Array): Promise<void> {
    const target = this.resolve(key);
    const tmp = await this.writeTemp(target, [body]);
    await rename(tmp, target);
    await this.syncDir(dirname(target));
  }

  create(key: string, body: Uint8Array): Promise<"created" | "exists"> {
    return this.createFrom(key, [body]);
  }

  async createFrom(key: string, parts: readonly Uint8Array[]): Promise<"created" | "exists"> {
    const target = this.resolve(key);
    const tmp = await this.writeTemp(target, parts);
    try {
      await link(tmp, target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") return "exists";
      throw err;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    await this.syncDir(dirname(target));
    return "created";
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      return await readFile(this.resolve(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async read(key: string): Promise<VersionedObject | undefined> {
    let handle;
    try {
      handle = await open(this.resolve(key), "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    try {
      // The version of the very inode the bytes come from.
      const version = versionOf(await handle.stat({ bigint: true }));
      return { body: await handle.readFile(), version };
    } finally {
      await handle.close();
    }
  }

  async stat(key: string): Promise<ObjectVersion | undefined> {
    return this.versionAt(this.resolve(key));
  }

  async replace(key: string, body: Uint8Array, expected: ObjectVersion | null): Promise<ObjectVersion> {
    const target = this.resolve(key);
    const tmp = await this.writeTemp(target, [body]);
    const release = await this.lock(target);
    try {
      const current = await this.versionAt(target);
      if ((current ?? null) !== expected) throw new SinkConditionFailedError(this.url, key);
      await rename(tmp, target);
      await this.syncDir(dirname(target));
      const written = await this.versionAt(target);
      if (written === undefined) throw new Error(`${target} vanished right after it was written`);
      return written;
    } finally {
      await release();
      await unlink(tmp).catch(() => undefined);
    }
  }

  async deleteVersion(key: string, version: ObjectVersion): Promise<boolean> {
    const target = this.resolve(key);
    if ((await this.versionAt(target)) !== version) return false;
    // rename() takes whatever is there now; if that is a newer object (written between the check
    // and the rename), it is linked back under its name (create-only) and left alone.
    const trash = join(dirname(target), `.${randomBytes(6).toString("hex")}.deleted`);
    try {
      await rename(target, trash);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw err;
    }
    const taken = await this.versionAt(trash);
    if (taken !== version) await link(trash, target).catch((err: NodeJS.ErrnoException) => (err.code === "EEXIST" ? undefined : Promise.reject(err)));
    await unlink(trash);
    await this.syncDir(dirname(target));
    return taken === version;
  }

  async delete(key: string): Promise<void> {
    await rm(this.resolve(key), { force: true });
  }

  async close(): Promise<void> {}

  private resolve(key: string): string {
    if (key.split("/").some((part) => part === ".." || part === "")) throw new Error(`invalid landing key ${JSON.stringify(key)}`);
    return join(this.directory, key);
  }

  /** The body (`parts` joined) in a fsync'd temp file beside the target. Temp names start with "." so Auto Loader and the local lakehouse (which read *.ndjson*) skip them. */
  private async writeTemp(target: string, parts: readonly Uint8Array[]): Promise<string> {
    const dir = dirname(target);
    if (!this.knownDirs.has(dir)) {
      await mkdir(dir, { recursive: true }).catch((err) => this.rethrow(err, dir));
      this.knownDirs.add(dir);
    }
    const tmp = join(dir, `.${randomBytes(6).toString("hex")}.tmp`);
    const handle = await open(tmp, "w").catch((err) => this.rethrow(err, tmp));
    try {
      await writeAll(handle, parts);
      await handle.sync();
    } finally {
      await handle.close();
    }
    return tmp;
  }

  private async syncDir(dir: string): Promise<void> {
    const dirHandle = await open(dir, "r");
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
  }

  private async versionAt(path: string): Promise<ObjectVersion | undefined> {
    try {
      return versionOf(await stat(path, { bigint: true }));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  /** An O_EXCL lock file beside `target`; a lock older than STALE_LOCK_MS is broken. */
  private async lock(target: string): Promise<() => Promise<void>> {
    const path = join(dirname(target), `.${basename(target)}.lock`);
    for (let attempt = 0; ; attempt++) {
      try {
        const handle = await open(path, "wx");
        await handle.writeFile(`${hostname()} ${process.pid} ${new Date().toISOString()}\n`);
        await handle.close();
        return () => unlink(path).catch(() => undefined);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        const held = await stat(path).catch(() => undefined);
        if (held && Date.now() - held.mtimeMs > STALE_LOCK_MS) await unlink(path).catch(() => undefined);
        else await new Promise((r) => setTimeout(r, Math.min(5 + attempt * 5, 50)));
      }
    }
  }

  private rethrow(err: NodeJS.ErrnoException, path: string): never {
    if (err.code === "EACCES" || err.code === "EPERM" || err.code === "EROFS" || err.code === "ENOTDIR") {
      throw new SinkPermanentError(this.url, `cannot write ${path} (${err.code}); make the directory writable by user ${process.getuid?.() ?? "?"} or choose another SINK_URL`, { cause: err });
    }
    throw err;
  }
}

/** Writes `parts` in order with as few writev calls as the kernel allows (a short write continues where it stopped). */
async function writeAll(handle: FileHandle, parts: readonly Uint8Array[]): Promise<void> {
  let pending = parts.filter((p) => p.length > 0);
  while (pending.length > 0) {
    // At most IOV_MAX (1024 on Linux) buffers per call.
    const batch = pending.slice(0, 1024);
    let { bytesWritten } = await handle.writev(batch);
    let i = 0;
    while (i < batch.length && bytesWritten >= batch[i].length) bytesWritten -= batch[i++].length;
    const rest = pending.slice(i);
    if (bytesWritten > 0) rest[0] = rest[0].subarray(bytesWritten);
    pending = rest;
  }
}

/** Inode, modification time and size: a new write is a new inode (temp file), rename and link keep all three. */
function versionOf(s: BigIntStats): ObjectVersion {
  return `${s.ino}:${s.mtimeNs}:${s.size}`;
}
