import { EventEmitter } from 'node:events';
import type { ConfirmPublisher } from '../lib/amqp/publisher.ts';
import type { ExchangeKey, Topology } from '../lib/amqp/topology.ts';
import type { Config } from '../lib/config.ts';
import type { Db } from '../lib/db.ts';
import type { Logger } from '../lib/logger.ts';
import { outboxPublished, outboxPublishFailures } from '../lib/metrics.ts';
import { PgListener } from '../lib/pg-listener.ts';
import { query, sql } from '../lib/sql.ts';
import { detached } from '../lib/telemetry.ts';
import { reapExpired } from '../orders/housekeeping.ts';
import { analyzeFilledTables } from '../lib/table-statistics.ts';

/** How often the housekeeping relay looks for tables that filled up without statistics (a catalogue query). */
const STATISTICS_INTERVAL_MS = 5000;

/** The NOTIFY channel a trigger on `outbox` signals when a transaction that wrote rows commits. */
export const OUTBOX_CHANNEL = 'comanda_outbox';

/**
 * How far back a run for a commit looks. Published rows stay in the unpublished-rows index as dead entries until
 * VACUUM removes them, and a claim that starts from the oldest one walks past every one of them: at 100,000
 * published rows that was 278 index pages and 0.6–1.5 ms a claim, growing for as long as no VACUUM came, where the
 * window starts the scan at its own end. A row `created_at` (its transaction's start) longer ago than this when its
 * transaction commits is published by the next sweep instead, at most RELAY_SWEEP_INTERVAL_MS later.
 */
const RECENT_S = 5;
const RECENT = sql.raw(`and created_at > now() - interval '${RECENT_S} seconds'`);

export interface OutboxRelayOptions {
  db: Db;
  publisher: ConfirmPublisher;
  topology: Topology;
  logger: Logger;
  batchSize: number;
  /** How often the relay looks for rows nobody kicked it for (committed while RabbitMQ was down, say). */
  sweepIntervalMs: number;
  /**
   * The least time between the starts of two runs (0: none). A kick after a quiet moment publishes at once; kicks
   * that come faster than this are gathered into the next run, so a busy relay publishes a batch every
   * `coalesceMs` instead of one per commit.
   */
  coalesceMs?: number;
  /**
   * When given, the relay also reaps expired idempotency keys and old published outbox rows on this schedule, and
   * analyzes tables that filled up without ever being analyzed (lib/table-statistics.ts) every few seconds.
   */
  housekeeping?: { intervalMs: number; outboxRetentionHours: number; deliveryRetentionHours?: number };
}

interface OutboxRow {
  id: string;
  exchange: ExchangeKey;
  type: string;
  /** The message body: the payload's JSON text as PostgreSQL prints it, never parsed here. */
  payload: string;
  headers: Record<string, string>;
  created_at: Date;
}

/** A relay as a process's configuration sets it up (api, worker, or the relay on its own). */
export function relayFor(
  services: { config: Config; db: Db; topology: Topology; logger: Logger },
  publisher: ConfirmPublisher,
  options: { housekeeping: boolean },
): OutboxRelay {
  const { config } = services;
  return new OutboxRelay({
    db: services.db,
    publisher,
    topology: services.topology,
    logger: services.logger.child({ component: 'relay' }),
    batchSize: config.RELAY_BATCH_SIZE,
    sweepIntervalMs: config.RELAY_SWEEP_INTERVAL_MS,
    coalesceMs: config.RELAY_COALESCE_MS,
    housekeeping: options.housekeeping
      ? {
          intervalMs: config.HOUSEKEEPING_INTERVAL_MS,
          outboxRetentionHours: config.OUTBOX_RETENTION_HOURS,
          deliveryRetentionHours: config.WEBHOOK_DELIVERY_RETENTION_HOURS,
        }
      : undefined,
  });
}

/** One batch a relay handed to the broker: how many rows of each type were confirmed, or how many failed. */
export interface RelayBatchEvent {
  published: Record<string, number>;
  failed: number;
}

/** Every batch of every relay in this process, for metrics: subscribers need no change here. */
export const relayEvents = new EventEmitter<{ batch: [RelayBatchEvent] }>();

let counting = false;

/** Counts the batches of this process's relays in its metrics (published by type, failures); once per process. */
export function countRelayBatches(): void {
  if (counting) return;
  counting = true;
  relayEvents.on('batch', (batch) => {
    for (const [type, n] of Object.entries(batch.published)) outboxPublished.inc({ type }, n);
    if (batch.failed) outboxPublishFailures.inc(batch.failed);
  });
}

/**
 * Publishes committed outbox rows with publisher confirms and marks them published only after the broker
 * confirmed them. Rows are claimed with `FOR UPDATE SKIP LOCKED`, so any number of relays can run side by side
 * without publishing a row twice at the same time. Relays are woken by NOTIFY on each commit that wrote rows,
 * and sweep on a timer for anything a lost notification left behind. (A crash between confirm and mark republishes the batch:
 * delivery is at-least-once, and consumers de-duplicate on the message id.)
 */
export class OutboxRelay {
  private timer: NodeJS.Timeout | undefined;
  private housekeepingTimer: NodeJS.Timeout | undefined;
  private statisticsTimer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private again = false;
  /** The next run is a sweep: it looks at every unpublished row, not only recent ones. */
  private sweep = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** When the last run started (performance.now()). */
  private lastRunAt = -Infinity;
  private readonly listener: PgListener;

  constructor(private readonly options: OutboxRelayOptions) {
    // Whoever commits outbox rows (the API, a worker on another machine) wakes every relay at once.
    this.listener = new PgListener(options.db, OUTBOX_CHANNEL, () => this.kick(), options.logger);
  }

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => this.kick({ sweep: true }), this.options.sweepIntervalMs);
    this.timer.unref();
    void this.listener.start();
    this.kick({ sweep: true });
    const chores = this.options.housekeeping;
    if (chores) {
      this.housekeepingTimer = setInterval(() => {
        reapExpired(this.options.db, chores).then(
          (reaped) => this.options.logger.debug(reaped, 'housekeeping done'),
          (err: unknown) => this.options.logger.warn({ err }, 'housekeeping failed; will try again'),
        );
      }, chores.intervalMs);
      this.housekeepingTimer.unref();
      this.statisticsTimer = setInterval(() => {
        analyzeFilledTables(this.options.db).then(
          (tables) => {
            if (tables.length) this.options.logger.info({ tables }, 'tables analyzed: they filled up');
          },
          (err: unknown) => this.options.logger.warn({ err }, 'analyzing tables failed; will try again'),
        );
      }, STATISTICS_INTERVAL_MS);
      this.statisticsTimer.unref();
    }
  }

  /**
   * Asks for a run soon; runs asked for while one is going are folded into one more run. A kick for a commit looks at
   * rows of the last RECENT_S seconds only; a sweep (the timer's, and at start) at all of them.
   */
  kick(options: { sweep?: boolean } = {}): void {
    if (this.stopped) return;
    if (options.sweep) this.sweep = true;
    if (this.running) {
      this.again = true;
      return;
    }
    if (!this.options.publisher.ready) {
      // Not connected yet (or reconnecting): a kick must not be lost, so it comes back until the channel is up.
      if (!this.retryTimer) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.kick();
        }, 100);
        this.retryTimer.unref();
      }
      return;
    }
    // Under load the commits of a busy moment go out in one batch: one transaction and one confirm round instead of
    // one per order, and the consumers get them together too, as batches of their own (docs/performance.md).
    const wait = Math.max(0, this.lastRunAt + (this.options.coalesceMs ?? 0) - performance.now());
    // A batch belongs to no request's trace: each message is published in the trace stored with its row.
    this.running = detached(() =>
      (wait > 0 ? new Promise((r) => setTimeout(r, wait)) : Promise.resolve()).then(() => {
        this.lastRunAt = performance.now();
        this.again = false; // this drain takes every row committed so far
        const sweep = this.sweep;
        this.sweep = false;
        return this.drain({ recentOnly: !sweep });
      }),
    );
    void this.running.finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
  }

  /**
   * Publishes until nothing is left (or publishing fails); returns how many rows went out. `recentOnly`: rows
   * written in the last RECENT_S seconds.
   */
  async drain(options: { recentOnly?: boolean } = {}): Promise<number> {
    let total = 0;
    try {
      for (;;) {
        const n = await this.publishBatch(options.recentOnly ?? false);
        total += n;
        if (n < this.options.batchSize || this.stopped) break;
      }
    } catch (err) {
      this.options.logger.warn(
        { err },
        'outbox relay could not publish; rows stay pending until the next sweep',
      );
    }
    return total;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.housekeepingTimer) clearInterval(this.housekeepingTimer);
    if (this.statisticsTimer) clearInterval(this.statisticsTimer);
    await this.listener.close();
    await this.running;
  }

  /**
   * One batch in one transaction of three round trips: claim and mark the rows in one statement, publish them
   * and wait for the broker's confirms, commit. If publishing fails the transaction rolls back (the rows stay
   * unpublished) and the failure is noted on the rows for operators.
   */
  private async publishBatch(recentOnly: boolean): Promise<number> {
    const { db, publisher, topology, batchSize } = this.options;
    if (!publisher.ready) return 0;
    let claimed: OutboxRow[] = [];
    try {
      await db.transaction(async (tx) => {
        const { rows } = await query<OutboxRow>(
          tx,
          sql`update outbox set published_at = now(), attempts = attempts + 1
               where id in (select id from outbox where published_at is null ${recentOnly ? RECENT : sql.raw('')}
                             order by created_at limit ${batchSize} for update skip locked)
           returning id, exchange, type, payload::text as payload, headers, created_at`,
        );
        claimed = rows.sort((a, b) => a.created_at.getTime() - b.created_at.getTime());
        if (claimed.length === 0) return;
        await publisher.publish(
          claimed.map((r) => ({
            exchange: topology.exchange(r.exchange),
            body: Buffer.from(r.payload),
            options: {
              messageId: r.id,
              type: r.type,
              contentType: 'application/json',
              persistent: true,
              timestamp: Math.floor(r.created_at.getTime() / 1000),
              appId: 'comanda',
              headers: r.headers,
            },
          })),
        );
      });
    } catch (err) {
      if (claimed.length) {
        relayEvents.emit('batch', { published: {}, failed: claimed.length });
        await db('outbox')
          .whereIn(
            'id',
            claimed.map((r) => r.id),
          )
          .update({
            attempts: db.raw('attempts + 1'),
            last_error: String((err as Error).message).slice(0, 500),
          })
          .catch(() => {});
      }
      throw err;
    }
    if (claimed.length) {
      const byType: Record<string, number> = {};
      for (const r of claimed) byType[r.type] = (byType[r.type] ?? 0) + 1;
      relayEvents.emit('batch', { published: byType, failed: 0 });
    }
    return claimed.length;
  }
}
