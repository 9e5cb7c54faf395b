import { randomUUID } from 'node:crypto';
import test from 'ava';
import fc from 'fast-check';
import { EMPTY_TALLY, tallyFact, type OrderFact } from '../../analytics/tally.ts';
import type { ExchangeKey } from '../../lib/amqp/topology.ts';
import { startPipeline, until } from '../helpers/pipeline.ts';
import { analyticsSnapshot, feedCounted, startTestAnalytics } from './helpers.ts';

const ORDER = randomUUID();
const PRODUCT = randomUUID();
const T0 = Date.parse('2026-11-30T10:59:58.000Z');

interface Step {
  exchange: ExchangeKey;
  type: string;
  data: Record<string, unknown>;
}

const changed = (previous: string, status: string, reason: string | null = null, extra = {}) => ({
  customer_id: 'demo:x',
  previous_status: previous,
  status,
  reason,
  total: 3750,
  currency: 'EUR',
  ...extra,
});

/** One order's life, across an hour boundary: created, reserved, confirmed, processing, cancelled, refunded. */
const LIFE: Step[] = [
  {
    exchange: 'orderCreated',
    type: 'OrderCreated',
    data: {
      customer_id: 'demo:x',
      total: 3750,
      currency: 'EUR',
      payment_method: 'card',
      items: [{ product_id: PRODUCT, sku: 'SKU-X', name: 'X', quantity: 3, unit_price: 1250 }],
    },
  },
  {
    exchange: 'orderStatusChanged',
    type: 'OrderInventoryReserved',
    data: changed('RECEIVED', 'INVENTORY_RESERVED'),
  },
  {
    exchange: 'orderStatusChanged',
    type: 'OrderConfirmed',
    data: changed('INVENTORY_RESERVED', 'CONFIRMED'),
  },
  { exchange: 'orderStatusChanged', type: 'OrderProcessing', data: changed('CONFIRMED', 'PROCESSING') },
  {
    exchange: 'orderStatusChanged',
    type: 'OrderCancelled',
    data: changed('PROCESSING', 'CANCELLED', 'ADMIN'),
  },
  {
    exchange: 'orderPaymentEvents',
    type: 'OrderPaymentRefunded',
    data: changed('CANCELLED', 'CANCELLED', 'ADMIN', { refund: { amount: 3750, provider_ref: 'r1' } }),
  },
];

const envelopes = LIFE.map((step, i) => ({
  exchange: step.exchange,
  envelope: {
    id: randomUUID(),
    type: step.type,
    occurred_at: new Date(T0 + i * 900).toISOString(),
    aggregate_type: 'order',
    aggregate_id: ORDER,
    version: i + 1,
    data: step.data,
  },
}));

test('when one order’s events reach the feed in reverse or shuffled order, then the figures and its tally are the same as in order', async (t) => {
  t.timeout(60_000);
  const p = await startPipeline({}, { worker: false });
  const analytics = startTestAnalytics(p);
  try {
    const deliver = async (order: number[]) => {
      await p.db('analytics_rollups').delete();
      await p.db('analytics_orders').delete();
      for (const i of order) {
        const { envelope } = envelopes[i];
        await p.db('admin_events').insert({
          type: envelope.type,
          aggregate_type: 'order',
          aggregate_id: envelope.aggregate_id,
          data: envelope,
        });
        // One at a time, so the order in which analytics reads them is the one chosen here.
        analytics.readNow();
        await until(() => feedCounted(p.db), `${envelope.type} to be counted`);
      }
      return analyticsSnapshot(p.db);
    };
    const inOrder = await deliver([0, 1, 2, 3, 4, 5]);
    t.deepEqual(await deliver([5, 4, 3, 2, 1, 0]), inOrder);
    t.deepEqual(await deliver([4, 2, 5, 0, 3, 1]), inOrder);

    const [tally] = inOrder.orders as { status: string; version: number; applied: string[] }[];
    t.is(tally.status, 'CANCELLED');
    t.is(tally.version, 6);
    const day = Object.fromEntries(
      inOrder.rollups
        .filter((r: any) => r.granularity === 'day')
        .map((r: any) => [`${r.metric}:${r.dim}`, r.value]),
    );
    t.like(day, {
      'received:': 1,
      'confirmed:': 1,
      'gross_revenue:': 3750,
      'cancelled:ADMIN': 1,
      'refunds:': 3750,
      [`product_units:${PRODUCT}`]: 3,
      [`product_revenue:${PRODUCT}`]: 3750,
      'outcome_time:2500': 1,
    });
    // Received and confirmed before 11:00, cancelled and refunded after: each change counts in its own hour.
    const hours = inOrder.rollups.filter((r: any) => r.granularity === 'hour' && r.metric !== 'outcome_time');
    t.deepEqual([...new Set(hours.map((r: any) => (r.bucket as Date).toISOString()))].sort(), [
      '2026-11-30T10:00:00.000Z',
      '2026-11-30T11:00:00.000Z',
    ]);
  } finally {
    await analytics.stop();
    await p.stop();
  }
});

test('when the facts of an order are tallied in any order, any number of times, then the figures are those of tallying each once in order', (t) => {
  const facts: OrderFact[] = envelopes.map(({ envelope }) => ({
    orderId: ORDER,
    version: envelope.version,
    type: envelope.type,
    occurredAt: new Date(envelope.occurred_at),
    currency: 'EUR',
    total: 3750,
    previousStatus: (envelope.data.previous_status as OrderFact['previousStatus']) ?? null,
    status: (envelope.data.status as OrderFact['status']) ?? 'RECEIVED',
    reason: (envelope.data.reason as string | null) ?? null,
    items: envelope.data.items as OrderFact['items'],
    refundAmount: (envelope.data.refund as { amount: number } | undefined)?.amount,
  }));
  const figures = (sequence: OrderFact[]) => {
    let tally = EMPTY_TALLY;
    const sums = new Map<string, number>();
    for (const fact of sequence) {
      const result = tallyFact(tally, fact);
      tally = result.tally;
      for (const d of result.deltas) {
        const key = `${d.metric}|${d.dim}|${d.at.toISOString()}`;
        sums.set(key, (sums.get(key) ?? 0) + d.value);
      }
    }
    return { sums: Object.fromEntries([...sums].sort()), status: tally.status, version: tally.version };
  };
  const expected = figures(facts);
  t.is(expected.status, 'CANCELLED');
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: facts.length - 1 }), { maxLength: 20 }),
      fc.func(fc.integer()),
      (extra, rank) => {
        const sequence = [...facts.map((_, i) => i), ...extra]
          .map((i, k) => ({ i, r: rank(i, k) }))
          .sort((a, b) => a.r - b.r)
          .map(({ i }) => facts[i]);
        t.deepEqual(figures(sequence), expected);
      },
    ),
  );
});
