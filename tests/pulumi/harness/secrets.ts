/**
 * Secret envelopes, on both sides of a harness child. In the child, `mark` turns the SDK's own
 * envelopes into {"$secret": value} (so the JSON result still says which values were secret) and
 * `unwrap` gives the plain values the mocks compute from. In the test, `reveal` and
 * `withoutSecrets` read those marked values back.
 */

// The SDK's wire markers for secret (and other special) values.
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const SIG_KEY = "4dabf18193072939515e22adb298388d";

/** Replaces the SDK's secret envelopes with {"$secret": value}, so the parent can tell. */
export function mark(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(mark);
  if (value && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (obj[SIG_KEY] === SECRET_SIG) return { $secret: mark(obj.value) };
    if (obj[SIG_KEY] !== undefined) return { $special: obj[SIG_KEY] };
    return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, mark(v)]));
  }
  return value;
}

/** The SDK's values with secret envelopes removed. */
export function unwrap(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(unwrap);
  if (value && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (obj[SIG_KEY] === SECRET_SIG) return unwrap(obj.value);
    return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, unwrap(v)]));
  }
  return value;
}

/** Removes secret envelopes' contents, leaving what a reader of plain state would see. */
export function withoutSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutSecrets);
  if (value && typeof value === "object") {
    if ("$secret" in (value as object)) return "[secret]";
    return Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, withoutSecrets(v)]));
  }
  return value;
}

/** Plain value of a possibly-secret input. */
export function reveal(value: unknown): any {
  if (Array.isArray(value)) return value.map(reveal);
  if (value && typeof value === "object") {
    if ("$secret" in (value as object)) return reveal((value as { $secret: unknown }).$secret);
    return Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, reveal(v)]));
  }
  return value;
}
