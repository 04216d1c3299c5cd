/**
 * Reads what pg_recvlogical wrote for the pgoutput plugin (protocol 1): every message as sent,
 * followed by a newline. Used to check the baseline really decoded the whole backlog and to learn
 * the backlog's exact last commit position.
 */
import { readFile } from "node:fs/promises";

export interface PgoutputSummary {
  inserts: number;
  updates: number;
  deletes: number;
  truncates: number;
  commits: number;
  /** The last Commit message's commit LSN and end LSN. */
  lastCommitLsn: bigint | undefined;
  lastEndLsn: bigint | undefined;
  bytes: number;
}

export async function summarizePgoutputFile(path: string): Promise<PgoutputSummary> {
  const buf = await readFile(path);
  const s: PgoutputSummary = { inserts: 0, updates: 0, deletes: 0, truncates: 0, commits: 0, lastCommitLsn: undefined, lastEndLsn: undefined, bytes: buf.length };
  let p = 0;
  const cstring = () => {
    const end = buf.indexOf(0, p);
    if (end < 0) throw new Error(`unterminated string at ${p}`);
    p = end + 1;
  };
  const tuple = () => {
    const n = buf.readInt16BE(p);
    p += 2;
    for (let i = 0; i < n; i++) {
      const kind = buf[p++];
      if (kind === 0x74 /* t */ || kind === 0x62 /* b */) {
        const len = buf.readInt32BE(p);
        p += 4 + len;
      } else if (kind !== 0x6e /* n */ && kind !== 0x75 /* u */) throw new Error(`bad tuple column kind ${kind} at ${p - 1}`);
    }
  };
  while (p < buf.length) {
    const type = String.fromCharCode(buf[p++]);
    switch (type) {
      case "B":
        p += 20;
        break;
      case "C":
        s.commits++;
        s.lastCommitLsn = buf.readBigUInt64BE(p + 1);
        s.lastEndLsn = buf.readBigUInt64BE(p + 9);
        p += 25;
        break;
      case "O":
        p += 8;
        cstring();
        break;
      case "R": {
        p += 4;
        cstring();
        cstring();
        p += 1;
        const ncols = buf.readInt16BE(p);
        p += 2;
        for (let i = 0; i < ncols; i++) {
          p += 1;
          cstring();
          p += 8;
        }
        break;
      }
      case "Y":
        p += 4;
        cstring();
        cstring();
        break;
      case "I":
        s.inserts++;
        p += 5;
        tuple();
        break;
      case "U": {
        s.updates++;
        p += 4;
        const k = String.fromCharCode(buf[p++]);
        if (k === "K" || k === "O") {
          tuple();
          p++; // 'N'
        }
        tuple();
        break;
      }
      case "D":
        s.deletes++;
        p += 5;
        tuple();
        break;
      case "T": {
        s.truncates++;
        const n = buf.readInt32BE(p);
        p += 5 + 4 * n;
        break;
      }
      case "M": {
        p += 9;
        cstring();
        const len = buf.readInt32BE(p);
        p += 4 + len;
        break;
      }
      default:
        throw new Error(`unknown pgoutput message ${JSON.stringify(type)} at byte ${p - 1}`);
    }
    if (buf[p] !== 0x0a) throw new Error(`expected the newline pg_recvlogical writes after each message at byte ${p}`);
    p++;
  }
  return s;
}
