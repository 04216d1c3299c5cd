/**
 * `cdc-platform init`: the set-up wizard. Every prompt has a flag; a flag given skips its prompt,
 * and --non-interactive takes everything from flags (the password from --password-stdin). The
 * database is checked live with the engine's doctor checks, with a re-check after fixing. The
 * stack file is validated by the program's settings parser and written at the very end (a temp
 * file renamed into place), so Ctrl-C at any point leaves nothing half-written; the password goes
 * only to `pulumi config set --secret` through stdin, never into a file or onto a command line.
 */
import { promises as fs, rmSync } from "node:fs";
import path from "node:path";
import { Command, Option } from "commander";
import { EXIT_INTERRUPTED, EXIT_OK, EXIT_PROBLEM, UsageError } from "../cli";
import { pulumiOnPath, runPulumi, shellQuote } from "../pulumi-cli";
import { PASSWORD_KEY, PROJECT, stackFilePath } from "../stack-file";
import {
  answerProblems,
  BATCHING_PRESETS,
  CLOUD_CHOICES,
  DEFAULT_REGIONS,
  problemsFor,
  REGION_KEYS,
  renderStackFile,
  RETENTION_PRESETS,
  STACK_NAME,
  type BatchingPreset,
  type InitAnswers,
  type InitCloud,
  type RetentionPreset,
} from "./answers";
import { checkDatabase, formatCheck, listTables, type CandidateTable, type Connection } from "./database";

export interface InitFlags {
  stack?: string;
  cloud?: InitCloud;
  region?: string;
  gcpProject?: string;
  pgHost?: string;
  pgPort?: string;
  pgDatabase?: string;
  pgUser?: string;
  pgSslmode?: "disable" | "require" | "verify-full";
  publication?: string;
  slot?: string;
  passwordStdin?: boolean;
  tables?: string;
  batching?: BatchingPreset;
  retention?: RetentionPreset;
  alertEmail?: string[];
  databricks?: boolean;
  databricksHost?: string;
  check: boolean;
  dir: string;
  force?: boolean;
  nonInteractive?: boolean;
}

type Prompts = typeof import("@inquirer/prompts");

export function initCommand(program: Command, run: (code: Promise<number>) => void): void {
  program
    .command("init")
    .description("write Pulumi.<stack>.yaml with a wizard (or flags), after checking the database with the engine's doctor checks")
    .option("--stack <name>", "stack name")
    .addOption(new Option("--cloud <cloud>", "where the engine runs").choices(CLOUD_CHOICES))
    .option("--region <region>", `region: aws:region, azure-native:location or gcp:region (default ${Object.values(DEFAULT_REGIONS).join(" / ")})`)
    .option("--gcp-project <id>", "GCP project id (gcp)")
    .option("--pg-host <host>", "PostgreSQL host")
    .option("--pg-port <port>", "PostgreSQL port (default 5432)")
    .option("--pg-database <name>", "database")
    .option("--pg-user <user>", "replication user")
    .addOption(new Option("--pg-sslmode <mode>", "TLS to the database (default require)").choices(["disable", "require", "verify-full"]))
    .option("--publication <name>", "publication (default cdc_pub)")
    .option("--slot <name>", "replication slot (default cdc_slot)")
    .option("--password-stdin", "read the password from standard input (first line)")
    .option("--tables <list>", "tables to capture, comma-separated schema.table (empty: what the publication publishes)")
    .addOption(new Option("--batching <preset>", "batching preset").choices(Object.keys(BATCHING_PRESETS)))
    .addOption(new Option("--retention <preset>", "retention preset").choices(Object.keys(RETENTION_PRESETS)))
    .option("--alert-email <address...>", "page these addresses when the engine is not running (aws, azure, gcp)")
    .option("--databricks", "deploy the Databricks job")
    .option("--no-databricks", "no Databricks job")
    .option("--databricks-host <url>", "Databricks workspace URL (default: the databricks:host provider setting)")
    .option("--no-check", "do not connect to the database")
    .option("--dir <path>", "the Pulumi project directory (where Pulumi.yaml is)", ".")
    .option("--force", "overwrite an existing stack file")
    .option("--non-interactive", "ask nothing: every answer from flags, defaults for the rest")
    .action((flags: InitFlags) => run(init(flags)));
}

const out = (line = "") => process.stdout.write(`${line}\n`);

async function readPasswordFromStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const password = Buffer.concat(chunks).toString("utf8").split(/\r?\n/)[0];
  if (!password) throw new UsageError("--password-stdin: standard input held no password");
  return password;
}

function parseTables(list: string | undefined): string[] | undefined {
  if (list === undefined) return undefined;
  return list.split(",").map((t) => t.trim()).filter(Boolean);
}

function portNumber(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 65535) throw new UsageError(`--pg-port must be a port number from 1 to 65535 (got ${JSON.stringify(value)})`);
  return Number(value);
}

/** Answers from flags and defaults; `draft` placeholders stand in for what is still to be asked. */
function fromFlags(flags: InitFlags): InitAnswers {
  const cloud = flags.cloud ?? "aws";
  return {
    stack: flags.stack ?? "dev",
    cloud,
    region: cloud === "local" ? undefined : (flags.region ?? DEFAULT_REGIONS[cloud]),
    gcpProject: cloud === "gcp" ? (flags.gcpProject ?? "my-project-id") : undefined,
    postgres: {
      host: flags.pgHost ?? "db.example.com",
      port: portNumber(flags.pgPort, 5432),
      database: flags.pgDatabase ?? "app",
      user: flags.pgUser ?? "cdc_user",
      sslmode: flags.pgSslmode ?? "require",
      publication: flags.publication ?? "cdc_pub",
      slot: flags.slot ?? "cdc_slot",
      tables: parseTables(flags.tables) ?? [],
    },
    batching: flags.batching ?? "balanced",
    retention: flags.retention ?? "standard",
    alertEmails: cloud === "local" ? [] : (flags.alertEmail ?? []),
    databricks: { enabled: cloud !== "local" && (flags.databricks ?? false), host: flags.databricksHost },
  };
}

/** The database as this machine reaches it (host.docker.internal is the local target's name for this machine). */
function connectionOf(a: InitAnswers, password: string): Connection {
  const host = a.cloud === "local" && a.postgres.host === "host.docker.internal" ? "127.0.0.1" : a.postgres.host;
  return { ...a.postgres, host, password };
}

async function init(flags: InitFlags): Promise<number> {
  const dir = path.resolve(flags.dir);
  try {
    await fs.access(path.join(dir, "Pulumi.yaml"));
  } catch {
    throw new UsageError(`${dir} holds no Pulumi.yaml: run init in the project directory, or pass --dir`);
  }
  // Ctrl-C outside a prompt (e.g. during the database check) arrives as SIGINT; inside a prompt,
  // which reads raw keys, as ExitPromptError. Either way nothing is left behind.
  const onSignal = () => {
    if (pendingTemp) rmSync(pendingTemp, { force: true });
    out("\ninterrupted: nothing was written");
    process.exit(EXIT_INTERRUPTED);
  };
  process.on("SIGINT", onSignal);
  try {
    if (flags.nonInteractive) return await nonInteractive(flags, dir);
    const prompts = require("@inquirer/prompts") as Prompts;
    return await wizard(flags, dir, prompts);
  } catch (err) {
    if ((err as Error).name === "ExitPromptError") {
      out("\ninterrupted: nothing was written");
      return EXIT_INTERRUPTED;
    }
    throw err;
  } finally {
    process.removeListener("SIGINT", onSignal);
  }
}

/** The stack file being written under a temporary name, removed again if the user interrupts. */
let pendingTemp: string | undefined;

async function nonInteractive(flags: InitFlags, dir: string): Promise<number> {
  const missing: string[] = [];
  if (!flags.stack) missing.push("--stack");
  if (!flags.cloud) missing.push("--cloud");
  if (flags.cloud === "gcp" && !flags.gcpProject) missing.push("--gcp-project");
  for (const [flag, value] of [["--pg-host", flags.pgHost], ["--pg-database", flags.pgDatabase], ["--pg-user", flags.pgUser]] as const) if (!value) missing.push(flag);
  if (missing.length > 0) throw new UsageError(`--non-interactive needs ${missing.join(", ")}`);
  const answers = fromFlags(flags);
  if (!STACK_NAME.test(answers.stack)) throw new UsageError(`--stack ${JSON.stringify(answers.stack)}: a stack name holds only letters, digits, '-', '_' and '.'`);
  const problems = answerProblems(answers);
  if (problems.length > 0) throw new UsageError(`the answers do not make a valid stack (nothing was written):\n  ${problems.join("\n  ")}`);
  const password = flags.passwordStdin ? await readPasswordFromStdin() : undefined;
  if (flags.check) {
    if (password === undefined) throw new UsageError("checking the database needs its password: pass --password-stdin (or --no-check)");
    out("Checking the database (cdc-engine doctor's checks):");
    const checks = await checkDatabase(connectionOf(answers, password), (c) => out(`  ${formatCheck(c).replace(/\n/g, "\n  ")}`));
    const failed = checks.filter((c) => !c.ok).length;
    if (failed > 0) {
      out(`\n${failed} of ${checks.length} checks failed: fix them and run init again (nothing was written; --no-check skips the check)`);
      return EXIT_PROBLEM;
    }
  }
  return finish(answers, password, dir, flags.force ?? false);
}

async function wizard(flags: InitFlags, dir: string, p: Prompts): Promise<number> {
  const a = fromFlags(flags);
  out("cdc-platform init: set up a stack (Ctrl-C at any point leaves nothing written)\n");

  if (!flags.cloud) {
    a.cloud = await p.select<InitCloud>({
      message: "Where should the engine run?",
      choices: [
        { name: "AWS (ECS Fargate + S3)", value: "aws" },
        { name: "Azure (Container Apps + ADLS Gen2)", value: "azure" },
        { name: "GCP (Cloud Run + Cloud Storage)", value: "gcp" },
        { name: "local (Docker on this machine)", value: "local" },
      ],
    });
  }
  const cloud = a.cloud;
  if (cloud === "local") {
    a.region = undefined;
    a.gcpProject = undefined;
    a.alertEmails = [];
    a.databricks = { enabled: false };
  } else {
    if (!flags.region) {
      a.region = (await p.input({ message: `Region (${REGION_KEYS[cloud]})`, default: DEFAULT_REGIONS[cloud], validate: (v) => problemsFor({ ...a, region: v.trim() }, [REGION_KEYS[cloud]]) })).trim();
    }
    if (cloud === "gcp" && !flags.gcpProject) {
      a.gcpProject = (await p.input({ message: "GCP project id", validate: (v) => problemsFor({ ...a, gcpProject: v.trim() }, ["gcp:project"]) })).trim();
    } else if (cloud !== "gcp") {
      a.gcpProject = undefined;
    }
  }
  if (!flags.stack) {
    a.stack = (await p.input({ message: "Stack name", default: "dev", validate: (v) => STACK_NAME.test(v.trim()) || "letters, digits, '-', '_' and '.' only" })).trim();
  }

  const pgKey = (k: string) => `${PROJECT}:postgres.${k}`;
  const askConnection = async (again: boolean) => {
    const ask = async (key: keyof InitAnswers["postgres"], message: string, given: string | undefined) => {
      if (given !== undefined && !again) return given;
      const current = String(a.postgres[key]);
      const hint = key === "host" && cloud === "local" ? " (host.docker.internal for a database on this machine)" : "";
      return (await p.input({
        message: `${message}${hint}`,
        default: again || given !== undefined || !["host"].includes(key) ? current : undefined,
        validate: (v) => problemsFor({ ...a, postgres: { ...a.postgres, [key]: key === "port" ? Number(v) : v.trim() } }, [pgKey(key)]),
      })).trim();
    };
    a.postgres.host = await ask("host", "PostgreSQL host", flags.pgHost);
    a.postgres.port = Number(await ask("port", "Port", flags.pgPort));
    a.postgres.database = await ask("database", "Database", flags.pgDatabase);
    a.postgres.user = await ask("user", "Replication user", flags.pgUser);
    if (!flags.pgSslmode || again) {
      a.postgres.sslmode = await p.select({
        message: "TLS to the database (PG_SSLMODE)",
        default: a.postgres.sslmode,
        choices: [
          { name: "require (encrypted, server not verified)", value: "require" as const },
          { name: "verify-full (encrypted, server certificate verified)", value: "verify-full" as const },
          { name: "disable (no TLS: only on a private network)", value: "disable" as const },
        ],
      });
    }
    a.postgres.publication = await ask("publication", "Publication", flags.publication);
    a.postgres.slot = await ask("slot", "Replication slot", flags.slot);
  };
  await askConnection(false);
  let password = flags.passwordStdin ? await readPasswordFromStdin() : await p.password({ message: `Password of ${a.postgres.user} (hidden; never written to a file)`, validate: (v) => v.length > 0 || "the password is required" });

  if (flags.check) {
    // The tables to choose from, then the engine's checks on exactly that selection.
    let candidates: CandidateTable[] | undefined;
    for (;;) {
      try {
        candidates = await listTables(connectionOf(a, password));
        break;
      } catch (err) {
        out(`\ncannot list the tables: ${(err as Error).message}`);
        const [connection] = await checkDatabase(connectionOf(a, password));
        if (connection && !connection.ok) out(formatCheck(connection));
        const next = await p.select({
          message: "What now?",
          choices: [
            { name: "re-check (after fixing)", value: "recheck" },
            { name: "edit the connection", value: "edit" },
            { name: "quit without writing anything", value: "quit" },
          ],
        });
        if (next === "quit") return quit();
        if (next === "edit") {
          await askConnection(true);
          password = await p.password({ message: `Password of ${a.postgres.user} (hidden; never written to a file)`, validate: (v) => v.length > 0 || "the password is required" });
        }
      }
    }
    if (flags.tables === undefined) {
      const eligible = candidates.filter((t) => /^[A-Za-z_][A-Za-z0-9_$]*\.[A-Za-z_][A-Za-z0-9_$]*$/.test(t.name));
      if (eligible.length === 0) {
        out(`\n${a.postgres.database} has no tables yet: the stack will capture what publication ${a.postgres.publication} publishes.`);
        a.postgres.tables = [];
      } else {
        a.postgres.tables = await p.checkbox({
          message: "Tables to capture (space toggles, a toggles all, enter confirms; none = what the publication publishes)",
          pageSize: 15,
          choices: candidates.map((t) => ({
            name: `${t.name}  — ${t.key ?? "no key: updates and deletes need a primary key or REPLICA IDENTITY FULL"}`,
            value: t.name,
            checked: eligible.includes(t),
            disabled: eligible.includes(t) ? false : "(a name the landing layout cannot use)",
          })),
        });
      }
    }
    for (;;) {
      out("\nChecking the database (cdc-engine doctor's checks):");
      const checks = await checkDatabase(connectionOf(a, password), (c) => out(`  ${formatCheck(c).replace(/\n/g, "\n  ")}`));
      const failed = checks.filter((c) => !c.ok).length;
      if (failed === 0) {
        out(`all ${checks.length} checks passed`);
        break;
      }
      const next = await p.select({
        message: `${failed} of ${checks.length} checks failed. Fix them (each line says how), then:`,
        choices: [
          { name: "re-check", value: "recheck" },
          { name: "continue anyway (the engine refuses to start until they are fixed)", value: "continue" },
          { name: "quit without writing anything", value: "quit" },
        ],
      });
      if (next === "quit") return quit();
      if (next === "continue") break;
    }
  } else if (flags.tables === undefined) {
    const list = await p.input({ message: "Tables to capture, comma-separated schema.table (empty: what the publication publishes)", default: "", validate: (v) => problemsFor({ ...a, postgres: { ...a.postgres, tables: parseTables(v) ?? [] } }, [pgKey("tables")]) });
    a.postgres.tables = parseTables(list) ?? [];
  }

  if (!flags.batching) {
    a.batching = await p.select({
      message: "Batching",
      default: a.batching,
      choices: Object.entries(BATCHING_PRESETS).map(([value, preset]) => ({ name: `${value}: ${preset.description}`, value: value as BatchingPreset })),
    });
  }
  if (!flags.retention) {
    a.retention = await p.select({
      message: "Retention",
      default: a.retention,
      choices: Object.entries(RETENTION_PRESETS).map(([value, preset]) => ({ name: `${value}: ${preset.description}`, value: value as RetentionPreset })),
    });
  }
  if (cloud !== "local") {
    if (!flags.alertEmail) {
      const emails = await p.input({
        message: "E-mail addresses to page when the engine is not running (comma-separated; empty: no alerts)",
        default: "",
        validate: (v) => problemsFor({ ...a, alertEmails: parseTables(v) ?? [] }, [`${PROJECT}:alerts`]),
      });
      a.alertEmails = parseTables(emails) ?? [];
    }
    if (flags.databricks === undefined) {
      a.databricks.enabled = await p.confirm({ message: "Deploy the Databricks job (bronze → silver → gold)?", default: false });
    }
    if (a.databricks.enabled && !flags.databricksHost) {
      const host = (await p.input({
        message: "Databricks workspace URL (empty: the databricks:host provider setting)",
        default: "",
        validate: (v) => problemsFor({ ...a, databricks: { enabled: true, host: v.trim() || undefined } }, [`${PROJECT}:databricks`]),
      })).trim();
      a.databricks.host = host || undefined;
    }
  }

  const file = stackFilePath(a.stack, dir);
  if (!flags.force && (await exists(file))) {
    const overwrite = await p.confirm({ message: `${path.basename(file)} exists. Replace it?`, default: false });
    if (!overwrite) return quit();
  }
  return finish(a, password, dir, true);
}

function quit(): number {
  out("nothing was written");
  return EXIT_PROBLEM;
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

/** Validates, writes the stack file atomically, then creates the stack and its secret (or says how). */
async function finish(a: InitAnswers, password: string | undefined, dir: string, overwrite: boolean): Promise<number> {
  const problems = answerProblems(a);
  if (problems.length > 0) throw new UsageError(`the answers do not make a valid stack (nothing was written):\n  ${problems.join("\n  ")}`);
  const file = stackFilePath(a.stack, dir);
  if (!overwrite && (await exists(file))) throw new UsageError(`${file} exists: pass --force to replace it (nothing was written)`);
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  pendingTemp = temp;
  try {
    await fs.writeFile(temp, renderStackFile(a), { flag: "w", mode: 0o644 });
    await fs.rename(temp, file);
  } finally {
    rmSync(temp, { force: true });
    pendingTemp = undefined;
  }
  out(`\nwrote ${path.relative(process.cwd(), file) || file} (checked by the program's settings parser)`);

  const stackInit = ["pulumi", "stack", "init", a.stack];
  const setSecret = ["pulumi", "config", "set", "--secret", PASSWORD_KEY, "--stack", a.stack];
  if (pulumiOnPath()) {
    const created = await runPulumi(stackInit.slice(1), { cwd: dir });
    if (created.code !== 0 && !/already exists/i.test(created.stderr + created.stdout)) {
      out(`pulumi stack init failed: ${(created.stderr || created.stdout).trim()}`);
      return EXIT_PROBLEM;
    }
    out(created.code === 0 ? `created stack ${a.stack}` : `stack ${a.stack} already exists`);
    if (password !== undefined) {
      const set = await runPulumi(setSecret.slice(1), { cwd: dir, stdin: password });
      if (set.code !== 0) {
        out(`pulumi config set --secret failed: ${(set.stderr || set.stdout).trim()}`);
        return EXIT_PROBLEM;
      }
      out(`stored the password as the secret ${PASSWORD_KEY}`);
    } else {
      out(`set the password (pulumi asks for it):\n  ${setSecret.map(shellQuote).join(" ")}`);
    }
    out(`\nnext: pulumi preview --stack ${a.stack}   (npx cdc-platform cost --stack ${a.stack} estimates its monthly cost)`);
  } else {
    out("\nThe Pulumi CLI is not on the PATH; run these in this directory once it is (the second asks for the password):");
    out(`  ${stackInit.map(shellQuote).join(" ")}`);
    out(`  ${setSecret.map(shellQuote).join(" ")}`);
    out(`  pulumi preview --stack ${shellQuote(a.stack)}`);
  }
  return EXIT_OK;
}
