/**
 * The landing directory as the engine writes it (landing contract, docs/engine.md):
 * `<landing>/cdc.<schema>.<table>/date=YYYY-MM-DD/hour=HH/<first position>-<last position>.ndjson[.gz]`
 * and the table's schema manifests `<landing>/cdc.<schema>.<table>/_schema/<position>.json`.
 * Names starting with "." are the engine's temp files and `_cdc_state/` is its state: both ignored.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { ManifestError, parseManifest, type SchemaManifest } from "./manifest";
import { join, relative } from "node:path";

export interface LandingFile {
  /** Path relative to the landing root, "/"-separated. */
  key: string;
  path: string;
  size: number;
  mtimeMs: number;
}

export interface LandingTable {
  /** "schema.table" */
  name: string;
  schema: string;
  table: string;
  files: LandingFile[];
  /** The table's schema manifests, oldest first. */
  manifests: SchemaManifest[];
  /** Why the manifests could not be read (then `manifests` is empty): that table fails, no other. */
  manifestError?: string;
}

const TABLE_DIR = /^cdc\.([A-Za-z_][A-Za-z0-9_$]*)\.([A-Za-z_][A-Za-z0-9_$]*)$/;
const DATA_FILE = /^[^.].*\.ndjson(\.gz)?$/;
const MANIFEST_FILE = /^[^.].*\.json$/;
const SCHEMA_FOLDER = "_schema";

export class LandingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LandingError";
  }
}

async function walk(dir: string, out: string[]): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name.startsWith(".")) continue;
    const full = join(dir, entry.name);
    if (entry.isDirectory()) await walk(full, out);
    else if (entry.isFile() && DATA_FILE.test(entry.name)) out.push(full);
  }
}

/** A table's manifests, oldest first (their names sort by position). */
async function readManifests(dir: string): Promise<SchemaManifest[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => MANIFEST_FILE.test(n)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new LandingError(`cannot read ${dir} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return Promise.all(names.map(async (n) => parseManifest(await readFile(join(dir, n), "utf8"), join(dir, n))));
}

/** Lists every table folder and its data files (sorted by key, i.e. by partition then position). */
export async function scanLanding(root: string): Promise<LandingTable[]> {
  let entries;
  try {
    const info = await stat(root);
    if (!info.isDirectory()) throw new LandingError(`landing ${root} is not a directory; pass the directory the engine writes to (its SINK_URL file:///… path)`);
    entries = await readdir(root, { withFileTypes: true });
  } catch (err) {
    if (err instanceof LandingError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new LandingError(`landing directory ${root} does not exist; pass the directory the engine writes to (its SINK_URL file:///… path)`);
    throw new LandingError(`cannot read landing directory ${root} (${code ?? String(err)})`);
  }
  const tables: LandingTable[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const m = TABLE_DIR.exec(entry.name);
    if (!m) continue;
    const paths: string[] = [];
    await walk(join(root, entry.name), paths);
    const files: LandingFile[] = [];
    for (const path of paths) {
      const info = await stat(path).catch(() => undefined);
      if (!info) continue; // replaced or removed while scanning: the next refresh sees it
      files.push({ key: relative(root, path).split("\\").join("/"), path, size: info.size, mtimeMs: Math.floor(info.mtimeMs) });
    }
    files.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const table: LandingTable = { name: `${m[1]}.${m[2]}`, schema: m[1], table: m[2], files, manifests: [] };
    try {
      table.manifests = await readManifests(join(root, entry.name, SCHEMA_FOLDER));
    } catch (err) {
      if (!(err instanceof ManifestError || err instanceof LandingError)) throw err;
      table.manifestError = err.message;
    }
    tables.push(table);
  }
  tables.sort((a, b) => (a.name < b.name ? -1 : 1));
  return tables;
}
