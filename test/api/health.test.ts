import { randomUUID } from 'node:crypto';
import test from 'ava';
import { buildProduct, waitForProcessed } from '../helpers/factories.ts';
import { getJson, postOrder } from '../helpers/http.ts';
import { startPipeline } from '../helpers/pipeline.ts';

test('when every dependency is up, then /healthz and /readyz answer 200 and say so', async (t) => {
  const p = await startPipeline({}, { worker: false });
  try {
    const health = await getJson(p.url, '/healthz');
    const ready = await getJson(p.url, '/readyz');

    t.is(health.status, 200);
    t.is(ready.status, 200);
    t.like(ready.body, { postgres: 'up', rabbitmq: 'up', redis: 'up' });
  } finally {
    await p.stop();
  }
});

test('when Redis cannot be reached, then /readyz says which one is down, and orders are still taken exactly once', async (t) => {
  const p = await startPipeline({ REDIS_URL: 'redis://127.0.0.1:1' });
  try {
    const ready = await getJson(p.url, '/readyz');
    t.is(ready.status, 503);
    t.like(ready.body, { postgres: 'up', rabbitmq: 'up', redis: 'down' });

    const product = await buildProduct(p.db);
    const token = await p.token();
    const key = randomUUID();
    const first = await postOrder(
      p.url,
      token,
      { items: [{ product_id: product.id, quantity: 1 }] },
      { key },
    );
    const again = await postOrder(
      p.url,
      token,
      { items: [{ product_id: product.id, quantity: 1 }] },
      { key },
    );

    t.is(first.status, 201);
    t.is(again.headers.get('idempotent-replayed'), 'true');
    t.is(again.body.id, first.body.id);
    t.is(await waitForProcessed(p.db, first.body.id), 'CONFIRMED');
  } finally {
    await p.stop();
  }
});
