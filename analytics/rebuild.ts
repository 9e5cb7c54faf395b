import type { Db, Tx } from '../lib/db.ts';
import { ORDER_STEPS, TRANSITIONS, type OrderStatus } from '../orders/lifecycle.ts';
import { accumulate, addToRollups, saveProductNames, saveTallies, type RollupRow } from './store.ts';
import { EMPTY_TALLY, tallyFact, type OrderFact, type OrderLine, type OrderTally } from './tally.ts';

/** Each trace step's message type, from the lifecycle table (OrderReceived → OrderCreated, …). */
const MESSAGE_OF_STEP = new Map<string, string>([
  ...TRANSITIONS.map((t) => [t.step, t.message] as [string, string]),
  ...Object.values(ORDER_STEPS).map((s) => [s.step, s.message] as [string, string]),
]);

const BATCH = 1000;

interface HistoryRow {
  order_id: string;
  type: string;
  from_status: OrderStatus | null;
  to_status: OrderStatus;
  reason: string | null;
  data: Record<string, unknown>;
  created_at: Date;
  currency: string;
  total: number;
}

export interface RebuildResult {
  orders: number;
  events: number;
  rows: number;
}

/**
 * Recomputes every analytics table from the order history (orders, order_items, order_events; product names from
 * products): each step of each order's trace becomes the fact its message stated, counted by the same function
 * as the live consumer, so both reach the same figures. Runs in one transaction that locks the analytics
 * tables and analytics' position in the feed: the live reader waits, then goes on from its position; facts
 * about changes the history already had change nothing (the tallies know what was counted).
 */
export async function rebuildAnalytics(db: Db): Promise<RebuildResult> {
  return db.transaction(async (tx) => {
    // The live reader's position first, as each of its batches takes it first: a batch waits for the rebuild
    // before it locks anything else, so the two cannot deadlock.
    await tx.raw('select 1 from analytics_progress for update');
    await tx.raw('lock table analytics_orders, analytics_rollups, analytics_products in exclusive mode');
    await tx('analytics_rollups').delete();
    await tx('analytics_orders').delete();
    await tx('analytics_products').delete();
    const rollups = new Map<string, RollupRow>();
    let after = '00000000-0000-0000-0000-000000000000';
    const result: RebuildResult = { orders: 0, events: 0, rows: 0 };
    for (;;) {
      const ids = (
        await tx('orders').where('id', '>', after).orderBy('id').limit(BATCH).select<{ id: string }[]>('id')
      ).map((r) => r.id);
      if (!ids.length) break;
      after = ids[ids.length - 1];
      result.events += await rebuildOrders(tx, ids, rollups);
      result.orders += ids.length;
    }
    await addToRollups(tx, rollups.values());
    await tx.raw(
      'update analytics_progress set newest_event_at = (select max(last_event_at) from analytics_orders)',
    );
    result.rows = rollups.size;
    await tx.raw('select pg_notify(?, ?)', ['analytics_updated', '']);
    return result;
  });
}

async function rebuildOrders(tx: Tx, ids: string[], rollups: Map<string, RollupRow>): Promise<number> {
  const history = await tx('order_events as e')
    .join('orders as o', 'o.id', 'e.order_id')
    .whereIn('e.order_id', ids)
    .orderBy([{ column: 'e.order_id' }, { column: 'e.id' }])
    .select<HistoryRow[]>(
      'e.order_id',
      'e.type',
      'e.from_status',
      'e.to_status',
      'e.reason',
      'e.data',
      'e.created_at',
      'o.currency',
      'o.total',
    );
  const lines = await tx('order_items as i')
    .leftJoin('products as p', 'p.id', 'i.product_id')
    .whereIn('i.order_id', ids)
    .orderBy('i.id')
    .select<(OrderLine & { order_id: string })[]>(
      'i.order_id',
      'i.product_id',
      'i.quantity',
      'i.unit_price',
      'p.sku',
      'p.name',
    );
  const linesOf = new Map<string, OrderLine[]>();
  for (const { order_id, ...line } of lines) linesOf.set(order_id, [...(linesOf.get(order_id) ?? []), line]);

  const tallies = new Map<string, OrderTally>();
  const versions = new Map<string, number>();
  for (const row of history) {
    // Every change writes one trace step and adds one to the version: the n-th step is version n.
    const version = (versions.get(row.order_id) ?? 0) + 1;
    versions.set(row.order_id, version);
    const type = MESSAGE_OF_STEP.get(row.type);
    if (!type || !row.to_status) continue;
    const fact: OrderFact = {
      orderId: row.order_id,
      version,
      type,
      occurredAt: row.created_at,
      currency: row.currency,
      total: row.total,
      previousStatus: row.from_status,
      status: row.to_status,
      reason: row.reason,
      items: type === 'OrderCreated' ? (linesOf.get(row.order_id) ?? []) : undefined,
      refundAmount: type === 'OrderPaymentRefunded' ? Number(row.data.amount ?? 0) : undefined,
    };
    const { tally, deltas } = tallyFact(tallies.get(row.order_id) ?? EMPTY_TALLY, fact);
    tallies.set(row.order_id, tally);
    accumulate(rollups, fact.currency, deltas);
  }
  await saveTallies(tx, tallies);
  await saveProductNames(tx, lines);
  return history.length;
}
