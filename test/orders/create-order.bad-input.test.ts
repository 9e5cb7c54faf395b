import { randomUUID } from 'node:crypto';
import test from 'ava';
import { buildProduct, writtenRows, type TestProduct } from '../helpers/factories.ts';
import { http, postOrder } from '../helpers/http.ts';
import { startPipeline, type TestPipeline } from '../helpers/pipeline.ts';

let p: TestPipeline;
let product: TestProduct;
let token: string;
test.before(async () => {
  p = await startPipeline({ BODY_LIMIT: '4kb' }, { worker: false });
  product = await buildProduct(p.db);
  token = await p.token();
});
test.after.always(async () => {
  await p?.stop();
});

const line = (overrides: Record<string, unknown> = {}) => ({
  product_id: product.id,
  quantity: 1,
  ...overrides,
});

interface BadCase {
  name: string;
  body: () => unknown;
  status: number;
  code: string;
  /** A field the problem must name, when it is about one. */
  field?: string;
  contentType?: string;
}

const cases: BadCase[] = [
  { name: 'malformed JSON', body: () => '{"items": [', status: 400, code: 'MALFORMED_REQUEST' },
  {
    name: 'a JSON string instead of an object',
    body: () => '"hello"',
    status: 400,
    code: 'MALFORMED_REQUEST',
  },
  {
    name: 'a prototype-poisoning key',
    body: () => '{"__proto__": {"admin": true}, "items": []}',
    status: 400,
    code: 'MALFORMED_REQUEST',
  },
  { name: 'a JSON array instead of an object', body: () => [], status: 422, code: 'VALIDATION_FAILED' },
  { name: 'no items field', body: () => ({}), status: 422, code: 'VALIDATION_FAILED', field: 'items' },
  {
    name: 'empty items',
    body: () => ({ items: [] }),
    status: 422,
    code: 'VALIDATION_FAILED',
    field: 'items',
  },
  {
    name: 'items not a list',
    body: () => ({ items: 'many' }),
    status: 422,
    code: 'VALIDATION_FAILED',
    field: 'items',
  },
  {
    name: 'quantity zero',
    body: () => ({ items: [line({ quantity: 0 })] }),
    status: 422,
    code: 'VALIDATION_FAILED',
    field: 'items.0.quantity',
  },
  {
    name: 'negative quantity',
    body: () => ({ items: [line({ quantity: -3 })] }),
    status: 422,
    code: 'VALIDATION_FAILED',
    field: 'items.0.quantity',
  },
  {
    name: 'fractional quantity',
    body: () => ({ items: [line({ quantity: 1.5 })] }),
    status: 422,
    code: 'VALIDATION_FAILED',
    field: 'items.0.quantity',
  },
  {
    name: 'absurd quantity',
    body: () => ({ items: [line({ quantity: 1e12 })] }),
    status: 422,
    code: 'VALIDATION_FAILED',
    field: 'items.0.quantity',
  },
  {
    name: 'quantity as a string',
    body: () => ({ items: [line({ quantity: '2' })] }),
    status: 422,
    code: 'VALIDATION_FAILED',
    field: 'items.0.quantity',
  },
  {
    name: 'unknown top-level field',
    body: () => ({ items: [line()], discount: 50 }),
    status: 422,
    code: 'VALIDATION_FAILED',
    field: 'discount',
  },
  {
    name: 'unknown field in a line',
    body: () => ({ items: [line({ price: 1 })] }),
    status: 422,
    code: 'VALIDATION_FAILED',
    field: 'items.0.price',
  },
  {
    name: 'a line with neither product_id nor sku',
    body: () => ({ items: [{ quantity: 1 }] }),
    status: 422,
    code: 'VALIDATION_FAILED',
    field: 'items.0',
  },
  {
    name: 'a product id that is not a uuid',
    body: () => ({ items: [line({ product_id: 'abc' })] }),
    status: 422,
    code: 'VALIDATION_FAILED',
    field: 'items.0.product_id',
  },
  {
    name: 'an unknown product',
    body: () => ({ items: [line({ product_id: randomUUID() })] }),
    status: 422,
    code: 'VALIDATION_FAILED',
    field: 'items.0.product_id',
  },
  {
    name: 'an unknown sku',
    body: () => ({ items: [{ sku: 'NO-SUCH-SKU', quantity: 1 }] }),
    status: 422,
    code: 'VALIDATION_FAILED',
    field: 'items.0.sku',
  },
  {
    name: 'the same product twice',
    body: () => ({ items: [line(), line()] }),
    status: 422,
    code: 'VALIDATION_FAILED',
    field: 'items.1.product_id',
  },
  {
    name: 'a payment without a token',
    body: () => ({ items: [line()], payment: {} }),
    status: 422,
    code: 'VALIDATION_FAILED',
    field: 'payment.token',
  },
  {
    name: 'an order id that is not a uuid',
    body: () => ({ id: 'order-1', items: [line()] }),
    status: 422,
    code: 'VALIDATION_FAILED',
    field: 'id',
  },
  {
    name: 'too many lines',
    body: () => ({ items: Array.from({ length: 51 }, () => line()) }),
    status: 422,
    code: 'VALIDATION_FAILED',
    field: 'items',
  },
  {
    name: 'an oversized body',
    body: () => ({ items: [line()], note: 'x'.repeat(10_000) }),
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
  },
  {
    name: 'a form-encoded body',
    body: () => 'items=1',
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
    contentType: 'application/x-www-form-urlencoded',
  },
  {
    name: 'a text body',
    body: () => 'hello',
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
    contentType: 'text/plain',
  },
];

for (const c of cases) {
  test.serial(
    `when the body has ${c.name}, then it is refused with ${c.status} problem+json and nothing is written`,
    async (t) => {
      const before = await writtenRows(p.db);

      const res = await postOrder(p.url, token, c.body(), {
        headers: c.contentType ? { 'content-type': c.contentType } : {},
      });

      t.is(res.status, c.status);
      t.is(res.headers.get('content-type'), 'application/problem+json');
      t.is(res.body.status, c.status);
      t.is(res.body.code, c.code);
      t.is(typeof res.body.title, 'string');
      t.is(typeof res.body.detail, 'string');
      t.false(JSON.stringify(res.body).includes('    at '), 'no stack trace');
      if (c.field) {
        t.true(
          res.body.errors?.some((e: { field: string }) => e.field === c.field),
          `errors name ${c.field}: ${JSON.stringify(res.body.errors)}`,
        );
      }
      t.deepEqual(await writtenRows(p.db), before);
    },
  );
}

test.serial('when a malformed request is refused, then no message is published either', async (t) => {
  const queue = `${p.config.AMQP_PREFIX}probe-${randomUUID()}`;
  await p.services.amqp.withChannel(async (ch) => {
    await ch.assertQueue(queue, { exclusive: false, autoDelete: false, durable: false });
    await ch.bindQueue(queue, p.services.topology.exchange('orderCreated'), '');
  });

  const bad = await postOrder(p.url, token, { items: [line({ quantity: 0 })] });
  const good = await postOrder(p.url, token, { items: [line()] });

  t.is(bad.status, 422);
  t.is(good.status, 201);
  // The good order's message arriving proves the relay ran after the bad request: only that one is there.
  const messages: string[] = [];
  await p.services.amqp.withChannel(async (ch) => {
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && messages.length === 0) {
      const msg = await ch.get(queue, { noAck: true });
      if (msg) messages.push(JSON.parse(msg.content.toString()).aggregate_id);
      else await new Promise((r) => setTimeout(r, 20));
    }
    const extra = await ch.get(queue, { noAck: true });
    if (extra) messages.push(JSON.parse(extra.content.toString()).aggregate_id);
    await ch.deleteQueue(queue);
  });
  t.deepEqual(messages, [good.body.id]);
});

test('when an unknown route is called, then it is a 404 problem+json', async (t) => {
  const res = await http(`${p.url}/nowhere`);

  t.is(res.status, 404);
  t.is(res.headers.get('content-type'), 'application/problem+json');
});
