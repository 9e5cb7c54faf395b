import test from 'ava';
import { DeadLetters } from '../../lib/amqp/dead-letters.ts';
import { startWorker } from '../../worker/worker.ts';
import { buildProduct, stockOf, waitForAllProcessed } from '../helpers/factories.ts';
import { postOrder } from '../helpers/http.ts';
import { publishRaw, startPipeline, until } from '../helpers/pipeline.ts';

test('when orders wait in the queue with a poison message among them, then the worker takes them in batches, sells no more than the stock, gives each its trace, dead-letters only the poison, and leaves nothing in the queue when it stops', async (t) => {
  const p = await startPipeline({}, { worker: false });
  t.teardown(() => p.stop());
  const scarce = await buildProduct(p.db, { stock_available: 4 });
  const token = await p.token();
  const ids: string[] = [];
  for (let i = 0; i < 10; i++) {
    const res = await postOrder(p.url, token, { items: [{ product_id: scarce.id, quantity: 1 }] });
    ids.push(res.body.id as string);
    if (i === 4) {
      await publishRaw(p, 'orderCreated', '{"not": "an envelope"', {
        messageId: 'poison',
        type: 'OrderCreated',
      });
    }
  }
  await until(
    async () =>
      (
        await p.services.amqp.withChannel((ch) =>
          ch.checkQueue(p.services.topology.queue('workerOrderCreated')),
        )
      ).messageCount >= 11,
    'the eleven messages to wait in the queue',
  );

  const worker = startWorker(p.services);
  t.teardown(() => worker.stop());
  await waitForAllProcessed(p.db, ids);
  const dlq = new DeadLetters(p.services.amqp, p.services.topology);
  await until(
    async () => (await dlq.list()).some((d) => d.id === 'poison'),
    'the poison to be dead-lettered',
  );

  t.true(worker.newOrders.handled.largest > 1, 'deliveries in hand were handled together');
  const orders = await p.db('orders').whereIn('id', ids).select('id', 'status');
  t.is(orders.filter((o) => o.status === 'CONFIRMED').length, 4);
  t.is(orders.filter((o) => o.status === 'REJECTED').length, 6);
  t.deepEqual(await stockOf(p.db, scarce.id), { available: 0, reserved: 0 });
  const steps = await p.db('order_events').whereIn('order_id', ids).select('order_id');
  t.is(steps.length, 4 * 3 + 6 * 2);
  const letters = (await dlq.list()).filter((d) => d.id === 'poison');
  t.is(letters.length, 1);
  t.regex(letters[0].reason, /Malformed OrderCreated message/);

  // Every delivery was acked (a batch's acks go out together) before the channel closed: none is handed back.
  await worker.stop();
  const queue = await p.services.amqp.withChannel((ch) =>
    ch.checkQueue(p.services.topology.queue('workerOrderCreated')),
  );
  t.is(queue.messageCount, 0);
});
