/**
 * From landing objects to Kafka messages: which topic a landing key goes to, and for each record
 * line its message key (the row's key columns as a JSON object, their values byte for byte as in
 * the record), its `__lsn`/`__seq` headers and its commit time. Values are the record lines
 * themselves, untouched, so a message value is exactly a landing record.
 */

/** What a landing key written by the batcher means for Kafka. */
export type LandingTarget =
  | { kind: "state"; slot: string }
  | { kind: "probe" }
  | { kind: "manifest"; table: string; since: string }
  | { kind: "data"; table: string };

/** Landing keys: `_cdc_state/<slot>.json`, `_cdc_probe/…`, `cdc.<s>.<t>/_schema/<pos>.json`, `cdc.<s>.<t>/<partition…>/<name>.ndjson`. */
export function landingTarget(key: string): LandingTarget | undefined {
  const state = /^_cdc_state\/([^/]+)\.json$/.exec(key);
  if (state) return { kind: "state", slot: state[1] };
  if (key.startsWith("_cdc_probe/")) return { kind: "probe" };
  const manifest = /^cdc\.([^/]+)\/_schema\/([0-9A-F]{16}-\d{10})\.json$/.exec(key);
  if (manifest) return { kind: "manifest", table: manifest[1], since: manifest[2] };
  const data = /^cdc\.([^/]+)\/.+\.ndjson$/.exec(key);
  if (data) return { kind: "data", table: data[1] };
  return undefined;
}

/**
 * The top-level fields of one JSON object line, each as its raw JSON text (so `int8` values beyond
 * 2^53 and numeric strings stay exactly as written). Only for well-formed lines (the engine's own).
 * With `wanted`, scanning stops as soon as those fields are found (records are long, keys early).
 */
export function topLevelFields(line: string, wanted?: ReadonlySet<string>): Map<string, string> {
  const fields = new Map<string, string>();
  const n = line.length;
  let i = line.indexOf("{") + 1;
  const stringEnd = (from: number): number => {
    // from is at the opening quote; returns the index after the closing one.
    for (let j = from + 1; j < n; j++) {
      const c = line.charCodeAt(j);
      if (c === 92) j++;
      else if (c === 34) return j + 1;
    }
    throw new Error("unterminated string in record");
  };
  const isSpace = (c: number) => c === 32 || c === 9 || c === 10 || c === 13;
  while (i < n) {
    let c = line.charCodeAt(i);
    if (isSpace(c) || c === 44) {
      i++;
      continue;
    }
    if (c === 125) break; // }
    const nameEnd = stringEnd(i);
    const raw = line.slice(i + 1, nameEnd - 1);
    const name = raw.includes("\\") ? (JSON.parse(line.slice(i, nameEnd)) as string) : raw;
    i = nameEnd;
    while (i < n && (isSpace(line.charCodeAt(i)) || line.charCodeAt(i) === 58)) i++; // spaces and ':'
    const start = i;
    let depth = 0;
    for (; i < n; i++) {
      c = line.charCodeAt(i);
      if (c === 34) {
        i = stringEnd(i) - 1;
      } else if (c === 123 || c === 91) depth++;
      else if (c === 125 || c === 93) {
        if (depth === 0) break;
        depth--;
      } else if (c === 44 && depth === 0) break;
    }
    if (!wanted || wanted.has(name)) {
      fields.set(name, line.slice(start, i).trimEnd());
      if (wanted && fields.size === wanted.size) break;
    }
  }
  return fields;
}

/** Record fields that are the engine's, not the row's. */
const isEngineField = (name: string): boolean => name.startsWith("__");

const ENGINE_FIELDS = ["__op", "__lsn", "__seq", "__ts_ms"];
const wantedCache = new WeakMap<readonly string[], ReadonlySet<string>>();
/** The fields a keyed record's message needs (cached per key-column list). */
function wantedFields(keyColumns: readonly string[]): ReadonlySet<string> {
  let wanted = wantedCache.get(keyColumns);
  if (!wanted) wantedCache.set(keyColumns, (wanted = new Set([...ENGINE_FIELDS, ...keyColumns])));
  return wanted;
}

export interface RecordMessage {
  /** The JSON object of the key columns, e.g. `{"id":42}`; `{}` for `t` and `b` records. */
  key: string;
  op: string;
  lsn: string;
  seq: string;
  tsMs: bigint;
  /** `t` and `b` records concern the whole table: they go to every partition. */
  tableWide: boolean;
}

/**
 * The message for one record line. `keyColumns` are the table's key (from its schema manifest);
 * empty for a table without one, whose rows are identified by all their columns (REPLICA IDENTITY
 * FULL: its deletes carry every old value, so a row's delete has the key of its insert).
 */
export function recordMessage(line: string, keyColumns: readonly string[]): RecordMessage {
  const fields = topLevelFields(line, keyColumns.length > 0 ? wantedFields(keyColumns) : undefined);
  const op = JSON.parse(fields.get("__op") ?? '""') as string;
  const lsn = fields.get("__lsn");
  const seq = fields.get("__seq");
  if (lsn === undefined || seq === undefined) throw new Error(`record without __lsn/__seq: ${line.slice(0, 200)}`);
  const tsMs = BigInt(fields.get("__ts_ms") ?? "0");
  const tableWide = op === "t" || op === "b";
  let key = "{}";
  if (!tableWide) {
    const names = keyColumns.length > 0 ? keyColumns : [...fields.keys()].filter((f) => !isEngineField(f));
    key = `{${names.map((c) => `${JSON.stringify(c)}:${fields.get(c) ?? "null"}`).join(",")}}`;
  }
  return { key, op, lsn, seq, tsMs, tableWide };
}
