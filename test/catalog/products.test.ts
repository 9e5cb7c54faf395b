import test from 'ava';
import { buildProduct } from '../helpers/factories.ts';
import { getJson, http, postOrder, sendJson } from '../helpers/http.ts';
import { startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';
import { probeExchange } from '../helpers/probe.ts';

let p: TestPipeline;
let admin: string;
let customer: string;

test.before(async () => {
  p = await startPipeline({}, { worker: false });
  admin = await p.token('ops', 'admin');
  customer = await p.token();
});
test.after.always(async () => {
  await p?.stop();
});

const sku = () => `T-${Math.random().toString(36).slice(2, 10).toUpperCase()}`;
const valid = () => ({ sku: sku(), name: 'Cafetera italiana', price: 2490, currency: 'EUR', stock: 40 });

/** Rows of the catalogue's tables: a refused request must leave them as they were. */
async function catalogueRows() {
  const counts: Record<string, number> = {};
  for (const table of ['products', 'stock_movements', 'outbox']) {
    const [row] = await p.db(table).count<{ n: string }[]>({ n: '*' });
    counts[table] = Number(row.n);
  }
  return counts;
}

test.serial(
  'when an admin creates a product, then it is 201 with Location, its opening stock is in the ledger and product.created is published',
  async (t) => {
    const events = await probeExchange(p, 'productEvents');
    try {
      const body = { ...valid(), low_stock_threshold: 5 };
      const res = await sendJson('POST', p.url, '/products', admin, body);

      t.is(res.status, 201);
      t.is(res.headers.get('location'), `/products/${res.body.id}`);
      t.like(res.body, {
        sku: body.sku,
        name: body.name,
        price: 2490,
        currency: 'EUR',
        stock_available: 40,
        stock_reserved: 0,
        low_stock_threshold: 5,
        low_stock: false,
        active: true,
      });
      const ledger = await p.db('stock_movements').where({ product_id: res.body.id });
      t.is(ledger.length, 1);
      t.like(ledger[0], { delta: 40, reserved_delta: 0, reason: 'restock', actor: 'demo-admin:ops' });
      await until(() => events.about(res.body.id, 'product.created').length === 1, 'product.created');
      t.like(events.about(res.body.id)[0], {
        aggregate_type: 'product',
        version: 1,
        data: { product_id: res.body.id, sku: body.sku, price: 2490, stock_available: 40 },
      });
    } finally {
      await events.close();
    }
  },
);

test.serial(
  'when a product is created with bad input, then it is a 4xx problem and nothing is written',
  async (t) => {
    const existing = await buildProduct(p.db);
    const before = await catalogueRows();
    const noSku: Partial<ReturnType<typeof valid>> = valid();
    delete noSku.sku;
    const cases: [string, unknown, number, string][] = [
      ['missing fields', { name: 'x' }, 422, 'sku'],
      ['missing sku', noSku, 422, 'sku'],
      ['negative price', { ...valid(), price: -5 }, 422, 'price'],
      ['zero price', { ...valid(), price: 0 }, 422, 'price'],
      ['fractional price', { ...valid(), price: 12.5 }, 422, 'price'],
      ['price as text', { ...valid(), price: '12' }, 422, 'price'],
      ['unknown currency', { ...valid(), currency: 'XYZ' }, 422, 'currency'],
      ['lower-case currency', { ...valid(), currency: 'eur' }, 422, 'currency'],
      ['too-long name', { ...valid(), name: 'n'.repeat(201) }, 422, 'name'],
      ['empty name', { ...valid(), name: '   ' }, 422, 'name'],
      ['negative stock', { ...valid(), stock: -1 }, 422, 'stock'],
      ['negative threshold', { ...valid(), low_stock_threshold: -1 }, 422, 'low_stock_threshold'],
      ['unknown field', { ...valid(), colour: 'red' }, 422, 'colour'],
      ['bad sku', { ...valid(), sku: 'has space' }, 422, 'sku'],
    ];
    for (const [what, body, status, field] of cases) {
      const res = await sendJson('POST', p.url, '/products', admin, body);
      t.is(res.status, status, what);
      t.is(res.headers.get('content-type'), 'application/problem+json', what);
      t.true(
        (res.body.errors as { field: string }[]).some((e) => e.field === field),
        `${what}: names ${field}`,
      );
    }

    const duplicate = await sendJson('POST', p.url, '/products', admin, { ...valid(), sku: existing.sku });
    t.is(duplicate.status, 409);
    t.is(duplicate.body.code, 'DUPLICATE_SKU');

    const asCustomer = await sendJson('POST', p.url, '/products', customer, valid());
    t.is(asCustomer.status, 403);
    const anonymous = await http(`${p.url}/products`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(valid()),
    });
    t.is(anonymous.status, 401);
    const notJson = await sendJson('POST', p.url, '/products', admin, 'sku=x', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    t.is(notJson.status, 415);

    t.deepEqual(await catalogueRows(), before);
  },
);

test.serial(
  'when an admin patches a product, then the change is kept, product.updated names the fields, and bad patches change nothing',
  async (t) => {
    const events = await probeExchange(p, 'productEvents');
    try {
      const product = (await sendJson('POST', p.url, '/products', admin, valid())).body;

      const res = await sendJson('PATCH', p.url, `/products/${product.id}`, admin, {
        name: 'Cafetera italiana 6 tazas',
        price: 2990,
        low_stock_threshold: 50,
      });

      t.is(res.status, 200);
      t.like(res.body, {
        name: 'Cafetera italiana 6 tazas',
        price: 2990,
        low_stock_threshold: 50,
        low_stock: true,
      });
      t.is(res.body.version, 2);
      await until(() => events.about(product.id, 'product.updated').length === 1, 'product.updated');
      t.deepEqual(events.about(product.id, 'product.updated')[0].data.changed.sort(), [
        'low_stock_threshold',
        'name',
        'price',
      ]);

      const before = await catalogueRows();
      for (const [what, patch] of [
        ['empty', {}],
        ['negative price', { price: -1 }],
        ['sku is not patchable', { sku: 'NEW' }],
        ['stock is not patchable', { stock_available: 3 }],
        ['too-long name', { name: 'n'.repeat(201) }],
        ['active as text', { active: 'no' }],
      ] as const) {
        const bad = await sendJson('PATCH', p.url, `/products/${product.id}`, admin, patch);
        t.is(bad.status, 422, what);
      }
      t.is((await sendJson('PATCH', p.url, `/products/${product.id}`, customer, { price: 1 })).status, 403);
      t.is(
        (
          await sendJson('PATCH', p.url, '/products/00000000-0000-0000-0000-000000000000', admin, {
            price: 1,
          })
        ).status,
        404,
      );
      const same = await sendJson('PATCH', p.url, `/products/${product.id}`, admin, { price: 2990 });
      t.is(same.body.version, 2, 'asking for what it is changes nothing');
      t.deepEqual(await catalogueRows(), before);
    } finally {
      await events.close();
    }
  },
);

test.serial(
  'when a product is deactivated, then customers no longer see it or order it (422 naming it), admins list it, and its history stays',
  async (t) => {
    const product = await buildProduct(p.db, { stock_available: 10 });
    const token = await p.token();
    const earlier = await postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 1 }] });
    t.is(earlier.status, 201);

    const res = await sendJson('PATCH', p.url, `/products/${product.id}`, admin, { active: false });
    t.is(res.status, 200);
    t.false(res.body.active);

    const before = await catalogueRows();
    const order = await postOrder(p.url, token, { items: [{ sku: product.sku, quantity: 1 }] });
    t.is(order.status, 422);
    t.deepEqual(order.body.errors, [
      { field: 'items.0.sku', message: `product ${product.sku} is no longer sold` },
    ]);
    t.deepEqual(await catalogueRows(), before);

    const publicList = await getJson(p.url, '/products');
    t.false(publicList.body.data.some((x: { id: string }) => x.id === product.id));
    t.deepEqual(Object.keys(publicList.body.data[0]).sort(), [
      'currency',
      'id',
      'name',
      'price',
      'sku',
      'stock_available',
    ]);
    t.is((await getJson(p.url, `/products/${product.id}`, token)).status, 404);
    t.is((await getJson(p.url, '/products?include_inactive=true', token)).status, 403);
    t.is((await getJson(p.url, '/products?include_inactive=true')).status, 403);

    const adminList = await getJson(p.url, '/products?include_inactive=true', admin);
    const listed = adminList.body.data.find((x: { id: string }) => x.id === product.id);
    t.like(listed, { active: false, stock_available: 10, stock_reserved: 0, low_stock: false });
    t.truthy(await p.db('orders').where({ id: earlier.body.id }).first(), 'its orders stay');
  },
);
