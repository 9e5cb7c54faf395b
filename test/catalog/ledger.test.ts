import test from 'ava';
import { buildProduct, stockOf, waitForAllProcessed, waitForStatus } from '../helpers/factories.ts';
import { getJson, http, postOrder, sendJson } from '../helpers/http.ts';
import { startPipeline, type TestPipeline } from '../helpers/pipeline.ts';

let p: TestPipeline;
let admin: string;

test.before(async () => {
  p = await startPipeline({ PAYMENT_DECLINE_ABOVE: '50000' });
  admin = await p.token('ops', 'admin');
});
test.after.always(async () => {
  await p?.stop();
});

/** Every product whose ledger does not add up to its stock columns. */
async function ledgerMismatches() {
  const { rows } = await p.db.raw<{ rows: unknown[] }>(
    `select p.sku, p.stock_available, p.stock_reserved, coalesce(sum(m.delta), 0)::int as delta,
            coalesce(sum(m.reserved_delta), 0)::int as reserved
       from products p left join stock_movements m on m.product_id = p.id
      group by p.id
     having p.stock_available <> coalesce(sum(m.delta), 0) or p.stock_reserved <> coalesce(sum(m.reserved_delta), 0)`,
  );
  return rows;
}

test.serial(
  'when orders are confirmed, declined, cancelled before and after payment, stock is adjusted and imported, then every product’s ledger adds up to its stock',
  async (t) => {
    const products = await Promise.all(
      [40, 40, 40].map((stock) => buildProduct(p.db, { stock_available: stock, price: 700 })),
    );
    const token = await p.token();
    const order = (i: number, extra: Record<string, unknown> = {}) =>
      postOrder(p.url, token, {
        items: [
          { product_id: products[i % 3].id, quantity: 1 + (i % 2) },
          { product_id: products[(i + 1) % 3].id, quantity: 1 },
        ],
        ...extra,
      });
    const confirmed = await Promise.all(Array.from({ length: 8 }, (_, i) => order(i)));
    const declined = await Promise.all(
      Array.from({ length: 3 }, (_, i) =>
        postOrder(p.url, token, {
          items: [{ product_id: products[i].id, quantity: 1 }],
          payment: { token: 'tok_decline' },
        }),
      ),
    );
    const later = await Promise.all(
      Array.from({ length: 3 }, (_, i) => order(i, { payment: { method: 'later' } })),
    );
    const all = [...confirmed, ...declined, ...later].map((r) => r.body.id as string);
    await waitForAllProcessed(p.db, all);

    // cancel two confirmed (stock returned) and two waiting for payment (reservation released)
    for (const id of [confirmed[0].body.id, confirmed[1].body.id, later[0].body.id, later[1].body.id]) {
      const res = await sendJson('POST', p.url, `/orders/${id}/cancel`, token, {});
      t.is(res.status, 200);
      await waitForStatus(p.db, id, ['CANCELLED']);
    }
    await sendJson('POST', p.url, `/products/${products[0].id}/stock-adjustments`, admin, {
      delta: 15,
      reason: 'restock',
    });
    await sendJson('POST', p.url, `/products/${products[1].id}/stock-adjustments`, admin, {
      delta: -3,
      reason: 'adjustment',
      note: 'broken in the warehouse',
    });
    const csv = `sku,name,price,currency,stock\n${products[2].sku},Renamed,700,EUR,77\nNEW-LEDGER-1,New,100,EUR,9\n`;
    const imported = await http(`${p.url}/products/import`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'text/csv' },
      body: csv,
    });
    t.is(imported.status, 200);

    t.deepEqual(await ledgerMismatches(), []);
    const reasons = (await p.db('stock_movements').distinct('reason')).map(
      (r: { reason: string }) => r.reason,
    );
    t.deepEqual(reasons.sort(), [
      'adjustment',
      'import',
      'release',
      'reservation',
      'restock',
      'return',
      'sale',
    ]);
    t.is((await stockOf(p.db, products[2].id)).available, 77);
  },
);

test.serial(
  'when an adjustment would take stock below zero, then it is 409 and nothing changes; bad adjustments are 422, customers 403',
  async (t) => {
    const product = await buildProduct(p.db, { stock_available: 4 });
    const before = await p.db('stock_movements').where({ product_id: product.id });
    const path = `/products/${product.id}/stock-adjustments`;

    const below = await sendJson('POST', p.url, path, admin, { delta: -5, reason: 'adjustment' });

    t.is(below.status, 409);
    t.is(below.body.code, 'STOCK_BELOW_ZERO');
    t.is(below.body.stock_available, 4);
    for (const body of [
      { delta: 0, reason: 'restock' },
      { delta: 2, reason: 'sale' },
      { delta: 1.5, reason: 'restock' },
      {},
    ]) {
      t.is((await sendJson('POST', p.url, path, admin, body)).status, 422, JSON.stringify(body));
    }
    t.is((await sendJson('POST', p.url, path, await p.token(), { delta: 1, reason: 'restock' })).status, 403);
    t.deepEqual(await stockOf(p.db, product.id), { available: 4, reserved: 0 });
    t.deepEqual(await p.db('stock_movements').where({ product_id: product.id }), before);
  },
);

test.serial(
  'when an admin pages through a product’s movements, then they come newest first, each once',
  async (t) => {
    const product = await buildProduct(p.db, { stock_available: 1 });
    for (let i = 0; i < 4; i++) {
      await sendJson('POST', p.url, `/products/${product.id}/stock-adjustments`, admin, {
        delta: 1,
        reason: 'restock',
      });
    }
    const first = await getJson(p.url, `/products/${product.id}/stock-movements?limit=3`, admin);
    const second = await getJson(
      p.url,
      `/products/${product.id}/stock-movements?limit=3&cursor=${first.body.next_cursor}`,
      admin,
    );

    t.deepEqual(
      [...first.body.data, ...second.body.data].map((m: { stock_after: number }) => m.stock_after),
      [5, 4, 3, 2, 1],
    );
    t.is(second.body.next_cursor, null);
    t.is((await getJson(p.url, `/products/${product.id}/stock-movements`, await p.token())).status, 403);
  },
);
