import { randomUUID } from 'node:crypto';
import test from 'ava';
import { reapExpired } from '../../orders/housekeeping.ts';
import { buildProduct } from '../helpers/factories.ts';
import { postOrder } from '../helpers/http.ts';
import { startPipeline } from '../helpers/pipeline.ts';

test('when keys have expired, outbox rows are old and deliveries long settled, then housekeeping deletes them and nothing else', async (t) => {
  const p = await startPipeline({}, { worker: false });
  try {
    const product = await buildProduct(p.db);
    const token = await p.token('keeper');
    const oldKey = randomUUID();
    const liveKey = randomUUID();
    const old = await postOrder(
      p.url,
      token,
      { items: [{ product_id: product.id, quantity: 1 }] },
      { key: oldKey },
    );
    await postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 1 }] }, { key: liveKey });
    await p.api.relay!.drain();
    await p
      .db('idempotency_keys')
      .where({ key: oldKey })
      .update({ expires_at: p.db.raw("now() - interval '1 second'") });
    await p
      .db('outbox')
      .where({ aggregate_id: old.body.id })
      .update({ published_at: p.db.raw("now() - interval '100 hours'") });
    // Both orders' feed events are old; analytics has counted the first order's only.
    await p
      .db('admin_events')
      .where({ aggregate_type: 'order' })
      .update({ created_at: p.db.raw("now() - interval '100 hours'") });
    const counted = await p.db('admin_events').where({ aggregate_id: old.body.id }).first();
    await p.db('analytics_progress').update({ feed_tx: counted.tx, feed_id: counted.id });

    const [endpoint] = await p
      .db('webhook_endpoints')
      .insert({
        owner: 'operations',
        url: 'https://example.test/h',
        event_types: ['order.created'],
        secret: 'whsec_x',
      })
      .returning('id');
    const delivery = (status: string, hoursAgo: number) => ({
      endpoint_id: endpoint.id,
      order_id: old.body.id,
      event_type: 'order.created',
      payload: {},
      status,
      updated_at: p.db.raw(`now() - make_interval(hours => ${hoursAgo})`),
    });
    await p
      .db('webhook_deliveries')
      .insert([
        delivery('delivered', 800),
        delivery('failed', 800),
        delivery('delivered', 1),
        delivery('pending', 800),
      ]);

    const reaped = await reapExpired(p.db, { outboxRetentionHours: 72, deliveryRetentionHours: 720 });

    t.deepEqual(reaped, { idempotencyKeys: 1, outboxRows: 1, webhookDeliveries: 2, adminEvents: 1 });
    t.deepEqual(
      (await p.db('admin_events').where({ aggregate_type: 'order' }).select('aggregate_id')).map(
        (e: { aggregate_id: string }) => e.aggregate_id,
      ),
      [(await p.db('orders').where({ customer_id: 'demo:keeper' }).whereNot({ id: old.body.id }).first()).id],
      'the newer order’s event stays: analytics has not counted it',
    );
    t.deepEqual(
      (await p.db('webhook_deliveries').orderBy('status')).map((d: { status: string }) => d.status),
      ['delivered', 'pending'],
      'recent and pending deliveries stay',
    );
    t.deepEqual(
      (await p.db('idempotency_keys').where({ principal: 'demo:keeper' })).map((k: { key: string }) => k.key),
      [liveKey],
    );
    t.is((await p.db('outbox').whereNull('published_at')).length, 0);
    t.is((await p.db('orders').where({ customer_id: 'demo:keeper' })).length, 2, 'orders are never reaped');
  } finally {
    await p.stop();
  }
});
