import { ORDER_STOCK_LINES_SQL, reserveStockCtes } from '../catalog/stock.ts';
import { PermanentMessageError } from '../lib/errors.ts';
import type { Tx } from '../lib/db.ts';
import type { OrderRow } from './order-queries.ts';
import type { OrderStatus } from './lifecycle.ts';
import {
  lockOrder,
  lockOrderWith,
  noteStep,
  ORDER_CREATED_CONSUMER,
  type OrderDeps,
  type StepContext,
} from './order-steps.ts';
import { chargeOrder } from './take-payment.ts';
import { applyTransition } from './transition.ts';

/**
 * Takes an order from RECEIVED to CONFIRMED or REJECTED (or, paying later, to AWAITING_PAYMENT). Each step is its
 * own transaction that re-reads the order under a row lock and acts only if the order is still where the step
 * expects it: a redelivered message resumes after the last committed step and never reserves or charges twice,
 * and an order cancelled meanwhile is left alone.
 */
export async function processOrder(deps: OrderDeps, orderId: string, ctx: StepContext): Promise<OrderStatus> {
  const order = await deps.db.transaction((tx) => reserveInventory(deps, tx, orderId, ctx));
  if (order.status !== 'INVENTORY_RESERVED') return order.status;
  if (order.payment_method === 'later') {
    return deps.db.transaction(async (tx) => {
      const current = await lockOrder(tx, orderId, 'message');
      if (current.status !== 'INVENTORY_RESERVED') return current.status;
      const moved = await applyTransition(
        tx,
        deps.hooks,
        current,
        {
          to: 'AWAITING_PAYMENT',
          actor: 'worker',
          set: { payment_due_at: tx.raw('now() + make_interval(secs => ?)', [deps.paymentWindowS]) },
          details: {},
        },
        { ...ctx, inbox: ORDER_CREATED_CONSUMER },
      );
      noteStep(ctx, current.status, moved);
      return moved.status;
    });
  }
  return chargeOrder(deps, order, { token: order.payment_token }, ctx);
}

/**
 * Reserves every item of the order or none; stock rows are locked in id order, so orders cannot deadlock. The
 * catalogue's CTEs write the stock, the reservations, the ledger and the stock messages in the move's statement.
 */
interface ReservedLine {
  product_id: string;
  quantity: number;
  sku: string;
  stock_available: number;
}

async function reserveInventory(
  deps: OrderDeps,
  tx: Tx,
  orderId: string,
  ctx: StepContext,
): Promise<OrderRow> {
  const locked = await lockOrderWith<{ lines: ReservedLine[] }>(tx, orderId, {
    lines: ORDER_STOCK_LINES_SQL,
  });
  if (!locked) throw new PermanentMessageError(`Order ${orderId} does not exist`);
  const { lines: items, ...order } = locked;
  if (order.status !== 'RECEIVED') return order;

  const short = items.filter((i) => i.stock_available < i.quantity);
  if (short.length) {
    const moved = await applyTransition(
      tx,
      deps.hooks,
      order,
      {
        to: 'REJECTED',
        actor: 'worker',
        reason: 'OUT_OF_STOCK',
        set: { reject_reason: 'OUT_OF_STOCK' },
        trace: {
          out_of_stock: short.map((i) => ({
            product_id: i.product_id,
            sku: i.sku,
            requested: i.quantity,
            available: i.stock_available,
          })),
        },
      },
      { ...ctx, inbox: ORDER_CREATED_CONSUMER },
    );
    noteStep(ctx, order.status, moved);
    return moved;
  }

  const moved = await applyTransition(
    tx,
    deps.hooks,
    order,
    {
      to: 'INVENTORY_RESERVED',
      actor: 'worker',
      trace: { items: items.map((i) => ({ product_id: i.product_id, quantity: i.quantity })) },
      alongside: [
        ...reserveStockCtes(tx, orderId, items, { actor: 'worker', ...ctx }),
        [
          'payment',
          tx('payments').insert({
            order_id: orderId,
            amount: order.total,
            currency: order.currency,
            status: 'pending',
          }),
        ],
      ],
    },
    ctx,
  );
  noteStep(ctx, order.status, moved);
  return moved;
}
