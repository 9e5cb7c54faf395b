import { randomUUID } from 'node:crypto';
import test from 'ava';
import { analyticsEvents } from '../../analytics/reader.ts';
import { registry } from '../../lib/metrics.ts';
import { startPipeline, until } from '../helpers/pipeline.ts';
import { startTestAnalytics, waitForAnalytics } from './helpers.ts';

/** The analytics gauge and counter as a scrape of the analytics process's /metrics reads them. */
async function scrape() {
  const metrics = await registry.getMetricsAsJSON();
  const lag = metrics.find((m) => m.name === 'comanda_analytics_lag_seconds')!.values[0]?.value ?? 0;
  const malformed =
    (await analyticsEvents.get()).values.find((v) => v.labels.outcome === 'malformed')?.value ?? 0;
  return { lag, malformed };
}

test('when analytics falls behind, then its lag gauge shows the age of the oldest event not counted, and 0 once it caught up; an event that states no fact is counted as malformed', async (t) => {
  const p = await startPipeline({}, { worker: false });
  const analytics = startTestAnalytics(p);
  const blocker = await p.db.transaction();
  try {
    // Holding analytics' position keeps every batch waiting: analytics is behind from here on.
    await blocker.raw('select 1 from analytics_progress for update');
    const orderId = randomUUID();
    await p.db('admin_events').insert({
      type: 'OrderCreated',
      aggregate_type: 'order',
      aggregate_id: orderId,
      // An OrderCreated without lines: it states no fact.
      data: {
        id: randomUUID(),
        type: 'OrderCreated',
        occurred_at: new Date().toISOString(),
        aggregate_type: 'order',
        aggregate_id: orderId,
        version: 1,
        data: { customer_id: 'demo:x', total: 100, currency: 'EUR', items: [] },
      },
      created_at: p.db.raw("now() - interval '90 seconds'"),
    });
    const behind = await scrape();
    t.true(behind.lag >= 90 && behind.lag < 120, `lag ${behind.lag} s`);
    t.is(behind.malformed, 0);

    await blocker.rollback();
    analytics.readNow();
    await waitForAnalytics(p.db);
    await until(async () => (await scrape()).malformed === 1, 'the malformed event to be counted');
    t.is((await scrape()).lag, 0);
  } finally {
    if (!blocker.isCompleted()) await blocker.rollback();
    await analytics.stop();
    await p.stop();
  }
});
