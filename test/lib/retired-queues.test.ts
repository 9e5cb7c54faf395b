import { randomBytes } from 'node:crypto';
import test from 'ava';
import { AmqpClient } from '../../lib/amqp/connection.ts';
import { RETIRED_QUEUES, Topology } from '../../lib/amqp/topology.ts';
import { createLogger } from '../../lib/logger.ts';
import { baseUrls } from '../helpers/pipeline.ts';

test('when comanda connects to a broker that still has the analytics queues it no longer reads, then they are deleted with their dead-letter and delay queues, and the others stay', async (t) => {
  const client = new AmqpClient({ url: baseUrls().amqp, logger: createLogger({ level: 'silent' }) });
  await client.connect();
  const topology = new Topology({
    prefix: `test-${randomBytes(4).toString('hex')}.`,
    deliveryLimit: 5,
    retryDelaysMs: [1000],
  });
  const exists = (queue: string) =>
    client
      .withChannel((ch) => ch.checkQueue(queue))
      .then(
        () => true,
        () => false,
      );
  const retired = RETIRED_QUEUES.flatMap((name) =>
    [name, `${name}.dead`, `${name}.retry.1000ms`].map((q) => topology.options.prefix + q),
  );
  try {
    // As an install of before ADR 0016 left them: quorum queues bound to the order exchanges, holding messages.
    await client.withConfirmChannel(async (ch) => {
      await topology.assertExchanges(ch);
      for (const queue of retired) {
        await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
        await ch.bindQueue(queue, topology.exchange('orderCreated'), '');
      }
      ch.publish(topology.exchange('orderCreated'), '', Buffer.from('{}'), { persistent: true });
      await ch.waitForConfirms();
    });
    for (const queue of retired) t.true(await exists(queue), queue);

    // What every publisher does on connect.
    await client.withChannel((ch) => topology.assertAll(ch));

    for (const queue of retired) t.false(await exists(queue), `${queue} is gone`);
    t.true(await exists(topology.queue('workerOrderCreated')));
    // A second connect finds nothing to delete, and that is no error.
    await t.notThrowsAsync(client.withChannel((ch) => topology.assertAll(ch)));
  } finally {
    await client.withChannel((ch) => topology.deleteAll(ch)).catch(() => {});
    await client.close();
  }
});
