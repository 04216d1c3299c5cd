/** PostgreSQL log sequence numbers: "16/B374D848" on the wire, bigint inside the engine. */

export function parseLsn(text: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!m) throw new Error(`not an LSN: ${JSON.stringify(text)}`);
  return (BigInt("0x" + m[1]) << 32n) | BigInt("0x" + m[2]);
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** 16 upper-case hex digits: sorts like the LSN itself, used in landing object names. */
export function lsnHex16(lsn: bigint): string {
  return lsn.toString(16).toUpperCase().padStart(16, "0");
}
