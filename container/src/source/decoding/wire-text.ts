/**
 * One pgoutput text value (length-prefixed bytes, no escaping) → its JSON, written in place into a
 * table buffer: the stream's hot path, the twin of copy-text.ts. Produces exactly the bytes the
 * string encoders (JSON.stringify for strings) would.
 */
import { CopyKind, FALSE_BYTES, TRUE_BYTES, copyBytes, put, putControl } from "./copy-text";
import type { Encoder } from "./values";

export interface WireColumn {
  kind: CopyKind;
  encode: Encoder;
}

/** Writes src[p, fe) as the JSON of a `column` value at out[pos]; returns the new position. */
export function writeWireValue(column: WireColumn, src: Buffer, p: number, fe: number, out: Buffer, pos: number): number {
  switch (column.kind) {
    case CopyKind.Raw:
    case CopyKind.Json:
      return copyBytes(src, p, fe, out, pos);
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
      const space = p + 10 < fe && src[p + 10] === 0x20 ? p + 10 : -1;
      const utc = column.kind === CopyKind.Timestamp || (src[fe - 3] === 0x2b && src[fe - 2] === 0x30 && src[fe - 1] === 0x30);
      if (space > 0 && utc && src[fe - 1] !== 0x43 /* C of BC */) {
        out[pos++] = 0x22;
        pos = copyBytes(src, p, space, out, pos);
        out[pos++] = 0x54; // T
        if (column.kind === CopyKind.Timestamptz) {
          pos = copyBytes(src, space + 1, fe - 3, out, pos);
          out[pos++] = 0x5a; // Z
        } else pos = copyBytes(src, space + 1, fe, out, pos);
        out[pos++] = 0x22;
        return pos;
      }
      return pos + out.write(column.encode(src.toString("utf8", p, fe)), pos);
    }
    default:
      return pos + out.write(column.encode(src.toString("utf8", p, fe)), pos);
  }
}
