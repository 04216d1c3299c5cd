/**
 * PostgreSQL text output → JSON bytes, written in place into a table buffer: COPY … TO STDOUT rows
 * for the snapshot (transcodeRow) and pgoutput values for the stream (writeWireValue).
 *
 * COPY … TO STDOUT (text format) rows → NDJSON record bytes, transcoded byte for byte into the
 * table buffer: the snapshot's hot path. COPY's text escaping (\\ \n \t \r \b \f) is already JSON's,
 * so most columns need no string at all; types whose JSON differs from their text (timestamps,
 * bytea, arrays) go through the same encoders as the stream.
 */
import { copyFieldText } from "./copy-field";
import type { Encoder, TypeShape } from "./values";

export const enum CopyKind {
  /** Integers: the digits as they are. */
  Raw,
  /** json/jsonb: embedded, COPY escapes undone. */
  Json,
  Float,
  Bool,
  /** numeric: digits in quotes. */
  Quoted,
  /** Any text-like value: a JSON string. */
  Text,
  /** timestamptz: "2026-11-21 12:00:00.5+00" → "2026-11-21T12:00:00.5Z" in place. */
  Timestamptz,
  /** timestamp: "2026-11-21 12:00:00.5" → "2026-11-21T12:00:00.5" in place. */
  Timestamp,
  /** bytea (hex text, "\\x…") → base64, decoded and encoded piece by piece from the source bytes. */
  Bytea,
  /** Through the column's Encoder (arrays, unusual timestamps, bytea that is not hex). */
  Other,
}

export function copyKindOf(shape: TypeShape): CopyKind {
  if (shape.kind === "array") return CopyKind.Other;
  switch (shape.scalar) {
    case "integer":
      return CopyKind.Raw;
    case "json":
      return CopyKind.Json;
    case "float":
      return CopyKind.Float;
    case "bool":
      return CopyKind.Bool;
    case "numeric":
      return CopyKind.Quoted;
    case "string":
      return CopyKind.Text;
    case "timestamptz":
      return CopyKind.Timestamptz;
    case "timestamp":
      return CopyKind.Timestamp;
    case "bytea":
      return CopyKind.Bytea;
    default:
      return CopyKind.Other;
  }
}

export interface CopyColumn {
  /** `,"name":` as UTF-8. */
  prefix: Buffer;
  kind: CopyKind;
  encode: Encoder;
}

const HEX = "0123456789abcdef";
export const NULL_BYTES = Buffer.from("null");
export const TRUE_BYTES = Buffer.from("true");
export const FALSE_BYTES = Buffer.from("false");

/** Buffer.copy costs more than a loop for the short values of most columns. */
export function copyBytes(src: Buffer, from: number, to: number, out: Buffer, pos: number): number {
  if (to - from > 48) return pos + src.copy(out, pos, from, to);
  for (let i = from; i < to; i++) out[pos++] = src[i];
  return pos;
}

/**
 * copyBytes for json text: CR and LF become spaces (see encodeJson in values.ts for why that keeps
 * the meaning). UTF-8 continuation bytes are never 0x0a or 0x0d, so bytewise is safe.
 */
function copyJsonBytes(src: Buffer, from: number, to: number, out: Buffer, pos: number): number {
  // Most documents have no line break: find that out with memchr, then copy as any value.
  const value = src.subarray(from, to);
  if (value.indexOf(0x0a) < 0 && value.indexOf(0x0d) < 0) return copyBytes(src, from, to, out, pos);
  for (let i = from; i < to; i++) {
    const b = src[i];
    out[pos++] = b === 0x0a || b === 0x0d ? 0x20 : b;
  }
  return pos;
}

export function put(out: Buffer, pos: number, bytes: Buffer): number {
  for (let i = 0; i < bytes.length; i++) out[pos + i] = bytes[i];
  return pos + bytes.length;
}

/** The most bytes `transcodeRow` may write for a row of `rowBytes` input bytes. */
export function worstCase(rowBytes: number, fixedBytes: number): number {
  // \u00XX for a control byte is 6 bytes; encoders never grow a value by more than that.
  return fixedBytes + 8 * rowBytes + 64;
}

/** Writes a non-negative integer's decimal digits at out[pos]; returns the new position. */
export function putInt(out: Buffer, pos: number, n: number): number {
  if (n === 0) {
    out[pos] = 48;
    return pos + 1;
  }
  let digits = 0;
  for (let m = n; m > 0; m = Math.floor(m / 10)) digits++;
  for (let i = pos + digits - 1; i >= pos; i--) {
    out[i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
  return pos + digits;
}

/** Undoes one COPY escape starting at src[j] (a backslash) into JSON-string bytes; returns the next j. */
function escapeInString(src: Buffer, j: number, end: number, out: Buffer, o: { pos: number }): number {
  const c = src[j + 1];
  let pos = o.pos;
  switch (c) {
    case 0x5c: // \\ → \\
    case 0x6e: // \n
    case 0x74: // \t
    case 0x72: // \r
    case 0x62: // \b
    case 0x66: // \f
      out[pos++] = 0x5c;
      out[pos++] = c;
      o.pos = pos;
      return j + 2;
    case 0x76: // \v → \u000b
      o.pos = putControl(out, pos, 0x0b);
      return j + 2;
    default: {
      let value = -1;
      let next = j + 2;
      if (c >= 0x30 && c <= 0x37) {
        value = c - 0x30;
        while (next < end && next < j + 4 && src[next] >= 0x30 && src[next] <= 0x37) value = value * 8 + src[next++] - 0x30;
      } else if (c === 0x78 && j + 2 < end && isHex(src[j + 2])) {
        value = hexValue(src[j + 2]);
        next = j + 3;
        if (next < end && isHex(src[next])) value = value * 16 + hexValue(src[next++]);
      } else value = c; // an escaped ordinary character is that character
      if (value < 0x20) pos = putControl(out, pos, value);
      else if (value === 0x22 || value === 0x5c) {
        out[pos++] = 0x5c;
        out[pos++] = value;
      } else out[pos++] = value & 0xff;
      o.pos = pos;
      return next;
    }
  }
}

const isHex = (b: number) => (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66) || (b >= 0x41 && b <= 0x46);
const hexValue = (b: number) => (b <= 0x39 ? b - 0x30 : (b | 0x20) - 0x61 + 10);

export function putControl(out: Buffer, pos: number, b: number): number {
  out[pos++] = 0x5c;
  out[pos++] = 0x75;
  out[pos++] = 0x30;
  out[pos++] = 0x30;
  out[pos++] = HEX.charCodeAt(b >> 4);
  out[pos++] = HEX.charCodeAt(b & 15);
  return pos;
}

const cursor = { pos: 0 };

/**
 * Writes the columns of one COPY row (src[start, end), newline excluded) as `,"name":value…` at
 * out[pos]; returns the new position. Throws when the row does not have one field per column.
 */
export function transcodeRow(src: Buffer, start: number, end: number, columns: CopyColumn[], out: Buffer, pos: number): number {
  let p = start;
  const n = columns.length;
  for (let i = 0; i < n; i++) {
    const column = columns[i];
    let fe: number;
    if (i === n - 1) {
      const tab = src.indexOf(9, p);
      if (tab >= 0 && tab < end) throw new Error(`COPY row has more fields than the ${n} columns`);
      fe = end;
    } else {
      fe = src.indexOf(9, p);
      if (fe < 0 || fe > end) throw new Error(`COPY row has fewer fields than the ${n} columns`);
    }
    pos = put(out, pos, column.prefix);
    if (fe - p === 2 && src[p] === 0x5c && src[p + 1] === 0x4e) pos = put(out, pos, NULL_BYTES);
    else pos = writeCopyField(column, src, p, fe, out, pos);
    p = fe + 1;
  }
  return pos;
}

/** Writes one COPY field src[p, fe) (not \\N) as its JSON at out[pos]; returns the new position. */
function writeCopyField(column: CopyColumn, src: Buffer, p: number, fe: number, out: Buffer, pos: number): number {
  switch (column.kind) {
    case CopyKind.Raw:
    case CopyKind.Float:
    case CopyKind.Bool:
    case CopyKind.Quoted:
      // No escapes can occur in these: the same bytes as a pgoutput value.
      pos = writeWireValue(column, src, p, fe, out, pos);
      break;
    case CopyKind.Json: {
      const backslash = src.indexOf(0x5c, p);
      if (backslash < 0 || backslash >= fe) pos = copyBytes(src, p, fe, out, pos);
      // COPY wrote line breaks as \n or \r: undone, they become spaces like the stream's (encodeJson).
      else pos = copyJsonUnescaped(src, p, backslash, fe, out, pos);
      break;
    }
    case CopyKind.Bytea:
      // COPY doubles the backslash of "\x": \\x followed by hex digits only.
      if (fe - p >= 3 && src[p] === 0x5c && src[p + 1] === 0x5c && src[p + 2] === 0x78) pos = putHexAsBase64(src, p + 3, fe, out, pos);
      else pos += out.write(column.encode(copyFieldText(src.toString("utf8", p, fe))), pos);
      break;
    case CopyKind.Text: {
      out[pos++] = 0x22;
      for (let j = p; j < fe; ) {
        const b = src[j];
        if (b >= 0x20 && b !== 0x22 && b !== 0x5c) {
          out[pos++] = b;
          j++;
        } else if (b === 0x5c) {
          cursor.pos = pos;
          j = escapeInString(src, j, fe, out, cursor);
          pos = cursor.pos;
        } else if (b === 0x22) {
          out[pos++] = 0x5c;
          out[pos++] = 0x22;
          j++;
        } else {
          pos = putControl(out, pos, b);
          j++;
        }
      }
      out[pos++] = 0x22;
      break;
    }
    case CopyKind.Timestamptz:
    case CopyKind.Timestamp: {
      const written = writeIsoTimestamp(column.kind, src, p, fe, out, pos);
      pos = written >= 0 ? written : pos + out.write(column.encode(copyFieldText(src.toString("utf8", p, fe))), pos);
      break;
    }
    default:
      pos += out.write(column.encode(copyFieldText(src.toString("utf8", p, fe))), pos);
  }
  return pos;
}

/** Where the last transcodeLine call's row ended: the index of its newline (or of its limit). */
export const lineEnd = { at: 0 };

/**
 * transcodeRow for a row whose end is not known yet: the row starting at src[start] up to its
 * newline, or up to `limit` (excluded) when no newline comes before it; writes exactly
 * transcodeRow's bytes for src[start, lineEnd.at) and sets lineEnd.at. COPY escapes tabs and
 * newlines inside values, so a raw tab always ends a field and a raw newline the row.
 *
 * Why it exists: transcodeRow finds every field with Buffer.indexOf, a native call per field that
 * costs more than the field's few bytes. Here integers and text are found and copied by the same
 * loop, the other short kinds (numbers, booleans, timestamps) scanned in JS; only the kinds that
 * are often long (json, bytea, arrays, …) use indexOf (memchr).
 */
export function transcodeLine(src: Buffer, start: number, limit: number, columns: CopyColumn[], out: Buffer, pos: number): number {
  let p = start;
  const n = columns.length;
  let fe = start;
  for (let i = 0; i < n; i++) {
    const column = columns[i];
    const prefix = column.prefix;
    // A loop: TypedArray.set costs a builtin call, more than copying a short name's bytes.
    for (let k = 0; k < prefix.length; k++) out[pos++] = prefix[k];
    const kind = column.kind;
    if (p + 1 < limit && src[p] === 0x5c && src[p + 1] === 0x4e && (p + 2 === limit || src[p + 2] === 9 || src[p + 2] === 10)) {
      out[pos++] = 0x6e; // null
      out[pos++] = 0x75;
      out[pos++] = 0x6c;
      out[pos++] = 0x6c;
      fe = p + 2;
    } else if (kind === CopyKind.Raw) {
      fe = p;
      for (; fe < limit; fe++) {
        const b = src[fe];
        if (b === 9 || b === 10) break;
        out[pos++] = b;
      }
    } else if (kind === CopyKind.Text) {
      out[pos++] = 0x22;
      let j = p;
      while (j < limit) {
        const b = src[j];
        if (b >= 0x20 && b !== 0x22 && b !== 0x5c) {
          out[pos++] = b;
          j++;
        } else if (b === 9 || b === 10) break;
        else if (b === 0x5c) {
          const c = j + 1 < limit ? src[j + 1] : 10;
          if (c === 9 || c === 10) {
            // A backslash right before a delimiter (COPY never writes one): as transcodeRow does.
            pos = putControl(out, pos, c);
            j++;
            break;
          }
          cursor.pos = pos;
          j = escapeInString(src, j, limit, out, cursor);
          pos = cursor.pos;
        } else if (b === 0x22) {
          out[pos++] = 0x5c;
          out[pos++] = 0x22;
          j++;
        } else {
          pos = putControl(out, pos, b);
          j++;
        }
      }
      out[pos++] = 0x22;
      fe = j;
    } else {
      if (kind === CopyKind.Json || kind === CopyKind.Bytea || kind === CopyKind.Other) {
        fe = src.indexOf(9, p);
        if (fe < 0 || fe > limit) fe = limit;
        const nl = src.indexOf(10, p);
        if (nl >= 0 && nl < fe) fe = nl;
      } else {
        fe = p;
        while (fe < limit && src[fe] !== 9 && src[fe] !== 10) fe++;
      }
      pos = writeCopyField(column, src, p, fe, out, pos);
    }
    if (i === n - 1) {
      if (fe < limit && src[fe] === 9) throw new Error(`COPY row has more fields than the ${n} columns`);
    } else if (fe >= limit || src[fe] !== 9) throw new Error(`COPY row has fewer fields than the ${n} columns`);
    p = fe + 1;
  }
  lineEnd.at = fe;
  return pos;
}

/**
 * One pgoutput text value (length-prefixed bytes, no escaping) → its JSON, written in place: the
 * stream's twin of transcodeRow. Produces exactly the bytes the string encoders (JSON.stringify for
 * strings) would. Lives in this module so the kind constants stay module-local in the hot loop.
 */
export interface WireColumn {
  kind: CopyKind;
  encode: Encoder;
}

/** Writes src[p, fe) as the JSON of a `column` value at out[pos]; returns the new position. */
export function writeWireValue(column: WireColumn, src: Buffer, p: number, fe: number, out: Buffer, pos: number): number {
  switch (column.kind) {
    case CopyKind.Raw:
      return copyBytes(src, p, fe, out, pos);
    case CopyKind.Json:
      return copyJsonBytes(src, p, fe, out, pos);
    case CopyKind.Float: {
      const last = src[fe - 1];
      if (last >= 0x30 && last <= 0x39) return copyBytes(src, p, fe, out, pos);
      out[pos++] = 0x22;
      pos = copyBytes(src, p, fe, out, pos);
      out[pos++] = 0x22;
      return pos;
    }
    case CopyKind.Bool:
      return put(out, pos, src[p] === 0x74 ? TRUE_BYTES : FALSE_BYTES);
    case CopyKind.Quoted:
      out[pos++] = 0x22;
      pos = copyBytes(src, p, fe, out, pos);
      out[pos++] = 0x22;
      return pos;
    case CopyKind.Text: {
      out[pos++] = 0x22;
      for (let j = p; j < fe; j++) {
        const b = src[j];
        if (b >= 0x20 && b !== 0x22 && b !== 0x5c) out[pos++] = b;
        else if (b === 0x22 || b === 0x5c) {
          out[pos++] = 0x5c;
          out[pos++] = b;
        } else {
          // JSON.stringify's short forms, \u00XX for the rest.
          const short = b === 8 ? 0x62 : b === 9 ? 0x74 : b === 10 ? 0x6e : b === 12 ? 0x66 : b === 13 ? 0x72 : 0;
          if (short !== 0) {
            out[pos++] = 0x5c;
            out[pos++] = short;
          } else pos = putControl(out, pos, b);
        }
      }
      out[pos++] = 0x22;
      return pos;
    }
    case CopyKind.Timestamptz:
    case CopyKind.Timestamp: {
      const written = writeIsoTimestamp(column.kind, src, p, fe, out, pos);
      return written >= 0 ? written : pos + out.write(column.encode(src.toString("utf8", p, fe)), pos);
    }
    case CopyKind.Bytea:
      if (fe - p >= 2 && src[p] === 0x5c && src[p + 1] === 0x78) return putHexAsBase64(src, p + 2, fe, out, pos);
      return pos + out.write(column.encode(src.toString("utf8", p, fe)), pos);
    default:
      return pos + out.write(column.encode(src.toString("utf8", p, fe)), pos);
  }
}

/**
 * The plain ISO shapes of timestamp / timestamptz (UTC) text, `YYYY-MM-DD HH:MM:SS[.ffffff][+00]`,
 * written as `"YYYY-MM-DDTHH:MM:SS[.ffffff][Z]"`; -1 for anything else (infinity, BC dates, other
 * offsets), which takes the column's encoder. Shared by COPY rows and pgoutput values.
 */
function writeIsoTimestamp(kind: CopyKind, src: Buffer, p: number, fe: number, out: Buffer, pos: number): number {
  const space = p + 10 < fe && src[p + 10] === 0x20 ? p + 10 : -1;
  const utc = kind === CopyKind.Timestamp || (src[fe - 3] === 0x2b && src[fe - 2] === 0x30 && src[fe - 1] === 0x30 && src[fe - 4] !== 0x20);
  if (space < 0 || !utc || src[fe - 1] === 0x43 /* C of BC */) return -1;
  out[pos++] = 0x22;
  pos = copyBytes(src, p, space, out, pos);
  out[pos++] = 0x54; // T
  if (kind === CopyKind.Timestamptz) {
    pos = copyBytes(src, space + 1, fe - 3, out, pos);
    out[pos++] = 0x5a; // Z
  } else pos = copyBytes(src, space + 1, fe, out, pos);
  out[pos++] = 0x22;
  return pos;
}

/** Hex digits per piece of a bytea: a multiple of 6 (3 bytes), so the base64 pieces join without padding. */
const HEX_PIECE = 6 * 16 * 1024;

/**
 * bytea hex digits src[from, to) → `"<base64>"` at out[pos], a bounded piece at a time: neither
 * the hex text nor the base64 of a large value ever becomes one JS string. The same bytes as
 * encodeBytea (values.ts) for PostgreSQL's hex output.
 */
function putHexAsBase64(src: Buffer, from: number, to: number, out: Buffer, pos: number): number {
  out[pos++] = 0x22;
  for (let a = from; a < to; a += HEX_PIECE) {
    const piece = Buffer.from(src.toString("latin1", a, Math.min(to, a + HEX_PIECE)), "hex");
    pos += out.write(piece.toString("base64"), pos, "latin1");
  }
  out[pos++] = 0x22;
  return pos;
}

const COPY_UNESCAPED: Record<number, number> = { 0x62: 8, 0x66: 12, 0x6e: 10, 0x72: 13, 0x74: 9, 0x76: 11 };
const isOctal = (b: number) => b >= 0x30 && b <= 0x37;

/**
 * A COPY json/jsonb field with backslashes (src[first] is the first one) → its text, bytewise:
 * exactly encodeJson(copyFieldText(field)) (COPY's escapes undone, line breaks as spaces), never
 * larger than the field.
 */
function copyJsonUnescaped(src: Buffer, p: number, first: number, fe: number, out: Buffer, pos: number): number {
  pos = copyBytes(src, p, first, out, pos);
  const putCode = (code: number) => {
    if (code === 0x0a || code === 0x0d) out[pos++] = 0x20;
    else if (code < 0x80) out[pos++] = code;
    else {
      out[pos++] = 0xc0 | (code >> 6);
      out[pos++] = 0x80 | (code & 0x3f);
    }
  };
  for (let j = first; j < fe; ) {
    const b = src[j];
    if (b !== 0x5c || j + 1 >= fe) {
      out[pos++] = b === 0x0a || b === 0x0d ? 0x20 : b;
      j++;
      continue;
    }
    const c = src[j + 1];
    if (isOctal(c)) {
      let code = 0;
      let k = j + 1;
      for (; k < fe && k < j + 4 && isOctal(src[k]); k++) code = code * 8 + src[k] - 0x30;
      putCode(code);
      j = k;
    } else if (c === 0x78 && j + 2 < fe && isHex(src[j + 2])) {
      let code = hexValue(src[j + 2]);
      let k = j + 3;
      if (k < fe && isHex(src[k])) code = code * 16 + hexValue(src[k++]);
      putCode(code);
      j = k;
    } else if (COPY_UNESCAPED[c] !== undefined) {
      putCode(COPY_UNESCAPED[c]);
      j += 2;
    } else {
      // An escaped ordinary character (a backslash above all) is that character.
      out[pos++] = c === 0x0a || c === 0x0d ? 0x20 : c;
      j += 2;
    }
  }
  return pos;
}

/** Base64 of the bytes of `hexDigits` hex digits, in quotes. */
const base64Bytes = (hexDigits: number) => 4 * Math.ceil(Math.floor(hexDigits / 2) / 3) + 2;

/**
 * The JSON size of one pgoutput value src[p, fe) (not NULL) as writeWireValue writes it: exact
 * for every kind but timestamps (a bound; they are small). Sizes a large record before it is
 * written, so its buffer is allocated once, at its size.
 */
export function wireValueBytes(column: WireColumn, src: Buffer, p: number, fe: number): number {
  const len = fe - p;
  switch (column.kind) {
    case CopyKind.Raw:
    case CopyKind.Json:
      return len;
    case CopyKind.Float:
      return src[fe - 1] >= 0x30 && src[fe - 1] <= 0x39 ? len : len + 2;
    case CopyKind.Bool:
      return src[p] === 0x74 ? 4 : 5;
    case CopyKind.Quoted:
      return len + 2;
    case CopyKind.Text: {
      let n = len + 2;
      for (let j = p; j < fe; j++) {
        const b = src[j];
        if (b >= 0x20 && b !== 0x22 && b !== 0x5c) continue;
        n += b === 0x22 || b === 0x5c || b === 8 || b === 9 || b === 10 || b === 12 || b === 13 ? 1 : 5;
      }
      return n;
    }
    case CopyKind.Timestamptz:
    case CopyKind.Timestamp:
      return 3 * len + 16;
    case CopyKind.Bytea:
      if (len >= 2 && src[p] === 0x5c && src[p + 1] === 0x78) return base64Bytes(len - 2);
      return Buffer.byteLength(column.encode(src.toString("utf8", p, fe)));
    default:
      // Types that go through a JS string anyway (arrays, …): encoded once more, to know the size.
      return Buffer.byteLength(column.encode(src.toString("utf8", p, fe)));
  }
}

const scratch = Buffer.alloc(16);
const scratchCursor = { pos: 0 };

/** wireValueBytes for one COPY field src[p, fe) (not \N), as transcodeRow writes it. */
export function copyFieldBytes(column: CopyColumn, src: Buffer, p: number, fe: number): number {
  const len = fe - p;
  switch (column.kind) {
    case CopyKind.Json:
      return len; // unescaping only shrinks it
    case CopyKind.Text: {
      let n = 2;
      for (let j = p; j < fe; ) {
        const b = src[j];
        if (b >= 0x20 && b !== 0x22 && b !== 0x5c) {
          n++;
          j++;
        } else if (b === 0x5c) {
          scratchCursor.pos = 0;
          j = escapeInString(src, j, fe, scratch, scratchCursor);
          n += scratchCursor.pos;
        } else {
          n += b === 0x22 ? 2 : 6;
          j++;
        }
      }
      return n;
    }
    case CopyKind.Bytea:
      if (len >= 3 && src[p] === 0x5c && src[p + 1] === 0x5c && src[p + 2] === 0x78) return base64Bytes(len - 3);
      return Buffer.byteLength(column.encode(copyFieldText(src.toString("utf8", p, fe))));
    case CopyKind.Other:
      return Buffer.byteLength(column.encode(copyFieldText(src.toString("utf8", p, fe))));
    default:
      return wireValueBytes(column, src, p, fe); // no escapes in these
  }
}

/**
 * Sizes of the values of one COPY row src[start, end) into `sizes` (0 for NULL; field count
 * checked by transcodeRow); returns the record's column bytes (prefixes included).
 */
export function copyRowBytes(src: Buffer, start: number, end: number, columns: CopyColumn[], sizes: number[]): number {
  let total = 0;
  let p = start;
  for (let i = 0; i < columns.length; i++) {
    let fe = i === columns.length - 1 ? end : src.indexOf(9, p);
    if (fe < 0 || fe > end) fe = end;
    const isNull = fe - p === 2 && src[p] === 0x5c && src[p + 1] === 0x4e;
    sizes[i] = isNull ? 4 : copyFieldBytes(columns[i], src, p, fe);
    total += columns[i].prefix.length + sizes[i];
    p = fe + 1;
  }
  return total;
}
