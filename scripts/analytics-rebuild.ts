import { rebuildAnalytics } from '../analytics/rebuild.ts';
import { loadConfig } from '../lib/config.ts';
import { createDb } from '../lib/db.ts';

/**
 * `npm run analytics:rebuild`: recomputes every analytics figure from the order history. Safe while the analytics
 * consumer runs (it waits for the rebuild's lock, then counts only what the history did not have).
 */
const config = loadConfig();
const db = createDb({
  url: config.DATABASE_URL,
  poolMax: 1,
  statementTimeoutMs: 0,
  acquireTimeoutMs: 30_000,
});
try {
  const started = performance.now();
  const result = await rebuildAnalytics(db);
  const ms = Math.round(performance.now() - started);
  console.log(
    `analytics rebuilt from ${result.orders} orders (${result.events} events) into ${result.rows} rollup rows in ${ms} ms`,
  );
} finally {
  await db.destroy();
}
