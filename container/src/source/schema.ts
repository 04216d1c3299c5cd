/**
 * A captured table's schema as the landing contract describes it (the schema manifest): the
 * columns in the order records carry them, each with its PostgreSQL type (format_type), its
 * nullability and the Spark/Delta type readers must give it; and the key silver merges on.
 *
 * Readers never guess types or keys from the data: the Databricks notebooks and the local
 * lakehouse read the manifest objects the batcher writes from this (docs/engine.md, "Schema
 * manifests"). The column list comes from the source (pgoutput's Relation message, or the
 * snapshot's COPY column list), so it always matches the records; the catalog only adds what
 * pgoutput does not say (declared type text, NOT NULL, the primary key).
 */
import { createHash } from "node:crypto";
import type { Client } from "pg";

/** What loadTableDetails reads from the catalogs for one table. */
export interface TableDetails {
  relid: number;
  /** By column name. */
  columns: Map<string, { pgType: string; notNull: boolean }>;
  /** Primary-key columns in key order; empty when the table has none. */
  primaryKey: string[];
  replicaIdentity: "default" | "full" | "index" | "nothing";
  /** The replica identity index's columns (REPLICA IDENTITY USING INDEX). */
  identityIndex: string[];
  /** format_type() of the source's own (type, typmod) pairs, by `${typeOid}:${typmod}`. */
  typeNames: Map<string, string>;
}

export interface SourceColumn {
  name: string;
  typeOid: number;
  typmod: number;
}

export interface ManifestColumn {
  name: string;
  /** `format_type(atttypid, atttypmod)`, e.g. `numeric(12,2)`, `timestamp with time zone`, `text[]`. */
  pg_type: string;
  nullable: boolean;
  /** The Spark SQL / Delta type of the column under the landing contract, e.g. `DECIMAL(12,2)`. */
  spark_type: string;
}

/** The schema manifest's content, apart from its position (which is its object name). */
export interface TableSchema {
  /** "schema.table" */
  table: string;
  columns: ManifestColumn[];
  primary_key: string[];
  replica_identity: TableDetails["replicaIdentity"];
  /**
   * The columns that identify a row for silver's MERGE: the primary key; without one, the replica
   * identity index's columns; empty when there is neither (REPLICA IDENTITY FULL or NOTHING on a
   * table without a key: silver refuses such a table unless a key is configured).
   */
  key: string[];
}

/** The pg_type facts the Spark mapping needs (TypeCatalog keeps them per type it loaded). */
export interface TypeFacts {
  typname: string;
  typtype: string;
  typbasetype: number;
  /** A domain's typmod of its base type (numeric(12,2) under a domain), else -1. */
  typtypmod: number;
  typelem: number;
  typcategory: string;
  builtin: boolean;
}

/** Spark's DECIMAL holds at most 38 digits. */
const SPARK_MAX_PRECISION = 38;

/** Array elements that Spark's JSON reader parses straight from the landing values. */
const TYPED_ARRAY_ELEMENTS = /^(SMALLINT|INT|BIGINT|FLOAT|DOUBLE|BOOLEAN|STRING|DECIMAL\(\d+,\d+\))$/;

/**
 * numeric(p,s) → DECIMAL(p,s) where Spark can hold it exactly; unconstrained numeric (any scale),
 * or more than 38 digits, stays STRING: the landing value is the exact digits either way.
 * PostgreSQL 15+ also allows a negative scale (rounding to tens, hundreds…) and a scale above the
 * precision: both fit a DECIMAL with scale 0…p.
 */
function decimalType(typmod: number): string {
  if (typmod < 4) return "STRING";
  const precision = ((typmod - 4) >> 16) & 0xffff;
  const scale = ((((typmod - 4) & 0x7ff) ^ 1024) - 1024);
  const digits = scale < 0 ? precision - scale : Math.max(precision, scale);
  const fraction = Math.max(scale, 0);
  return digits <= SPARK_MAX_PRECISION ? `DECIMAL(${digits},${fraction})` : "STRING";
}

/** The Spark type of a column of type `oid` with `typmod` (see docs/engine.md, "Type mapping"). */
export function sparkTypeOf(lookup: (oid: number) => TypeFacts | undefined, oid: number, typmod: number, depth = 0): string {
  const t = lookup(oid);
  if (!t || depth > 16) return "STRING";
  if (t.typtype === "d") return sparkTypeOf(lookup, t.typbasetype, t.typtypmod, depth + 1);
  if (t.typcategory === "A" && t.typelem !== 0) {
    // int2vector and oidvector print as space-separated text, which the engine lands as a string.
    if (t.typname === "int2vector" || t.typname === "oidvector") return "STRING";
    const element = sparkTypeOf(lookup, t.typelem, typmod, depth + 1);
    return `ARRAY<${TYPED_ARRAY_ELEMENTS.test(element) ? element : "STRING"}>`;
  }
  if (t.typtype !== "b" || !t.builtin) return "STRING"; // enums, ranges, composites, extension types
  switch (t.typname) {
    case "int2":
      return "SMALLINT";
    case "int4":
      return "INT";
    case "int8":
    case "oid":
    case "xid":
    case "cid":
      return "BIGINT";
    case "float4":
      return "FLOAT";
    case "float8":
      return "DOUBLE";
    case "numeric":
      return decimalType(typmod);
    case "bool":
      return "BOOLEAN";
    case "date":
      return "DATE";
    case "timestamptz":
      return "TIMESTAMP";
    case "timestamp":
      return "TIMESTAMP_NTZ";
    case "bytea":
      return "BINARY";
    default:
      return "STRING"; // text, varchar, uuid, json/jsonb (JSON text), time, interval, inet, …
  }
}

/**
 * Reads the catalog for a table's manifest. `columns` are the source's (the Relation message's, or
 * the snapshot's): their declared type text comes from format_type() of their own type and typmod,
 * so it is right even when DDL has renamed or dropped the column since.
 */
export async function loadTableDetails(client: Client, relid: number, columns: SourceColumn[]): Promise<TableDetails> {
  const { rows } = await client.query<{ name: string; pg_type: string; not_null: boolean }>(
    `SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS pg_type, a.attnotnull AS not_null
       FROM pg_attribute a WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [relid],
  );
  const keys = await client.query<{ replident: string; pk: string[] | null; ri: string[] | null }>(
    `SELECT c.relreplident::text AS replident,
            (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM pg_index i
               CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE i.indrelid = c.oid AND i.indisprimary) AS pk,
            (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM pg_index i
               CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE i.indrelid = c.oid AND i.indisreplident) AS ri
       FROM pg_class c WHERE c.oid = $1::oid`,
    [relid],
  );
  const formatted = await client.query<{ oid: number; typmod: number; name: string }>(
    "SELECT t.oid::int AS oid, t.typmod::int AS typmod, format_type(t.oid, t.typmod) AS name FROM unnest($1::oid[], $2::int[]) AS t(oid, typmod)",
    [columns.map((c) => c.typeOid), columns.map((c) => c.typmod)],
  );
  const k = keys.rows[0];
  const identity = ({ d: "default", f: "full", i: "index", n: "nothing" } as const)[(k?.replident ?? "d") as "d" | "f" | "i" | "n"] ?? "default";
  return {
    relid,
    columns: new Map(rows.map((r) => [r.name, { pgType: r.pg_type, notNull: r.not_null }])),
    primaryKey: k?.pk ?? [],
    replicaIdentity: identity,
    identityIndex: k?.ri ?? [],
    typeNames: new Map(formatted.rows.map((r) => [`${r.oid}:${r.typmod}`, r.name])),
  };
}

/**
 * The manifest content for `columns` (in record order) of `table`. A column the catalog no longer
 * has under that name (DDL after the change being decoded) keeps the nullability `previous` (the
 * table's last manifest) gave it, else counts as nullable.
 */
export function tableSchema(table: string, columns: SourceColumn[], details: TableDetails, lookup: (oid: number) => TypeFacts | undefined, previous?: TableSchema): TableSchema {
  const names = new Set(columns.map((c) => c.name));
  const primaryKey = details.primaryKey.filter((n) => names.has(n));
  const key = primaryKey.length > 0 ? primaryKey : details.replicaIdentity === "index" ? details.identityIndex.filter((n) => names.has(n)) : [];
  return {
    table,
    columns: columns.map((c) => {
      const declared = details.columns.get(c.name);
      const before = previous?.columns.find((p) => p.name === c.name);
      return {
        name: c.name,
        pg_type: details.typeNames.get(`${c.typeOid}:${c.typmod}`) ?? declared?.pgType ?? "unknown",
        nullable: declared ? !declared.notNull : (before?.nullable ?? true),
        spark_type: sparkTypeOf(lookup, c.typeOid, c.typmod),
      };
    }),
    primary_key: primaryKey,
    replica_identity: details.replicaIdentity,
    key,
  };
}

/** Equal schemas, equal fingerprints: a manifest is written only when the fingerprint changes. */
export function schemaFingerprint(schema: TableSchema): string {
  return createHash("sha256").update(JSON.stringify(schema)).digest("hex").slice(0, 32);
}
