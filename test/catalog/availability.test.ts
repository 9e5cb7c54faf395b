import test from 'ava';
import {
  buildProduct,
  stockOf,
  waitForProcessed,
  whileStockIsHeld,
  writtenRows,
} from '../helpers/factories.ts';
import { postOrder, sendJson } from '../helpers/http.ts';
import { startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';
import { probeExchange } from '../helpers/probe.ts';

let p: TestPipeline;

test.before(async () => {
  p = await startPipeline();
});
test.after.always(async () => {
  await p?.stop();
});

test('when a client checks availability by id and by sku, then each line says what was asked, what there is and whether it is enough', async (t) => {
  const plenty = await buildProduct(p.db, { stock_available: 20 });
  const few = await buildProduct(p.db, { stock_available: 2 });
  const none = await buildProduct(p.db, { stock_available: 0 });
  const token = await p.token();

  const res = await sendJson('POST', p.url, '/products/check-availability', token, {
    items: [
      { product_id: plenty.id, quantity: 20 },
      { sku: few.sku, quantity: 3 },
      { sku: none.sku, quantity: 1 },
    ],
  });

  t.is(res.status, 200);
  t.deepEqual(res.body, {
    all_available: false,
    items: [
      { product_id: plenty.id, sku: plenty.sku, requested: 20, available: 20, is_available: true },
      { product_id: few.id, sku: few.sku, requested: 3, available: 2, is_available: false },
      { product_id: none.id, sku: none.sku, requested: 1, available: 0, is_available: false },
    ],
  });

  const enough = await sendJson('POST', p.url, '/products/check-availability', token, {
    items: [
      { sku: plenty.sku, quantity: 1 },
      { product_id: few.id, quantity: 2 },
    ],
  });
  t.is(enough.status, 200);
  t.true(enough.body.all_available);
  t.deepEqual(
    enough.body.items.map((i: { is_available: boolean }) => i.is_available),
    [true, true],
  );
  t.deepEqual(await stockOf(p.db, few.id), { available: 2, reserved: 0 }, 'a check reserves nothing');
});

test('when a check names an unknown product or is malformed, then it is a 422 naming the line', async (t) => {
  const token = await p.token();
  const unknown = await sendJson('POST', p.url, '/products/check-availability', token, {
    items: [{ sku: 'NO-SUCH-SKU', quantity: 1 }],
  });
  t.is(unknown.status, 422);
  t.deepEqual(unknown.body.errors, [{ field: 'items.0.sku', message: 'unknown product NO-SUCH-SKU' }]);
  const both = await sendJson('POST', p.url, '/products/check-availability', token, {
    items: [{ sku: 'A', product_id: '00000000-0000-0000-0000-000000000000', quantity: 1 }],
  });
  t.is(both.status, 422);
  const zero = await sendJson('POST', p.url, '/products/check-availability', token, {
    items: [{ sku: 'A', quantity: 0 }],
  });
  t.is(zero.status, 422);
});

test.serial(
  'when an order has a short line, then it is 409 INSUFFICIENT_STOCK with the same items, and no order, outbox row or message exists',
  async (t) => {
    const plenty = await buildProduct(p.db, { stock_available: 50 });
    const few = await buildProduct(p.db, { stock_available: 2 });
    const created = await probeExchange(p, 'orderCreated');
    try {
      const before = await writtenRows(p.db);

      const res = await postOrder(p.url, await p.token(), {
        items: [
          { product_id: plenty.id, quantity: 5 },
          { sku: few.sku, quantity: 3 },
        ],
      });

      t.is(res.status, 409);
      t.is(res.headers.get('content-type'), 'application/problem+json');
      t.is(res.body.code, 'INSUFFICIENT_STOCK');
      t.deepEqual(res.body.items, [
        { product_id: plenty.id, sku: plenty.sku, requested: 5, available: 50, is_available: true },
        { product_id: few.id, sku: few.sku, requested: 3, available: 2, is_available: false },
      ]);
      t.regex(res.body.detail, new RegExp(few.sku));
      t.deepEqual(await writtenRows(p.db), before, 'no order, item, trace, outbox row or idempotency key');
      t.deepEqual(await stockOf(p.db, few.id), { available: 2, reserved: 0 });
      // A message would be in the queue by now had anything been committed: post an order that is published
      // after it and wait for that one; the short order's never came before it.
      const ok = await postOrder(p.url, await p.token(), { items: [{ product_id: plenty.id, quantity: 1 }] });
      await until(() => created.seen.some((m) => m.aggregate_id === ok.body.id), 'the next OrderCreated');
      t.deepEqual(
        created.seen.map((m) => m.aggregate_id),
        [ok.body.id],
      );
    } finally {
      await created.close();
    }
  },
);

test.serial(
  'when the last unit is ordered twice at once, then both are accepted and the worker confirms one and rejects the other OUT_OF_STOCK',
  async (t) => {
    const last = await buildProduct(p.db, { stock_available: 1 });
    const [a, b] = await whileStockIsHeld(p.db, last.id, () =>
      Promise.all(
        [1, 2].map(async () =>
          postOrder(p.url, await p.token(), { items: [{ product_id: last.id, quantity: 1 }] }),
        ),
      ),
    );
    t.is(a.status, 201);
    t.is(b.status, 201);

    const outcomes = [await waitForProcessed(p.db, a.body.id), await waitForProcessed(p.db, b.body.id)];

    t.deepEqual(outcomes.sort(), ['CONFIRMED', 'REJECTED']);
    const rejected = await p
      .db('orders')
      .whereIn('id', [a.body.id, b.body.id])
      .where({ status: 'REJECTED' })
      .first();
    t.is(rejected.reject_reason, 'OUT_OF_STOCK');
    t.deepEqual(await stockOf(p.db, last.id), { available: 0, reserved: 0 });
  },
);
