import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { observeWebhookAttempts } from '../../lib/metrics.ts';
import { buildProduct } from '../helpers/factories.ts';
import { http, postOrder } from '../helpers/http.ts';
import { startPipeline, until } from '../helpers/pipeline.ts';
import { scrape, valueOf, type Sample } from '../../bench/prometheus.ts';

test('when a webhook fails once and then gets through, then /metrics counts a retry and a delivery with their durations', async (t) => {
  const p = await startPipeline(
    { WEBHOOK_RETRY_SCHEDULE: '0s,100ms,200ms', WEBHOOK_POLL_INTERVAL_MS: '50' },
    { notifier: true },
  );
  let requests = 0;
  const receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(++requests === 1 ? 500 : 204).end());
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  try {
    observeWebhookAttempts(p.notifier!);
    const token = await p.token();
    const endpoint = await http(`${p.url}/webhook-endpoints`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({
        url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`,
        event_types: ['order.confirmed'],
      }),
    });
    t.is(endpoint.status, 201);
    const product = await buildProduct(p.db);

    await postOrder(p.url, token, { items: [{ product_id: product.id, quantity: 1 }] });

    let samples: Sample[] = [];
    await until(async () => {
      samples = await scrape(`${p.url}/metrics`);
      return valueOf(samples, 'comanda_webhook_attempts_total', { result: 'delivered' }) === 1;
    }, 'the delivery to be counted');
    t.is(valueOf(samples, 'comanda_webhook_attempts_total', { result: 'retry' }), 1);
    t.is(valueOf(samples, 'comanda_webhook_delivery_seconds_count', { result: 'delivered' }), 1);
    t.is(valueOf(samples, 'comanda_webhook_delivery_seconds_count', { result: 'retry' }), 1);
  } finally {
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
    await p.stop();
  }
});
