/**
 * The schema manifests of the landing contract (docs/engine.md, "Schema manifests"): the engine
 * writes `cdc.<schema>.<table>/_schema/<LSN>-<seq>.json` before the first object of a table and
 * whenever its schema changes. Readers take every type and the key from them, never from the data.
 *
 * A bronze table holds the records of every version, so its columns are the union of all
 * manifests' columns (in the order they first appeared), each typed as its newest manifest says.
 */
import { z } from "zod";

const SPARK_TYPE = /^(SMALLINT|INT|BIGINT|FLOAT|DOUBLE|BOOLEAN|STRING|DATE|TIMESTAMP|TIMESTAMP_NTZ|BINARY|DECIMAL\(\d{1,2},\d{1,2}\)|ARRAY<(SMALLINT|INT|BIGINT|FLOAT|DOUBLE|BOOLEAN|STRING|DECIMAL\(\d{1,2},\d{1,2}\))>)$/;

export const ManifestSchema = z.object({
  version: z.literal(1),
  table: z.string().min(3),
  since_lsn: z.number().int().nonnegative(),
  since_seq: z.number().int().nonnegative(),
  columns: z
    .array(
      z.object({
        name: z.string().min(1),
        pg_type: z.string(),
        nullable: z.boolean(),
        spark_type: z.string().regex(SPARK_TYPE, "is not a Spark type of the landing contract"),
      }),
    ),
  primary_key: z.array(z.string()),
  replica_identity: z.enum(["default", "full", "index", "nothing"]),
  key: z.array(z.string()),
});
export type SchemaManifest = z.infer<typeof ManifestSchema>;

export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ManifestError";
  }
}

/** Parses one manifest object's text; `where` names it in the error. */
export function parseManifest(text: string, where: string): SchemaManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ManifestError(`schema manifest ${where} is not valid JSON (${(err as Error).message}); it is written by the engine, restore it from the engine's output or delete it and restart the engine`);
  }
  const parsed = ManifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ManifestError(`schema manifest ${where}: ${issue.path.join(".") || "(root)"} ${issue.message}; it is written by the engine (docs/engine.md, "Schema manifests")`);
  }
  return parsed.data;
}

export interface BronzeColumn {
  name: string;
  sparkType: string;
}

/** The columns of a bronze table that holds records of every manifest version (oldest first). */
export function bronzeColumns(manifests: SchemaManifest[]): BronzeColumn[] {
  const order: string[] = [];
  const types = new Map<string, string>();
  for (const m of manifests) {
    for (const c of m.columns) {
      if (!types.has(c.name)) order.push(c.name);
      types.set(c.name, c.spark_type);
    }
  }
  return order.map((name) => ({ name, sparkType: types.get(name)! }));
}

/** The key silver merges on: the newest manifest's (primary key, or the replica identity index). */
export function manifestKey(manifests: SchemaManifest[]): string[] {
  return manifests.length > 0 ? manifests[manifests.length - 1].key : [];
}

/** DuckDB's spelling of a landing-contract Spark type. */
export function duckType(sparkType: string): string {
  const array = /^ARRAY<(.+)>$/.exec(sparkType);
  if (array) return `${duckType(array[1])}[]`;
  switch (sparkType) {
    case "INT":
      return "INTEGER";
    case "STRING":
      return "VARCHAR";
    case "TIMESTAMP":
      return "TIMESTAMPTZ";
    case "TIMESTAMP_NTZ":
      return "TIMESTAMP";
    case "BINARY":
      return "BLOB";
    default:
      return sparkType; // SMALLINT, BIGINT, FLOAT, DOUBLE, BOOLEAN, DATE, DECIMAL(p,s)
  }
}
