import type { Db, Knex, Tx } from '../lib/db.ts';
import { NotFoundError, PermanentMessageError } from '../lib/errors.ts';
import type { OrderStatus } from './lifecycle.ts';
import type { OrderRow } from './order-queries.ts';
import type { PaymentGateway } from './payment-gateway.ts';
import type { ChangeContext, ChangeHook } from './transition.ts';

/** The inbox names of the worker's consumers, recorded with the change that finishes their message. */
export const ORDER_CREATED_CONSUMER = 'worker.order-created';
export const ORDER_COMMANDS_CONSUMER = 'worker.order-commands';

/** What the lifecycle's use cases are built from; entry points create each piece and pass it in. */
export interface OrderDeps {
  db: Db;
  /** Run with every change (webhook deliveries, …). */
  hooks: readonly ChangeHook[];
  payments: PaymentGateway;
  /** How long a pay-later order waits for its payment (seconds). */
  paymentWindowS: number;
}

export interface StepContext extends ChangeContext {
  /** When given, each committed move is added here (for metrics), with the database's times. */
  steps?: CompletedStep[];
}

export interface CompletedStep {
  from: OrderStatus;
  to: OrderStatus;
  reason: string | null;
  /** When the order was RECEIVED, and when this step happened (both PostgreSQL's clock). */
  receivedAt: Date;
  at: Date;
}

export function noteStep(ctx: StepContext, from: OrderStatus, moved: OrderRow): void {
  ctx.steps?.push({
    from,
    to: moved.status,
    reason: moved.reject_reason ?? moved.cancel_reason,
    receivedAt: moved.created_at,
    at: moved.updated_at,
  });
}

/**
 * Reads the order under a row lock (NO KEY UPDATE: the status is not a key, and a weaker lock does not collide
 * with foreign-key checks). A message naming no order is permanent; a request naming none is a 404.
 */
export async function lockOrder(tx: Tx, orderId: string, missing: 'message' | 'request'): Promise<OrderRow> {
  const order = await tx<OrderRow>('orders').where({ id: orderId }).forNoKeyUpdate().first();
  if (!order) {
    if (missing === 'message') throw new PermanentMessageError(`Order ${orderId} does not exist`);
    throw new NotFoundError(`Order ${orderId} not found`);
  }
  return order;
}

/** Locks the stock rows of the order's reservations in `states`, in id order, so changes cannot deadlock. */
export async function lockReservedStock(tx: Tx, orderId: string, states: string[]): Promise<void> {
  await tx('products as p')
    .join('inventory_reservations as r', 'r.product_id', 'p.id')
    .where('r.order_id', orderId)
    .whereIn('r.state', states)
    .orderBy('p.id')
    .forNoKeyUpdate('p')
    .select('p.id');
}

/**
 * The writes that settle an order's reservations (CTEs for a change's statement): reserved stock `committed`
 * leaves the shelf for good, `released` goes back to what can be sold. Lock the stock first.
 */
export function settleReservations(
  tx: Tx,
  orderId: string,
  outcome: 'committed' | 'released',
): [string, Knex.QueryBuilder | Knex.Raw][] {
  return [
    [
      'settled',
      tx('inventory_reservations')
        .where({ order_id: orderId, state: 'reserved' })
        .update({ state: outcome, updated_at: tx.fn.now() })
        .returning(['product_id', 'quantity']),
    ],
    [
      'stock',
      tx.raw(
        `update products p
            set stock_reserved = p.stock_reserved - s.quantity,
                stock_available = p.stock_available + ?,
                updated_at = now()
           from settled s
          where p.id = s.product_id`,
        [outcome === 'committed' ? 0 : tx.raw('s.quantity')],
      ),
    ],
  ];
}
