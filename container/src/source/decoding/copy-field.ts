/** COPY text format: undoing the backslash escapes of one field (not NULL). */
const UNESCAPE: Record<string, string> = { b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v" };

export function copyFieldText(field: string): string {
  if (field.indexOf("\\") < 0) return field;
  return field.replace(/\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|([\s\S]))/g, (_m, oct: string, hex: string, ch: string) => {
    if (oct !== undefined) return String.fromCharCode(parseInt(oct, 8));
    if (hex !== undefined) return String.fromCharCode(parseInt(hex, 16));
    return UNESCAPE[ch] ?? ch;
  });
}
