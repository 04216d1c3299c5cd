/**
 * Text → JSON fragment encoders, one per column type. pgoutput (protocol 1) and COPY's text format
 * both deliver PostgreSQL's text output, produced under the session settings the engine pins
 * (TimeZone=UTC, DateStyle=ISO, extra_float_digits=3, bytea_output=hex, IntervalStyle=iso_8601),
 * so one encoder serves the snapshot and the stream. Encoders return the JSON text to append to a
 * record line; they never build intermediate objects (this is the engine's hot path).
 */

/** Turns a value's PostgreSQL text output (never NULL) into a JSON fragment. */
export type Encoder = (text: string) => string;

/** How the landing contract represents a scalar type. */
export type ScalarKind = "integer" | "float" | "numeric" | "bool" | "json" | "timestamptz" | "timestamp" | "bytea" | "string";

export type TypeShape = { kind: "scalar"; scalar: ScalarKind } | { kind: "array"; element: TypeShape; delimiter: string };

const quote = (text: string): string => JSON.stringify(text);

/** Integers are written from their digits, so int8 beyond 2^53 stays exact. */
const encodeInteger: Encoder = (text) => text;

const encodeFloat: Encoder = (text) => {
  const c = text.charCodeAt(text.length - 1);
  // Digits end every finite float; NaN, Infinity and -Infinity end in a letter.
  return c >= 48 && c <= 57 ? text : '"' + text + '"';
};

/** numeric keeps its exact digits as a string (NaN, Infinity and -Infinity included). */
const encodeNumeric: Encoder = (text) => '"' + text + '"';

const encodeBool: Encoder = (text) => (text === "t" ? "true" : "false");

/**
 * json and jsonb are embedded as they are (PostgreSQL already validated them), except that line
 * breaks become spaces: json keeps its text exactly as written, so a pretty-printed document would
 * split one NDJSON record across lines. PostgreSQL's json parser rejects raw control characters
 * inside strings, so a CR or LF in json text is always whitespace between tokens: same meaning.
 */
const encodeJson: Encoder = (text) => (text.indexOf("\n") < 0 && text.indexOf("\r") < 0 ? text : text.replace(/[\r\n]/g, " "));

/** "2026-11-21 12:00:00.123456+00" → "2026-11-21T12:00:00.123456Z" (TimeZone=UTC is pinned). */
const encodeTimestamptz: Encoder = (text) => {
  const space = text.indexOf(" ");
  if (space < 0 || text.endsWith(" BC")) return quote(text); // infinity, -infinity, BC dates
  const rest = text.slice(space + 1);
  if (rest.endsWith("+00")) return '"' + text.slice(0, space) + "T" + rest.slice(0, -3) + 'Z"';
  // Another zone can only show up if the server overrides TimeZone; keep the offset, ISO-style.
  const m = /^(.*?)([+-]\d\d)(?::?(\d\d))?(?::?(\d\d))?$/.exec(rest);
  if (!m) return quote(text.replace(" ", "T"));
  return '"' + text.slice(0, space) + "T" + m[1] + m[2] + ":" + (m[3] ?? "00") + '"';
};

/** "2026-11-21 12:00:00.123456" → "2026-11-21T12:00:00.123456". */
const encodeTimestamp: Encoder = (text) => {
  const space = text.indexOf(" ");
  if (space < 0 || text.endsWith(" BC")) return quote(text);
  return '"' + text.slice(0, space) + "T" + text.slice(space + 1) + '"';
};

/** bytea_output=hex: "\x0a0b" → base64. */
const encodeBytea: Encoder = (text) => {
  if (text.startsWith("\\x")) return '"' + Buffer.from(text.slice(2), "hex").toString("base64") + '"';
  return quote(Buffer.from(text, "latin1").toString("base64"));
};

/** Types whose text output never needs JSON escaping are still written as strings. */
const encodeString: Encoder = quote;

const SCALAR_ENCODERS: Record<ScalarKind, Encoder> = {
  integer: encodeInteger,
  float: encodeFloat,
  numeric: encodeNumeric,
  bool: encodeBool,
  json: encodeJson,
  timestamptz: encodeTimestamptz,
  timestamp: encodeTimestamp,
  bytea: encodeBytea,
  string: encodeString,
};

export function encoderFor(shape: TypeShape): Encoder {
  if (shape.kind === "scalar") return SCALAR_ENCODERS[shape.scalar];
  const element = encoderFor(shape.element);
  const delimiter = shape.delimiter;
  return (text) => {
    const c = text.charCodeAt(0);
    // int2vector/oidvector are "arrays" whose text is space-separated: keep those as strings.
    return c === 123 /* { */ || c === 91 /* [ */ ? encodeArray(text, element, delimiter) : quote(text);
  };
}

/**
 * An array literal ("{1,NULL,\"a b\"}", nested "{{1,2},{3,4}}", with optional "[0:1]=" bounds)
 * → JSON array, each element through the element type's encoder.
 */
export function encodeArray(text: string, element: Encoder, delimiter: string): string {
  let pos = 0;
  if (text.charCodeAt(0) === 91 /* [ */) pos = text.indexOf("=") + 1;
  return parseArrayLevel({ text, pos, element, delimiter });
}

interface ArrayParser {
  text: string;
  pos: number;
  element: Encoder;
  delimiter: string;
}

/**
 * Says where an array literal is malformed, never what it holds: the message reaches the logs,
 * which must not contain row values.
 */
function malformed(p: ArrayParser, what: string): Error {
  return new Error(`malformed array literal: ${what} at character ${p.pos + 1} of ${p.text.length}`);
}

function parseArrayLevel(p: ArrayParser): string {
  const { text, delimiter } = p;
  if (text[p.pos] !== "{") throw malformed(p, 'expected "{"');
  p.pos++;
  if (text[p.pos] === "}") {
    p.pos++;
    return "[]";
  }
  let out = "[";
  for (;;) {
    const c = text[p.pos];
    if (c === "{") {
      out += parseArrayLevel(p);
    } else if (c === '"') {
      let value = "";
      let start = ++p.pos;
      for (;;) {
        const d = text[p.pos];
        if (d === undefined) throw malformed(p, "unterminated quoted element");
        if (d === "\\") {
          value += text.slice(start, p.pos) + text[p.pos + 1];
          p.pos += 2;
          start = p.pos;
        } else if (d === '"') {
          value += text.slice(start, p.pos);
          p.pos++;
          break;
        } else p.pos++;
      }
      out += p.element(value);
    } else {
      const start = p.pos;
      while (p.pos < text.length && text[p.pos] !== delimiter && text[p.pos] !== "}") p.pos++;
      const raw = text.slice(start, p.pos).trim();
      if (raw.length === 4 && raw.toUpperCase() === "NULL") out += "null";
      else out += p.element(raw.includes("\\") ? raw.replace(/\\(.)/g, "$1") : raw);
    }
    const next = text[p.pos];
    if (next === delimiter) {
      out += ",";
      p.pos++;
    } else if (next === "}") {
      p.pos++;
      return out + "]";
    } else throw malformed(p, `expected the delimiter "${delimiter}" or "}"`);
  }
}

/** Scalar kind by the base type's name (pg_type.typname in pg_catalog). */
export function scalarKindOf(typname: string): ScalarKind {
  switch (typname) {
    case "int2":
    case "int4":
    case "int8":
    case "oid":
    case "xid":
    case "cid":
      return "integer";
    case "float4":
    case "float8":
      return "float";
    case "numeric":
      return "numeric";
    case "bool":
      return "bool";
    case "json":
    case "jsonb":
      return "json";
    case "timestamptz":
      return "timestamptz";
    case "timestamp":
      return "timestamp";
    case "bytea":
      return "bytea";
    default:
      return "string";
  }
}
