import test from 'ava';
import { Webhook } from 'standardwebhooks';
import { buildProduct, waitForProcessed, whileStockIsHeld } from '../helpers/factories.ts';
import { getJson, http, postOrder } from '../helpers/http.ts';
import { startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';
import { TestReceiver, webhookHeaders, type Answer } from './receiver.ts';

let p: TestPipeline;
const receivers: TestReceiver[] = [];

test.before(async () => {
  p = await startPipeline(
    {
      WEBHOOK_RETRY_SCHEDULE: '0s,200ms,500ms',
      WEBHOOK_TIMEOUT_MS: '500',
      WEBHOOK_POLL_INTERVAL_MS: '100',
    },
    { notifier: true },
  );
});
test.after.always(async () => {
  await Promise.all(receivers.map((r) => r.stop()));
  await p?.stop();
});

async function receiver(answer?: (n: number) => Answer, port?: number): Promise<TestReceiver> {
  const r = await TestReceiver.start(answer, port);
  receivers.push(r);
  return r;
}

async function registerEndpoint(token: string, url: string, eventTypes: string[]) {
  const res = await http(`${p.url}/webhook-endpoints`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ url, event_types: eventTypes }),
  });
  if (res.status !== 201) throw new Error(`endpoint not created: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; secret: string };
}

/** Places an order; `soldOut`: its stock runs out before the worker reserves it, so it is rejected. */
async function placeOrder(token: string, quantity = 1, options: { soldOut?: boolean } = {}) {
  const product = await buildProduct(p.db, { stock_available: 100 });
  const post = () => postOrder(p.url, token, { items: [{ product_id: product.id, quantity }] });
  const res = options.soldOut
    ? await whileStockIsHeld(p.db, product.id, post, { takeAll: true })
    : await post();
  if (res.status !== 201) throw new Error(`order not created: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id as string;
}

/** The order's deliveries (with attempts) once every one of them is settled (delivered or failed). */
async function settledDeliveries(orderId: string, token: string, timeoutMs = 10_000) {
  let data: any[] = [];
  await until(
    async () => {
      data = (await getJson(p.url, `/orders/${orderId}/deliveries`, token)).body.data;
      return data.length > 0 && data.every((d) => d.status !== 'pending');
    },
    `the deliveries of order ${orderId} to settle`,
    timeoutMs,
  );
  return data;
}

test('when an order is confirmed, then the operations and the customer endpoint each get one order.confirmed that standardwebhooks verifies, and another customer gets nothing', async (t) => {
  const [ops, mine, theirs] = [await receiver(), await receiver(), await receiver()];
  const [admin, customer, other] = [await p.token('ops', 'admin'), await p.token(), await p.token()];
  const opsEndpoint = await registerEndpoint(admin, ops.url, ['order.confirmed']);
  const myEndpoint = await registerEndpoint(customer, mine.url, ['order.confirmed']);
  await registerEndpoint(other, theirs.url, ['order.created', 'order.confirmed', 'order.rejected']);

  const orderId = await placeOrder(customer);

  t.is(await waitForProcessed(p.db, orderId), 'CONFIRMED');
  const deliveries = await settledDeliveries(orderId, admin);
  t.deepEqual(deliveries.map((d) => [d.status, d.attempt_count]).sort(), [
    ['delivered', 1],
    ['delivered', 1],
  ]);
  for (const [r, endpoint] of [
    [ops, opsEndpoint],
    [mine, myEndpoint],
  ] as const) {
    const got = r.forOrder(orderId);
    t.is(got.length, 1);
    t.is(got[0].headers['content-type'], 'application/json');
    const verified = new Webhook(endpoint.secret).verify(got[0].body, webhookHeaders(got[0])) as any;
    t.is(verified.type, 'order.confirmed');
    t.is(verified.data.status, 'CONFIRMED');
    t.is(verified.data.order_id, orderId);
    t.is(verified.data.items.length, 1);
    t.truthy(Date.parse(verified.timestamp));
  }
  t.is(theirs.received.length, 0);
  // The customer's log shows only their own endpoint's delivery.
  const own = (await getJson(p.url, `/orders/${orderId}/deliveries`, customer)).body.data;
  t.deepEqual(
    own.map((d: any) => d.endpoint_id),
    [myEndpoint.id],
  );
});

test('when an order is rejected, then order.rejected is sent with the reason', async (t) => {
  const r = await receiver();
  const customer = await p.token();
  const endpoint = await registerEndpoint(customer, r.url, ['order.rejected']);

  const orderId = await placeOrder(customer, 5, { soldOut: true });

  t.is(await waitForProcessed(p.db, orderId), 'REJECTED');
  await settledDeliveries(orderId, customer);
  const [got] = r.forOrder(orderId);
  const payload = new Webhook(endpoint.secret).verify(got.body, webhookHeaders(got)) as any;
  t.is(payload.type, 'order.rejected');
  t.is(payload.data.status, 'REJECTED');
  t.is(payload.data.reason, 'OUT_OF_STOCK');
  t.is(r.received.length, 1);
});

test('when a receiver fails with 500, then times out, then answers 204, then the third attempt delivers with the same webhook-id', async (t) => {
  const r = await receiver((n) =>
    n === 1 ? { status: 500, body: 'boom' } : n === 2 ? 'hang' : { status: 204 },
  );
  const customer = await p.token();
  const endpoint = await registerEndpoint(customer, r.url, ['order.confirmed']);

  const orderId = await placeOrder(customer);

  const [delivery] = await settledDeliveries(orderId, customer);
  t.is(delivery.status, 'delivered');
  t.deepEqual(
    delivery.attempts.map((a: any) => a.status_code),
    [500, null, 204],
  );
  t.is(delivery.attempts[0].response_excerpt, 'boom');
  t.regex(delivery.attempts[1].error, /no complete response within 500 ms/);
  t.true(delivery.attempts.every((a: any) => typeof a.latency_ms === 'number' && a.url === r.url));
  t.is(r.received.length, 3);
  t.deepEqual(
    r.received.map((x) => x.headers['webhook-id']),
    [delivery.id, delivery.id, delivery.id],
  );
  t.notThrows(() => new Webhook(endpoint.secret).verify(r.received[2].body, webhookHeaders(r.received[2])));
});

test('when a receiver is down, then the delivery is retried through the schedule and fails, and a manual retry delivers once it is up', async (t) => {
  const port = await TestReceiver.freePort();
  const customer = await p.token();
  await registerEndpoint(customer, `http://127.0.0.1:${port}/hooks`, ['order.confirmed']);

  const orderId = await placeOrder(customer);

  const [failed] = await settledDeliveries(orderId, customer);
  t.is(failed.status, 'failed');
  t.is(failed.attempts.length, 3);
  t.true(failed.attempts.every((a: any) => a.status_code === null && /ECONNREFUSED/.test(a.error)));
  const gaps = failed.attempts
    .slice(1)
    .map((a: any, i: number) => Date.parse(a.started_at) - Date.parse(failed.attempts[i].started_at));
  t.true(gaps[0] >= 160 && gaps[1] >= 400, `gaps between attempts: ${gaps.join(', ')} ms`);

  const up = await receiver(undefined, port);
  const retry = await http(`${p.url}/webhook-deliveries/${failed.id}/retry`, {
    method: 'POST',
    headers: { authorization: `Bearer ${customer}` },
  });

  t.is(retry.status, 202);
  const [delivered] = await settledDeliveries(orderId, customer);
  t.is(delivered.status, 'delivered');
  t.is(delivered.attempts.length, 4);
  t.is(up.received.length, 1);
  t.is(up.received[0].headers['webhook-id'], failed.id);
});

test('when a receiver answers 410 Gone, then its endpoint is disabled and gets no further attempts', async (t) => {
  const r = await receiver(() => ({ status: 410 }));
  const customer = await p.token();
  const endpoint = await registerEndpoint(customer, r.url, ['order.confirmed']);

  const first = await placeOrder(customer);
  const [delivery] = await settledDeliveries(first, customer);

  t.is(delivery.status, 'failed');
  t.is(delivery.attempts.length, 1);
  const after = (await getJson(p.url, `/webhook-endpoints/${endpoint.id}`, customer)).body;
  t.false(after.enabled);
  t.regex(after.disabled_reason, /410/);
  const second = await placeOrder(customer);
  t.is(await waitForProcessed(p.db, second), 'CONFIRMED');
  t.is((await p.db('webhook_deliveries').where({ endpoint_id: endpoint.id })).length, 1);
  t.is(r.received.length, 1);
});

test('when a receiver answers 503 with Retry-After, then the next attempt waits that long rather than the schedule', async (t) => {
  const r = await receiver((n) =>
    n === 1 ? { status: 503, headers: { 'retry-after': '1' } } : { status: 204 },
  );
  const customer = await p.token();
  await registerEndpoint(customer, r.url, ['order.confirmed']);

  const orderId = await placeOrder(customer);

  const [delivery] = await settledDeliveries(orderId, customer);
  t.is(delivery.status, 'delivered');
  t.is(r.received.length, 2);
  const waited = r.received[1].at - r.received[0].at;
  t.true(waited >= 990, `waited ${waited} ms (the schedule alone would wait about 200 ms)`);
});

test('when a secret is rotated, then deliveries are signed with both the new and the previous secret', async (t) => {
  const r = await receiver();
  const customer = await p.token();
  const endpoint = await registerEndpoint(customer, r.url, ['order.created']);
  const rotated = await http(`${p.url}/webhook-endpoints/${endpoint.id}/rotate-secret`, {
    method: 'POST',
    headers: { authorization: `Bearer ${customer}` },
  });
  t.is(rotated.status, 200);
  t.not(rotated.body.secret, endpoint.secret);

  const orderId = await placeOrder(customer);

  await until(() => r.forOrder(orderId).length === 1, 'the order.created webhook');
  const [got] = r.forOrder(orderId);
  t.is(got.json.type, 'order.created');
  t.is(got.json.data.status, 'RECEIVED');
  const order = await p.db('orders').where({ id: orderId }).first();
  t.is(got.json.data.created_at, order.created_at.toISOString(), 'the webhook tells the order’s own time');
  t.notThrows(() => new Webhook(rotated.body.secret).verify(got.body, webhookHeaders(got)));
  t.notThrows(() => new Webhook(endpoint.secret).verify(got.body, webhookHeaders(got)));
});
