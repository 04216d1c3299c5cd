/**
 * A local PySpark + Delta Lake environment, set up once per machine and reused.
 *
 * ensureSparkEnv() makes `<repo>/.cache/spark` (or $CDC_SPARK_HOME) hold:
 *   venv/       a virtualenv with lakehouse/spark/requirements.txt installed
 *   ivy/        Spark's Ivy cache, which resolved the Delta and Kafka-source jars from Maven Central once
 *   jars/       those jars (and their dependencies pyspark lacks) the sessions load with spark.jars, so they start offline
 *   stamp.json  what was installed; while it matches, a call is a quick no-op
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, promises as fs, readFileSync } from "node:fs";
import { hostname } from "node:os";
import path from "node:path";

export interface SparkEnv {
  /** The virtualenv's python, which has pyspark and delta-spark. */
  python: string;
  /** The environment to run that python with: process.env plus JAVA_HOME, PYSPARK_PYTHON, SPARK_HOME, CDC_SPARK_JARS, PYTHONPATH. */
  env: NodeJS.ProcessEnv;
  /** Local paths of the Delta jars, Spark's Kafka source and its dependencies pyspark lacks, for spark.jars. */
  jars: string[];
}

export interface SparkEnvOptions {
  log?: (line: string) => void;
  /**
   * Run the setup's installs at idle CPU priority (SCHED_IDLE through `chrt --idle 0`, else
   * `nice -n 19`): for a setup that overlaps other work, such as the test suite's prefetch.
   */
  idlePriority?: boolean;
}

const MIN_JAVA_MAJOR = 17;
const MIN_PYTHON: [number, number] = [3, 10];
const SCALA_BINARY_VERSION = "2.12"; // pyspark 3.5 wheels are built for Scala 2.12
/** A setup lock older than this is left over from a killed run, even if its pid was reused. */
const STALE_LOCK_MS = 60 * 60 * 1000;
const LOCK_POLL_MS = 1000;

interface Stamp {
  hash: string;
  sparkHome: string;
  jars: string[];
}

/** The directory holding lakehouse/spark/requirements.txt; found by walking up so it works from src (tsx) and dist (tsc). */
function lakehouseDir(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "spark", "requirements.txt"))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`cannot find lakehouse/spark/requirements.txt above ${__dirname}`);
  }
}

export function sparkPaths(): { repo: string; sparkDir: string; requirements: string; cache: string; venv: string; python: string } {
  const lakehouse = lakehouseDir();
  const repo = path.dirname(lakehouse);
  const cache = process.env.CDC_SPARK_HOME ? path.resolve(process.env.CDC_SPARK_HOME) : path.join(repo, ".cache", "spark");
  const venv = path.join(cache, "venv");
  return {
    repo,
    sparkDir: path.join(lakehouse, "spark"),
    requirements: path.join(lakehouse, "spark", "requirements.txt"),
    cache,
    venv,
    python: path.join(venv, "bin", "python"),
  };
}

/** Maven coordinates of the Delta jars, at the delta-spark version pinned in requirements.txt. */
export function deltaCoordinates(requirementsText: string): string[] {
  const pin = /^\s*delta-spark\s*==\s*([\w.]+)/m.exec(requirementsText);
  if (!pin) throw new Error("lakehouse/spark/requirements.txt must pin delta-spark (a line like delta-spark==3.3.2)");
  return [`io.delta:delta-spark_${SCALA_BINARY_VERSION}:${pin[1]}`, `io.delta:delta-storage:${pin[1]}`];
}

/**
 * Spark's Structured Streaming Kafka source (the bronze notebook's Kafka variant), at the pyspark
 * version pinned in requirements.txt: Spark's connectors are released with Spark itself.
 */
export function kafkaSourceCoordinates(requirementsText: string): string[] {
  const pin = /^\s*pyspark\s*==\s*([\w.]+)/m.exec(requirementsText);
  if (!pin) throw new Error("lakehouse/spark/requirements.txt must pin pyspark (a line like pyspark==3.5.3)");
  return [`org.apache.spark:spark-sql-kafka-0-10_${SCALA_BINARY_VERSION}:${pin[1]}`];
}

interface RunResult {
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stdout, stderr }));
      else resolve({ stdout, stderr });
    });
  });
}

const shellQuote = (arg: string): string => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`);

/** `command args` at idle CPU priority: SCHED_IDLE where util-linux's chrt is installed, else nice 19. */
export const atIdlePriority = (command: string, args: string[]): [string, string[]] => (existsSync("/usr/bin/chrt") ? ["chrt", ["--idle", "0", command, ...args]] : ["nice", ["-n", "19", command, ...args]]);

/** Runs one setup step; a failure names the step, the command to rerun and the end of its output. */
async function step(name: string, command: string, args: string[], env?: NodeJS.ProcessEnv, idle = false): Promise<RunResult> {
  try {
    return await run(...(idle ? atIdlePriority(command, args) : ([command, args] as [string, string[]])), env);
  } catch (err) {
    const failure = err as Error & { stdout?: string; stderr?: string; code?: string | number };
    const output = `${failure.stdout ?? ""}\n${failure.stderr ?? ""}`.trim().split("\n").slice(-25).join("\n");
    const reason = failure.code === "ENOENT" ? `${command} not found` : `exit code ${failure.code ?? "?"}`;
    throw new Error(
      `spark env: ${name} failed (${reason}). Rerun it with:\n  ${[command, ...args].map(shellQuote).join(" ")}\n` +
        (output ? `Its output ended with:\n${output}` : ""),
    );
  }
}

interface Java {
  javaHome: string;
  major: number;
}

/** `java -XshowSettings:properties -version` prints both the version and java.home in one call. */
async function findJava(): Promise<Java | string> {
  const java = process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, "bin", "java") : "java";
  let output: string;
  try {
    output = (await run(java, ["-XshowSettings:properties", "-version"])).stderr;
  } catch (err) {
    const code = (err as { code?: string }).code;
    return code === "ENOENT" ? `Java is not installed (${java} not found)` : `${java} -version failed: ${(err as Error).message.split("\n")[0]}`;
  }
  const version = /java\.specification\.version = (\d+)(?:\.(\d+))?/.exec(output);
  const home = /java\.home = (.+)/.exec(output);
  if (!version || !home) return `cannot read the version of ${java}`;
  // Java 8 reports "1.8".
  const major = version[1] === "1" ? Number(version[2]) : Number(version[1]);
  if (major < MIN_JAVA_MAJOR) return `${java} is Java ${major}, Spark here needs Java ${MIN_JAVA_MAJOR}+`;
  return { javaHome: home[1].trim(), major };
}

async function findPython(): Promise<string | { command: string; version: string }> {
  const command = process.env.CDC_SPARK_PYTHON ?? "python3";
  let output: RunResult;
  try {
    output = await run(command, ["-c", "import sys, venv; print('%d.%d.%d' % sys.version_info[:3])"]);
  } catch (err) {
    const failure = err as { code?: string; stderr?: string };
    if (failure.code === "ENOENT") return `Python is not installed (${command} not found)`;
    if (/No module named .?venv/.test(failure.stderr ?? "")) return `${command} lacks the venv module`;
    return `${command} failed: ${(failure.stderr ?? "").trim().split("\n").pop()}`;
  }
  const version = output.stdout.trim();
  const [major, minor] = version.split(".").map(Number);
  if (major < MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor < MIN_PYTHON[1])) {
    return `${command} is Python ${version}, pyspark needs Python ${MIN_PYTHON.join(".")}+`;
  }
  return { command, version };
}

/** Checks Java and (when a venv must be built) Python together, so a fresh machine gets one error listing everything missing. */
async function checkPrerequisites(needPython: boolean): Promise<{ java: Java; python?: { command: string; version: string } }> {
  const [java, python] = await Promise.all([findJava(), needPython ? findPython() : Promise.resolve(undefined)]);
  const problems: string[] = [];
  if (typeof java === "string") problems.push(`${java}: install it with \`apt-get install openjdk-17-jre-headless\` (or set JAVA_HOME to a JDK 17+)`);
  if (typeof python === "string") problems.push(`${python}: install it with \`apt-get install python3 python3-venv\` (or set CDC_SPARK_PYTHON to a Python 3.10+)`);
  if (problems.length > 0) throw new Error(`spark env: missing prerequisites:\n  - ${problems.join("\n  - ")}`);
  return { java: java as Java, python: python as { command: string; version: string } | undefined };
}

function stampHash(requirementsText: string, coordinates: string[]): string {
  return createHash("sha256").update(requirementsText).update("\0").update(coordinates.join(",")).digest("hex");
}

function readStamp(stampPath: string, hash: string, python: string): Stamp | undefined {
  try {
    const stamp = JSON.parse(readFileSync(stampPath, "utf8")) as Stamp;
    const intact = stamp.hash === hash && existsSync(python) && stamp.jars.length > 0 && stamp.jars.every((jar) => existsSync(jar));
    return intact ? stamp : undefined;
  } catch {
    return undefined;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * An O_EXCL-style lock: mkdir is atomic, so only one caller creates the directory.
 * A lock whose owner died (same host, pid gone) or that is older than STALE_LOCK_MS is taken over.
 */
async function withSetupLock<T>(cache: string, log: (line: string) => void, work: () => Promise<T>): Promise<T> {
  const lockDir = path.join(cache, "setup.lock");
  const ownerFile = path.join(lockDir, "owner.json");
  let waitingLogged = false;
  for (;;) {
    try {
      await fs.mkdir(lockDir);
      await fs.writeFile(ownerFile, JSON.stringify({ pid: process.pid, host: hostname(), started: new Date().toISOString() }));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    let owner: { pid?: number; host?: string } = {};
    try {
      owner = JSON.parse(await fs.readFile(ownerFile, "utf8"));
    } catch {
      // The owner is between mkdir and writeFile, or died there; the age check below covers the latter.
    }
    const age = Date.now() - (await fs.stat(lockDir).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
    const ownerDead = owner.pid !== undefined && owner.host === hostname() && !processAlive(owner.pid);
    if (ownerDead || age > STALE_LOCK_MS) {
      log(`spark env: removing a stale setup lock ${lockDir} (pid ${owner.pid ?? "unknown"})`);
      await fs.rm(lockDir, { recursive: true, force: true });
      continue;
    }
    if (!waitingLogged) {
      log(`spark env: waiting for another setup to finish (pid ${owner.pid ?? "unknown"}, lock ${lockDir})`);
      waitingLogged = true;
    }
    await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
  }
  try {
    return await work();
  } finally {
    await fs.rm(lockDir, { recursive: true, force: true });
  }
}

/** The environment sessions run in; SPARK_HOME points at the venv's pyspark so a Spark installed elsewhere cannot interfere. */
function sessionEnv(javaHome: string, python: string, stamp: Stamp, sparkDir: string): NodeJS.ProcessEnv {
  const pythonPath = [sparkDir, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter);
  return {
    ...process.env,
    JAVA_HOME: javaHome,
    SPARK_HOME: stamp.sparkHome,
    PYSPARK_PYTHON: python,
    PYSPARK_DRIVER_PYTHON: python,
    // The hostname may not resolve in containers; the local session only needs loopback.
    SPARK_LOCAL_IP: process.env.SPARK_LOCAL_IP ?? "127.0.0.1",
    CDC_SPARK_JARS: stamp.jars.join(","),
    PYTHONPATH: pythonPath,
  };
}

/** The Python run once inside the venv: Spark's own Ivy resolves the packages (and their dependencies) into the cache. */
const RESOLVE_JARS_PY = `
import json, os, sys
from pyspark.sql import SparkSession
coordinates, ivy = sys.argv[1], sys.argv[2]
spark = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
         .config("spark.jars.packages", coordinates).config("spark.jars.ivy", ivy).getOrCreate())
spark.stop()
import pyspark
print(json.dumps({"sparkHome": os.path.dirname(pyspark.__file__)}))
`;

export async function ensureSparkEnv(options: SparkEnvOptions = {}): Promise<SparkEnv> {
  const log = options.log ?? (() => undefined);
  const paths = sparkPaths();
  const requirementsText = await fs.readFile(paths.requirements, "utf8");
  const coordinates = [...deltaCoordinates(requirementsText), ...kafkaSourceCoordinates(requirementsText)];
  const hash = stampHash(requirementsText, coordinates);
  const stampPath = path.join(paths.cache, "stamp.json");

  const ready = readStamp(stampPath, hash, paths.python);
  if (ready) {
    const { java } = await checkPrerequisites(false);
    return { python: paths.python, env: sessionEnv(java.javaHome, paths.python, ready, paths.sparkDir), jars: ready.jars };
  }

  const { java, python } = await checkPrerequisites(true);
  await fs.mkdir(paths.cache, { recursive: true });
  const stamp = await withSetupLock(paths.cache, log, async () => {
    // Another caller may have finished the setup while this one waited for the lock.
    const finished = readStamp(stampPath, hash, paths.python);
    if (finished) return finished;
    await fs.rm(stampPath, { force: true });

    const started = Date.now();
    const elapsed = (): string => `${Math.round((Date.now() - started) / 1000)} s`;
    log(`spark env: setting up ${paths.cache} (once; later runs reuse it)`);
    log(`spark env: using Java ${java.major} at ${java.javaHome}, ${python!.command} ${python!.version}`);
    // A venv whose creation was interrupted has a python but no pip; --clear rebuilds it.
    const venvUsable = existsSync(paths.python) && (await run(paths.python, ["-m", "pip", "--version"]).then(() => true, () => false));
    if (!venvUsable) {
      log(`spark env: creating virtualenv ${paths.venv}…`);
      await step("creating the virtualenv", python!.command, ["-m", "venv", "--clear", paths.venv], undefined, options.idlePriority);
    }
    const pins = requirementsText.split("\n").map((line) => line.trim()).filter((line) => line && !line.startsWith("#"));
    log(`spark env: installing ${pins.join(", ")} (pyspark is a ~300 MB download; a few minutes)…`);
    await step("installing the Python requirements", paths.python, ["-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", paths.requirements], undefined, options.idlePriority);
    log(`spark env: installed in ${elapsed()}; fetching ${coordinates.join(", ")} from Maven Central…`);

    const ivy = path.join(paths.cache, "ivy");
    // Without SPARK_HOME pyspark uses its own bundled Spark, whatever else is installed.
    const resolveEnv: NodeJS.ProcessEnv = { ...process.env, JAVA_HOME: java.javaHome, PYSPARK_PYTHON: paths.python, SPARK_LOCAL_IP: process.env.SPARK_LOCAL_IP ?? "127.0.0.1" };
    delete resolveEnv.SPARK_HOME;
    const { stdout } = await step(
      "fetching the Delta and Kafka-source jars",
      paths.python,
      ["-c", RESOLVE_JARS_PY, coordinates.join(","), ivy],
      resolveEnv,
      options.idlePriority,
    );
    const sparkHome = (JSON.parse(stdout.trim().split("\n").pop()!) as { sparkHome: string }).sparkHome;

    // Ivy names resolved jars <org>_<artifact>-<version>.jar. The requested jars are loaded, and of
    // their dependencies those pyspark does not ship (Kafka's client, commons-pool2, the token
    // provider); one pyspark has (antlr4-runtime, hadoop-client-*, lz4, snappy, zstd, slf4j) is
    // left to pyspark, whatever version Ivy picked, so no class is on the classpath twice.
    const jarsDir = path.join(paths.cache, "jars");
    await fs.rm(jarsDir, { recursive: true, force: true });
    await fs.mkdir(jarsDir, { recursive: true });
    const requested = new Set<string>();
    for (const coordinate of coordinates) {
      const [group, artifact, version] = coordinate.split(":");
      const resolved = `${group}_${artifact}-${version}.jar`;
      if (!existsSync(path.join(ivy, "jars", resolved))) throw new Error(`spark env: fetching the jars did not produce ${path.join(ivy, "jars", resolved)}; delete ${ivy} and rerun`);
      requested.add(resolved);
    }
    const shipped = new Set((await fs.readdir(path.join(sparkHome, "jars"))).map((jar) => jar.replace(/-\d[\w.-]*\.jar$/, "")));
    const jars: string[] = [];
    for (const resolved of (await fs.readdir(path.join(ivy, "jars"))).filter((jar) => jar.endsWith(".jar")).sort()) {
      const artifactVersion = resolved.slice(resolved.indexOf("_") + 1);
      const artifact = artifactVersion.replace(/-\d[\w.-]*\.jar$/, "");
      if (!requested.has(resolved) && shipped.has(artifact)) continue;
      const target = path.join(jarsDir, artifactVersion);
      await fs.copyFile(path.join(ivy, "jars", resolved), target);
      jars.push(target);
    }

    const written: Stamp = { hash, sparkHome, jars };
    await fs.writeFile(stampPath, JSON.stringify({ ...written, coordinates, createdAt: new Date().toISOString() }, null, 2) + "\n");
    log(`spark env: ready in ${elapsed()}`);
    return written;
  });
  return { python: paths.python, env: sessionEnv(java.javaHome, paths.python, stamp, paths.sparkDir), jars: stamp.jars };
}
