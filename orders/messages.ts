import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { ExchangeKey } from '../lib/amqp/topology.ts';
import type { OrderStatus, RejectReason } from './order-status.ts';

/** The message types comanda publishes, and the fanout exchange each goes to. */
export const MESSAGE_EXCHANGES = {
  OrderCreated: 'orderCreated',
  OrderInventoryReserved: 'orderStatusChanged',
  OrderConfirmed: 'orderStatusChanged',
  OrderRejected: 'orderStatusChanged',
} as const satisfies Record<string, ExchangeKey>;

export type MessageType = keyof typeof MESSAGE_EXCHANGES;

/** The JSON envelope of every message: `id` is also the AMQP messageId, so consumers can de-duplicate. */
export interface Envelope<T = unknown> {
  id: string;
  type: MessageType;
  occurred_at: string;
  order_id: string;
  data: T;
}

export interface OrderCreatedData {
  customer_id: string;
  total: number;
  currency: string;
  items: { product_id: string; quantity: number; unit_price: number }[];
}

export interface OrderStatusChangedData {
  customer_id: string;
  from_status: OrderStatus;
  status: OrderStatus;
  reason: RejectReason | null;
}

export function buildEnvelope<T>(type: MessageType, orderId: string, data: T): Envelope<T> {
  return { id: randomUUID(), type, occurred_at: new Date().toISOString(), order_id: orderId, data };
}

const orderCreatedSchema = z.object({
  id: z.uuid(),
  type: z.literal('OrderCreated'),
  occurred_at: z.string(),
  order_id: z.uuid(),
  data: z.looseObject({}),
});

/** Reads an OrderCreated envelope; anything else is a malformed message and throws a ZodError or SyntaxError. */
export function parseOrderCreated(content: Buffer): Envelope<Record<string, unknown>> {
  return orderCreatedSchema.parse(JSON.parse(content.toString('utf8')));
}
