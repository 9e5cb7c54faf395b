import test from 'ava';
import fc from 'fast-check';
import { buildProduct, writtenRows, type TestProduct } from '../helpers/factories.ts';
import { http } from '../helpers/http.ts';
import { startPipeline, type TestPipeline } from '../helpers/pipeline.ts';

let p: TestPipeline;
let product: TestProduct;
let token: string;
test.before(async () => {
  p = await startPipeline({ BODY_LIMIT: '16kb', WEBHOOK_ALLOW_PRIVATE_URLS: 'false' }, { worker: false });
  product = await buildProduct(p.db);
  token = await p.token();
});
test.after.always(async () => {
  await p?.stop();
});

/** Bodies near the real shape (where the interesting mistakes are) mixed with anything JSON can say. */
const orderLike = fc.record(
  {
    id: fc.oneof(fc.uuid(), fc.string(), fc.integer()),
    items: fc.oneof(
      fc.array(
        fc.record(
          {
            product_id: fc.oneof(fc.uuid(), fc.constant('PRODUCT'), fc.string(), fc.constant(null)),
            sku: fc.oneof(fc.string(), fc.integer()),
            quantity: fc.oneof(
              fc.integer(),
              fc.double(),
              fc.string(),
              fc.constant(null),
              fc.bigInt().map(String),
            ),
          },
          { requiredKeys: [] },
        ),
        { maxLength: 60 },
      ),
      fc.anything(),
    ),
    payment: fc.oneof(fc.record({ token: fc.string() }), fc.anything()),
  },
  { requiredKeys: [] },
);

const header = fc.oneof(
  fc.constant(undefined),
  fc.string({ unit: 'binary-ascii', maxLength: 300 }),
  fc.uuid(),
  fc.string({ maxLength: 300 }).map((s) => `"${s}"`),
);
const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'text/plain',
  'application/x-www-form-urlencoded',
  'application/merge-patch+json',
  '',
);

/** Orders that are often valid, so accepted requests are part of the run too. */
const nearlyValid = fc.record({
  items: fc.array(
    fc.record({ product_id: fc.constant('PRODUCT'), quantity: fc.integer({ min: -1, max: 3 }) }),
    {
      maxLength: 2,
    },
  ),
});

const bodyText = fc.oneof(
  nearlyValid.map((b) => JSON.stringify(b).replaceAll('"PRODUCT"', `"${product.id}"`)),
  orderLike.map((b) => JSON.stringify(b).replaceAll('"PRODUCT"', `"${product.id}"`)),
  fc.json({ maxDepth: 4 }),
  fc.string({ maxLength: 500 }),
  fc.constant(''),
);

async function send(path: string, method: string, body: string, key: string | undefined, type: string) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (type) headers['content-type'] = type;
  if (key !== undefined) headers['idempotency-key'] = key;
  try {
    return await http(`${p.url}${path}`, { method, headers, body });
  } catch (err) {
    // fetch itself refuses some header bytes before anything is sent: not a request comanda saw.
    if (err instanceof TypeError) return undefined;
    throw err;
  }
}

test.serial(
  'when thousands of generated bodies and headers hit POST /orders, then none gets a 5xx and only accepted ones write rows',
  async (t) => {
    const before = await writtenRows(p.db);
    let created = 0;
    let answered = 0;

    await fc.assert(
      fc.asyncProperty(bodyText, header, contentType, async (body, key, type) => {
        const res = await send('/orders', 'POST', body, key, type);
        if (!res) return;
        answered++;
        if (res.status >= 500)
          throw new Error(`${res.status} for ${type} ${JSON.stringify(body).slice(0, 300)}`);
        if (res.status >= 400 && res.headers.get('content-type') !== 'application/problem+json') {
          throw new Error(`${res.status} without problem+json`);
        }
        if (res.status === 201 && res.headers.get('idempotent-replayed') !== 'true') created++;
      }),
      { numRuns: 2000 },
    );

    const after = await writtenRows(p.db);
    t.log(`${answered} requests answered, ${created} orders accepted`);
    t.true(answered > 1500);
    t.true(created > 0, 'some generated orders were valid');
    t.is(after.orders - before.orders, created);
    t.is(after.outbox - before.outbox, created);
    t.is(after.idempotency_keys - before.idempotency_keys, created);
  },
);

test.serial(
  'when generated bodies hit the webhook endpoints API, then none gets a 5xx and only accepted ones are stored',
  async (t) => {
    const count = async () =>
      Number((await p.db('webhook_endpoints').count<{ n: string }[]>({ n: '*' }))[0].n);
    const before = await count();
    let created = 0;
    const endpointLike = fc.record(
      {
        url: fc.oneof(
          fc.webUrl(),
          fc.string(),
          fc.constantFrom('http://127.0.0.1:9/x', 'http://10.0.0.1/', 'ftp://x', 'http://[::1]/'),
        ),
        event_types: fc.oneof(
          fc.array(fc.constantFrom('order.created', 'order.confirmed', 'order.rejected', 'order.nope')),
          fc.anything(),
        ),
        description: fc.oneof(fc.string({ maxLength: 600 }), fc.anything()),
      },
      { requiredKeys: [] },
    );

    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          endpointLike.map((b) => JSON.stringify(b)),
          fc.json({ maxDepth: 3 }),
          fc.string(),
        ),
        contentType,
        async (body, type) => {
          const res = await send('/webhook-endpoints', 'POST', body, undefined, type);
          if (!res) return;
          if (res.status >= 500) throw new Error(`${res.status} for ${body.slice(0, 300)}`);
          if (res.status === 201) created++;
        },
      ),
      { numRuns: 1000 },
    );

    t.is((await count()) - before, created);
  },
);
