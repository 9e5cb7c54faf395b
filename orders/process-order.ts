import type { Db, Tx } from '../lib/db.ts';
import { PermanentMessageError } from '../lib/errors.ts';
import { buildEnvelope, type MessageType, type OrderStatusChangedData } from './messages.ts';
import { appendOrderEvent } from './order-events.ts';
import type { OrderRow } from './order-queries.ts';
import { FINAL_STATUSES, type OrderStatus, type RejectReason } from './order-status.ts';
import { enqueueMessage, type MessageContext } from './outbox.ts';
import type { PaymentGateway } from './payment-gateway.ts';
import { enqueueOrderWebhooks } from '../webhooks/deliveries.ts';

export const ORDER_CREATED_CONSUMER = 'worker.order-created';

export interface ProcessOrderDeps {
  db: Db;
  payments: PaymentGateway;
}

export interface ProcessContext extends MessageContext {
  messageId: string;
  /** When given, each committed-with-its-transaction step is added here (for metrics), with the database's times. */
  steps?: CompletedStep[];
}

export interface CompletedStep {
  from: OrderStatus;
  to: OrderStatus;
  reason: RejectReason | null;
  /** When the order was RECEIVED, and when this step happened (both PostgreSQL's clock). */
  receivedAt: Date;
  at: Date;
}

/**
 * Takes an order from RECEIVED to CONFIRMED or REJECTED. Each step is its own transaction that re-reads the
 * order under a row lock and acts only if the order is still where the step expects it: a redelivered message
 * resumes after the last committed step and never reserves or charges twice.
 */
export async function processOrder(
  deps: ProcessOrderDeps,
  orderId: string,
  ctx: ProcessContext,
): Promise<OrderStatus> {
  const { db } = deps;
  const seen = await db<{ consumer: string; message_id: string }>('processed_messages')
    .where({ consumer: ORDER_CREATED_CONSUMER, message_id: ctx.messageId })
    .first('message_id');
  if (seen)
    return (await db<OrderRow>('orders').where({ id: orderId }).first('status'))?.status ?? 'RECEIVED';

  const status = await db.transaction((tx) => reserveInventory(tx, orderId, ctx));
  return status === 'INVENTORY_RESERVED' ? takePayment(deps, orderId, ctx) : status;
}

async function lockOrder(tx: Tx, orderId: string): Promise<OrderRow> {
  // NO KEY UPDATE: the status is not a key, and a weaker lock does not collide with foreign-key checks.
  const order = await tx<OrderRow>('orders').where({ id: orderId }).forNoKeyUpdate().first();
  if (!order) throw new PermanentMessageError(`Order ${orderId} does not exist`);
  return order;
}

/** Reserves every item of the order or none; stock rows are locked in id order, so orders cannot deadlock. */
async function reserveInventory(tx: Tx, orderId: string, ctx: ProcessContext): Promise<OrderStatus> {
  const order = await lockOrder(tx, orderId);
  if (order.status !== 'RECEIVED') return order.status;

  const items: { product_id: string; quantity: number }[] = await tx('order_items')
    .where({ order_id: orderId })
    .orderBy('product_id')
    .select('product_id', 'quantity');
  const stock: { id: string; sku: string; stock_available: number }[] = await tx('products')
    .whereIn(
      'id',
      items.map((i) => i.product_id),
    )
    .orderBy('id')
    .forNoKeyUpdate()
    .select('id', 'sku', 'stock_available');
  const available = new Map(stock.map((s) => [s.id, s]));
  const short = items.filter((i) => (available.get(i.product_id)?.stock_available ?? 0) < i.quantity);
  if (short.length) {
    await transition(tx, order, 'REJECTED', ctx, {
      reason: 'OUT_OF_STOCK',
      eventType: 'OrderRejected',
      data: {
        out_of_stock: short.map((i) => ({
          product_id: i.product_id,
          sku: available.get(i.product_id)?.sku,
          requested: i.quantity,
          available: available.get(i.product_id)?.stock_available ?? 0,
        })),
      },
    });
    return 'REJECTED';
  }

  for (const item of items) {
    // Conditional even under the lock: stock can never go below zero, whatever else changes.
    const updated = await tx('products')
      .where({ id: item.product_id })
      .andWhere('stock_available', '>=', item.quantity)
      .update({
        stock_available: tx.raw('stock_available - ?', [item.quantity]),
        stock_reserved: tx.raw('stock_reserved + ?', [item.quantity]),
        updated_at: tx.fn.now(),
      });
    if (updated !== 1) throw new Error(`stock of ${item.product_id} changed under its row lock`);
  }
  await tx('inventory_reservations').insert(
    items.map((i) => ({ order_id: orderId, ...i, state: 'reserved' })),
  );
  await tx('payments').insert({
    order_id: orderId,
    amount: order.total,
    currency: order.currency,
    status: 'pending',
  });
  await transition(tx, order, 'INVENTORY_RESERVED', ctx, {
    eventType: 'InventoryReserved',
    data: { items: items.map((i) => ({ product_id: i.product_id, quantity: i.quantity })) },
  });
  return 'INVENTORY_RESERVED';
}

/**
 * Charges through the gateway outside any transaction (a provider call must not hold row locks), keyed by the
 * order id so a retried charge is the same charge; then records the outcome and confirms or rejects.
 */
async function takePayment(
  deps: ProcessOrderDeps,
  orderId: string,
  ctx: ProcessContext,
): Promise<OrderStatus> {
  const order = await deps.db<OrderRow>('orders').where({ id: orderId }).first();
  if (!order || order.status !== 'INVENTORY_RESERVED') return order?.status ?? 'RECEIVED';
  const result = await deps.payments.charge({
    idempotencyKey: `order:${orderId}`,
    amount: order.total,
    currency: order.currency,
    token: order.payment_token,
  });

  return deps.db.transaction(async (tx) => {
    const current = await lockOrder(tx, orderId);
    if (current.status !== 'INVENTORY_RESERVED') return current.status;
    await tx('payments')
      .where({ order_id: orderId })
      .update({
        status: result.status,
        provider_ref: result.providerRef,
        failure_reason: result.status === 'declined' ? result.reason : null,
        attempts: tx.raw('attempts + 1'),
        updated_at: tx.fn.now(),
      });
    const reserved: { product_id: string; quantity: number }[] = await tx('inventory_reservations')
      .where({ order_id: orderId, state: 'reserved' })
      .orderBy('product_id')
      .select('product_id', 'quantity');
    if (result.status === 'captured') {
      await settleReservations(tx, orderId, reserved, 'committed');
      await transition(tx, current, 'CONFIRMED', ctx, {
        eventType: 'OrderConfirmed',
        data: { payment: { status: 'captured', provider_ref: result.providerRef } },
      });
      return 'CONFIRMED';
    }
    await settleReservations(tx, orderId, reserved, 'released');
    await transition(tx, current, 'REJECTED', ctx, {
      reason: 'PAYMENT_DECLINED',
      eventType: 'OrderRejected',
      data: {
        payment: { status: 'declined', provider_ref: result.providerRef, decline_reason: result.reason },
      },
    });
    return 'REJECTED';
  });
}

/** Committed stock leaves the shelf for good; released stock goes back to what can be sold. */
async function settleReservations(
  tx: Tx,
  orderId: string,
  reserved: { product_id: string; quantity: number }[],
  state: 'committed' | 'released',
): Promise<void> {
  for (const r of reserved) {
    await tx('products')
      .where({ id: r.product_id })
      .update({
        stock_reserved: tx.raw('stock_reserved - ?', [r.quantity]),
        ...(state === 'released' ? { stock_available: tx.raw('stock_available + ?', [r.quantity]) } : {}),
        updated_at: tx.fn.now(),
      });
  }
  await tx('inventory_reservations')
    .where({ order_id: orderId, state: 'reserved' })
    .update({ state, updated_at: tx.fn.now() });
}

const STATUS_MESSAGE: Partial<Record<OrderStatus, MessageType>> = {
  INVENTORY_RESERVED: 'OrderInventoryReserved',
  CONFIRMED: 'OrderConfirmed',
  REJECTED: 'OrderRejected',
};

/** Moves the (locked) order to `to`: the status, its trace step and the status-changed message, together. */
async function transition(
  tx: Tx,
  order: OrderRow,
  to: OrderStatus,
  ctx: ProcessContext,
  step: { eventType: string; reason?: RejectReason; data?: Record<string, unknown> },
): Promise<void> {
  const [times] = await tx('orders')
    .where({ id: order.id })
    .update({ status: to, reject_reason: step.reason ?? null, updated_at: tx.fn.now() })
    .returning<{ created_at: Date; updated_at: Date }[]>(['created_at', 'updated_at']);
  ctx.steps?.push({
    from: order.status,
    to,
    reason: step.reason ?? null,
    receivedAt: times.created_at,
    at: times.updated_at,
  });
  await appendOrderEvent(tx, {
    orderId: order.id,
    type: step.eventType,
    fromStatus: order.status,
    toStatus: to,
    reason: step.reason ?? null,
    data: step.data ?? {},
    messageId: ctx.messageId,
    correlationId: ctx.correlationId,
  });
  const type = STATUS_MESSAGE[to];
  if (type) {
    const data: OrderStatusChangedData = {
      customer_id: order.customer_id,
      from_status: order.status,
      status: to,
      reason: step.reason ?? null,
    };
    await enqueueMessage(tx, buildEnvelope(type, order.id, data), ctx);
  }
  // Webhook deliveries commit with the status change, before the message is acked: none is lost to a crash.
  await enqueueOrderWebhooks(tx, order.id, to, ctx);
  if (FINAL_STATUSES.has(to)) {
    // The message is done when the order is final: recorded in the same transaction, so never half-done.
    await tx('processed_messages')
      .insert({ consumer: ORDER_CREATED_CONSUMER, message_id: ctx.messageId })
      .onConflict(['consumer', 'message_id'])
      .ignore();
  }
}
