/**
 * Source setup: everything the source database must provide before a slot can stream (wal_level,
 * the REPLICATION privilege, a free slot, a publication, a replica identity per table), checked in
 * one place. `inspectSource` only reads (for `cdc-engine doctor`); `prepareSource` runs the same
 * checks, creates or extends the publication when it may, and otherwise fails with every problem
 * and the exact SQL that fixes it. Creating the slot itself belongs to the streaming path, because
 * the snapshot must be exported by the very replication connection that creates it.
 */
import type pg from "pg";
import type { Logger } from "pino";
import type { EngineConfig, TableName } from "../config";
import { ident } from "./connection";
import { keylessLoginCheck, PLATFORM_NAMES, primaryEndpointFix, readKeylessLogin, readPlatform, replicationGrantFix, settingFix, type KeylessLoginFacts, type Platform } from "./platform";
import { LANDING_SAFE_NAME, isReservedColumn, reservedColumnsDetail, safeRename, unsafeTableNameDetail } from "./landing-names";

/** One doctor line: what was checked, the outcome, and for a problem the SQL or step that fixes it. */
export interface SourceCheck {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
  /** ok, but worth acting on (doctor prints "warn"; run logs it): nothing stops the engine. */
  warning?: boolean;
}

/** The source is not ready; `checks` holds the failed checks, the message lists each with its fix. */
export class SourceSetupError extends Error {
  constructor(readonly checks: SourceCheck[]) {
    super(
      `the source database is not ready for CDC (${checks.length} problem${checks.length === 1 ? "" : "s"}):\n` +
        checks.map((c) => `  - ${c.name}: ${c.detail}${c.fix ? ` — fix: ${c.fix}` : ""}`).join("\n"),
    );
    this.name = "SourceSetupError";
  }
}

/** The oldest server whose pgoutput sends everything the landing contract needs (TRUNCATE came in 11). */
const MIN_SERVER_VERSION = 110000;
/** pgoutput decodes logical messages (`messages 'true'`), which incremental snapshots use as watermarks, from PostgreSQL 14 on. */
export const PGOUTPUT_MESSAGES_MIN_VERSION = 140000;

interface ServerFacts {
  versionNum: number;
  version: string;
  walLevel: string;
  database: string;
  user: string;
  quotedUser: string;
  superuser: boolean;
  replication: boolean;
  rdsReplication: boolean;
  onRds: boolean;
  canCreateInDatabase: boolean;
  maxSlots: number;
  usedSlots: number;
  maxWalSenders: number;
  usedWalSenders: number;
  /** PG_PUBLICATION as it must appear in SQL (quoted if it is a keyword). */
  quotedPublication: string;
}

interface SlotFacts {
  plugin: string | null;
  slotType: string;
  database: string | null;
  active: boolean;
  activePid: number | null;
  confirmedFlushLsn: string | null;
  walStatus: string | null;
  /** PostgreSQL 17+: why the slot was invalidated (wal_removed, rows_removed, wal_level_insufficient, idle_timeout), if it was. */
  invalidationReason?: string;
}

interface PublicationFacts {
  quotedName: string;
  allTables: boolean;
  insert: boolean;
  update: boolean;
  delete: boolean;
  truncate: boolean;
  owned: boolean;
  /** publish_via_partition_root (PostgreSQL 13+): partitioned tables stream under the parent's name. */
  viaRoot: boolean;
  /** What it streams (pg_publication_tables: leaf partitions unless publish_via_partition_root). */
  tables: TableName[];
  /** Tables named in it directly (pg_publication_rel), e.g. a partitioned parent. */
  members: TableName[];
}

interface TableFacts {
  name: TableName;
  qualified: string;
  exists: boolean;
  /** A partitioned table: its rows and changes live in its partitions. */
  partitioned: boolean;
  /** For a partition: the tables it is a partition of, the nearest first. */
  ancestors: TableName[];
  replicaIdentity: "d" | "n" | "f" | "i" | null;
  primaryKey: string | null;
  replicaIdentityIndex: string | null;
  candidateKey: string | null;
  canSelect: boolean;
  owned: boolean;
  /** The columns the publication publishes (or would, once created), as quoted SQL names by name. */
  publishedColumns: Map<string, string>;
}

/** What decides whether the slot survives a failover (PostgreSQL 17+). */
interface FailoverFacts {
  versionNum: number;
  /** pg_replication_slots.failover of PG_SLOT, when it exists. */
  slotFailover: boolean | undefined;
  synchronizedStandbySlots: string;
  /** Physical slots on this server (standbys that stream through one) and whether each is in use. */
  physicalSlots: { name: string; active: boolean }[];
}

interface SourceFacts {
  failover: FailoverFacts;
  platform: Platform;
  /** PG_AUTH other than password: the database side of the keyless login. */
  login?: KeylessLoginFacts;
  server: ServerFacts;
  slot: SlotFacts | undefined;
  publication: PublicationFacts | undefined;
  /** The tables to capture: TABLE_INCLUDE, or the existing publication's tables when it is empty. */
  tables: TableFacts[];
}

/** What must change to make the source ready; applied only by prepareSource. */
type Action = { kind: "create_publication"; sql: string } | { kind: "add_tables"; sql: string; tables: TableName[] };

interface Evaluation {
  checks: SourceCheck[];
  actions: Action[];
}

const display = (t: TableName) => `${t.schema}.${t.table}`;
const sameTable = (a: TableName, b: TableName) => a.schema === b.schema && a.table === b.table;

async function readServer(client: pg.Client, publication: string): Promise<ServerFacts> {
  const { rows } = await client.query(
    `
    SELECT current_setting('server_version_num')::int AS version_num,
           current_setting('server_version') AS version,
           current_setting('wal_level') AS wal_level,
           current_database() AS database,
           current_user AS "user",
           quote_ident(current_user) AS quoted_user,
           r.rolsuper AS superuser,
           r.rolreplication AS replication,
           EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname = 'rds_replication' AND pg_has_role(r.oid, g.oid, 'MEMBER')) AS rds_replication,
           EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname = 'rds_superuser') AS on_rds,
           has_database_privilege(current_database(), 'CREATE') AS can_create,
           current_setting('max_replication_slots')::int AS max_slots,
           (SELECT count(*)::int FROM pg_replication_slots) AS used_slots,
           current_setting('max_wal_senders')::int AS max_wal_senders,
           (SELECT count(*)::int FROM pg_stat_replication) AS used_wal_senders,
           quote_ident($1) AS quoted_publication
      FROM pg_roles r
     WHERE r.rolname = current_user`,
    [publication],
  );
  const r = rows[0];
  return {
    versionNum: r.version_num,
    version: r.version,
    walLevel: r.wal_level,
    database: r.database,
    user: r.user,
    quotedUser: r.quoted_user,
    superuser: r.superuser,
    replication: r.replication,
    rdsReplication: r.rds_replication,
    onRds: r.on_rds,
    canCreateInDatabase: r.can_create,
    maxSlots: r.max_slots,
    usedSlots: r.used_slots,
    maxWalSenders: r.max_wal_senders,
    usedWalSenders: r.used_wal_senders,
    quotedPublication: r.quoted_publication,
  };
}

async function readSlot(client: pg.Client, slot: string): Promise<SlotFacts | undefined> {
  // to_jsonb keeps this working on servers older than 13, which have no wal_status column.
  const { rows } = await client.query(
    `SELECT s.plugin, s.slot_type, s.database, s.active, s.active_pid, s.confirmed_flush_lsn::text AS confirmed_flush_lsn,
            to_jsonb(s) ->> 'wal_status' AS wal_status, to_jsonb(s) ->> 'invalidation_reason' AS invalidation_reason
       FROM pg_replication_slots s WHERE s.slot_name = $1`,
    [slot],
  );
  if (rows.length === 0) return undefined;
  const r = rows[0];
  return {
    plugin: r.plugin,
    slotType: r.slot_type,
    database: r.database,
    active: r.active,
    activePid: r.active_pid,
    confirmedFlushLsn: r.confirmed_flush_lsn,
    walStatus: r.wal_status,
    invalidationReason: r.invalidation_reason ?? undefined,
  };
}

async function readPublication(client: pg.Client, name: string): Promise<PublicationFacts | undefined> {
  const { rows } = await client.query(
    `SELECT quote_ident(p.pubname) AS quoted, p.puballtables, p.pubinsert, p.pubupdate, p.pubdelete,
            p.pubtruncate, pg_has_role(p.pubowner, 'USAGE') AS owned,
            -- to_jsonb: servers older than 13 have no pubviaroot column.
            COALESCE((to_jsonb(p) ->> 'pubviaroot')::boolean, false) AS via_root
       FROM pg_publication p WHERE p.pubname = $1`,
    [name],
  );
  if (rows.length === 0) return undefined;
  const r = rows[0];
  const tables = await client.query(
    `SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY schemaname, tablename`,
    [name],
  );
  const members = await client.query(
    `SELECT n.nspname AS schemaname, c.relname AS tablename
       FROM pg_publication_rel pr
       JOIN pg_publication p ON p.oid = pr.prpubid
       JOIN pg_class c ON c.oid = pr.prrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE p.pubname = $1`,
    [name],
  );
  return {
    quotedName: r.quoted,
    allTables: r.puballtables,
    insert: r.pubinsert,
    update: r.pubupdate,
    delete: r.pubdelete,
    truncate: r.pubtruncate,
    owned: r.owned,
    viaRoot: r.via_root,
    tables: tables.rows.map((t) => ({ schema: t.schemaname, table: t.tablename })),
    members: members.rows.map((t) => ({ schema: t.schemaname, table: t.tablename })),
  };
}

async function readTables(client: pg.Client, tables: TableName[]): Promise<TableFacts[]> {
  if (tables.length === 0) return [];
  // A "candidate key" is a unique, non-partial, plain-column index over NOT NULL columns: exactly
  // what ALTER TABLE … ADD PRIMARY KEY (those columns) accepts without failing.
  const { rows } = await client.query(
    `WITH wanted AS (
       SELECT t.schema, t.name, t.ord FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(schema, name, ord)
     )
     SELECT w.schema, w.name,
            quote_ident(w.schema) || '.' || quote_ident(w.name) AS qualified,
            c.oid IS NOT NULL AS exists,
            COALESCE(c.relkind = 'p', false) AS partitioned,
            (WITH RECURSIVE up(relid, depth) AS (
               SELECT i.inhparent, 1 FROM pg_inherits i WHERE i.inhrelid = c.oid AND c.relispartition
               UNION ALL
               SELECT i.inhparent, up.depth + 1 FROM pg_inherits i JOIN up ON i.inhrelid = up.relid)
             SELECT json_agg(json_build_object('schema', an.nspname, 'table', ac.relname) ORDER BY up.depth)
               FROM up JOIN pg_class ac ON ac.oid = up.relid JOIN pg_namespace an ON an.oid = ac.relnamespace) AS ancestors,
            c.relreplident::text AS replica_identity,
            (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord)
               FROM pg_index i
               CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE i.indrelid = c.oid AND i.indisprimary) AS primary_key,
            (SELECT i.indexrelid::regclass::text FROM pg_index i
              WHERE i.indrelid = c.oid AND i.indisreplident AND i.indisvalid LIMIT 1) AS replica_identity_index,
            (SELECT (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord)
                       FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                      WHERE k.ord <= i.indnkeyatts)
               FROM pg_index i
              WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid AND i.indimmediate
                AND i.indpred IS NULL AND i.indexprs IS NULL
                AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                                  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                                 WHERE k.ord <= i.indnkeyatts AND NOT a.attnotnull)
              ORDER BY i.indnkeyatts, i.indexrelid LIMIT 1) AS candidate_key,
            CASE WHEN c.oid IS NULL THEN false ELSE has_table_privilege(c.oid, 'SELECT') END AS can_select,
            CASE WHEN c.oid IS NULL THEN false ELSE pg_has_role(c.relowner, 'USAGE') END AS owned
       FROM wanted w
       LEFT JOIN pg_namespace n ON n.nspname = w.schema
       LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w.name AND c.relkind IN ('r', 'p')
      ORDER BY w.ord`,
    [tables.map((t) => t.schema), tables.map((t) => t.table)],
  );
  return rows.map((r) => ({
    name: { schema: r.schema, table: r.name },
    qualified: r.qualified,
    exists: r.exists,
    partitioned: r.partitioned,
    ancestors: r.ancestors ?? [],
    replicaIdentity: r.replica_identity,
    primaryKey: r.primary_key,
    replicaIdentityIndex: r.replica_identity_index,
    candidateKey: r.candidate_key,
    canSelect: r.can_select,
    owned: r.owned,
    publishedColumns: new Map<string, string>(),
  }));
}

/**
 * Which columns of `a` pgoutput sends, pt being the table's pg_publication_tables row (15+, may be
 * missing): as snapshot.ts publishedTable decides it — generated columns only from 18 on, and then
 * only as attnames lists them (a new publication publishes none).
 */
function publishedColumnCondition(versionNum: number): string {
  if (versionNum >= 180000) return "CASE WHEN pt.attnames IS NOT NULL THEN a.attname = ANY(pt.attnames) ELSE a.attgenerated = '' END";
  if (versionNum >= 150000) return "(pt.attnames IS NULL OR a.attname = ANY(pt.attnames)) AND a.attgenerated = ''";
  return versionNum >= 120000 ? "a.attgenerated = ''" : "true";
}

/**
 * Fills in each table's published columns: the publication's (PostgreSQL 15+: its column list, or
 * every column pgoutput sends), else every column a new publication would send (not generated).
 */
async function readPublishedColumns(client: pg.Client, server: ServerFacts, publication: string, tables: TableFacts[]): Promise<void> {
  const existing = tables.filter((t) => t.exists);
  if (existing.length === 0) return;
  const listed = server.versionNum >= 150000;
  const { rows } = await client.query<{ schema: string; name: string; column: string; quoted: string }>(
    `WITH wanted AS (SELECT t.schema, t.name, format('%I.%I', t.schema, t.name)::regclass AS relid FROM unnest($1::text[], $2::text[]) AS t(schema, name))
     SELECT w.schema, w.name, a.attname::text AS column, quote_ident(a.attname) AS quoted
       FROM wanted w
       JOIN pg_attribute a ON a.attrelid = w.relid AND a.attnum > 0 AND NOT a.attisdropped
       ${listed ? "LEFT JOIN pg_publication_tables pt ON pt.pubname = $3 AND pt.schemaname = w.schema AND pt.tablename = w.name" : ""}
      WHERE ${publishedColumnCondition(server.versionNum)}
      ORDER BY a.attnum`,
    listed ? [existing.map((t) => t.name.schema), existing.map((t) => t.name.table), publication] : [existing.map((t) => t.name.schema), existing.map((t) => t.name.table)],
  );
  for (const r of rows) existing.find((t) => t.name.schema === r.schema && t.name.table === r.name)?.publishedColumns.set(r.column, r.quoted);
}

async function gather(config: EngineConfig, client: pg.Client): Promise<SourceFacts> {
  const server = await readServer(client, config.pg.publication);
  const slot = await readSlot(client, config.pg.slot);
  const publication = await readPublication(client, config.pg.publication);
  const wanted = config.tables.length > 0 ? dedupe(config.tables) : (publication?.tables ?? []);
  const tables = await readTables(client, wanted);
  await readPublishedColumns(client, server, config.pg.publication, tables);
  return { server, slot, publication, tables, failover: await readFailover(client, config.pg.slot, server.versionNum), platform: await readPlatform(client), login: await readKeylessLogin(client, config.pg.auth, config.pg.user) };
}

async function readFailover(client: pg.Client, slot: string, versionNum: number): Promise<FailoverFacts> {
  if (versionNum < 170000) return { versionNum, slotFailover: undefined, synchronizedStandbySlots: "", physicalSlots: [] };
  const { rows } = await client.query(
    `SELECT (SELECT failover FROM pg_replication_slots WHERE slot_name = $1) AS slot_failover,
            current_setting('synchronized_standby_slots') AS synchronized,
            (SELECT json_agg(json_build_object('name', slot_name, 'active', active) ORDER BY slot_name) FROM pg_replication_slots WHERE slot_type = 'physical') AS physical`,
    [slot],
  );
  return { versionNum, slotFailover: rows[0].slot_failover ?? undefined, synchronizedStandbySlots: rows[0].synchronized, physicalSlots: rows[0].physical ?? [] };
}

/**
 * Whether the slot would survive the primary failing over to a standby: only a failover slot
 * (PostgreSQL 17+) that a standby synchronizes (sync_replication_slots = on there) does; without
 * one, a failover costs a new initial snapshot. A warning, never a failure: many sources have no
 * standby, and the engine runs either way.
 */
/** The platform line: which service this is (so the fixes below are its own), and a standby that cannot be the source. */
function platformCheck(platform: Platform): SourceCheck {
  const name = PLATFORM_NAMES[platform.kind];
  const evidence = platform.evidence.length > 0 ? ` (recognised by ${platform.evidence.join(", ")})` : "";
  if (platform.inRecovery) {
    return {
      name: "platform",
      ok: false,
      detail: `${name}${evidence}: this server is a standby (in recovery${platform.kind === "aurora" ? ", e.g. an Aurora reader" : ""}), which cannot host the engine's replication slot, publication and heartbeat`,
      fix: primaryEndpointFix(platform.kind),
    };
  }
  return { name: "platform", ok: true, detail: `${name}${evidence}` };
}

/** HEARTBEAT_INTERVAL_MS=0: the slot then advances only from the server's keepalives. */
/**
 * SNAPSHOT_MODE=incremental: the server must decode watermarks (14+), and tables without a primary
 * key, which chunks cannot be bounded or deduplicated by, are named: they are copied from the slot's
 * exported snapshot before streaming starts, as SNAPSHOT_MODE=initial copies every table.
 */
export function incrementalModeCheck(server: { versionNum: number; version: string }, keyless: string[]): SourceCheck {
  if (server.versionNum < PGOUTPUT_MESSAGES_MIN_VERSION) {
    return {
      name: "snapshot mode",
      ok: false,
      detail: `SNAPSHOT_MODE=incremental needs PostgreSQL 14 or later (pgoutput decodes the logical messages its chunks use as watermarks from 14 on); this server is PostgreSQL ${server.version}`,
      fix: "set SNAPSHOT_MODE=initial (one consistent copy from the slot's exported snapshot before streaming), or upgrade the server to PostgreSQL 14 or later",
    };
  }
  if (keyless.length === 0) return { name: "snapshot mode", ok: true, detail: "incremental: every captured table has a primary key and is copied in chunks while streaming" };
  return {
    name: "snapshot mode",
    ok: true,
    warning: true,
    detail:
      `incremental: ${keyless.join(", ")} ${keyless.length === 1 ? "has" : "have"} no primary key, which chunks are read and deduplicated by; ` +
      `when the engine creates its slot ${keyless.length === 1 ? "it is" : "they are"} copied from the slot's exported snapshot before streaming starts (not resumable), the other tables in chunks while streaming`,
    fix: `add a primary key to copy ${keyless.length === 1 ? "it" : "them"} in chunks too: ${keyless.map((t) => `ALTER TABLE ${t} ADD PRIMARY KEY (…);`).join(" ")}`,
  };
}

function heartbeatCheck(): SourceCheck {
  return {
    name: "heartbeat",
    ok: true,
    warning: true,
    detail:
      "HEARTBEAT_INTERVAL_MS=0: no heartbeat is written. While the captured tables are idle the slot advances only from the server's keepalives " +
      "(confirmed when everything received is durable); without that, PostgreSQL would retain WAL for ever. Nothing then proves end to end that changes still reach the sink",
    fix: "set HEARTBEAT_INTERVAL_MS=10000 (the default) unless the user may not call pg_logical_emit_message",
  };
}

function failoverCheck(config: EngineConfig, facts: FailoverFacts): SourceCheck {
  const name = "failover";
  const slot = config.pg.slot;
  const cost = "after a failover the slot would be missing on the new primary and the engine would take a new initial snapshot (every captured row copied again)";
  const standbySide = "on each standby: sync_replication_slots = on, hot_standby_feedback = on, primary_slot_name set and dbname in primary_conninfo";
  if (facts.versionNum < 170000) {
    return { name, ok: true, warning: true, detail: `PostgreSQL before 17 cannot synchronize logical slots to standbys: ${cost}`, fix: "upgrade to PostgreSQL 17 or later for failover slots" };
  }
  if (!config.pg.slotFailover) {
    return { name, ok: true, warning: true, detail: `PG_SLOT_FAILOVER=false: ${slot} is not made a failover slot, so ${cost}`, fix: "set PG_SLOT_FAILOVER=true" };
  }
  const slotState =
    facts.slotFailover === undefined ? `${slot} will be created as a failover slot` : facts.slotFailover ? `${slot} is a failover slot` : `${slot} is not a failover slot yet (cdc-engine run makes it one)`;
  const listed = facts.synchronizedStandbySlots.split(",").map((x) => x.trim().replace(/^"|"$/g, "")).filter(Boolean);
  if (facts.physicalSlots.length === 0) {
    return {
      name,
      ok: true,
      warning: true,
      detail: `${slotState}, but no standby streams from this server through a physical replication slot, and only such standbys can synchronize it: ${cost}`,
      fix: `give each standby a physical slot (SELECT pg_create_physical_replication_slot('<standby>');) and set ${standbySide}; then on this server: ALTER SYSTEM SET synchronized_standby_slots = '<standby>'; SELECT pg_reload_conf();`,
    };
  }
  if (listed.length === 0) {
    const names = facts.physicalSlots.map((p) => p.name).join(",");
    return {
      name,
      ok: true,
      warning: true,
      detail: `${slotState}, but synchronized_standby_slots is empty, so the engine may receive changes before a standby has them and the standby's copy of the slot may not be usable after a failover`,
      fix: `ALTER SYSTEM SET synchronized_standby_slots = '${names}'; SELECT pg_reload_conf(); and ${standbySide}`,
    };
  }
  return {
    name,
    ok: true,
    detail: `${slotState}; synchronized_standby_slots = ${listed.join(", ")}, so standbys with sync_replication_slots = on keep a usable copy (check that on the standby: SELECT slot_name, synced FROM pg_replication_slots;)`,
  };
}

function dedupe(tables: TableName[]): TableName[] {
  const out: TableName[] = [];
  for (const t of tables) if (!out.some((o) => sameTable(o, t))) out.push(t);
  return out;
}

function evaluate(config: EngineConfig, facts: SourceFacts): Evaluation {
  const { server, slot, publication, tables } = facts;
  const checks: SourceCheck[] = [];
  const actions: Action[] = [];
  const pubName = config.pg.publication;
  const platform = facts.platform.kind;

  checks.push(platformCheck(facts.platform));
  if (config.heartbeatIntervalMs === 0) checks.push(heartbeatCheck());
  if (config.snapshotMode === "incremental") checks.push(incrementalModeCheck(server, tables.filter((t) => t.exists && !t.primaryKey).map((t) => t.qualified)));
  checks.push(
    server.versionNum >= MIN_SERVER_VERSION
      ? { name: "server version", ok: true, detail: `PostgreSQL ${server.version}` }
      : {
          name: "server version",
          ok: false,
          detail: `PostgreSQL ${server.version} is too old: logical replication with pgoutput needs PostgreSQL 11 or later`,
          fix: "upgrade the server to a supported PostgreSQL release (13 or later recommended)",
        },
  );

  checks.push(
    server.walLevel === "logical"
      ? { name: "wal_level", ok: true, detail: "logical" }
      : {
          name: "wal_level",
          ok: false,
          detail: `is ${server.walLevel}, must be logical`,
          fix:
            platform !== "plain"
              ? settingFix(platform, "wal_level", "logical")
              : "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL " +
                "(Amazon RDS/Aurora: set rds.logical_replication = 1 in the parameter group; Azure: server parameter wal_level = logical; " +
                "Cloud SQL: database flag cloudsql.logical_decoding = on)",
        },
  );

  const privilege = server.superuser
    ? "superuser"
    : server.replication
      ? "REPLICATION"
      : server.rdsReplication
        ? "rds_replication"
        : undefined;
  checks.push(
    privilege
      ? { name: "replication privilege", ok: true, detail: `user ${server.user} has ${privilege}` }
      : {
          name: "replication privilege",
          ok: false,
          detail: `user ${server.user} has neither the REPLICATION attribute nor superuser${server.onRds ? " nor rds_replication" : ""}`,
          fix: server.onRds && platform === "plain" ? `GRANT rds_replication TO ${server.quotedUser};` : replicationGrantFix(platform, server.quotedUser),
        },
  );

  if (facts.login) checks.push({ name: "database login", ...keylessLoginCheck(facts.login, server.quotedUser) });
  checks.push(slotCheck(config, server, slot, platform));
  checks.push(failoverCheck(config, facts.failover));

  checks.push(
    server.maxWalSenders > server.usedWalSenders
      ? { name: "wal senders", ok: true, detail: `${server.usedWalSenders} of max_wal_senders=${server.maxWalSenders} in use` }
      : {
          name: "wal senders",
          ok: false,
          detail: `all ${server.maxWalSenders} wal senders (max_wal_senders) are in use, so no replication connection can be opened`,
          fix: settingFix(platform, "max_wal_senders", Math.max(10, server.maxWalSenders + 2)),
        },
  );

  const quotedList = (list: TableFacts[]) => list.map((t) => t.qualified).join(", ");
  const existing = tables.filter((t) => t.exists);
  // Publications hold partitioned tables from PostgreSQL 13 on (with publish_via_partition_root);
  // before, CREATE/ALTER PUBLICATION rejects them, so the publication checks below cannot help.
  const unpublishable = server.versionNum < 130000 ? existing.filter((t) => t.partitioned) : [];
  if (unpublishable.length > 0) {
    const major = Math.floor(server.versionNum / 10000);
    checks.push({
      name: "partitioned tables",
      ok: false,
      detail: `PostgreSQL ${major} cannot publish a partitioned table (publications hold them from 13 on), so ${unpublishable.map((t) => display(t.name)).join(", ")} cannot be captured as one table`,
      fix:
        `capture the partitions instead, each under its own name: put them in TABLE_INCLUDE in place of ${unpublishable.map((t) => display(t.name)).join(", ")} ` +
        `(SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = '${unpublishable[0].qualified.replace(/'/g, "''")}'::regclass; lists them), or upgrade the server to PostgreSQL 13 or later`,
    });
    return { checks, actions };
  }
  if (!publication) {
    if (config.tables.length === 0) {
      checks.push({
        name: "publication",
        ok: false,
        detail: `publication ${pubName} does not exist and TABLE_INCLUDE is empty, so there is nothing to capture`,
        fix: `set TABLE_INCLUDE (e.g. TABLE_INCLUDE=public.users,public.orders) and the engine creates the publication, or create it yourself: CREATE PUBLICATION ${server.quotedPublication} FOR TABLE <schema.table>, …;`,
      });
    } else {
      // Partitioned tables are captured as one table under the parent's name: their changes must stream under it.
      const viaRoot = tables.some((t) => t.partitioned) ? " WITH (publish_via_partition_root = true)" : "";
      const sql = `CREATE PUBLICATION ${server.quotedPublication} FOR TABLE ${quotedList(tables)}${viaRoot};`;
      const notOwned = existing.filter((t) => !t.owned);
      if (!server.canCreateInDatabase && !server.superuser) {
        checks.push({
          name: "publication",
          ok: false,
          detail: `publication ${pubName} does not exist and user ${server.user} may not create it (no CREATE privilege on database ${server.database})`,
          fix: `run as the tables' owner: ${sql}`,
        });
      } else if (notOwned.length > 0) {
        checks.push({
          name: "publication",
          ok: false,
          detail: `publication ${pubName} does not exist and user ${server.user} may not create it, because it does not own ${quotedList(notOwned)}`,
          fix: `run as the tables' owner: ${sql}`,
        });
      } else {
        checks.push({ name: "publication", ok: true, detail: `${pubName} does not exist yet; cdc-engine run creates it: ${sql}` });
        // Only worth doing once every table exists; a missing table is reported on its own line.
        if (existing.length === tables.length) actions.push({ kind: "create_publication", sql });
      }
    }
  } else {
    const missingOps = (["insert", "update", "delete", "truncate"] as const).filter((op) => !publication[op]);
    if (missingOps.length > 0) {
      checks.push({
        name: "publication operations",
        ok: false,
        detail: `publication ${pubName} does not publish ${missingOps.join(", ")}, so those changes would be silently missing`,
        fix: `ALTER PUBLICATION ${publication.quotedName} SET (publish = 'insert, update, delete, truncate');`,
      });
    }
    const partitioned = existing.filter((t) => t.partitioned);
    if (partitioned.length > 0 && !publication.viaRoot) {
      const sql = `ALTER PUBLICATION ${publication.quotedName} SET (publish_via_partition_root = true);`;
      checks.push({
        name: "publication partitions",
        ok: false,
        detail:
          `publication ${pubName} does not set publish_via_partition_root, so the changes of the partitioned table${partitioned.length === 1 ? "" : "s"} ` +
          `${partitioned.map((t) => display(t.name)).join(", ")} stream under the partitions' names and would not be captured`,
        fix: publication.owned ? sql : `run as the publication's owner: ${sql}`,
      });
    }
    if (tables.length === 0) {
      checks.push({
        name: "publication",
        ok: false,
        detail: `publication ${pubName} publishes no tables and TABLE_INCLUDE is empty, so there is nothing to capture`,
        fix: `set TABLE_INCLUDE (e.g. TABLE_INCLUDE=public.users) or: ALTER PUBLICATION ${publication.quotedName} ADD TABLE <schema.table>;`,
      });
    } else {
      const published = (t: TableFacts) => [...publication.tables, ...publication.members].some((p) => sameTable(p, t.name));
      const unpublished = existing.filter((t) => !published(t));
      if (unpublished.length === 0) {
        const extra = publication.tables.filter((p) => !tables.some((t) => sameTable(t.name, p)));
        checks.push({
          name: "publication",
          ok: true,
          detail:
            `${pubName} publishes ${publication.allTables ? "all tables" : `${publication.tables.length} table${publication.tables.length === 1 ? "" : "s"}`}` +
            (extra.length > 0 && config.tables.length > 0 ? `; only the ${tables.length} in TABLE_INCLUDE are captured` : ""),
        });
      } else {
        const sql = `ALTER PUBLICATION ${publication.quotedName} ADD TABLE ${quotedList(unpublished)};`;
        const notOwned = unpublished.filter((t) => !t.owned);
        if (publication.owned && notOwned.length === 0) {
          checks.push({
            name: "publication",
            ok: true,
            detail: `${pubName} exists but does not publish ${unpublished.map((t) => display(t.name)).join(", ")} from TABLE_INCLUDE yet; cdc-engine run adds ${unpublished.length === 1 ? "it" : "them"}: ${sql}`,
          });
          actions.push({ kind: "add_tables", sql, tables: unpublished.map((t) => t.name) });
        } else {
          checks.push({
            name: "publication",
            ok: false,
            detail: `${pubName} does not publish ${unpublished.map((t) => display(t.name)).join(", ")} from TABLE_INCLUDE, and user ${server.user} may not add ${unpublished.length === 1 ? "it" : "them"} (${publication.owned ? `does not own ${quotedList(notOwned)}` : "does not own the publication"})`,
            fix: `run as the publication's owner: ${sql}`,
          });
        }
      }
    }
  }

  checks.push(...partitionsCaptured(tables, publication));
  for (const t of tables) checks.push(tableCheck(t, server, publication));
  return { checks, actions };
}

/**
 * A captured partition whose changes stream under an ancestor (publish_via_partition_root, with the
 * ancestor published too) would get none of them under its own name: capture the ancestor instead.
 */
function partitionsCaptured(tables: TableFacts[], publication: PublicationFacts | undefined): SourceCheck[] {
  // A publication the engine creates sets publish_via_partition_root when it has a partitioned table.
  const viaRoot = publication ? publication.viaRoot : tables.some((t) => t.partitioned);
  if (!viaRoot) return [];
  const published = [...(publication?.tables ?? []), ...(publication?.members ?? []), ...tables.map((t) => t.name)];
  const checks: SourceCheck[] = [];
  for (const t of tables) {
    const root = t.ancestors.filter((a) => published.some((p) => sameTable(p, a))).pop();
    if (!root) continue;
    const rootCaptured = tables.some((c) => sameTable(c.name, root));
    checks.push({
      name: `partition ${display(t.name)}`,
      ok: false,
      detail: `is a partition of ${display(root)}, which the publication publishes with publish_via_partition_root, so its changes stream as ${display(root)} and none would land under ${display(t.name)}`,
      fix: rootCaptured
        ? `remove ${display(t.name)} from TABLE_INCLUDE: its rows already land under ${display(root)}`
        : `capture ${display(root)} instead: put it in TABLE_INCLUDE in place of ${display(t.name)} (the partition's rows land under ${display(root)})`,
    });
  }
  return checks;
}

function slotCheck(config: EngineConfig, server: ServerFacts, slot: SlotFacts | undefined, platform: Platform["kind"] = "plain"): SourceCheck {
  const name = "replication slot";
  const slotName = config.pg.slot;
  if (!slot) {
    if (server.usedSlots < server.maxSlots) {
      return {
        name,
        ok: true,
        detail: `${slotName} does not exist yet (cdc-engine run creates it); ${server.maxSlots - server.usedSlots} of max_replication_slots=${server.maxSlots} free`,
      };
    }
    return {
      name,
      ok: false,
      detail: `${slotName} does not exist and all ${server.maxSlots} replication slots (max_replication_slots) are taken`,
      fix:
        `drop a slot nobody uses (SELECT slot_name, active FROM pg_replication_slots; then SELECT pg_drop_replication_slot('<name>');) ` +
        (platform === "plain"
          ? `or ALTER SYSTEM SET max_replication_slots = ${Math.max(10, server.maxSlots + 4)}; and restart PostgreSQL`
          : `or ${settingFix(platform, "max_replication_slots", Math.max(10, server.maxSlots + 4))}`),
    };
  }
  const recreate = `SELECT pg_drop_replication_slot('${slotName}'); (the engine then re-creates it and, with SNAPSHOT_MODE=initial, snapshots again) or choose another PG_SLOT`;
  if (slot.slotType !== "logical" || slot.plugin !== "pgoutput") {
    return {
      name,
      ok: false,
      detail: `${slotName} exists but is a ${slot.slotType} slot${slot.plugin ? ` with plugin ${slot.plugin}` : ""}; the engine needs a logical slot with plugin pgoutput`,
      fix: recreate,
    };
  }
  if (slot.database !== server.database) {
    return {
      name,
      ok: false,
      detail: `${slotName} exists but belongs to database ${slot.database}, not ${server.database} (PG_DATABASE)`,
      fix: `set PG_DATABASE=${slot.database}, or choose another PG_SLOT for database ${server.database}`,
    };
  }
  if (slot.walStatus === "lost" || slot.invalidationReason) {
    return {
      name,
      ok: false,
      detail: slot.invalidationReason
        ? `${slotName} was invalidated by PostgreSQL (invalidation_reason=${slot.invalidationReason}); changes since its position are gone`
        : `${slotName} has lost WAL it still needed (wal_status=lost, e.g. max_slot_wal_keep_size was exceeded); changes since its position are gone`,
      fix: `${recreate}; with SNAPSHOT_MODE=never the engine then refuses to go on past the gap: run once with SNAPSHOT_MODE=initial (a new snapshot), or delete the sink's _cdc_state/${slotName}.json to accept the gap`,
    };
  }
  const position = slot.confirmedFlushLsn ? ` at ${slot.confirmedFlushLsn}` : "";
  return {
    name,
    ok: true,
    detail: slot.active
      ? `${slotName} exists${position} and is in use by another connection (pid ${slot.activePid}); cdc-engine run waits until it is released`
      : `${slotName} exists${position}; cdc-engine run resumes from it`,
  };
}

function tableCheck(t: TableFacts, server: ServerFacts, publication: PublicationFacts | undefined): SourceCheck {
  const name = `table ${display(t.name)}`;
  if (!t.exists) {
    return {
      name,
      ok: false,
      detail: "does not exist (or is not a table)",
      fix: `create the table, or remove ${display(t.name)} from TABLE_INCLUDE (names are case-sensitive, as stored in the catalog)`,
    };
  }
  const select = t.canSelect
    ? undefined
    : { detail: `user ${server.user} may not SELECT from it (needed for the initial snapshot)`, fix: `GRANT SELECT ON ${t.qualified} TO ${server.quotedUser};` };
  const addKey = t.candidateKey
    ? `ALTER TABLE ${t.qualified} ADD PRIMARY KEY (${t.candidateKey});`
    : `ALTER TABLE ${t.qualified} REPLICA IDENTITY FULL;`;
  const noKeyHint = t.candidateKey ? "" : ` (or give it a primary key: ALTER TABLE ${t.qualified} ADD PRIMARY KEY (<key columns>);)`;
  let identity: { ok: boolean; detail: string; fix?: string };
  switch (t.replicaIdentity) {
    case "d":
      identity = t.primaryKey
        ? { ok: true, detail: `primary key (${t.primaryKey})` }
        : {
            ok: false,
            detail: "has no primary key and REPLICA IDENTITY DEFAULT, so PostgreSQL sends no key for updates and deletes",
            fix: addKey + noKeyHint,
          };
      break;
    case "f":
      identity = { ok: true, detail: `REPLICA IDENTITY FULL${t.primaryKey ? `, primary key (${t.primaryKey})` : ""}` };
      break;
    case "i":
      identity = t.replicaIdentityIndex
        ? { ok: true, detail: `REPLICA IDENTITY USING INDEX ${t.replicaIdentityIndex}` }
        : {
            ok: false,
            detail: "REPLICA IDENTITY USING INDEX names an index that no longer exists or is invalid",
            fix: t.primaryKey ? `ALTER TABLE ${t.qualified} REPLICA IDENTITY DEFAULT;` : addKey + noKeyHint,
          };
      break;
    default:
      identity = {
        ok: false,
        detail: "has REPLICA IDENTITY NOTHING, so PostgreSQL refuses updates and deletes on it once it is published",
        fix: t.primaryKey ? `ALTER TABLE ${t.qualified} REPLICA IDENTITY DEFAULT;` : `ALTER TABLE ${t.qualified} REPLICA IDENTITY FULL;${noKeyHint}`,
      };
  }
  const problems = [identity.ok ? undefined : identity, select, namingProblem(t, server, publication)].filter((p) => p !== undefined);
  if (problems.length === 0) return { name, ...identity };
  return { name, ok: false, detail: problems.map((p) => p.detail).join("; and "), fix: problems.map((p) => p.fix).join(" ") };
}

/** A table or column name that cannot land as it is (see landing-names.ts), with the rename or column list that fixes it. */
function namingProblem(t: TableFacts, server: ServerFacts, publication: PublicationFacts | undefined): { detail: string; fix: string } | undefined {
  const unsafe = [t.name.schema, t.name.table].filter((n) => !LANDING_SAFE_NAME.test(n));
  if (unsafe.length > 0) {
    const renames = [
      ...(LANDING_SAFE_NAME.test(t.name.schema) ? [] : [`ALTER SCHEMA ${ident(t.name.schema)} RENAME TO ${safeRename(t.name.schema)};`]),
      ...(LANDING_SAFE_NAME.test(t.name.table) ? [] : [`ALTER TABLE ${t.qualified} RENAME TO ${safeRename(t.name.table)};`]),
    ];
    return {
      detail: unsafeTableNameDetail(unsafe),
      fix: `rename it: ${renames.join(" ")} (or stop publishing it: ALTER PUBLICATION ${publication?.quotedName ?? server.quotedPublication} DROP TABLE ${t.qualified};)`,
    };
  }
  const reserved = [...t.publishedColumns.keys()].filter(isReservedColumn);
  if (reserved.length === 0) return undefined;
  const kept = [...t.publishedColumns].filter(([c]) => !isReservedColumn(c)).map(([, quoted]) => quoted).join(", ");
  const renames = reserved.map((c) => `ALTER TABLE ${t.qualified} RENAME COLUMN ${t.publishedColumns.get(c)} TO ${safeRename(c)};`).join(" ");
  const columnList = publication
    ? // One transaction: no change to the table goes unpublished between the two.
      `BEGIN; ALTER PUBLICATION ${publication.quotedName} DROP TABLE ${t.qualified}; ALTER PUBLICATION ${publication.quotedName} ADD TABLE ${t.qualified} (${kept}); COMMIT;`
    : `CREATE PUBLICATION ${server.quotedPublication} FOR TABLE ${t.qualified} (${kept}), …;`;
  return {
    detail: reservedColumnsDetail(display(t.name), reserved),
    fix: `rename ${reserved.length === 1 ? "it" : "them"} (${renames}) or leave ${reserved.length === 1 ? "it" : "them"} out of the publication with a column list (PostgreSQL 15+): ${columnList}`,
  };
}

/** The read-only checks `cdc-engine doctor` prints; changes nothing on the server. */
export async function inspectSource(config: EngineConfig, client: pg.Client): Promise<SourceCheck[]> {
  return evaluate(config, await gather(config, client)).checks;
}

/**
 * Makes the source ready and returns the tables to capture. Safe to run on every start and from
 * two instances at once (a rollout): it creates the publication, or adds TABLE_INCLUDE's missing
 * tables to it, only when the user may and only when nothing else is wrong.
 */
export async function prepareSource(config: EngineConfig, client: pg.Client, logger: Logger): Promise<{ tables: TableName[]; published: TableName[] }> {
  let facts = await gather(config, client);
  let { checks, actions } = evaluate(config, facts);
  const problems = checks.filter((c) => !c.ok);
  if (problems.length > 0) throw new SourceSetupError(problems);

  // Tables the publication gets only now: their changes since they left it (if they were captured
  // before) never streamed, so their coverage ends (source/coverage.ts).
  const published: TableName[] = [];
  if (actions.length > 0) {
    for (const action of actions) {
      published.push(...(action.kind === "add_tables" ? action.tables : facts.tables.map((t) => t.name)));
      try {
        await client.query(action.sql);
        logger.info({ sql: action.sql }, action.kind === "create_publication" ? "created publication" : "added tables to publication");
      } catch (err) {
        // 42710 duplicate_object: another instance did the same a moment ago, which is fine.
        if ((err as { code?: string }).code !== "42710") {
          throw new SourceSetupError([
            { name: "publication", ok: false, detail: `${action.sql} failed: ${(err as Error).message}`, fix: `run it as the tables' owner: ${action.sql}` },
          ]);
        }
      }
    }
    facts = await gather(config, client);
    ({ checks, actions } = evaluate(config, facts));
    const remaining = checks.filter((c) => !c.ok);
    if (remaining.length > 0 || actions.length > 0) {
      throw new SourceSetupError(
        remaining.length > 0 ? remaining : [{ name: "publication", ok: false, detail: "could not be brought up to date", fix: actions.map((a) => a.sql).join(" ") }],
      );
    }
  }

  for (const c of checks) {
    if (c.warning) logger.warn({ check: c.name, fix: c.fix }, `${c.name}: ${c.detail}`);
    else logger.debug({ check: c.name, detail: c.detail }, "source check passed");
  }
  const publication = facts.publication!;
  if (config.tables.length > 0) {
    const ignored = publication.tables.filter((p) => !config.tables.some((t) => sameTable(t, p)));
    if (ignored.length > 0) {
      logger.info(
        { publication: config.pg.publication, ignored: ignored.length },
        "the publication publishes tables outside TABLE_INCLUDE; their changes are skipped",
      );
    }
  }
  return { tables: facts.tables.map((t) => t.name), published };
}
