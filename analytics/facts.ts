import { z } from 'zod';
import type { Envelope } from '../lib/messages.ts';
import { ORDER_STATUSES } from '../orders/lifecycle.ts';
import type { OrderFact } from './tally.ts';

const money = z.number().int().nonnegative();
// Ids the analytics tables keep as uuid: anything else would fail in the database on every retry (and fail the
// batch it came in) instead of being dead-lettered at once as malformed.
const id = z.guid();
const currency = z.string().min(1).max(10);

const createdData = z.object({
  total: money,
  currency,
  items: z
    .array(
      z.object({
        product_id: id,
        quantity: z.number().int().positive(),
        unit_price: money,
        sku: z.string().optional(),
        name: z.string().optional(),
      }),
    )
    .min(1),
});

const changedData = z.object({
  previous_status: z.enum(ORDER_STATUSES),
  status: z.enum(ORDER_STATUSES),
  reason: z.string().nullable().optional(),
  total: money,
  currency,
  refund: z.object({ amount: money }).optional(),
});

/** The fact an order message states; throws (a malformed message) when its data is not what its type says. */
export function factOfEnvelope(envelope: Envelope<Record<string, unknown>>): OrderFact {
  const occurredAt = new Date(envelope.occurred_at);
  if (Number.isNaN(occurredAt.getTime()))
    throw new Error(`occurred_at is not a time: ${envelope.occurred_at}`);
  const base = {
    orderId: id.parse(envelope.aggregate_id),
    version: envelope.version,
    type: envelope.type,
    occurredAt,
  };
  if (envelope.type === 'OrderCreated') {
    const data = createdData.parse(envelope.data);
    return {
      ...base,
      currency: data.currency,
      total: data.total,
      previousStatus: null,
      status: 'RECEIVED',
      reason: null,
      items: data.items,
    };
  }
  const data = changedData.parse(envelope.data);
  if (envelope.type === 'OrderPaymentRefunded' && !data.refund)
    throw new Error('a refund without its amount');
  return {
    ...base,
    currency: data.currency,
    total: data.total,
    previousStatus: data.previous_status,
    status: data.status,
    reason: data.reason ?? null,
    refundAmount: data.refund?.amount,
  };
}
