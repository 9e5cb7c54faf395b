import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import { countFeedBatch, startAnalytics, type RunningAnalytics } from '../../analytics/reader.ts';
import { withOwnPool } from '../../lib/services.ts';
import { getJson } from '../helpers/http.ts';
import { startPipeline, type TestPipeline } from '../helpers/pipeline.ts';
import {
  analyticsSnapshot,
  expectedProducts,
  expectedSummary,
  feedCounted,
  fetchSummary,
  scriptDay,
  startTestAnalytics,
  waitForAnalytics,
} from './helpers.ts';

const run = promisify(execFile);

async function withDay(
  t: import('ava').ExecutionContext,
  fn: (p: TestPipeline, a: RunningAnalytics) => Promise<void>,
) {
  t.timeout(90_000);
  const p = await startPipeline();
  const analytics = startTestAnalytics(p);
  try {
    await scriptDay(p);
    await waitForAnalytics(p.db);
    await fn(p, analytics);
  } finally {
    await analytics.stop();
    await p.stop();
  }
}

test('when a scripted day of orders has run (confirmed, out of stock, declined, cancelled with refund, shipped, delivered, awaiting payment), then every figure of /analytics/summary equals SQL over the orders', async (t) => {
  await withDay(t, async (p) => {
    const summary = await fetchSummary(p);
    const expected = await expectedSummary(p.db);
    t.deepEqual(summary.data, [expected]);
    // The script's own outcomes, so the comparison above is not of two empty answers.
    t.like(expected, {
      received: 10,
      confirmed: 7,
      rejected: { total: 2, by_reason: { OUT_OF_STOCK: 1, PAYMENT_DECLINED: 1 } },
      cancelled: { total: 2, by_reason: { ADMIN: 1, CUSTOMER_REQUEST: 1 } },
      shipped: 2,
      delivered: 1,
      refund_count: 2,
      received_to_outcome: { count: 9 },
    });
    t.true(expected.refunds > 0);
    t.not(summary.as_of, null);

    const admin = await p.token('analyst', 'admin');
    const top = await getJson(p.url, '/analytics/top-products?by=units&limit=10', admin);
    t.is(top.status, 200);
    const products = await expectedProducts(p.db);
    t.deepEqual(
      Object.fromEntries(
        top.body.data.map((r: any) => [r.product_id, { units: r.units, revenue: r.revenue }]),
      ),
      products,
    );
    t.deepEqual(
      top.body.data.map((r: any) => r.units),
      [...top.body.data.map((r: any) => r.units)].sort((a, b) => b - a),
    );
    t.true(top.body.data.every((r: any) => typeof r.name === 'string' && typeof r.sku === 'string'));

    const series = await getJson(p.url, '/analytics/timeseries?metric=received&granularity=minute', admin);
    t.is(series.status, 200);
    const points = series.body.series[0].points as { v: number }[];
    t.is(points.length, 60);
    t.is(
      points.reduce((s, x) => s + x.v, 0),
      10,
    );
  });
});

test('when analytics reads the whole feed again from its start, with a second analytics process reading beside it, then no figure changes', async (t) => {
  await withDay(t, async (p, analytics) => {
    const before = await analyticsSnapshot(p.db);
    t.true(before.orders.length === 10);
    // As after the upgrade from the analytics queues (whose migration starts the position at the feed's start).
    const secondServices = withOwnPool(p.services, 'second-analytics');
    const second = startAnalytics(secondServices);
    try {
      await p.db('analytics_progress').update({ feed_tx: '0', feed_id: 0 });
      analytics.readNow();
      second.readNow();
      await waitForAnalytics(p.db);
    } finally {
      await second.stop();
      await secondServices.db.destroy();
    }
    t.deepEqual(await analyticsSnapshot(p.db), before);
    t.deepEqual((await fetchSummary(p)).data, [await expectedSummary(p.db)]);
  });
});

test('when analytics cannot write (its tables locked past the statement timeout), then it tries again and, once it can, counts every event once', async (t) => {
  t.timeout(90_000);
  const p = await startPipeline({ DATABASE_STATEMENT_TIMEOUT_MS: '300' });
  const analytics = startTestAnalytics(p);
  const blocker = await p.db.transaction();
  try {
    // SHARE: writes wait, reads go on. (An ACCESS EXCLUSIVE lock would take a transaction id, and no feed row
    // written after it could be read while it runs: analytics would not even get to write.)
    await blocker.raw('lock table analytics_orders in share mode');
    await scriptDay(p);
    // Each batch with an order event has failed on the lock: no order is counted, though the feed has the whole day.
    t.false(await feedCounted(p.db));
    t.deepEqual(await p.db('analytics_orders').select('order_id'), []);
    await t.throwsAsync(countFeedBatch(p.db, 10), { message: /statement timeout|lock timeout/ });
    await blocker.rollback();
    await waitForAnalytics(p.db);
    t.deepEqual((await fetchSummary(p)).data, [await expectedSummary(p.db)]);
    t.is(Object.keys(await expectedProducts(p.db)).length, 3);
  } finally {
    if (!blocker.isCompleted()) await blocker.rollback();
    await analytics.stop();
    await p.stop();
  }
});

test('when npm run analytics:rebuild runs on a database with history, then it reaches exactly the rollups the live consumer did', async (t) => {
  await withDay(t, async (p) => {
    const live = await analyticsSnapshot(p.db);
    t.true(live.rollups.length > 50);
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/analytics-rebuild.ts'], {
      env: { PATH: process.env.PATH, ...p.env },
    });
    t.regex(stdout, /analytics rebuilt from 10 orders/);
    t.deepEqual(await analyticsSnapshot(p.db), live);

    // Rebuilding from nothing (rollups wiped) gives the same again.
    await p.db('analytics_rollups').delete();
    await run(process.execPath, ['--import', 'tsx', 'scripts/analytics-rebuild.ts'], {
      env: { PATH: process.env.PATH, ...p.env },
    });
    t.deepEqual(await analyticsSnapshot(p.db), live);
  });
});
