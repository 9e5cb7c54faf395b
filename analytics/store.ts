import type { Db, Knex, Tx } from '../lib/db.ts';
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
 */
export async function addToRollups(db: Db | Tx, rows: Iterable<RollupRow>): Promise<void> {
  const sorted = [...rows].sort(compareRows);
  for (let i = 0; i < sorted.length; i += 2000) {
    await db('analytics_rollups')
      .insert(sorted.slice(i, i + 2000))
      .onConflict(['granularity', 'metric', 'bucket', 'currency', 'dim'])
      .merge({ value: db.raw('analytics_rollups.value + excluded.value') });
  }
}

function compareRows(a: RollupRow, b: RollupRow): number {
  return (
    cmp(a.granularity, b.granularity) ||
    cmp(a.metric, b.metric) ||
    a.bucket.getTime() - b.bucket.getTime() ||
    cmp(a.currency, b.currency) ||
    cmp(a.dim, b.dim)
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
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

function fromRow(row: TallyRow | undefined): OrderTally {
  if (!row) return EMPTY_TALLY;
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

export function tallyRow(orderId: string, t: OrderTally, db: Knex): TallyRow & { updated_at: Knex.Raw } {
  return {
    order_id: orderId,
    currency: t.currency,
    total: t.total,
    items: t.items === null ? null : (JSON.stringify(t.items) as unknown as OrderLine[]),
    received_at: t.receivedAt,
    confirmed_at: t.confirmedAt,
    outcome_at: t.outcomeAt,
    status: t.status,
    version: t.version,
    applied: t.applied,
    last_event_at: t.lastEventAt,
    updated_at: db.fn.now(),
  };
}

/** Names of the products in `lines`, kept for the top-products figures. */
export function productNames(lines: OrderLine[]) {
  return lines.flatMap((l) =>
    l.sku || l.name ? [{ product_id: l.product_id, sku: l.sku ?? null, name: l.name ?? null }] : [],
  );
}

/**
 * Counts one message's fact exactly once: its id goes into the inbox in the same transaction as the order's
 * tally and the rollup changes, so a redelivered or replayed message (same id) changes nothing, and the tally's
 * effect keys stop a second message about the same change. Returns false for a message counted before.
 */
export async function countFact(db: Db, messageId: string, fact: OrderFact): Promise<boolean> {
  return db.transaction(async (tx) => {
    const fresh = await tx('analytics_inbox')
      .insert({ message_id: messageId })
      .onConflict('message_id')
      .ignore()
      .returning('message_id');
    if (fresh.length === 0) return false;
    // Creates the order's row if it is new, and locks and reads it either way, in one statement: one order's
    // messages are counted in turn.
    const [row] = (await tx('analytics_orders')
      .insert({ order_id: fact.orderId })
      .onConflict('order_id')
      .merge(['order_id'])
      .returning('*')) as TallyRow[];
    const { tally, deltas } = tallyFact(fromRow(row), fact);
    await tx('analytics_orders')
      .where({ order_id: fact.orderId })
      .update(tallyRow(fact.orderId, tally, tx));
    const rows = new Map<string, RollupRow>();
    accumulate(rows, fact.currency, deltas);
    if (rows.size) await addToRollups(tx, rows.values());
    const names = productNames(fact.items ?? []);
    if (names.length) await tx('analytics_products').insert(names).onConflict('product_id').merge();
    return true;
  });
}
