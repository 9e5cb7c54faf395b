import { randomUUID } from 'node:crypto';
import test from 'ava';
import { buildProduct, waitForAllProcessed, waitForProcessed } from '../helpers/factories.ts';
import { getJson, postOrder, type HttpResult } from '../helpers/http.ts';
import { baseUrls, startPipeline, until } from '../helpers/pipeline.ts';
import { proxyFor } from '../helpers/tcp-proxy.ts';

// Each outage gets its own pipeline whose connection to one service runs through a proxy the test can cut.
test.serial(
  'when the broker connection is cut during a run, then orders are still accepted and all are processed once it is back',
  async (t) => {
    const proxy = await proxyFor(baseUrls().amqp);
    const p = await startPipeline({ AMQP_URL: proxy.rewrite(baseUrls().amqp) });
    try {
      const product = await buildProduct(p.db, { stock_available: 1000 });
      const token = await p.token();
      const before = await Promise.all(
        Array.from({ length: 10 }, () =>
          postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 1 }] }),
        ),
      );

      proxy.cut();
      await until(() => !p.services.amqp.connected, 'comanda to notice the broker is gone');
      const during = await Promise.all(
        Array.from({ length: 10 }, () =>
          postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 1 }] }),
        ),
      );
      const ready = await getJson(p.url, '/readyz');
      const pendingDuringCut = Number(
        (await p.db('outbox').whereNull('published_at').count<{ n: string }[]>({ n: '*' }))[0].n,
      );
      const cutAt = Date.now();
      proxy.restore();

      t.true(during.every((r) => r.status === 201));
      t.is(ready.status, 503);
      t.is(ready.body.rabbitmq, 'down');
      t.true(pendingDuringCut >= 10, `orders of the outage wait in the outbox (${pendingDuringCut})`);
      const all = [...before, ...during];
      await waitForAllProcessed(
        p.db,
        all.map((r) => r.body.id),
        30_000,
      );
      const statuses = await p.db('orders').whereIn(
        'id',
        all.map((r) => r.body.id),
      );
      t.true(statuses.every((o: { status: string }) => o.status === 'CONFIRMED'));
      t.log(`all 20 orders final ${Date.now() - cutAt} ms after the broker came back`);
      const events = await p.db('order_events').whereIn(
        'order_id',
        all.map((r) => r.body.id),
      );
      t.is(events.length, 60, 'each order has exactly three steps');
      const stock = await p.db('products').where({ id: product.id }).first();
      t.is(stock.stock_available, 980);
    } finally {
      proxy.restore();
      await p.stop();
      await proxy.stop();
    }
  },
);

test.serial(
  'when PostgreSQL is cut for a while, then the API answers 503 with Retry-After (never 500) and recovers by itself',
  async (t) => {
    const proxy = await proxyFor(baseUrls().postgres);
    const p = await startPipeline({
      DATABASE_URL: proxy.rewrite(
        `${baseUrls().postgres.replace(/\/[^/]*$/, '')}/comanda_test_${randomUUID().slice(0, 8)}`,
      ),
      RETRY_DELAYS: '250ms,500ms,1s,2s,4s',
    });
    try {
      const product = await buildProduct(p.db, { stock_available: 100 });
      const token = await p.token();
      const first = await postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 1 }] });

      proxy.cut();
      const during: HttpResult[] = [];
      const cutStart = Date.now();
      while (Date.now() - cutStart < 2000) {
        during.push(await postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 1 }] }));
        await new Promise((r) => setTimeout(r, 100)); // a client's pace, not a wait for something
      }
      const ready = await getJson(p.url, '/readyz');
      const cutAt = Date.now();
      proxy.restore();

      t.true(during.length >= 10);
      t.deepEqual(new Set(during.map((r) => r.status)), new Set([503]));
      for (const r of during) {
        t.is(r.headers.get('content-type'), 'application/problem+json');
        t.truthy(r.headers.get('retry-after'));
      }
      t.is(ready.status, 503);
      t.is(ready.body.postgres, 'down');

      let after: HttpResult | undefined;
      await until(async () => {
        after = await postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 1 }] });
        return after.status === 201;
      }, 'the API to take orders again');
      t.log(`taking orders again ${Date.now() - cutAt} ms after PostgreSQL came back`);
      t.is(await waitForProcessed(p.db, first.body.id, 30_000), 'CONFIRMED');
      t.is(await waitForProcessed(p.db, after!.body.id, 30_000), 'CONFIRMED');
    } finally {
      proxy.restore();
      await p.stop();
      await proxy.stop();
    }
  },
);

test.serial(
  'when Redis is cut, then orders are still accepted, a replayed key still replays, and the fast path returns afterwards',
  async (t) => {
    const proxy = await proxyFor(baseUrls().redis);
    const p = await startPipeline({ REDIS_URL: proxy.rewrite(baseUrls().redis) }, { worker: false });
    try {
      const product = await buildProduct(p.db);
      const token = await p.token('redis-cut');
      const body = { items: [{ product_id: product.id, quantity: 1 }] };

      proxy.cut();
      const key = randomUUID();
      const created = await postOrder(p.url, token, body, { key });
      const replayed = await postOrder(p.url, token, body, { key });
      const ready = await getJson(p.url, '/readyz');
      proxy.restore();

      t.is(created.status, 201);
      t.is(replayed.status, 201);
      t.is(replayed.headers.get('idempotent-replayed'), 'true');
      t.is(replayed.body.id, created.body.id);
      t.is(ready.body.redis, 'down');
      t.is((await p.db('orders').where({ customer_id: 'demo:redis-cut' })).length, 1);

      await until(
        async () => (await getJson(p.url, '/readyz')).body.redis === 'up',
        'Redis to be back',
        15_000,
      );
      const later = randomUUID();
      await postOrder(p.url, token, body, { key: later });
      await postOrder(p.url, token, body, { key: later });
      const cached = await p.services.redis.keys(`${p.config.REDIS_KEY_PREFIX}idem:*:${later}`);
      t.is(cached.length, 1, 'the replay cache is written again');
    } finally {
      proxy.restore();
      await p.stop();
      await proxy.stop();
    }
  },
);
