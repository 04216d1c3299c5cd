/**
 * `cdc-platform init`: the set-up wizard. Every prompt has a flag; a flag given skips its prompt,
 * and --non-interactive takes everything from flags (the password from --password-stdin). The
 * database is checked live with the engine's doctor checks, with a re-check after fixing. The
 * stack file is validated by the program's settings parser and written at the very end (a temp
 * file renamed into place), so Ctrl-C at any point leaves nothing half-written; the password goes
 * only to `pulumi config set --secret` through stdin, never into a file or onto a command line.
 * With a keyless postgres.auth (the chosen cloud's only) there is no password at all: the check,
 * if wanted, logs in as a DBA role with its own password (used for the check only), and init
 * prints the one-time database-side step, the text of the `databaseLogin` stack output.
 */
import { promises as fs, rmSync } from "node:fs";
import path from "node:path";
import { Command, Option } from "commander";
import { EXIT_INTERRUPTED, EXIT_OK, EXIT_PROBLEM, UsageError } from "../cli";
import { pulumiOnPath, runPulumi, shellQuote } from "../pulumi-cli";
import { PASSWORD_KEY, PROJECT, stackFilePath } from "../stack-file";
import { PG_AUTH_MODES, type PgAuthMode } from "../../../container/src/source/auth";
import {
  answerProblems,
  authChoices,
  BATCHING_PRESETS,
  CLOUD_CHOICES,
  DEFAULT_REGIONS,
  KEYLESS_AUTH,
  keylessIdentity,
  keylessLogin,
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
  auth?: PgAuthMode;
  awsResourceId?: string;
  authRegion?: string;
  cloudSqlInstance?: string;
  checkUser?: string;
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
    .option("--pg-user <user>", "replication user (with --auth aws-iam the role the engine logs in as; not with azure-entra or gcp-iam, whose role is the engine's identity)")
    .addOption(new Option("--pg-sslmode <mode>", "TLS to the database (default require)").choices(["disable", "require", "verify-full"]))
    .option("--publication <name>", "publication (default cdc_pub)")
    .option("--slot <name>", "replication slot (default cdc_slot)")
    .addOption(new Option("--auth <mode>", "how the engine logs in to PostgreSQL: password (default), or keyless with the cloud's identity: aws-iam (aws), azure-entra (azure), gcp-iam (gcp)").choices(PG_AUTH_MODES))
    .option("--aws-resource-id <id>", "aws-iam: the RDS instance's DbiResourceId (db-…) or the Aurora cluster's resource id (cluster-…)")
    .option("--auth-region <region>", "aws-iam: the database's AWS region, when it is not the stack's")
    .option("--cloud-sql-instance <id>", "gcp-iam: the Cloud SQL instance ID the login grants are limited to")
    .option("--password-stdin", "read the password from standard input (first line): the engine's (auth password), or --check-user's for the check (keyless)")
    .option("--check-user <role>", "keyless: check the database as this role, with its password (--password-stdin or a prompt; used for the check only, never stored)")
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
  const auth = flags.auth ?? "password";
  // A keyless --auth names its cloud.
  const cloud = flags.cloud ?? (Object.entries(KEYLESS_AUTH).find(([, mode]) => mode === auth)?.[0] as InitCloud | undefined) ?? "aws";
  return {
    stack: flags.stack ?? "dev",
    cloud,
    region: cloud === "local" ? undefined : (flags.region ?? DEFAULT_REGIONS[cloud]),
    gcpProject: cloud === "gcp" ? (flags.gcpProject ?? "my-project-id") : undefined,
    postgres: {
      host: flags.pgHost ?? "db.example.com",
      port: portNumber(flags.pgPort, 5432),
      database: flags.pgDatabase ?? "app",
      user: auth === "azure-entra" || auth === "gcp-iam" ? undefined : (flags.pgUser ?? "cdc_user"),
      auth,
      awsResourceId: flags.awsResourceId,
      authRegion: flags.authRegion,
      cloudSqlInstance: flags.cloudSqlInstance,
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

/** Who the database check logs in as, with a password: the engine's user (auth password), or with a keyless auth the DBA's role (--check-user). */
interface CheckLogin {
  user: string;
  password: string;
}

/** The database as this machine reaches it (host.docker.internal is the local target's name for this machine). */
function connectionOf(a: InitAnswers, login: CheckLogin): Connection {
  const host = a.cloud === "local" && a.postgres.host === "host.docker.internal" ? "127.0.0.1" : a.postgres.host;
  const { port, database, sslmode, publication, slot, tables } = a.postgres;
  return { host, port, database, sslmode, publication, slot, tables, user: login.user, password: login.password };
}

/**
 * The login flags that do not fit together (with the cloud and each other), all in one list:
 * what each keyless flag belongs to, and what a keyless stack's check needs. `interactive`: the
 * wizard asks what is missing, so only contradictions count.
 */
function loginFlagProblems(flags: InitFlags, interactive: boolean): string[] {
  const problems: string[] = [];
  const auth = flags.auth ?? "password";
  const cloud = fromFlags(flags).cloud;
  if (!authChoices(cloud).includes(auth)) {
    problems.push(`--auth ${auth} logs in with the ${keylessIdentity(auth as Exclude<PgAuthMode, "password">)} of the ${Object.entries(KEYLESS_AUTH).find(([, m]) => m === auth)?.[0]} target, but --cloud is ${cloud}: use --auth ${authChoices(cloud).join(" or --auth ")}`);
  }
  if (auth !== "aws-iam") {
    for (const [flag, value] of [["--aws-resource-id", flags.awsResourceId], ["--auth-region", flags.authRegion]] as const) {
      if (value !== undefined) problems.push(`${flag} goes with --auth aws-iam only (got --auth ${auth}): drop it, or pass --auth aws-iam`);
    }
  }
  if (auth !== "gcp-iam" && flags.cloudSqlInstance !== undefined) problems.push(`--cloud-sql-instance goes with --auth gcp-iam only (got --auth ${auth}): drop it, or pass --auth gcp-iam`);
  if ((auth === "azure-entra" || auth === "gcp-iam") && flags.pgUser !== undefined) {
    problems.push(`--pg-user is not used with --auth ${auth}: the engine logs in as its own ${keylessIdentity(auth)}, whose role init prints; drop --pg-user (to check the database as another role, pass --check-user)`);
  }
  if (auth !== "password" && flags.pgSslmode === "disable") problems.push(`--pg-sslmode disable cannot go with --auth ${auth}: the token is sent as the password and needs TLS; use require or verify-full`);
  if (auth === "password" && flags.checkUser !== undefined) problems.push("--check-user is for keyless stacks (--auth aws-iam|azure-entra|gcp-iam); with --auth password the check logs in as --pg-user with its password");
  if (auth !== "password" && !flags.check) {
    if (flags.checkUser !== undefined) problems.push(`--check-user names the role the database check logs in as, but --no-check skips the check: drop one of them`);
    if (flags.passwordStdin) problems.push(`--password-stdin: a --auth ${auth} stack stores no password, and --no-check asks for no check; drop --password-stdin (or check the database with --check-user <role> --password-stdin)`);
  }
  if (auth !== "password" && flags.check && !interactive && (flags.checkUser === undefined || !flags.passwordStdin)) {
    problems.push(`checking the database of a --auth ${auth} stack logs in as a DBA role with its own password (used for the check only, never stored): pass --check-user <role> --password-stdin, or --no-check`);
  }
  return problems;
}

function refuseLoginFlags(flags: InitFlags, interactive: boolean): void {
  const problems = loginFlagProblems(flags, interactive);
  if (problems.length === 1) throw new UsageError(`${problems[0]} (nothing was written)`);
  if (problems.length > 1) throw new UsageError(`these flags do not fit together (nothing was written):\n  ${problems.join("\n  ")}`);
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
  refuseLoginFlags(flags, !flags.nonInteractive);
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
  // A keyless --auth names its cloud.
  if (!flags.cloud && (flags.auth ?? "password") === "password") missing.push("--cloud");
  if (fromFlags(flags).cloud === "gcp" && !flags.gcpProject) missing.push("--gcp-project");
  const auth = flags.auth ?? "password";
  for (const [flag, value] of [["--pg-host", flags.pgHost], ["--pg-database", flags.pgDatabase]] as const) if (!value) missing.push(flag);
  // With azure-entra and gcp-iam the role is the engine's own identity.
  if ((auth === "password" || auth === "aws-iam") && !flags.pgUser) missing.push("--pg-user");
  if (auth === "aws-iam" && !flags.awsResourceId) missing.push("--aws-resource-id");
  if (missing.length > 0) throw new UsageError(`--non-interactive needs ${missing.join(", ")}`);
  const answers = fromFlags(flags);
  if (!STACK_NAME.test(answers.stack)) throw new UsageError(`--stack ${JSON.stringify(answers.stack)}: a stack name holds only letters, digits, '-', '_' and '.'`);
  const problems = answerProblems(answers);
  if (problems.length > 0) throw new UsageError(`the answers do not make a valid stack (nothing was written):\n  ${problems.join("\n  ")}`);
  const password = flags.passwordStdin ? await readPasswordFromStdin() : undefined;
  const login = keylessLogin(answers);
  if (login) out(`postgres.auth ${login.auth}: the engine logs in as ${login.user}; no password is stored`);
  if (flags.check) {
    if (password === undefined) throw new UsageError("checking the database needs its password: pass --password-stdin (or --no-check)");
    const checkLogin = { user: login ? flags.checkUser! : answers.postgres.user!, password };
    out(login ? `Checking the database as ${checkLogin.user} (cdc-engine doctor's checks; the server, publication and tables, not the engine's own role ${login.user}):` : "Checking the database (cdc-engine doctor's checks):");
    const checks = await checkDatabase(connectionOf(answers, checkLogin), (c) => out(`  ${formatCheck(c).replace(/\n/g, "\n  ")}`));
    const failed = checks.filter((c) => !c.ok).length;
    if (failed > 0) {
      out(`\n${failed} of ${checks.length} checks failed: fix them and run init again (nothing was written; --no-check skips the check)`);
      return EXIT_PROBLEM;
    }
  }
  return finish(answers, login ? undefined : password, dir, flags.force ?? false);
}

async function wizard(flags: InitFlags, dir: string, p: Prompts): Promise<number> {
  const a = fromFlags(flags);
  out("cdc-platform init: set up a stack (Ctrl-C at any point leaves nothing written)\n");

  if (!flags.cloud && a.postgres.auth === "password") {
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
  const keylessMode = KEYLESS_AUTH[cloud];
  const askConnection = async (again: boolean) => {
    const ask = async (key: "host" | "port" | "database" | "user" | "awsResourceId" | "authRegion" | "cloudSqlInstance" | "publication" | "slot", message: string, given: string | undefined, optional = false) => {
      if (given !== undefined && !again) return given;
      const current = a.postgres[key] === undefined ? "" : String(a.postgres[key]);
      const hint = key === "host" && cloud === "local" ? " (host.docker.internal for a database on this machine)" : "";
      return (await p.input({
        message: `${message}${hint}`,
        default: again || given !== undefined || !["host", "awsResourceId"].includes(key) ? current : undefined,
        validate: (v) => {
          if (optional && v.trim() === "") return true;
          return problemsFor({ ...a, postgres: { ...a.postgres, [key]: key === "port" ? Number(v) : v.trim() } }, [pgKey(key)]);
        },
      })).trim();
    };
    a.postgres.host = await ask("host", "PostgreSQL host", flags.pgHost);
    a.postgres.port = Number(await ask("port", "Port", flags.pgPort));
    a.postgres.database = await ask("database", "Database", flags.pgDatabase);
    if (keylessMode && (!flags.auth || again)) {
      a.postgres.auth = await p.select<PgAuthMode>({
        message: "How does the engine log in to PostgreSQL?",
        default: a.postgres.auth,
        choices: [
          { name: "password (stored as a Pulumi secret and in the cloud's secret store)", value: "password" },
          { name: `${keylessMode}: keyless, with a token of the engine's ${keylessIdentity(keylessMode)} (no password anywhere)`, value: keylessMode },
        ],
      });
    }
    const auth = a.postgres.auth;
    if (auth === "azure-entra" || auth === "gcp-iam") {
      a.postgres.user = undefined;
    } else {
      a.postgres.user ??= "cdc_user";
      a.postgres.user = await ask("user", auth === "aws-iam" ? "Database role the engine logs in as (IAM authentication)" : "Replication user", flags.pgUser);
    }
    if (auth === "aws-iam") {
      a.postgres.awsResourceId = await ask("awsResourceId", "Resource id of the RDS instance (DbiResourceId, db-…) or Aurora cluster (cluster-…)", flags.awsResourceId);
      a.postgres.authRegion = (await ask("authRegion", "The database's AWS region (empty: the stack's region)", flags.authRegion, true)) || undefined;
    } else {
      a.postgres.awsResourceId = undefined;
      a.postgres.authRegion = undefined;
    }
    if (auth === "gcp-iam") {
      a.postgres.cloudSqlInstance = (await ask("cloudSqlInstance", "Cloud SQL instance ID (limits the login grants to it; empty: any instance of the project)", flags.cloudSqlInstance, true)) || undefined;
    } else {
      a.postgres.cloudSqlInstance = undefined;
    }
    if (auth !== "password" && a.postgres.sslmode === "disable") a.postgres.sslmode = "require";
    if (!flags.pgSslmode || again) {
      a.postgres.sslmode = await p.select({
        message: "TLS to the database (PG_SSLMODE)",
        default: a.postgres.sslmode,
        choices: [
          { name: "require (encrypted, server not verified)", value: "require" as const },
          { name: "verify-full (encrypted, server certificate verified)", value: "verify-full" as const },
          // A keyless token is sent as the password: the program refuses it without TLS.
          ...(auth === "password" ? [{ name: "disable (no TLS: only on a private network)", value: "disable" as const }] : []),
        ],
      });
    }
    a.postgres.publication = await ask("publication", "Publication", flags.publication);
    a.postgres.slot = await ask("slot", "Replication slot", flags.slot);
    const login = keylessLogin(a);
    if (login) out(`  the engine logs in as ${login.user} (${login.auth}); no password is asked for or stored`);
  };

  /** Who the database check logs in as: the engine's user with its password, or (keyless) a DBA role with its own; undefined: no check. */
  const askCheckLogin = async (again: boolean): Promise<CheckLogin | undefined> => {
    if (a.postgres.auth === "password") {
      const password = flags.passwordStdin && !again ? await readPasswordFromStdin() : await p.password({ message: `Password of ${a.postgres.user} (hidden; never written to a file)`, validate: (v) => v.length > 0 || "the password is required" });
      return { user: a.postgres.user!, password };
    }
    if (!flags.check) return undefined;
    if (!flags.checkUser && !again) {
      const choice = await p.select({
        message: `Check the database now? The engine's own login (${a.postgres.auth}) works only from its cloud identity after pulumi up`,
        choices: [
          { name: "yes: log in for the check as a DBA role with its password (used for this check only, never stored)", value: "check" },
          { name: "no: skip the check (run cdc-engine doctor from the engine after pulumi up)", value: "skip" },
        ],
      });
      if (choice === "skip") return undefined;
    }
    const user = flags.checkUser && !again
      ? flags.checkUser
      : (await p.input({ message: "Role to check the database as (e.g. the master user)", default: flags.checkUser, validate: (v) => problemsFor({ ...a, postgres: { ...a.postgres, auth: "password", user: v.trim() } }, [pgKey("user")]) })).trim();
    const password = flags.passwordStdin && !again ? await readPasswordFromStdin() : await p.password({ message: `Password of ${user} (hidden; for this check only, never stored)`, validate: (v) => v.length > 0 || "the password is required" });
    return { user, password };
  };

  await askConnection(false);
  let checkLogin = await askCheckLogin(false);
  const secret = () => (a.postgres.auth === "password" ? checkLogin?.password : undefined);

  let candidates: CandidateTable[] | undefined;
  if (checkLogin && flags.check) {
    if (a.postgres.auth !== "password") out(`\nThe check logs in as ${checkLogin.user}: it checks the server, publication and tables, not the engine's own role ${keylessLogin(a)!.user}.`);
    // The tables to choose from, then the engine's checks on exactly that selection.
    for (;;) {
      try {
        candidates = await listTables(connectionOf(a, checkLogin));
        break;
      } catch (err) {
        out(`\ncannot list the tables: ${(err as Error).message}`);
        const [connection] = await checkDatabase(connectionOf(a, checkLogin));
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
          checkLogin = await askCheckLogin(true);
          if (!checkLogin) break;
        }
      }
    }
  }
  if (checkLogin && flags.check && candidates) {
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
      const checks = await checkDatabase(connectionOf(a, checkLogin), (c) => out(`  ${formatCheck(c).replace(/\n/g, "\n  ")}`));
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
  return finish(a, secret(), dir, true);
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
  const login = keylessLogin(a);
  if (pulumiOnPath()) {
    const created = await runPulumi(stackInit.slice(1), { cwd: dir });
    if (created.code !== 0 && !/already exists/i.test(created.stderr + created.stdout)) {
      out(`pulumi stack init failed: ${(created.stderr || created.stdout).trim()}`);
      return EXIT_PROBLEM;
    }
    out(created.code === 0 ? `created stack ${a.stack}` : `stack ${a.stack} already exists`);
    if (login) {
      out(`no password to store: postgres.auth ${login.auth} logs in without one`);
    } else if (password !== undefined) {
      const set = await runPulumi(setSecret.slice(1), { cwd: dir, stdin: password });
      if (set.code !== 0) {
        out(`pulumi config set --secret failed: ${(set.stderr || set.stdout).trim()}`);
        return EXIT_PROBLEM;
      }
      out(`stored the password as the secret ${PASSWORD_KEY}`);
    } else {
      out(`set the password (pulumi asks for it):\n  ${setSecret.map(shellQuote).join(" ")}`);
    }
  } else if (login) {
    out("\nThe Pulumi CLI is not on the PATH; run these in this directory once it is (no password: the login is keyless):");
    out(`  ${stackInit.map(shellQuote).join(" ")}`);
    out(`  pulumi preview --stack ${shellQuote(a.stack)}`);
  } else {
    out("\nThe Pulumi CLI is not on the PATH; run these in this directory once it is (the second asks for the password):");
    out(`  ${stackInit.map(shellQuote).join(" ")}`);
    out(`  ${setSecret.map(shellQuote).join(" ")}`);
    out(`  pulumi preview --stack ${shellQuote(a.stack)}`);
  }
  if (login) {
    // The same text as the stack's databaseLogin output after pulumi up.
    out(`\nOnce, on the database side (the engine logs in as ${login.user} with postgres.auth ${login.auth}; also the stack output databaseLogin after pulumi up):`);
    out(`  ${login.setup}`);
  }
  if (pulumiOnPath()) out(`\nnext: pulumi preview --stack ${a.stack}   (npx cdc-platform cost --stack ${a.stack} estimates its monthly cost)`);
  return EXIT_OK;
}
