import { randomBytes } from 'node:crypto';
import test from 'ava';
import { AmqpClient, type AmqpAttachment, type Channel } from '../../lib/amqp/connection.ts';
import { createLogger } from '../../lib/logger.ts';
import { baseUrls, until } from '../helpers/pipeline.ts';

const logger = createLogger({ level: 'silent' });

/** An attachment that opens a channel, declares its queue, then waits for `release` before it is attached. */
function slowAttachment(queue: string) {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const state = {
    attaching: false,
    attached: false,
    detached: 0,
    closed: false,
    channel: undefined as Channel | undefined,
  };
  const attachment: AmqpAttachment = {
    name: 'slow',
    async attach(model) {
      state.attaching = true;
      const ch = await model.createChannel();
      ch.once('close', () => (state.closed = true));
      await ch.assertQueue(queue, { durable: false, autoDelete: false });
      await held;
      state.channel = ch;
      state.attached = true;
      return [ch];
    },
    detach() {
      state.detached++;
      state.channel?.close().catch(() => {});
    },
  };
  return { attachment, state, release };
}

async function connected(t: { teardown(fn: () => Promise<void>): void }) {
  const client = new AmqpClient({ url: baseUrls().amqp, logger });
  await client.connect();
  t.teardown(() => client.close());
  return client;
}

test('when an attachment is removed while it attaches, then what it opened is closed as soon as the attach ends', async (t) => {
  const client = await connected(t);
  const queue = `test-${randomBytes(5).toString('hex')}.slow`;
  t.teardown(() => client.withChannel((ch) => ch.deleteQueue(queue)).then(() => {}));
  const { attachment, state, release } = slowAttachment(queue);

  client.add(attachment);
  await until(() => state.attaching, 'the attach to begin');
  client.remove(attachment);
  release();

  await until(() => state.attached, 'the attach to end');
  await until(() => state.closed, 'the channel it opened to close', 2000);
  t.pass('its channel is closed, so it takes no deliveries');
});

test('when every attachment is detached while one still attaches, then detachAll resolves only after that attach ended, so nothing is declared afterwards', async (t) => {
  const client = await connected(t);
  const queue = `test-${randomBytes(5).toString('hex')}.slow`;
  const { attachment, state, release } = slowAttachment(queue);

  client.add(attachment);
  await until(() => state.attaching, 'the attach to begin');
  setTimeout(release, 200);
  await client.detachAll();
  t.true(state.attached, 'the attach had ended when detachAll resolved');

  // What a scratch run does next: delete its topology. Nothing declares it again.
  await client.withChannel((ch) => ch.deleteQueue(queue));
  await new Promise((r) => setTimeout(r, 300));
  const exists = await client
    .withChannel((ch) => ch.checkQueue(queue))
    .then(
      () => true,
      () => false,
    );
  t.false(exists);
});
