import test from 'ava';
import { buildProduct } from '../helpers/factories.ts';
import { postOrder } from '../helpers/http.ts';
import { startPipeline } from '../helpers/pipeline.ts';

test('when every database connection is busy, then the API answers 503 with Retry-After instead of queueing without end', async (t) => {
  const p = await startPipeline(
    { DATABASE_POOL_MAX: '2', DATABASE_ACQUIRE_TIMEOUT_MS: '300' },
    { worker: false },
  );
  try {
    const product = await buildProduct(p.db);
    const token = await p.token();
    await p.api.relay!.stop(); // the relay would wait for a connection too
    const held = await Promise.all([p.db.transaction(), p.db.transaction()]);
    try {
      const res = await postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 1 }] });

      t.is(res.status, 503);
      t.is(res.body.code, 'SERVICE_UNAVAILABLE');
      t.truthy(res.headers.get('retry-after'));
    } finally {
      await Promise.all(held.map((trx) => trx.rollback()));
    }
    const after = await postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 1 }] });
    t.is(after.status, 201);
  } finally {
    await p.stop();
  }
});
