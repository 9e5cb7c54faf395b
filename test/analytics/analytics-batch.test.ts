import { randomUUID } from 'node:crypto';
import test from 'ava';
import { countFeedBatch } from '../../analytics/reader.ts';
import { countFacts } from '../../analytics/store.ts';
import type { OrderFact } from '../../analytics/tally.ts';
import type { Db } from '../../lib/db.ts';
import type { OrderMessageType, OrderStatus } from '../../orders/lifecycle.ts';
import { startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';
import { analyticsSnapshot, feedCounted } from './helpers.ts';

let p: TestPipeline;

// No reader runs here: each test counts the feed itself, batch by batch, with countFeedBatch.
test.before(async () => {
  p = await startPipeline({}, { worker: false });
});
test.after.always(async () => {
  await p?.stop();
});
test.beforeEach(() => clearAnalytics(p.db));

/** One event of an order's life: the id of the message that stated it, and the fact. */
interface Event {
  messageId: string;
  fact: OrderFact;
}

const T0 = Date.parse('2026-11-30T10:58:00.000Z');
const PRODUCTS = [randomUUID(), randomUUID(), randomUUID()];
const LIVES = ['rejected', 'confirmed', 'refunded', 'timed-out', 'delivered'] as const;

/** The messages of one order's life, `n`-th of a series (its products, amounts, currency and times vary with n). */
function lifeOf(kind: (typeof LIVES)[number], n: number): Event[] {
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
  const messages: Event[] = [];
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

/** The envelope the outbox holds for `m`. */
function envelopeOf(m: Event) {
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
  return {
    id: m.messageId,
    type: f.type,
    occurred_at: f.occurredAt.toISOString(),
    aggregate_type: 'order',
    aggregate_id: f.orderId,
    version: f.version,
    data,
  };
}

/** Writes feed rows as the outbox's trigger does for a committed order message, each in a transaction of its own. */
async function feed(db: Db, ...rows: { type: string; aggregate_id: string; data: unknown }[]): Promise<void> {
  for (const row of rows)
    await db('admin_events').insert({
      type: row.type,
      aggregate_type: 'order',
      aggregate_id: row.aggregate_id,
      data: row.data,
    });
}

const feedOf = (...events: Event[]) =>
  feed(
    p.db,
    ...events.map((m) => ({ type: m.fact.type, aggregate_id: m.fact.orderId, data: envelopeOf(m) })),
  );

/**
 * Counts the feed batch by batch (at most `limit` rows each) until every row is counted; a batch may read less
 * than is there while a transaction of another test is running (rows after it wait). Returns the batches.
 */
async function countWholeFeed(limit = 5000) {
  const batches: Awaited<ReturnType<typeof countFeedBatch>>[] = [];
  await until(async () => {
    const batch = await countFeedBatch(p.db, limit);
    if (batch.read) batches.push(batch);
    return feedCounted(p.db);
  }, 'the feed to be counted');
  return batches;
}

async function clearAnalytics(db: Db): Promise<void> {
  for (const table of ['analytics_rollups', 'analytics_orders', 'analytics_products', 'admin_events'])
    await db(table).delete();
  await db('analytics_progress').update({ feed_tx: '0', feed_id: 0 });
}

/** Every row analytics keeps, the product names included. */
async function figures(db: Db) {
  return {
    ...(await analyticsSnapshot(db)),
    products: await db('analytics_products').orderBy('product_id').select('product_id', 'sku', 'name'),
  };
}

/** The figures of counting `events` from empty tables, one event per transaction. */
async function countedOneByOne(events: Event[]) {
  await clearAnalytics(p.db);
  for (const m of events) await countFacts(p.db, [m.fact]);
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

test.serial(
  'when one batch holds an event twice and a second event about a change already counted, then each fact is counted once',
  async (t) => {
    const [created, reserved, confirmed] = lifeOf('confirmed', 1);
    await feedOf(created);
    await countWholeFeed();
    const restated = { messageId: randomUUID(), fact: confirmed.fact };
    await feedOf(created, reserved, reserved, confirmed, restated);

    const batches = await countWholeFeed();
    t.is(
      batches.reduce((n, b) => n + b.read, 0),
      5,
    );
    const batched = await figures(p.db);
    const { total, items } = created.fact;
    t.like(dayFigures(batched), {
      'EUR:received:': 1,
      'EUR:confirmed:': 1,
      'EUR:gross_revenue:': total,
      [`EUR:product_units:${items![0].product_id}`]: items![0].quantity,
    });
    t.deepEqual(batched, await countedOneByOne([created, reserved, confirmed]));
  },
);

test.serial(
  'when the feed holds a malformed order event, then only that event is passed over and every other one is counted',
  async (t) => {
    const good = [...lifeOf('confirmed', 2), ...lifeOf('rejected', 3)];
    const malformed = lifeOf('confirmed', 4)[0];
    await feedOf(...good.slice(0, 3));
    // A valid envelope whose OrderCreated has no lines: it states no fact.
    await feed(p.db, {
      type: 'OrderCreated',
      aggregate_id: malformed.fact.orderId,
      data: {
        ...envelopeOf(malformed),
        data: { customer_id: 'demo:x', total: 100, currency: 'EUR', items: [] },
      },
    });
    await feedOf(...good.slice(3));
    // The feed's other rows (stock, dead letters…) are passed over too, without a word.
    await p
      .db('admin_events')
      .insert({ type: 'inventory.updated', aggregate_type: 'product', aggregate_id: randomUUID(), data: {} });

    const batches = await countWholeFeed();
    t.is(
      batches.reduce((n, b) => n + b.read, 0),
      good.length + 2,
    );
    t.is(
      batches.reduce((n, b) => n + b.malformed, 0),
      1,
    );
    t.is(
      batches.reduce((n, b) => n + b.counted, 0),
      good.length,
    );
    t.deepEqual(await figures(p.db), await countedOneByOne(good));
  },
);

test.serial(
  'when the same events (with copies and restatements, in shuffled order) are counted one by one, in feed batches of any size, or in a single batch, then every row is the same',
  async (t) => {
    const lives = Array.from({ length: 40 }, (_, n) => lifeOf(LIVES[n % LIVES.length], n)).flat();
    const copies = lives.filter((_, i) => i % 7 === 0);
    const restated = lives.filter((_, i) => i % 11 === 0).map((m) => ({ ...m, messageId: randomUUID() }));
    let seed = 42;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const events = [...lives, ...copies, ...restated]
      .map((m) => ({ m, r: random() }))
      .sort((a, b) => a.r - b.r)
      .map(({ m }) => m);

    const oneByOne = await countedOneByOne(events);

    await clearAnalytics(p.db);
    await feedOf(...events);
    const sizes = [1, 5, 17, 3, 42];
    let round = 0;
    await until(async () => {
      await countFeedBatch(p.db, sizes[round++ % sizes.length]);
      return feedCounted(p.db);
    }, 'the feed to be counted in batches of several sizes');
    const inBatches = await figures(p.db);

    await clearAnalytics(p.db);
    await countFacts(
      p.db,
      events.map((m) => m.fact),
    );
    const inOneBatch = await figures(p.db);

    t.true(round > 10);
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

test.serial(
  'when a transaction that took an earlier feed position commits after later events were written, then its events are counted, and no event is counted twice',
  async (t) => {
    const [created, reserved] = lifeOf('confirmed', 5);
    const [other] = lifeOf('confirmed', 6);
    const slow = await p.db.transaction();
    try {
      await slow('admin_events').insert({
        type: created.fact.type,
        aggregate_type: 'order',
        aggregate_id: created.fact.orderId,
        data: envelopeOf(created),
      });
      await feedOf(other, reserved);
      // The slow transaction still runs: nothing after its position is read yet, whatever committed.
      await countFeedBatch(p.db, 100);
      t.is((await p.db('analytics_orders').select('order_id')).length, 0);
      await slow.commit();
    } finally {
      if (!slow.isCompleted()) await slow.rollback();
    }
    await countWholeFeed();
    const counted = await figures(p.db);
    t.deepEqual(counted, await countedOneByOne([created, other, reserved]));
    t.is(counted.orders.length, 2);
  },
);
