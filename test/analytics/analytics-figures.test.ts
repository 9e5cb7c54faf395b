import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import { ANALYTICS_QUEUES, type RunningAnalytics } from '../../analytics/consumer.ts';
import { DEAD_AT_HEADER, DEAD_QUEUE_HEADER, DEAD_REASON_HEADER } from '../../lib/amqp/consumer.ts';
import type { ExchangeKey } from '../../lib/amqp/topology.ts';
import { getJson, sendJson } from '../helpers/http.ts';
import { publishRaw, startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';
import {
  analyticsSnapshot,
  expectedProducts,
  expectedSummary,
  fetchSummary,
  ORDER_EXCHANGES,
  scriptDay,
  startTestAnalytics,
  waitForAnalytics,
} from './helpers.ts';

const run = promisify(execFile);

interface OutboxMessage {
  id: string;
  exchange: ExchangeKey;
  type: string;
  payload: unknown;
  headers: Record<string, string>;
}

function orderMessages(p: TestPipeline): Promise<OutboxMessage[]> {
  return p.db('outbox').whereIn('exchange', ORDER_EXCHANGES).orderBy('created_at');
}

/** Counts the deliveries the analytics consumers settle from now on. */
function settledCounter(analytics: RunningAnalytics) {
  let settled = 0;
  for (const c of analytics.consumers) c.on('settled', () => settled++);
  return () => settled;
}

async function withDay(
  t: import('ava').ExecutionContext,
  fn: (p: TestPipeline, a: RunningAnalytics) => Promise<void>,
) {
  t.timeout(90_000);
  const p = await startPipeline();
  const analytics = await startTestAnalytics(p);
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

test('when every order message is delivered again, and copies of them are replayed from the dead-letter queues, then no figure changes', async (t) => {
  await withDay(t, async (p, analytics) => {
    const before = await analyticsSnapshot(p.db);
    const messages = await orderMessages(p);
    const settled = settledCounter(analytics);
    for (const m of messages) {
      await publishRaw(p, m.exchange, JSON.stringify(m.payload), {
        messageId: m.id,
        type: m.type,
        contentType: 'application/json',
        headers: m.headers,
      });
    }
    await until(() => settled() >= messages.length, 'the duplicates to be handled');

    // Park a copy of each message as if it had been dead-lettered, then replay them all as an operator would.
    const queueOf: Record<
      string,
      'analyticsOrderCreated' | 'analyticsOrderStatusChanged' | 'analyticsOrderPaymentEvents'
    > = {
      orderCreated: 'analyticsOrderCreated',
      orderStatusChanged: 'analyticsOrderStatusChanged',
      orderPaymentEvents: 'analyticsOrderPaymentEvents',
    };
    await p.services.amqp.withConfirmChannel(async (ch) => {
      for (const m of messages) {
        const key = queueOf[m.exchange];
        ch.sendToQueue(p.services.topology.deadLetterQueue(key), Buffer.from(JSON.stringify(m.payload)), {
          messageId: m.id,
          type: m.type,
          persistent: true,
          headers: {
            ...m.headers,
            [DEAD_REASON_HEADER]: 'test: parked',
            [DEAD_QUEUE_HEADER]: p.services.topology.queue(key),
            [DEAD_AT_HEADER]: Date.now(),
          },
        });
      }
      await ch.waitForConfirms();
    });
    const admin = await p.token('ops', 'admin');
    const replay = await sendJson('POST', p.url, '/admin/dead-letters/replay', admin);
    t.is(replay.status, 200);
    t.is(replay.body.replayed, messages.length);
    await until(() => settled() >= 2 * messages.length, 'the replayed messages to be handled');

    t.deepEqual(await analyticsSnapshot(p.db), before);
    t.deepEqual((await fetchSummary(p)).data, [await expectedSummary(p.db)]);
  });
});

test('when analytics cannot write (its tables locked past the statement timeout), then its messages are retried and dead-lettered, and replaying them counts each once', async (t) => {
  t.timeout(90_000);
  const p = await startPipeline({ DATABASE_STATEMENT_TIMEOUT_MS: '300' });
  const analytics = await startTestAnalytics(p);
  const settled = settledCounter(analytics);
  const blocker = await p.db.transaction();
  try {
    await blocker.raw('lock table analytics_inbox in access exclusive mode');
    const day = scriptDay(p);
    await until(
      async () => {
        const dead = await p.services.amqp.withChannel((ch) =>
          ch.checkQueue(p.services.topology.deadLetterQueue('analyticsOrderCreated')),
        );
        return dead.messageCount >= 10;
      },
      'the OrderCreated messages to be dead-lettered',
      60_000,
    );
    await blocker.rollback();
    await day;
    // Every message is now either counted or dead-lettered.
    const dead = async () => {
      let n = 0;
      for (const key of ANALYTICS_QUEUES) {
        const q = await p.services.amqp.withChannel((ch) =>
          ch.checkQueue(p.services.topology.deadLetterQueue(key)),
        );
        n += q.messageCount;
      }
      return n;
    };
    await until(
      async () => {
        const [{ n }] = await p.db('analytics_inbox').count<{ n: string }[]>({ n: '*' });
        return Number(n) + (await dead()) >= (await orderMessages(p)).length;
      },
      'every message to be counted or dead-lettered',
      30_000,
    );
    const admin = await p.token('ops', 'admin');
    const replay = await sendJson('POST', p.url, '/admin/dead-letters/replay', admin);
    t.true(replay.body.replayed >= 10);
    await waitForAnalytics(p.db);
    t.true(settled() > 0);
    t.deepEqual((await fetchSummary(p)).data, [await expectedSummary(p.db)]);
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
