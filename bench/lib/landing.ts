/**
 * Watches a table's landing folder (`<root>/cdc.<schema>.<table>/date=…/hour=…/*.ndjson[.gz]`)
 * by polling: each finished object (the sink writes to a dot-prefixed temp name and renames) is
 * recorded with the first time it was seen.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";

const OBJECT = /^[^.].*\.ndjson(\.gz)?$/;

export interface LandedObject {
  path: string;
  /** performance.now() + timeOrigin when first seen, i.e. epoch ms (upper bound of its appearance). */
  seenAtMs: number;
}

export class LandingWatcher {
  readonly seen = new Map<string, LandedObject>();

  constructor(readonly tableDir: string) {}

  /** One scan; returns the objects that appeared since the previous scan. */
  async scan(): Promise<LandedObject[]> {
    const now = performance.timeOrigin + performance.now();
    const found: LandedObject[] = [];
    const walk = async (dir: string) => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
        throw err;
      }
      for (const entry of entries) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await walk(path);
        else if (OBJECT.test(entry.name) && !this.seen.has(path)) {
          const obj = { path, seenAtMs: now };
          this.seen.set(path, obj);
          found.push(obj);
        }
      }
    };
    await walk(this.tableDir);
    return found;
  }
}

export async function readObject(path: string): Promise<Buffer> {
  const raw = await readFile(path);
  return path.endsWith(".gz") ? gunzipSync(raw) : raw;
}

export function countLines(buf: Buffer): number {
  let n = 0;
  let i = -1;
  while ((i = buf.indexOf(10, i + 1)) !== -1) n++;
  return n;
}

/** Counts records per __op in every object under the folder (for checking a drain is complete). */
export async function countRecords(tableDir: string): Promise<{ files: number; records: number; bytes: number }> {
  const watcher = new LandingWatcher(tableDir);
  const objects = await watcher.scan();
  let records = 0;
  let bytes = 0;
  for (const o of objects) {
    const buf = await readObject(o.path);
    bytes += buf.length;
    records += countLines(buf);
  }
  return { files: objects.length, records, bytes };
}

/** Counts records by __op (parses every line; only for modest volumes). */
export async function countOps(tableDir: string): Promise<Record<string, number>> {
  const watcher = new LandingWatcher(tableDir);
  const ops: Record<string, number> = {};
  for (const o of await watcher.scan()) {
    const text = (await readObject(o.path)).toString("utf8");
    // Cheap: find the "__op":"x" field without a full JSON parse.
    const re = /"__op":"(\w)"/g;
    let m;
    while ((m = re.exec(text))) ops[m[1]] = (ops[m[1]] ?? 0) + 1;
  }
  return ops;
}
