/**
 * The landing zone's newest object per table, found by walking the layout's sortable partitions
 * (`cdc.<schema>.<table>/date=YYYY-MM-DD/hour=HH/`, docs/engine.md) instead of listing everything:
 * a few list calls per table, whatever the bucket holds.
 */
import { ago, type StatusLine } from "./report";

export interface Listing {
  /** Sub-prefixes (ending in "/") directly under the prefix. */
  prefixes: string[];
  objects: { key: string; lastModified?: Date }[];
}

/** One hierarchical list call (delimiter "/") of an object store. */
export type ListFn = (prefix: string) => Promise<Listing>;

const newest = (names: string[], pattern: RegExp) => names.filter((n) => pattern.test(n)).sort().at(-1);

export async function landingLines(list: ListFn, root: string, now: Date): Promise<StatusLine[]> {
  const base = root === "" || root.endsWith("/") ? root : `${root}/`;
  const top = await list(base);
  const tables = top.prefixes.filter((p) => /\/?cdc\.[^/]+\.[^/]+\/$/.test(p)).sort();
  if (tables.length === 0) return [{ ok: undefined, what: "landing", detail: `nothing landed under ${base || "/"} yet` }];
  const lines: StatusLine[] = [];
  for (const table of tables) {
    const name = table.slice(base.length, -1);
    const date = newest((await list(table)).prefixes, /date=\d{4}-\d{2}-\d{2}\/$/);
    const hour = date ? newest((await list(date)).prefixes, /hour=\d{2}\/$/) : undefined;
    const objects = hour ? (await list(hour)).objects.filter((o) => /\.ndjson(\.gz)?$/.test(o.key)) : [];
    const last = objects.sort((a, b) => (a.key < b.key ? -1 : 1)).at(-1);
    lines.push({
      ok: undefined,
      what: `landing ${name}`,
      detail: last ? `${last.key.slice(base.length + name.length + 1)}${last.lastModified ? ` (${ago(last.lastModified, now)})` : ""}` : "no data objects yet",
    });
  }
  return lines;
}
