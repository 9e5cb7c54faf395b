import type { Db, Tx } from '../lib/db.ts';
import { query, sql } from '../lib/sql.ts';
import { NotFoundError, PermanentMessageError } from '../lib/errors.ts';
import type { OrderStatus } from './lifecycle.ts';
import type { OrderRow } from './order-queries.ts';
import type { PaymentGateway } from './payment-gateway.ts';
import type { ChangeContext, ChangeHook } from './transition.ts';

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
 * Locks the order row and, in the same statement (after it, so every path takes the order's lock first), what a
 * step also needs locked: `extras` are scalar subqueries over the locked row `o`, returned as columns. One round
 * trip where a lock per table would take one each.
 */
export async function lockOrderWith<T extends Record<string, unknown>>(
  tx: Tx,
  orderId: string,
  extras: Record<keyof T & string, string>,
): Promise<(OrderRow & T) | undefined> {
  return (await lockOrdersWith<T>(tx, [orderId], extras)).get(orderId);
}

/**
 * lockOrderWith for a batch of orders, in one statement: the orders are locked in id order (two batches cannot
 * deadlock on them), each followed by its extras. Orders that do not exist are absent from the map.
 */
export async function lockOrdersWith<T extends Record<string, unknown>>(
  tx: Tx,
  orderIds: string[],
  extras: Record<keyof T & string, string>,
): Promise<Map<string, OrderRow & T>> {
  const columns = Object.entries(extras)
    .map(([name, sql]) => `${sql} as "${name}"`)
    .join(', ');
  const { rows } = await query<OrderRow & T>(
    tx,
    sql`with o as (select * from orders where id = any(${orderIds}::uuid[]) order by id for no key update)
        select o.*, ${sql.raw(columns)} from o order by o.id`,
  );
  return new Map(rows.map((r) => [r.id, r]));
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
