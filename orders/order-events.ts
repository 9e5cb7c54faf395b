import type { Db } from '../lib/db.ts';
import { traceIds } from '../lib/telemetry.ts';
import type { OrderStatus } from './lifecycle.ts';

export interface NewOrderEvent {
  orderId: string;
  type: string;
  fromStatus: OrderStatus | null;
  toStatus: OrderStatus | null;
  reason?: string | null;
  data?: Record<string, unknown>;
  messageId?: string | null;
  correlationId?: string | null;
  /** When the step happened: the instant its message carries as `occurred_at` (the database's now() if absent). */
  createdAt?: string | undefined;
}

/**
 * The `order_events` row of one step of an order's trace, written in the transaction that made the step. With
 * tracing on, its data carries the `trace_id` of the step's span, so a step leads to its distributed trace.
 */
export function orderEventRow(e: NewOrderEvent) {
  const ids = traceIds();
  return {
    order_id: e.orderId,
    type: e.type,
    from_status: e.fromStatus,
    to_status: e.toStatus,
    reason: e.reason ?? null,
    data: ids ? { ...e.data, trace_id: ids.trace_id } : (e.data ?? {}),
    message_id: e.messageId ?? null,
    correlation_id: e.correlationId ?? null,
    ...(e.createdAt ? { created_at: e.createdAt } : {}),
  };
}

export interface OrderEventView {
  id: number;
  type: string;
  from_status: OrderStatus | null;
  to_status: OrderStatus | null;
  reason: string | null;
  data: Record<string, unknown>;
  message_id: string | null;
  correlation_id: string | null;
  created_at: Date;
}

export async function listOrderEvents(db: Db, orderId: string): Promise<OrderEventView[]> {
  return db('order_events')
    .where({ order_id: orderId })
    .orderBy('id')
    .select(
      'id',
      'type',
      'from_status',
      'to_status',
      'reason',
      'data',
      'message_id',
      'correlation_id',
      'created_at',
    );
}
