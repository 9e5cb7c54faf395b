import type { ExchangeKey } from '../lib/amqp/topology.ts';
import { buildEnvelope, type Envelope } from '../lib/messages.ts';
import { outboxRow, type MessageContext } from '../lib/outbox.ts';
import { ORDER_MESSAGE_TYPES, type OrderMessageType, type OrderStatus } from './lifecycle.ts';

export const ORDER_AGGREGATE = 'order';

/** Commands the lifecycle sends itself: work that must happen after a commit, outside any transaction. */
export const ORDER_COMMANDS = ['PaymentRequested', 'RefundRequested'] as const;
export type OrderCommandType = (typeof ORDER_COMMANDS)[number];

/** The fanout exchange each order message goes to: OrderCreated alone, status changes, payment steps, commands. */
export function orderExchange(type: OrderMessageType | OrderCommandType): ExchangeKey {
  if (type === 'OrderCreated') return 'orderCreated';
  if ((ORDER_COMMANDS as readonly string[]).includes(type)) return 'orderCommands';
  if (type.startsWith('OrderPayment')) return 'orderPaymentEvents';
  return 'orderStatusChanged';
}

/** Every type the order exchanges carry, for consumers that read them all. */
export const ORDER_EXCHANGE_TYPES: readonly string[] = [...ORDER_MESSAGE_TYPES, ...ORDER_COMMANDS];

export interface OrderCreatedData {
  customer_id: string;
  total: number;
  currency: string;
  payment_method: 'card' | 'later';
  /** The lines as ordered; `sku` and `name` as the catalogue had them then (for readers such as analytics). */
  items: { product_id: string; sku: string; name: string; quantity: number; unit_price: number }[];
}

/**
 * What every later change of an order says: the status before and after (equal for a step that changes no
 * status, such as a refund), why, and the fulfilment fields where they apply. The envelope's `version` orders
 * the changes of one order.
 */
export interface OrderChangedData {
  customer_id: string;
  previous_status: OrderStatus;
  status: OrderStatus;
  reason: string | null;
  total: number;
  currency: string;
  tracking_number?: string | null;
  carrier?: string | null;
  delivered_at?: string | null;
  payment_due_at?: string | null;
  refund?: { amount: number; provider_ref: string } | undefined;
}

export interface PaymentRequestedData {
  token: string;
}

export interface RefundRequestedData {
  /** Why the money goes back: the order was cancelled after (or while) it was charged. */
  reason: string;
}

/** The outbox row of an order message at `version` of the order. */
export function orderOutboxRow<T>(
  order: { id: string; version: number },
  type: OrderMessageType | OrderCommandType,
  data: T,
  context: MessageContext,
) {
  const envelope: Envelope<T> = buildEnvelope(
    { type: ORDER_AGGREGATE, id: order.id, version: order.version },
    type,
    data,
  );
  return outboxRow(orderExchange(type), envelope, context);
}
