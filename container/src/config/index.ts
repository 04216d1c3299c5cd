/**
 * The engine's configuration: environment variables, parsed and validated once, here, before
 * anything touches the database. The variable names, defaults and meanings are a contract shared
 * with the deployment components (components/) and documented in docs/engine.md; add new
 * optional variables freely, never rename or drop one.
 */
import { accessSync, constants as fsConstants } from "node:fs";
import { isIP } from "node:net";
import { availableParallelism } from "node:os";
import { z } from "zod";
import { LANDING_SAFE_NAME } from "../source/landing-names";
import { METRICS_LOG_FORMATS } from "../ops/metrics-log";
import { PG_AUTH_MODES, type PgAuthMode } from "../source/auth";

export const SSL_MODES = ["disable", "require", "verify-ca", "verify-full"] as const;
export const SNAPSHOT_MODES = ["initial", "never", "initial_only", "incremental"] as const;
/** PG_BINARY: pgoutput binary format off, on (required), or auto (where the server and every captured type allow it). */
export const PG_BINARY_MODES = ["auto", "on", "off"] as const;
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export const COMPRESSIONS = ["none", "gzip"] as const;

/** A captured table, always schema-qualified. */
export interface TableName {
  schema: string;
  table: string;
}

/** Where landing objects go, by scheme; `prefix` never starts or ends with "/". */
export type SinkLocation =
  | { kind: "file"; url: string; directory: string }
  | { kind: "s3"; url: string; bucket: string; prefix: string }
  | { kind: "abfss"; url: string; container: string; account: string; host: string; prefix: string }
  | { kind: "gs"; url: string; bucket: string; prefix: string }
  | { kind: "kafka"; url: string; brokers: string[]; tls: boolean };

export const KAFKA_AUTHS = ["none", "scram-sha-256", "scram-sha-512", "aws-msk-iam", "azure-entra", "google-adc"] as const;

/** The Kafka sink's settings (SINK_URL=kafka://… or kafka+ssl://…); see docs/engine.md. */
export interface KafkaSettings {
  /** Topics are `<prefix>.<schema>.<table>`, `<prefix>._schema` and `<prefix>._cdc_state`. */
  topicPrefix: string;
  /** A null-value message after each delete, for compacted topics. */
  tombstones: boolean;
  /** Create missing topics (else they must exist). */
  createTopics: boolean;
  /** For created data topics; undefined: the broker's default. */
  partitions: number | undefined;
  replication: number | undefined;
  auth: (typeof KAFKA_AUTHS)[number];
  username: string | undefined;
  password: string | undefined;
  /** PEM file with the CA certificates to trust (kafka+ssl://); Node's default CAs otherwise. */
  caFile: string | undefined;
  /** The cloud region, for aws-msk-iam (AWS_REGION otherwise). */
  region: string | undefined;
}

export interface EngineConfig {
  pg: {
    host: string;
    port: number;
    database: string;
    user: string;
    password: string | undefined;
    /** How the engine authenticates: PG_PASSWORD, or a token from the platform identity per connection. */
    auth: PgAuthMode;
    /** AWS region for aws-iam tokens; the runtime's (AWS_REGION) when undefined. */
    authRegion: string | undefined;
    sslMode: (typeof SSL_MODES)[number];
    /** PEM file with the CAs for verify-ca/verify-full; Node's default CAs otherwise. */
    sslRootCert: string | undefined;
    /** The same CAs given as PEM text (PG_SSLROOTCERT_PEM), e.g. from a secret store without a file. */
    sslRootCertPem: string | undefined;
    /** PEM files of a client certificate and its key, for servers that require one. */
    sslCert: string | undefined;
    sslKey: string | undefined;
    publication: string;
    slot: string;
    /** Create the slot as a failover slot where the server supports it (PostgreSQL 17+). */
    slotFailover: boolean;
    /** PG_BINARY: stream pgoutput's binary format (PostgreSQL 14+); auto: where every captured type decodes. */
    binary: (typeof PG_BINARY_MODES)[number];
  };
  /** Empty means: capture whatever the existing publication PG_PUBLICATION publishes. */
  tables: TableName[];
  snapshotMode: (typeof SNAPSHOT_MODES)[number];
  /** SNAPSHOT_PARALLELISM: sessions copying the snapshot at once (each imports the same exported snapshot). */
  snapshotParallelism: number;
  /** INCREMENTAL_CHUNK_SIZE: rows per chunk of an incremental snapshot (source/incremental-snapshot.ts). */
  incrementalChunkSize: number;
  /** SNAPSHOT_TRANSCODE: where COPY rows become records (a worker thread per session, or the engine's thread). */
  snapshotTranscode: SnapshotTranscode;
  sink: SinkLocation;
  compression: (typeof COMPRESSIONS)[number];
  /** maxRecordBytes: MAX_RECORD_BYTES, the largest landing record (larger rows stop the engine). */
  batch: { maxSize: number; maxBytes: number; maxWaitMs: number; maxRecordBytes: number };
  /** 0 disables the heartbeat. */
  heartbeatIntervalMs: number;
  httpPort: number;
  /** Interface of the operations port; undefined: all interfaces. */
  httpHost: string | undefined;
  logLevel: (typeof LOG_LEVELS)[number];
  /** The periodic metrics log line: plain JSON, JSON with CloudWatch EMF, or none. */
  metricsLog: (typeof METRICS_LOG_FORMATS)[number];
  s3: { endpoint: string | undefined; forcePathStyle: boolean };
  azure: { connectionString: string | undefined };
  gcs: { endpoint: string | undefined };
  kafka: KafkaSettings;
}

/** Thrown for bad configuration; `problems` holds one self-contained line per bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("\n"));
    this.name = "ConfigError";
  }
}

/**
 * SNAPSHOT_TRANSCODE: "threads": every snapshot session transcodes its COPY rows in a worker thread
 * of its own; "inline": in the engine's thread; "auto" (default): threads for relations (or their
 * ranges) of at least 8 MB when the machine has more than 2 cores, inline otherwise: starting a
 * thread costs more than it saves for a small table, and with 2 cores or fewer the thread finds no
 * core of its own (measured: npm run bench, phase snapshot10m).
 */
export const SNAPSHOT_TRANSCODES = ["auto", "threads", "inline"] as const;
export type SnapshotTranscode = (typeof SNAPSHOT_TRANSCODES)[number];

/** SNAPSHOT_PARALLELISM's default: one session per core, at least 2 (a copy also waits on the network), at most 8. */
export const DEFAULT_SNAPSHOT_PARALLELISM = Math.max(2, Math.min(8, availableParallelism()));

type Env = Record<string, string | undefined>;

interface VariableSpec<T> {
  example: string;
  schema: z.ZodType<T>;
}

const identifier = (what: string) =>
  z
    .string()
    .regex(/^[a-z_][a-z0-9_$]{0,62}$/, `must be a lower-case PostgreSQL ${what} name (letters, digits, _; at most 63 characters)`);

const integer = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `must be a whole number from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const tableList = z.string().transform((value, ctx): TableName[] => {
  const tables: TableName[] = [];
  for (const raw of value.split(",").map((s) => s.trim()).filter(Boolean)) {
    // Only names that are safe in object keys (the same rule doctor applies to a publication's tables).
    const [schema, table, ...rest] = raw.split(".");
    if (rest.length > 0 || table === undefined || !LANDING_SAFE_NAME.test(schema) || !LANDING_SAFE_NAME.test(table)) {
      ctx.addIssue({ code: "custom", message: `has "${raw}", which is not a schema-qualified table name (schema.table)` });
      return z.NEVER;
    }
    // A table listed twice is captured once.
    if (!tables.some((t) => t.schema === schema && t.table === table)) tables.push({ schema, table });
  }
  return tables;
});

/** `kafka://host1:9092,host2:9092` or `kafka+ssl://…`: a comma-separated bootstrap list, nothing else. */
function parseKafkaUrl(url: string): SinkLocation {
  const m = /^kafka(\+ssl)?:\/\/([^/?#@]+)\/?$/.exec(url);
  if (!m) throw new Error("must be kafka://host:port[,host:port…] or kafka+ssl://host:port[,…] (no path, query or credentials)");
  const brokers = m[2].split(",").map((b) => b.trim());
  for (const broker of brokers) {
    const hp = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(broker);
    if (!hp || Number(hp[2]) < 1 || Number(hp[2]) > 65535) throw new Error(`has "${broker}", which is not host:port (every bootstrap broker needs its port, e.g. b-1.kafka.example.com:9092)`);
  }
  return { kind: "kafka", url, brokers, tls: m[1] !== undefined };
}

export function parseSinkUrl(url: string): SinkLocation {
  if (/^kafka(\+ssl)?:/i.test(url)) return parseKafkaUrl(url);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error("is not a URL");
  }
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw new Error("has a malformed %-escape");
    }
  };
  const prefix = decode(parsed.pathname).replace(/^\/+|\/+$/g, "");
  if (parsed.search !== "" || parsed.hash !== "") throw new Error("must not have a query (?…) or fragment (#…)");
  // Keys in the URL would end up in logs and stack configs; the sinks use the platform identity.
  if (parsed.password !== "" || (parsed.username !== "" && parsed.protocol !== "abfss:")) {
    throw new Error("must not contain credentials (user:password@); the sink uses the platform identity (task role, managed identity, service account)");
  }
  switch (parsed.protocol) {
    case "file:": {
      if (parsed.host !== "") throw new Error("must be file:///absolute/dir (three slashes, no host)");
      const directory = decode(parsed.pathname).replace(/\/+$/, "");
      if (!directory.startsWith("/") || directory === "") throw new Error("must name an absolute directory");
      return { kind: "file", url, directory };
    }
    case "s3:":
      if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(parsed.hostname)) throw new Error("must name a valid S3 bucket: s3://bucket/prefix");
      return { kind: "s3", url, bucket: parsed.hostname, prefix };
    case "abfss:": {
      const m = /^([a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])?)$/.exec(decode(parsed.username));
      const host = /^([a-z0-9]{3,24})\.dfs\.core\.windows\.net$/.exec(parsed.hostname);
      if (!m || !host) throw new Error("must be abfss://container@account.dfs.core.windows.net/prefix");
      return { kind: "abfss", url, container: m[1], account: host[1], host: parsed.hostname, prefix };
    }
    case "gs:":
      if (!/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/.test(parsed.hostname)) throw new Error("must name a valid GCS bucket: gs://bucket/prefix");
      return { kind: "gs", url, bucket: parsed.hostname, prefix };
    default:
      throw new Error(`has unsupported scheme "${parsed.protocol}" (use file://, s3://, abfss://, gs://, kafka:// or kafka+ssl://)`);
  }
}

const sinkUrl = z.string().transform((value, ctx): SinkLocation => {
  try {
    return parseSinkUrl(value);
  } catch (err) {
    ctx.addIssue({ code: "custom", message: (err as Error).message });
    return z.NEVER;
  }
});

const boolean = z
  .string()
  .regex(/^(true|false|1|0)$/i, "must be true or false")
  .transform((v) => /^(true|1)$/i.test(v));

const httpUrl = z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" });

/** Every variable the engine reads: its example (shown in errors and docs), default and schema. */
export const VARIABLES = {
  PG_HOST: { example: "db.internal.example.com", schema: z.string().min(1, "must not be empty") },
  PG_PORT: { example: "5432", default: "5432", schema: integer(1, 65535) },
  PG_DATABASE: { example: "app", schema: z.string().min(1, "must not be empty") },
  PG_USER: { example: "cdc_user", schema: z.string().min(1, "must not be empty") },
  PG_PASSWORD: { example: "s3cret (inject it from your secret store)", optional: true, schema: z.string() },
  PG_AUTH: { example: "aws-iam", default: "password", schema: z.enum(PG_AUTH_MODES, { error: `must be one of ${PG_AUTH_MODES.join(", ")}` }) },
  PG_AUTH_REGION: { example: "eu-west-1", optional: true, schema: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, "must be an AWS region such as eu-west-1") },
  PG_SSLMODE: { example: "require", default: "require", schema: z.enum(SSL_MODES, { error: `must be one of ${SSL_MODES.join(", ")}` }) },
  PG_SSLROOTCERT: { example: "/etc/ssl/certs/rds-ca.pem", optional: true, schema: z.string().min(1) },
  PG_SSLROOTCERT_PEM: {
    example: "-----BEGIN CERTIFICATE-----MIIEBjCCAu6gAwIBAgIJAMc0ZzaSUK51MA0G…-----END CERTIFICATE-----",
    optional: true,
    schema: z.string().refine((v) => v.includes("-----BEGIN CERTIFICATE-----"), "must hold PEM certificates (-----BEGIN CERTIFICATE----- …)"),
  },
  PG_SSLCERT: { example: "/etc/cdc/client.crt", optional: true, schema: z.string().min(1) },
  PG_SSLKEY: { example: "/etc/cdc/client.key", optional: true, schema: z.string().min(1) },
  PG_PUBLICATION: { example: "cdc_pub", default: "cdc_pub", schema: identifier("publication") },
  PG_SLOT: { example: "cdc_slot", default: "cdc_slot", schema: identifier("replication slot").and(z.string().regex(/^[a-z0-9_]+$/, "may only contain a-z, 0-9 and _")) },
  PG_SLOT_FAILOVER: { example: "true", default: "true", schema: boolean },
  // auto by default: measured, binary lowers the walsender's CPU per change and engine + walsender together (docs/engine.md "Binary mode").
  PG_BINARY: { example: "auto", default: "auto", schema: z.enum(PG_BINARY_MODES, { error: `must be one of ${PG_BINARY_MODES.join(", ")}` }) },
  TABLE_INCLUDE: { example: "public.users,public.orders", default: "", schema: tableList },
  SNAPSHOT_MODE: { example: "initial", default: "initial", schema: z.enum(SNAPSHOT_MODES, { error: `must be one of ${SNAPSHOT_MODES.join(", ")}` }) },
  // Sessions copying a snapshot (tables and CTID ranges of large tables) at once.
  // Unset: DEFAULT_SNAPSHOT_PARALLELISM, which depends on the machine (so it is no fixed default).
  SNAPSHOT_PARALLELISM: { example: "4", optional: true, schema: integer(1, 64) },
  // Rows per chunk of an incremental snapshot (read between two watermarks while streaming).
  INCREMENTAL_CHUNK_SIZE: { example: "4096", default: "4096", schema: integer(1, 1_000_000) },
  SNAPSHOT_TRANSCODE: { example: "threads", default: "auto", schema: z.enum(SNAPSHOT_TRANSCODES, { error: `must be one of ${SNAPSHOT_TRANSCODES.join(", ")}` }) },
  SINK_URL: { example: "s3://my-bucket/landing", schema: sinkUrl },
  SINK_COMPRESSION: { example: "gzip", default: "none", schema: z.enum(COMPRESSIONS, { error: `must be one of ${COMPRESSIONS.join(", ")}` }) },
  BATCH_MAX_SIZE: { example: "10000", default: "10000", schema: integer(1, 10_000_000) },
  BATCH_MAX_BYTES: { example: "16777216", default: String(16 * 1024 * 1024), schema: integer(1024, 1024 * 1024 * 1024) },
  BATCH_MAX_WAIT_MS: { example: "5000", default: "5000", schema: integer(1, 3_600_000) },
  // The default lets a 100 MiB bytea (a 133 MiB record) land in the 0.5 GB container; see docs/engine.md.
  MAX_RECORD_BYTES: { example: "268435456", default: String(144 * 1024 * 1024), schema: integer(64 * 1024, 1024 * 1024 * 1024) },
  HEARTBEAT_INTERVAL_MS: { example: "10000", default: "10000", schema: integer(0, 3_600_000) },
  HTTP_PORT: { example: "8080", default: "8080", schema: integer(0, 65535) },
  HTTP_HOST: {
    example: "127.0.0.1",
    optional: true,
    schema: z.string().refine((v) => isIP(v) !== 0 || /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/.test(v), "must be an IP address or a host name of this machine"),
  },
  LOG_LEVEL: { example: "info", default: "info", schema: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(", ")}` }) },
  METRICS_LOG: { example: "emf", default: "json", schema: z.enum(METRICS_LOG_FORMATS, { error: `must be one of ${METRICS_LOG_FORMATS.join(", ")}` }) },
  S3_ENDPOINT: { example: "http://127.0.0.1:9000", optional: true, schema: httpUrl },
  S3_FORCE_PATH_STYLE: { example: "true", optional: true, schema: boolean },
  AZURE_STORAGE_CONNECTION_STRING: { example: "UseDevelopmentStorage=true", optional: true, schema: z.string().min(1) },
  GCS_ENDPOINT: { example: "http://127.0.0.1:4443", optional: true, schema: httpUrl },
  KAFKA_TOPIC_PREFIX: {
    example: "cdc",
    default: "cdc",
    // Kafka's topic name rule (letters, digits, . _ -, at most 249), leaving room for ".<schema>.<table>".
    schema: z.string().regex(/^[A-Za-z0-9._-]{1,120}$/, "must be 1 to 120 of the characters Kafka allows in topic names (A-Z a-z 0-9 . _ -)"),
  },
  KAFKA_TOMBSTONES: { example: "true", default: "true", schema: boolean },
  KAFKA_CREATE_TOPICS: { example: "true", default: "true", schema: boolean },
  KAFKA_TOPIC_PARTITIONS: { example: "6", optional: true, schema: integer(1, 10_000) },
  KAFKA_TOPIC_REPLICATION: { example: "3", optional: true, schema: integer(1, 32) },
  KAFKA_AUTH: { example: "scram-sha-512", default: "none", schema: z.enum(KAFKA_AUTHS, { error: `must be one of ${KAFKA_AUTHS.join(", ")}` }) },
  KAFKA_USERNAME: { example: "cdc-engine", optional: true, schema: z.string().min(1) },
  KAFKA_PASSWORD: { example: "s3cret (inject it from your secret store)", optional: true, schema: z.string().min(1) },
  KAFKA_CA_FILE: { example: "/etc/ssl/certs/kafka-ca.pem", optional: true, schema: z.string().min(1) },
  KAFKA_REGION: { example: "eu-west-1", optional: true, schema: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, "must be an AWS region name") },
} satisfies Record<string, VariableSpec<unknown> & { default?: string; optional?: boolean }>;

type Variables = typeof VARIABLES;
type Parsed = { [K in keyof Variables]: z.output<Variables[K]["schema"]> | undefined };

/**
 * Parses the environment. Throws ConfigError listing one line per bad or missing variable:
 * `PG_PORT must be a whole number from 1 to 65535 (got "abc"); for example PG_PORT=5432`.
 */
export function loadConfig(env: Env = process.env): EngineConfig {
  const problems: string[] = [];
  const values = {} as Record<string, unknown>;
  for (const [name, spec] of Object.entries(VARIABLES) as [keyof Variables, VariableSpec<unknown> & { default?: string; optional?: boolean }][]) {
    const raw = env[name];
    // Secrets are taken verbatim: a password may legitimately start or end with a space.
    const verbatim = name === "PG_PASSWORD" || name === "AZURE_STORAGE_CONNECTION_STRING" || name === "KAFKA_PASSWORD";
    const given = raw !== undefined && raw.trim() !== "" ? (verbatim ? raw : raw.trim()) : undefined;
    const input = given ?? spec.default;
    if (input === undefined) {
      if (!spec.optional) problems.push(`${name} is required but not set; for example ${name}=${spec.example}`);
      continue;
    }
    const result = spec.schema.safeParse(input);
    if (result.success) values[name] = result.data;
    else {
      const shown = verbatim ? "(hidden)" : JSON.stringify(input.replace(/\/\/[^/@:]*:[^/@]*@/, "//(credentials hidden)@"));
      problems.push(`${name} ${result.error.issues[0]?.message ?? "is invalid"} (got ${shown}); for example ${name}=${spec.example}`);
    }
  }
  const v = values as Parsed;
  // Where the server's CA is given, verify it fully unless told otherwise.
  if ((v.PG_SSLROOTCERT !== undefined || v.PG_SSLROOTCERT_PEM !== undefined) && (env.PG_SSLMODE ?? "").trim() === "") v.PG_SSLMODE = "verify-full";
  if (v.PG_SSLROOTCERT !== undefined && v.PG_SSLROOTCERT_PEM !== undefined) {
    problems.push("PG_SSLROOTCERT and PG_SSLROOTCERT_PEM are both set; give the CA bundle once, as a file or as PEM text");
  } else if (v.PG_SSLROOTCERT_PEM !== undefined && v.PG_SSLMODE !== "verify-full" && v.PG_SSLMODE !== "verify-ca") {
    problems.push(`PG_SSLROOTCERT_PEM is only used with PG_SSLMODE=verify-full or verify-ca (got PG_SSLMODE=${v.PG_SSLMODE}); for example PG_SSLMODE=verify-full`);
  }
  if (v.PG_AUTH !== undefined && v.PG_AUTH !== "password") {
    if (v.PG_PASSWORD !== undefined) problems.push(`PG_PASSWORD must not be set with PG_AUTH=${v.PG_AUTH}, which logs in with a token from the platform identity; unset PG_PASSWORD, or set PG_AUTH=password`);
    if (v.PG_SSLMODE === "disable") problems.push(`PG_AUTH=${v.PG_AUTH} sends a bearer token as the password, which needs TLS (got PG_SSLMODE=disable); for example PG_SSLMODE=verify-full`);
  }
  if (v.PG_AUTH_REGION !== undefined && v.PG_AUTH !== "aws-iam") problems.push(`PG_AUTH_REGION is only used with PG_AUTH=aws-iam (got PG_AUTH=${v.PG_AUTH ?? "password"}); for example PG_AUTH=aws-iam`);
  const readable = (name: "PG_SSLROOTCERT" | "PG_SSLCERT" | "PG_SSLKEY") => {
    const path = v[name];
    if (path === undefined) return;
    try {
      accessSync(path, fsConstants.R_OK);
    } catch (err) {
      problems.push(`${name} names a file that cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"}: ${JSON.stringify(path)}); for example ${name}=${VARIABLES[name].example}`);
    }
  };
  if (v.PG_SSLMODE !== undefined && v.PG_SSLMODE !== "verify-full" && v.PG_SSLMODE !== "verify-ca" && v.PG_SSLROOTCERT !== undefined) {
    problems.push(`PG_SSLROOTCERT is only used with PG_SSLMODE=verify-full or verify-ca (got PG_SSLMODE=${v.PG_SSLMODE}); for example PG_SSLMODE=verify-full`);
  } else readable("PG_SSLROOTCERT");
  if ((v.PG_SSLCERT === undefined) !== (v.PG_SSLKEY === undefined)) {
    const [given, missing] = v.PG_SSLCERT === undefined ? ["PG_SSLKEY", "PG_SSLCERT"] : ["PG_SSLCERT", "PG_SSLKEY"];
    problems.push(`${given} is set but ${missing} is not: a client certificate needs both; for example ${missing}=${VARIABLES[missing as "PG_SSLCERT"].example}`);
  } else if (v.PG_SSLCERT !== undefined && v.PG_SSLMODE === "disable") {
    problems.push("PG_SSLCERT and PG_SSLKEY need TLS (got PG_SSLMODE=disable); for example PG_SSLMODE=verify-full");
  } else {
    readable("PG_SSLCERT");
    readable("PG_SSLKEY");
  }
  problems.push(...kafkaProblems(v));
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    pg: {
      host: v.PG_HOST!,
      port: v.PG_PORT!,
      database: v.PG_DATABASE!,
      user: v.PG_USER!,
      password: v.PG_PASSWORD,
      auth: v.PG_AUTH!,
      authRegion: v.PG_AUTH_REGION,
      sslMode: v.PG_SSLMODE!,
      sslRootCert: v.PG_SSLROOTCERT,
      sslRootCertPem: v.PG_SSLROOTCERT_PEM,
      sslCert: v.PG_SSLCERT,
      sslKey: v.PG_SSLKEY,
      publication: v.PG_PUBLICATION!,
      slot: v.PG_SLOT!,
      slotFailover: v.PG_SLOT_FAILOVER!,
      binary: v.PG_BINARY!,
    },
    tables: v.TABLE_INCLUDE ?? [],
    snapshotMode: v.SNAPSHOT_MODE!,
    snapshotParallelism: v.SNAPSHOT_PARALLELISM ?? DEFAULT_SNAPSHOT_PARALLELISM,
    incrementalChunkSize: v.INCREMENTAL_CHUNK_SIZE!,
    snapshotTranscode: v.SNAPSHOT_TRANSCODE!,
    sink: v.SINK_URL!,
    compression: v.SINK_COMPRESSION!,
    batch: { maxSize: v.BATCH_MAX_SIZE!, maxBytes: v.BATCH_MAX_BYTES!, maxWaitMs: v.BATCH_MAX_WAIT_MS!, maxRecordBytes: v.MAX_RECORD_BYTES! },
    heartbeatIntervalMs: v.HEARTBEAT_INTERVAL_MS!,
    httpPort: v.HTTP_PORT!,
    httpHost: v.HTTP_HOST,
    logLevel: v.LOG_LEVEL!,
    metricsLog: v.METRICS_LOG!,
    s3: { endpoint: v.S3_ENDPOINT, forcePathStyle: v.S3_FORCE_PATH_STYLE ?? v.S3_ENDPOINT !== undefined },
    azure: { connectionString: v.AZURE_STORAGE_CONNECTION_STRING },
    gcs: { endpoint: v.GCS_ENDPOINT },
    kafka: {
      topicPrefix: v.KAFKA_TOPIC_PREFIX!,
      tombstones: v.KAFKA_TOMBSTONES!,
      createTopics: v.KAFKA_CREATE_TOPICS!,
      partitions: v.KAFKA_TOPIC_PARTITIONS,
      replication: v.KAFKA_TOPIC_REPLICATION,
      auth: v.KAFKA_AUTH!,
      username: v.KAFKA_USERNAME,
      password: v.KAFKA_PASSWORD,
      caFile: v.KAFKA_CA_FILE,
      region: v.KAFKA_REGION,
    },
  };
}

/** The rules between the Kafka variables (each one alone was checked by its schema). */
function kafkaProblems(v: Parsed): string[] {
  const problems: string[] = [];
  const kafka = v.SINK_URL?.kind === "kafka" ? v.SINK_URL : undefined;
  const scram = v.KAFKA_AUTH === "scram-sha-256" || v.KAFKA_AUTH === "scram-sha-512";
  if (kafka && scram && (v.KAFKA_USERNAME === undefined || v.KAFKA_PASSWORD === undefined)) {
    problems.push(`KAFKA_AUTH=${v.KAFKA_AUTH} needs KAFKA_USERNAME and KAFKA_PASSWORD; for example KAFKA_USERNAME=${VARIABLES.KAFKA_USERNAME.example}`);
  }
  if (!kafka) return problems; // the other sinks ignore the KAFKA_* variables
  if (!scram && (v.KAFKA_USERNAME !== undefined || v.KAFKA_PASSWORD !== undefined)) {
    problems.push(`KAFKA_USERNAME and KAFKA_PASSWORD are only used with KAFKA_AUTH=scram-sha-256 or scram-sha-512 (got KAFKA_AUTH=${v.KAFKA_AUTH ?? "none"}); for example KAFKA_AUTH=scram-sha-512`);
  }
  if (v.KAFKA_AUTH !== undefined && v.KAFKA_AUTH !== "none" && v.KAFKA_AUTH !== "scram-sha-256" && v.KAFKA_AUTH !== "scram-sha-512" && !kafka.tls) {
    problems.push(`KAFKA_AUTH=${v.KAFKA_AUTH} sends a bearer token, which needs TLS: use SINK_URL=kafka+ssl://… (got ${kafka.url}); for example SINK_URL=kafka+ssl://b-1.example.kafka.eu-west-1.amazonaws.com:9098`);
  }
  if (v.KAFKA_CA_FILE !== undefined) {
    if (!kafka.tls) problems.push(`KAFKA_CA_FILE is only used with SINK_URL=kafka+ssl://…; for example SINK_URL=kafka+ssl://kafka.internal.example.com:9093`);
    else {
      try {
        accessSync(v.KAFKA_CA_FILE, fsConstants.R_OK);
      } catch (err) {
        problems.push(`KAFKA_CA_FILE names a file that cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"}: ${JSON.stringify(v.KAFKA_CA_FILE)}); for example KAFKA_CA_FILE=${VARIABLES.KAFKA_CA_FILE.example}`);
      }
    }
  }
  if (v.SINK_COMPRESSION === "gzip") {
    problems.push("SINK_COMPRESSION=gzip applies to landing files; a kafka:// sink sends each record as its own message (leave SINK_COMPRESSION unset or none)");
  }
  return problems;
}
