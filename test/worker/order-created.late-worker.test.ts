import test from 'ava';
import { startWorker } from '../../worker/worker.ts';
import { buildProduct, waitForProcessed } from '../helpers/factories.ts';
import { postOrder } from '../helpers/http.ts';
import { startPipeline } from '../helpers/pipeline.ts';

test('when orders are posted before any worker has ever run, then they wait in the queue and are processed once one starts', async (t) => {
  const p = await startPipeline({}, { worker: false });
  try {
    const product = await buildProduct(p.db);
    const token = await p.token();
    const orders = await Promise.all(
      Array.from({ length: 5 }, () =>
        postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 1 }] }),
      ),
    );
    await p.api.relay!.drain();
    const waiting = await p.services.amqp.withChannel((ch) =>
      ch.checkQueue(p.services.topology.queue('workerOrderCreated')),
    );

    const worker = startWorker(p.services);
    try {
      t.is(waiting.messageCount, 5);
      for (const o of orders) t.is(await waitForProcessed(p.db, o.body.id), 'CONFIRMED');
    } finally {
      await worker.stop();
    }
  } finally {
    await p.stop();
  }
});
