/**
 * The local Spark driver (lakehouse/spark/driver.py) from TypeScript: one long-lived Python
 * process per warehouse that runs the Databricks notebooks on local Spark + Delta Lake on request
 * (Spark takes 10-20 s to start, so the tests and `cdc-lakehouse spark` keep one and reuse it).
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createInterface } from "node:readline";
import path from "node:path";
import { ensureSparkEnv, sparkPaths } from "./env";

export interface SparkRunResult {
  /** Per layer (bronze, silver, gold), why it failed; empty when everything ran. */
  errors: Record<string, string>;
}

export interface SparkQueryResult {
  columns: string[];
  rows: Record<string, unknown>[];
}

export class SparkError extends Error {
  constructor(
    message: string,
    readonly detail?: string,
  ) {
    super(message);
    this.name = "SparkError";
  }
}

interface Answer {
  ok: boolean;
  error?: string;
  detail?: string;
  [k: string]: unknown;
}

export interface SparkDriverOptions {
  warehouse: string;
  /** Spark's and the notebooks' progress lines (stderr of the driver). */
  log?: (line: string) => void;
}

export class SparkDriver {
  private readonly answers: ((a: Answer) => void)[] = [];
  private exited: Error | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {}

  /** Sets up the Spark environment if needed, starts the driver and waits until its session is ready. */
  static async start(options: SparkDriverOptions): Promise<SparkDriver> {
    const log = options.log ?? (() => undefined);
    const env = await ensureSparkEnv({ log });
    const script = path.join(sparkPaths().sparkDir, "driver.py");
    log(`spark: starting the local driver (warehouse ${options.warehouse}; Spark takes 10-20 s to start)…`);
    const child = spawn(env.python, [script, "--warehouse", path.resolve(options.warehouse)], { env: env.env, stdio: ["pipe", "pipe", "pipe"] });
    const driver = new SparkDriver(child);
    createInterface({ input: child.stderr }).on("line", (line) => {
      if (!/^\s+at |^\d\d\/\d\d\/\d\d .* (WARN|INFO) /.test(line)) log(line);
    });
    createInterface({ input: child.stdout }).on("line", (line) => {
      let answer: Answer;
      try {
        answer = JSON.parse(line) as Answer;
      } catch {
        log(line);
        return;
      }
      driver.answers.shift()?.(answer);
    });
    child.on("exit", (code, signal) => {
      driver.exited = new SparkError(`the local Spark driver exited (${signal ?? `code ${code}`}); see the spark: lines above`);
      for (const waiting of driver.answers.splice(0)) waiting({ ok: false, error: driver.exited.message });
    });
    const ready = await new Promise<Answer>((resolve) => driver.answers.push(resolve));
    if (!ready.ok) throw new SparkError(ready.error ?? "the local Spark driver did not start", ready.detail);
    return driver;
  }

  private request(payload: Record<string, unknown>): Promise<Answer> {
    const next = this.queue.then(
      () =>
        new Promise<Answer>((resolve, reject) => {
          if (this.exited) return reject(this.exited);
          this.answers.push(resolve);
          this.child.stdin.write(JSON.stringify(payload) + "\n");
        }),
    );
    this.queue = next.catch(() => undefined);
    return next.then((a) => {
      if (!a.ok) throw new SparkError(a.error ?? "the request failed", a.detail);
      return a;
    });
  }

  /**
   * bronze → silver → gold once over a landing directory (like one scheduled run of the job). With
   * `kafka`, bronze reads the engine's topics instead (the tables listed), and `landing` is where it
   * mirrors the schema manifests for silver.
   */
  async run(landing: string, options: { tables?: string[]; keys?: Record<string, string[]>; layers?: ("bronze" | "silver" | "gold")[]; kafka?: { bootstrap: string; topicPrefix?: string; options?: Record<string, string> } } = {}): Promise<SparkRunResult> {
    const kafka = options.kafka && { bootstrap: options.kafka.bootstrap, topic_prefix: options.kafka.topicPrefix ?? "cdc", options: options.kafka.options ?? {} };
    const a = await this.request({ cmd: "run", landing: path.resolve(landing), tables: options.tables, keys: options.keys, layers: options.layers, kafka });
    return { errors: (a.errors ?? {}) as Record<string, string> };
  }

  /** A SQL query's rows (nulls included; timestamps as ISO-8601 UTC with microseconds). */
  async query(sql: string): Promise<SparkQueryResult> {
    const a = await this.request({ cmd: "query", sql });
    return { columns: a.columns as string[], rows: a.rows as Record<string, unknown>[] };
  }

  /** Bronze and silver as always-on streams (the job's continuous mode) until stopStreams(). */
  async continuous(landing: string, tables: string[], options: { keys?: Record<string, string[]>; interval?: string } = {}): Promise<void> {
    await this.request({ cmd: "continuous", landing: path.resolve(landing), tables, keys: options.keys, interval: options.interval });
  }

  async stopStreams(): Promise<void> {
    await this.request({ cmd: "stop_streams" });
  }

  /** Drops bronze, silver and gold and the streams' checkpoints (a fresh warehouse, same session). */
  async reset(): Promise<void> {
    await this.request({ cmd: "reset" });
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    await this.request({ cmd: "exit" }).catch(() => undefined);
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 15_000);
    await gone;
    clearTimeout(timer);
  }
}
