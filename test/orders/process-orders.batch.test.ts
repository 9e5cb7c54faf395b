import { randomUUID } from 'node:crypto';
import test from 'ava';
import { PermanentMessageError } from '../../lib/errors.ts';
import type { OrderDeps } from '../../orders/order-steps.ts';
import { SimulatedPaymentGateway } from '../../orders/payment-gateway.ts';
import { processOrders, type OrderJob } from '../../orders/process-order.ts';
import { webhookDeliveriesHook } from '../../webhooks/deliveries.ts';
import { buildProduct, stockOf } from '../helpers/factories.ts';
import { postOrder } from '../helpers/http.ts';
import { startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';

// No worker: the tests hand the RECEIVED orders to processOrders themselves, as a worker's batch.
let p: TestPipeline;
let deps: OrderDeps;
test.before(async () => {
  p = await startPipeline({}, { worker: false });
  deps = {
    db: p.db,
    hooks: [webhookDeliveriesHook],
    payments: new SimulatedPaymentGateway({ declineAbove: 1e9, latencyMs: 0 }),
    paymentWindowS: 900,
  };
});
test.after.always(async () => {
  await p?.stop();
});

async function receivedOrders(n: number, items: { product_id: string; quantity: number }[]) {
  const token = await p.token();
  const responses = await Promise.all(Array.from({ length: n }, () => postOrder(p.url, token, { items })));
  return responses.map((r) => r.body.id as string);
}

/** Runs `work`; returns its result and the statements it sent that match `pattern` and carry one of `orderIds`. */
async function statementsOf<T>(
  pattern: RegExp,
  orderIds: string[],
  work: () => Promise<T>,
): Promise<[T, string[]]> {
  const seen: string[] = [];
  const capture = (q: { sql: string; bindings?: unknown[] }) => {
    const values = JSON.stringify(q.bindings ?? []);
    if (pattern.test(q.sql) && orderIds.some((id) => values.includes(id))) seen.push(q.sql);
  };
  p.db.on('query', capture);
  try {
    return [await work(), seen];
  } finally {
    p.db.off('query', capture);
  }
}

const job = (orderId: string): OrderJob => ({
  orderId,
  ctx: { messageId: randomUUID(), correlationId: randomUUID() },
});

test('when a batch of orders shares a product with little stock, then as many are confirmed as there was stock, the rest are rejected, and each has its own trace', async (t) => {
  const scarce = await buildProduct(p.db, { stock_available: 5 });
  const ids = await receivedOrders(8, [{ product_id: scarce.id, quantity: 2 }]);

  const statuses = await processOrders(deps, ids.map(job));

  t.deepEqual(statuses.filter((s) => s === 'CONFIRMED').length, 2);
  t.deepEqual(statuses.filter((s) => s === 'REJECTED').length, 6);
  t.deepEqual(await stockOf(p.db, scarce.id), { available: 1, reserved: 0 });
  for (const [i, id] of ids.entries()) {
    const order = await p.db('orders').where({ id }).first();
    t.is(order.status, statuses[i]);
    const steps = await p.db('order_events').where({ order_id: id }).orderBy('id').pluck('to_status');
    t.deepEqual(
      steps,
      statuses[i] === 'CONFIRMED'
        ? ['RECEIVED', 'INVENTORY_RESERVED', 'CONFIRMED']
        : ['RECEIVED', 'REJECTED'],
    );
  }
});

test('when the same order is twice in one batch, then it is reserved and charged once', async (t) => {
  const product = await buildProduct(p.db, { stock_available: 10 });
  const [id] = await receivedOrders(1, [{ product_id: product.id, quantity: 3 }]);
  const first = job(id);

  const statuses = await processOrders(deps, [first, { ...first }]);

  t.deepEqual(statuses, ['CONFIRMED', 'CONFIRMED']);
  t.deepEqual(await stockOf(p.db, product.id), { available: 7, reserved: 0 });
  t.is((await p.db('payments').where({ order_id: id })).length, 1);
  t.is((await p.db('inventory_reservations').where({ order_id: id })).length, 1);
  t.is((await p.db('order_events').where({ order_id: id })).length, 3);
});

test('when a batch names an order that does not exist, then nothing of the batch is written and the failure is permanent', async (t) => {
  const product = await buildProduct(p.db, { stock_available: 10 });
  const [id] = await receivedOrders(1, [{ product_id: product.id, quantity: 1 }]);

  const err = await t.throwsAsync(processOrders(deps, [job(id), job(randomUUID())]));

  t.true(err instanceof PermanentMessageError);
  t.is((await p.db('orders').where({ id }).first()).status, 'RECEIVED');
  t.deepEqual(await stockOf(p.db, product.id), { available: 10, reserved: 0 });
});

test('when a batch needs two products that another transaction takes in id order, then neither waits for the other: the batch locks its stock rows in one id order', async (t) => {
  const [low, high] = (
    await Promise.all([
      buildProduct(p.db, { stock_available: 10 }),
      buildProduct(p.db, { stock_available: 10 }),
    ])
  ).sort((a, b) => (a.id < b.id ? -1 : 1));
  // The batch's first order (orders are taken in id order) needs the higher product, the second the lower one.
  const token = await p.token();
  const [first, second] = [randomUUID(), randomUUID()].sort();
  for (const [id, product] of [
    [first, high],
    [second, low],
  ] as const) {
    const res = await postOrder(p.url, token, { id, items: [{ product_id: product.id, quantity: 1 }] });
    t.is(res.status, 201);
  }

  // Another transaction (a cancellation, another worker's batch) holds the lower product…
  const other = await p.db.transaction();
  t.teardown(() => other.rollback().catch(() => {}));
  await other.raw('select 1 from products where id = ? for no key update', [low.id]);
  const batch = processOrders(deps, [job(first), job(second)]);
  await until(async () => {
    const { rows } = await p.db.raw(
      `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
    );
    return rows[0].n > 0;
  }, 'the batch to wait for the lower product');
  // …and then takes the higher one: the batch must not be holding it while it waits.
  await other.raw(`set local lock_timeout = '5s'`);
  await other.raw('select 1 from products where id = ? for no key update', [high.id]);
  await other.commit();

  t.deepEqual(await batch, ['CONFIRMED', 'CONFIRMED']);
  t.deepEqual(await stockOf(p.db, low.id), { available: 9, reserved: 0 });
  t.deepEqual(await stockOf(p.db, high.id), { available: 9, reserved: 0 });
});

test('when the catalogue is large, then a batch’s statements find their products by key, never by reading every product', async (t) => {
  const tag = randomUUID().slice(0, 8);
  await p.db.raw(
    `insert into products (sku, name, price, currency, stock_available)
     select 'BULK-' || ? || '-' || g, 'Bulk product', 100, 'EUR', 10 from generate_series(1, 5000) g`,
    [tag],
  );
  await p.db.raw('analyze products');
  const product = await buildProduct(p.db, { stock_available: 10 });
  const ids = await receivedOrders(3, [{ product_id: product.id, quantity: 1 }]);
  const statements: { sql: string; bindings: unknown[] }[] = [];
  const capture = (q: { sql: string; bindings?: unknown[] }) => {
    if (/\bproducts\b/.test(q.sql) && /\$\d/.test(q.sql))
      statements.push({ sql: q.sql, bindings: q.bindings ?? [] });
  };
  p.db.on('query', capture);
  try {
    t.deepEqual(await processOrders(deps, ids.map(job)), ['CONFIRMED', 'CONFIRMED', 'CONFIRMED']);
  } finally {
    p.db.off('query', capture);
  }

  t.true(statements.length >= 3, `the lock, reservation and settlement statements: ${statements.length}`);
  // Each as the worker runs it: prepared, with its generic plan.
  const client = (await p.db.client.acquireConnection()) as {
    query(q: string | { text: string; values: unknown[] }): Promise<{ rows: Record<string, string>[] }>;
  };
  try {
    await client.query('begin');
    await client.query('set local plan_cache_mode = force_generic_plan');
    for (const s of statements) {
      const plan = (await client.query({ text: `explain ${s.sql}`, values: s.bindings })).rows
        .map((r) => r['QUERY PLAN'])
        .join('\n');
      t.notRegex(plan, /Seq Scan on products/, s.sql.slice(0, 200));
    }
  } finally {
    await client.query('rollback');
    p.db.client.releaseConnection(client);
  }
});

test('when captured orders are confirmed together in one statement, then each is written as when confirmed alone', async (t) => {
  await p.db('webhook_endpoints').insert({
    owner: 'operations',
    url: 'https://example.test/confirmed',
    event_types: ['order.confirmed'],
    secret: 'whsec_x',
  });
  const [a, b] = [
    await buildProduct(p.db, { stock_available: 50 }),
    await buildProduct(p.db, { stock_available: 50 }),
  ];
  const versionsBefore = await p.db('products').whereIn('id', [a.id, b.id]).orderBy('id').pluck('version');
  const items = [
    { product_id: a.id, quantity: 2 },
    { product_id: b.id, quantity: 1 },
  ];
  const alone = await receivedOrders(3, items);
  for (const id of alone) t.deepEqual(await processOrders(deps, [job(id)]), ['CONFIRMED']);
  const batch = await receivedOrders(3, items);
  const [statuses, settlements] = await statementsOf(/update payments/, batch, () =>
    processOrders(deps, batch.map(job)),
  );
  t.deepEqual(statuses, ['CONFIRMED', 'CONFIRMED', 'CONFIRMED']);
  t.is(settlements.length, 1, 'the three settlements in one statement');

  const written = async (id: string) => ({
    order: await p.db('orders').where({ id }).first('status', 'version', 'reject_reason'),
    payment: await p
      .db('payments')
      .where({ order_id: id })
      .first('status', 'attempts', 'failure_reason', 'request_id'),
    reservations: await p
      .db('inventory_reservations')
      .where({ order_id: id })
      .orderBy('product_id')
      .select('state', 'quantity'),
    ledger: await p
      .db('stock_movements')
      .where({ order_id: id })
      .orderBy(['product_id', 'id'])
      .select('delta', 'reserved_delta', 'reason', 'actor', 'note'),
    steps: (
      await p.db('order_events').where({ order_id: id }).orderBy('id').select('type', 'to_status', 'data')
    ).map(
      (s: {
        type: string;
        to_status: string;
        data: { payment?: { status: string; provider_ref: string } };
      }) => [
        s.type,
        s.to_status,
        s.data.payment && [s.data.payment.status, typeof s.data.payment.provider_ref],
      ],
    ),
    messages: (
      await p.db('outbox').where({ aggregate_id: id }).orderBy('created_at').select('type', 'payload')
    ).map((m: { type: string; payload: { version: number; data: { status?: string } } }) => [
      m.type,
      m.payload.version,
      m.payload.data.status,
    ]),
    deliveries: (
      await p.db('webhook_deliveries').where({ order_id: id }).select('event_type', 'payload')
    ).map(
      (d: {
        event_type: string;
        payload: { data: { status: string; version: number; items: unknown[] } };
      }) => [d.event_type, d.payload.data.status, d.payload.data.version, d.payload.data.items.length],
    ),
  });
  for (const [i, id] of batch.entries()) t.deepEqual(await written(id), await written(alone[i]));
  t.deepEqual((await written(batch[0])).deliveries, [['order.confirmed', 'CONFIRMED', 3, 2]]);
  // Six orders, each a reservation and a sale of both products: twelve versions, and nothing left reserved.
  t.deepEqual(
    await p.db('products').whereIn('id', [a.id, b.id]).orderBy('id').pluck('version'),
    versionsBefore.map((v: number) => v + 12),
  );
  t.deepEqual(await stockOf(p.db, a.id), { available: 38, reserved: 0 });
  t.deepEqual(await stockOf(p.db, b.id), { available: 44, reserved: 0 });
  // A sale leaves available stock as it is: its ledger rows say so.
  const sales = await p.db('stock_movements').whereIn('order_id', batch).andWhere({ reason: 'sale' });
  t.is(sales.length, 6);
  for (const s of sales) t.is(s.stock_after, s.product_id === a.id ? 38 : 44);
});

test('when a batch reserves a product in one statement, then its ledger and stock messages are those of reserving the orders one by one', async (t) => {
  const product = await buildProduct(p.db, { stock_available: 8, low_stock_threshold: 6 });
  const before = await p.db('products').where({ id: product.id }).first('version');
  const ids = await receivedOrders(3, [{ product_id: product.id, quantity: 1 }]);
  const [statuses, reservations] = await statementsOf(/insert into "?inventory_reservations"?/, ids, () =>
    processOrders(deps, ids.map(job)),
  );
  t.deepEqual(statuses, ['CONFIRMED', 'CONFIRMED', 'CONFIRMED']);
  t.is(reservations.length, 1, 'the three reservations in one statement');

  // In the batch's order: 8 → 7 → 6 → 5, the last one under the threshold of 6.
  const ledger = await p
    .db('stock_movements')
    .where({ product_id: product.id, reason: 'reservation' })
    .select('order_id', 'delta', 'reserved_delta', 'stock_after');
  t.deepEqual(
    ids.map((id) => ledger.find((l: { order_id: string }) => l.order_id === id)),
    ids.map((id, i) => ({ order_id: id, delta: -1, reserved_delta: 1, stock_after: 7 - i })),
  );
  type StockMessage = { type: string; payload: { version: number; data: Record<string, unknown> } };
  const messages = (
    await p
      .db('outbox')
      .where({ aggregate_id: product.id })
      .whereIn('type', ['inventory.updated', 'inventory.low_stock'])
      .select<StockMessage[]>('type', 'payload')
  )
    .map(({ type, payload: { version, data } }) => [
      type,
      version - before.version,
      data.previous_stock,
      data.stock,
      data.reason ?? null,
    ])
    .filter(
      ([type, version, , , reason]) =>
        (version as number) > 0 && (reason === 'reservation' || type !== 'inventory.updated'),
    )
    .sort((a, b) => (a[1] as number) - (b[1] as number) || String(a[0]).localeCompare(String(b[0])));
  t.deepEqual(messages, [
    ['inventory.updated', 1, 8, 7, 'reservation'],
    ['inventory.updated', 2, 7, 6, 'reservation'],
    ['inventory.low_stock', 3, 6, 5, null],
    ['inventory.updated', 3, 6, 5, 'reservation'],
  ]);
  // Each order's stock message carries that order's correlation id.
  const headers = await p
    .db('outbox')
    .where({ aggregate_id: product.id, type: 'inventory.updated' })
    .whereRaw(`payload->'data'->>'reason' = 'reservation'`)
    .pluck('headers');
  t.is(new Set(headers.map((h: Record<string, string>) => h['x-correlation-id'])).size, 3);
  t.deepEqual(await stockOf(p.db, product.id), { available: 5, reserved: 0 });
});
