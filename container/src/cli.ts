/**
 * `cdc-engine`: `run` streams changes into the landing zone; `doctor` checks the source database
 * and the sink without changing anything. Exit codes: 0 done, 1 a problem (doctor) or a fatal
 * error (run), 2 bad configuration (reported before anything touches the database).
 */
import { Command, CommanderError } from "commander";
import type { Logger } from "pino";
import pg from "pg";
import { ConfigError, loadConfig, type EngineConfig } from "./config";
import { clientConfig } from "./source/connection";
import { createLogger } from "./ops/logger";
import { PrometheusMetrics } from "./ops/prometheus";
import { MetricsLog, teeMetrics } from "./ops/metrics-log";
import { startOpsServer, type OpsServer } from "./ops/http";
import { inspectSource, type SourceCheck } from "./source/setup";
import { tlsProblem } from "./source/errors";
import { databaseSideFix } from "./source/auth";
import { openSink, probeSink } from "./sink";
import { EngineState } from "./batching/state";

const EXIT_OK = 0;
const EXIT_PROBLEM = 1;
const EXIT_CONFIG = 2;

/** Cloud platforms send SIGKILL 10 s after SIGTERM (Cloud Run, Container Apps); stop before that. */
export const STOP_TIMEOUT_MS = 10_000;

// eslint-disable-next-line @typescript-eslint/no-require-imports
const packageJson = require("../package.json") as { version: string; description: string };

type RunEngine = typeof import("./engine").runEngine;

/** The streaming path, loaded only by `run` so `doctor` and `--help` start fast. */
function loadRunEngine(): RunEngine {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require("./engine") as { runEngine: RunEngine }).runEngine;
}

/** Loads the configuration or explains every problem on stderr and exits 2. */
function configOrExit(env: NodeJS.ProcessEnv): EngineConfig {
  try {
    return loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const n = err.problems.length;
    process.stderr.write(
      `cdc-engine: invalid configuration (${n} problem${n === 1 ? "" : "s"}); nothing was started:\n` +
        err.problems.map((p) => `  ${p}\n`).join("") +
        "See docs/engine.md for every variable.\n",
    );
    process.exit(EXIT_CONFIG);
  }
}

async function run(): Promise<never> {
  const config = configOrExit(process.env);
  const logger = createLogger({ level: config.logLevel, secrets: [config.pg.password, config.azure.connectionString, config.kafka.password] });
  const fatal = (err: unknown, context: string): never => {
    const message = err instanceof Error ? err.message : String(err);
    logger.fatal({ err }, `${context}: ${message}`);
    process.exit(EXIT_PROBLEM);
  };
  process.on("uncaughtException", (err) => fatal(err, "uncaught exception"));
  process.on("unhandledRejection", (err) => fatal(err, "unhandled promise rejection"));

  const metrics = new PrometheusMetrics();
  let ops: OpsServer;
  try {
    ops = await startOpsServer({ port: config.httpPort, host: config.httpHost, metrics, logger });
  } catch (err) {
    return fatal(err, "cannot serve HTTP");
  }

  const stop = new AbortController();
  onStopSignals({ logger, controller: stop, exit: (code) => process.exit(code) });

  logger.info(
    {
      version: packageJson.version,
      source: `${config.pg.host}:${config.pg.port}/${config.pg.database}`,
      slot: config.pg.slot,
      publication: config.pg.publication,
      tables: config.tables.map((t) => `${t.schema}.${t.table}`),
      sink: config.sink.url,
      snapshotMode: config.snapshotMode,
      snapshotParallelism: config.snapshotParallelism,
    },
    "cdc-engine starting",
  );
  // The periodic metrics line the clouds' log-based alerts watch (docs/engine.md, "Metrics log line").
  const metricsLog = config.metricsLog === "off"
    ? undefined
    : new MetricsLog({ logger, format: config.metricsLog, source: `${config.pg.host}:${config.pg.port}/${config.pg.database}`, slot: config.pg.slot });
  metricsLog?.start();
  try {
    await loadRunEngine()(config, { logger, metrics: metricsLog ? teeMetrics(metrics, metricsLog) : metrics, signal: stop.signal });
  } catch (err) {
    await ops.close().catch(() => undefined);
    return fatal(err, "cdc-engine stopped on a fatal error");
  }
  logger.info(stop.signal.aborted ? "stopped cleanly" : "finished (nothing left to do)");
  await ops.close().catch(() => undefined);
  process.exit(EXIT_OK);
}

/**
 * SIGTERM/SIGINT abort `controller` (the engine then flushes, confirms and returns). If the clean
 * stop takes longer than `timeoutMs`, or a second signal arrives, `exit(1)` ends the process at
 * once: nothing is lost, as whatever was not confirmed is replayed from the slot on restart.
 */
export function onStopSignals(options: {
  logger: Pick<Logger, "info" | "warn" | "error">;
  controller: AbortController;
  exit: (code: number) => void;
  timeoutMs?: number;
  emitter?: NodeJS.EventEmitter;
}): void {
  const { logger, controller, exit, timeoutMs = STOP_TIMEOUT_MS, emitter = process } = options;
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      logger.warn({ signal }, "second stop signal: exiting now; anything not yet confirmed is replayed from the slot on restart");
      exit(EXIT_PROBLEM);
      return;
    }
    logger.info({ signal }, "stop requested: flushing, confirming and exiting");
    controller.abort();
    setTimeout(() => {
      logger.error({ timeoutMs }, `did not stop cleanly within ${timeoutMs} ms; exiting anyway (anything not yet confirmed is replayed from the slot on restart)`);
      exit(EXIT_PROBLEM);
    }, timeoutMs).unref();
  };
  emitter.on("SIGTERM", onSignal);
  emitter.on("SIGINT", onSignal);
}

/** Explains a failed connection with the variable most likely at fault. */
function connectionCheck(config: EngineConfig, err: unknown): SourceCheck {
  const e = err as { code?: string; message?: string };
  const where = `${config.pg.host}:${config.pg.port}/${config.pg.database} as ${config.pg.user}`;
  const tls = tlsProblem(e, config);
  if (tls) return { name: "connection", ok: false, detail: `cannot connect to ${where}: ${tls.reason}`, fix: tls.fix };
  const detail = `cannot connect to ${where}: ${e.message ?? String(err)}`;
  const fix =
    e.code === "28P01" || e.code === "28000"
      ? config.pg.auth === "password"
        ? "check PG_USER and PG_PASSWORD, and that pg_hba.conf admits this user from this host"
        : `${databaseSideFix(config)}; and check that pg_hba.conf admits this user from this host`
      : e.code === "3D000"
        ? "check PG_DATABASE: the database does not exist on this server"
        : e.code === "ECONNREFUSED" || e.code === "ENOTFOUND" || e.code === "EAI_AGAIN" || e.code === "EHOSTUNREACH" || /timeout/i.test(e.message ?? "")
          ? "check PG_HOST and PG_PORT, and that the network (security group, firewall, VPC peering) lets this host reach the server"
          : /ssl|certificate|self.signed/i.test(e.message ?? "")
            ? "check PG_SSLMODE (disable|require|verify-ca|verify-full) and, for verify-ca/verify-full, PG_SSLROOTCERT"
            : "check the PG_* variables and the server's log";
  return { name: "connection", ok: false, detail, fix };
}

/** Opens a logical replication connection the way the streaming path does and identifies the system. */
async function replicationConnectionCheck(config: EngineConfig): Promise<SourceCheck> {
  const client = new pg.Client({ ...clientConfig(config, "cdc-engine doctor"), replication: "database" } as pg.ClientConfig);
  client.on("error", () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query("IDENTIFY_SYSTEM");
    return { name: "replication connection", ok: true, detail: `opened (system ${rows[0]?.systemid}, timeline ${rows[0]?.timeline}, WAL at ${rows[0]?.xlogpos})` };
  } catch (err) {
    return {
      name: "replication connection",
      ok: false,
      detail: `a replication connection was refused: ${(err as Error).message}`,
      fix: `allow it in pg_hba.conf (host ${config.pg.database} ${config.pg.user} <engine address> scram-sha-256) and check max_wal_senders`,
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}

function printCheck(out: NodeJS.WritableStream, check: SourceCheck): void {
  if (check.ok && check.warning) out.write(`warn ${check.name}: ${check.detail}${check.fix ? ` — fix: ${check.fix}` : ""}\n`);
  else out.write(check.ok ? `ok   ${check.name}: ${check.detail}\n` : `FAIL ${check.name}: ${check.detail}${check.fix ? ` — fix: ${check.fix}` : ""}\n`);
}

/**
 * The database half of `doctor`: connection, every read-only source check, and a replication
 * connection once the user may open one. `report` sees each check as it completes. Shared with
 * `cdc-platform init`, which checks a database before any sink exists.
 */
export async function sourceDoctorChecks(config: EngineConfig, report: (check: SourceCheck) => void = () => undefined): Promise<SourceCheck[]> {
  const checks: SourceCheck[] = [];
  const add = (c: SourceCheck) => {
    checks.push(c);
    report(c);
  };
  const client = new pg.Client(clientConfig(config, "cdc-engine doctor"));
  client.on("error", () => undefined);
  let connected = false;
  try {
    await client.connect();
    connected = true;
    add({ name: "connection", ok: true, detail: `connected to ${config.pg.host}:${config.pg.port}/${config.pg.database} as ${config.pg.user}` });
    for (const c of await inspectSource(config, client)) add(c);
  } catch (err) {
    add(connected ? { name: "source checks", ok: false, detail: (err as Error).message, fix: "check the server's log" } : connectionCheck(config, err));
  } finally {
    await client.end().catch(() => undefined);
  }
  const privileged = checks.some((c) => c.name === "replication privilege" && c.ok);
  if (privileged) add(await replicationConnectionCheck(config));
  return checks;
}

/** Whether PG_SLOT exists on the database (then `doctor` checks that this sink owns it). */
async function slotOnDatabase(config: EngineConfig): Promise<boolean> {
  const client = new pg.Client(clientConfig(config, "cdc-engine doctor"));
  client.on("error", () => undefined);
  try {
    await client.connect();
    const found = await client.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()", [config.pg.slot]);
    return found.rowCount === 1;
  } catch {
    return false; // the source checks above already said why the database cannot be read
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** An existing PG_SLOT must be one this sink's engine created (recorded in its state object), or `run` refuses it. */
async function slotOwnershipCheck(config: EngineConfig): Promise<SourceCheck> {
  const name = "slot ownership";
  const sink = await openSink(config.sink, config);
  try {
    const state = await EngineState.open(sink, config.pg.slot);
    if (state.ownsSlot(config.pg.database)) {
      return { name, ok: true, detail: `${config.pg.slot} was created by the engine for ${config.sink.url} (recorded in ${EngineState.key(config.pg.slot)})` };
    }
    return {
      name,
      ok: false,
      detail: `${config.pg.slot} exists on database ${config.pg.database}, but ${config.sink.url} has no record of creating it, so it belongs to another deployment or to an engine that wrote to another SINK_URL; cdc-engine run refuses to use or drop it`,
      fix: `give this deployment its own slot (PG_SLOT=<name unique to this deployment and sink>); only if nobody uses ${config.pg.slot} any more, drop it: SELECT pg_drop_replication_slot('${config.pg.slot}');`,
    };
  } catch (err) {
    return { name, ok: false, detail: `cannot read the engine state ${EngineState.key(config.pg.slot)}: ${(err as Error).message}`, fix: "check the sink's read permission" };
  } finally {
    await sink.close().catch(() => undefined);
  }
}

async function doctor(): Promise<never> {
  const config = configOrExit(process.env);
  const out = process.stdout;
  const checks: SourceCheck[] = [];
  const report = (c: SourceCheck) => {
    checks.push(c);
    printCheck(out, c);
  };
  await sourceDoctorChecks(config, report);
  const slotExists = checks.some((c) => c.name === "connection" && c.ok) && (await slotOnDatabase(config));

  const probe = await probeSink(config);
  // probeSink's messages start "sink <url>…", which the line's "sink:" label already says.
  const sink = { ...probe, message: probe.message.replace(/^sink /, "") };
  report(
    sink.ok
      ? { name: "sink", ok: true, detail: sink.message }
      : {
          name: "sink",
          ok: false,
          detail: sink.message,
          fix:
            config.sink.kind === "file"
              ? `make ${config.sink.directory} an existing or creatable directory writable by user ${process.getuid?.() ?? "?"}, or choose another SINK_URL`
              : `grant the engine's identity permission to write, read and delete objects under ${config.sink.url} (docs/cloud-sinks.md lists the exact roles)`,
        },
  );
  if (sink.ok && slotExists) report(await slotOwnershipCheck(config));

  const failed = checks.filter((c) => !c.ok).length;
  const warned = checks.filter((c) => c.ok && c.warning).length;
  const warnings = warned === 0 ? "" : ` (${warned} warning${warned === 1 ? "" : "s"})`;
  out.write(failed === 0 ? `\nall ${checks.length} checks passed${warnings}\n` : `\n${failed} of ${checks.length} checks failed${warnings}\n`);
  process.exit(failed === 0 ? EXIT_OK : EXIT_PROBLEM);
}

/**
 * `cdc-engine snapshot --table schema.table …`: asks the engine streaming from PG_SLOT for an
 * incremental snapshot of the tables, by writing a `cdc-snapshot` logical message into the WAL of
 * the source database (docs/engine.md, "Incremental snapshots"). The engine takes it when its
 * stream reaches it, also when it is down right now. Every table is checked first: one message
 * per problem, nothing written.
 */
async function requestSnapshot(tables: string[]): Promise<never> {
  const config = configOrExit(process.env);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { INCREMENTAL_MIN_VERSION, REQUEST_PREFIX } = require("./source/incremental-snapshot") as typeof import("./source/incremental-snapshot");
  const problems: string[] = [];
  const names = [...new Set(tables)];
  for (const t of names) if (!/^[^.]+\.[^.]+$/.test(t)) problems.push(`--table ${t}: expected schema.table, e.g. public.orders`);
  const client = new pg.Client(clientConfig(config, "cdc-engine snapshot"));
  client.on("error", () => undefined);
  try {
    if (problems.length === 0) {
      try {
        await client.connect();
      } catch (err) {
        const check = connectionCheck(config, err);
        problems.push(`${check.detail} — fix: ${check.fix}`);
      }
    }
    if (problems.length === 0) {
      const { rows: version } = await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
      if (Number(version[0].v) < INCREMENTAL_MIN_VERSION) {
        problems.push(`incremental snapshots need PostgreSQL 14 or later (pgoutput decodes the logical messages they use as watermarks from 14 on); this server is ${version[0].v}. Take a full snapshot instead: stop the engine, drop the slot (SELECT pg_drop_replication_slot('${config.pg.slot}');) and start it again (SNAPSHOT_MODE=initial)`);
      }
    }
    if (problems.length === 0) {
      const captured = new Set(config.tables.map((t) => `${t.schema}.${t.table}`));
      for (const label of names) {
        const dot = label.indexOf(".");
        const [schema, table] = [label.slice(0, dot), label.slice(dot + 1)];
        const { rows } = await client.query<{ oid: number | null; published: boolean; pk: boolean }>(
          `SELECT c.oid::int AS oid,
                  EXISTS (SELECT 1 FROM pg_publication_tables p WHERE p.pubname = $3 AND p.schemaname = $1 AND p.tablename = $2) AS published,
                  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS pk
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
          [schema, table, config.pg.publication],
        );
        const row = rows[0];
        if (!row) problems.push(`--table ${label}: no such table on ${config.pg.database}`);
        else if (captured.size > 0 && !captured.has(label)) problems.push(`--table ${label}: not captured (TABLE_INCLUDE=${[...captured].join(",")}); add it to TABLE_INCLUDE and restart the engine, which then snapshots it by itself`);
        else if (!row.published) problems.push(`--table ${label}: publication ${config.pg.publication} does not publish it; add it (ALTER PUBLICATION ${config.pg.publication} ADD TABLE ${label};): the engine then snapshots it by itself`);
        else if (!row.pk) problems.push(`--table ${label}: it has no primary key, which incremental snapshots read it in chunks by; add one (ALTER TABLE ${label} ADD PRIMARY KEY (…);), or take a full snapshot instead (drop the slot and restart the engine)`);
      }
    }
    if (problems.length > 0) {
      process.stderr.write(`cdc-engine snapshot: nothing requested (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` + problems.map((p) => `  ${p}\n`).join(""));
      process.exit(EXIT_PROBLEM);
    }
    const { rows } = await client.query<{ lsn: string }>("SELECT pg_logical_emit_message(true, $1, $2)::text AS lsn", [REQUEST_PREFIX, JSON.stringify({ tables: names })]);
    process.stdout.write(
      `requested an incremental snapshot of ${names.join(", ")} (message at WAL ${rows[0].lsn}); the engine streaming from slot ${config.pg.slot} starts it when its stream reaches the request ` +
        `(log lines "incremental snapshot requested" and "incremental snapshot of table done")\n`,
    );
    process.exit(EXIT_OK);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function buildProgram(): Command {
  const program = new Command("cdc-engine")
    .description(`${packageJson.description}\nConfigured by environment variables (PG_HOST, SINK_URL, …; see docs/engine.md).`)
    .version(packageJson.version, "-V, --version", "print the version")
    .showHelpAfterError("(run cdc-engine --help for usage)")
    .exitOverride();
  program
    .command("run")
    .description("capture changes from PostgreSQL into the landing zone until SIGTERM/SIGINT")
    .action(run);
  program
    .command("doctor")
    .description("check the source database and the sink without changing anything; exit 1 on any problem")
    .action(doctor);
  program
    .command("snapshot")
    .description("ask the running engine for an incremental snapshot of tables, while it streams (a message through the source database; same environment as run)")
    .requiredOption("-t, --table <schema.table>", "a captured table with a primary key (repeat for more)", (value: string, previous: string[] = []) => [...previous, value])
    .action((options: { table: string[] }) => requestSnapshot(options.table));
  return program;
}

export async function main(argv: string[] = process.argv): Promise<void> {
  const program = buildProgram();
  try {
    if (argv.length <= 2) {
      program.outputHelp({ error: true });
      process.exit(EXIT_CONFIG);
    }
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with code 0; unknown commands or options with 1 → 2 (usage).
      process.exit(err.exitCode === 0 ? EXIT_OK : EXIT_CONFIG);
    }
    process.stderr.write(`cdc-engine: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(EXIT_PROBLEM);
  }
}

if (require.main === module) void main(process.argv);
