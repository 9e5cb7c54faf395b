import test from 'ava';
import type { ConsumeMessage } from 'amqplib';
import { AckCoalescer } from '../../lib/amqp/acks.ts';
import { QueueConsumer } from '../../lib/amqp/consumer.ts';
import { createLogger } from '../../lib/logger.ts';
import { publishRaw, startPipeline, until } from '../helpers/pipeline.ts';

/** A delivery as amqplib hands it over, with only what the coalescer reads. */
function delivery(tag: number): ConsumeMessage {
  return { fields: { deliveryTag: tag } } as ConsumeMessage;
}

/** A channel that records its acks as `tag` or `tag+` (multiple: every delivery up to tag). */
function recorder() {
  const sent: string[] = [];
  return {
    sent,
    channel: {
      ack(msg: ConsumeMessage, allUpTo?: boolean) {
        sent.push(`${msg.fields.deliveryTag}${allUpTo ? '+' : ''}`);
      },
    },
  };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

test('when a batch of deliveries is acked in one turn, then one ack with multiple settles them all, at the end of the turn', async (t) => {
  const { sent, channel } = recorder();
  const acks = new AckCoalescer(channel);
  const batch = [1, 2, 3, 4].map(delivery);
  for (const m of batch) acks.delivered(m);
  for (const m of [batch[2], batch[0], batch[3], batch[1]]) acks.ack(m);
  t.deepEqual(sent, [], 'nothing before the end of the turn');
  await turn();
  t.deepEqual(sent, ['4+']);
});

test('when a delivery is still being handled, then no multiple ack covers it: the acks after it go out alone', async (t) => {
  const { sent, channel } = recorder();
  const acks = new AckCoalescer(channel);
  const [one, two, three, four, five] = [1, 2, 3, 4, 5].map(delivery);
  for (const m of [one, two, three, four, five]) acks.delivered(m);
  for (const m of [one, two, four, five]) acks.ack(m);
  await turn();
  t.deepEqual(sent, ['2+', '4', '5'], 'three is still in hand');

  acks.ack(three);
  await turn();
  t.deepEqual(sent, ['2+', '4', '5', '3']);
});

test('when a delivery was settled otherwise (requeued or republished), then it is no longer waited for', async (t) => {
  const { sent, channel } = recorder();
  const acks = new AckCoalescer(channel);
  const [one, two, three] = [1, 2, 3].map(delivery);
  for (const m of [one, two, three]) acks.delivered(m);
  acks.release(one);
  acks.ack(two);
  acks.ack(three);
  await turn();
  t.deepEqual(sent, ['3+']);
});

test('when the channel is closed, then the acks are dropped without an error (the broker redelivers those deliveries)', (t) => {
  const acks = new AckCoalescer({
    ack() {
      throw new Error('Channel closed');
    },
  });
  const m = delivery(1);
  acks.delivered(m);
  acks.ack(m);
  t.notThrows(() => acks.flush());
});

test('when a consumer stops while its deliveries are being handled, then their acks go out before its channel closes: none is handed back', async (t) => {
  const p = await startPipeline({}, { worker: false });
  t.teardown(() => p.stop());
  const { amqp, topology } = p.services;
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let inHand = 0;
  const consumer = new QueueConsumer(amqp, topology, {
    queue: 'workerOrderCommands',
    prefetch: 10,
    handler: async () => {
      inHand++;
      await gate;
    },
    logger: createLogger({ level: 'silent' }),
  });
  consumer.start();
  for (const id of ['a', 'b', 'c']) await publishRaw(p, 'orderCommands', '{}', { messageId: id });
  await until(() => inHand === 3, 'the three deliveries to be in hand');

  const stopped = consumer.stop();
  await until(() => !consumer.consuming, 'the consumer to take no more deliveries');
  open();
  await stopped;

  const queue = await amqp.withChannel((ch) => ch.checkQueue(topology.queue('workerOrderCommands')));
  t.is(queue.messageCount, 0);
});
