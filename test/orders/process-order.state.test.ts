import test from 'ava';
import { buildProduct, stockOf, waitForProcessed, whileStockIsHeld } from '../helpers/factories.ts';
import { getJson, postOrder } from '../helpers/http.ts';
import { publishRaw, startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';

let p: TestPipeline;
test.before(async () => {
  p = await startPipeline({ PAYMENT_DECLINE_ABOVE: '500000' });
});
test.after.always(async () => {
  await p?.stop();
});

test('when an order is posted, then it is CONFIRMED with the trace RECEIVED → INVENTORY_RESERVED → CONFIRMED and stock taken', async (t) => {
  const product = await buildProduct(p.db, { stock_available: 10, price: 1250 });
  const token = await p.token();

  const res = await postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 3 }] });

  t.is(res.status, 201);
  t.is(res.body.status, 'RECEIVED');
  t.is(res.body.total, 3750);
  t.is(res.headers.get('location'), `/orders/${res.body.id}`);
  t.is(await waitForProcessed(p.db, res.body.id), 'CONFIRMED');
  const events = await getJson(p.url, `/orders/${res.body.id}/events`, token);
  t.deepEqual(
    events.body.data.map((e: { to_status: string }) => e.to_status),
    ['RECEIVED', 'INVENTORY_RESERVED', 'CONFIRMED'],
  );
  t.deepEqual(await stockOf(p.db, product.id), { available: 7, reserved: 0 });
  const payment = await p.db('payments').where({ order_id: res.body.id }).first();
  t.is(payment.status, 'captured');
  t.is(payment.amount, 3750);
});

test('when an item runs out between the order and its reservation, then the order is REJECTED with OUT_OF_STOCK and no stock moves', async (t) => {
  const plenty = await buildProduct(p.db, { stock_available: 50 });
  const scarce = await buildProduct(p.db, { stock_available: 3 });
  const token = await p.token();

  const res = await whileStockIsHeld(
    p.db,
    scarce.id,
    () =>
      postOrder(p.url, token, {
        items: [
          { product_id: plenty.id, quantity: 5 },
          { sku: scarce.sku, quantity: 3 },
        ],
      }),
    { takeAll: true },
  );

  t.is(res.status, 201);
  t.is(await waitForProcessed(p.db, res.body.id), 'REJECTED');
  const order = await getJson(p.url, `/orders/${res.body.id}`, token);
  t.is(order.body.reject_reason, 'OUT_OF_STOCK');
  t.deepEqual(await stockOf(p.db, plenty.id), { available: 50, reserved: 0 });
  t.deepEqual(await stockOf(p.db, scarce.id), { available: 0, reserved: 0 });
  const events = await getJson(p.url, `/orders/${res.body.id}/events`, token);
  const last = events.body.data.at(-1);
  t.is(last.reason, 'OUT_OF_STOCK');
  t.is(last.data.out_of_stock[0].sku, scarce.sku);
});

test('when the payment is declined, then the order is REJECTED with PAYMENT_DECLINED and its stock is released', async (t) => {
  const product = await buildProduct(p.db, { stock_available: 10 });
  const token = await p.token();

  const res = await postOrder(p.url, token, {
    items: [{ product_id: product.id, quantity: 4 }],
    payment: { token: 'tok_decline' },
  });

  t.is(await waitForProcessed(p.db, res.body.id), 'REJECTED');
  const order = await getJson(p.url, `/orders/${res.body.id}`, token);
  t.is(order.body.reject_reason, 'PAYMENT_DECLINED');
  t.deepEqual(await stockOf(p.db, product.id), { available: 10, reserved: 0 });
  const events = await getJson(p.url, `/orders/${res.body.id}/events`, token);
  t.deepEqual(
    events.body.data.map((e: { to_status: string }) => e.to_status),
    ['RECEIVED', 'INVENTORY_RESERVED', 'REJECTED'],
  );
  const reservations = await p.db('inventory_reservations').where({ order_id: res.body.id });
  t.deepEqual(
    reservations.map((r: { state: string }) => r.state),
    ['released'],
  );
});

test('when the total is above the payment limit, then the payment is declined', async (t) => {
  const product = await buildProduct(p.db, { stock_available: 10, price: 400_000 });
  const token = await p.token();

  const res = await postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 2 }] });

  t.is(await waitForProcessed(p.db, res.body.id), 'REJECTED');
  const payment = await p.db('payments').where({ order_id: res.body.id }).first();
  t.is(payment.failure_reason, 'amount_over_limit');
});

test('when the same OrderCreated is delivered again, then nothing is reserved or charged twice', async (t) => {
  const product = await buildProduct(p.db, { stock_available: 20 });
  const token = await p.token();
  const res = await postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 5 }] });
  await waitForProcessed(p.db, res.body.id);
  const outbox = await p.db('outbox').where({ aggregate_id: res.body.id, type: 'OrderCreated' }).first();

  const settled: string[] = [];
  p.worker!.consumer.on('settled', (e) => {
    if (e.messageId === outbox.id) settled.push(e.outcome);
  });

  // Publish the very same message twice more, by hand, as a broker redelivery or a relay retry would.
  for (let i = 0; i < 2; i++) {
    await publishRaw(p, 'orderCreated', JSON.stringify(outbox.payload), {
      messageId: outbox.id,
      type: 'OrderCreated',
      headers: outbox.headers,
    });
  }
  await until(() => settled.length === 2, 'both duplicates to be settled');

  t.deepEqual(settled, ['acked', 'acked']);
  t.deepEqual(await stockOf(p.db, product.id), { available: 15, reserved: 0 });
  t.is((await p.db('payments').where({ order_id: res.body.id })).length, 1);
  t.is((await p.db('inventory_reservations').where({ order_id: res.body.id })).length, 1);
  const events = await p.db('order_events').where({ order_id: res.body.id });
  t.is(events.length, 3);
});

test('when many orders race for little stock, then no more is sold than there was and stock never goes negative', async (t) => {
  const product = await buildProduct(p.db, { stock_available: 7 });
  const token = await p.token();

  const responses = await Promise.all(
    Array.from({ length: 30 }, () =>
      postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 1 }] }),
    ),
  );

  // An order posted after the worker reserved the last unit is refused at once (409, nothing stored); the rest are
  // accepted, and the worker's reservations decide the race among them.
  const accepted = responses.filter((r) => r.status === 201);
  t.deepEqual(
    responses.filter((r) => r.status !== 201).map((r) => [r.status, r.body.code]),
    Array.from({ length: 30 - accepted.length }, () => [409, 'INSUFFICIENT_STOCK']),
  );
  const statuses = await Promise.all(accepted.map((r) => waitForProcessed(p.db, r.body.id)));
  t.is(statuses.filter((s) => s === 'CONFIRMED').length, 7);
  t.is(statuses.filter((s) => s === 'REJECTED').length, accepted.length - 7);
  t.deepEqual(await stockOf(p.db, product.id), { available: 0, reserved: 0 });
});

test('when a request carries X-Request-Id, then every step of the order’s trace, in the API and the worker, carries it as the correlation id', async (t) => {
  const product = await buildProduct(p.db);
  const correlation = `req-${Date.now()}`;

  const res = await postOrder(
    p.url,
    await p.token(),
    { items: [{ product_id: product.id, quantity: 1 }] },
    { headers: { 'x-request-id': correlation } },
  );

  t.is(res.headers.get('x-request-id'), correlation);
  await waitForProcessed(p.db, res.body.id);
  const steps = await p.db('order_events').where({ order_id: res.body.id }).orderBy('id');
  t.is(steps.length, 3);
  t.true(steps.every((s: { correlation_id: string }) => s.correlation_id === correlation));
  const messages = await p.db('outbox').where({ aggregate_id: res.body.id });
  t.true(
    messages.every((m: { headers: Record<string, string> }) => m.headers['x-correlation-id'] === correlation),
  );
});
