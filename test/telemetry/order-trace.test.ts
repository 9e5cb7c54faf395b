import test from 'ava';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { startTelemetry } from '../../lib/telemetry.ts';

// Tracing starts before anything it instruments is imported (as lib/telemetry-register.ts does for a process),
// so the pipeline and its libraries come in through dynamic imports below.
const exporter = new InMemorySpanExporter();
const telemetry = await startTelemetry({
  serviceName: 'comanda-test',
  spanProcessors: [new SimpleSpanProcessor(exporter)],
});
const { startPipeline, until } = await import('../helpers/pipeline.ts');
const { buildProduct, waitForProcessed } = await import('../helpers/factories.ts');
const { http, postOrder } = await import('../helpers/http.ts');
const { TestReceiver } = await import('../webhooks/receiver.ts');
const { startWorker } = await import('../../worker/worker.ts');
const { SimulatedPaymentGateway } = await import('../../orders/payment-gateway.ts');
const { ServiceUnavailableError } = await import('../../lib/errors.ts');

type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
let p: Pipeline;
let receiver: InstanceType<typeof TestReceiver>;

test.before(async () => {
  // Each test starts the workers it needs; the notifier sends webhooks at once.
  p = await startPipeline(
    { WEBHOOK_POLL_INTERVAL_MS: '50', RETRY_DELAYS: '50ms' },
    { worker: false, notifier: true },
  );
  receiver = await TestReceiver.start();
});
test.after.always(async () => {
  await receiver?.stop();
  await p?.stop();
  await telemetry.shutdown();
});

const id = (s: ReadableSpan) => s.spanContext().spanId;
const traceOf = (s: ReadableSpan) => s.spanContext().traceId;
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

async function orderWithWebhooks(customer: string) {
  await http(`${p.url}/webhook-endpoints`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${customer}` },
    body: JSON.stringify({ url: receiver.url, event_types: ['order.created', 'order.confirmed'] }),
  });
  const product = await buildProduct(p.db);
  const res = await postOrder(p.url, customer, { items: [{ product_id: product.id, quantity: 1 }] });
  return res.body.id as string;
}

/** The spans of the trace that `order create` of this order started, once `ready` holds for them. */
async function traceOfOrder(orderId: string, ready: (spans: ReadableSpan[]) => boolean) {
  let spans: ReadableSpan[] = [];
  await until(() => {
    const create = exporter
      .getFinishedSpans()
      .find((s) => s.name === 'order create' && s.attributes['comanda.order.id'] === orderId);
    spans = create ? exporter.getFinishedSpans().filter((s) => traceOf(s) === traceOf(create)) : [];
    return spans.length > 0 && ready(spans);
  }, 'the trace of the order to be complete');
  const one = (predicate: (s: ReadableSpan) => boolean, what: string) => {
    const found = spans.filter(predicate);
    if (found.length !== 1) throw new Error(`expected one ${what}, found ${found.length}`);
    return found[0];
  };
  return { spans, one };
}

test.serial(
  'when an order goes through, then its spans share one trace from POST /orders to the webhook attempts, each with its parent',
  async (t) => {
    const worker = startWorker(p.services);
    t.teardown(() => worker.stop());
    await until(() => worker.consumer.consuming, 'the worker to consume');
    const customer = await p.token();
    const orderId = await orderWithWebhooks(customer);
    t.is(await waitForProcessed(p.db, orderId), 'CONFIRMED');

    const { spans, one } = await traceOfOrder(
      orderId,
      (s) =>
        s.filter((x) => x.name === 'webhook attempt').length === 2 &&
        s.filter((x) => x.name.endsWith('order.status-changed') && x.kind === SpanKind.PRODUCER).length ===
          2 &&
        s.some((x) => x.kind === SpanKind.SERVER),
    );
    const create = one((s) => s.name === 'order create', 'order create span');
    // POST /orders: the server span (http), under which the route and the order's statement run.
    const server = one((s) => s.kind === SpanKind.SERVER && parentOf(s) === undefined, 'root server span');
    t.regex(String(server.attributes['http.route'] ?? server.name), /\/orders/);
    let up: ReadableSpan | undefined = create;
    while (up && parentOf(up)) up = spans.find((s) => id(s) === parentOf(up!));
    t.is(up && id(up), id(server), 'order create runs inside the POST /orders request');
    t.true(
      spans.some((s) => parentOf(s) === id(create) && s.attributes['db.system.name'] === 'postgresql'),
      'the insert of the order and its outbox row is a pg span under order create',
    );
    t.false(
      spans.some((s) => String(s.attributes['db.query.text']).includes('update outbox')),
      'the relay batch belongs to no request',
    );

    // The relay publishes OrderCreated in the trace stored with the outbox row; the worker consumes under it.
    const publish = one(
      (s) => s.kind === SpanKind.PRODUCER && s.name.endsWith('order.created'),
      'OrderCreated publish span',
    );
    t.is(parentOf(publish), id(create));
    const consume = one(
      (s) => s.kind === SpanKind.CONSUMER && s.name.includes('worker.order-created'),
      'worker consume span',
    );
    t.is(parentOf(consume), id(publish));

    // Each step, and the payment between them, is a child of the consume span.
    const reserve = one((s) => s.name === 'order step RECEIVED → INVENTORY_RESERVED', 'reserve step');
    const confirm = one((s) => s.name === 'order step INVENTORY_RESERVED → CONFIRMED', 'confirm step');
    const payment = one((s) => s.name === 'payment charge', 'payment span');
    for (const s of [reserve, confirm, payment]) t.is(parentOf(s), id(consume), s.name);
    t.is(payment.attributes['comanda.payment.result'], 'captured');

    // The status-changed messages each step writes continue from that step.
    const statusPublishes = spans.filter(
      (s) => s.kind === SpanKind.PRODUCER && s.name.endsWith('order.status-changed'),
    );
    t.deepEqual(statusPublishes.map(parentOf).sort(), [id(reserve), id(confirm)].sort());

    // Each webhook attempt continues from the change that created its delivery, and its POST carries the trace.
    const attempts = spans.filter((s) => s.name === 'webhook attempt');
    const byEvent = Object.fromEntries(attempts.map((s) => [s.attributes['comanda.webhook.event_type'], s]));
    t.is(parentOf(byEvent['order.created']), id(create));
    t.is(parentOf(byEvent['order.confirmed']), id(confirm));
    for (const attempt of attempts) {
      t.is(attempt.attributes['comanda.webhook.outcome'], 'delivered');
      t.true(spans.some((s) => s.kind === SpanKind.CLIENT && parentOf(s) === id(attempt)));
    }
    const received = receiver.received.filter((r) => r.json?.data?.order_id === orderId);
    t.is(received.length, 2);
    for (const r of received) t.true(String(r.headers.traceparent).includes(traceOf(create)));

    // The order's own trace rows lead to the distributed trace.
    const events = await p.db('order_events').where({ order_id: orderId }).orderBy('id');
    t.deepEqual(
      events.map((e: { data: { trace_id?: string } }) => e.data.trace_id),
      [traceOf(create), traceOf(create), traceOf(create)],
    );
  },
);

test.serial(
  'when a worker stops in the middle of an order and another takes the redelivered message, then the order stays in one trace',
  async (t) => {
    let release: (() => void) | undefined;
    let charging = false;
    const stuck = startWorker(p.services, {
      payments: {
        async charge() {
          charging = true;
          await new Promise<void>((resolve) => (release = resolve));
          throw new ServiceUnavailableError('the payment provider went away');
        },
        refund: () => Promise.reject(new ServiceUnavailableError('no refunds here')),
      },
    });
    await until(() => stuck.consumer.consuming, 'the first worker to consume');
    const customer = await p.token();
    const orderId = await orderWithWebhooks(customer);
    await until(() => charging, 'the first worker to be taking the payment');

    // Stopping hands the message in hand back to the broker, which redelivers it to the next worker.
    const stopped = stuck.stop();
    const next = startWorker(p.services, {
      payments: new SimulatedPaymentGateway({ declineAbove: 1_000_000, latencyMs: 0 }),
    });
    t.teardown(() => next.stop());
    release?.();
    await stopped;
    t.is(await waitForProcessed(p.db, orderId), 'CONFIRMED');

    const { spans, one } = await traceOfOrder(
      orderId,
      (s) =>
        s.filter((x) => x.kind === SpanKind.CONSUMER && x.name.includes('worker.order-created')).length ===
          2 && s.filter((x) => x.name === 'webhook attempt').length === 2,
    );
    const publish = one(
      (s) => s.kind === SpanKind.PRODUCER && s.name.endsWith('order.created'),
      'OrderCreated publish span',
    );
    const consumes = spans
      .filter((s) => s.kind === SpanKind.CONSUMER && s.name.includes('worker.order-created'))
      .sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]);
    t.is(consumes.length, 2, 'the first delivery and the redelivery');
    for (const c of consumes) t.is(parentOf(c), id(publish));
    const [, redelivered] = consumes;
    // The redelivery resumes after the committed reservation: only the payment and the confirmation are left.
    const confirm = one((s) => s.name === 'order step INVENTORY_RESERVED → CONFIRMED', 'confirm step');
    t.is(parentOf(confirm), id(redelivered));
    t.is(spans.filter((s) => s.name === 'order step RECEIVED → INVENTORY_RESERVED').length, 1);
    const failed = spans.filter(
      (s) => s.name === 'payment charge' && s.attributes['comanda.payment.result'] === 'error',
    );
    t.is(failed.length, 1, 'the interrupted charge is in the trace too');
  },
);
