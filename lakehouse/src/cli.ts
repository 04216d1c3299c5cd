/**
 * `cdc-lakehouse`: the local lakehouse from the command line.
 *
 *   cdc-lakehouse refresh --landing DIR --db FILE [--tables s.t,…] [--key s.t=col[,col]]… [--no-gold] [--every SECONDS]
 *   cdc-lakehouse query --db FILE "SQL" [--json]
 *   cdc-lakehouse spark run --landing DIR --warehouse DIR [--tables s.t,…] [--key s.t=col[,col]]…
 *   cdc-lakehouse spark query --warehouse DIR "SQL"
 *
 * Exit codes: 0 done, 1 the refresh or query failed, 2 bad usage.
 */
import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { DuckDBInstance } from "@duckdb/node-api";
import { formatTable } from "./format";
import { refresh, type RefreshResult } from "./runner";
import { SparkDriver } from "./spark/driver";

export const USAGE = `Usage:
  cdc-lakehouse refresh --landing DIR --db FILE [options]
      Ingests new landing files (bronze), merges them into silver and rebuilds gold.
      --landing DIR        the engine's landing directory (SINK_URL file:///DIR, or a copy of the cloud landing zone)
      --db FILE            the DuckDB database file (created if missing)
      --tables S.T,…       only these tables
      --key S.T=COL[,COL]  the primary key of a table (needed once per table; remembered in the database)
      --no-gold            skip the gold tables
      --every SECONDS      keep refreshing every SECONDS until Ctrl-C
  cdc-lakehouse query --db FILE "SQL" [--json]
      Runs one SQL statement (read-only) and prints the result as a table (or JSON lines).
      e.g. cdc-lakehouse query --db lake.duckdb "SELECT * FROM gold.remaining_stock ORDER BY remaining LIMIT 10"
  cdc-lakehouse spark run --landing DIR --warehouse DIR [--tables S.T,…] [--key S.T=COL[,COL]]…
      Runs the Databricks notebooks (bronze → silver → gold) on local Spark + Delta Lake over the landing
      directory, incrementally like the job; Delta tables bronze.<schema>_<table>, silver.<schema>_<table> and
      gold.* live under the warehouse directory. The first run installs PySpark and Delta Lake (.cache/spark).
  cdc-lakehouse spark query --warehouse DIR "SQL"
      Prints the result rows of one Spark SQL statement as NDJSON.`;

class UsageError extends Error {}

function parseKeys(values: string[] | undefined): Record<string, string[]> {
  const keys: Record<string, string[]> = {};
  for (const v of values ?? []) {
    const m = /^([A-Za-z_][A-Za-z0-9_$]*\.[A-Za-z_][A-Za-z0-9_$]*)=([A-Za-z_][A-Za-z0-9_]*(?:,[A-Za-z_][A-Za-z0-9_]*)*)$/.exec(v.trim());
    if (!m) throw new UsageError(`--key ${JSON.stringify(v)} is not schema.table=column[,column], e.g. --key public.orders=order_id`);
    keys[m[1]] = m[2].split(",");
  }
  return keys;
}

export function describeRefresh(result: RefreshResult): string {
  const lines: string[] = [];
  if (result.tables.length === 0) lines.push("no new landing files");
  for (const t of result.tables) {
    lines.push(`${t.table}: ${t.newFiles} file${t.newFiles === 1 ? "" : "s"}, ${t.newRecords} new record${t.newRecords === 1 ? "" : "s"} → ${t.silverTable} has ${t.silverRows} row${t.silverRows === 1 ? "" : "s"}`);
  }
  for (const g of result.gold) lines.push(`${g.table}: ${g.rows} row${g.rows === 1 ? "" : "s"}`);
  for (const g of result.goldSkipped) {
    lines.push(g.error ? `gold.${g.name}: not built (${g.error})` : `gold.${g.name}: waiting for ${g.missing.join(", ")} to land`);
  }
  return lines.join("\n");
}

async function cmdRefresh(args: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      landing: { type: "string" },
      db: { type: "string" },
      tables: { type: "string" },
      key: { type: "string", multiple: true },
      "no-gold": { type: "boolean" },
      every: { type: "string" },
    },
    allowPositionals: true,
  });
  if (positionals.length > 0) throw new UsageError(`refresh takes no positional arguments (got ${positionals.map((p) => JSON.stringify(p)).join(" ")})`);
  if (!values.landing) throw new UsageError("refresh needs --landing DIR (the engine's landing directory)");
  if (!values.db) throw new UsageError("refresh needs --db FILE (the DuckDB database file to create or update)");
  const landing = resolve(values.landing);
  if (!existsSync(landing) || !statSync(landing).isDirectory()) throw new UsageError(`--landing ${values.landing}: no such directory; pass the directory the engine writes to (its SINK_URL file:///… path)`);
  const tables = values.tables?.split(",").map((s) => s.trim()).filter(Boolean);
  for (const t of tables ?? []) if (!/^[A-Za-z_][A-Za-z0-9_$]*\.[A-Za-z_][A-Za-z0-9_$]*$/.test(t)) throw new UsageError(`--tables: "${t}" is not a schema.table name`);
  const every = values.every === undefined ? undefined : Number(values.every);
  if (every !== undefined && !(every > 0)) throw new UsageError(`--every ${JSON.stringify(values.every)} must be a positive number of seconds`);
  const options = { landing, db: resolve(values.db), tables, keys: parseKeys(values.key), gold: !values["no-gold"], log: out };
  if (every === undefined) {
    out(describeRefresh(await refresh(options)));
    return 0;
  }
  let stop = false;
  const onSignal = () => void (stop = true);
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  while (!stop) {
    const result = await refresh(options);
    if (result.tables.length > 0) out(`[${new Date().toISOString()}]\n${describeRefresh(result)}`);
    for (let waited = 0; waited < every * 1000 && !stop; waited += 100) await new Promise((r) => setTimeout(r, 100));
  }
  return 0;
}

async function cmdQuery(args: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { db: { type: "string" }, json: { type: "boolean" } }, allowPositionals: true });
  if (!values.db) throw new UsageError('query needs --db FILE, e.g. cdc-lakehouse query --db lake.duckdb "SELECT * FROM gold.daily_sales"');
  if (positionals.length !== 1) throw new UsageError(`query needs exactly one SQL statement in quotes (got ${positionals.length} arguments)`);
  const db = resolve(values.db);
  if (!existsSync(db)) throw new UsageError(`--db ${values.db}: no such DuckDB file; run cdc-lakehouse refresh --landing DIR --db ${values.db} first`);
  const instance = await DuckDBInstance.create(db, { access_mode: "READ_ONLY" }).catch((err: Error) => {
    throw new Error(`cannot open ${db}: ${err.message.split("\n")[0]}${/lock/i.test(err.message) ? " (another process is writing it; stop it, or query a copy)" : ""}`);
  });
  const connection = await instance.connect();
  try {
    await connection.run("SET TimeZone = 'UTC'");
    let reader;
    try {
      reader = await connection.runAndReadAll(positionals[0]);
    } catch (err) {
      throw new Error(`query failed: ${(err as Error).message}`);
    }
    const columns = reader.columnNames();
    const rows = reader.getRowsJson() as unknown[][];
    if (values.json) for (const r of rows) out(JSON.stringify(Object.fromEntries(columns.map((c, i) => [c, r[i]]))));
    else out(formatTable(columns, rows));
    return 0;
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

async function cmdSpark(argv: string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== "run" && sub !== "query") throw new UsageError(`spark needs a command: run or query (got ${JSON.stringify(sub ?? "")})`);
  const { values, positionals } = parseArgs({
    args: rest,
    options: { landing: { type: "string" }, warehouse: { type: "string" }, tables: { type: "string" }, key: { type: "string", multiple: true } },
    allowPositionals: true,
  });
  if (!values.warehouse) throw new UsageError(`spark ${sub} needs --warehouse DIR (where the Delta tables live)`);
  let sql = "";
  if (sub === "run") {
    if (!values.landing) throw new UsageError("spark run needs --landing DIR (the engine's landing directory)");
    if (!existsSync(values.landing) || !statSync(values.landing).isDirectory()) throw new UsageError(`--landing ${values.landing}: no such directory`);
    if (positionals.length > 0) throw new UsageError(`spark run takes no positional arguments (got ${positionals.map((p) => JSON.stringify(p)).join(" ")})`);
  } else {
    if (positionals.length !== 1) throw new UsageError(`spark query needs exactly one SQL statement in quotes (got ${positionals.length} arguments)`);
    sql = positionals[0];
  }
  const driver = await SparkDriver.start({ warehouse: resolve(values.warehouse), log: err });
  try {
    if (sub === "query") {
      for (const row of (await driver.query(sql)).rows) out(JSON.stringify(row));
      return 0;
    }
    const tables = values.tables ? values.tables.split(",").map((t) => t.trim()).filter(Boolean) : undefined;
    const { errors } = await driver.run(resolve(values.landing!), { tables, keys: parseKeys(values.key) });
    for (const [layer, message] of Object.entries(errors)) err(`cdc-lakehouse: ${layer}: ${message}`);
    out(Object.keys(errors).length === 0 ? `spark: bronze → silver → gold done; warehouse ${resolve(values.warehouse)}` : `spark: finished with failures in ${Object.keys(errors).join(", ")}`);
    return Object.keys(errors).length === 0 ? 0 : 1;
  } finally {
    await driver.stop();
  }
}

/** Runs the CLI; resolves with the exit code. */
export async function main(argv: string[], out: (s: string) => void = (s) => console.log(s), err: (s: string) => void = (s) => console.error(s)): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "refresh":
        return await cmdRefresh(rest, out);
      case "query":
        return await cmdQuery(rest, out);
      case "spark":
        return await cmdSpark(rest, out, err);
      case undefined:
      case "help":
      case "--help":
      case "-h":
        out(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}" (use refresh, query or spark)`);
    }
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (e instanceof UsageError || (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS"))) {
      err(`cdc-lakehouse: ${(e as Error).message}\n\n${USAGE}`);
      return 2;
    }
    err(`cdc-lakehouse: ${(e as Error).message}`);
    return 1;
  }
}
