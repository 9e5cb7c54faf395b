import type { Db } from '../lib/db.ts';
import type { OrderStatus } from './lifecycle.ts';

/** One step of an order's trace as a live feed sends it; `id` is the order_events id, so a feed can resume. */
export interface OrderFeedEvent {
  id: number;
  order_id: string;
  type: string;
  from_status: OrderStatus | null;
  to_status: OrderStatus | null;
  reason: string | null;
  data: Record<string, unknown>;
  created_at: string;
}

/** Which orders a feed follows: one order, or every order of one customer (every order at all for an admin). */
export type FeedScope = { orderId: string } | { customerId: string } | { allOrders: true };

/** The trace steps in `scope` written after `afterId`, oldest first, at most `limit` of them. */
export async function orderEventsAfter(
  db: Db,
  scope: FeedScope,
  afterId: number,
  limit = 500,
): Promise<OrderFeedEvent[]> {
  const q = db('order_events as e')
    .where('e.id', '>', afterId)
    .orderBy('e.id')
    .limit(limit)
    .select(
      'e.id',
      'e.order_id',
      'e.type',
      'e.from_status',
      'e.to_status',
      'e.reason',
      'e.data',
      'e.created_at',
    );
  if ('orderId' in scope) void q.andWhere('e.order_id', scope.orderId);
  else if ('customerId' in scope) {
    void q.join('orders as o', 'o.id', 'e.order_id').andWhere('o.customer_id', scope.customerId);
  }
  const rows = (await q) as (Omit<OrderFeedEvent, 'created_at'> & { created_at: Date })[];
  return rows.map((r) => ({ ...r, created_at: r.created_at.toISOString() }));
}

/** The newest trace step id: where a feed that wants only what happens from now on starts. */
export async function latestOrderEventId(db: Db): Promise<number> {
  const row = await db('order_events').max<{ max: number | null }>('id as max').first();
  return row?.max ?? 0;
}
