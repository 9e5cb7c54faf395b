import { randomUUID } from 'node:crypto';
import test from 'ava';
import type { RunningAnalytics } from '../../analytics/consumer.ts';
import { countFacts, type CountedMessage } from '../../analytics/store.ts';
import type { OrderFact } from '../../analytics/tally.ts';
import { DEAD_REASON_HEADER, type SettledEvent } from '../../lib/amqp/consumer.ts';
import type { Db } from '../../lib/db.ts';
import type { OrderMessageType, OrderStatus } from '../../orders/lifecycle.ts';
import { orderExchange } from '../../orders/messages.ts';
import { publishRaw, startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';
import { analyticsSnapshot, startTestAnalytics } from './helpers.ts';

let p: TestPipeline;
let analytics: RunningAnalytics;
const settled: SettledEvent[] = [];

test.before(async () => {
  p = await startPipeline({}, { worker: false });
  analytics = await startTestAnalytics(p);
  for (const c of analytics.consumers) c.on('settled', (e) => settled.push(e));
});
test.after.always(async () => {
  await analytics?.stop();
  await p?.stop();
});
test.beforeEach(() => clearAnalytics(p.db));

const T0 = Date.parse('2026-11-30T10:58:00.000Z');
const PRODUCTS = [randomUUID(), randomUUID(), randomUUID()];
const LIVES = ['rejected', 'confirmed', 'refunded', 'timed-out', 'delivered'] as const;

/** The messages of one order's life, `n`-th of a series (its products, amounts, currency and times vary with n). */
function lifeOf(kind: (typeof LIVES)[number], n: number): CountedMessage[] {
  const orderId = randomUUID();
  const items = [
    {
      product_id: PRODUCTS[n % 3],
      sku: `SKU-${n % 3}`,
      name: `Product ${n % 3}`,
      quantity: 1 + (n % 4),
      unit_price: 500 + (n % 5) * 250,
    },
  ];
  const total = items[0].quantity * items[0].unit_price;
  const messages: CountedMessage[] = [];
  let status: OrderStatus = 'RECEIVED';
  const step = (type: OrderMessageType, to: OrderStatus, extra: Partial<OrderFact> = {}) => {
    const version = messages.length + 1;
    messages.push({
      messageId: randomUUID(),
      fact: {
        orderId,
        version,
        type,
        occurredAt: new Date(T0 + n * 7_000 + version * 900 * (1 + (n % 3))),
        currency: n % 4 === 0 ? 'USD' : 'EUR',
        total,
        previousStatus: version === 1 ? null : status,
        status: to,
        reason: null,
        ...extra,
      },
    });
    status = to;
  };
  step('OrderCreated', 'RECEIVED', { items });
  if (kind === 'rejected') {
    step('OrderRejected', 'REJECTED', { reason: 'OUT_OF_STOCK' });
    return messages;
  }
  step('OrderInventoryReserved', 'INVENTORY_RESERVED');
  if (kind === 'timed-out') {
    step('OrderAwaitingPayment', 'AWAITING_PAYMENT');
    step('OrderCancelled', 'CANCELLED', { reason: 'PAYMENT_TIMEOUT' });
    return messages;
  }
  step('OrderConfirmed', 'CONFIRMED');
  if (kind === 'confirmed') return messages;
  step('OrderProcessing', 'PROCESSING');
  if (kind === 'refunded') {
    step('OrderCancelled', 'CANCELLED', { reason: 'ADMIN' });
    step('OrderPaymentRefunded', 'CANCELLED', { refundAmount: total });
    return messages;
  }
  step('OrderShipped', 'SHIPPED');
  step('OrderDelivered', 'DELIVERED');
  return messages;
}

/** The message a relay would publish for `m`, on its order exchange. */
async function publish(m: CountedMessage): Promise<void> {
  const f = m.fact;
  const data =
    f.type === 'OrderCreated'
      ? {
          customer_id: 'demo:x',
          total: f.total,
          currency: f.currency,
          payment_method: 'card',
          items: f.items,
        }
      : {
          customer_id: 'demo:x',
          previous_status: f.previousStatus,
          status: f.status,
          reason: f.reason,
          total: f.total,
          currency: f.currency,
          ...(f.refundAmount === undefined ? {} : { refund: { amount: f.refundAmount, provider_ref: 'r1' } }),
        };
  const envelope = {
    id: m.messageId,
    type: f.type,
    occurred_at: f.occurredAt.toISOString(),
    aggregate_type: 'order',
    aggregate_id: f.orderId,
    version: f.version,
    data,
  };
  await publishRaw(p, orderExchange(f.type as OrderMessageType), JSON.stringify(envelope), {
    messageId: m.messageId,
    type: f.type,
  });
}

async function clearAnalytics(db: Db): Promise<void> {
  for (const table of ['analytics_rollups', 'analytics_orders', 'analytics_products', 'analytics_inbox'])
    await db(table).delete();
}

/** Every row analytics keeps, the product names included. */
async function figures(db: Db) {
  return {
    ...(await analyticsSnapshot(db)),
    products: await db('analytics_products').orderBy('product_id').select('product_id', 'sku', 'name'),
  };
}

/** The figures of counting `messages` from empty tables, one message per transaction. */
async function countedOneByOne(messages: CountedMessage[]) {
  await clearAnalytics(p.db);
  for (const m of messages) await countFacts(p.db, [m]);
  return figures(p.db);
}

const dayFigures = (snapshot: Awaited<ReturnType<typeof figures>>) =>
  Object.fromEntries(
    snapshot.rollups
      .filter((r: { granularity: string }) => r.granularity === 'day')
      .map((r: { metric: string; dim: string; currency: string; value: number }) => [
        `${r.currency}:${r.metric}:${r.dim}`,
        r.value,
      ]),
  );

/**
 * Holds the analytics consumer in a batch that waits on a row lock (the inbox row of a message it is counting)
 * while `publishAll` publishes, until those messages wait in the batcher; then lets it go. So they are all
 * counted in one batch. Returns the message of the held batch (counted once it is let go).
 */
async function inOneBatch(publishAll: () => Promise<number>): Promise<CountedMessage> {
  const [held] = lifeOf('confirmed', 0);
  const blocker = await p.db.transaction();
  try {
    await blocker('analytics_inbox').insert({ message_id: held.messageId });
    await publish(held);
    await until(async () => {
      const { rows } = await p.db.raw<{ rows: { n: number }[] }>(
        `select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'`,
      );
      return rows[0].n > 0;
    }, 'a batch to wait on the lock');
    const n = await publishAll();
    await until(() => analytics.batcher.pending === n, `the ${n} messages to wait for the next batch`);
  } finally {
    await blocker.rollback();
  }
  return held;
}

const outcomesOf = (messages: { messageId: string }[]) =>
  messages.map((m) => settled.filter((e) => e.messageId === m.messageId).map((e) => e.outcome));

test.serial(
  'when one batch holds a message twice, a redelivered message counted before and a second message about a change already counted, then each fact is counted once',
  async (t) => {
    const [created, reserved, confirmed] = lifeOf('confirmed', 1);
    await publish(created);
    await until(() => outcomesOf([created])[0].length === 1, 'OrderCreated to be counted');
    const restated = { messageId: randomUUID(), fact: confirmed.fact };

    const held = await inOneBatch(async () => {
      for (const m of [created, reserved, reserved, confirmed, restated]) await publish(m);
      return 5;
    });
    const all = [held, created, reserved, confirmed, restated];
    await until(() => outcomesOf(all).flat().length === 7, 'every delivery to be settled', 20_000);

    t.deepEqual(outcomesOf(all), [['acked'], ['acked', 'acked'], ['acked', 'acked'], ['acked'], ['acked']]);
    const batched = await figures(p.db);
    const { total, items } = created.fact;
    t.like(dayFigures(batched), {
      'USD:received:': 1, // the held batch's order
      'EUR:received:': 1,
      'EUR:confirmed:': 1,
      'EUR:gross_revenue:': total,
      [`EUR:product_units:${items![0].product_id}`]: items![0].quantity,
    });
    t.deepEqual(batched, await countedOneByOne([held, created, reserved, confirmed]));
  },
);

test.serial(
  'when one batch holds a malformed message, then only that message is dead-lettered and every other one is counted',
  async (t) => {
    const good = [...lifeOf('confirmed', 2), ...lifeOf('rejected', 3)];
    const malformed = lifeOf('confirmed', 4)[0];
    const held = await inOneBatch(async () => {
      for (const m of good.slice(0, 3)) await publish(m);
      // A valid envelope whose OrderCreated has no lines: malformed, whatever the attempt.
      await publishRaw(
        p,
        'orderCreated',
        JSON.stringify({
          id: malformed.messageId,
          type: 'OrderCreated',
          occurred_at: malformed.fact.occurredAt.toISOString(),
          aggregate_type: 'order',
          aggregate_id: malformed.fact.orderId,
          version: 1,
          data: { customer_id: 'demo:x', total: 100, currency: 'EUR', items: [] },
        }),
        { messageId: malformed.messageId, type: 'OrderCreated' },
      );
      for (const m of good.slice(3)) await publish(m);
      return good.length + 1;
    });
    await until(
      () => outcomesOf([held, ...good, malformed]).every((o) => o.length === 1),
      'every delivery to be settled',
      20_000,
    );

    t.deepEqual(outcomesOf([malformed]), [['dead-lettered']]);
    t.true(outcomesOf([held, ...good]).every(([o]) => o === 'acked'));
    const dead = await p.services.amqp.withChannel((ch) =>
      ch.get(p.services.topology.deadLetterQueue('analyticsOrderCreated'), { noAck: true }),
    );
    t.is(dead && dead.properties.messageId, malformed.messageId);
    t.regex(String(dead && dead.properties.headers?.[DEAD_REASON_HEADER]), /Malformed order message/);
    const counted = await p.db('analytics_inbox').pluck('message_id');
    t.deepEqual(counted.sort(), [held, ...good].map((m) => m.messageId).sort());
    t.deepEqual(await figures(p.db), await countedOneByOne([held, ...good]));
  },
);

test.serial(
  'when the same messages (with copies and restatements, in shuffled order) are counted one by one, in batches of any size, or in a single batch, then every row is the same',
  async (t) => {
    const lives = Array.from({ length: 40 }, (_, n) => lifeOf(LIVES[n % LIVES.length], n)).flat();
    const copies = lives.filter((_, i) => i % 7 === 0);
    const restated = lives.filter((_, i) => i % 11 === 0).map((m) => ({ ...m, messageId: randomUUID() }));
    let seed = 42;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const messages = [...lives, ...copies, ...restated]
      .map((m) => ({ m, r: random() }))
      .sort((a, b) => a.r - b.r)
      .map(({ m }) => m);

    const oneByOne = await countedOneByOne(messages);

    await clearAnalytics(p.db);
    let counted = 0;
    for (let i = 0, size = 1; i < messages.length; i += size, size = (size % 37) + 5)
      counted += await countFacts(p.db, messages.slice(i, i + size));
    const inBatches = await figures(p.db);

    await clearAnalytics(p.db);
    const inOne = await countFacts(p.db, messages);
    const inOneBatch = await figures(p.db);

    t.is(counted, lives.length + restated.length);
    t.is(inOne, lives.length + restated.length);
    t.deepEqual(inBatches, oneByOne);
    t.deepEqual(inOneBatch, oneByOne);
    // What the forty lives make, so the comparisons above are not of empty tables.
    const day = dayFigures(oneByOne);
    t.is(day['EUR:received:'] + day['USD:received:'], 40);
    t.is(day['EUR:delivered:'] + (day['USD:delivered:'] ?? 0), 8);
    t.is(oneByOne.orders.length, 40);
    t.is(oneByOne.products.length, 3);
  },
);
