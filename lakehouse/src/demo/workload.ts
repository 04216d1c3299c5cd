/**
 * A live insert/update/delete workload over the demo tables, shared by `npm run demo` and the
 * pipeline tests. Every kind of change the landing contract has to carry shows up: several changes
 * to one key in one transaction, primary-key changes, deletes and re-inserts of the same key, and
 * updates that leave TOASTed columns unchanged. Clients run concurrently; a transaction that loses
 * a deadlock or serialization race is rolled back and counted, never retried half-way.
 */
import type { Client } from "pg";
import { LONG_TEXT_SQL } from "./schema";

export interface WorkloadOptions {
  /** Concurrent connections. */
  clients: number;
  /** Transactions per client (default: until the signal aborts). */
  transactionsPerClient?: number;
  /** Pause between a client's transactions, ms (default 0). */
  pauseMs?: number;
  seed: number;
  signal?: AbortSignal;
  /** Called after each committed transaction with the number of row changes it made. */
  onCommit?: (changes: number) => void;
}

export interface WorkloadResult {
  committed: number;
  aborted: number;
  changes: number;
}

/** mulberry32: a tiny seeded PRNG, so a failing randomized run can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pickOrder = "(SELECT order_id FROM public.orders ORDER BY random() LIMIT 1)";
const pickUser = "(SELECT user_id FROM public.users ORDER BY random() LIMIT 1)";

type Step = (c: Client, rnd: () => number) => Promise<number>;

const changed = (r: { rowCount: number | null }) => r.rowCount ?? 0;

const STEPS: [number, string, Step][] = [
  [
    6,
    "new order",
    async (c, rnd) =>
      changed(
        await c.query(
          `INSERT INTO public.orders (user_id, product_id, quantity, unit_price, status)
           SELECT u.user_id, p.product_id, $1, p.price, 'placed'
           FROM (SELECT user_id FROM public.users ORDER BY random() LIMIT 1) u,
                (SELECT product_id, price FROM public.products WHERE active ORDER BY random() LIMIT 1) p`,
          [1 + Math.floor(rnd() * 5)],
        ),
      ),
  ],
  [5, "order moves on", async (c) => changed(await c.query(`UPDATE public.orders SET status = CASE status WHEN 'placed' THEN 'paid' WHEN 'paid' THEN 'shipped' ELSE status END WHERE order_id = ${pickOrder}`))],
  [
    3,
    "order placed, then changed twice in one transaction",
    async (c, rnd) => {
      const r = await c.query<{ order_id: string }>(
        `INSERT INTO public.orders (user_id, product_id, quantity, unit_price, status)
         SELECT ${pickUser}, product_id, 1, price, 'placed' FROM public.products ORDER BY random() LIMIT 1 RETURNING order_id`,
      );
      if (r.rows.length === 0) return 0;
      const id = r.rows[0].order_id;
      await c.query("UPDATE public.orders SET quantity = quantity + $2 WHERE order_id = $1", [id, 1 + Math.floor(rnd() * 3)]);
      await c.query("UPDATE public.orders SET status = 'paid' WHERE order_id = $1", [id]);
      return 3;
    },
  ],
  [2, "order cancelled", async (c) => changed(await c.query(`UPDATE public.orders SET status = 'cancelled' WHERE order_id = ${pickOrder}`))],
  [1, "order deleted", async (c) => changed(await c.query(`DELETE FROM public.orders WHERE order_id = ${pickOrder}`))],
  [
    5,
    "stock moves",
    async (c, rnd) =>
      changed(
        await c.query(
          `INSERT INTO warehouse.stock_movement (item_id, direction, qty, note)
           SELECT item_id, $1, $2, 'live' FROM warehouse.stock_item ORDER BY random() LIMIT 1`,
          [rnd() < 0.55 ? "out" : "in", 1 + Math.floor(rnd() * 20)],
        ),
      ),
  ],
  [
    1,
    "stock movement re-keyed (primary key change)",
    async (c) =>
      changed(
        await c.query(
          `UPDATE warehouse.stock_movement SET movement_id = nextval(pg_get_serial_sequence('warehouse.stock_movement', 'movement_id'))
           WHERE movement_id = (SELECT movement_id FROM warehouse.stock_movement ORDER BY random() LIMIT 1)`,
        ),
      ),
  ],
  [1, "stock movement corrected", async (c) => changed(await c.query("UPDATE warehouse.stock_movement SET qty = qty + 1, note = 'corrected' WHERE movement_id = (SELECT movement_id FROM warehouse.stock_movement ORDER BY random() LIMIT 1)"))],
  [2, "stock item touched (TOASTed spec unchanged)", async (c) => changed(await c.query("UPDATE warehouse.stock_item SET updated_at = now(), unit_cost = unit_cost + 0.01 WHERE item_id = (SELECT item_id FROM warehouse.stock_item ORDER BY random() LIMIT 1)"))],
  [2, "user moves country (TOASTed profile unchanged)", async (c, rnd) => changed(await c.query(`UPDATE public.users SET country = $1 WHERE user_id = ${pickUser}`, [["DE", "FR", "US", "GB", "NL", "JP", "BR"][Math.floor(rnd() * 7)]]))],
  [1, "user rewrites profile", async (c) => changed(await c.query(`UPDATE public.users SET profile = ${LONG_TEXT_SQL} WHERE user_id = ${pickUser}`))],
  [
    2,
    "new user",
    async (c, rnd) => {
      const n = Math.floor(rnd() * 1e9);
      return changed(await c.query(`INSERT INTO public.users (email, full_name, country, profile) VALUES ($1, $2, 'DE', CASE WHEN $3 THEN ${LONG_TEXT_SQL} END)`, [`new${n}@example.com`, `New ${n}`, rnd() < 0.3]));
    },
  ],
  [
    1,
    "user deleted and re-inserted with the same key",
    async (c) => {
      const r = await c.query<{ user_id: string; email: string; full_name: string; country: string; signup_at: Date; profile: string | null }>(
        `DELETE FROM public.users WHERE user_id = ${pickUser} RETURNING *`,
      );
      if (r.rows.length === 0) return 0;
      const u = r.rows[0];
      await c.query("INSERT INTO public.users (user_id, email, full_name, country, signup_at, profile) VALUES ($1, $2, $3, $4, $5, $6)", [u.user_id, u.email, `${u.full_name} (back)`, u.country, u.signup_at, u.profile]);
      return 2;
    },
  ],
  [2, "product repriced", async (c, rnd) => changed(await c.query("UPDATE public.products SET price = round((price * $1)::numeric, 2), active = random() > 0.1 WHERE product_id = (SELECT product_id FROM public.products ORDER BY random() LIMIT 1)", [0.9 + rnd() * 0.2]))],
];

const TOTAL_WEIGHT = STEPS.reduce((s, [w]) => s + w, 0);

function pickStep(rnd: () => number): Step {
  let x = rnd() * TOTAL_WEIGHT;
  for (const [w, , step] of STEPS) {
    x -= w;
    if (x < 0) return step;
  }
  return STEPS[0][2];
}

const RETRYABLE = new Set(["40P01", "40001", "23505"]);

/** One client: transactions of 1–4 random steps until done or aborted. */
async function runClient(client: Client, options: WorkloadOptions, clientIndex: number, result: WorkloadResult): Promise<void> {
  const rnd = prng(options.seed * 1000 + clientIndex);
  for (let i = 0; options.transactionsPerClient === undefined || i < options.transactionsPerClient; i++) {
    if (options.signal?.aborted) return;
    const steps = 1 + Math.floor(rnd() * 4);
    let changes = 0;
    await client.query("BEGIN");
    try {
      for (let s = 0; s < steps; s++) changes += await pickStep(rnd)(client, rnd);
      await client.query("COMMIT");
      result.committed++;
      result.changes += changes;
      options.onCommit?.(changes);
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      if (!RETRYABLE.has((err as { code?: string }).code ?? "")) throw err;
      result.aborted++;
    }
    if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
  }
}

/** Runs the workload on `clients` connections (opened with connect, closed at the end). */
export async function runWorkload(connect: () => Promise<Client>, options: WorkloadOptions): Promise<WorkloadResult> {
  const result: WorkloadResult = { committed: 0, aborted: 0, changes: 0 };
  const clients = await Promise.all(Array.from({ length: options.clients }, () => connect()));
  try {
    await Promise.all(clients.map((c, i) => runClient(c, options, i, result)));
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
  return result;
}
