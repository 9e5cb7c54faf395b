import test from 'ava';
import { getJson } from '../helpers/http.ts';
import { startPipeline } from '../helpers/pipeline.ts';

test('when a client asks for /openapi.json, then it gets a 3.1 document whose order schema is the one that validates orders', async (t) => {
  const p = await startPipeline({ ORDER_MAX_ITEMS: '7' }, { worker: false });
  try {
    const res = await getJson(p.url, '/openapi.json');

    t.is(res.status, 200);
    t.is(res.body.openapi, '3.1.0');
    const order = res.body.components.schemas.NewOrder;
    t.deepEqual(order.required, ['items']);
    t.is(order.properties.items.maxItems, 7);
    t.false(order.additionalProperties);
    t.truthy(res.body.paths['/orders'].post.responses['409']);
    for (const path of ['/products', '/lifecycle', '/healthz', '/readyz', '/login-demo']) {
      t.not((await getJson(p.url, path)).status, 404, `${path} is served`);
    }
  } finally {
    await p.stop();
  }
});
