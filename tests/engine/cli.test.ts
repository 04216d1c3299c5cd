/**
 * The real `cdc-engine` process (from source, through tsx): usage, configuration errors (exit 2,
 * the database untouched), `run` against an embedded PostgreSQL with its HTTP endpoints and a clean
 * stop on SIGTERM/SIGINT, fatal errors (exit 1, one clear log line), and the slot-in-use wait.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type Server } from "node:net";
import { readFileSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { EventEmitter } from "node:events";
import { startPostgres, freePort, type TestPostgres } from "../support/postgres";
import { onStopSignals, STOP_TIMEOUT_MS } from "../../container/src/cli";
import * as api from "../../container/src/index";

const CLI = resolve(__dirname, "../../container/src/cli.ts");
const VERSION = (JSON.parse(readFileSync(resolve(__dirname, "../../container/package.json"), "utf8")) as { version: string }).version;

interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function start(args: string[], env: Record<string, string>): Running {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((res) => child.on("close", (code) => res(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function runToEnd(args: string[], env: Record<string, string>) {
  const r = start(args, env);
  const code = await r.exited;
  return { code, stdout: r.stdout(), stderr: r.stderr() };
}

/** The structured log lines of a run; every stdout line must be one JSON object. */
function logRecords(stdout: string): Record<string, unknown>[] {
  return stdout
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        assert.fail(`stdout line is not JSON: ${line}`);
      }
    });
}

/** Polls until `predicate` holds (no timing assertion: the test timeout bounds it). */
async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function http(port: number, path: string) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

/** A TCP server standing in for PostgreSQL that only records whether anyone connected. */
async function recordingServer(): Promise<{ server: Server; port: number; connections: () => number }> {
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  return { server, port: (server.address() as { port: number }).port, connections: () => connections };
}

async function landedFiles(dir: string, table: string): Promise<string[]> {
  const root = join(dir, `cdc.${table}`);
  const files: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else if (e.name.endsWith(".ndjson")) files.push(join(d, e.name));
    }
  };
  await walk(root);
  return files.sort();
}

async function landedRecords(dir: string, table: string): Promise<Record<string, unknown>[]> {
  const records: Record<string, unknown>[] = [];
  for (const f of await landedFiles(dir, table)) {
    for (const line of (await readFile(f, "utf8")).split("\n").filter(Boolean)) records.push(JSON.parse(line));
  }
  return records;
}

describe("engine CLI: cdc-engine", function () {
  describe("usage", () => {
    it("--help lists run and doctor and exits 0; --version prints the package version", async () => {
      const help = await runToEnd(["--help"], {});
      assert.equal(help.code, 0);
      assert.match(help.stdout, /^Usage: cdc-engine \[options\] \[command\]/);
      assert.match(help.stdout, /^ {2}run +capture changes from PostgreSQL/m);
      assert.match(help.stdout, /^ {2}doctor +check the source database and the sink/m);
      const version = await runToEnd(["--version"], {});
      assert.equal(version.code, 0);
      assert.equal(version.stdout.trim(), VERSION);
    });

    it("exits 2 with usage for no command or an unknown one", async () => {
      const none = await runToEnd([], {});
      assert.equal(none.code, 2);
      assert.match(none.stderr, /Usage: cdc-engine/);
      const bogus = await runToEnd(["stream"], {});
      assert.equal(bogus.code, 2);
      assert.match(bogus.stderr, /unknown command 'stream'/);
    });
  });

  it("exposes the public API from the package entry point", () => {
    for (const name of ["loadConfig", "runEngine", "prepareSource", "inspectSource", "createSink", "probeSink", "createLogger", "startOpsServer", "main"] as const) {
      assert.equal(typeof api[name], "function", name);
    }
    assert.equal(typeof api.ConfigError, "function");
    assert.equal(typeof api.SourceSetupError, "function");
    assert.equal(typeof api.PrometheusMetrics, "function");
    assert.ok("SINK_URL" in api.VARIABLES);
  });

  describe("stop signals (in-process, with a stand-in for process and exit)", () => {
    const recorder = () => {
      const logged: string[] = [];
      const exits: number[] = [];
      const log = (msg: string) => logged.push(msg);
      const logger = { info: (_o: object, m: string) => log(m), warn: (_o: object, m: string) => log(m), error: (_o: object, m: string) => log(m) };
      return { logged, exits, logger: logger as never, exit: (code: number) => void exits.push(code) };
    };

    it("aborts the engine on SIGTERM and forces exit 1 when the clean stop overruns the deadline", async () => {
      assert.equal(STOP_TIMEOUT_MS, 10_000);
      const r = recorder();
      const emitter = new EventEmitter();
      const controller = new AbortController();
      onStopSignals({ logger: r.logger, controller, exit: r.exit, timeoutMs: 50, emitter });
      emitter.emit("SIGTERM", "SIGTERM");
      assert.equal(controller.signal.aborted, true);
      assert.deepEqual(r.exits, []);
      await until("the forced exit", async () => (r.exits.length > 0 ? true : undefined), 5_000);
      assert.deepEqual(r.exits, [1]);
      assert.match(r.logged.at(-1)!, /^did not stop cleanly within 50 ms; exiting anyway/);
    });

    it("exits 1 at once on a second SIGINT", () => {
      const r = recorder();
      const emitter = new EventEmitter();
      const controller = new AbortController();
      onStopSignals({ logger: r.logger, controller, exit: r.exit, timeoutMs: 60_000, emitter });
      emitter.emit("SIGINT", "SIGINT");
      assert.deepEqual(r.exits, []);
      emitter.emit("SIGINT", "SIGINT");
      assert.deepEqual(r.exits, [1]);
      assert.match(r.logged.at(-1)!, /^second stop signal: exiting now/);
    });
  });

  describe("configuration errors", () => {
    let recorder: Awaited<ReturnType<typeof recordingServer>>;
    before(async () => (recorder = await recordingServer()));
    after(() => recorder?.server.close());

    // One bad value per variable that can be bad; all reported at once, each on its own line.
    const everyBadValue = {
      PG_PORT: "54x32",
      PG_SSLMODE: "prefer",
      PG_PUBLICATION: "Cdc-Pub",
      PG_SLOT: "slot-1",
      TABLE_INCLUDE: "users",
      SNAPSHOT_MODE: "sometimes",
      SINK_URL: "ftp://example.com/landing",
      SINK_COMPRESSION: "brotli",
      BATCH_MAX_SIZE: "0",
      BATCH_MAX_BYTES: "12",
      BATCH_MAX_WAIT_MS: "5s",
      HEARTBEAT_INTERVAL_MS: "often",
      HTTP_PORT: "99999",
      LOG_LEVEL: "chatty",
      S3_ENDPOINT: "minio:9000",
      S3_FORCE_PATH_STYLE: "maybe",
      GCS_ENDPOINT: "gcs",
    };

    for (const command of ["run", "doctor"]) {
      it(`${command}: every bad variable is one stderr line with an example, exit 2`, async () => {
        const r = await runToEnd([command], { PG_DATABASE: "app", PG_USER: "cdc", PG_PASSWORD: "secret-pw-1", ...everyBadValue });
        assert.equal(r.code, 2, r.stderr);
        assert.equal(r.stdout, "");
        const problems = r.stderr.split("\n").filter((l) => l.startsWith("  "));
        assert.deepEqual(problems.map((l) => l.trim().split(" ")[0]).sort(), ["PG_HOST", ...Object.keys(everyBadValue)].sort());
        for (const line of problems) assert.match(line, /; for example [A-Z0-9_]+=\S/, line);
        assert.match(r.stderr, new RegExp(`^cdc-engine: invalid configuration \\(${problems.length} problems\\); nothing was started:\n`));
        assert.ok(!r.stderr.includes("secret-pw-1"));
      });
    }

    it("run: a single bad variable stops it before it connects to PG_HOST:PG_PORT", async () => {
      const landing = await mkdtemp(join(tmpdir(), "cdc-cli-"));
      try {
        const env = {
          PG_HOST: "127.0.0.1",
          PG_PORT: String(recorder.port),
          PG_DATABASE: "app",
          PG_USER: "cdc",
          PG_SSLMODE: "disable",
          SINK_URL: `file://${landing}`,
          HTTP_PORT: "0",
        };
        for (const [name, value] of [["BATCH_MAX_SIZE", "ten"], ["TABLE_INCLUDE", "public."]]) {
          const r = await runToEnd(["run"], { ...env, [name]: value });
          assert.equal(r.code, 2);
          assert.equal(r.stderr.split("\n").filter((l) => l.startsWith("  ")).length, 1);
          assert.match(r.stderr, new RegExp(`^  ${name} .*\\(got "${value.replace(".", "\\.")}"\\); for example ${name}=`, "m"));
        }
        assert.equal(recorder.connections(), 0, "nothing may touch the database on a configuration error");
        assert.deepEqual(await readdir(landing), [], "nor the sink");
      } finally {
        await rm(landing, { recursive: true, force: true });
      }
    });
  });

  describe("run against PostgreSQL", () => {
    let pg: TestPostgres;
    let landing: string;
    const running: Running[] = [];
    const env = (extra: Record<string, string> = {}) => ({
      ...pg.env,
      SINK_URL: `file://${landing}`,
      TABLE_INCLUDE: "public.accounts",
      BATCH_MAX_WAIT_MS: "100",
      HEARTBEAT_INTERVAL_MS: "1000",
      ...extra,
    });
    const launch = (extra: Record<string, string>) => {
      const r = start(["run"], env(extra));
      running.push(r);
      return r;
    };

    before(async () => {
      pg = await startPostgres();
      landing = await mkdtemp(join(tmpdir(), "cdc-cli-landing-"));
      await pg.query("CREATE TABLE public.accounts (id int PRIMARY KEY, owner text, balance numeric)");
      await pg.query("INSERT INTO public.accounts SELECT g, 'owner ' || g, g * 10 FROM generate_series(1, 5) g");
    });
    after(async () => {
      for (const r of running) if (r.child.exitCode === null) r.child.kill("SIGKILL");
      await pg?.stop();
      if (landing) await rm(landing, { recursive: true, force: true });
    });

    it("serves /healthz, /readyz and /metrics while streaming, stops cleanly on SIGTERM with exit 0", async () => {
      const port = await freePort();
      const r = launch({ HTTP_PORT: String(port) });
      await until("/healthz", async () => ((await http(port, "/healthz")).status === 200 ? true : undefined));
      const ready = await until("/readyz 200", async () => {
        const res = await http(port, "/readyz");
        return res.status === 200 ? res : undefined;
      });
      assert.equal(JSON.parse(ready.body).phase, "streaming");

      await pg.query("INSERT INTO public.accounts VALUES (6, 'new owner', 60); UPDATE public.accounts SET balance = 0 WHERE id = 1; DELETE FROM public.accounts WHERE id = 2");
      const metrics = await until("the streamed events in /metrics", async () => {
        const res = await http(port, "/metrics");
        // 5 snapshot rows and their re-snapshot barrier, then 3 changes.
        return res.body.includes('cdc_events_written_total{table="public.accounts"} 9') ? res.body : undefined;
      });
      assert.match(metrics, /^cdc_files_written_total\{table="public.accounts"\} \d+$/m);
      assert.match(metrics, /^cdc_confirmed_lsn [1-9]\d*$/m);
      assert.match(metrics, /^cdc_phase\{phase="streaming"\} 1$/m);

      r.child.kill("SIGTERM");
      assert.equal(await r.exited, 0, r.stderr());
      const logs = logRecords(r.stdout());
      assert.ok(logs.some((l) => l.msg === "stop requested: flushing, confirming and exiting" && l.signal === "SIGTERM"));
      assert.equal(logs.at(-1)?.msg, "stopped cleanly");
      assert.ok(!r.stdout().includes(pg.password), "the password is never logged");
      assert.deepEqual(logs.filter((l) => l.level === "error" || l.level === "fatal"), []);

      const ops = (await landedRecords(landing, "public.accounts")).filter((rec) => rec.__op !== "b").map((rec) => `${rec.__op}${rec.id}`);
      assert.deepEqual(ops, ["r1", "r2", "r3", "r4", "r5", "c6", "u1", "d2"]);
    });

    it("resumes from the existing slot and stops cleanly on SIGINT", async () => {
      const port = await freePort();
      await pg.query("INSERT INTO public.accounts VALUES (7, 'while stopped', 70)");
      const r = launch({ HTTP_PORT: String(port) });
      await until("/readyz 200", async () => ((await http(port, "/readyz")).status === 200 ? true : undefined));
      await until("the change made while stopped", async () =>
        (await landedRecords(landing, "public.accounts")).some((rec) => rec.__op === "c" && rec.id === 7) ? true : undefined,
      );
      r.child.kill("SIGINT");
      assert.equal(await r.exited, 0, r.stderr());
      const records = await landedRecords(landing, "public.accounts");
      assert.equal(records.filter((rec) => rec.__op === "r").length, 5, "no second snapshot when the slot exists");
    });

    it("waits for a slot another instance holds (503 waiting_for_slot), then takes over when it stops", async () => {
      const [portA, portB] = [await freePort(), await freePort()];
      const a = launch({ HTTP_PORT: String(portA) });
      await until("A ready", async () => ((await http(portA, "/readyz")).status === 200 ? true : undefined));
      const b = launch({ HTTP_PORT: String(portB) });
      const waiting = await until("B waiting for the slot", async () => {
        const res = await http(portB, "/readyz");
        return res.status === 503 && JSON.parse(res.body).phase === "waiting_for_slot" ? res : undefined;
      });
      assert.match(JSON.parse(waiting.body).reason, /^engine is waiting for slot, not streaming: replication slot cdc_slot is in use by another consumer \(PID \d+\)/);
      assert.equal((await http(portB, "/healthz")).status, 200, "a waiting instance is alive, not crash-looping");
      assert.equal(b.child.exitCode, null);
      assert.ok(logRecords(b.stdout()).some((l) => l.level === "warn" && /replication slot cdc_slot is in use/.test(String(l.msg))));

      a.child.kill("SIGTERM");
      assert.equal(await a.exited, 0);
      await until("B takes over", async () => ((await http(portB, "/readyz")).status === 200 ? true : undefined));
      await pg.query("INSERT INTO public.accounts VALUES (8, 'after takeover', 80)");
      await until("B lands the new change", async () =>
        (await landedRecords(landing, "public.accounts")).some((rec) => rec.id === 8) ? true : undefined,
      );
      b.child.kill("SIGTERM");
      assert.equal(await b.exited, 0);
    });

    it("exits 1 with one clear fatal log line when the source is not ready", async () => {
      const r = await runToEnd(["run"], env({ HTTP_PORT: "0", TABLE_INCLUDE: "public.accounts,public.ghost", PG_SLOT: "other_slot", PG_PUBLICATION: "other_pub" }));
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const fatal = logRecords(r.stdout).filter((l) => l.level === "fatal");
      assert.equal(fatal.length, 1);
      assert.match(String(fatal[0].msg), /^cdc-engine stopped on a fatal error: the source database is not ready for CDC \(1 problem\):\n {2}- table public.ghost: does not exist/);
      assert.deepEqual(await pg.query("SELECT slot_name FROM pg_replication_slots WHERE slot_name = 'other_slot'"), []);
    });

    it("exits 1 with a clear line when HTTP_PORT is taken", async () => {
      const blocker = createServer();
      await new Promise<void>((res) => blocker.listen(0, res));
      const port = (blocker.address() as { port: number }).port;
      try {
        const r = await runToEnd(["run"], env({ HTTP_PORT: String(port) }));
        assert.equal(r.code, 1);
        const fatal = logRecords(r.stdout).filter((l) => l.level === "fatal");
        assert.deepEqual(fatal.map((l) => l.msg), [`cannot serve HTTP: HTTP_PORT ${port} is already in use by another process; choose a free port, e.g. HTTP_PORT=8081`]);
      } finally {
        blocker.close();
      }
    });
  });
});
