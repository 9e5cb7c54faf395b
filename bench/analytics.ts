import { randomUUID } from 'node:crypto';
import { summarize, timeseries, topProducts } from '../analytics/queries.ts';
import { countFacts } from '../analytics/store.ts';
import type { OrderFact } from '../analytics/tally.ts';
import { loadConfig } from '../lib/config.ts';
import { createDb, dropDatabase, ensureDatabase, migrateLatest } from '../lib/db.ts';

/**
 * `npm run bench:analytics [-- ORDERS [BATCH]]`: counts the events of ORDERS orders (default 10,000) spread over
 * 30 days into a scratch database, as one analytics process does: one batch at a time, of BATCH events (default
 * 30), then times the /analytics queries on what that made. Prints events/s and each query's p50/p95.
 */
const orders = Number(process.argv[2] ?? 10_000);
const batch = Number(process.argv[3] ?? 30);
const base = new URL(loadConfig().DATABASE_URL);
base.pathname = `/comanda_bench_analytics_${randomUUID().slice(0, 8)}`;
const url = base.toString();
await ensureDatabase(url);
const db = createDb({ url, poolMax: 12, statementTimeoutMs: 0 });
try {
  await migrateLatest(db);
  const products = Array.from({ length: 50 }, () => randomUUID());
  const now = Date.now();
  const facts: [string, OrderFact][] = [];
  for (let i = 0; i < orders; i++) {
    const id = randomUUID();
    const at = now - Math.floor(Math.random() * 30 * 86_400_000);
    const items = [{ product_id: products[i % 50], quantity: 1 + (i % 3), unit_price: 1000 + (i % 7) * 100 }];
    const total = items[0].quantity * items[0].unit_price;
    const fact = (
      version: number,
      type: string,
      status: OrderFact['status'],
      extra: Partial<OrderFact> = {},
    ) =>
      [
        randomUUID(),
        {
          orderId: id,
          version,
          type,
          occurredAt: new Date(at + version * 40),
          currency: 'EUR',
          total,
          previousStatus: null,
          status,
          reason: null,
          ...extra,
        },
      ] as [string, OrderFact];
    facts.push(fact(1, 'OrderCreated', 'RECEIVED', { items }));
    if (i % 10 === 0) {
      facts.push(
        fact(2, 'OrderRejected', 'REJECTED', { previousStatus: 'RECEIVED', reason: 'OUT_OF_STOCK' }),
      );
      continue;
    }
    facts.push(fact(2, 'OrderInventoryReserved', 'INVENTORY_RESERVED', { previousStatus: 'RECEIVED' }));
    facts.push(fact(3, 'OrderConfirmed', 'CONFIRMED', { previousStatus: 'INVENTORY_RESERVED' }));
    if (i % 20 === 1) {
      facts.push(fact(4, 'OrderCancelled', 'CANCELLED', { previousStatus: 'CONFIRMED', reason: 'ADMIN' }));
      facts.push(
        fact(5, 'OrderPaymentRefunded', 'CANCELLED', { previousStatus: 'CANCELLED', refundAmount: total }),
      );
    }
  }
  const started = performance.now();
  for (let i = 0; i < facts.length; i += batch) {
    await countFacts(
      db,
      facts.slice(i, i + batch).map(([, fact]) => fact),
    );
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `counted ${facts.length} events of ${orders} orders in ${seconds.toFixed(1)} s: ${Math.round(facts.length / seconds)} events/s`,
  );
  const [{ n }] = await db('analytics_rollups').count<{ n: string }[]>({ n: '*' });
  console.log(`rollup rows: ${n}`);

  const to = new Date(Math.ceil(now / 60_000) * 60_000 + 60_000);
  const time = async (name: string, fn: () => Promise<unknown>) => {
    const ms: number[] = [];
    for (let i = 0; i < 50; i++) {
      const t0 = performance.now();
      await fn();
      ms.push(performance.now() - t0);
    }
    ms.sort((a, b) => a - b);
    console.log(`${name}: p50 ${ms[24].toFixed(1)} ms, p95 ${ms[47].toFixed(1)} ms`);
  };
  const range = (days: number, offsetMin = 0) => ({
    from: new Date(to.getTime() - days * 86_400_000 - offsetMin * 60_000),
    to,
  });
  await time('summary, 30 days (unaligned: days, hours and minutes)', () => summarize(db, range(30, 17)));
  await time('summary, 24 hours', () => summarize(db, range(1)));
  await time('timeseries received by minute, 1 day (1,440 points)', () =>
    timeseries(db, 'received', 'minute', range(1)),
  );
  await time('timeseries p95 by hour, 30 days (720 points)', () =>
    timeseries(db, 'outcome_p95_ms', 'hour', range(30)),
  );
  await time('top products by revenue, 30 days', () => topProducts(db, 'revenue', 10, range(30)));
} finally {
  await db.destroy();
  await dropDatabase(url);
}
