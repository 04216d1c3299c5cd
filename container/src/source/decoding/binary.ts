/**
 * pgoutput binary mode (`binary 'true'`, PostgreSQL 14+): a column value arrives in its type's
 * send format (kind 'b') instead of its text output. Each decoder here turns send-format bytes back
 * into EXACTLY the text PostgreSQL's output function would have produced under the session
 * settings the engine pins (TimeZone=UTC, DateStyle=ISO, extra_float_digits=3, bytea_output=hex,
 * IntervalStyle=iso_8601), so the value then takes the same text → JSON path as in text mode and
 * the landing records stay byte for byte the same. The walsender saves the output functions
 * (timestamp, numeric and float formatting above all); the engine pays a little more instead.
 *
 * A type without a decoder here (composites, ranges, geometric and extension types, "char",
 * int2vector/oidvector, xml, money, …) makes PG_BINARY=auto stream the session in text.
 */

/** A growable byte buffer the decoders write text into; positions stay valid when it grows. */
export class TextScratch {
  buf = Buffer.allocUnsafe(64 * 1024);
  pos = 0;

  /** Makes room for `n` more bytes at `pos`. */
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
}

/** Writes the text output of the send-format value src[p, fe) at out.pos (advancing it). */
export type BinaryToText = (src: Buffer, p: number, fe: number, out: TextScratch) => void;

/**
 * How a column's binary values become text: `skip` bytes of a send format that already IS the text
 * output (text-like types, json; jsonb after its version byte), bytea's raw bytes (written as base64
 * directly), or a conversion.
 */
export type BinaryDecoder = { kind: "same"; skip: number } | { kind: "bytea" } | { kind: "convert"; toText: BinaryToText; json?: JsonWriter };

/**
 * For the hottest types, the landing JSON written straight from the send format: exactly what the
 * text path (writeWireValue in copy-text.ts) makes of the value's text, without the text.
 */
export interface JsonWriter {
  /** Which of writeJson's cases (one switch, so the hot call site stays monomorphic). */
  code: JsonCode;
}

export const enum JsonCode {
  Int2 = 1,
  Int4,
  Oid,
  Int8,
  Numeric,
  Timestamptz,
  Timestamp,
  Bool,
}

/** The most bytes writeJson takes for this value. */
export function jsonBound(code: JsonCode, src: Buffer, p: number): number {
  switch (code) {
    case JsonCode.Numeric:
      return numericTextBytes(src, p) + 2;
    case JsonCode.Timestamptz:
    case JsonCode.Timestamp:
      // Other shapes (BC, infinity, far years) take the text path; 64 bytes hold any of them as JSON.
      return 64;
    default:
      return 21;
  }
}

/**
 * Writes the value's landing JSON at out[pos]: integers as their digits, numeric as its text in
 * quotes, timestamps in the plain ISO shape as "…T…[Z]", booleans as true/false. Returns the new
 * position, or -1 to take the text path instead (timestamps of other shapes).
 */
export function writeJson(code: JsonCode, src: Buffer, p: number, out: Buffer, pos: number): number {
  switch (code) {
    case JsonCode.Int2:
      return writeInteger(out, pos, src.readInt16BE(p));
    case JsonCode.Int4:
      return writeInteger(out, pos, src.readInt32BE(p));
    case JsonCode.Oid:
      return writeInteger(out, pos, src.readUInt32BE(p));
    case JsonCode.Int8:
      return writeInt8(src, p, out, pos);
    case JsonCode.Numeric:
      out[pos] = 0x22;
      pos = writeNumeric(src, p, out, pos + 1);
      out[pos] = 0x22;
      return pos + 1;
    case JsonCode.Timestamptz:
      return writePlainTimestamp(src, p, true, true, out, pos);
    case JsonCode.Timestamp:
      return writePlainTimestamp(src, p, false, true, out, pos);
    case JsonCode.Bool:
      return pos + (src[p] !== 0 ? out.write("true", pos, "latin1") : out.write("false", pos, "latin1"));
  }
}

/** What decoderFor needs to know about a type (pg_type, resolved by the catalog). */
export type BinaryTypeInfo =
  | { kind: "base"; typname: string }
  | { kind: "enum" }
  | { kind: "domain"; base: BinaryTypeInfo | undefined }
  | { kind: "array"; element: BinaryTypeInfo | undefined; delimiter: string; typname: string }
  | { kind: "other" };

const SAME: BinaryDecoder = { kind: "same", skip: 0 };

/** The decoder for a type, or undefined when the engine cannot decode its send format. */
export function binaryDecoderFor(info: BinaryTypeInfo | undefined): BinaryDecoder | undefined {
  if (info === undefined) return undefined;
  switch (info.kind) {
    case "enum":
      return SAME; // enum_send sends the label
    case "domain":
      return binaryDecoderFor(info.base);
    case "array": {
      // int2vector/oidvector print space-separated, not as array literals.
      if (info.typname === "int2vector" || info.typname === "oidvector") return undefined;
      const element = elementToText(info.element);
      if (element === undefined) return undefined;
      const delimiter = info.delimiter;
      return { kind: "convert", toText: (src, p, fe, out) => arrayToText(src, p, fe, out, element, delimiter) };
    }
    case "base": {
      if (info.typname === "bytea") return { kind: "bytea" };
      // jsonb_send: a version byte (1), then jsonb's text output.
      if (info.typname === "jsonb") return { kind: "same", skip: 1 };
      if (SAME_TEXT.has(info.typname)) return SAME;
      const toText = CONVERTERS[info.typname];
      return toText === undefined ? undefined : { kind: "convert", toText, json: JSON_WRITERS[info.typname] };
    }
    default:
      return undefined;
  }
}

/** Element text for array_out: every decodable type, as a converter (bytea as its hex text). */
function elementToText(info: BinaryTypeInfo | undefined): BinaryToText | undefined {
  const decoder = binaryDecoderFor(info);
  if (decoder === undefined) return undefined;
  if (decoder.kind === "convert") return decoder.toText;
  if (decoder.kind === "bytea") return byteaToHexText;
  const skip = decoder.skip;
  return (src, p, fe, out) => {
    if (skip > 0 && src[p] !== JSONB_VERSION) throw new Error(`jsonb value in binary format version ${src[p]}, which the engine does not know (it knows ${JSONB_VERSION})`);
    out.ensure(fe - p);
    out.pos += src.copy(out.buf, out.pos, p + skip, fe);
  };
}

/** Types whose send format is their text output (in the client encoding, like the text protocol). */
const SAME_TEXT = new Set(["text", "varchar", "bpchar", "name", "json"]);

/** jsonb's send format version this decoder knows (the only one so far). */
export const JSONB_VERSION = 1;

function byteaToHexText(src: Buffer, p: number, fe: number, out: TextScratch): void {
  out.ensure(2 + 2 * (fe - p));
  out.buf[out.pos++] = 0x5c;
  out.buf[out.pos++] = 0x78;
  out.pos += out.buf.write(src.toString("hex", p, fe), out.pos, "latin1");
}

// ---- numbers ---------------------------------------------------------------------------------

/** Writes the decimal digits of a safe integer (any sign) at b[pos]; returns the new position. */
function writeInteger(b: Buffer, pos: number, n: number): number {
  if (n < 0) {
    b[pos++] = 0x2d;
    n = -n;
  }
  if (n < 10) {
    b[pos] = 48 + n;
    return pos + 1;
  }
  if (n < 2147483648) {
    // Small integers (most values): int32 arithmetic.
    let digits = 0;
    for (let m = n; m > 0; m = (m / 10) | 0) digits++;
    for (let i = pos + digits - 1; i >= pos; i--) {
      const q = (n / 10) | 0;
      b[i] = 48 + n - q * 10;
      n = q;
    }
    return pos + digits;
  }
  let digits = 0;
  for (let m = n; m >= 1; m = Math.floor(m / 10)) digits++;
  for (let i = pos + digits - 1; i >= pos; i--) {
    b[i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
  return pos + digits;
}

function putInteger(out: TextScratch, n: number): void {
  out.ensure(21);
  out.pos = writeInteger(out.buf, out.pos, n);
}

function putAscii(out: TextScratch, text: string): void {
  out.ensure(text.length);
  out.pos += out.buf.write(text, out.pos, "latin1");
}

const int2ToText: BinaryToText = (src, p, _fe, out) => putInteger(out, src.readInt16BE(p));
const int4ToText: BinaryToText = (src, p, _fe, out) => putInteger(out, src.readInt32BE(p));
const uint4ToText: BinaryToText = (src, p, _fe, out) => putInteger(out, src.readUInt32BE(p));

const int8ToText: BinaryToText = (src, p, _fe, out) => {
  out.ensure(21);
  out.pos = writeInt8(src, p, out.buf, out.pos);
};

function writeInt8(src: Buffer, p: number, b: Buffer, pos: number): number {
  const hi = src.readInt32BE(p);
  // |value| < 2^53: exact as a double.
  if (hi >= -0x200000 && hi < 0x200000) return writeInteger(b, pos, hi * 4294967296 + src.readUInt32BE(p + 4));
  return pos + b.write(src.readBigInt64BE(p).toString(), pos, "latin1");
}

const boolToText: BinaryToText = (src, p, _fe, out) => {
  out.ensure(1);
  out.buf[out.pos++] = src[p] !== 0 ? 0x74 : 0x66;
};

const NUMERIC_NEG = 0x4000;
const NUMERIC_NAN = 0xc000;
const NUMERIC_PINF = 0xd000;
const NUMERIC_NINF = 0xf000;

/** The most bytes numeric text of this send-format value takes. */
function numericTextBytes(src: Buffer, p: number): number {
  return 12 + 4 * (Math.max(src.readInt16BE(p + 2), 0) + 1) + Math.max(src.readInt16BE(p + 6), 0);
}

/**
 * numeric_send → numeric_out (get_str_from_var) at b[pos]: base-10000 digits, weight, sign,
 * display scale. Returns the new position.
 */
function writeNumeric(src: Buffer, p: number, b: Buffer, pos: number): number {
  const ndigits = src.readInt16BE(p);
  const weight = src.readInt16BE(p + 2);
  const sign = src.readUInt16BE(p + 4);
  const dscale = src.readInt16BE(p + 6);
  if (sign === NUMERIC_NAN) return pos + b.write("NaN", pos, "latin1");
  if (sign === NUMERIC_PINF) return pos + b.write("Infinity", pos, "latin1");
  if (sign === NUMERIC_NINF) return pos + b.write("-Infinity", pos, "latin1");
  const d0 = p + 8;
  if (sign === NUMERIC_NEG) b[pos++] = 0x2d;
  let d: number;
  if (weight < 0) {
    d = weight + 1;
    b[pos++] = 0x30;
  } else {
    for (d = 0; d <= weight; d++) {
      let dig = d < ndigits ? src.readInt16BE(d0 + 2 * d) : 0;
      // The first group without its leading zeros.
      let putit = d > 0;
      for (let pow = 1000; pow >= 1; pow = (pow / 10) | 0) {
        const q = (dig / pow) | 0;
        dig -= q * pow;
        putit = putit || q > 0 || pow === 1;
        if (putit) b[pos++] = 0x30 + q;
      }
    }
  }
  if (dscale > 0) {
    b[pos++] = 0x2e;
    const end = pos + dscale;
    for (let i = 0; i < dscale; d++, i += 4) {
      let dig = d >= 0 && d < ndigits ? src.readInt16BE(d0 + 2 * d) : 0;
      for (let pow = 1000; pow >= 1; pow = (pow / 10) | 0) {
        const q = (dig / pow) | 0;
        dig -= q * pow;
        b[pos++] = 0x30 + q;
      }
    }
    pos = end;
  }
  return pos;
}

const numericToText: BinaryToText = (src, p, _fe, out) => {
  out.ensure(numericTextBytes(src, p));
  out.pos = writeNumeric(src, p, out.buf, out.pos);
};

/**
 * float8out/float4out with extra_float_digits > 0: the shortest digits that read back as the same
 * value (Ryu), printed in fixed notation for decimal exponents from -4 up to (not including) 15
 * (float8) or 6 (float4), else as d.ddde±XX.
 */
function putShortestFloat(out: TextScratch, v: number, digits: string, exponent: number, fixedBelow: number): void {
  let text: string;
  const negative = v < 0 || Object.is(v, -0);
  const sign = negative ? "-" : "";
  if (exponent >= -4 && exponent < fixedBelow) {
    if (exponent < 0) text = "0." + "0".repeat(-exponent - 1) + digits;
    else if (digits.length <= exponent + 1) text = digits + "0".repeat(exponent + 1 - digits.length);
    else text = digits.slice(0, exponent + 1) + "." + digits.slice(exponent + 1);
  } else {
    const e = Math.abs(exponent);
    text = (digits.length > 1 ? digits[0] + "." + digits.slice(1) : digits) + "e" + (exponent < 0 ? "-" : "+") + (e < 10 ? "0" + e : String(e));
  }
  putAscii(out, sign + text);
}

/** Shortest round-trip digits (no sign, no trailing zeros) and decimal exponent of a finite non-zero |v|. */
function splitExponential(s: string): { digits: string; exponent: number } {
  const e = s.indexOf("e");
  const mantissa = s.slice(s[0] === "-" ? 1 : 0, e).replace(".", "");
  return { digits: mantissa.replace(/0+$/, "") || "0", exponent: Number(s.slice(e + 1)) };
}

function putSpecialFloat(out: TextScratch, v: number): boolean {
  if (Number.isNaN(v)) putAscii(out, "NaN");
  else if (v === Infinity) putAscii(out, "Infinity");
  else if (v === -Infinity) putAscii(out, "-Infinity");
  else if (v === 0) putAscii(out, Object.is(v, -0) ? "-0" : "0");
  else return false;
  return true;
}

const float8ToText: BinaryToText = (src, p, _fe, out) => {
  const v = src.readDoubleBE(p);
  if (putSpecialFloat(out, v)) return;
  putShortestFloat(out, v, ...shortestDecimal(Math.abs(v), 64), 15);
};

const float4ToText: BinaryToText = (src, p, _fe, out) => {
  const v = src.readFloatBE(p);
  if (putSpecialFloat(out, v)) return;
  putShortestFloat(out, v, ...shortestDecimal(Math.abs(v), 32), 6);
};

/**
 * The digits and decimal exponent PostgreSQL's Ryu (d2s.c/f2s.c) prints for a finite positive
 * value: the shortest decimal STRICTLY inside the value's rounding interval (PostgreSQL builds Ryu
 * with acceptBounds = false), the closest to the value among those. JavaScript's shortest
 * (toExponential()) also accepts a decimal exactly on the interval's edge when round-half-even
 * reads it back: then a longer one is looked for, as Ryu does.
 */
function shortestDecimal(a: number, bits: 32 | 64): [string, number] {
  if (bits === 64) {
    const js = splitExponential(a.toExponential());
    if (!onRoundingEdge(js.digits, js.exponent, a, 64)) return [js.digits, js.exponent];
  }
  const maxPrecision = bits === 64 ? 17 : 9;
  for (let precision = 1; precision <= maxPrecision; precision++) {
    const near = splitExponential(a.toExponential(precision - 1));
    let best: { digits: string; exponent: number; m: bigint } | undefined;
    let bestDistance = -1n;
    const scaled = BigInt(near.digits.padEnd(precision, "0"));
    const e10 = near.exponent - precision + 1;
    // The correctly rounded candidate (JavaScript rounds a tie up) and its neighbours: below a
    // power of two the interval is narrower, and Ryu rounds a tie to the even digit.
    for (const step of [0n, -1n, 1n]) {
      const m = scaled + step;
      if (m <= 0n) continue;
      const value = Number(`${m}e${e10}`);
      if ((bits === 32 ? Math.fround(value) : value) !== a) continue;
      const candidate = splitExponential(value.toExponential(precision - 1));
      if (onRoundingEdge(candidate.digits, candidate.exponent, a, bits)) continue;
      const distance = exactDistance(m, e10, a, bits);
      if (best === undefined || distance < bestDistance || (distance === bestDistance && m % 2n === 0n)) {
        bestDistance = distance;
        best = { ...candidate, m };
      }
    }
    if (best !== undefined) return [best.digits, best.exponent];
  }
  const all = splitExponential(a.toExponential(maxPrecision - 1));
  return [all.digits, all.exponent];
}

const view = new DataView(new ArrayBuffer(8));

/** a = M × 2^E exactly, and whether a is a power of two above the subnormals (narrower gap below). */
function exactBinary(a: number, bits: 32 | 64): { M: bigint; E: number; powerOfTwo: boolean } {
  if (bits === 64) {
    view.setFloat64(0, a);
    const hi = view.getUint32(0);
    const field = (hi >>> 20) & 0x7ff;
    const mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(view.getUint32(4));
    return { M: field === 0 ? mant : mant | (1n << 52n), E: field === 0 ? -1074 : field - 1075, powerOfTwo: mant === 0n && field > 1 };
  }
  view.setFloat32(0, a);
  const b = view.getUint32(0);
  const field = (b >>> 23) & 0xff;
  const mant = BigInt(b & 0x7fffff);
  return { M: field === 0 ? mant : mant | (1n << 23n), E: field === 0 ? -149 : field - 150, powerOfTwo: mant === 0n && field > 1 };
}

/** |m × 10^e10 − a|, scaled by a factor that depends on e10 and a only (comparable among candidates of one e10). */
function exactDistance(m: bigint, e10: number, a: number, bits: 32 | 64): bigint {
  const { M, E } = exactBinary(a, bits);
  const d = m * 10n ** BigInt(Math.max(e10, 0)) * 2n ** BigInt(Math.max(-E, 0));
  const x = M * 2n ** BigInt(Math.max(E, 0)) * 10n ** BigInt(Math.max(-e10, 0));
  return d > x ? d - x : x - d;
}

/**
 * Whether digits × 10^(exponent − len + 1) lies exactly halfway between `a` and a neighbour (a
 * decimal Ryu does not accept). Only a dyadic decimal can: most values are settled without BigInt.
 */
function onRoundingEdge(digits: string, exponent: number, a: number, bits: 32 | 64): boolean {
  const e10 = exponent - digits.length + 1;
  if (e10 >= 0 && a < (bits === 64 ? 2 ** 53 : 2 ** 24)) return false;
  // A multiple of 5 without trailing zeros ends in 5: most values stop here, before any BigInt.
  if (e10 < 0 && digits.charCodeAt(digits.length - 1) !== 0x35) return false;
  const m = BigInt(digits);
  if (e10 < 0 && m % 5n ** BigInt(-e10) !== 0n) return false;
  const { M, E, powerOfTwo } = exactBinary(a, bits);
  // Midpoints as P × 2^Q: above (2M + 1) × 2^(E−1); below (2M − 1) × 2^(E−1), or (4M − 1) × 2^(E−2) below a power of two.
  const edges: [bigint, number][] = [[2n * M + 1n, E - 1], powerOfTwo ? [4n * M - 1n, E - 2] : [2n * M - 1n, E - 1]];
  for (const [P, Q] of edges) {
    const lhs = m * 10n ** BigInt(Math.max(e10, 0)) * 2n ** BigInt(Math.max(-Q, 0));
    const rhs = P * 2n ** BigInt(Math.max(Q, 0)) * 10n ** BigInt(Math.max(-e10, 0));
    if (lhs === rhs) return true;
  }
  return false;
}

// ---- dates and times -------------------------------------------------------------------------

const POSTGRES_EPOCH_JDATE = 2451545;
const USECS_PER_DAY = 86_400_000_000;
const DATE_NOBEGIN = -0x80000000;
const DATE_NOEND = 0x7fffffff;

/** j2date's result, reused (no array per value on the hot path), and the day it is of (writePlainTimestamp). */
const ymd: [number, number, number] = [0, 0, 0];
let lastDays = NaN;

/** PostgreSQL's j2date: Julian day → [year (astronomical: 0 = 1 BC), month, day]. */
function j2date(jd: number): [number, number, number] {
  const out: [number, number, number] = [0, 0, 0];
  j2dateInto(jd, out);
  return out;
}

function j2dateInto(jd: number, out: [number, number, number]): void {
  let julian = jd + 32044;
  let quad = Math.floor(julian / 146097);
  const extra = (julian - quad * 146097) * 4 + 3;
  julian += 60 + quad * 3 + Math.floor(extra / 146097);
  quad = Math.floor(julian / 1461);
  julian -= quad * 1461;
  let y = Math.floor((julian * 4) / 1461);
  julian = (y !== 0 ? (julian + 305) % 365 : (julian + 306) % 366) + 123;
  y += quad * 4;
  const q = Math.floor((julian * 2141) / 65536);
  out[0] = y - 4800;
  out[1] = ((q + 10) % 12) + 1;
  out[2] = julian - Math.floor((7834 * q) / 256);
}

function pad(n: number, width: number): string {
  const s = String(n);
  return s.length >= width ? s : "0".repeat(width - s.length) + s;
}

/** EncodeDateOnly / the date part of EncodeDateTime (ISO): "YYYY-MM-DD", BC years as 1 - year. */
function isoDate(year: number, month: number, day: number): string {
  return pad(year > 0 ? year : -(year - 1), 4) + "-" + pad(month, 2) + "-" + pad(day, 2);
}

/** AppendSeconds: seconds (zero-padded when asked) and up to 6 fraction digits, trailing zeros cut. */
function seconds(sec: number, usec: number, zeroPad: boolean): string {
  const whole = zeroPad ? pad(Math.abs(sec), 2) : String(Math.abs(sec));
  if (usec === 0) return whole;
  return whole + "." + pad(Math.abs(usec), 6).replace(/0+$/, "");
}

/** "HH:MM:SS[.ffffff]" of microseconds within a day (24:00:00 allowed, as time allows it). */
function timeOfDay(us: number): string {
  const hour = Math.floor(us / 3_600_000_000);
  us -= hour * 3_600_000_000;
  const min = Math.floor(us / 60_000_000);
  us -= min * 60_000_000;
  const sec = Math.floor(us / 1_000_000);
  return pad(hour, 2) + ":" + pad(min, 2) + ":" + seconds(sec, us - sec * 1_000_000, true);
}

/** EncodeTimezone: the offset (seconds WEST of UTC, as PostgreSQL stores it) as +HH[:MM[:SS]]. */
function timezone(tz: number): string {
  let sec = Math.abs(tz);
  let min = Math.floor(sec / 60);
  sec -= min * 60;
  const hour = Math.floor(min / 60);
  min -= hour * 60;
  const sign = tz <= 0 ? "+" : "-";
  if (sec !== 0) return sign + pad(hour, 2) + ":" + pad(min, 2) + ":" + pad(sec, 2);
  if (min !== 0) return sign + pad(hour, 2) + ":" + pad(min, 2);
  return sign + pad(hour, 2);
}

const dateToText: BinaryToText = (src, p, _fe, out) => {
  const days = src.readInt32BE(p);
  if (days === DATE_NOBEGIN) return putAscii(out, "-infinity");
  if (days === DATE_NOEND) return putAscii(out, "infinity");
  const [y, m, d] = j2date(days + POSTGRES_EPOCH_JDATE);
  putAscii(out, isoDate(y, m, d) + (y <= 0 ? " BC" : ""));
};

/** timestamp / timestamptz (int64 µs from 2000-01-01) → EncodeDateTime's ISO text. */
function timestampText(src: Buffer, p: number, withZone: boolean): string {
  const hi = src.readInt32BE(p);
  const lo = src.readUInt32BE(p + 4);
  if (hi === -0x80000000 && lo === 0) return "-infinity";
  if (hi === 0x7fffffff && lo === 0xffffffff) return "infinity";
  let days: number;
  let us: number;
  if (hi >= -0x200000 && hi < 0x200000) {
    const t = hi * 4294967296 + lo;
    days = Math.floor(t / USECS_PER_DAY);
    us = t - days * USECS_PER_DAY;
  } else {
    const t = src.readBigInt64BE(p);
    let d = t / 86_400_000_000n;
    let rest = t - d * 86_400_000_000n;
    if (rest < 0n) {
      rest += 86_400_000_000n;
      d -= 1n;
    }
    days = Number(d);
    us = Number(rest);
  }
  const [y, m, d] = j2date(days + POSTGRES_EPOCH_JDATE);
  return isoDate(y, m, d) + " " + timeOfDay(us) + (withZone ? "+00" : "") + (y <= 0 ? " BC" : "");
}

const put2 = (b: Buffer, pos: number, n: number) => {
  const tens = (n / 10) | 0;
  b[pos] = 48 + tens;
  b[pos + 1] = 48 + n - tens * 10;
};

/**
 * The plain shape of a timestamp (AD, four-digit year, not infinite), the common case, at b[pos]
 * without building a string: its text `YYYY-MM-DD HH:MM:SS[.ffffff][+00]`, or with `json` what the
 * text path makes of that text (writeIsoTimestamp in copy-text.ts): `"YYYY-MM-DDTHH:MM:SS[.ffffff][Z]"`.
 * Returns the new position, or -1 for any other value (nothing written).
 */
function writePlainTimestamp(src: Buffer, p: number, withZone: boolean, json: boolean, b: Buffer, pos: number): number {
  const hi = src.readInt32BE(p);
  // 1715 … 2284: the µs count is an exact double.
  if (hi < -0x200000 || hi >= 0x200000) return -1;
  const t = hi * 4294967296 + src.readUInt32BE(p + 4);
  const days = Math.floor(t / USECS_PER_DAY);
  const inDay = t - days * USECS_PER_DAY;
  // Values of one batch mostly share their day: its date is computed once.
  if (days !== lastDays) {
    j2dateInto(days + POSTGRES_EPOCH_JDATE, ymd);
    lastDays = days;
  }
  const year = ymd[0];
  if (year < 1000 || year > 9999) return -1;
  if (json) b[pos++] = 0x22;
  const century = (year / 100) | 0;
  put2(b, pos, century);
  put2(b, pos + 2, year - century * 100);
  b[pos + 4] = 0x2d;
  put2(b, pos + 5, ymd[1]);
  b[pos + 7] = 0x2d;
  put2(b, pos + 8, ymd[2]);
  b[pos + 10] = json ? 0x54 : 0x20;
  // One double division; the rest fits int32 (seconds of a day, microseconds of a second).
  let secs = Math.floor(inDay / 1_000_000);
  let us = inDay - secs * 1_000_000;
  const hour = (secs / 3600) | 0;
  secs -= hour * 3600;
  const min = (secs / 60) | 0;
  const sec = secs - min * 60;
  put2(b, pos + 11, hour);
  b[pos + 13] = 0x3a;
  put2(b, pos + 14, min);
  b[pos + 16] = 0x3a;
  put2(b, pos + 17, sec);
  pos += 19;
  if (us !== 0) {
    b[pos++] = 0x2e;
    let digits = 6;
    while (us % 10 === 0) {
      us /= 10;
      digits--;
    }
    for (let i = pos + digits - 1; i >= pos; i--) {
      const q = (us / 10) | 0;
      b[i] = 48 + us - q * 10;
      us = q;
    }
    pos += digits;
  }
  if (withZone) {
    if (json) b[pos++] = 0x5a;
    else {
      b[pos++] = 0x2b;
      b[pos++] = 0x30;
      b[pos++] = 0x30;
    }
  }
  if (json) b[pos++] = 0x22;
  return pos;
}

const timestampToText: BinaryToText = (src, p, _fe, out) => {
  out.ensure(40);
  const pos = writePlainTimestamp(src, p, false, false, out.buf, out.pos);
  if (pos >= 0) out.pos = pos;
  else putAscii(out, timestampText(src, p, false));
};

// With TimeZone=UTC pinned, timestamptz text is UTC with "+00", exactly as below.
const timestamptzToText: BinaryToText = (src, p, _fe, out) => {
  out.ensure(40);
  const pos = writePlainTimestamp(src, p, true, false, out.buf, out.pos);
  if (pos >= 0) out.pos = pos;
  else putAscii(out, timestampText(src, p, true));
};

const timeToText: BinaryToText = (src, p, _fe, out) => putAscii(out, timeOfDay(Number(src.readBigInt64BE(p))));

const timetzToText: BinaryToText = (src, p, _fe, out) => putAscii(out, timeOfDay(Number(src.readBigInt64BE(p))) + timezone(src.readInt32BE(p + 8)));

/** interval_send → interval_out with IntervalStyle=iso_8601 (EncodeInterval, INTSTYLE_ISO_8601). */
const intervalToText: BinaryToText = (src, p, _fe, out) => {
  const time = src.readBigInt64BE(p);
  const days = src.readInt32BE(p + 8);
  const months = src.readInt32BE(p + 12);
  // PostgreSQL 17+ infinite intervals.
  if (time === -0x8000000000000000n && days === -0x80000000 && months === -0x80000000) return putAscii(out, "-infinity");
  if (time === 0x7fffffffffffffffn && days === 0x7fffffff && months === 0x7fffffff) return putAscii(out, "infinity");
  const year = Math.trunc(months / 12);
  const mon = months % 12;
  // C division truncates toward zero, as BigInt's does.
  const hour = time / 3_600_000_000n;
  let rest = time - hour * 3_600_000_000n;
  const min = rest / 60_000_000n;
  rest -= min * 60_000_000n;
  const sec = rest / 1_000_000n;
  const fsec = Number(rest - sec * 1_000_000n);
  if (year === 0 && mon === 0 && days === 0 && hour === 0n && min === 0n && sec === 0n && fsec === 0) return putAscii(out, "PT0S");
  let text = "P";
  const part = (v: number | bigint, unit: string) => {
    if (v !== 0 && v !== 0n) text += String(v) + unit;
  };
  part(year, "Y");
  part(mon, "M");
  part(days, "D");
  if (hour !== 0n || min !== 0n || sec !== 0n || fsec !== 0) text += "T";
  part(hour, "H");
  part(min, "M");
  if (sec !== 0n || fsec !== 0) {
    if (sec < 0n || fsec < 0) text += "-";
    text += seconds(Number(sec), fsec, false) + "S";
  }
  putAscii(out, text);
};

// ---- other scalars ---------------------------------------------------------------------------

const uuidToText: BinaryToText = (src, p, _fe, out) => {
  const hex = src.toString("hex", p, p + 16);
  putAscii(out, hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20));
};

/** macaddr / macaddr8: lower-case hex pairs joined by colons. */
const macToText: BinaryToText = (src, p, fe, out) => {
  const parts: string[] = [];
  for (let i = p; i < fe; i++) parts.push(src.toString("hex", i, i + 1));
  putAscii(out, parts.join(":"));
};

const CONVERTERS: Record<string, BinaryToText> = {
  int2: int2ToText,
  int4: int4ToText,
  int8: int8ToText,
  oid: uint4ToText,
  xid: uint4ToText,
  cid: uint4ToText,
  float4: float4ToText,
  float8: float8ToText,
  numeric: numericToText,
  bool: boolToText,
  date: dateToText,
  time: timeToText,
  timetz: timetzToText,
  timestamp: timestampToText,
  timestamptz: timestamptzToText,
  interval: intervalToText,
  uuid: uuidToText,
  macaddr: macToText,
  macaddr8: macToText,
};

const JSON_WRITERS: Record<string, JsonWriter> = {
  int2: { code: JsonCode.Int2 },
  int4: { code: JsonCode.Int4 },
  oid: { code: JsonCode.Oid },
  int8: { code: JsonCode.Int8 },
  numeric: { code: JsonCode.Numeric },
  timestamptz: { code: JsonCode.Timestamptz },
  timestamp: { code: JsonCode.Timestamp },
  bool: { code: JsonCode.Bool },
};

// ---- arrays ----------------------------------------------------------------------------------

const isArraySpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0b || c === 0x0c;

const elementScratch = new TextScratch();

/** array_send → array_out: "[lb:ub]…=" when a lower bound is not 1, nested braces, quoted elements. */
function arrayToText(src: Buffer, p: number, fe: number, out: TextScratch, element: BinaryToText, delimiter: string): void {
  const ndim = src.readInt32BE(p);
  if (ndim === 0) return putAscii(out, "{}");
  const dims: number[] = [];
  let bounds = "";
  let custom = false;
  for (let i = 0; i < ndim; i++) {
    const size = src.readInt32BE(p + 12 + 8 * i);
    const lower = src.readInt32BE(p + 16 + 8 * i);
    dims.push(size);
    if (lower !== 1) custom = true;
    bounds += `[${lower}:${lower + size - 1}]`;
  }
  let q = p + 12 + 8 * ndim;
  // Elements are scalars (never arrays themselves): one shared scratch serves them all.
  const scratch = elementScratch;
  const delim = delimiter.charCodeAt(0);
  const elementText = (): string => {
    const len = src.readInt32BE(q);
    q += 4;
    if (len < 0) return "NULL";
    scratch.pos = 0;
    element(src, q, q + len, scratch);
    q += len;
    const bytes = scratch.buf.subarray(0, scratch.pos);
    let quote = bytes.length === 0 || (bytes.length === 4 && bytes.toString("latin1").toUpperCase() === "NULL");
    let escapes = false;
    for (const c of bytes) {
      if (c === 0x22 || c === 0x5c) escapes = quote = true;
      else if (c === 0x7b || c === 0x7d || c === delim || isArraySpace(c)) quote = true;
    }
    const text = bytes.toString("utf8");
    if (!quote) return text;
    return '"' + (escapes ? text.replace(/["\\]/g, "\\$&") : text) + '"';
  };
  const level = (d: number): string => {
    const parts: string[] = [];
    for (let i = 0; i < dims[d]; i++) parts.push(d === ndim - 1 ? elementText() : level(d + 1));
    return "{" + parts.join(delimiter) + "}";
  };
  const text = (custom ? bounds + "=" : "") + level(0);
  if (q !== fe) throw new Error(`binary array value has ${fe - q} bytes left over after its elements`);
  out.ensure(Buffer.byteLength(text));
  out.pos += out.buf.write(text, out.pos, "utf8");
}
