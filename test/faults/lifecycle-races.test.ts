import test from 'ava';
import { buildProduct, waitForAllProcessed } from '../helpers/factories.ts';
import { postOrder, sendJson, type HttpResult } from '../helpers/http.ts';
import { startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';

let p: TestPipeline;
test.before(async () => {
  p = await startPipeline({ DATABASE_POOL_MAX: '20' });
});
test.after.always(async () => {
  await p?.stop();
});

test('when 200 cancels and shipments race on 50 orders, then each order ends in exactly one legal state and stock, sales and refunds add up', async (t) => {
  t.timeout(120_000);
  const products = await Promise.all(
    Array.from({ length: 3 }, () => buildProduct(p.db, { stock_available: 200, price: 500 })),
  );
  const customer = await p.token();
  const admin = await p.token('ops', 'admin');
  const orders: { id: string; product: string; quantity: number }[] = [];
  for (let i = 0; i < 50; i++) {
    const product = products[i % products.length];
    const quantity = 1 + (i % 4);
    const res = await postOrder(p.url, customer, { items: [{ product_id: product.id, quantity }] });
    orders.push({ id: res.body.id, product: product.id, quantity });
  }
  await waitForAllProcessed(
    p.db,
    orders.map((o) => o.id),
  );
  for (const o of orders) {
    t.is(
      (await sendJson('PATCH', p.url, `/orders/${o.id}/status`, admin, { status: 'PROCESSING' })).status,
      200,
    );
  }

  // For each order at once: the customer cancels, an admin cancels, two operators ship it.
  const requests: Promise<HttpResult & { kind: string }>[] = orders.flatMap((o, i) => {
    const later = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const ship = (n: number, after = 0) =>
      later(after).then(() =>
        sendJson('PATCH', p.url, `/orders/${o.id}/status`, admin, {
          status: 'SHIPPED',
          tracking_number: `TRK-${o.id.slice(0, 8)}-${n}`,
          carrier: 'Correos',
        }).then((r) => ({ ...r, kind: 'ship' })),
      );
    const cancel = (token: string, after = 0) =>
      later(after).then(() =>
        sendJson('POST', p.url, `/orders/${o.id}/cancel`, token).then((r) => ({ ...r, kind: 'cancel' })),
      );
    // Who goes first alternates, so both ends win some of the races.
    return i % 2
      ? [cancel(customer), ship(1), cancel(admin), ship(2)]
      : [ship(1), cancel(customer), ship(2), cancel(admin)];
  });
  const answers = await Promise.all(requests);

  t.is(answers.length, 200);
  t.true(
    answers.every((a) => a.status === 200 || a.status === 409),
    JSON.stringify(answers.filter((a) => a.status !== 200 && a.status !== 409).map((a) => a.body)),
  );
  const rows: { id: string; status: string; tracking_number: string | null }[] = await p.db('orders').whereIn(
    'id',
    orders.map((o) => o.id),
  );
  t.true(rows.every((r) => r.status === 'CANCELLED' || r.status === 'SHIPPED'));
  const shipped = new Set(rows.filter((r) => r.status === 'SHIPPED').map((r) => r.id));
  const cancelled = new Set(rows.filter((r) => r.status === 'CANCELLED').map((r) => r.id));
  t.log(`${shipped.size} shipped, ${cancelled.size} cancelled`);
  t.true(shipped.size > 0 && cancelled.size > 0, 'both ends won some races');

  // Exactly one of the two ends happened to each order, once.
  const ends: { order_id: string; n: string }[] = await p
    .db('order_events')
    .whereIn(
      'order_id',
      orders.map((o) => o.id),
    )
    .whereIn('to_status', ['SHIPPED', 'CANCELLED'])
    .whereNot({ type: 'PaymentRefunded' })
    .groupBy('order_id')
    .select('order_id')
    .count({ n: '*' });
  t.is(ends.length, 50);
  t.true(ends.every((e) => Number(e.n) === 1));
  // Each 409 is the loser of its race, saying why.
  for (const a of answers.filter((x) => x.status === 409)) {
    t.true(['ORDER_NOT_CANCELLABLE', 'ILLEGAL_TRANSITION'].includes(a.body.code), a.body.code);
  }

  // Sold = what left the shelf; refunds = the cancelled orders, which were all paid.
  await until(
    async () =>
      (
        await p
          .db('payments')
          .whereIn('order_id', [...cancelled])
          .andWhere({ status: 'refunded' })
      ).length === cancelled.size,
    'every cancelled order to be refunded',
    30_000,
  );
  for (const product of products) {
    const sold = orders
      .filter((o) => o.product === product.id && shipped.has(o.id))
      .reduce((n, o) => n + o.quantity, 0);
    const now = await p.db('products').where({ id: product.id }).first();
    t.is(now.stock_available, 200 - sold, `stock of ${product.sku}`);
    t.is(now.stock_reserved, 0);
  }
  const payments = await p.db('payments').whereIn(
    'order_id',
    orders.map((o) => o.id),
  );
  t.is(payments.filter((x) => x.status === 'captured').length, shipped.size);
  t.is(payments.filter((x) => x.status === 'refunded').length, cancelled.size);
  const refundSteps = await p
    .db('order_events')
    .whereIn('order_id', [...cancelled])
    .andWhere({ type: 'PaymentRefunded' });
  t.is(refundSteps.length, cancelled.size);
});
