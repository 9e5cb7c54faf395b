import type { Db, Tx } from '../lib/db.ts';
import { bucketOf, GRANULARITIES } from './model.ts';
import {
  EMPTY_TALLY,
  tallyFact,
  type Delta,
  type OrderFact,
  type OrderLine,
  type OrderTally,
} from './tally.ts';

/** The channel a counted change is announced on (NOTIFY, delivered at commit): the API's live dashboards. */
export const ANALYTICS_CHANNEL = 'analytics_updated';

/**
 * Tells the API instances (LISTEN on ANALYTICS_CHANNEL) that figures changed: at most once per `intervalMs`, in a
 * statement of its own after the counts committed. A NOTIFY inside every count's transaction would take
 * PostgreSQL's cluster-wide notify lock at each commit; the dashboards redraw at most twice a second anyway.
 */
export function notifyThrottled(db: Db, intervalMs: number, onError: (err: unknown) => void) {
  let timer: NodeJS.Timeout | undefined;
  const send = () => {
    timer = undefined;
    db.raw('select pg_notify(?, ?)', [ANALYTICS_CHANNEL, '']).catch(onError);
  };
  return {
    changed(): void {
      timer ??= setTimeout(send, intervalMs);
    },
    /** Sends what is pending now (on shutdown). */
    flush(): void {
      if (!timer) return;
      clearTimeout(timer);
      send();
    },
  };
}

/** One rollup row's change, keyed like the table's primary key. */
export interface RollupRow {
  granularity: string;
  metric: string;
  bucket: Date;
  currency: string;
  dim: string;
  value: number;
}

/** Adds `deltas` of one currency to `into`, once per granularity, summing deltas that land on the same row. */
export function accumulate(into: Map<string, RollupRow>, currency: string, deltas: Delta[]): void {
  for (const d of deltas) {
    for (const granularity of GRANULARITIES) {
      const bucket = bucketOf(d.at, granularity);
      const key = `${granularity}|${d.metric}|${bucket.getTime()}|${currency}|${d.dim}`;
      const row = into.get(key);
      if (row) row.value += d.value;
      else into.set(key, { granularity, metric: d.metric, bucket, currency, dim: d.dim, value: d.value });
    }
  }
}

/**
 * Adds the rows to the rollups in one statement. Rows go in primary-key order, so two transactions that touch
 * the same rows lock them in the same order and cannot deadlock each other.
 *
 * Here and below, rows travel as arrays or one JSON document rather than a VALUES list: the statement's text is
 * the same whatever the number of rows, so PostgreSQL prepares it once per connection. A VALUES list would be a
 * prepared statement per size, each kept by every connection (about 1 MB each for 300 rollup rows).
 */
export async function addToRollups(db: Db | Tx, rows: Iterable<RollupRow>): Promise<void> {
  const all = [...rows];
  if (!all.length) return;
  await db.raw(
    `insert into analytics_rollups (granularity, metric, bucket, currency, dim, value)
     select * from unnest(?::text[], ?::text[], ?::timestamptz[], ?::text[], ?::text[], ?::bigint[])
         as r(granularity, metric, bucket, currency, dim, value)
      order by granularity, metric, bucket, currency, dim
     on conflict (granularity, metric, bucket, currency, dim)
     do update set value = analytics_rollups.value + excluded.value`,
    [
      all.map((r) => r.granularity),
      all.map((r) => r.metric),
      all.map((r) => r.bucket),
      all.map((r) => r.currency),
      all.map((r) => r.dim),
      all.map((r) => r.value),
    ],
  );
}

interface TallyRow {
  order_id: string;
  currency: string | null;
  total: number | null;
  items: OrderLine[] | null;
  received_at: Date | null;
  confirmed_at: Date | null;
  outcome_at: Date | null;
  status: OrderTally['status'];
  version: number;
  applied: string[];
  last_event_at: Date | null;
}

function fromRow(row: TallyRow): OrderTally {
  return {
    currency: row.currency,
    total: row.total,
    items: row.items,
    receivedAt: row.received_at,
    confirmedAt: row.confirmed_at,
    outcomeAt: row.outcome_at,
    status: row.status,
    version: row.version,
    applied: row.applied,
    lastEventAt: row.last_event_at,
  };
}

/** The columns of an order's tally row besides its id. */
export const TALLY_COLUMNS = [
  'currency',
  'total',
  'items',
  'received_at',
  'confirmed_at',
  'outcome_at',
  'status',
  'version',
  'applied',
  'last_event_at',
] as const;

/** The tallies as one JSON document of `analytics_orders` rows (one statement text whatever their number). */
function tallyRows(tallies: Map<string, OrderTally>): string {
  return JSON.stringify(
    [...tallies].map(([orderId, t]) => ({
      order_id: orderId,
      currency: t.currency,
      total: t.total,
      items: t.items,
      received_at: t.receivedAt,
      confirmed_at: t.confirmedAt,
      outcome_at: t.outcomeAt,
      status: t.status,
      version: t.version,
      applied: t.applied,
      last_event_at: t.lastEventAt,
    })),
  );
}

/** Writes the orders' tallies, new or changed, in one statement (in order of id, like every lock taken here). */
export async function saveTallies(db: Db | Tx, tallies: Map<string, OrderTally>): Promise<void> {
  if (!tallies.size) return;
  await db.raw(
    `insert into analytics_orders (order_id, ${TALLY_COLUMNS.join(', ')}, updated_at)
     select order_id, ${TALLY_COLUMNS.join(', ')}, now()
       from jsonb_populate_recordset(null::analytics_orders, ?::jsonb)
      order by order_id
     on conflict (order_id) do update
        set ${TALLY_COLUMNS.map((c) => `${c} = excluded.${c}`).join(', ')}, updated_at = excluded.updated_at`,
    [tallyRows(tallies)],
  );
}

/**
 * Inserts the tallies of orders new to analytics as they are, and locks the rows of the others, in one statement
 * and in order of id (one order's messages are counted in turn, and two batches lock the orders they share in the
 * same order); returns the ids it inserted. An existing row is locked without being written (`do update … where
 * false` locks the row and updates nothing). A new order's tally is written once, complete: an empty row written
 * first and filled in later would be a second version of it in the same transaction, and on another page.
 */
async function insertNewTallies(tx: Tx, tallies: Map<string, OrderTally>): Promise<Set<string>> {
  const { rows } = await tx.raw<{ rows: { order_id: string }[] }>(
    `insert into analytics_orders (order_id, ${TALLY_COLUMNS.join(', ')}, updated_at)
     select order_id, ${TALLY_COLUMNS.join(', ')}, now()
       from jsonb_populate_recordset(null::analytics_orders, ?::jsonb)
      order by order_id
     on conflict (order_id) do update set order_id = excluded.order_id where false
     returning order_id`,
    [tallyRows(tallies)],
  );
  return new Set(rows.map((r) => r.order_id));
}

/**
 * Reads the tallies of orders this transaction has locked. A statement of its own, so its snapshot comes after the
 * locks and sees what the batches before this one committed.
 */
async function readTallies(tx: Tx, orderIds: string[]): Promise<Map<string, OrderTally>> {
  if (!orderIds.length) return new Map();
  const { rows } = await tx.raw<{ rows: TallyRow[] }>(
    `select * from analytics_orders where order_id = any(?::uuid[])`,
    [orderIds],
  );
  return new Map(rows.map((r) => [r.order_id, fromRow(r)]));
}

/** Names of the products in `lines`, kept for the top-products figures. */
function productNames(lines: OrderLine[]) {
  return lines.flatMap((l) =>
    l.sku || l.name ? [{ product_id: l.product_id, sku: l.sku ?? null, name: l.name ?? null }] : [],
  );
}

/**
 * Keeps the names of the products in `lines`, the last line of each product winning: one row per product, as a
 * statement cannot update a row twice.
 */
export async function saveProductNames(db: Db | Tx, lines: OrderLine[]): Promise<void> {
  const names = new Map(productNames(lines).map((n) => [n.product_id.toLowerCase(), n]));
  if (!names.size) return;
  await db.raw(
    `insert into analytics_products (product_id, sku, name)
     select product_id, sku, name from jsonb_to_recordset(?::jsonb) as p(product_id uuid, sku text, name text)
      order by product_id
     on conflict (product_id) do update set sku = excluded.sku, name = excluded.name`,
    [JSON.stringify([...names.values()])],
  );
}

/** Applies the facts in turn to their orders' tallies (those not in `tallies` start empty). */
function foldFacts(
  tallies: Map<string, OrderTally>,
  facts: OrderFact[],
  orderOf: (fact: OrderFact) => string,
): { tallies: Map<string, OrderTally>; deltas: { orderId: string; currency: string; deltas: Delta[] }[] } {
  const out: { orderId: string; currency: string; deltas: Delta[] }[] = [];
  for (const fact of facts) {
    const orderId = orderOf(fact);
    const { tally, deltas } = tallyFact(tallies.get(orderId) ?? EMPTY_TALLY, fact);
    tallies.set(orderId, tally);
    out.push({ orderId, currency: fact.currency, deltas });
  }
  return { tallies, deltas: out };
}

export function newestOf(facts: OrderFact[]): Date | null {
  let newest: Date | null = null;
  for (const f of facts) if (!newest || f.occurredAt > newest) newest = f.occurredAt;
  return newest;
}

/**
 * Applies a batch of facts to the analytics tables in the transaction `tx`, in a few statements whatever its size:
 * each fact is applied to its order's tally in batch order; the tallies of orders new to analytics are written as
 * they are and the others locked (one statement), the others are read and the facts applied to what they say, and
 * those tallies, the rollup changes and the product names are written back. A fact about a change its order's
 * tally has already applied (the same event read twice, or stated twice) changes nothing: the tallies' effect keys
 * stop it. Every lock is taken in order of key. Returns how many facts were applied.
 */
export async function applyFacts(tx: Tx, facts: OrderFact[]): Promise<number> {
  if (!facts.length) return 0;
  const orderOf = (fact: OrderFact) => fact.orderId.toLowerCase();
  // Each order's tally as if analytics had never seen it: right for every order that is new, which is most.
  const fromEmpty = foldFacts(new Map(), facts, orderOf);
  const created = await insertNewTallies(tx, fromEmpty.tallies);
  const rollups = new Map<string, RollupRow>();
  for (const { orderId, currency, deltas } of fromEmpty.deltas)
    if (created.has(orderId)) accumulate(rollups, currency, deltas);
  // The others are counted again from what their rows say.
  const known = facts.filter((f) => !created.has(orderOf(f)));
  const stored = await readTallies(tx, [...new Set(known.map(orderOf))]);
  const { tallies, deltas } = foldFacts(stored, known, orderOf);
  for (const d of deltas) accumulate(rollups, d.currency, d.deltas);
  await saveTallies(tx, tallies);
  await addToRollups(tx, rollups.values());
  await saveProductNames(
    tx,
    facts.flatMap((f) => f.items ?? []),
  );
  return facts.length;
}

/**
 * `applyFacts` in a transaction of its own, outside the feed (tests, benchmark): the position and the time of the
 * newest event counted are the reader's (`countFeedBatch`), and stay as they are.
 */
export async function countFacts(db: Db, facts: OrderFact[]): Promise<number> {
  if (!facts.length) return 0;
  return db.transaction((tx) => applyFacts(tx, facts));
}
