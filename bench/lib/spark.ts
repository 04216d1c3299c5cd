/**
 * The lakehouse side on local Spark + Delta Lake, through the real notebooks (the local Spark
 * driver and its Databricks stand-in harness): how fast silver merges a backlog, and how long a
 * change takes from its commit to silver while bronze and silver stream continuously.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { SparkDriver } from "../../lakehouse/src/spark/driver";

export interface SilverBacklogFigures {
  changes: number;
  keys: number;
  bronzeSeconds: number;
  silverSeconds: number;
  silverChangesPerS: number;
  silverRows: number;
}

export interface SilverLatencyFigures {
  samples: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

const hex16 = (n: number | bigint) => BigInt(n).toString(16).toUpperCase().padStart(16, "0");
const seq10 = (n: number) => String(n).padStart(10, "0");

/** The engine's landing contract for public.bench_silver, written directly: a backlog of `changes`. */
async function writeBacklog(landing: string, changes: number): Promise<number> {
  const folder = join(landing, "cdc.public.bench_silver");
  await mkdir(join(folder, "_schema"), { recursive: true });
  const manifest = {
    version: 1,
    table: "public.bench_silver",
    since_lsn: 0,
    since_seq: 0,
    columns: [
      { name: "id", pg_type: "bigint", nullable: false, spark_type: "BIGINT" },
      { name: "account", pg_type: "integer", nullable: false, spark_type: "INT" },
      { name: "amount", pg_type: "numeric(12,2)", nullable: true, spark_type: "DECIMAL(12,2)" },
      { name: "status", pg_type: "text", nullable: true, spark_type: "STRING" },
      { name: "note", pg_type: "text", nullable: true, spark_type: "STRING" },
      { name: "updated_at", pg_type: "timestamp with time zone", nullable: true, spark_type: "TIMESTAMP" },
    ],
    primary_key: ["id"],
    replica_identity: "default",
    key: ["id"],
  };
  await writeFile(join(folder, "_schema", `${hex16(0)}-${seq10(0)}.json`), JSON.stringify(manifest));
  // The drain's mix: 60% inserts, 30% updates of earlier rows, 10% deletes, 10,000 per transaction and object.
  const perObject = 10_000;
  let inserted = 0;
  let lsn = 0x1000000;
  const dir = join(folder, "date=2026-11-21", "hour=12");
  await mkdir(dir, { recursive: true });
  for (let done = 0; done < changes; done += perObject) {
    lsn += 0x10000;
    const lines: string[] = [];
    const n = Math.min(perObject, changes - done);
    for (let seq = 0; seq < n; seq++) {
      const r = (done + seq) % 10;
      const ts = 1795265975449 + done + seq;
      if (r < 6 || inserted === 0) {
        inserted++;
        lines.push(`{"__op":"c","__deleted":"false","__lsn":${lsn},"__seq":${seq},"__ts_ms":${ts},"id":${inserted},"account":${inserted % 1000},"amount":"${(inserted % 100000) / 100}","status":"new","note":"0123456789abcdef0123456789abcdef","updated_at":"2026-11-21T12:00:00.000000Z"}`);
      } else if (r < 9) {
        const id = 1 + ((done + seq) * 7919) % inserted;
        lines.push(`{"__op":"u","__deleted":"false","__lsn":${lsn},"__seq":${seq},"__ts_ms":${ts},"id":${id},"account":${id % 1000},"amount":"${(id % 100000) / 100 + 1}","status":"updated","note":"0123456789abcdef0123456789abcdef","updated_at":"2026-11-21T12:05:00.000000Z"}`);
      } else {
        const id = 1 + ((done + seq) * 104729) % inserted;
        lines.push(`{"__op":"d","__deleted":"true","__lsn":${lsn},"__seq":${seq},"__ts_ms":${ts},"id":${id}}`);
      }
    }
    await writeFile(join(dir, `${hex16(lsn)}-${seq10(0)}-${hex16(lsn)}-${seq10(n - 1)}.ndjson`), lines.join("\n") + "\n");
  }
  return inserted;
}

/** Bronze, then silver (timed apart), over a backlog of `changes` landed changes. */
export async function silverBacklog(work: string, changes: number, log: (line: string) => void): Promise<SilverBacklogFigures> {
  const landing = join(work, "spark-backlog-landing");
  const keys = await writeBacklog(landing, changes);
  const spark = await SparkDriver.start({ warehouse: join(work, "spark-backlog-warehouse"), log: (l) => (/^(spark|harness):/.test(l) ? log(l) : undefined) });
  try {
    let t = performance.now();
    const bronze = await spark.run(landing, { layers: ["bronze"] });
    const bronzeSeconds = (performance.now() - t) / 1000;
    if (bronze.errors.bronze) throw new Error(`bronze failed: ${bronze.errors.bronze}`);
    t = performance.now();
    const silver = await spark.run(landing, { layers: ["silver"] });
    const silverSeconds = (performance.now() - t) / 1000;
    if (silver.errors.silver) throw new Error(`silver failed: ${silver.errors.silver}`);
    const [{ n }] = (await spark.query("SELECT count(*) AS n FROM silver.public_bench_silver")).rows as { n: number }[];
    return { changes, keys, bronzeSeconds, silverSeconds, silverChangesPerS: changes / silverSeconds, silverRows: Number(n) };
  } finally {
    await spark.stop();
  }
}

/**
 * Commit → silver latency: with bronze and silver streaming continuously (1 s trigger) over the
 * engine's landing directory, `write()` produces the workload; afterwards each row's latest
 * change gives one sample, silver's `__merged_at` minus the change's commit time `__ts_ms`.
 */
export async function silverLatency(work: string, landing: string, table: string, write: () => Promise<void>, warmupUntilMs: () => number, log: (line: string) => void): Promise<SilverLatencyFigures> {
  const spark = await SparkDriver.start({ warehouse: join(work, "spark-latency-warehouse"), log: (l) => (/^(spark|harness):/.test(l) ? log(l) : undefined) });
  try {
    await spark.continuous(landing, [table], { interval: "1 second" });
    await write();
    // Let the last micro-batches through both layers.
    await new Promise((r) => setTimeout(r, 20_000));
    await spark.stopStreams();
    const [schema, name] = table.split(".");
    const { rows } = await spark.query(
      `SELECT (unix_micros(__merged_at) / 1000.0) - __ts_ms AS ms FROM silver.${schema}_${name}__cdc_state WHERE __ts_ms >= ${Math.floor(warmupUntilMs())} ORDER BY ms`,
    );
    const ms = rows.map((r) => Number(r.ms));
    const at = (p: number) => ms[Math.min(ms.length - 1, Math.max(0, Math.ceil((p / 100) * ms.length) - 1))] ?? NaN;
    return { samples: ms.length, p50Ms: Math.round(at(50)), p99Ms: Math.round(at(99)), maxMs: Math.round(ms[ms.length - 1] ?? NaN) };
  } finally {
    await spark.stop();
  }
}
