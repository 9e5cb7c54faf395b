import { NotFoundError } from '../lib/errors.ts';
import { OrderNotAwaitingPaymentError } from './errors.ts';
import { orderOutboxRow, type PaymentRequestedData } from './messages.ts';
import type { OrderRow, Viewer } from './order-queries.ts';
import { lockOrder, type OrderDeps } from './order-steps.ts';
import type { ChangeContext } from './transition.ts';

/**
 * Accepts a card for an order waiting for its payment: a PaymentRequested command is committed for the worker,
 * which charges it outside any transaction. Only the order's customer (or an admin) pays; only while it waits.
 */
export async function requestPayment(
  deps: Pick<OrderDeps, 'db'>,
  input: { orderId: string; viewer: Viewer; token: string },
  ctx: ChangeContext,
): Promise<OrderRow> {
  return deps.db.transaction(async (tx) => {
    const order = await lockOrder(tx, input.orderId, 'request');
    if (!input.viewer.admin && order.customer_id !== input.viewer.sub) {
      throw new NotFoundError(`Order ${input.orderId} not found`);
    }
    if (order.status !== 'AWAITING_PAYMENT') throw new OrderNotAwaitingPaymentError(order.status);
    const data: PaymentRequestedData = { token: input.token };
    await tx('outbox').insert(orderOutboxRow(order, 'PaymentRequested', data, ctx));
    return order;
  });
}
