import type { Db, Knex, Tx } from '../lib/db.ts';
import { PermanentMessageError } from '../lib/errors.ts';
import { buildEnvelope, type MessageType, type OrderStatusChangedData } from './messages.ts';
import { orderEventRow } from './order-events.ts';
import type { OrderRow } from './order-queries.ts';
import { FINAL_STATUSES, type OrderStatus, type RejectReason } from './order-status.ts';
import { outboxRow, type MessageContext } from './outbox.ts';
import type { PaymentGateway } from './payment-gateway.ts';
import { orderWebhooksInsert } from '../webhooks/deliveries.ts';

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
  // No inbox lookup first: the status under the row lock already says what is done (a message whose order is
  // final changes nothing), and the final step records the message in `processed_messages` for the record.
  const order = await deps.db.transaction((tx) => reserveInventory(tx, orderId, ctx));
  return order.status === 'INVENTORY_RESERVED' ? takePayment(deps, order, ctx) : order.status;
}

async function lockOrder(tx: Tx, orderId: string): Promise<OrderRow> {
  // NO KEY UPDATE: the status is not a key, and a weaker lock does not collide with foreign-key checks.
  const order = await tx<OrderRow>('orders').where({ id: orderId }).forNoKeyUpdate().first();
  if (!order) throw new PermanentMessageError(`Order ${orderId} does not exist`);
  return order;
}

/** Reserves every item of the order or none; stock rows are locked in id order, so orders cannot deadlock. */
async function reserveInventory(tx: Tx, orderId: string, ctx: ProcessContext): Promise<OrderRow> {
  const order = await lockOrder(tx, orderId);
  if (order.status !== 'RECEIVED') return order;

  const items: { product_id: string; quantity: number; sku: string; stock_available: number }[] = await tx(
    'order_items as i',
  )
    .join('products as p', 'p.id', 'i.product_id')
    .where('i.order_id', orderId)
    .orderBy('p.id')
    .forNoKeyUpdate('p')
    .select('i.product_id', 'i.quantity', 'p.sku', 'p.stock_available');
  const short = items.filter((i) => i.stock_available < i.quantity);
  if (short.length) {
    await transition(tx, order, 'REJECTED', ctx, {
      reason: 'OUT_OF_STOCK',
      eventType: 'OrderRejected',
      data: {
        out_of_stock: short.map((i) => ({
          product_id: i.product_id,
          sku: i.sku,
          requested: i.quantity,
          available: i.stock_available,
        })),
      },
    });
    return { ...order, status: 'REJECTED' };
  }

  const wanted = JSON.stringify(items.map((i) => ({ id: i.product_id, q: i.quantity })));
  await transition(tx, order, 'INVENTORY_RESERVED', ctx, {
    eventType: 'InventoryReserved',
    data: { items: items.map((i) => ({ product_id: i.product_id, quantity: i.quantity })) },
    alongside: [
      // No availability condition here: the rows are locked and checked above, and should anything still take
      // stock below zero, the table's CHECK constraint fails the whole transaction rather than oversell.
      [
        'stock',
        tx.raw(
          `update products p
              set stock_available = p.stock_available - v.q, stock_reserved = p.stock_reserved + v.q, updated_at = now()
             from json_to_recordset(?::json) as v(id uuid, q int)
            where p.id = v.id`,
          [wanted],
        ),
      ],
      [
        'reservations',
        tx('inventory_reservations').insert(
          items.map((i) => ({
            order_id: orderId,
            product_id: i.product_id,
            quantity: i.quantity,
            state: 'reserved',
          })),
        ),
      ],
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
  });
  return { ...order, status: 'INVENTORY_RESERVED' };
}

/**
 * Charges through the gateway outside any transaction (a provider call must not hold row locks), keyed by the
 * order id so a retried charge is the same charge; then records the outcome and confirms or rejects.
 */
async function takePayment(
  deps: ProcessOrderDeps,
  order: OrderRow,
  ctx: ProcessContext,
): Promise<OrderStatus> {
  const orderId = order.id;
  const result = await deps.payments.charge({
    idempotencyKey: `order:${orderId}`,
    amount: order.total,
    currency: order.currency,
    token: order.payment_token,
  });

  return deps.db.transaction(async (tx) => {
    const current = await lockOrder(tx, orderId);
    if (current.status !== 'INVENTORY_RESERVED') return current.status;
    // Lock the reserved stock rows in id order before the one statement below updates them in any order.
    await tx('products as p')
      .join('inventory_reservations as r', 'r.product_id', 'p.id')
      .where({ 'r.order_id': orderId, 'r.state': 'reserved' })
      .orderBy('p.id')
      .forNoKeyUpdate('p')
      .select('p.id');
    const captured = result.status === 'captured';
    const settle: [string, Knex.QueryBuilder | Knex.Raw][] = [
      [
        'payment',
        tx('payments')
          .where({ order_id: orderId })
          .update({
            status: result.status,
            provider_ref: result.providerRef,
            failure_reason: result.status === 'declined' ? result.reason : null,
            attempts: tx.raw('attempts + 1'),
            updated_at: tx.fn.now(),
          }),
      ],
      [
        'settled',
        tx('inventory_reservations')
          .where({ order_id: orderId, state: 'reserved' })
          .update({ state: captured ? 'committed' : 'released', updated_at: tx.fn.now() })
          .returning(['product_id', 'quantity']),
      ],
      // Committed stock leaves the shelf for good; released stock goes back to what can be sold.
      [
        'stock',
        tx.raw(
          `update products p
              set stock_reserved = p.stock_reserved - s.quantity,
                  stock_available = p.stock_available + case when ? then 0 else s.quantity end,
                  updated_at = now()
             from settled s
            where p.id = s.product_id`,
          [captured],
        ),
      ],
    ];
    if (captured) {
      await transition(tx, current, 'CONFIRMED', ctx, {
        eventType: 'OrderConfirmed',
        data: { payment: { status: 'captured', provider_ref: result.providerRef } },
        alongside: settle,
      });
      return 'CONFIRMED';
    }
    await transition(tx, current, 'REJECTED', ctx, {
      reason: 'PAYMENT_DECLINED',
      eventType: 'OrderRejected',
      data: {
        payment: { status: 'declined', provider_ref: result.providerRef, decline_reason: result.reason },
      },
      alongside: settle,
    });
    return 'REJECTED';
  });
}

const STATUS_MESSAGE: Partial<Record<OrderStatus, MessageType>> = {
  INVENTORY_RESERVED: 'OrderInventoryReserved',
  CONFIRMED: 'OrderConfirmed',
  REJECTED: 'OrderRejected',
};

/**
 * Moves the (locked) order to `to` in one statement: the status, its trace step, the status-changed message, the
 * step's own changes (`alongside`, each a named data-modifying CTE that later ones may read), and, for a final
 * status, the message marked processed, and the webhook deliveries the new status announces.
 */
async function transition(
  tx: Tx,
  order: OrderRow,
  to: OrderStatus,
  ctx: ProcessContext,
  step: {
    eventType: string;
    reason?: RejectReason;
    data?: Record<string, unknown>;
    alongside?: [string, Knex.QueryBuilder | Knex.Raw][];
  },
): Promise<void> {
  let q = tx.queryBuilder();
  for (const [name, change] of step.alongside ?? []) q = q.with(name, change);
  q = q
    .with(
      'moved',
      tx('orders')
        .where({ id: order.id })
        .update({ status: to, reject_reason: step.reason ?? null, updated_at: tx.fn.now() })
        .returning(['created_at', 'updated_at']),
    )
    .with(
      'step',
      tx('order_events').insert(
        orderEventRow({
          orderId: order.id,
          type: step.eventType,
          fromStatus: order.status,
          toStatus: to,
          reason: step.reason ?? null,
          data: step.data ?? {},
          messageId: ctx.messageId,
          correlationId: ctx.correlationId,
        }),
      ),
    );
  const type = STATUS_MESSAGE[to];
  if (type) {
    const data: OrderStatusChangedData = {
      customer_id: order.customer_id,
      from_status: order.status,
      status: to,
      reason: step.reason ?? null,
    };
    q = q.with('message', tx('outbox').insert(outboxRow(buildEnvelope(type, order.id, data), ctx)));
  }
  if (FINAL_STATUSES.has(to)) {
    // The message is done when the order is final: recorded in the same transaction, so never half-done.
    q = q.with(
      'processed',
      tx('processed_messages')
        .insert({ consumer: ORDER_CREATED_CONSUMER, message_id: ctx.messageId })
        .onConflict(['consumer', 'message_id'])
        .ignore(),
    );
  }
  // Webhook deliveries commit with the status change, before the message is acked: none is lost to a crash.
  const deliveries = orderWebhooksInsert(tx, {
    id: order.id,
    customer_id: order.customer_id,
    total: order.total,
    currency: order.currency,
    status: to,
    reason: step.reason ?? null,
    correlationId: ctx.correlationId,
  });
  if (deliveries) q = q.with('webhooks', deliveries);
  const [times] = await q.select<{ created_at: Date; updated_at: Date }[]>('*').from('moved');
  ctx.steps?.push({
    from: order.status,
    to,
    reason: step.reason ?? null,
    receivedAt: times.created_at,
    at: times.updated_at,
  });
}
