import test from 'ava';
import { buildProduct } from '../helpers/factories.ts';
import { getJson, postOrder } from '../helpers/http.ts';
import { startPipeline, type TestPipeline } from '../helpers/pipeline.ts';

let p: TestPipeline;
test.before(async () => {
  p = await startPipeline({}, { worker: false });
});
test.after.always(async () => {
  await p?.stop();
});

test('when a customer lists orders, then it gets only its own, newest first, page by page', async (t) => {
  const product = await buildProduct(p.db);
  const mine = await p.token('lister');
  const theirs = await p.token('someone-else');
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    ids.push(
      (await postOrder(p.url, mine, { items: [{ product_id: product.id, quantity: i + 1 }] })).body.id,
    );
  }
  await postOrder(p.url, theirs, { items: [{ product_id: product.id, quantity: 1 }] });

  const page1 = await getJson(p.url, '/orders?limit=2', mine);
  const page2 = await getJson(p.url, `/orders?limit=2&cursor=${page1.body.next_cursor}`, mine);
  const page3 = await getJson(p.url, `/orders?limit=2&cursor=${page2.body.next_cursor}`, mine);

  const seen = [...page1.body.data, ...page2.body.data, ...page3.body.data].map((o: { id: string }) => o.id);
  t.deepEqual(seen, [...ids].reverse());
  t.is(page3.body.next_cursor, null);
  t.is(page1.body.data[0].items[0].sku, product.sku);
});

test('when the list query is bad, then it is a 422 problem naming the parameter', async (t) => {
  const res = await getJson(p.url, '/orders?limit=1000', await p.token());

  t.is(res.status, 422);
  t.is(res.body.errors[0].field, 'limit');
});

test('when an order id is not a uuid or unknown, then it is 404', async (t) => {
  const token = await p.token();

  t.is((await getJson(p.url, '/orders/not-a-uuid', token)).status, 404);
  t.is((await getJson(p.url, '/orders/00000000-0000-4000-8000-000000000000', token)).status, 404);
});

test('when the catalogue is listed, then each product shows its price and stock', async (t) => {
  const product = await buildProduct(p.db, { price: 4321, stock_available: 9 });

  const res = await getJson(p.url, '/products');

  const listed = res.body.data.find((x: { id: string }) => x.id === product.id);
  t.deepEqual(listed, {
    id: product.id,
    sku: product.sku,
    name: product.name,
    price: 4321,
    currency: 'EUR',
    stock_available: 9,
  });
});
