/**
 * The silver rules as data: scenarios of landing batches and the silver rows each must leave, so
 * the same rules are checked on every engine that runs the shared SQL (DuckDB in silver.test.ts
 * covers them one by one; spark.test.ts runs all of these on Spark + Delta and on DuckDB).
 *
 * Each scenario has its own table, so all of them run side by side in one landing zone: step k of
 * every scenario lands, then one pipeline run, then the expectations of step k are checked.
 */
import { rec } from "./helpers";

type Row = Record<string, unknown>;

export interface SilverScenario {
  /** What the rule is. */
  rule: string;
  /** The table (schema.table), unique per scenario. */
  table: string;
  key: string[];
  /** Exact column types (else inferred by the helper from the values). */
  manifest?: [string, string][];
  /** Per step: the landing objects (each a list of records) written before that step's run. */
  steps: Row[][][];
  /** Silver rows (without metadata) after the given step (default: the last), ordered by key. */
  expect: { afterStep?: number; rows: Row[] }[];
  /** A scenario whose table must fail (alone): a pattern of its error. */
  fails?: RegExp;
}

const doc = "x".repeat(5000);

export const SILVER_SCENARIOS: SilverScenario[] = [
  {
    rule: "inserts, updates and deletes across batches",
    table: "public.s_basic",
    key: ["id"],
    steps: [
      [[rec("c", 100, 0, { id: 1, name: "a", qty: 1 }), rec("c", 100, 1, { id: 2, name: "b", qty: 2 })]],
      [[rec("u", 200, 0, { id: 1, name: "a2", qty: 10 }), rec("d", 200, 1, { id: 2 })]],
    ],
    expect: [{ rows: [{ id: 1, name: "a2", qty: 10 }] }],
  },
  {
    rule: "the latest of several changes to one key in one batch wins, by (__lsn, __seq) not file order",
    table: "public.s_order",
    key: ["id"],
    steps: [
      [
        [
          rec("u", 300, 2, { id: 1, name: "third", qty: 3 }),
          rec("c", 300, 0, { id: 1, name: "first", qty: 1 }),
          rec("u", 300, 1, { id: 1, name: "second", qty: 2 }),
          rec("c", 300, 3, { id: 2, name: "x", qty: 0 }),
          rec("d", 300, 4, { id: 2 }),
          rec("c", 301, 0, { id: 2, name: "again", qty: 5 }),
        ],
      ],
    ],
    expect: [{ rows: [{ id: 1, name: "third", qty: 3 }, { id: 2, name: "again", qty: 5 }] }],
  },
  {
    rule: "tombstones: a late older change neither resurrects a deleted row nor regresses a newer one; re-insert works",
    table: "public.s_tomb",
    key: ["id"],
    steps: [
      [[rec("c", 100, 0, { id: 1, name: "a", qty: 1 }), rec("c", 100, 1, { id: 2, name: "b", qty: 2 })], [rec("d", 300, 0, { id: 1 }), rec("u", 300, 1, { id: 2, name: "b3", qty: 3 })]],
      [[rec("u", 200, 0, { id: 1, name: "zombie", qty: 9 }), rec("u", 200, 1, { id: 2, name: "old", qty: 9 })]],
      [[rec("c", 400, 0, { id: 1, name: "reborn", qty: 4 })]],
    ],
    expect: [
      { afterStep: 1, rows: [{ id: 2, name: "b3", qty: 3 }] },
      { rows: [{ id: 1, name: "reborn", qty: 4 }, { id: 2, name: "b3", qty: 3 }] },
    ],
  },
  {
    rule: "__unchanged columns are filled from an earlier change in the same batch, else from silver",
    table: "public.s_toast",
    key: ["id"],
    steps: [
      [[rec("c", 100, 0, { id: 1, name: "a", qty: 1, doc }), rec("u", 100, 1, { id: 1, name: "a", qty: 2 }, ["doc"]), rec("c", 100, 2, { id: 2, name: "b", qty: 1, doc: "short" })]],
      [[rec("u", 200, 0, { id: 1, name: "a", qty: 3 }, ["doc"]), rec("u", 200, 1, { id: 2, name: "b", qty: 9, doc: null })]],
    ],
    expect: [{ rows: [{ id: 1, name: "a", qty: 3, doc }, { id: 2, name: "b", qty: 9, doc: null }] }],
  },
  {
    rule: "an __unchanged column is filled when the older change that set it arrives late",
    table: "public.s_late_fill",
    key: ["id"],
    manifest: [["id", "BIGINT"], ["name", "STRING"], ["qty", "BIGINT"], ["doc", "STRING"]],
    steps: [[[rec("u", 200, 0, { id: 1, name: "a", qty: 2 }, ["doc"])]], [[rec("c", 100, 0, { id: 1, name: "a", qty: 1, doc: "big" })]]],
    expect: [{ rows: [{ id: 1, name: "a", qty: 2, doc: "big" }] }],
  },
  {
    rule: "out of order: a late change without the column does not block the one that has it",
    table: "public.s_late_block",
    key: ["id"],
    manifest: [["id", "BIGINT"], ["name", "STRING"], ["qty", "BIGINT"], ["doc", "STRING"]],
    steps: [[[rec("u", 300, 0, { id: 1, name: "a", qty: 3 }, ["doc"])]], [[rec("u", 200, 0, { id: 1, name: "a", qty: 2 }, ["doc"])]], [[rec("r", 100, 0, { id: 1, name: "a", qty: 1, doc: "from the snapshot" })]]],
    expect: [{ rows: [{ id: 1, name: "a", qty: 3, doc: "from the snapshot" }] }],
  },
  {
    rule: "out of order: an older change in the batch never replaces a value set by a newer stored change",
    table: "public.s_late_old",
    key: ["id"],
    steps: [[[rec("u", 200, 0, { id: 1, name: "a", qty: 2, doc: "newer" })]], [[rec("c", 100, 0, { id: 1, name: "a", qty: 1, doc: "older" }), rec("u", 300, 0, { id: 1, name: "a", qty: 3 }, ["doc"])]]],
    expect: [{ rows: [{ id: 1, name: "a", qty: 3, doc: "newer" }] }],
  },
  {
    rule: "a truncate empties the table, keeps changes after it, and ignores late changes from before it",
    table: "public.s_trunc",
    key: ["id"],
    manifest: [["id", "BIGINT"], ["name", "STRING"], ["qty", "BIGINT"]],
    steps: [
      [[rec("c", 100, 0, { id: 1, name: "a", qty: 1 }), rec("c", 100, 1, { id: 2, name: "b", qty: 2 })]],
      [[rec("c", 300, 0, { id: 3, name: "c", qty: 3 }), rec("t", 300, 1), rec("c", 300, 2, { id: 4, name: "d", qty: 4 })]],
      [[rec("u", 200, 0, { id: 1, name: "late", qty: 7 }), rec("c", 200, 1, { id: 5, name: "late", qty: 5 })]],
    ],
    expect: [{ afterStep: 1, rows: [{ id: 4, name: "d", qty: 4 }] }, { rows: [{ id: 4, name: "d", qty: 4 }] }],
  },
  {
    rule: "a first batch holding only a truncate, then late changes from before it",
    table: "public.s_trunc_first",
    key: ["id"],
    manifest: [["id", "BIGINT"], ["name", "STRING"], ["qty", "BIGINT"]],
    steps: [[[rec("t", 300, 0)]], [[rec("c", 100, 0, { id: 1, name: "before", qty: 1 }), rec("c", 400, 0, { id: 2, name: "after", qty: 2 })]]],
    expect: [{ afterStep: 0, rows: [] }, { rows: [{ id: 2, name: "after", qty: 2 }] }],
  },
  {
    rule: "snapshot rows (r) never overwrite newer changes",
    table: "public.s_snap",
    key: ["id"],
    steps: [
      [[rec("u", 500, 0, { id: 1, name: "streamed", qty: 5 }), rec("d", 500, 1, { id: 2 })]],
      [[rec("r", 400, 0, { id: 1, name: "snap", qty: 1 }), rec("r", 400, 1, { id: 2, name: "snap", qty: 2 }), rec("r", 400, 2, { id: 3, name: "snap", qty: 3 })]],
    ],
    expect: [{ rows: [{ id: 1, name: "streamed", qty: 5 }, { id: 3, name: "snap", qty: 3 }] }],
  },
  {
    rule: "a re-snapshot barrier drops every older row, so keys deleted between two snapshots do not stay",
    table: "public.s_barrier",
    key: ["id"],
    manifest: [["id", "BIGINT"], ["name", "STRING"]],
    steps: [
      [[rec("b", 100, 0), rec("r", 100, 1, { id: 1, name: "one" }), rec("r", 100, 2, { id: 2, name: "two" }), rec("r", 100, 3, { id: 3, name: "three" })]],
      // The engine snapshots again (a lost slot): key 2 was deleted meanwhile, the change itself is lost.
      [[rec("b", 500, 0), rec("r", 500, 1, { id: 1, name: "one" }), rec("r", 500, 2, { id: 3, name: "three v2" })], [rec("u", 600, 0, { id: 3, name: "three v3" })]],
      // A late change from before the barrier is ignored.
      [[rec("c", 300, 0, { id: 4, name: "late" })]],
    ],
    expect: [
      { afterStep: 0, rows: [{ id: 1, name: "one" }, { id: 2, name: "two" }, { id: 3, name: "three" }] },
      { rows: [{ id: 1, name: "one" }, { id: 3, name: "three v3" }] },
    ],
  },
  {
    rule: "a re-snapshot taken while streaming: changes after the barrier that arrived first stay, changes before it that arrive later are dropped",
    table: "public.s_resnap",
    key: ["id"],
    manifest: [["id", "BIGINT"], ["name", "STRING"]],
    steps: [
      [[rec("b", 100, 0), rec("r", 100, 1, { id: 1, name: "one" }), rec("r", 100, 2, { id: 2, name: "two" })]],
      // The main stream runs ahead of the re-snapshot at P2 = 500: its changes after P2 land first.
      [[rec("c", 400, 0, { id: 9, name: "before P2" }), rec("u", 600, 0, { id: 1, name: "after P2" }), rec("d", 600, 1, { id: 2 })]],
      [[rec("b", 500, 0), rec("r", 500, 1, { id: 1, name: "snap" }), rec("r", 500, 2, { id: 2, name: "snap" }), rec("r", 500, 3, { id: 3, name: "snap" })], [rec("u", 450, 0, { id: 3, name: "late, before P2" })]],
    ],
    expect: [
      { afterStep: 1, rows: [{ id: 1, name: "after P2" }, { id: 9, name: "before P2" }] },
      { rows: [{ id: 1, name: "after P2" }, { id: 3, name: "snap" }] },
    ],
  },
  {
    rule: "an incremental re-snapshot: a barrier at the first chunk's low watermark, each chunk's rows at its high watermark, streamed changes in between",
    table: "public.s_incremental",
    key: ["id"],
    manifest: [["id", "BIGINT"], ["name", "STRING"]],
    steps: [
      // The initial snapshot; then the table comes back (dropped and created again): key 4 is a ghost.
      [[rec("b", 100, 0), rec("r", 100, 1, { id: 1, name: "old" }), rec("r", 100, 2, { id: 2, name: "old" }), rec("r", 100, 3, { id: 3, name: "old" }), rec("r", 100, 4, { id: 4, name: "old" })]],
      // The new relation's first change (before the barrier, so dropped with the rest), the barrier at
      // L1 = 300, a change of key 2 inside chunk 1's window (its chunk row was dropped for it), and
      // chunk 1 at H1 = 320: keys 1 and 2 read, key 1 landed.
      [[rec("c", 250, 9_999_999_990, { id: 1, name: "new, before the barrier" }), rec("b", 300, 0), rec("u", 310, 9_999_999_994, { id: 2, name: "streamed in window 1" }), rec("r", 320, 1, { id: 1, name: "chunk 1" })]],
      // Chunk 2 (keys 3…): key 3 deleted inside its window, key 5 landed at H2 = 400; then a change of key 1 after its chunk.
      [[rec("d", 390, 9_999_999_994, { id: 3 }), rec("r", 400, 1, { id: 5, name: "chunk 2" }), rec("u", 450, 9_999_999_994, { id: 1, name: "after chunk 1" })]],
      // A replay after a crash lands chunk 1 again at a newer high watermark: the newer change still wins where it is newer.
      [[rec("r", 500, 1, { id: 2, name: "chunk 1 again" })]],
    ],
    expect: [
      // While the snapshot runs, rows of chunks not landed yet are missing (keys 3 and 5 here).
      { afterStep: 1, rows: [{ id: 1, name: "chunk 1" }, { id: 2, name: "streamed in window 1" }] },
      { afterStep: 2, rows: [{ id: 1, name: "after chunk 1" }, { id: 2, name: "streamed in window 1" }, { id: 5, name: "chunk 2" }] },
      { rows: [{ id: 1, name: "after chunk 1" }, { id: 2, name: "chunk 1 again" }, { id: 5, name: "chunk 2" }] },
    ],
  },
  {
    rule: "an initial snapshot in chunks (SNAPSHOT_MODE=incremental): the table's first records are streamed changes, then the barrier at the first chunk's low watermark, then the chunks",
    table: "public.s_incremental_initial",
    key: ["id"],
    manifest: [["id", "BIGINT"], ["name", "STRING"]],
    steps: [
      // The slot exists at P = 100 and streams at once; the table's chunks have not started yet
      // (another table is copied first), so its first landed records are changes (a lost slot's
      // rows, or none, before them). Silver holds just those for now.
      [[rec("c", 150, 9_999_999_990, { id: 7, name: "streamed before the chunks" }), rec("u", 160, 9_999_999_990, { id: 1, name: "streamed, row from before the slot" })]],
      // The barrier at L1 = 300 drops them; a change of key 2 inside window 1 (its chunk row was
      // dropped for it); chunk 1 at H1 = 320 lands keys 1 and 7, in the same object as the window's change.
      [[rec("b", 300, 0), rec("u", 310, 9_999_999_994, { id: 2, name: "streamed in window 1" }), rec("r", 320, 1, { id: 1, name: "chunk 1" }), rec("r", 320, 2, { id: 7, name: "chunk 1" })]],
      // A change of key 8 after chunk 1 and before the chunk that holds it; chunk 2 (keys 8…) at H2 = 400 lands
      // key 8 as read after that change, and key 9; a change after H2 wins over its chunk row.
      [[rec("c", 350, 9_999_999_994, { id: 8, name: "streamed before chunk 2" })], [rec("r", 400, 1, { id: 8, name: "streamed before chunk 2" }), rec("r", 400, 2, { id: 9, name: "chunk 2" }), rec("d", 410, 9_999_999_994, { id: 9 })]],
    ],
    expect: [
      { afterStep: 0, rows: [{ id: 1, name: "streamed, row from before the slot" }, { id: 7, name: "streamed before the chunks" }] },
      { afterStep: 1, rows: [{ id: 1, name: "chunk 1" }, { id: 2, name: "streamed in window 1" }, { id: 7, name: "chunk 1" }] },
      { rows: [{ id: 1, name: "chunk 1" }, { id: 2, name: "streamed in window 1" }, { id: 7, name: "chunk 1" }, { id: 8, name: "streamed before chunk 2" }] },
    ],
  },
  {
    rule: "a key change with unchanged TOAST values: the new key's row takes them from the old key's row (its d at __seq - 1)",
    table: "public.s_key_toast",
    key: ["id"],
    manifest: [["id", "BIGINT"], ["name", "STRING"], ["qty", "BIGINT"], ["doc", "STRING"]],
    steps: [
      [[rec("c", 100, 0, { id: 1, name: "a", qty: 1, doc }), rec("c", 100, 1, { id: 2, name: "b", qty: 2, doc: "second doc" }), rec("c", 100, 2, { id: 3, name: "c", qty: 3, doc: "third doc" })]],
      // d and c in one batch, then a later update of the new key that leaves doc unchanged too; and
      // a d whose c lands in the next batch.
      [[rec("d", 200, 4, { id: 1 }), rec("c", 200, 5, { id: 10, name: "a", qty: 1 }, ["doc"]), rec("u", 300, 0, { id: 10, name: "a", qty: 11 }, ["doc"])], [rec("d", 400, 4, { id: 2 })]],
      [[rec("c", 400, 5, { id: 20, name: "b", qty: 2 }, ["doc"])]],
      // A newer value of the new key's doc already known is not overwritten by the old key's.
      [[rec("d", 500, 4, { id: 3 }), rec("c", 500, 5, { id: 30, name: "c", qty: 3 }, ["doc"]), rec("u", 600, 0, { id: 30, name: "c", qty: 3, doc: "newer" })]],
    ],
    expect: [
      { afterStep: 2, rows: [{ id: 3, name: "c", qty: 3, doc: "third doc" }, { id: 10, name: "a", qty: 11, doc }, { id: 20, name: "b", qty: 2, doc: "second doc" }] },
      { rows: [{ id: 10, name: "a", qty: 11, doc }, { id: 20, name: "b", qty: 2, doc: "second doc" }, { id: 30, name: "c", qty: 3, doc: "newer" }] },
    ],
  },
  {
    rule: "new columns are added as they appear",
    table: "public.s_columns",
    key: ["id"],
    steps: [
      [[rec("c", 100, 0, { id: 1, name: "a", qty: 1 })]],
      [[rec("c", 200, 0, { id: 2, name: "b", qty: 2, color: null }), rec("c", 200, 1, { id: 3, name: "c", qty: 3, color: "red" })]],
      [[rec("u", 300, 0, { id: 1, name: "a", qty: 1, color: "blue", weight: 1.5 })]],
    ],
    expect: [
      {
        rows: [
          { id: 1, name: "a", qty: 1, color: "blue", weight: 1.5 },
          { id: 2, name: "b", qty: 2, color: null, weight: null },
          { id: 3, name: "c", qty: 3, color: "red", weight: null },
        ],
      },
    ],
  },
  {
    rule: "composite keys",
    table: "public.s_lines",
    key: ["order_id", "line"],
    steps: [[[rec("c", 100, 0, { order_id: 1, line: 1, sku: "a" }), rec("c", 100, 1, { order_id: 1, line: 2, sku: "b" }), rec("c", 100, 2, { order_id: 2, line: 1, sku: "c" }), rec("d", 100, 3, { order_id: 1, line: 2 })]]],
    expect: [{ rows: [{ order_id: 1, line: 1, sku: "a" }, { order_id: 2, line: 1, sku: "c" }] }],
  },
  {
    rule: "names Delta keeps only with column mapping land under their own names",
    table: "public.s_names",
    key: ["Key Col"],
    manifest: [["Key Col", "BIGINT"], ["Value Col", "STRING"], ["Ünïcode", "STRING"], ["a,b", "BIGINT"], ["it's", "STRING"], ["id", "STRING"]],
    steps: [
      [[rec("c", 100, 0, { "Key Col": 1, "Value Col": "v", "Ünïcode": "ü", "a,b": 1, "it's": "q", id: "not the key" }), rec("c", 100, 1, { "Key Col": 2, "Value Col": "w", "Ünïcode": null, "a,b": 2, "it's": "r", id: "not the key" })]],
      [[rec("u", 200, 0, { "Key Col": 1, "Value Col": "v2", "a,b": 3, "it's": "q2", id: "x" }, ["Ünïcode"])]],
    ],
    expect: [{ rows: [{ "Key Col": 1, "Value Col": "v2", "Ünïcode": "ü", "a,b": 3, "it's": "q2", id: "x" }, { "Key Col": 2, "Value Col": "w", "Ünïcode": null, "a,b": 2, "it's": "r", id: "not the key" }] }],
  },
  {
    rule: "two columns differing only in case fail their table alone, naming both",
    table: "public.s_case",
    key: ["id"],
    manifest: [["id", "BIGINT"], ["Value", "BIGINT"], ["value", "BIGINT"]],
    steps: [[[rec("c", 100, 0, { id: 1, Value: 1, value: 2 })]]],
    expect: [],
    fails: /columns "Value" and "value" differ only in case/,
  },
];

/** Values as comparable text: engines differ in how they hand out numbers (DuckDB BIGINT as strings). */
export function normalizeRows(rows: Row[]): Row[] {
  return rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !k.startsWith("__")).map(([k, v]) => [k, v === null || v === undefined ? null : String(v)])));
}
