/**
 * One local Spark driver for every Spark test file of a mocha run (spark.test.ts, spark-kafka.test.ts).
 *
 * Starting Spark costs 10-20 s, and a fresh JVM runs its first notebooks several times slower than a
 * warm one (the JIT compiles Spark's and Delta's planner while it goes); so the files share one
 * driver, each starting from a fresh warehouse with reset(), instead of paying both twice. The
 * driver is stopped after the run by the root hook plugin every mocha run loads
 * (tests/support/root-hooks.ts, .mocharc.json), so it also stops when a single file runs alone.
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { SparkDriver } from "../../lakehouse/src/spark/driver";
import { tempDir } from "./helpers";
import { stopAfterRun } from "../support/root-hooks";

const log = process.env.SPARK_TEST_LOG ? (line: string) => process.stderr.write(line + "\n") : () => undefined;

let shared: Promise<{ driver: SparkDriver; root: string }> | undefined;

/** The run's Spark driver (started on first use) with bronze, silver, gold and the checkpoints dropped. */
export async function sharedSpark(): Promise<SparkDriver> {
  if (shared === undefined) stopAfterRun(stopSharedSpark);
  shared ??= (async () => {
    const root = await tempDir("cdc-spark-shared-");
    return { driver: await SparkDriver.start({ warehouse: join(root, "warehouse"), log }), root };
  })();
  const { driver } = await shared;
  await driver.reset();
  return driver;
}

async function stopSharedSpark(): Promise<void> {
  const started = await shared?.catch(() => undefined);
  shared = undefined;
  if (!started) return;
  await started.driver.stop();
  if (!process.env.KEEP_SPARK_TEST_DIR) await rm(started.root, { recursive: true, force: true });
}
