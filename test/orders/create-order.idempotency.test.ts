import { randomUUID } from 'node:crypto';
import test from 'ava';
import { buildProduct, writtenRows, type TestProduct } from '../helpers/factories.ts';
import { getJson, postOrder } from '../helpers/http.ts';
import { deleteOwnKeys } from '../../lib/redis.ts';
import { startPipeline, type TestPipeline } from '../helpers/pipeline.ts';

let p: TestPipeline;
let product: TestProduct;
test.before(async () => {
  // No worker: these tests are about what the API stores, and stock must not move under them.
  p = await startPipeline({}, { worker: false });
  product = await buildProduct(p.db, { stock_available: 1000 });
});
test.after.always(async () => {
  await p?.stop();
});

const body = () => ({ items: [{ product_id: product.id, quantity: 1 }] });
const ordersOf = async (customer: string) => (await p.db('orders').where({ customer_id: customer })).length;

test.serial(
  'when a request has no Idempotency-Key and no order id, then it is refused with 400 and nothing is stored',
  async (t) => {
    const token = await p.token();
    const before = await writtenRows(p.db);

    const res = await postOrder(p.url, token, body(), { key: null });

    t.is(res.status, 400);
    t.is(res.headers.get('content-type'), 'application/problem+json');
    t.is(res.body.code, 'IDEMPOTENCY_KEY_MISSING');
    t.deepEqual(await writtenRows(p.db), before);
  },
);

test('when the same key is sent again with the same body, then the stored response is replayed and no second order exists', async (t) => {
  const token = await p.token('replayer');
  const key = randomUUID();

  const first = await postOrder(p.url, token, body(), { key });
  const second = await postOrder(p.url, token, body(), { key });

  t.is(first.status, 201);
  t.is(first.headers.get('idempotent-replayed'), null);
  t.is(second.status, 201);
  t.is(second.headers.get('idempotent-replayed'), 'true');
  t.deepEqual(second.body, first.body);
  t.is(second.headers.get('location'), first.headers.get('location'));
  t.is(await ordersOf('demo:replayer'), 1);
});

test('when an order is created, then its answer (stored with the key in the same statement) is the order exactly as it was stored', async (t) => {
  const token = await p.token('as-stored');
  const key = randomUUID();

  const created = await postOrder(p.url, token, body(), { key });
  const read = await getJson(p.url, `/orders/${created.body.id}`, token);
  const stored = await p.db('idempotency_keys').where({ principal: 'demo:as-stored', key }).first();

  t.is(created.status, 201);
  t.deepEqual(created.body, read.body);
  t.deepEqual(stored.response_body, created.body);
  t.is(stored.response_status, 201);
});

test('when the replay cache in Redis is gone, then PostgreSQL still replays the stored response', async (t) => {
  const token = await p.token('no-cache');
  const key = randomUUID();
  const first = await postOrder(p.url, token, body(), { key });
  await deleteOwnKeys(p.services.redis);

  const again = await postOrder(p.url, token, body(), { key });

  t.is(again.status, 201);
  t.is(again.headers.get('idempotent-replayed'), 'true');
  t.deepEqual(again.body, first.body);
  t.is(await ordersOf('demo:no-cache'), 1);
});

// Serial: another test here empties this pipeline's Redis keys.
test.serial(
  'when a stored response is replayed, then it is cached in Redis for less time than the key has left, and the first request caches nothing',
  async (t) => {
    const token = await p.token('cached');
    const key = randomUUID();
    const cacheKeys = () => p.services.redis.keys(`${p.config.REDIS_KEY_PREFIX}idem:*:${key}`);

    await postOrder(p.url, token, body(), { key });
    t.deepEqual(await cacheKeys(), [], 'a first request costs Redis one read, no write');
    await postOrder(p.url, token, body(), { key });
    const [cached] = await cacheKeys();
    const third = await postOrder(p.url, token, body(), { key });

    t.truthy(cached);
    const ttl = await p.services.redis.pttl(cached.slice(p.config.REDIS_KEY_PREFIX.length));
    t.true(ttl > 0 && ttl <= p.config.IDEMPOTENCY_TTL_HOURS * 3_600_000 - 60_000, `ttl ${ttl}`);
    t.is(third.headers.get('idempotent-replayed'), 'true');
    t.is(await ordersOf('demo:cached'), 1);
  },
);

test('when the JSON keys come in another order, then it is the same request and is replayed', async (t) => {
  const token = await p.token();
  const key = randomUUID();
  await postOrder(p.url, token, `{"items":[{"product_id":"${product.id}","quantity":2}]}`, { key });

  const res = await postOrder(p.url, token, `{"items":[{"quantity":2,"product_id":"${product.id}"}]}`, {
    key,
  });

  t.is(res.status, 201);
  t.is(res.headers.get('idempotent-replayed'), 'true');
});

test.serial(
  'when the same key comes with a different body, then it is refused with 422 and nothing changes',
  async (t) => {
    const token = await p.token('changer');
    const key = randomUUID();
    await postOrder(p.url, token, body(), { key });
    const before = await writtenRows(p.db);

    const res = await postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 5 }] }, { key });

    t.is(res.status, 422);
    t.is(res.body.code, 'IDEMPOTENCY_KEY_REUSED');
    t.deepEqual(await writtenRows(p.db), before);
  },
);

test('when two customers use the same key, then each gets an order of their own', async (t) => {
  const key = randomUUID();

  const a = await postOrder(p.url, await p.token('scope-a'), body(), { key });
  const b = await postOrder(p.url, await p.token('scope-b'), body(), { key });

  t.is(a.status, 201);
  t.is(b.status, 201);
  t.is(b.headers.get('idempotent-replayed'), null);
  t.not(a.body.id, b.body.id);
});

test('when 50 requests with one key arrive at once, then exactly one order exists and every answer is 201 or 409', async (t) => {
  const token = await p.token('storm');
  const key = randomUUID();

  const responses = await Promise.all(
    Array.from({ length: 50 }, () => postOrder(p.url, token, body(), { key })),
  );

  const statuses = responses.map((r) => r.status);
  t.true(
    statuses.every((s) => s === 201 || s === 409),
    `unexpected statuses: ${statuses.join(',')}`,
  );
  const created = responses.filter((r) => r.status === 201);
  t.true(created.length >= 1);
  t.is(new Set(created.map((r) => r.body.id)).size, 1);
  t.is(created.filter((r) => r.headers.get('idempotent-replayed') !== 'true').length, 1);
  for (const conflict of responses.filter((r) => r.status === 409)) {
    t.is(conflict.body.code, 'IDEMPOTENCY_KEY_IN_FLIGHT');
    t.truthy(conflict.headers.get('retry-after'));
  }
  t.is(await ordersOf('demo:storm'), 1);
  t.is((await p.db('outbox').where({ type: 'OrderCreated', aggregate_id: created[0].body.id })).length, 1);
});

test('when a request with the key is still in flight, then another one gets 409 with Retry-After', async (t) => {
  const token = await p.token('inflight');
  const key = randomUUID();
  // Hold the key's PostgreSQL lock the way an in-flight request does, from a transaction of our own.
  const trx = await p.db.transaction();
  await trx.raw('select pg_advisory_xact_lock(hashtextextended(?, 0))', [
    JSON.stringify(['demo:inflight', key]),
  ]);
  try {
    const res = await postOrder(p.url, token, body(), { key });

    t.is(res.status, 409);
    t.is(res.headers.get('retry-after'), '1');
    t.is(res.headers.get('content-type'), 'application/problem+json');
  } finally {
    await trx.rollback();
  }
  const after = await postOrder(p.url, token, body(), { key });
  t.is(after.status, 201);
});

test.serial(
  'when the request fails before commit, then nothing is stored and a retry with the same key succeeds',
  async (t) => {
    const token = await p.token('retrier');
    const key = randomUUID();
    const tiny = await buildProduct(p.db, { stock_available: 5 });
    const before = await writtenRows(p.db);

    // An order id that already exists fails inside the transaction, after the key was locked.
    const existing = await postOrder(p.url, token, body());
    const clash = await postOrder(
      p.url,
      token,
      { id: existing.body.id, items: [{ product_id: tiny.id, quantity: 1 }] },
      { key },
    );
    t.is(clash.status, 409);
    t.is(clash.body.code, 'CONFLICT');
    const stored = await p.db('idempotency_keys').where({ principal: 'demo:retrier', key });
    t.is(stored.length, 0);
    t.is((await writtenRows(p.db)).orders, before.orders + 1);

    const retry = await postOrder(p.url, token, { items: [{ product_id: tiny.id, quantity: 1 }] }, { key });
    t.is(retry.status, 201);
  },
);

test('when the body carries an order id and no header, then the id serves as the key', async (t) => {
  const token = await p.token('self-keyed');
  const id = randomUUID();

  const first = await postOrder(p.url, token, { id, items: body().items }, { key: null });
  const second = await postOrder(p.url, token, { id, items: body().items }, { key: null });

  t.is(first.status, 201);
  t.is(first.body.id, id);
  t.is(second.headers.get('idempotent-replayed'), 'true');
  t.is(await ordersOf('demo:self-keyed'), 1);
});

test('when the key is a quoted structured-field string, then the quotes are not part of the key', async (t) => {
  const token = await p.token('quoted');
  const key = `k-${randomUUID()}`;

  const quoted = await postOrder(p.url, token, body(), { key: `"${key}"` });
  const bare = await postOrder(p.url, token, body(), { key });

  t.is(quoted.status, 201);
  t.is(bare.headers.get('idempotent-replayed'), 'true');
});

test('when the key is too long or not printable ASCII, then it is refused with 400', async (t) => {
  const token = await p.token();

  const long = await postOrder(p.url, token, body(), { key: 'k'.repeat(256) });
  const empty = await postOrder(p.url, token, body(), { key: '""' });

  t.is(long.status, 400);
  t.is(long.body.code, 'IDEMPOTENCY_KEY_INVALID');
  t.is(empty.status, 400);
});

test('when a key has expired, then it can be used for a new order', async (t) => {
  const token = await p.token('expiry');
  const key = randomUUID();
  const first = await postOrder(p.url, token, body(), { key });
  await p
    .db('idempotency_keys')
    .where({ principal: 'demo:expiry', key })
    .update({ expires_at: p.db.raw("now() - interval '1 minute'") });
  await deleteOwnKeys(p.services.redis);

  const again = await postOrder(p.url, token, body(), { key });

  t.is(again.status, 201);
  t.is(again.headers.get('idempotent-replayed'), null);
  t.not(again.body.id, first.body.id);
});

test.serial(
  'when orders arrive together and some are refused, then each is answered as if it came alone: the good ones are created once, the refused ones store nothing',
  async (t) => {
    const token = await p.token('together');
    const scarce = await buildProduct(p.db, { stock_available: 1 });
    const existing = await postOrder(p.url, token, body());
    const before = await writtenRows(p.db);
    const goodKeys = Array.from({ length: 6 }, () => randomUUID());
    const [tooMany, unknown, clash] = [randomUUID(), randomUUID(), randomUUID()];

    // Sent at once, they share the API's transactions (group commit): refusals decided before any write (stock,
    // unknown product) fail alone; the clashing id fails a statement, so its group runs again order by order.
    const responses = await Promise.all([
      ...goodKeys.map((key) => postOrder(p.url, token, body(), { key })),
      postOrder(p.url, token, { items: [{ product_id: scarce.id, quantity: 2 }] }, { key: tooMany }),
      postOrder(p.url, token, { items: [{ product_id: randomUUID(), quantity: 1 }] }, { key: unknown }),
      postOrder(p.url, token, { id: existing.body.id, ...body() }, { key: clash }),
    ]);

    const good = responses.slice(0, 6);
    t.deepEqual(
      good.map((r) => r.status),
      [201, 201, 201, 201, 201, 201],
    );
    t.is(new Set(good.map((r) => r.body.id)).size, 6);
    t.deepEqual(
      responses.slice(6).map((r) => [r.status, r.body.code]),
      [
        [409, 'INSUFFICIENT_STOCK'],
        [422, 'VALIDATION_FAILED'],
        [409, 'CONFLICT'],
      ],
    );
    const after = await writtenRows(p.db);
    t.is(after.orders, before.orders + 6);
    t.is(after.idempotency_keys, before.idempotency_keys + 6);
    const keys = (await p
      .db('idempotency_keys')
      .where({ principal: 'demo:together' })
      .pluck('key')) as string[];
    t.true(goodKeys.every((k) => keys.includes(k)));
    t.false([tooMany, unknown, clash].some((k) => keys.includes(k)));
    // Retried, each good key replays its own order.
    const replay = await postOrder(p.url, token, body(), { key: goodKeys[3] });
    t.is(replay.headers.get('idempotent-replayed'), 'true');
    t.is(replay.body.id, good[3].body.id);
  },
);
