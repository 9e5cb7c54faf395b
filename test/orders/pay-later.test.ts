import { spawn, type ChildProcess } from 'node:child_process';
import test from 'ava';
import { buildProduct, stockOf, waitForProcessed, waitForStatus, writtenRows } from '../helpers/factories.ts';
import { getJson, postOrder, sendJson } from '../helpers/http.ts';
import { startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';

let p: TestPipeline;
test.before(async () => {
  p = await startPipeline({ PAYMENT_WINDOW_S: '3600', PAYMENT_SWEEP_INTERVAL_MS: '100' });
});
test.after.always(async () => {
  await p?.stop();
});

const pay = (token: string, id: string, body: unknown) =>
  sendJson('POST', p.url, `/orders/${id}/payment`, token, body);

async function later(token: string, productId: string, quantity = 2) {
  const res = await postOrder(p.url, token, {
    items: [{ product_id: productId, quantity }],
    payment: { method: 'later' },
  });
  return res.body as { id: string };
}

test.serial(
  'when an order is placed to pay later, then it waits in AWAITING_PAYMENT with its stock held, and a payment confirms it',
  async (t) => {
    const product = await buildProduct(p.db, { stock_available: 10, price: 400 });
    const token = await p.token();
    const order = await later(token, product.id);

    t.is(await waitForProcessed(p.db, order.id), 'AWAITING_PAYMENT');
    t.deepEqual(await stockOf(p.db, product.id), { available: 8, reserved: 2 });
    const waiting = (await getJson(p.url, `/orders/${order.id}`, token)).body;
    t.is(waiting.payment.method, 'later');
    const due = Date.parse(waiting.payment.due_at) - Date.parse(waiting.created_at);
    t.true(due > 3590_000 && due < 3610_000, `due in about an hour, was ${due} ms`);

    const res = await pay(token, order.id, { token: 'tok_visa' });

    t.is(res.status, 202);
    t.is(await waitForStatus(p.db, order.id, ['CONFIRMED']), 'CONFIRMED');
    t.deepEqual(await stockOf(p.db, product.id), { available: 8, reserved: 0 });
    const payment = await p.db('payments').where({ order_id: order.id }).first();
    t.is(payment.status, 'captured');
    t.is(payment.attempts, 1);
    const trace = (await getJson(p.url, `/orders/${order.id}/events`, token)).body.data;
    t.deepEqual(
      trace.map((e: { to_status: string }) => e.to_status),
      ['RECEIVED', 'INVENTORY_RESERVED', 'AWAITING_PAYMENT', 'CONFIRMED'],
    );
  },
);

test.serial(
  'when the first card is declined and another is paid, then the order is CONFIRMED with both attempts in its trace',
  async (t) => {
    const product = await buildProduct(p.db, { stock_available: 10 });
    const token = await p.token();
    const order = await later(token, product.id);
    await waitForStatus(p.db, order.id, ['AWAITING_PAYMENT']);

    t.is((await pay(token, order.id, { token: 'tok_decline' })).status, 202);
    await waitForStatus(p.db, order.id, ['AWAITING_PAYMENT']);
    const declined = async () =>
      (await p.db('order_events').where({ order_id: order.id, type: 'PaymentDeclined' })).length === 1;
    await until(declined, 'the declined attempt in the trace');
    t.is((await p.db('orders').where({ id: order.id }).first()).status, 'AWAITING_PAYMENT');
    t.deepEqual(await stockOf(p.db, product.id), { available: 8, reserved: 2 });

    t.is((await pay(token, order.id, { token: 'tok_visa' })).status, 202);

    t.is(await waitForStatus(p.db, order.id, ['CONFIRMED']), 'CONFIRMED');
    const trace = (await getJson(p.url, `/orders/${order.id}/events`, token)).body.data;
    t.deepEqual(
      trace.map((e: { type: string }) => e.type),
      ['OrderReceived', 'InventoryReserved', 'PaymentAwaited', 'PaymentDeclined', 'OrderConfirmed'],
    );
    t.is(trace[3].data.payment.status, 'declined');
    t.is(trace[4].data.payment.status, 'captured');
    t.not(trace[3].data.payment.provider_ref, trace[4].data.payment.provider_ref);
    const payment = await p.db('payments').where({ order_id: order.id }).first();
    t.is(payment.attempts, 2);
  },
);

test.serial(
  'when a payment is sent for an order that is not waiting, or by someone else, or without a card, then it is a 4xx problem and nothing is charged',
  async (t) => {
    const product = await buildProduct(p.db, { stock_available: 10 });
    const token = await p.token();
    const stranger = await p.token();
    const paid = (await postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 1 }] })).body;
    await waitForStatus(p.db, paid.id, ['CONFIRMED']);
    const waiting = await later(token, product.id);
    await waitForStatus(p.db, waiting.id, ['AWAITING_PAYMENT']);
    const before = await writtenRows(p.db);

    const notWaiting = await pay(token, paid.id, { token: 'tok_visa' });
    t.is(notWaiting.status, 409);
    t.is(notWaiting.body.code, 'ORDER_NOT_AWAITING_PAYMENT');
    t.is((await pay(stranger, waiting.id, { token: 'tok_visa' })).status, 404);
    t.is((await pay(token, waiting.id, {})).status, 422);
    t.is((await pay(token, waiting.id, { token: '' })).status, 422);
    t.is((await pay(token, waiting.id, { token: 5 })).status, 422);
    const both = await postOrder(p.url, token, {
      items: [{ product_id: product.id, quantity: 1 }],
      payment: { method: 'later', token: 'tok_visa' },
    });
    t.is(both.status, 422);

    t.deepEqual(await writtenRows(p.db), before);
    t.is((await p.db('orders').where({ id: waiting.id }).first()).status, 'AWAITING_PAYMENT');
  },
);

test.serial(
  'when an order is not paid within its window, then it is CANCELLED with PAYMENT_TIMEOUT and its stock released',
  async (t) => {
    const product = await buildProduct(p.db, { stock_available: 5 });
    const token = await p.token();
    const order = await later(token, product.id, 3);
    await waitForStatus(p.db, order.id, ['AWAITING_PAYMENT']);
    // The window is an hour here: move this order's due time into the past, as time passing would.
    await p
      .db('orders')
      .where({ id: order.id })
      .update({ payment_due_at: p.db.raw("now() - interval '1 second'") });

    t.is(await waitForStatus(p.db, order.id, ['CANCELLED']), 'CANCELLED');
    const row = await p.db('orders').where({ id: order.id }).first();
    t.is(row.cancel_reason, 'PAYMENT_TIMEOUT');
    t.deepEqual(await stockOf(p.db, product.id), { available: 5, reserved: 0 });
    const last = (await getJson(p.url, `/orders/${order.id}/events`, token)).body.data.at(-1);
    t.is(last.reason, 'PAYMENT_TIMEOUT');
    t.is((await pay(token, order.id, { token: 'tok_visa' })).status, 409);
  },
);

function spawnWorker(env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'worker/main.ts'], {
    env: { PATH: process.env.PATH, ...env, LOG_LEVEL: 'silent' },
    stdio: 'ignore',
  });
}

test.serial(
  'when the worker that would fire the payment timeout is killed and another starts later, then the order is still cancelled on time',
  async (t) => {
    const q = await startPipeline(
      { PAYMENT_WINDOW_S: '2', PAYMENT_SWEEP_INTERVAL_MS: '100' },
      { worker: false },
    );
    const children: ChildProcess[] = [];
    try {
      const product = await buildProduct(q.db, { stock_available: 5 });
      const token = await q.token();
      const first = spawnWorker(q.env);
      children.push(first);
      const order = (
        await postOrder(q.url, token, {
          items: [{ product_id: product.id, quantity: 2 }],
          payment: { method: 'later' },
        })
      ).body;
      await waitForStatus(q.db, order.id, ['AWAITING_PAYMENT'], 20_000);
      first.kill('SIGKILL');
      await new Promise((r) => first.once('exit', r));
      const { payment_due_at } = await q.db('orders').where({ id: order.id }).first();
      // Nothing is running that could cancel it: past its due time it is still waiting.
      await new Promise((r) => setTimeout(r, Math.max(0, payment_due_at.getTime() - Date.now()) + 300));
      t.is((await q.db('orders').where({ id: order.id }).first()).status, 'AWAITING_PAYMENT');

      children.push(spawnWorker(q.env));

      t.is(await waitForStatus(q.db, order.id, ['CANCELLED'], 20_000), 'CANCELLED');
      t.is((await q.db('orders').where({ id: order.id }).first()).cancel_reason, 'PAYMENT_TIMEOUT');
      t.deepEqual(await stockOf(q.db, product.id), { available: 5, reserved: 0 });
    } finally {
      for (const child of children) child.kill('SIGKILL');
      await q.stop();
    }
  },
);
