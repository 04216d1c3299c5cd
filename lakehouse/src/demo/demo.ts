/**
 * `npm run demo` / `cdc-demo`: the whole pipeline on one machine.
 *
 * PostgreSQL (embedded, or --pg-url) with the demo schemas and seed → the CDC engine (`cdc-engine
 * run`, its own process, configured by the documented environment variables) writing file://
 * landing files → a live insert/update/delete workload → the local lakehouse refreshed every few
 * seconds (bronze → silver → gold with the shared SQL) → the gold tables, and where everything is.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Client } from "pg";
import { Duck } from "../duck";
import { formatTable } from "../format";
import { refresh, type RefreshResult } from "../runner";
import { createDemoSchema, DEMO_KEYS, DEMO_TABLES } from "./schema";
import { runWorkload } from "./workload";
import { freePort } from "./postgres";

const SLOT = "cdc_demo_slot";
const PUBLICATION = "cdc_demo_pub";

export const DEMO_USAGE = `Usage: npm run demo -- [options]   (or: npx cdc-demo [options])
  --duration SECONDS   how long the live workload runs (default 30; 0 = until Ctrl-C)
  --dir DIR            where the landing files and the DuckDB file go (default ./.demo; emptied first)
  --pg-url URL         use this PostgreSQL (wal_level=logical, a replication-capable user) instead of
                       an embedded one; the demo creates warehouse.* and public.users/products/orders
  --reset              with --pg-url: drop the demo tables, slot and publication of an earlier run first
  --refresh SECONDS    refresh the lakehouse every SECONDS (default 3)
  --rate N             about N workload transactions per second (default 20)`;

interface DemoOptions {
  durationS: number;
  dir: string;
  pgUrl?: string;
  reset: boolean;
  refreshS: number;
  rate: number;
}

class DemoUsageError extends Error {}

function parseOptions(argv: string[]): DemoOptions {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      duration: { type: "string" },
      dir: { type: "string" },
      "pg-url": { type: "string" },
      reset: { type: "boolean" },
      refresh: { type: "string" },
      rate: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
  });
  if (values.help) throw new DemoUsageError("");
  if (positionals.length > 0) throw new DemoUsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const num = (name: string, raw: string | undefined, fallback: number, min: number): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min) throw new DemoUsageError(`--${name} ${JSON.stringify(raw)} must be a number ≥ ${min}`);
    return n;
  };
  if (values["pg-url"] !== undefined && !/^postgres(ql)?:\/\//.test(values["pg-url"])) throw new DemoUsageError(`--pg-url must look like postgres://user:password@host:5432/database`);
  if (values.reset && values["pg-url"] === undefined) throw new DemoUsageError("--reset only applies with --pg-url (the embedded PostgreSQL always starts empty)");
  return {
    durationS: num("duration", values.duration, 30, 0),
    dir: resolve(values.dir ?? ".demo"),
    pgUrl: values["pg-url"],
    reset: values.reset ?? false,
    refreshS: num("refresh", values.refresh, 3, 0.5),
    rate: num("rate", values.rate, 20, 1),
  };
}

interface PgTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  sslmode: string;
}

function fromUrl(url: string): PgTarget {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username || "postgres"),
    password: decodeURIComponent(u.password),
    database: decodeURIComponent(u.pathname.replace(/^\//, "") || "postgres"),
    sslmode: u.searchParams.get("sslmode") === "require" ? "require" : "disable",
  };
}

/** The sums of a few Prometheus metrics from the engine's /metrics. */
async function engineMetrics(port: number): Promise<{ events: number; files: number; lagBytes: number | undefined } | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(1000) });
    const text = await res.text();
    const sum = (name: string): number | undefined => {
      let total: number | undefined;
      for (const line of text.split("\n")) {
        if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) total = (total ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1));
      }
      return total;
    };
    return { events: sum("cdc_events_written_total") ?? 0, files: sum("cdc_files_written_total") ?? 0, lagBytes: sum("cdc_replication_lag_bytes") };
  } catch {
    return undefined;
  }
}

const bytes = (n: number | undefined): string => (n === undefined ? "?" : n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} kB` : `${(n / 1024 / 1024).toFixed(1)} MB`);
const shortName = (t: string) => t.split(".")[1];

function engineBin(): string {
  const candidates = [resolve(__dirname, "..", "..", "..", "container", "bin", "cdc-engine.js")];
  try {
    candidates.push(join(resolve(require.resolve("@postgres-cdc-multicloud/cdc-engine/package.json"), ".."), "bin", "cdc-engine.js"));
  } catch {
    /* not installed as a package: the repository layout is used */
  }
  const found = candidates.find((c) => existsSync(c) && existsSync(join(c, "..", "..", "dist", "cli.js")));
  if (!found) throw new Error("the CDC engine is not built (container/dist/cli.js is missing); run `npm ci` (or `npm run build`) in the repository first");
  return found;
}

interface EmbeddedServer {
  info: { host: string; port: number; user: string; password: string; database: string; dataDir: string };
  stop(): Promise<void>;
}

/** Starts ./pg-server in its own process group and waits for its JSON line. */
async function startServer(): Promise<EmbeddedServer> {
  // From the sources (tests run them with tsx) or from dist.
  const fromSource = __filename.endsWith(".ts");
  const script = join(__dirname, fromSource ? "pg-server.ts" : "pg-server.js");
  const child = spawn(process.execPath, [...(fromSource ? ["--import", "tsx"] : []), script], { stdio: ["pipe", "pipe", "pipe"], detached: true });
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const info = await new Promise<EmbeddedServer["info"]>((resolveInfo, reject) => {
    let buffered = "";
    child.stdout!.on("data", (d) => {
      buffered += d;
      const nl = buffered.indexOf("\n");
      if (nl >= 0) resolveInfo(JSON.parse(buffered.slice(0, nl)) as EmbeddedServer["info"]);
    });
    void exited.then((code) => reject(new Error(stderr.trim() || `the embedded PostgreSQL helper exited with code ${code}`)));
  });
  let stopped = false;
  return {
    info,
    async stop() {
      if (stopped) return;
      stopped = true;
      child.kill("SIGTERM");
      const done = await Promise.race([exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 20_000))]);
      if (done === "timeout") child.stdin!.destroy();
    },
  };
}

export async function runDemo(argv: string[], out: (s: string) => void = (s) => console.log(s)): Promise<number> {
  let options: DemoOptions;
  try {
    options = parseOptions(argv);
  } catch (err) {
    if (err instanceof DemoUsageError) {
      if (err.message) out(`cdc-demo: ${err.message}\n`);
      out(DEMO_USAGE);
      return err.message ? 2 : 0;
    }
    const code = (err as { code?: string }).code;
    if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS")) {
      out(`cdc-demo: ${(err as Error).message}\n\n${DEMO_USAGE}`);
      return 2;
    }
    throw err;
  }
  const started = Date.now();
  const elapsed = () => `${String(Math.round((Date.now() - started) / 1000)).padStart(3)}s`;
  const say = (s: string) => out(`[${elapsed()}] ${s}`);
  const landing = join(options.dir, "landing");
  const dbFile = join(options.dir, "lakehouse.duckdb");
  const engineLog = join(options.dir, "engine.log");

  let embedded: EmbeddedServer | undefined;
  let engine: ChildProcess | undefined;
  let engineExit: Promise<number | null> | undefined;
  const stopWorkload = new AbortController();
  let interrupted = false;
  let forced = false;
  const onSigint = () => {
    if (interrupted) {
      forced = true;
      out("\nSecond Ctrl-C: stopping at once.");
      engine?.kill("SIGKILL");
      void embedded?.stop().finally(() => process.exit(130));
      return;
    }
    interrupted = true;
    out("\nCtrl-C: stopping the workload, letting the engine flush, refreshing one last time… (Ctrl-C again to stop at once)");
    stopWorkload.abort();
  };
  process.on("SIGINT", onSigint);
  process.on("SIGTERM", onSigint);

  try {
    say(`demo data (landing files, DuckDB file, engine log) goes to ${options.dir}`);
    // 1. PostgreSQL.
    let pg: PgTarget;
    if (options.pgUrl) {
      pg = fromUrl(options.pgUrl);
      say(`using PostgreSQL at ${pg.host}:${pg.port}/${pg.database}`);
    } else {
      say("starting an embedded PostgreSQL 17 (wal_level=logical)…");
      embedded = await startServer();
      pg = { ...embedded.info, sslmode: "disable" };
      say(`PostgreSQL is up on 127.0.0.1:${pg.port} (data in ${embedded.info.dataDir}, removed at the end)`);
    }
    const connect = async () => {
      const c = new Client({ host: pg.host, port: pg.port, user: pg.user, password: pg.password, database: pg.database, ssl: pg.sslmode === "require" ? { rejectUnauthorized: false } : undefined });
      // A server going away surfaces as the failed query; an idle client's error must not crash the demo.
      c.on("error", () => undefined);
      await c.connect();
      return c;
    };
    const admin = await connect().catch((err: Error) => {
      throw new Error(`cannot connect to PostgreSQL at ${pg.host}:${pg.port}/${pg.database} as ${pg.user}: ${err.message}`);
    });
    try {
      if (options.reset) {
        await admin.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '${SLOT}' AND NOT active`);
        await admin.query(`DROP PUBLICATION IF EXISTS ${PUBLICATION}`);
        await admin.query(`DROP TABLE IF EXISTS ${DEMO_TABLES.join(", ")}`);
        say("dropped the demo tables, slot and publication of an earlier run");
      }
      await createDemoSchema(admin).catch((err: Error) => {
        throw new Error(options.pgUrl && /already exist/.test(err.message) ? `${err.message}; or pass --reset to drop the demo tables, slot and publication of an earlier demo run` : err.message);
      });
      const counts = await admin.query<{ t: string; n: string }>(DEMO_TABLES.map((t) => `SELECT '${t}' AS t, count(*)::text AS n FROM ${t}`).join(" UNION ALL "));
      say(`created the demo schemas and seed: ${counts.rows.map((r) => `${shortName(r.t)} ${r.n}`).join(", ")}`);
    } finally {
      await admin.end();
    }

    // The demo directory, emptied only now that the source is ready.
    if (existsSync(options.dir)) say(`emptying ${options.dir} (left from an earlier demo run)`);
    await rm(landing, { recursive: true, force: true });
    await rm(dbFile, { force: true });
    await rm(`${dbFile}.wal`, { force: true });
    await mkdir(landing, { recursive: true });

    // 2. The CDC engine, exactly as users run it: `cdc-engine run` configured by environment variables.
    const httpPort = await freePort();
    const env = {
      ...process.env,
      PG_HOST: pg.host,
      PG_PORT: String(pg.port),
      PG_DATABASE: pg.database,
      PG_USER: pg.user,
      PG_PASSWORD: pg.password,
      PG_SSLMODE: pg.sslmode,
      PG_SLOT: SLOT,
      PG_PUBLICATION: PUBLICATION,
      TABLE_INCLUDE: DEMO_TABLES.join(","),
      SINK_URL: `file://${landing}`,
      BATCH_MAX_WAIT_MS: "1000",
      HEARTBEAT_INTERVAL_MS: "2000",
      HTTP_PORT: String(httpPort),
      LOG_LEVEL: "info",
    };
    const log = createWriteStream(engineLog);
    // Its own process group: Ctrl-C reaches the demo, which then stops the engine with one SIGTERM.
    engine = spawn(process.execPath, [engineBin(), "run"], { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    engine.stdout!.pipe(log);
    engine.stderr!.pipe(log);
    engineExit = new Promise((r) => engine!.on("exit", (code) => r(code)));
    say(`started the CDC engine (cdc-engine run, pid ${engine.pid}; logs in ${engineLog}; metrics on http://127.0.0.1:${httpPort}/metrics)`);
    // Ready = the initial snapshot has landed and the engine streams changes.
    for (const until = Date.now() + 90_000; ; ) {
      if (forced || interrupted) return 130;
      if (engine.exitCode !== null) throw new Error(`the CDC engine exited with code ${engine.exitCode} while starting; see ${engineLog}`);
      const ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
      if (ready) break;
      if (Date.now() > until) throw new Error(`the CDC engine is not ready after 90 s; see ${engineLog}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const snapshot = await engineMetrics(httpPort);
    say(`the engine took the initial snapshot (${snapshot?.events ?? "?"} rows) and is streaming`);

    // 3. The live workload.
    let committed = 0;
    let changes = 0;
    const clients = 2;
    const workload = runWorkload(connect, {
      clients,
      seed: Date.now() % 100000,
      pauseMs: Math.max(0, Math.round((1000 * clients) / options.rate)),
      signal: stopWorkload.signal,
      onCommit: (n) => {
        committed++;
        changes += n;
      },
    }).catch((err: Error) => {
      if (!stopWorkload.signal.aborted) say(`the workload stopped: ${err.message}`);
      return undefined;
    });
    say(`running a live workload (~${options.rate} transactions/s of inserts, updates, deletes) ${options.durationS > 0 ? `for ${options.durationS}s` : "until Ctrl-C"}; refreshing the lakehouse every ${options.refreshS}s`);
    const deadline = options.durationS > 0 ? Date.now() + options.durationS * 1000 : Infinity;
    let lastRefresh: RefreshResult | undefined;
    const progress = async () => {
      lastRefresh = await refresh({ landing, db: dbFile, keys: DEMO_KEYS });
      const m = engine ? await engineMetrics(httpPort) : undefined;
      const duck = await Duck.open(dbFile);
      let silver: string;
      try {
        const views = new Set((await duck.all<{ t: string }>("SELECT view_name AS t FROM duckdb_views() WHERE schema_name = 'silver'")).map((r) => r.t));
        const parts: string[] = [];
        for (const table of DEMO_TABLES) {
          const view = table.replace(".", "_");
          if (views.has(view)) parts.push(`${shortName(table)} ${(await duck.all<{ n: string }>(`SELECT count(*) AS n FROM silver.${view}`))[0].n}`);
        }
        silver = parts.join(", ");
      } finally {
        duck.close();
      }
      const landed = lastRefresh.tables.reduce((s, t) => s + t.newRecords, 0);
      say(
        `source: ${changes} changes in ${committed} txns | engine: ${m ? `${m.events} records landed (snapshot + changes), ${m.files} files, replication lag ${bytes(m.lagBytes)}` : engine ? "starting…" : "stopped"} | lakehouse: +${landed} records | silver rows: ${silver || "(nothing landed yet)"}`,
      );
    };
    while (!stopWorkload.signal.aborted && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, Math.min(options.refreshS * 1000, Math.max(0, deadline - Date.now()))));
      if (forced) return 130;
      if (engine.exitCode !== null) throw new Error(`the CDC engine exited with code ${engine.exitCode}; see ${engineLog}`);
      await progress();
    }
    stopWorkload.abort();
    await workload;
    say(`workload stopped: ${changes} changes in ${committed} transactions`);

    // 4. Let the engine land everything that was committed, then stop it.
    {
      const target = await connect().then(async (c) => {
        try {
          // The insert position, not pg_current_wal_lsn(): with synchronous_commit=off the last commits
          // may still sit in WAL buffers, past the write position.
          return (await c.query<{ lsn: string }>("SELECT (pg_current_wal_insert_lsn() - '0/0')::text AS lsn")).rows[0].lsn;
        } finally {
          await c.end();
        }
      });
      const waitS = interrupted ? 10 : 20;
      const until = Date.now() + waitS * 1000;
      for (;;) {
        const c = await connect();
        const r = await c.query<{ lsn: string | null }>(`SELECT (confirmed_flush_lsn - '0/0')::text AS lsn FROM pg_replication_slots WHERE slot_name = '${SLOT}'`).finally(() => c.end());
        if (r.rows[0]?.lsn && BigInt(r.rows[0].lsn) >= BigInt(target)) break;
        if (Date.now() > until) {
          say(`the engine has not confirmed everything after ${waitS} s; stopping it anyway (see the engine log)`);
          break;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      say("the engine has landed every committed change");
    }
    engine.kill("SIGTERM");
    const code = await Promise.race([engineExit, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 15_000))]);
    if (code === "timeout") {
      engine.kill("SIGKILL");
      await engineExit;
      say("the engine did not stop within 15 s and was killed");
    } else say(`the engine stopped (exit code ${code})`);
    engine = undefined;
    await progress();

    // 5. Gold, for people.
    out("");
    out("Gold tables (built by the shared SQL in notebooks/sql/gold, the same SQL Databricks runs):");
    const duck = await Duck.open(dbFile);
    try {
      const shows: [string, string][] = [
        ["gold.remaining_stock — per stock item: initial qty + in − out", "SELECT * FROM gold.remaining_stock ORDER BY remaining, item_id LIMIT 8"],
        ["gold.user_segments — users by lifetime value", "SELECT * FROM gold.user_segments ORDER BY total_value DESC"],
        ["gold.user_lifetime_value — top customers", "SELECT user_id, email, country, orders_count, lifetime_value, segment FROM gold.user_lifetime_value ORDER BY lifetime_value DESC, user_id LIMIT 8"],
        ["gold.product_performance — most popular products", "SELECT product_id, name, category, units_sold, revenue, popularity_rank FROM gold.product_performance ORDER BY popularity_rank, product_id LIMIT 8"],
        ["gold.daily_sales — daily trend (UTC)", "SELECT * FROM gold.daily_sales ORDER BY sales_date DESC LIMIT 8"],
      ];
      const skipped = new Map((lastRefresh?.goldSkipped ?? []).map((g) => [`gold.${g.name}`, g.missing]));
      for (const [title, sql] of shows) {
        out("");
        out(title);
        const missing = skipped.get(title.split(" ")[0]);
        if (missing) {
          out(`(not built: nothing has landed yet for ${missing.join(", ")})`);
          continue;
        }
        const t = await duck.table(sql);
        out(formatTable(t.columns, t.rows));
      }
    } finally {
      duck.close();
    }
    const rel = (p: string) => {
      const r = relative(process.cwd(), p);
      return r && !r.startsWith("..") ? r : p;
    };
    out("");
    out(`Landing files: ${landing}   (cdc.<schema>.<table>/date=YYYY-MM-DD/hour=HH/*.ndjson)`);
    out(`DuckDB file:   ${dbFile}   (schemas bronze, silver, gold)`);
    out("Query it:");
    out(`  npx cdc-lakehouse query --db ${rel(dbFile)} "SELECT * FROM gold.remaining_stock ORDER BY remaining LIMIT 10"`);
    out(`  npx cdc-lakehouse query --db ${rel(dbFile)} "SELECT * FROM silver.public_orders ORDER BY order_id DESC LIMIT 10"`);
    out(`Refresh again after copying in more landing files: npx cdc-lakehouse refresh --landing ${rel(landing)} --db ${rel(dbFile)}`);
    out(`Docs: docs/lakehouse.md`);
    return 0;
  } finally {
    process.removeListener("SIGINT", onSigint);
    process.removeListener("SIGTERM", onSigint);
    stopWorkload.abort();
    if (engine && engine.exitCode === null) {
      engine.kill("SIGTERM");
      await Promise.race([engineExit, new Promise((r) => setTimeout(r, 12_000))]);
      if (engine.exitCode === null) engine.kill("SIGKILL");
    }
    if (embedded) {
      await embedded.stop();
      out("Stopped the embedded PostgreSQL; nothing is left running.");
    }
  }
}
