/**
 * What the encoders need to know about types and keys that pgoutput does not say: the base type of
 * domains, the element type (and delimiter) of arrays, enums, and each table's primary key (under
 * REPLICA IDENTITY FULL every column is flagged as "key", so the real key comes from pg_index).
 * Filled from the catalogs on a normal connection, before the stream needs it.
 */
import type { Client } from "pg";
import { encoderFor, scalarKindOf, type Encoder, type TypeShape } from "./values";
import { binaryDecoderFor, type BinaryDecoder, type BinaryTypeInfo } from "./binary";
import { loadTableDetails, tableSchema, type SourceColumn, type TableDetails, type TableSchema, type TypeFacts } from "../schema";

export interface TypeRow extends TypeFacts {
  oid: number;
  typdelim: string;
}

const fallback = encoderFor({ kind: "scalar", scalar: "string" });

export class TypeCatalog {
  private readonly encoders = new Map<number, Encoder>();
  private readonly shapes = new Map<number, TypeShape>();
  /** Per type, how pgoutput's binary mode values decode (undefined: the engine cannot). */
  private readonly binaryDecoders = new Map<number, BinaryDecoder | undefined>();
  private readonly primaryKeys = new Map<number, string[]>();
  private readonly types = new Map<number, TypeRow>();
  /** Nullability, declared types and keys per table, by relation signature (see tableDetails). */
  private readonly details = new Map<string, TableDetails>();
  /** Each table's last manifest content, for columns the catalog no longer knows by name. */
  private readonly schemas = new Map<string, TableSchema>();

  encoder(oid: number): Encoder | undefined {
    return this.encoders.get(oid);
  }

  shape(oid: number): TypeShape | undefined {
    return this.shapes.get(oid);
  }

  /** The decoder of the type's send format (pgoutput binary mode), or undefined when there is none. */
  binaryDecoder(oid: number): BinaryDecoder | undefined {
    return this.binaryDecoders.get(oid);
  }

  /** The type's name (pg_type.typname) when loaded, for messages. */
  typeName(oid: number): string {
    return this.types.get(oid)?.typname ?? `type ${oid}`;
  }

  /** The primary key column names of a table (by pg_class oid), or undefined when not loaded yet. */
  primaryKey(relid: number): string[] | undefined {
    return this.primaryKeys.get(relid);
  }

  /** A table's declared types, nullability and keys, loaded for this relation signature. */
  tableDetails(signature: string): TableDetails | undefined {
    return this.details.get(signature);
  }

  /**
   * Loads (again) what the schema manifest needs beyond pgoutput's Relation message. Keyed by the
   * relation's signature so that a changed relation reloads while a replayed one does not.
   */
  async loadTableDetails(client: Client, relid: number, signature: string, columns: SourceColumn[]): Promise<TableDetails> {
    const details = await loadTableDetails(client, relid, columns);
    this.details.set(signature, details);
    this.primaryKeys.set(relid, details.primaryKey);
    return details;
  }

  /** The manifest content of `columns` of `table` (see tableSchema), remembered for the next one. */
  tableSchema(table: string, columns: SourceColumn[], details: TableDetails): TableSchema {
    const schema = tableSchema(table, columns, details, (o) => this.types.get(o), this.schemas.get(table));
    this.schemas.set(table, schema);
    return schema;
  }

  missingTypes(oids: Iterable<number>): number[] {
    const missing = new Set<number>();
    for (const oid of oids) if (!this.encoders.has(oid)) missing.add(oid);
    return [...missing];
  }

  async loadTypes(client: Client, oids: number[]): Promise<void> {
    if (oids.length === 0) return;
    const { rows } = await client.query<TypeRow>(
      `WITH RECURSIVE t AS (
         SELECT oid, typname, typtype, typbasetype, typtypmod, typelem, typcategory, typdelim, typnamespace FROM pg_type WHERE oid = ANY($1::oid[])
         UNION
         SELECT p.oid, p.typname, p.typtype, p.typbasetype, p.typtypmod, p.typelem, p.typcategory, p.typdelim, p.typnamespace
           FROM pg_type p JOIN t ON p.oid = t.typbasetype OR p.oid = t.typelem
       )
       SELECT oid::int AS oid, typname::text AS typname, typtype::text AS typtype, typbasetype::int AS typbasetype, typtypmod::int AS typtypmod,
              typelem::int AS typelem, typcategory::text AS typcategory, typdelim::text AS typdelim,
              typnamespace = 'pg_catalog'::regnamespace AS builtin
         FROM t`,
      [oids],
    );
    const byOid = new Map(rows.map((r) => [r.oid, r]));
    for (const row of rows) this.types.set(row.oid, row);
    const shapeOf = (oid: number, depth = 0): TypeShape => {
      const row = byOid.get(oid);
      if (!row || depth > 16) return { kind: "scalar", scalar: "string" };
      if (row.typtype === "d") return shapeOf(row.typbasetype, depth + 1);
      if (row.typcategory === "A" && row.typelem !== 0) {
        const element = byOid.get(row.typelem);
        return { kind: "array", element: shapeOf(row.typelem, depth + 1), delimiter: element?.typdelim ?? "," };
      }
      if (row.typtype === "b" && row.builtin) return { kind: "scalar", scalar: scalarKindOf(row.typname) };
      return { kind: "scalar", scalar: "string" }; // enums, ranges, composites, extension types
    };
    const binaryInfo = (oid: number, depth = 0): BinaryTypeInfo | undefined => {
      const row = byOid.get(oid);
      if (!row || depth > 16) return undefined;
      if (row.typtype === "d") return { kind: "domain", base: binaryInfo(row.typbasetype, depth + 1) };
      if (row.typtype === "e") return { kind: "enum" };
      if (row.typcategory === "A" && row.typelem !== 0) return { kind: "array", element: binaryInfo(row.typelem, depth + 1), delimiter: byOid.get(row.typelem)?.typdelim ?? ",", typname: row.typname };
      if (row.typtype === "b" && row.builtin) return { kind: "base", typname: row.typname };
      return { kind: "other" };
    };
    for (const oid of oids) {
      this.binaryDecoders.set(oid, binaryDecoderFor(binaryInfo(oid)));
      const shape: TypeShape = byOid.has(oid) ? shapeOf(oid) : { kind: "scalar", scalar: "string" };
      this.shapes.set(oid, shape);
      this.encoders.set(oid, byOid.has(oid) ? encoderFor(shape) : fallback);
    }
  }

  async loadPrimaryKeys(client: Client, relids: number[]): Promise<void> {
    if (relids.length === 0) return;
    const { rows } = await client.query<{ relid: number; columns: string[] | null }>(
      `SELECT c.oid::int AS relid,
              (SELECT array_agg(a.attname::text ORDER BY k.ord)
                 FROM pg_index i
                 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                WHERE i.indrelid = c.oid AND i.indisprimary) AS columns
         FROM pg_class c WHERE c.oid = ANY($1::oid[])`,
      [relids],
    );
    for (const relid of relids) this.primaryKeys.set(relid, rows.find((r) => r.relid === relid)?.columns ?? []);
  }
}
