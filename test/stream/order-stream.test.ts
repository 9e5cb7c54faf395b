import test from 'ava';
import { startApi } from '../../api/server.ts';
import { createLogger } from '../../lib/logger.ts';
import { closeServices, connectServices } from '../../lib/services.ts';
import { startWorker } from '../../worker/worker.ts';
import { buildProduct, waitForProcessed } from '../helpers/factories.ts';
import { getJson, http, postOrder } from '../helpers/http.ts';
import { startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';
import { openStream } from '../helpers/sse.ts';
import { proxyFor } from '../helpers/tcp-proxy.ts';

let p: TestPipeline;
test.before(async () => {
  p = await startPipeline();
  await until(() => p.api.statusListener.listening, 'the status listener to bind its queue');
});
test.after.always(async () => {
  await p?.stop();
});

async function confirmedOrder(token: string, quantity = 1) {
  const product = await buildProduct(p.db, { stock_available: 50 });
  const res = await postOrder(p.url, token, { items: [{ product_id: product.id, quantity }] });
  await waitForProcessed(p.db, res.body.id);
  return res.body as { id: string };
}

function streamUrl(orderId: string, token: string) {
  return `${p.url}/orders/${orderId}/stream?access_token=${token}`;
}

test('when an order is processed while its stream is open, then each step arrives as it happens, in order, with the trace ids', async (t) => {
  // The worker declares its queue and stops: the order waits at RECEIVED until this test starts another.
  const slow = await startPipeline();
  t.teardown(() => slow.stop());
  await slow.worker!.stop();
  await until(() => slow.api.statusListener.listening, 'the status listener to bind its queue');
  const token = await slow.token();
  const product = await buildProduct(slow.db, { stock_available: 5 });
  const created = await postOrder(slow.url, token, { items: [{ product_id: product.id, quantity: 2 }] });

  const stream = await openStream(`${slow.url}/orders/${created.body.id}/stream`, {
    authorization: `Bearer ${token}`,
  });
  t.teardown(() => stream.close());
  t.is(stream.status, 200);
  t.regex(stream.headers.get('content-type') ?? '', /^text\/event-stream/);
  t.is(stream.headers.get('cache-control'), 'no-cache, no-transform');
  const [received] = await stream.take(1);
  t.is(received.json.to_status, 'RECEIVED');

  const worker = startWorker(slow.services);
  t.teardown(() => worker.stop());
  const events = await stream.take(3);

  t.deepEqual(
    events.map((e) => e.json.to_status),
    ['RECEIVED', 'INVENTORY_RESERVED', 'CONFIRMED'],
  );
  const rows = await slow.db('order_events').where({ order_id: created.body.id }).orderBy('id');
  t.deepEqual(
    events.map((e) => e.id),
    rows.map((r: { id: number }) => String(r.id)),
  );
  t.true(events.every((e) => e.json.order_id === created.body.id && typeof e.json.created_at === 'string'));
});

test('when a stream is reopened with Last-Event-ID, then it sends only the steps after that id', async (t) => {
  const token = await p.token();
  const order = await confirmedOrder(token);
  const first = await openStream(streamUrl(order.id, token));
  const all = await first.take(3);
  first.close();

  const resumed = await openStream(streamUrl(order.id, token), { 'last-event-id': all[0].id! });
  t.teardown(() => resumed.close());
  const rest = await resumed.take(2);
  t.deepEqual(
    rest.map((e) => e.id),
    [all[1].id, all[2].id],
  );

  // A new EventSource cannot set the header, so the query parameter stands in for it.
  const byQuery = await openStream(`${streamUrl(order.id, token)}&last_event_id=${all[1].id}`);
  t.teardown(() => byQuery.close());
  const [last] = await byQuery.take(1);
  t.is(last.id, all[2].id);
  t.is(last.json.to_status, 'CONFIRMED');
});

test("when a customer opens another customer's order stream, then the answer is 404 and nothing is streamed", async (t) => {
  const owner = await p.token();
  const stranger = await p.token();
  const order = await confirmedOrder(owner);

  const res = await openStream(streamUrl(order.id, stranger));

  t.is(res.status, 404);
  t.regex(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
  t.is(res.body.status, 404);
  const admin = await openStream(streamUrl(order.id, await p.token('ops', 'admin')));
  t.teardown(() => admin.close());
  t.is(admin.status, 200);
});

test('when a stream is opened without a valid token, then it is refused with 401', async (t) => {
  const token = await p.token();
  const order = await confirmedOrder(token);

  const none = await openStream(`${p.url}/orders/${order.id}/stream`);
  const forged = await openStream(streamUrl(order.id, `${token.slice(0, -4)}AAAA`));

  t.is(none.status, 401);
  t.is(forged.status, 401);
  t.is(none.body.code, 'UNAUTHORIZED');
});

test('when a stream token is issued, then it opens streams but is refused as a bearer token anywhere else', async (t) => {
  const token = await p.token();
  const order = await confirmedOrder(token);

  const issued = await http(`${p.url}/stream-tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  t.is(issued.status, 200);
  t.is(issued.body.expires_in, 60);
  const stream = await openStream(streamUrl(order.id, issued.body.token));
  t.teardown(() => stream.close());
  t.is(stream.status, 200);
  t.is((await stream.take(1))[0].json.to_status, 'RECEIVED');

  const misuse = await getJson(p.url, `/orders/${order.id}`, issued.body.token);
  t.is(misuse.status, 401);
});

test("when a customer's orders change, then the customer stream sends their new steps and none of another customer's", async (t) => {
  const token = await p.token();
  const other = await p.token();
  const stream = await openStream(`${p.url}/orders/stream?access_token=${token}`);
  t.teardown(() => stream.close());
  t.is(stream.status, 200);

  await confirmedOrder(other);
  const mine = await confirmedOrder(token);
  const events = await stream.take(3);

  t.true(events.every((e) => e.json.order_id === mine.id));
  t.deepEqual(
    events.map((e) => e.json.to_status),
    ['RECEIVED', 'INVENTORY_RESERVED', 'CONFIRMED'],
  );
});

test('when the API stops, then its open streams end and stop() finishes', async (t) => {
  const second = await startApi(p.services, { port: 0 });
  await until(() => second.statusListener.listening, 'the second listener to bind its queue');
  const token = await p.token();
  const order = await confirmedOrder(token);
  const stream = await openStream(`${second.url}/orders/${order.id}/stream?access_token=${token}`);
  await stream.take(3);

  await second.stop();
  await stream.ended;

  t.is(second.statusListener.feeds, 0);
  t.false(second.server.listening);
});

test('when an API instance loses RabbitMQ while an order changes, then its open stream catches up once it is back', async (t) => {
  // A second API instance whose RabbitMQ connection runs through a proxy of this test's own.
  const proxy = await proxyFor(p.config.AMQP_URL);
  t.teardown(() => proxy.stop());
  const services = await connectServices(
    { ...p.config, AMQP_URL: proxy.rewrite(p.config.AMQP_URL) },
    createLogger({ level: 'silent' }),
  );
  const second = await startApi(services, { port: 0 });
  t.teardown(async () => {
    await second.stop();
    await closeServices(services);
  });
  await until(() => second.statusListener.listening, 'the second listener to bind its queue');
  const token = await p.token();
  const stream = await openStream(`${second.url}/orders/stream?access_token=${token}`);
  t.teardown(() => stream.close());
  t.is(stream.status, 200);

  proxy.cut();
  await until(() => !second.statusListener.listening, 'the second listener to lose its queue');
  const order = await confirmedOrder(token);
  t.is(stream.events.length, 0, 'nothing can reach the cut-off instance');
  proxy.restore();
  const events = await stream.take(3, 15_000);

  t.deepEqual(
    events.map((e) => e.json.to_status),
    ['RECEIVED', 'INVENTORY_RESERVED', 'CONFIRMED'],
  );
  t.true(events.every((e) => e.json.order_id === order.id));
});

test('when no feed is open on an API instance, then it follows no order events; once one opens, it follows them and the feed sees the order through', async (t) => {
  const services = await connectServices(p.config, createLogger({ level: 'silent' }));
  const second = await startApi(services, { port: 0 });
  t.teardown(async () => {
    await second.stop();
    await closeServices(services);
  });
  await until(() => second.statusListener.listening, 'the second listener to bind its queue');
  t.false(second.statusListener.followingEvents, 'nobody watches: no order event is routed to it');

  const token = await p.token();
  const stream = await openStream(`${second.url}/orders/stream?access_token=${token}`);
  t.teardown(() => stream.close());
  await until(() => second.statusListener.followingEvents, 'the listener to follow the order events');
  const order = await confirmedOrder(token);
  const events = await stream.take(3);

  t.deepEqual(
    events.map((e) => e.json.to_status),
    ['RECEIVED', 'INVENTORY_RESERVED', 'CONFIRMED'],
  );
  t.true(events.every((e) => e.json.order_id === order.id));
});

test('when Last-Event-ID is not an event id, then the answer is a 422 naming it', async (t) => {
  const token = await p.token();
  const order = await confirmedOrder(token);

  const res = await openStream(streamUrl(order.id, token), { 'last-event-id': 'yesterday' });

  t.is(res.status, 422);
  t.is(res.body.errors[0].field, 'Last-Event-ID');
});
