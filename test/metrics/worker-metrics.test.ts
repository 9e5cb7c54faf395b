import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import test from 'ava';
import { buildProduct, waitForProcessed } from '../helpers/factories.ts';
import { postOrder } from '../helpers/http.ts';
import { startPipeline, until } from '../helpers/pipeline.ts';
import { scrape, valueOf, type Sample } from '../../bench/prometheus.ts';

test('when a worker process runs with METRICS_PORT, then its /metrics counts the orders it finished', async (t) => {
  const p = await startPipeline({}, { worker: false });
  const worker = spawn(process.execPath, ['--import', 'tsx', 'worker/main.ts'], {
    // The run's own settings (database, prefixes, retry delays), so the worker joins it and leaves nothing behind.
    env: { PATH: process.env.PATH, ...p.env, LOG_LEVEL: 'info', METRICS_PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(worker, 'exit');
  try {
    let metricsUrl: string | undefined;
    createInterface({ input: worker.stdout }).on('line', (line) => {
      if (line.includes('metrics listening')) metricsUrl = (JSON.parse(line) as { url: string }).url;
    });
    await until(() => metricsUrl !== undefined, 'the worker to report its metrics address', 20_000);
    await until(
      async () =>
        valueOf(await scrape(metricsUrl!), 'comanda_queue_consumers', { queue: 'worker.order-created' }) ===
        1,
      'the worker to consume',
      20_000,
    );
    const product = await buildProduct(p.db);

    const res = await postOrder(p.url, await p.token(), { items: [{ product_id: product.id, quantity: 2 }] });
    t.is(await waitForProcessed(p.db, res.body.id), 'CONFIRMED');

    let samples: Sample[] = [];
    await until(async () => {
      samples = await scrape(metricsUrl!);
      return valueOf(samples, 'comanda_orders_final_total') === 1;
    }, 'the worker to count the final order');
    t.is(valueOf(samples, 'comanda_orders_final_total', { status: 'CONFIRMED', reason: 'none' }), 1);
    t.is(
      valueOf(samples, 'comanda_messages_consumed_total', {
        queue: 'worker.order-created',
        outcome: 'acked',
      }),
      1,
    );
    t.is(valueOf(samples, 'comanda_order_received_to_final_seconds_count', { status: 'CONFIRMED' }), 1);
    t.is(
      valueOf(samples, 'comanda_orders_created_total'),
      0,
      'orders are created by the api, not the worker',
    );
    t.true(valueOf(samples, 'process_resident_memory_bytes') > 0);
  } finally {
    worker.kill('SIGTERM');
    await exited;
    await p.stop();
  }
});
