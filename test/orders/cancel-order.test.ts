import test from 'ava';
import { SimulatedPaymentGateway } from '../../orders/payment-gateway.ts';
import type {
  ChargeRequest,
  ChargeResult,
  PaymentGateway,
  RefundRequest,
} from '../../orders/payment-gateway.ts';
import { startWorker, type RunningWorker } from '../../worker/worker.ts';
import {
  buildProduct,
  stockOf,
  waitForProcessed,
  waitForStatus,
  whileStockIsHeld,
  writtenRows,
} from '../helpers/factories.ts';
import { getJson, postOrder, sendJson } from '../helpers/http.ts';
import { startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';

/** The simulator, counting refunds, and able to hold a charge until the test lets it go. */
class GatedGateway implements PaymentGateway {
  readonly refunds: RefundRequest[] = [];
  readonly charging = new Map<string, () => void>();
  hold: ((request: ChargeRequest) => boolean) | undefined;
  private readonly real = new SimulatedPaymentGateway({ declineAbove: 1e9, latencyMs: 0 });

  async charge(request: ChargeRequest): Promise<ChargeResult> {
    if (this.hold?.(request)) {
      await new Promise<void>((release) => this.charging.set(request.idempotencyKey, release));
    }
    return this.real.charge(request);
  }

  async refund(request: RefundRequest) {
    this.refunds.push(request);
    return this.real.refund(request);
  }
}

let p: TestPipeline;
let worker: RunningWorker;
const gateway = new GatedGateway();

test.before(async () => {
  p = await startPipeline({ PAYMENT_WINDOW_S: '3600' }, { worker: false });
  worker = startWorker(p.services, { payments: gateway });
  await until(() => worker.consumer.consuming && worker.commands.consuming, 'the worker to consume');
});
test.after.always(async () => {
  await worker?.stop();
  await p?.stop();
});

const cancel = (token: string, id: string, body?: unknown, headers?: Record<string, string>) =>
  sendJson('POST', p.url, `/orders/${id}/cancel`, token, body, headers);

function refundsOf(orderId: string) {
  return gateway.refunds.filter((r) => r.idempotencyKey === `refund:${orderId}`);
}

async function traceOf(token: string, id: string): Promise<{ type: string; to_status: string; data: any }[]> {
  return (await getJson(p.url, `/orders/${id}/events`, token)).body.data;
}

test.serial(
  'when a customer cancels a CONFIRMED order, then it is CANCELLED, its stock is back on the shelf and its payment is refunded once',
  async (t) => {
    const product = await buildProduct(p.db, { stock_available: 10, price: 700 });
    const token = await p.token();
    const order = (await postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 3 }] })).body;
    t.is(await waitForProcessed(p.db, order.id), 'CONFIRMED');
    t.deepEqual(await stockOf(p.db, product.id), { available: 7, reserved: 0 });

    const res = await cancel(token, order.id, { reason: 'changed my mind' });

    t.is(res.status, 200);
    t.is(res.body.status, 'CANCELLED');
    t.is(res.body.cancel_reason, 'CUSTOMER_REQUEST');
    t.is(res.body.cancel_note, 'changed my mind');
    t.deepEqual(await stockOf(p.db, product.id), { available: 10, reserved: 0 });
    await until(
      async () => (await p.db('payments').where({ order_id: order.id }).first()).status === 'refunded',
      'the refund',
    );
    t.is(refundsOf(order.id).length, 1);
    const payment = await p.db('payments').where({ order_id: order.id }).first();
    t.is(payment.refunded_amount, 2100);
    const trace = await traceOf(token, order.id);
    t.deepEqual(
      trace.map((e) => e.type),
      ['OrderReceived', 'InventoryReserved', 'OrderConfirmed', 'OrderCancelled', 'PaymentRefunded'],
    );
    const view = (await getJson(p.url, `/orders/${order.id}`, token)).body;
    t.deepEqual(view.payment.refund.amount, 2100);
    t.is(view.payment.status, 'refunded');
  },
);

test.serial(
  'when an order is cancelled at each cancellable status, then its stock is exactly back and only a captured payment is refunded',
  async (t) => {
    const token = await p.token();
    const admin = await p.token('boss', 'admin');
    const cases = [
      { status: 'RECEIVED', refund: false },
      { status: 'INVENTORY_RESERVED', refund: false },
      { status: 'AWAITING_PAYMENT', refund: false },
      { status: 'CONFIRMED', refund: true },
      { status: 'PROCESSING', refund: true },
    ] as const;
    for (const c of cases) {
      const product = await buildProduct(p.db, { stock_available: 5 });
      const body = {
        items: [{ product_id: product.id, quantity: 2 }],
        ...(c.status === 'AWAITING_PAYMENT' ? { payment: { method: 'later' } } : {}),
      };
      if (c.status === 'RECEIVED' || c.status === 'INVENTORY_RESERVED') {
        // Hold this order where the case needs it: its OrderCreated waits (RECEIVED) or its charge does (reserved).
        gateway.hold = () => true;
      }
      if (c.status === 'RECEIVED') await worker.consumer.stop();
      const order = (await postOrder(p.url, token, body)).body;
      if (c.status === 'INVENTORY_RESERVED') {
        await waitForStatus(p.db, order.id, ['INVENTORY_RESERVED']);
      } else if (c.status !== 'RECEIVED') {
        await waitForStatus(p.db, order.id, ['AWAITING_PAYMENT', 'CONFIRMED']);
      }
      if (c.status === 'PROCESSING') {
        t.is(
          (await sendJson('PATCH', p.url, `/orders/${order.id}/status`, admin, { status: 'PROCESSING' }))
            .status,
          200,
        );
      }
      t.is(
        (await p.db('orders').where({ id: order.id }).first()).status,
        c.status,
        `the order is ${c.status}`,
      );

      const res = await cancel(token, order.id);

      t.is(res.status, 200, c.status);
      t.is(res.body.status, 'CANCELLED');
      if (c.status === 'RECEIVED') {
        const created = await p
          .db('order_events')
          .where({ order_id: order.id, type: 'OrderReceived' })
          .first();
        const acked = new Promise<void>((resolve) =>
          worker.consumer.on('settled', (e) => e.messageId === created.message_id && resolve()),
        );
        worker.consumer.start();
        // The OrderCreated that waited meanwhile finds the order cancelled and is acked having changed nothing.
        await acked;
      }
      if (c.status === 'INVENTORY_RESERVED') {
        gateway.hold = undefined;
        // The charge was in flight when the order was cancelled: once it is taken, it is given back.
        for (const release of gateway.charging.values()) release();
        gateway.charging.clear();
      }
      gateway.hold = undefined;
      if (c.status === 'INVENTORY_RESERVED' || c.refund) {
        await until(() => refundsOf(order.id).length === 1, `the refund of ${c.status}`);
        await until(
          async () => (await p.db('payments').where({ order_id: order.id }).first()).status === 'refunded',
          'refunded',
        );
      }
      // The worker, whatever it still had of this order, changes nothing once it is cancelled.
      await new Promise((r) => setImmediate(r));
      t.deepEqual(
        await stockOf(p.db, product.id),
        { available: 5, reserved: 0 },
        `stock back after ${c.status}`,
      );
      if (!c.refund && c.status !== 'INVENTORY_RESERVED') t.is(refundsOf(order.id).length, 0, c.status);
      t.is((await p.db('orders').where({ id: order.id }).first()).status, 'CANCELLED');
    }
  },
);

test.serial(
  'when an order is cancelled twice, then the second answer is the same order and stock is restored once',
  async (t) => {
    const product = await buildProduct(p.db, { stock_available: 4 });
    const token = await p.token();
    const order = (await postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 4 }] })).body;
    await waitForProcessed(p.db, order.id);

    const [first, second] = [await cancel(token, order.id), await cancel(token, order.id)];

    t.is(first.status, 200);
    t.is(second.status, 200);
    t.is(second.body.version, first.body.version);
    t.deepEqual(await stockOf(p.db, product.id), { available: 4, reserved: 0 });
    const cancels = await p
      .db('order_events')
      .where({ order_id: order.id, to_status: 'CANCELLED', type: 'OrderCancelled' });
    t.is(cancels.length, 1);
    await until(() => refundsOf(order.id).length === 1, 'one refund');
  },
);

test.serial(
  'when a shipped order is cancelled, then it is 409 ORDER_NOT_CANCELLABLE naming the status and nothing changes',
  async (t) => {
    const product = await buildProduct(p.db, { stock_available: 4 });
    const token = await p.token();
    const admin = await p.token('boss', 'admin');
    const order = (await postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 1 }] })).body;
    await waitForProcessed(p.db, order.id);
    await sendJson('PATCH', p.url, `/orders/${order.id}/status`, admin, { status: 'PROCESSING' });
    await sendJson('PATCH', p.url, `/orders/${order.id}/status`, admin, {
      status: 'SHIPPED',
      tracking_number: 'TRK1',
      carrier: 'Correos',
    });
    const before = await writtenRows(p.db);

    const res = await cancel(token, order.id);

    t.is(res.status, 409);
    t.regex(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
    t.is(res.body.code, 'ORDER_NOT_CANCELLABLE');
    t.is(res.body.current_status, 'SHIPPED');
    t.regex(res.body.detail, /SHIPPED/);
    t.deepEqual(await writtenRows(p.db), before);
    t.deepEqual(await stockOf(p.db, product.id), { available: 3, reserved: 0 });
    t.is(refundsOf(order.id).length, 0);
  },
);

test.serial('when a rejected order is cancelled, then it is 409 naming REJECTED', async (t) => {
  const product = await buildProduct(p.db, { stock_available: 2 });
  const token = await p.token();
  const order = (
    await whileStockIsHeld(
      p.db,
      product.id,
      () => postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 2 }] }),
      { takeAll: true },
    )
  ).body;
  t.is(await waitForProcessed(p.db, order.id), 'REJECTED');

  const res = await cancel(token, order.id);

  t.is(res.status, 409);
  t.is(res.body.current_status, 'REJECTED');
});

test.serial(
  'when another customer, an unknown id or a bad body cancels, then it is a 4xx problem and nothing changes',
  async (t) => {
    const product = await buildProduct(p.db, { stock_available: 4 });
    const token = await p.token();
    const stranger = await p.token();
    const order = (await postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 1 }] })).body;
    await waitForProcessed(p.db, order.id);
    const before = await writtenRows(p.db);

    t.is((await cancel(stranger, order.id)).status, 404);
    t.is((await cancel(token, '00000000-0000-4000-8000-000000000000')).status, 404);
    t.is((await cancel(token, 'not-a-uuid')).status, 404);
    const badReason = await cancel(token, order.id, { reason: 42 });
    t.is(badReason.status, 422);
    t.is(badReason.body.errors[0].field, 'reason');
    t.is((await cancel(token, order.id, { reason: 'x', extra: true })).status, 422);
    t.is((await cancel(token, order.id, '{not json')).status, 400);
    t.is((await cancel(token, order.id, undefined, { 'if-match': '"99"' })).status, 412);
    t.is((await sendJson('POST', p.url, `/orders/${order.id}/cancel`, 'garbage')).status, 401);

    t.deepEqual(await writtenRows(p.db), before);
    t.is((await p.db('orders').where({ id: order.id }).first()).status, 'CONFIRMED');
  },
);

test.serial(
  'when a cancel commits while the worker is charging, then the charge it took is refunded, the stock is back and the trace says so',
  async (t) => {
    const product = await buildProduct(p.db, { stock_available: 6, price: 900 });
    const token = await p.token();
    gateway.hold = () => true;
    const order = (await postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 2 }] })).body;
    // The worker has reserved the stock and is inside the provider call.
    await until(() => gateway.charging.has(`order:${order.id}`), 'the worker to be charging');
    gateway.hold = undefined;

    const res = await cancel(token, order.id);
    t.is(res.status, 200);
    t.is(res.body.status, 'CANCELLED');
    gateway.charging.get(`order:${order.id}`)!();
    gateway.charging.delete(`order:${order.id}`);

    await until(
      async () => (await p.db('payments').where({ order_id: order.id }).first()).status === 'refunded',
      'the refund',
    );
    t.is(refundsOf(order.id).length, 1);
    t.is(refundsOf(order.id)[0].amount, 1800);
    t.deepEqual(await stockOf(p.db, product.id), { available: 6, reserved: 0 });
    const order_ = await p.db('orders').where({ id: order.id }).first();
    t.is(order_.status, 'CANCELLED');
    const trace = await traceOf(token, order.id);
    t.deepEqual(
      trace.map((e) => e.type),
      ['OrderReceived', 'InventoryReserved', 'OrderCancelled', 'PaymentRefunded'],
    );
    t.regex(trace.at(-1)!.data.why, /while the order was being cancelled/);
    const reservations = await p.db('inventory_reservations').where({ order_id: order.id });
    t.deepEqual(
      reservations.map((r) => r.state),
      ['released'],
    );
  },
);
