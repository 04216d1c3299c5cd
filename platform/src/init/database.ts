/**
 * The live database check of `init`: the engine's own doctor checks (container/src/cli.ts
 * sourceDoctorChecks, read-only) on the connection the wizard collected, and the tables a user may
 * capture with the key each one would be captured by.
 */
import pg from "pg";
import type { SourceCheck } from "@postgres-cdc-multicloud/cdc-engine";

export interface Connection {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
  sslmode: "disable" | "require" | "verify-full";
  publication: string;
  slot: string;
  tables: string[];
}

export interface CandidateTable {
  name: string;
  /** How updates and deletes identify a row: "primary key (id)", "replica identity full", …; undefined: nothing usable. */
  key?: string;
}

/** The engine's doctor checks for the database side, as `cdc-engine doctor` prints them. */
export async function checkDatabase(c: Connection, report?: (check: SourceCheck) => void): Promise<SourceCheck[]> {
  const engine = require("@postgres-cdc-multicloud/cdc-engine") as typeof import("@postgres-cdc-multicloud/cdc-engine");
  const config = engine.loadConfig({
    PG_HOST: c.host,
    PG_PORT: String(c.port),
    PG_DATABASE: c.database,
    PG_USER: c.user,
    PG_PASSWORD: c.password,
    PG_SSLMODE: c.sslmode,
    PG_PUBLICATION: c.publication,
    PG_SLOT: c.slot,
    ...(c.tables.length > 0 ? { TABLE_INCLUDE: c.tables.join(",") } : {}),
    // Never written: init checks the database only; the sink does not exist before `pulumi up`.
    SINK_URL: "file:///nonexistent-init-check",
  });
  return engine.sourceDoctorChecks(config, report);
}

/** Ordinary and partitioned tables outside the system schemas, with their key or replica identity. */
export async function listTables(c: Connection): Promise<CandidateTable[]> {
  const engine = require("@postgres-cdc-multicloud/cdc-engine") as typeof import("@postgres-cdc-multicloud/cdc-engine");
  const config = engine.loadConfig({
    PG_HOST: c.host, PG_PORT: String(c.port), PG_DATABASE: c.database, PG_USER: c.user, PG_PASSWORD: c.password, PG_SSLMODE: c.sslmode,
    SINK_URL: "file:///nonexistent-init-check",
  });
  const client = new pg.Client(engine.pgClientConfig(config, "cdc-platform init"));
  client.on("error", () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query<{ schema: string; table: string; replident: string; pk: string | null; idx: string | null; idxcols: string | null }>(`
      SELECT n.nspname AS schema, c.relname AS table, c.relreplident AS replident,
        (SELECT string_agg(a.attname, ', ' ORDER BY k.ord) FROM pg_index i
           CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
          WHERE i.indrelid = c.oid AND i.indisprimary) AS pk,
        (SELECT ic.relname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = c.oid AND i.indisreplident) AS idx,
        (SELECT string_agg(a.attname, ', ' ORDER BY k.ord) FROM pg_index i
           CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
          WHERE i.indrelid = c.oid AND i.indisreplident) AS idxcols
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
        AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
      ORDER BY 1, 2`);
    return rows.map((r) => ({
      name: `${r.schema}.${r.table}`,
      key:
        r.replident === "f"
          ? "replica identity full"
          : r.replident === "i" && r.idx
            ? `replica identity index ${r.idx} (${r.idxcols})`
            : r.replident === "d" && r.pk
              ? `primary key (${r.pk})`
              : undefined,
    }));
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function formatCheck(check: SourceCheck): string {
  return check.ok ? `ok   ${check.name}: ${check.detail}` : `FAIL ${check.name}: ${check.detail}${check.fix ? `\n     fix: ${check.fix}` : ""}`;
}
