import { Counter, Gauge } from 'prom-client';
import { isTransientDbError, type Db } from '../lib/db.ts';
import type { Logger } from '../lib/logger.ts';
import { readEnvelope } from '../lib/messages.ts';
import { registry } from '../lib/metrics.ts';
import type { Services } from '../lib/services.ts';
import { ORDER_MESSAGE_TYPES } from '../orders/lifecycle.ts';
import { ORDER_AGGREGATE } from '../orders/messages.ts';
import { factOfEnvelope } from './facts.ts';
import { applyFacts, newestOf, notifyThrottled } from './store.ts';
import type { OrderFact } from './tally.ts';

/**
 * Analytics counts the order events of the operations feed, `admin_events` (ADR 0012, ADR 0016): the outbox's
 * trigger writes one row for every order message in the change's own transaction, so the feed holds every fact a
 * figure needs, in the order the changes committed. Where analytics stands in it is a position, `(tx, id)`, kept
 * in `analytics_progress` and moved in the transaction that counts what it passed: each event is counted once,
 * whatever crashes, without an inbox of message ids, and without three queues of its own in the broker.
 */

export const analyticsEvents = new Counter({
  name: 'comanda_analytics_events_total',
  help: 'Order events analytics read from the feed: counted, or skipped because they state no fact (malformed).',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

/** One batch of the feed: how many rows it read, how many facts it counted and skipped, and whether it was full. */
export interface FeedBatch {
  read: number;
  counted: number;
  malformed: number;
  /** The batch was as large as allowed: more rows may be waiting. */
  full: boolean;
}

interface FeedRow {
  tx: string;
  id: string;
  type: string;
  /** The message's envelope, for order messages only (null for the feed's other rows). */
  data: unknown;
}

/**
 * Counts the next events of the feed after analytics' position, at most `limit` rows, in one transaction: the
 * position's row is locked first (so batches of several analytics processes take turns and cannot deadlock), the
 * rows after it are read, their facts applied, and the position moved past them with the time of the newest fact.
 * Only rows of transactions older than every one still running are read (`tx < xmin`, as the operations feed
 * does): no row can commit later with a position before them, so moving past them skips nothing. A row that
 * states no fact (a malformed envelope: written by hand, or by a bug) is logged and passed over, not counted.
 */
export async function countFeedBatch(db: Db, limit: number, logger?: Logger): Promise<FeedBatch> {
  return db.transaction(async (tx) => {
    const {
      rows: [at],
    } = await tx.raw<{ rows: { tx: string; id: string }[] }>(
      'select feed_tx::text as tx, feed_id as id from analytics_progress for update',
    );
    const { rows } = await tx.raw<{ rows: FeedRow[] }>(
      `select e.tx::text as tx, e.id, e.type,
              case when e.aggregate_type = ? and e.type = any(?::text[]) then e.data end as data
         from admin_events e
        where (e.tx, e.id) > (?::xid8, ?::bigint) and e.tx < pg_snapshot_xmin(pg_current_snapshot())
        order by e.tx, e.id
        limit ?`,
      [ORDER_AGGREGATE, ORDER_MESSAGE_TYPES, at.tx, at.id, limit],
    );
    if (!rows.length) return { read: 0, counted: 0, malformed: 0, full: false };
    const facts: OrderFact[] = [];
    let malformed = 0;
    for (const row of rows) {
      if (row.data === null) continue;
      try {
        facts.push(factOfEnvelope(readEnvelope(row.data, ORDER_MESSAGE_TYPES)));
      } catch (err) {
        malformed++;
        logger?.error(
          { err, position: `${row.tx}-${row.id}`, type: row.type },
          'an order event of the feed states no fact; it is not counted',
        );
      }
    }
    const counted = await applyFacts(tx, facts);
    const last = rows[rows.length - 1];
    await tx.raw(
      `update analytics_progress
          set feed_tx = ?::xid8, feed_id = ?, newest_event_at = greatest(newest_event_at, ?::timestamptz)`,
      [last.tx, last.id, newestOf(facts)],
    );
    return { read: rows.length, counted, malformed, full: rows.length === limit };
  });
}

/**
 * How far the figures are behind: the age of the oldest feed row after analytics' position, 0 when there is
 * none. Rows of transactions still running count too: the figures are behind them as well.
 */
export async function analyticsLagSeconds(db: Db): Promise<number> {
  const { rows } = await db.raw<{ rows: { lag: number | null }[] }>(
    `select extract(epoch from clock_timestamp() - e.created_at)::float8 as lag
       from analytics_progress p
       join lateral (select created_at from admin_events e
                      where (e.tx, e.id) > (p.feed_tx, p.feed_id)
                      order by e.tx, e.id limit 1) e on true`,
  );
  return Math.max(0, rows[0]?.lag ?? 0);
}

export interface RunningAnalytics {
  /** Counts what the feed holds now, without waiting for the next read (tests). */
  readNow(): void;
  stop(): Promise<void>;
}

const lagSources = new Set<() => Promise<number>>();
new Gauge({
  name: 'comanda_analytics_lag_seconds',
  help: 'How far the analytics figures are behind: age of the oldest order event not yet counted, 0 when none waits (read at scrape).',
  registers: [registry],
  async collect() {
    const values = await Promise.all([...lagSources].map((s) => s().catch(() => 0)));
    this.set(values.reduce((max, v) => Math.max(max, v), 0));
  },
});

/** The longest pause after failed batches in a row (the database away): each failure doubles it, from 250 ms. */
const MAX_BACKOFF_MS = 10_000;

/**
 * The analytics process's loop: a batch of the feed; another at once if it was full, else after
 * ANALYTICS_BATCH_WAIT_MS (the larger the batch, the less each order costs, and nobody waits on analytics: the API
 * hears of new figures at most every 200 ms anyway, `notifyThrottled`). A failed batch changed nothing; it is
 * tried again after a growing pause.
 */
export function startAnalytics(services: Services): RunningAnalytics {
  const { db, config } = services;
  const logger = services.logger.child({ component: 'analytics' });
  const notifier = notifyThrottled(db, 200, (err) =>
    logger.warn({ err }, 'could not tell the API instances that figures changed'),
  );
  const lag = () => analyticsLagSeconds(db);
  lagSources.add(lag);
  let stopped = false;
  let failures = 0;
  let pause: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  const wake = () => {
    if (!pause) return;
    clearTimeout(pause.timer);
    pause.resolve();
  };
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      pause = { timer: setTimeout(resolve, ms), resolve };
    }).finally(() => (pause = undefined));

  logger.info(
    { batchMax: config.ANALYTICS_BATCH_MAX, waitMs: config.ANALYTICS_BATCH_WAIT_MS },
    'analytics is counting the order events of the feed',
  );
  const loop = (async () => {
    while (!stopped) {
      let full = false;
      try {
        const batch = await countFeedBatch(db, config.ANALYTICS_BATCH_MAX, logger);
        if (failures) logger.info({ failures }, 'analytics is counting again');
        failures = 0;
        full = batch.full;
        if (batch.counted) {
          analyticsEvents.inc({ outcome: 'counted' }, batch.counted);
          notifier.changed();
        }
        if (batch.malformed) analyticsEvents.inc({ outcome: 'malformed' }, batch.malformed);
        if (batch.read) logger.debug(batch, 'feed counted');
      } catch (err) {
        failures++;
        const level = isTransientDbError(err) ? 'warn' : 'error';
        logger[level]({ err, failures }, 'analytics could not count the feed; it will try again');
      }
      if (stopped) break;
      if (failures) await sleep(Math.min(MAX_BACKOFF_MS, 250 * 2 ** (failures - 1)));
      else if (!full) await sleep(config.ANALYTICS_BATCH_WAIT_MS);
    }
  })();

  return {
    readNow: wake,
    async stop() {
      stopped = true;
      wake();
      await loop;
      notifier.flush();
      lagSources.delete(lag);
    },
  };
}
