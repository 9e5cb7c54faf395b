import { randomUUID } from 'node:crypto';
import { lockStockOfOrders, restoreStockCtes } from '../catalog/stock.ts';
import type { Tx } from '../lib/db.ts';
import { NotFoundError, PreconditionFailedError } from '../lib/errors.ts';
import { OrderNotCancellableError } from './errors.ts';
import { findTransition, type Actor, type CancelReason } from './lifecycle.ts';
import { orderOutboxRow, type RefundRequestedData } from './messages.ts';
import type { OrderRow, Viewer } from './order-queries.ts';
import { lockOrder, type OrderDeps } from './order-steps.ts';
import { applyTransition, type ChangeContext } from './transition.ts';

export interface CancelInput {
  orderId: string;
  /** Who asks: a customer may cancel only their own orders (another's reads as not found). */
  viewer: Viewer;
  actor: Extract<Actor, 'customer' | 'admin'>;
  note?: string | undefined;
  /** The version the caller last saw (`If-Match`): a later change makes this a 412. */
  expectedVersion?: number | undefined;
}

/**
 * Cancels an order at the request of its customer or an admin. Cancelling a cancelled order changes nothing;
 * an order past the point of cancelling (shipped, delivered, rejected) is a 409 naming its status.
 */
export async function cancelOrder(
  deps: Pick<OrderDeps, 'db' | 'hooks'>,
  input: CancelInput,
  ctx: ChangeContext,
): Promise<{ order: OrderRow; changed: boolean }> {
  return deps.db.transaction(async (tx) => {
    const order = await lockOrder(tx, input.orderId, 'request');
    if (!input.viewer.admin && order.customer_id !== input.viewer.sub) {
      throw new NotFoundError(`Order ${input.orderId} not found`);
    }
    if (order.status === 'CANCELLED') return { order, changed: false };
    if (input.expectedVersion !== undefined && input.expectedVersion !== order.version) {
      throw new PreconditionFailedError(
        `The order is at version ${order.version}, not ${input.expectedVersion}: read it again and decide anew`,
      );
    }
    if (!findTransition(order.status, 'CANCELLED')) throw new OrderNotCancellableError(order.status);
    const reason: CancelReason = input.actor === 'admin' ? 'ADMIN' : 'CUSTOMER_REQUEST';
    const moved = await cancelLocked(deps, tx, order, { actor: input.actor, reason, note: input.note }, ctx);
    return { order: moved, changed: true };
  });
}

/**
 * Cancels a locked order in one statement: reserved stock released, stock a confirmed order had taken put back
 * on the shelf, and, when its payment was captured, a refund requested (the refund itself is a provider call, so
 * a consumer of that command makes it after this commits).
 */
async function cancelLocked(
  deps: Pick<OrderDeps, 'hooks'>,
  tx: Tx,
  order: OrderRow,
  spec: { actor: Actor; reason: CancelReason; note?: string | undefined },
  ctx: ChangeContext,
): Promise<OrderRow> {
  const payment = await tx('payments')
    .where({ order_id: order.id })
    .forNoKeyUpdate()
    .first<{ status: string } | undefined>('status');
  await lockStockOfOrders(tx, [order.id], ['reserved', 'committed']);
  const refund = payment?.status === 'captured';
  const refundData: RefundRequestedData = { reason: `order cancelled (${spec.reason})` };
  return applyTransition(
    tx,
    deps.hooks,
    order,
    {
      to: 'CANCELLED',
      actor: spec.actor,
      reason: spec.reason,
      set: { cancel_reason: spec.reason, cancel_note: spec.note ?? null },
      trace: { ...(spec.note ? { note: spec.note } : {}), refund_requested: refund },
      details: spec.note ? { note: spec.note } : {},
      alongside: restoreStockCtes(order.id, { actor: spec.actor, ...ctx }),
      outbox: refund ? [orderOutboxRow(order, 'RefundRequested', refundData, ctx)] : [],
    },
    ctx,
  );
}

/**
 * Cancels, one at a time, the orders whose payment window has passed (reason PAYMENT_TIMEOUT, stock released).
 * The timer is the orders' own `payment_due_at`, so it survives any restart; `SKIP LOCKED` lets every worker run
 * this side by side. Returns how many it cancelled.
 */
export async function cancelOverduePayments(
  deps: Pick<OrderDeps, 'db' | 'hooks'>,
  limit = 100,
): Promise<number> {
  let cancelled = 0;
  while (cancelled < limit) {
    const done = await deps.db.transaction(async (tx) => {
      const order = await tx<OrderRow>('orders')
        .where({ status: 'AWAITING_PAYMENT' })
        .andWhere('payment_due_at', '<=', tx.fn.now())
        .orderBy('payment_due_at')
        .forNoKeyUpdate()
        .skipLocked()
        .first();
      if (!order) return false;
      await cancelLocked(
        deps,
        tx,
        order,
        { actor: 'system', reason: 'PAYMENT_TIMEOUT' },
        {
          correlationId: order.correlation_id ?? randomUUID(),
        },
      );
      return true;
    });
    if (!done) break;
    cancelled += 1;
  }
  return cancelled;
}
