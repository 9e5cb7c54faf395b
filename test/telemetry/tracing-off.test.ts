import test from 'ava';
import { trace, type Context } from '@opentelemetry/api';
import { BasicTracerProvider, type Span, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { buildProduct, waitForProcessed } from '../helpers/factories.ts';
import { http, postOrder } from '../helpers/http.ts';
import { startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';
import { TestReceiver } from '../webhooks/receiver.ts';
import { tracingEnabled } from '../../lib/telemetry.ts';

// A tracer provider that counts every span anybody starts. comanda's tracing is off (the test environment sets no
// OTEL_EXPORTER_OTLP_ENDPOINT and nothing starts the SDK), so no comanda code may reach for it.
const started: string[] = [];
const counting: SpanProcessor = {
  onStart: (span: Span, _parent: Context) => void started.push(span.name),
  onEnd: () => {},
  forceFlush: () => Promise.resolve(),
  shutdown: () => Promise.resolve(),
};
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [counting] }));

let p: TestPipeline;
let receiver: TestReceiver;
test.before(async () => {
  p = await startPipeline({ WEBHOOK_POLL_INTERVAL_MS: '50' }, { notifier: true });
  receiver = await TestReceiver.start();
});
test.after.always(async () => {
  await receiver?.stop();
  await p?.stop();
});

test('when tracing is off, then an order goes from POST to its webhooks without creating a single span', async (t) => {
  t.false(tracingEnabled());
  t.is(process.env.OTEL_EXPORTER_OTLP_ENDPOINT, undefined);
  const customer = await p.token();
  await http(`${p.url}/webhook-endpoints`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${customer}` },
    body: JSON.stringify({ url: receiver.url, event_types: ['order.created', 'order.confirmed'] }),
  });
  const product = await buildProduct(p.db);
  const res = await postOrder(p.url, customer, { items: [{ product_id: product.id, quantity: 1 }] });
  const orderId = res.body.id as string;
  t.is(await waitForProcessed(p.db, orderId), 'CONFIRMED');
  await until(
    () => receiver.received.filter((r) => r.json?.data?.order_id === orderId).length === 2,
    'both webhooks to arrive',
  );

  t.deepEqual(started, [], 'no span was started');
  // Nothing traced is stored either: no trace ids in the steps, no trace context on the deliveries or messages.
  const events = await p.db('order_events').where({ order_id: orderId });
  t.true(events.every((e: { data: Record<string, unknown> }) => !('trace_id' in e.data)));
  const deliveries = await p.db('webhook_deliveries').where({ order_id: orderId });
  t.true(deliveries.every((d: { traceparent: string | null }) => d.traceparent === null));
  const messages = await p.db('outbox').where({ aggregate_id: orderId });
  t.true(messages.every((m: { headers: Record<string, string> }) => !('traceparent' in m.headers)));
  t.true(receiver.received.every((r) => r.headers.traceparent === undefined));
});
