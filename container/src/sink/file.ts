import { mkdir, open, rename, readFile, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import type { LandingSink } from "./types";
import { SinkPermanentError } from "./types";

/** file:///abs/dir — write to a temp name, fsync, atomic rename, fsync the directory. */
export class FileSink implements LandingSink {
  private readonly knownDirs = new Set<string>();

  constructor(
    readonly url: string,
    private readonly directory: string,
  ) {}

  async put(key: string, body: Uint8Array): Promise<void> {
    const target = this.resolve(key);
    const dir = dirname(target);
    if (!this.knownDirs.has(dir)) {
      await mkdir(dir, { recursive: true }).catch((err) => this.rethrow(err, dir));
      this.knownDirs.add(dir);
    }
    // Temp names start with "." so Auto Loader and the local lakehouse (which read *.ndjson*) skip them.
    const tmp = join(dir, `.${randomBytes(6).toString("hex")}.tmp`);
    const handle = await open(tmp, "w").catch((err) => this.rethrow(err, tmp));
    try {
      await handle.writeFile(body);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, target);
    const dirHandle = await open(dir, "r");
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      return await readFile(this.resolve(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.resolve(key), { force: true });
  }

  async close(): Promise<void> {}

  private resolve(key: string): string {
    if (key.split("/").some((part) => part === ".." || part === "")) throw new Error(`invalid landing key ${JSON.stringify(key)}`);
    return join(this.directory, key);
  }

  private rethrow(err: NodeJS.ErrnoException, path: string): never {
    if (err.code === "EACCES" || err.code === "EPERM" || err.code === "EROFS" || err.code === "ENOTDIR") {
      throw new SinkPermanentError(this.url, `cannot write ${path} (${err.code}); make the directory writable by user ${process.getuid?.() ?? "?"} or choose another SINK_URL`, { cause: err });
    }
    throw err;
  }
}
