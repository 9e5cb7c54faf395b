import test from 'ava';
import { Webhook } from 'standardwebhooks';
import { buildProduct, stockOf, waitForProcessed, writtenRows } from '../helpers/factories.ts';
import { getJson, http, postOrder, sendJson } from '../helpers/http.ts';
import { startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';
import { TestReceiver, webhookHeaders } from '../webhooks/receiver.ts';

let p: TestPipeline;
let receiver: TestReceiver;
let secret: string;

test.before(async () => {
  p = await startPipeline({ WEBHOOK_POLL_INTERVAL_MS: '50' }, { notifier: true });
  receiver = await TestReceiver.start();
  const admin = await p.token('ops', 'admin');
  const res = await http(`${p.url}/webhook-endpoints`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
    body: JSON.stringify({
      url: receiver.url,
      event_types: [
        'order.confirmed',
        'order.processing',
        'order.shipped',
        'order.delivered',
        'order.cancelled',
      ],
    }),
  });
  secret = res.body.secret;
});
test.after.always(async () => {
  await receiver?.stop();
  await p?.stop();
});

const patch = (token: string, id: string, body: unknown, headers?: Record<string, string>) =>
  sendJson('PATCH', p.url, `/orders/${id}/status`, token, body, headers);

async function confirmedOrder(token: string) {
  const product = await buildProduct(p.db, { stock_available: 10 });
  const order = (await postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 2 }] })).body;
  await waitForProcessed(p.db, order.id);
  return { order, product };
}

test.serial(
  'when an admin moves an order to PROCESSING, SHIPPED with tracking and DELIVERED, then each step is in the order, its trace and a signed webhook, in version order',
  async (t) => {
    const customer = await p.token();
    const admin = await p.token('ops', 'admin');
    const { order, product } = await confirmedOrder(customer);

    const processing = await patch(admin, order.id, { status: 'PROCESSING' });
    const shipped = await patch(admin, order.id, {
      status: 'SHIPPED',
      tracking_number: 'ES123456789',
      carrier: 'Correos',
    });
    const delivered = await patch(admin, order.id, { status: 'DELIVERED', delivery_location: 'front desk' });

    t.deepEqual([processing.status, shipped.status, delivered.status], [200, 200, 200]);
    t.is(delivered.body.status, 'DELIVERED');
    const view = await getJson(p.url, `/orders/${order.id}`, customer);
    t.is(view.body.tracking_number, 'ES123456789');
    t.is(view.body.carrier, 'Correos');
    t.is(view.body.delivery_location, 'front desk');
    t.truthy(Date.parse(view.body.delivered_at));
    t.is(view.headers.get('etag'), `"${view.body.version}"`);
    t.deepEqual(await stockOf(p.db, product.id), { available: 8, reserved: 0 });
    const trace = (await getJson(p.url, `/orders/${order.id}/events`, customer)).body.data;
    t.deepEqual(
      trace.map((e: { to_status: string }) => e.to_status),
      ['RECEIVED', 'INVENTORY_RESERVED', 'CONFIRMED', 'PROCESSING', 'SHIPPED', 'DELIVERED'],
    );

    const mine = () => receiver.received.filter((r) => r.json.data.order_id === order.id);
    await until(() => mine().length === 4, 'four webhooks of the order');
    const verifier = new Webhook(secret);
    const payloads = mine().map((r) => verifier.verify(r.body, webhookHeaders(r)) as any);
    // Receivers order by `version`, whichever way the deliveries arrive.
    const byVersion = [...payloads].sort((a, b) => a.data.version - b.data.version);
    t.deepEqual(
      byVersion.map((w) => w.type),
      ['order.confirmed', 'order.processing', 'order.shipped', 'order.delivered'],
    );
    t.deepEqual(
      byVersion.map((w) => w.data.version),
      [3, 4, 5, 6],
    );
    const ship = byVersion[2].data;
    t.is(ship.tracking_number, 'ES123456789');
    t.is(ship.carrier, 'Correos');
    t.is(ship.previous_status, 'PROCESSING');
    t.is(byVersion[3].data.delivery_location, 'front desk');
  },
);

test.serial(
  'when a move skips a step or leaves a terminal status, then it is 409 naming the allowed next statuses, and nothing changes',
  async (t) => {
    const customer = await p.token();
    const admin = await p.token('ops', 'admin');
    const { order } = await confirmedOrder(customer);
    const before = await writtenRows(p.db);

    const jump = await patch(admin, order.id, { status: 'DELIVERED' });
    t.is(jump.status, 409);
    t.is(jump.body.code, 'ILLEGAL_TRANSITION');
    t.deepEqual(jump.body.allowed_statuses.sort(), ['CANCELLED', 'PROCESSING']);
    t.is(jump.body.current_status, 'CONFIRMED');
    const back = await patch(admin, order.id, { status: 'RECEIVED' });
    t.is(back.status, 409);

    t.deepEqual(await writtenRows(p.db), before);
  },
);

test.serial(
  'when a customer changes a status, then it is 403; another admin’s change first makes a stale If-Match 412',
  async (t) => {
    const customer = await p.token();
    const admin = await p.token('ops', 'admin');
    const { order } = await confirmedOrder(customer);
    const read = await getJson(p.url, `/orders/${order.id}`, admin);
    const etag = read.headers.get('etag')!;

    const forbidden = await patch(customer, order.id, { status: 'PROCESSING' });
    t.is(forbidden.status, 403);
    const first = await patch(admin, order.id, { status: 'PROCESSING' }, { 'if-match': etag });
    t.is(first.status, 200);
    t.is(first.headers.get('etag'), `"${read.body.version + 1}"`);
    const second = await patch(
      admin,
      order.id,
      { status: 'SHIPPED', tracking_number: 'X1', carrier: 'SEUR' },
      { 'if-match': etag },
    );
    t.is(second.status, 412);
    t.is(second.body.code, 'PRECONDITION_FAILED');
    const stale = await sendJson('POST', p.url, `/orders/${order.id}/cancel`, admin, undefined, {
      'if-match': etag,
    });
    t.is(stale.status, 412);
    t.is((await p.db('orders').where({ id: order.id }).first()).status, 'PROCESSING');
  },
);

test.serial('when the status body is bad, then it is 422 naming the field and nothing changes', async (t) => {
  const customer = await p.token();
  const admin = await p.token('ops', 'admin');
  const { order } = await confirmedOrder(customer);
  await patch(admin, order.id, { status: 'PROCESSING' });
  const before = await writtenRows(p.db);

  const cases: [unknown, string][] = [
    [{ status: 'TELEPORTED' }, 'status'],
    [{ status: 'SHIPPED', carrier: 'SEUR' }, 'tracking_number'],
    [{ status: 'SHIPPED', tracking_number: 'T1' }, 'carrier'],
    [{ status: 'SHIPPED', tracking_number: 7, carrier: 'SEUR' }, 'tracking_number'],
    [{ status: 'SHIPPED', tracking_number: '  ', carrier: 'SEUR' }, 'tracking_number'],
    [{ status: 'PROCESSING', tracking_number: 'T1' }, 'tracking_number'],
    [{ status: 'DELIVERED', color: 'red' }, 'color'],
    [{}, 'status'],
    [[], '(root)'],
  ];
  for (const [body, field] of cases) {
    const res = await patch(admin, order.id, body);
    t.is(res.status, 422, JSON.stringify(body));
    t.true(
      res.body.errors.some((e: { field: string }) => e.field === field),
      `${JSON.stringify(body)} names ${field}: ${JSON.stringify(res.body.errors)}`,
    );
  }
  t.is((await patch(admin, order.id, 'not json')).status, 400);
  t.is((await patch(admin, '00000000-0000-4000-8000-000000000000', { status: 'PROCESSING' })).status, 404);

  t.deepEqual(await writtenRows(p.db), before);
});
