/**
 * The `databricks` stack setting: parsed and validated once, here, so the components below only
 * ever see typed, complete values. Every bad value fails `pulumi preview` with one line that names
 * the key, says what is wrong and shows a valid example.
 */
import { z } from "zod";

/** The clouds a Databricks workspace can read the landing zone from (not `local`). */
export const DATABRICKS_CLOUDS = ["aws", "azure", "gcp"] as const;
export type DatabricksCloud = (typeof DATABRICKS_CLOUDS)[number];

/**
 * Small job-cluster node types, one per cloud: the cheapest general-purpose sizes with local SSD
 * (Delta caching, shuffle spill) that every Databricks region offers.
 */
export const DEFAULT_NODE_TYPES: Record<DatabricksCloud, string> = {
  aws: "m5d.large",
  azure: "Standard_D4ds_v5",
  gcp: "n2-standard-4",
};

/** A Databricks Runtime LTS release with Unity Catalog, Auto Loader type inference and MERGE schema evolution. */
export const DEFAULT_SPARK_VERSION = "15.4.x-scala2.12";

/** The config key this schema parses, as users write it (`pulumi config set --path databricks.enabled true`). */
export const DATABRICKS_CONFIG_KEY = "databricks";

// Unity Catalog lower-cases names; restricting them to plain identifiers means the notebooks
// never have to quote or escape them.
const ucName = z.string().regex(/^[a-z_][a-z0-9_]{0,126}$/, "must be a lower-case identifier (letters, digits, _)");
const columnName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_$]{0,62}$/, "must be a PostgreSQL column name");
const tableName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_$]{0,62}\.[A-Za-z_][A-Za-z0-9_$]{0,62}$/, "must be a schema-qualified table name (schema.table)");
const quartzCron = z
  .string()
  .refine((v) => {
    const fields = v.trim().split(/\s+/);
    return fields.length === 6 || fields.length === 7;
  }, "must be a Quartz cron expression with 6 or 7 fields (seconds minutes hours day-of-month month day-of-week [year])");
/** Settings of earlier versions that no longer mean anything: refused with what to do instead. */
const retiredSchemaHints = z
  .unknown()
  .refine(() => false, "is no longer used: bronze takes every column's type from the engine's schema manifests (docs/engine.md, \"Schema manifests\"); remove it");
const retiredDefaultKey = z
  .unknown()
  .refine(() => false, "is no longer used: a table's key comes from its schema manifest (its primary key or replica identity index); set primaryKeys for a table without one, and remove it");
const email = z.string().regex(/^[^@\s]+@[^@\s]+\.[^@\s]+$/, "must be an e-mail address");
const streamingInterval = z
  .string()
  .regex(/^\d+ (second|seconds|minute|minutes|hour|hours)$/, 'must be an interval such as "30 seconds" or "1 minute"');

export const databricksSettingsSchema = z
  .object({
    /** Deploy the Databricks part at all. Nothing Databricks-related is created when false. */
    enabled: z.boolean().default(false),
    /**
     * Workspace URL. When omitted, the standard `databricks:host` provider config (or the
     * DATABRICKS_HOST environment variable) is used.
     */
    host: z
      .string()
      .regex(/^https:\/\/[A-Za-z0-9.-]+(:\d+)?\/?$/, "must be the workspace URL, https://<workspace host>")
      .optional(),
    /**
     * Workspace token. Prefer the standard secret `databricks:token` provider config; when given
     * here it must be set with `--secret` and is wrapped as a secret before any resource sees it.
     */
    token: z.string().min(1, "must not be empty").optional(),
    catalog: z
      .object({
        name: ucName.default("cdc"),
        /** false: the catalog already exists and is only used (the deployer needs USE CATALOG + CREATE SCHEMA). */
        create: z.boolean().default(true),
        /** Managed storage for the catalog's tables and checkpoint volume, needed when the metastore has no root storage. */
        storageRoot: z.string().regex(/^(s3|abfss|gs):\/\/.+/, "must be a cloud storage URL (s3://, abfss://, gs://)").optional(),
      })
      .strict()
      .prefault({}),
    schemas: z
      .object({
        bronze: ucName.default("bronze"),
        silver: ucName.default("silver"),
        gold: ucName.default("gold"),
        /** false: the three schemas already exist and are only used. */
        create: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    /**
     * Tables to process. When omitted, the engine's captured table list is used. Silver merges on
     * the key the engine's schema manifest names (primary key, else replica identity index)
     * unless a key is configured here.
     */
    tables: z
      .array(
        z
          .object({
            name: tableName,
            /** Default: primaryKeys[name], else the key in the table's schema manifest. */
            primaryKey: z.array(columnName).min(1, "must list at least one column").optional(),
            schemaHints: retiredSchemaHints.optional(),
          })
          .strict(),
      )
      .min(1, "must list at least one table")
      .optional(),
    /** Keys by table, overriding the schema manifest's (e.g. for a table without a primary key). */
    primaryKeys: z.record(tableName, z.array(columnName).min(1, "must list at least one column")).default({}),
    schemaHints: retiredSchemaHints.optional(),
    defaultPrimaryKey: retiredDefaultKey.optional(),
    schedule: z
      .object({
        /** scheduled: bronze → silver → gold runs on `cron`; continuous: always-on streams. */
        mode: z.enum(["scheduled", "continuous"], { error: "must be scheduled or continuous" }).default("scheduled"),
        cron: quartzCron.default("0 0/15 * * * ?"),
        timezone: z.string().min(1).default("UTC"),
        paused: z.boolean().default(false),
        /** Continuous mode: micro-batch interval of the bronze and silver streams. */
        triggerInterval: streamingInterval.default("1 minute"),
        /** Continuous mode: how often gold is recomputed. */
        goldIntervalMinutes: z.number().int().min(1).max(1440).default(15),
      })
      .strict()
      .prefault({}),
    compute: z
      .object({
        /** Default: serverless for scheduled jobs, a job cluster for continuous ones (serverless cannot run time-triggered streams). */
        kind: z.enum(["serverless", "cluster"], { error: "must be serverless or cluster" }).optional(),
        /** Job-cluster node type; default per cloud (see DEFAULT_NODE_TYPES). */
        nodeType: z.string().min(1).optional(),
        sparkVersion: z.string().min(1).default(DEFAULT_SPARK_VERSION),
        /** 0 = single-node cluster (enough for most CDC volumes). */
        workers: z.number().int().min(0).max(100).default(0),
      })
      .strict()
      .prefault({}),
    notifications: z
      .object({ onFailure: z.array(email).default([]) })
      .strict()
      .prefault({}),
    /** Application ID of a service principal the job runs as; it gets exactly the grants the job needs. */
    runAs: z
      .string()
      .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, "must be a service principal application ID (UUID)")
      .optional(),
    /** Groups that may read the silver and gold tables. */
    readers: z.array(z.string().min(1)).default([]),
    /** Workspace folder for the notebooks and SQL; default /Shared/postgres-cdc-multicloud/<stack>. */
    workspaceDir: z
      .string()
      .regex(/^\/[^\s]*[^/\s]$/, "must be an absolute workspace folder such as /Shared/postgres-cdc-multicloud/prod")
      .optional(),
    /** Retries of the bronze task; a new column costs one Auto Loader restart, so keep it >= 1. */
    bronzeMaxRetries: z.number().int().min(1).max(10).default(3),
    /**
     * With the stack's sink on Kafka: options of Structured Streaming's `kafka` source the bronze
     * notebook adds (how the cluster reaches and authenticates to the brokers, e.g.
     * `kafka.security.protocol`, `kafka.sasl.mechanism`, `kafka.sasl.jaas.config`). Plain job
     * parameters: put no password here.
     */
    kafkaOptions: z.record(z.string().regex(/^kafka\.[A-Za-z0-9._-]+$/, "must be a kafka.* option of Spark's Kafka source"), z.string()).default({}),
  })
  .strict();

export type DatabricksSettingsInput = z.input<typeof databricksSettingsSchema>;
export type ParsedDatabricksSettings = z.output<typeof databricksSettingsSchema>;

/** A table the job processes, with the key silver merges on. */
export interface MedallionTable {
  /** schema.table as captured by the engine (the landing folder is `cdc.<name>`). */
  name: string;
  /** The configured key; empty: the key in the table's schema manifest. */
  primaryKey: string[];
}

/** Validated settings, with the choices that depend on other settings resolved. */
export interface DatabricksSettings extends Omit<ParsedDatabricksSettings, "compute"> {
  compute: ParsedDatabricksSettings["compute"] & { kind: "serverless" | "cluster" };
}

/** Examples shown in error messages, by setting path. */
const EXAMPLES: Record<string, string> = {
  enabled: "true",
  host: '"https://adb-1234567890123456.7.azuredatabricks.net"',
  token: "(pulumi config set --secret databricks:token dapi…)",
  "catalog.name": '"cdc"',
  "catalog.storageRoot": '"s3://my-lakehouse-bucket/catalogs/cdc"',
  "schemas.bronze": '"bronze"',
  "schemas.silver": '"silver"',
  "schemas.gold": '"gold"',
  tables: '[{"name": "public.orders"}, {"name": "public.audit_log", "primaryKey": ["event_id"]}]',
  primaryKeys: '{"public.audit_log": ["event_id"]}',
  schemaHints: "(remove it)",
  defaultPrimaryKey: "(remove it)",
  "schedule.mode": '"scheduled"',
  "schedule.cron": '"0 0/15 * * * ?"',
  "schedule.triggerInterval": '"1 minute"',
  "schedule.goldIntervalMinutes": "15",
  "compute.kind": '"serverless"',
  "compute.workers": "0",
  "notifications.onFailure": '["data-oncall@example.com"]',
  runAs: '"6f1c2a9e-4a51-4e0c-9a52-0d2a3c4b5e6f"',
  workspaceDir: '"/Shared/postgres-cdc-multicloud/prod"',
  bronzeMaxRetries: "3",
  kafkaOptions: '{"kafka.security.protocol": "SASL_SSL", "kafka.sasl.mechanism": "AWS_MSK_IAM"}',
};

/** Thrown for a bad `databricks` setting; the message is one line per problem. */
export class DatabricksConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("\n"));
    this.name = "DatabricksConfigError";
  }
}

function exampleFor(path: (string | number)[]): string | undefined {
  const named = path.filter((p): p is string => typeof p === "string");
  for (let n = named.length; n > 0; n--) {
    const example = EXAMPLES[named.slice(0, n).join(".")];
    if (example) return example;
  }
  return undefined;
}

/**
 * Parses the raw `databricks` config object (undefined when the key is not set).
 * `configKey` is how the key is shown in messages, e.g. "postgres-cdc-multicloud:databricks".
 */
export function parseDatabricksSettings(raw: unknown, configKey = DATABRICKS_CONFIG_KEY): DatabricksSettings {
  const result = databricksSettingsSchema.safeParse(raw ?? {});
  if (!result.success) {
    throw new DatabricksConfigError(
      result.error.issues.map((issue) => {
        const key = [configKey, ...issue.path.map(String)].join(".");
        const example = exampleFor(issue.path as (string | number)[]);
        const message =
          issue.code === "unrecognized_keys"
            ? `has unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(", ")}; valid keys are listed in docs/databricks.md`
            : issue.message;
        return `${key} ${message}${example ? `; for example ${key.replace(/\.\d+$/, "")}=${example}` : ""}`;
      }),
    );
  }
  const parsed = result.data;
  const kind = parsed.compute.kind ?? (parsed.schedule.mode === "continuous" ? "cluster" : "serverless");
  if (parsed.schedule.mode === "continuous" && kind === "serverless") {
    throw new DatabricksConfigError([
      `${configKey}.compute.kind is "serverless", but schedule.mode is "continuous": serverless jobs cannot run ` +
        `time-triggered streams; for example ${configKey}.compute.kind="cluster" (or schedule.mode="scheduled")`,
    ]);
  }
  const schemaNames = [parsed.schemas.bronze, parsed.schemas.silver, parsed.schemas.gold];
  if (new Set(schemaNames).size !== 3) {
    throw new DatabricksConfigError([
      `${configKey}.schemas must name three different schemas (got ${schemaNames.join(", ")}); for example {"bronze": "bronze", "silver": "silver", "gold": "gold"}`,
    ]);
  }
  return { ...parsed, compute: { ...parsed.compute, kind } };
}

/**
 * The tables the job processes: the configured list, else the engine's captured tables
 * (`schema.table` strings, as in TABLE_INCLUDE); keys only where configured.
 */
export function resolveTables(settings: DatabricksSettings, engineTables: readonly string[] = [], configKey = DATABRICKS_CONFIG_KEY): MedallionTable[] {
  if (settings.tables) {
    const seen = new Set<string>();
    for (const t of settings.tables) {
      if (seen.has(t.name)) throw new DatabricksConfigError([`${configKey}.tables lists "${t.name}" twice; list each table once`]);
      seen.add(t.name);
    }
    return settings.tables.map((t) => ({
      name: t.name,
      primaryKey: [...(t.primaryKey ?? settings.primaryKeys[t.name] ?? [])],
    }));
  }
  const names = [...new Set(engineTables.map((t) => t.trim()).filter(Boolean))];
  if (names.length === 0) {
    throw new DatabricksConfigError([
      `${configKey}.tables is not set and the engine captures no explicit table list; ` +
        `for example ${configKey}.tables=${EXAMPLES.tables}`,
    ]);
  }
  for (const name of names) {
    if (!tableName.safeParse(name).success) {
      throw new DatabricksConfigError([`engine table "${name}" is not schema.table; set ${configKey}.tables explicitly, for example ${EXAMPLES.tables}`]);
    }
  }
  return names.map((name) => ({
    name,
    primaryKey: [...(settings.primaryKeys[name] ?? [])],
  }));
}
