import { randomUUID } from 'node:crypto';
import type { ConsumeMessage } from 'amqplib';
import test from 'ava';
import { ConfirmPublisher } from '../../lib/amqp/publisher.ts';
import { buildEnvelope } from '../../lib/messages.ts';
import { OutboxRelay } from '../../relay/outbox-relay.ts';
import { buildProduct } from '../helpers/factories.ts';
import { postOrder } from '../helpers/http.ts';
import { startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';

/** A queue of the test's own bound to a fanout exchange: it sees every message published there. */
async function probe(p: TestPipeline, exchange: 'orderCreated' | 'orderStatusChanged') {
  const queue = `${p.config.AMQP_PREFIX}probe-${randomUUID()}`;
  const seen: { id: string; type: string }[] = [];
  const ch = await p.services.amqp.openChannel();
  await ch.assertQueue(queue, { exclusive: true });
  await ch.bindQueue(queue, p.services.topology.exchange(exchange), '');
  await ch.consume(
    queue,
    (m: ConsumeMessage | null) =>
      m && seen.push({ id: m.properties.messageId as string, type: m.properties.type as string }),
    {
      noAck: true,
    },
  );
  return { seen, close: () => ch.close() };
}

/** A relay of the test's own, with its own publisher; it sweeps only when told to. */
function ownRelay(p: TestPipeline) {
  const publisher = new ConfirmPublisher(p.services.amqp, p.services.topology);
  publisher.start();
  const relay = new OutboxRelay({
    db: p.db,
    publisher,
    topology: p.services.topology,
    logger: p.services.logger,
    batchSize: 25,
    sweepIntervalMs: 600_000,
  });
  return {
    publisher,
    relay,
    async stop() {
      await relay.stop();
      p.services.amqp.remove(publisher);
    },
  };
}

/** The outbox row of an OrderCreated message of a new order. */
function orderCreatedRow(extra: Record<string, unknown> = {}) {
  const envelope = buildEnvelope({ type: 'order', id: randomUUID(), version: 1 }, 'OrderCreated', {});
  return {
    id: envelope.id,
    aggregate_id: envelope.aggregate_id,
    exchange: 'orderCreated',
    type: 'OrderCreated',
    payload: envelope,
    ...extra,
  };
}

test('when a worker commits a status change, then it is published at once, without waiting for a sweep', async (t) => {
  const p = await startPipeline({ RELAY_SWEEP_INTERVAL_MS: '600000' });
  const statuses = await probe(p, 'orderStatusChanged');
  try {
    const product = await buildProduct(p.db);
    const res = await postOrder(p.url, await p.token(), { items: [{ product_id: product.id, quantity: 1 }] });

    await until(
      () => statuses.seen.some((m) => m.type === 'OrderConfirmed'),
      'OrderConfirmed to be published',
    );

    t.deepEqual(
      statuses.seen.map((m) => m.type),
      ['OrderInventoryReserved', 'OrderConfirmed'],
    );
    // The relay marks rows published once the broker confirmed them, a moment after they can be consumed.
    await until(
      async () =>
        (await p.db('outbox').where({ aggregate_id: res.body.id }).whereNull('published_at')).length === 0,
      'the outbox rows to be marked published',
    );
  } finally {
    await statuses.close();
    await p.stop();
  }
});

test('when several relays drain one outbox together, then every row is published exactly once', async (t) => {
  const p = await startPipeline({ RELAY_ENABLED: 'false' }, { worker: false });
  const created = await probe(p, 'orderCreated');
  const relays = Array.from({ length: 3 }, () => ownRelay(p));
  try {
    await until(() => relays.every((r) => r.publisher.ready), 'the publishers to be ready');
    const rows = Array.from({ length: 300 }, () => orderCreatedRow());
    await p.db('outbox').insert(rows);

    const counts = await Promise.all(relays.map((r) => r.relay.drain()));

    t.is(
      counts.reduce((a, b) => a + b, 0),
      300,
    );
    await until(() => created.seen.length >= 300, 'all 300 messages to arrive');
    t.is(new Set(created.seen.map((m) => m.id)).size, 300);
    t.is(created.seen.length, 300);
    t.true(counts.filter((n) => n > 0).length >= 2, `the work was shared: ${counts.join(', ')}`);
  } finally {
    for (const r of relays) await r.stop();
    await created.close();
    await p.stop();
  }
});

test('when a row’s transaction began long before it committed, then a commit’s run leaves it to the sweep, which publishes it', async (t) => {
  const p = await startPipeline({ RELAY_ENABLED: 'false' }, { worker: false });
  const created = await probe(p, 'orderCreated');
  const own = ownRelay(p);
  const { relay } = own;
  try {
    await until(() => own.publisher.ready, 'the publisher to be ready');
    // `created_at` is its transaction's start: one that ran for a minute, and one just now.
    const old = orderCreatedRow({ created_at: p.db.raw(`now() - interval '1 minute'`) });
    const recent = orderCreatedRow({ created_at: p.db.fn.now() });
    await p.db('outbox').insert([old, recent]);

    relay.kick();
    await until(() => created.seen.some((m) => m.id === recent.id), 'the recent row to be published');
    await new Promise((r) => setTimeout(r, 300));
    t.false(
      created.seen.some((m) => m.id === old.id),
      'a commit’s run looks at recent rows only',
    );

    relay.kick({ sweep: true });
    await until(() => created.seen.some((m) => m.id === old.id), 'the sweep to publish the old row');
    // Marked published once the broker confirmed them, a moment after they can be consumed.
    await until(
      async () =>
        (await p.db('outbox').whereIn('id', [old.id, recent.id]).whereNull('published_at')).length === 0,
      'both rows to be marked published',
    );
  } finally {
    await own.stop();
    await created.close();
    await p.stop();
  }
});
