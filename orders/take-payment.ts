import { commitStockOfOrdersCtes, lockStockOfOrders, settleStockCtes, type Cte } from '../catalog/stock.ts';
import { PermanentMessageError } from '../lib/errors.ts';
import { together, type Tx } from '../lib/db.ts';
import { assignments, query, sql } from '../lib/sql.ts';
import { PaymentInFlightError } from './errors.ts';
import type { OrderStatus } from './lifecycle.ts';
import { orderOutboxRow, type RefundRequestedData } from './messages.ts';
import type { OrderRow } from './order-queries.ts';
import { lockOrder, lockOrdersWith, noteStep, type OrderDeps, type StepContext } from './order-steps.ts';
import type { ChargeResult } from './payment-gateway.ts';
import { applyTransition, applyTransitions, recordStep } from './transition.ts';

interface PaymentRow {
  order_id: string;
  amount: number;
  currency: string;
  status: 'pending' | 'processing' | 'captured' | 'declined' | 'refunded';
  provider_ref: string | null;
  request_id: string | null;
  attempts: number;
}

async function lockPayment(tx: Tx, orderId: string): Promise<PaymentRow | undefined> {
  return tx<PaymentRow>('payments').where({ order_id: orderId }).forNoKeyUpdate().first();
}

/** A reserved order to charge with the card it was posted with. */
export interface OrderToCharge {
  order: OrderRow;
  token: string | null;
  ctx: StepContext;
}

/**
 * Charges reserved orders with the cards they were posted with. The provider calls run outside any transaction
 * (they must not hold row locks), each keyed by its order so a retried charge is the same charge; then the
 * outcomes are settled under the orders' locks, in one transaction for the batch.
 */
export async function chargeOrders(deps: OrderDeps, charges: OrderToCharge[]): Promise<OrderStatus[]> {
  const results = await Promise.all(
    charges.map(({ order, token }) =>
      deps.payments.charge({
        idempotencyKey: `order:${order.id}`,
        amount: order.total,
        currency: order.currency,
        token,
      }),
    ),
  );
  return deps.db.transaction((tx) =>
    settleCharges(
      deps,
      tx,
      charges.map(({ order, ctx }, i) => ({
        orderId: order.id,
        result: results[i],
        ctx,
        requestId: null,
      })),
    ),
  );
}

/**
 * Pays an AWAITING_PAYMENT order with the card of one payment request (`ctx.messageId`). The attempt is claimed
 * first, so two requests never charge at once (the second waits and is retried), and each attempt has its own
 * provider key: a redelivered request is the same charge, another card is another charge.
 */
export async function payOrder(
  deps: OrderDeps,
  orderId: string,
  token: string,
  ctx: StepContext & { messageId: string },
): Promise<OrderStatus> {
  const claimed = await deps.db.transaction(async (tx) => {
    const order = await lockOrder(tx, orderId, 'message');
    if (order.status !== 'AWAITING_PAYMENT') return undefined;
    const payment = await lockPayment(tx, orderId);
    if (payment?.status === 'processing' && payment.request_id !== ctx.messageId) {
      throw new PaymentInFlightError(`A payment of order ${orderId} is being charged; this one waits for it`);
    }
    if (payment?.request_id !== ctx.messageId) {
      await tx('payments')
        .where({ order_id: orderId })
        .update({
          status: 'processing',
          request_id: ctx.messageId,
          attempts: tx.raw('attempts + 1'),
          updated_at: tx.fn.now(),
        });
    }
    return order;
  });
  if (!claimed) {
    const row = await deps.db<OrderRow>('orders').where({ id: orderId }).first('status');
    return row!.status;
  }
  const result = await deps.payments.charge({
    idempotencyKey: `payment:${orderId}:${ctx.messageId}`,
    amount: claimed.total,
    currency: claimed.currency,
    token,
  });
  const [status] = await deps.db.transaction((tx) =>
    settleCharges(deps, tx, [{ orderId, result, ctx, requestId: ctx.messageId }]),
  );
  return status;
}

/** A charge's outcome to record; `requestId` names the payment request of a pay-later order, else null. */
interface ChargeOutcome {
  orderId: string;
  result: ChargeResult;
  ctx: StepContext;
  requestId: string | null;
}

type LockedForSettling = OrderRow & { payment: PaymentRow | null };

/**
 * Records charges' outcomes under their orders' locks: the orders with their payments, then every reserved stock
 * row in id order, in two statements sent together. Reserved orders whose card was captured (the common case) are
 * then confirmed together, in one statement; every other outcome gets its own statements, all sent without waiting
 * for one another (different orders' rows, and stock changes that add up in any order).
 */
async function settleCharges(deps: OrderDeps, tx: Tx, outcomes: ChargeOutcome[]): Promise<OrderStatus[]> {
  const ids = outcomes.map((o) => o.orderId);
  const [locked, stock] = await together(
    tx,
    () =>
      lockOrdersWith<{ payment: PaymentRow | null }>(tx, ids, {
        payment: `(select row_to_json(pay) from payments pay where pay.order_id = o.id for no key update)`,
      }),
    () => lockStockOfOrders(tx, ids, ['reserved']),
  );
  const missing = ids.find((id) => !locked.has(id));
  if (missing) throw new PermanentMessageError(`Order ${missing} does not exist`);
  // The same order twice in a batch: the second gets the first one's outcome (it would find the order settled).
  const first = new Map<string, ChargeOutcome>();
  for (const o of outcomes) if (!first.has(o.orderId)) first.set(o.orderId, o);
  const [captured, others] = partition([...first.values()], (o) => {
    const order = locked.get(o.orderId)!;
    return (
      !o.requestId &&
      o.result.status === 'captured' &&
      !!order.payment &&
      order.status === 'INVENTORY_RESERVED'
    );
  });
  const [confirmed, ...settled] = await together(
    tx,
    () =>
      captured.length ? confirmCaptured(deps, tx, captured, locked, [...stock.keys()]) : Promise.resolve([]),
    ...others.map((o) => () => settleCharge(deps, tx, locked.get(o.orderId)!, o)),
  );
  const byOrder = new Map<string, OrderStatus>([
    ...captured.map((o, i): [string, OrderStatus] => [o.orderId, confirmed[i]]),
    ...others.map((o, i): [string, OrderStatus] => [o.orderId, settled[i]]),
  ]);
  return outcomes.map((o) => byOrder.get(o.orderId)!);
}

function partition<T>(items: T[], test: (item: T) => boolean): [T[], T[]] {
  const yes: T[] = [];
  const no: T[] = [];
  for (const item of items) (test(item) ? yes : no).push(item);
  return [yes, no];
}

/**
 * Confirms reserved orders whose cards were captured, all in one statement (applyTransitions): their payments
 * captured, their reservations sold, each its CONFIRMED step, message and webhooks, as settleCharge would one by one.
 */
async function confirmCaptured(
  deps: OrderDeps,
  tx: Tx,
  outcomes: ChargeOutcome[],
  locked: Map<string, LockedForSettling>,
  productIds: string[],
): Promise<OrderStatus[]> {
  const orderIds = outcomes.map((o) => o.orderId);
  const refs = JSON.stringify(outcomes.map((o) => ({ order_id: o.orderId, ref: o.result.providerRef })));
  const moved = await applyTransitions(
    tx,
    deps.hooks,
    outcomes.map(({ orderId, result, ctx }) => ({
      order: locked.get(orderId)!,
      spec: {
        to: 'CONFIRMED',
        actor: 'worker',
        trace: { payment: { status: result.status, provider_ref: result.providerRef } },
      },
      ctx,
    })),
    [
      [
        'payment',
        sql`update payments p
               set status = 'captured', provider_ref = v.ref, failure_reason = null, request_id = null,
                   attempts = p.attempts + 1, updated_at = now()
              from json_to_recordset(${refs}::json) as v(order_id uuid, ref text)
             where p.order_id = v.order_id and p.order_id = any(${orderIds}::uuid[])`,
      ],
      ...commitStockOfOrdersCtes(orderIds, productIds, 'worker'),
    ],
  );
  moved.forEach((m, i) => noteStep(outcomes[i].ctx, 'INVENTORY_RESERVED', m));
  return moved.map((m) => m.status);
}

/**
 * Records a charge's outcome for a locked order. A reserved (or waiting) order is confirmed with its stock
 * committed, or rejected with its stock released (a pay-later order instead keeps waiting, the declined attempt
 * in its trace). An order cancelled while the charge was in flight keeps no money: a captured charge is recorded
 * and its refund requested in the same transaction. Anything else means this outcome was settled already.
 */
async function settleCharge(
  deps: OrderDeps,
  tx: Tx,
  locked: LockedForSettling,
  { orderId, result, ctx, requestId }: ChargeOutcome,
): Promise<OrderStatus> {
  const { payment, ...order } = locked;
  if (!payment || (requestId && payment.request_id !== requestId)) return order.status;
  const captured = result.status === 'captured';
  const paymentUpdate = sql`update payments set ${assignments({
    status: result.status,
    provider_ref: result.providerRef,
    failure_reason: result.status === 'declined' ? result.reason : null,
    request_id: null,
    attempts: sql.raw(requestId ? 'attempts' : 'attempts + 1'),
    updated_at: sql.raw('now()'),
  })} where order_id = ${orderId}`;
  const paymentData = {
    status: result.status,
    provider_ref: result.providerRef,
    ...(result.status === 'declined' ? { decline_reason: result.reason } : {}),
  };

  if (order.status === 'CANCELLED') {
    if (payment.status !== 'pending' && payment.status !== 'processing') return order.status;
    await query(tx, paymentUpdate);
    if (captured) {
      const data: RefundRequestedData = { reason: 'charged while the order was being cancelled' };
      await tx('outbox').insert(orderOutboxRow(order, 'RefundRequested', data, ctx));
    }
    return order.status;
  }

  const expected = requestId ? 'AWAITING_PAYMENT' : 'INVENTORY_RESERVED';
  if (order.status !== expected) return order.status;
  if (!captured && requestId) {
    await recordStep(
      tx,
      deps.hooks,
      order,
      'PaymentDeclined',
      {
        reason: 'PAYMENT_DECLINED',
        trace: { payment: paymentData },
        alongside: [['payment', paymentUpdate]],
      },
      ctx,
    );
    return order.status;
  }
  const alongside: Cte[] = [
    ['payment', paymentUpdate],
    ...settleStockCtes(orderId, captured ? 'committed' : 'released', { actor: 'worker', ...ctx }),
  ];
  const moved = captured
    ? await applyTransition(
        tx,
        deps.hooks,
        order,
        { to: 'CONFIRMED', actor: 'worker', trace: { payment: paymentData }, alongside },
        ctx,
      )
    : await applyTransition(
        tx,
        deps.hooks,
        order,
        {
          to: 'REJECTED',
          actor: 'worker',
          reason: 'PAYMENT_DECLINED',
          set: { reject_reason: 'PAYMENT_DECLINED' },
          trace: { payment: paymentData },
          alongside,
        },
        ctx,
      );
  noteStep(ctx, order.status, moved);
  return moved.status;
}

/**
 * Gives a cancelled order's captured payment back, through the gateway (keyed by the order, so a retried refund
 * is the same refund), then records it: payment `refunded`, a PaymentRefunded step in the trace, its message and
 * webhook. A payment that is not captured (never charged, or refunded already) is left alone.
 */
export async function refundOrder(
  deps: OrderDeps,
  orderId: string,
  reason: string,
  ctx: StepContext & { messageId: string },
): Promise<void> {
  const payment = await deps.db<PaymentRow>('payments').where({ order_id: orderId }).first();
  if (!payment || payment.status !== 'captured' || !payment.provider_ref) return;
  const refund = await deps.payments.refund({
    idempotencyKey: `refund:${orderId}`,
    providerRef: payment.provider_ref,
    amount: payment.amount,
    currency: payment.currency,
  });
  await deps.db.transaction(async (tx) => {
    const order = await lockOrder(tx, orderId, 'message');
    const current = await lockPayment(tx, orderId);
    if (current?.status !== 'captured') return;
    const details = { refund: { amount: current.amount, provider_ref: refund.refundRef } };
    await recordStep(
      tx,
      deps.hooks,
      order,
      'PaymentRefunded',
      {
        reason: order.cancel_reason,
        details,
        trace: { ...details.refund, why: reason },
        alongside: [
          [
            'refunded',
            tx('payments').where({ order_id: orderId }).update({
              status: 'refunded',
              refund_ref: refund.refundRef,
              refunded_amount: current.amount,
              refunded_at: tx.fn.now(),
              updated_at: tx.fn.now(),
            }),
          ],
        ],
      },
      ctx,
    );
  });
}
