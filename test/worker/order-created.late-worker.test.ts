import test from 'ava';
import { startWorker } from '../../worker/worker.ts';
import { buildProduct, waitForProcessed } from '../helpers/factories.ts';
import { postOrder } from '../helpers/http.ts';
import { startPipeline, until } from '../helpers/pipeline.ts';

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
    // The relay may be mid-batch (kicked by the POSTs) when this asks: wait for what the queue says.
    let waiting = 0;
    await until(async () => {
      waiting = (
        await p.services.amqp.withChannel((ch) =>
          ch.checkQueue(p.services.topology.queue('workerOrderCreated')),
        )
      ).messageCount;
      return waiting >= 5;
    }, 'the five OrderCreated messages to wait in the queue');

    const worker = startWorker(p.services);
    try {
      t.is(waiting, 5);
      for (const o of orders) t.is(await waitForProcessed(p.db, o.body.id), 'CONFIRMED');
    } finally {
      await worker.stop();
    }
  } finally {
    await p.stop();
  }
});
