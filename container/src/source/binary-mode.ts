/**
 * Whether a streaming session asks pgoutput for its binary format (PG_BINARY; docs/engine.md
 * "Binary mode"). PostgreSQL 14+ then sends each value in its type's send format, skipping the
 * text output functions in the walsender; the engine decodes every value to the same text (and so
 * the same landing records) itself, which it can for the types in decoding/binary.ts only.
 */
import type { Client } from "pg";
import type { EngineConfig } from "../config";
import type { TypeCatalog } from "./decoding/catalog";
import { SourceSetupError } from "./setup";

/** What the engine remembers across sessions: a session that met an undecodable type streams in text after it. */
export interface WireFormat {
  /** Why binary mode is off for the rest of this process (set when a binary session met such a type). */
  textSince?: string;
  /** The reason for text last logged, so reconnects do not repeat it. */
  loggedReason?: string;
}

export interface BinaryChoice {
  binary: boolean;
  /** Why the session streams in text (undefined when binary). */
  reason?: string;
}

const MIN_VERSION = 140000;

/**
 * Decides for one session. `on` refuses (a permanent SourceSetupError naming the cause) where
 * `auto` falls back to text: a server before 14, or a captured column whose type has no binary
 * decoder. The catalog must know the captured tables' types (prewarmed).
 */
export async function chooseBinary(config: EngineConfig, client: Client, catalog: TypeCatalog, captured: Iterable<string>, versionNum: number, wire: WireFormat): Promise<BinaryChoice> {
  const mode = config.pg.binary;
  if (mode === "off") return { binary: false, reason: "PG_BINARY=off" };
  const refuse = (detail: string, fix: string): never => {
    throw new SourceSetupError([{ name: "binary mode", ok: false, detail: `PG_BINARY=on, but ${detail}`, fix }]);
  };
  if (versionNum < MIN_VERSION) {
    const detail = `PostgreSQL ${Math.floor(versionNum / 10000)} has no pgoutput binary mode (it needs 14 or later)`;
    if (mode === "on") refuse(detail, "set PG_BINARY=auto or off");
    return { binary: false, reason: detail };
  }
  if (wire.textSince !== undefined) {
    if (mode === "on") refuse(wire.textSince, "set PG_BINARY=auto (text where needed) or off");
    return { binary: false, reason: wire.textSince };
  }
  const undecodable = await undecodableColumns(client, catalog, [...captured]);
  if (undecodable.length > 0) {
    const detail = `the engine cannot decode the binary format of ${undecodable.slice(0, 5).join(", ")}${undecodable.length > 5 ? ` and ${undecodable.length - 5} more` : ""}`;
    if (mode === "on") refuse(detail, "set PG_BINARY=auto (text for this session) or off, or leave these columns out of the publication");
    return { binary: false, reason: detail };
  }
  return { binary: true };
}

/** "schema.table.column (type)" of every captured column whose type has no binary decoder. */
async function undecodableColumns(client: Client, catalog: TypeCatalog, tables: string[]): Promise<string[]> {
  if (tables.length === 0) return [];
  const { rows } = await client.query<{ name: string; type: number }>(
    `SELECT n.nspname || '.' || c.relname || '.' || a.attname AS name, a.atttypid::int AS type
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE n.nspname || '.' || c.relname = ANY($1::text[])
      ORDER BY 1`,
    [tables],
  );
  await catalog.loadTypes(client, catalog.missingTypes(rows.map((r) => r.type)));
  return rows.filter((r) => catalog.binaryDecoder(r.type) === undefined).map((r) => `${r.name} (${catalog.typeName(r.type)})`);
}
