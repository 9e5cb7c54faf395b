import test from 'ava';
import { MessageBatcher } from '../../lib/amqp/batcher.ts';
import type { IncomingMessage } from '../../lib/amqp/consumer.ts';
import { createLogger } from '../../lib/logger.ts';

const logger = createLogger({ level: 'silent' });

function message(id: string): IncomingMessage {
  return {
    messageId: id,
    type: 'Test',
    content: Buffer.from(id),
    headers: {},
    deliveryCount: 0,
    redelivered: false,
  };
}

const ids = (messages: IncomingMessage[]) => messages.map((m) => m.messageId);
const never = () => Promise.reject(new Error('not expected to be handled alone'));

test('when messages arrive while a batch is handled, then they form the next batch: one batch at a time, none above the maximum', async (t) => {
  const batches: (string | undefined)[][] = [];
  let running = 0;
  let release!: () => void;
  const firstHeld = new Promise<void>((resolve) => (release = resolve));
  const batcher = new MessageBatcher({
    maxBatch: 3,
    logger,
    handler: async (messages) => {
      running++;
      t.is(running, 1, 'one batch at a time');
      batches.push(ids(messages));
      if (batches.length === 1) await firstHeld;
      running--;
    },
  });

  const first = batcher.submit(message('a'), never);
  await Promise.resolve();
  const later = ['b', 'c', 'd', 'e'].map((id) => batcher.submit(message(id), never));
  release();
  await Promise.all([first, ...later]);

  t.deepEqual(batches, [['a'], ['b', 'c', 'd'], ['e']]);
});

test('when a batch fails, then its messages are handled alone one at a time, and only the one that fails alone is rejected', async (t) => {
  const alone: string[] = [];
  const batcher = new MessageBatcher({
    logger,
    handler: () => Promise.reject(new Error('poison in the batch')),
  });
  const single = (m: IncomingMessage) => {
    alone.push(m.messageId!);
    return m.messageId === 'bad' ? Promise.reject(new Error('malformed')) : Promise.resolve();
  };

  const results = await Promise.allSettled(
    ['a', 'bad', 'c'].map((id) => batcher.submit(message(id), single)),
  );

  t.deepEqual(alone, ['a', 'bad', 'c']);
  t.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
  t.is((results[1] as PromiseRejectedResult).reason.message, 'malformed');
});

test('when a batch fails for no one message’s fault (the database is away), then every message is rejected with that error without being tried alone', async (t) => {
  const outage = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  const batcher = new MessageBatcher({
    logger,
    handler: () => Promise.reject(outage),
    failsEveryMessage: (err) => err === outage,
  });

  const results = await Promise.allSettled(['a', 'b'].map((id) => batcher.submit(message(id), never)));

  t.deepEqual(
    results.map((r) => (r.status === 'rejected' ? r.reason : r.status)),
    [outage, outage],
  );
});
