import { randomUUID } from 'node:crypto';
import test from 'ava';
import { buildProduct, waitForProcessed } from '../helpers/factories.ts';
import { getJson, postOrder } from '../helpers/http.ts';
import { startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';
import { scrape, valueOf, type Sample } from '../../bench/prometheus.ts';
import { IDEMPOTENT_PHASES } from '../../api/idempotency.ts';

let p: TestPipeline;
test.before(async () => {
  p = await startPipeline();
});
test.after.always(async () => {
  await p?.stop();
});

// The tests of this file share one process, hence one registry: each compares before and after.
test.serial(
  'when an order is CONFIRMED, then /metrics counts it as created and as final, with its time to final',
  async (t) => {
    const product = await buildProduct(p.db);
    const token = await p.token();
    const before = await scrape(`${p.url}/metrics`);

    const res = await postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 1 }] });
    t.is(await waitForProcessed(p.db, res.body.id), 'CONFIRMED');

    let after: Sample[] = [];
    await until(async () => {
      after = await scrape(`${p.url}/metrics`);
      return (
        valueOf(after, 'comanda_order_received_to_final_seconds_count', { status: 'CONFIRMED' }) >
        valueOf(before, 'comanda_order_received_to_final_seconds_count', { status: 'CONFIRMED' })
      );
    }, 'the final status to be recorded');
    const delta = (name: string, labels: Record<string, string> = {}) =>
      valueOf(after, name, labels) - valueOf(before, name, labels);

    t.is(delta('comanda_orders_created_total'), 1);
    t.is(delta('comanda_orders_final_total', { status: 'CONFIRMED', reason: 'none' }), 1);
    t.is(delta('comanda_order_received_to_final_seconds_count', { status: 'CONFIRMED' }), 1);
    t.is(delta('comanda_order_received_to_final_seconds_bucket', { status: 'CONFIRMED', le: '+Inf' }), 1);
    t.is(delta('comanda_order_step_seconds_count', { from: 'RECEIVED', to: 'INVENTORY_RESERVED' }), 1);
    t.is(delta('comanda_order_step_seconds_count', { from: 'INVENTORY_RESERVED', to: 'CONFIRMED' }), 1);
    t.is(delta('comanda_idempotency_requests_total', { outcome: 'executed' }), 1);
    t.is(delta('comanda_outbox_published_total', { type: 'OrderCreated' }), 1);
    t.is(delta('comanda_messages_consumed_total', { queue: 'worker.order-created', outcome: 'acked' }), 1);
    t.is(delta('comanda_payment_duration_seconds_count', { result: 'captured' }), 1);
  },
);

test.serial('when an order is declined, then it is counted as REJECTED with its reason', async (t) => {
  const product = await buildProduct(p.db);
  const token = await p.token();
  const before = await scrape(`${p.url}/metrics`);

  const res = await postOrder(p.url, token, {
    items: [{ product_id: product.id, quantity: 1 }],
    payment: { token: 'tok_decline' },
  });
  t.is(await waitForProcessed(p.db, res.body.id), 'REJECTED');

  const labels = { status: 'REJECTED', reason: 'PAYMENT_DECLINED' };
  await until(
    async () =>
      valueOf(await scrape(`${p.url}/metrics`), 'comanda_orders_final_total', labels) >
      valueOf(before, 'comanda_orders_final_total', labels),
    'the rejection to be counted',
  );
  const after = await scrape(`${p.url}/metrics`);
  t.is(
    valueOf(after, 'comanda_orders_final_total', labels) -
      valueOf(before, 'comanda_orders_final_total', labels),
    1,
  );
  t.is(
    valueOf(after, 'comanda_orders_final_total', { status: 'CONFIRMED' }) -
      valueOf(before, 'comanda_orders_final_total', { status: 'CONFIRMED' }),
    0,
  );
});

test.serial(
  'when a request is answered, then its duration is labelled with the route template, not the raw path',
  async (t) => {
    const token = await p.token();
    const missing = randomUUID();

    await getJson(p.url, `/orders/${missing}`, token);
    await getJson(p.url, `/no-such-page-${missing}`);
    const samples = await scrape(`${p.url}/metrics`);

    const routes = new Set(
      samples
        .filter((s) => s.name === 'comanda_http_request_duration_seconds_count')
        .map((s) => s.labels.route),
    );
    t.true(
      valueOf(samples, 'comanda_http_request_duration_seconds_count', {
        method: 'GET',
        route: '/orders/:id',
        status: '404',
      }) >= 1,
    );
    t.true(routes.has('(unmatched)'));
    t.false(
      [...routes].some((r) => r.includes(missing)),
      'no raw path becomes a label',
    );
  },
);

test.serial(
  'when a key is replayed or reused with another body, then replays and conflicts are counted, and no order twice',
  async (t) => {
    const product = await buildProduct(p.db);
    const token = await p.token();
    const key = randomUUID();
    const body = { items: [{ product_id: product.id, quantity: 1 }] };
    const first = await postOrder(p.url, token, body, { key });
    const before = await scrape(`${p.url}/metrics`);

    const replay = await postOrder(p.url, token, body, { key });
    const reused = await postOrder(
      p.url,
      token,
      { items: [{ product_id: product.id, quantity: 2 }] },
      { key },
    );
    const after = await scrape(`${p.url}/metrics`);

    t.is(first.status, 201);
    t.is(replay.headers.get('idempotent-replayed'), 'true');
    t.is(reused.status, 422);
    const delta = (name: string, labels: Record<string, string> = {}) =>
      valueOf(after, name, labels) - valueOf(before, name, labels);
    t.is(delta('comanda_idempotency_requests_total', { outcome: 'replayed' }), 1);
    t.is(delta('comanda_idempotency_requests_total', { outcome: 'key_reused' }), 1);
    t.is(delta('comanda_orders_created_total'), 0);
  },
);

test.serial(
  'when an order is placed and replayed, then where each POST spent its time is recorded by phase',
  async (t) => {
    const product = await buildProduct(p.db);
    const token = await p.token();
    const key = randomUUID();
    const body = { items: [{ product_id: product.id, quantity: 1 }] };
    const phases = IDEMPOTENT_PHASES;
    const counts = (samples: Sample[]) =>
      phases.map((phase) => valueOf(samples, 'comanda_order_accept_phase_seconds_count', { phase }));
    const seconds = (samples: Sample[]) =>
      phases.reduce(
        (sum, phase) => sum + valueOf(samples, 'comanda_order_accept_phase_seconds_sum', { phase }),
        0,
      );

    const before = await scrape(`${p.url}/metrics`);
    const started = performance.now();
    const first = await postOrder(p.url, token, body, { key });
    const elapsed = (performance.now() - started) / 1000;
    const afterFirst = await scrape(`${p.url}/metrics`);
    t.is(first.status, 201);
    t.deepEqual(
      counts(afterFirst).map((n, i) => n - counts(before)[i]),
      [1, 1, 1],
    );
    // The phases are parts of the request: together they cannot take longer than the client waited.
    t.true(seconds(afterFirst) - seconds(before) <= elapsed);

    // The first replay reads the stored response from PostgreSQL and caches it; the next comes from Redis alone.
    await postOrder(p.url, token, body, { key });
    const afterReplay = await scrape(`${p.url}/metrics`);
    const cachedReplay = await postOrder(p.url, token, body, { key });
    const afterCached = await scrape(`${p.url}/metrics`);
    t.is(cachedReplay.headers.get('idempotent-replayed'), 'true');
    t.deepEqual(
      counts(afterCached).map((n, i) => n - counts(afterReplay)[i]),
      [1, 0, 0],
    );
  },
);

test.serial(
  'when /metrics is scraped, then it shows the outbox backlog, the queue depths and the process metrics',
  async (t) => {
    const samples = await scrape(`${p.url}/metrics`);
    const names = new Set(samples.map((s) => s.name));

    t.true(names.has('comanda_outbox_pending_messages'));
    t.true(names.has('comanda_outbox_oldest_pending_age_seconds'));
    t.is(valueOf(samples, 'comanda_queue_consumers', { queue: 'worker.order-created' }), 1);
    t.true(
      samples.some(
        (s) => s.name === 'comanda_queue_messages' && s.labels.queue === 'worker.order-created.dead',
      ),
    );
    t.true(names.has('process_resident_memory_bytes'));
    t.true(names.has('nodejs_eventloop_lag_seconds'));
  },
);
