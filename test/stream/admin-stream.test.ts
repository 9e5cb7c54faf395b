import { randomUUID } from 'node:crypto';
import test from 'ava';
import { buildEnvelope } from '../../lib/messages.ts';
import { outboxRow } from '../../lib/outbox.ts';
import { buildProduct, waitForAllProcessed, waitForProcessed } from '../helpers/factories.ts';
import { http, postOrder, sendJson } from '../helpers/http.ts';
import { publishRaw, startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';
import { openStream, type SseEvent } from '../helpers/sse.ts';

let p: TestPipeline;
let admin: string;
test.before(async () => {
  p = await startPipeline();
  await until(() => p.api.statusListener.listening, 'the status listener to bind its queue');
  admin = await p.token('ops-admin', 'admin');
});
test.after.always(async () => {
  await p?.stop();
});

const adminStream = (headers: Record<string, string> = {}, query = '') =>
  openStream(`${p.url}/admin/stream${query}`, { authorization: `Bearer ${admin}`, ...headers });

/** Reads events until `done` says the ones collected are enough. */
async function takeUntil(
  stream: Awaited<ReturnType<typeof openStream>>,
  done: (events: SseEvent[]) => boolean,
): Promise<SseEvent[]> {
  await until(() => done(stream.events), 'the admin feed to deliver the expected events', 15_000);
  return stream.events.slice();
}

async function placeOrder(token: string, quantity = 1) {
  const product = await buildProduct(p.db, { stock_available: 100 });
  const res = await postOrder(p.url, token, { items: [{ product_id: product.id, quantity }] });
  return res.body as { id: string };
}

test.serial(
  'when a customer orders and an admin ships it, then the admin feed carries the creation and every status change in order',
  async (t) => {
    const stream = await adminStream();
    t.teardown(() => stream.close());
    t.is(stream.status, 200);
    const order = await placeOrder(await p.token());
    await waitForProcessed(p.db, order.id);
    for (const status of ['PROCESSING', 'SHIPPED']) {
      const body =
        status === 'SHIPPED' ? { status, tracking_number: 'TRK-1', carrier: 'Correos' } : { status };
      const res = await sendJson('PATCH', p.url, `/orders/${order.id}/status`, admin, body);
      t.is(res.status, 200);
    }
    const mine = (events: SseEvent[]) => events.filter((e) => e.json.aggregate_id === order.id);
    const events = mine(
      await takeUntil(stream, (es) => mine(es).some((e) => e.json.type === 'OrderShipped')),
    );
    t.deepEqual(
      events.map((e) => e.json.type),
      ['OrderCreated', 'OrderInventoryReserved', 'OrderConfirmed', 'OrderProcessing', 'OrderShipped'],
    );
    const shipped = events.at(-1)!.json;
    t.is(shipped.data.data.tracking_number, 'TRK-1');
    t.is(shipped.data.data.carrier, 'Correos');
    t.true(events.every((e) => e.id === e.json.id));
  },
);

test.serial(
  'when the feed is cut while orders keep coming, then resuming with Last-Event-ID delivers every missed event once',
  async (t) => {
    const token = await p.token();
    const witness = await adminStream();
    t.teardown(() => witness.close());
    const first = await adminStream();
    const orders: string[] = [];
    const place = async (n: number) => {
      const placed = await Promise.all(Array.from({ length: n }, () => placeOrder(token)));
      orders.push(...placed.map((o) => o.id));
    };
    await place(8);
    await takeUntil(first, (es) => es.length >= 5);
    first.close();
    const lastSeen = first.events.at(-1)!.id!;
    await place(8);
    await waitForAllProcessed(p.db, orders);
    const resumed = await adminStream({ 'Last-Event-ID': lastSeen });
    t.teardown(() => resumed.close());

    const expected = Number(
      (
        await p.db('admin_events').whereIn('aggregate_id', orders).count<{ count: string }[]>('id as count')
      )[0].count,
    );
    const ours = (es: SseEvent[]) => es.filter((e) => orders.includes(e.json.aggregate_id));
    const all = ours(await takeUntil(witness, (es) => ours(es).length >= expected));
    await takeUntil(resumed, (es) => ours([...first.events, ...es]).length >= expected);
    const joined = ours([...first.events, ...resumed.events]).map((e) => e.id);
    t.deepEqual(
      joined,
      all.map((e) => e.id),
      'the cut feed plus its resumption is the uncut feed',
    );
    t.is(new Set(joined).size, expected, 'no event twice');
  },
);

test.serial(
  'when a transaction writes an event and commits after a later one, then the feed waits for it rather than skipping it',
  async (t) => {
    const stream = await adminStream();
    t.teardown(() => stream.close());
    const slowId = randomUUID();
    const trx = await p.db.transaction();
    const envelope = buildEnvelope({ type: 'order', id: slowId, version: 1 }, 'OrderCreated', { slow: true });
    await trx('outbox').insert(outboxRow('orderCreated', envelope, { correlationId: 'test' }));
    const fast = await placeOrder(await p.token());
    await waitForProcessed(p.db, fast.id);
    // The fast order's events are committed, but the older transaction is still open: nothing may pass it. (A
    // short wait is the only way to see that something does not arrive; the feed re-reads every 50 ms meanwhile.)
    await new Promise((r) => setTimeout(r, 300));
    t.false(stream.events.some((e) => e.json.aggregate_id === fast.id));
    await trx.commit();
    const events = await takeUntil(stream, (es) => es.some((e) => e.json.type === 'OrderConfirmed'));
    const slowAt = events.findIndex((e) => e.json.aggregate_id === slowId);
    const fastAt = events.findIndex((e) => e.json.aggregate_id === fast.id);
    t.true(slowAt >= 0 && fastAt > slowAt);
  },
);

test.serial(
  'when a message is dead-lettered or a webhook endpoint is disabled, then the admin feed says so once',
  async (t) => {
    const stream = await adminStream();
    t.teardown(() => stream.close());
    const messageId = randomUUID();
    await publishRaw(p, 'orderCreated', 'not json', { messageId, type: 'OrderCreated' });
    const [endpoint] = await p
      .db('webhook_endpoints')
      .insert({
        owner: 'operations',
        url: 'http://127.0.0.1:9/hook',
        event_types: ['order.created'],
        secret: 'whsec_x',
      })
      .returning('id');
    await p
      .db('webhook_endpoints')
      .where({ id: endpoint.id })
      .update({ enabled: false, disabled_reason: '410 Gone' });
    const events = await takeUntil(
      stream,
      (es) =>
        es.some((e) => e.json.aggregate_id === messageId) &&
        es.some((e) => e.json.type === 'WebhookEndpointDisabled'),
    );
    const dead = events.filter((e) => e.json.aggregate_id === messageId);
    t.is(dead.length, 1);
    t.is(dead[0].json.type, 'MessageDeadLettered');
    t.regex(dead[0].json.data.queue, /worker/);
    const disabled = events.find((e) => e.json.type === 'WebhookEndpointDisabled')!;
    t.is(disabled.json.aggregate_id, endpoint.id);
    t.is(disabled.json.data.reason, '410 Gone');
  },
);

test('when a customer or nobody asks for the admin feed, then it is refused with 403 or 401', async (t) => {
  const customer = await p.token();
  const asCustomer = await http(`${p.url}/admin/stream?access_token=${customer}`);
  t.is(asCustomer.status, 403);
  t.is(asCustomer.headers.get('content-type'), 'application/problem+json');
  t.is((await http(`${p.url}/admin/stream`)).status, 401);
  t.is(
    (await http(`${p.url}/admin/dead-letters`, { headers: { authorization: `Bearer ${customer}` } })).status,
    403,
  );
});

test('when Last-Event-ID is not an id of this feed, then it is a 422 naming the header', async (t) => {
  const res = await http(`${p.url}/admin/stream`, {
    headers: { authorization: `Bearer ${admin}`, 'last-event-id': 'abc' },
  });
  t.is(res.status, 422);
  t.is(res.body.errors[0].field, 'Last-Event-ID');
});
