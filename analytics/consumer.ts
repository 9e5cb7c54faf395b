import { QueueConsumer, type IncomingMessage } from '../lib/amqp/consumer.ts';
import { QUEUES, type QueueKey } from '../lib/amqp/topology.ts';
import { isTransientDbError } from '../lib/db.ts';
import { PermanentMessageError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { parseEnvelope } from '../lib/messages.ts';
import { messageProcessingDuration, messagesConsumed } from '../lib/metrics.ts';
import type { Services } from '../lib/services.ts';
import { ORDER_EXCHANGE_TYPES } from '../orders/messages.ts';
import { factOfEnvelope } from './facts.ts';
import { watchAnalyticsLag, type LagTracker } from './lag.ts';
import { countFact, notifyThrottled } from './store.ts';

/** The analytics queues: one on each order fanout exchange that carries a figure. */
export const ANALYTICS_QUEUES = [
  'analyticsOrderCreated',
  'analyticsOrderStatusChanged',
  'analyticsOrderPaymentEvents',
] as const satisfies readonly QueueKey[];

export interface RunningAnalytics {
  consumers: QueueConsumer[];
  /** Whether every queue is being consumed. */
  readonly consuming: boolean;
  stop(): Promise<void>;
}

/**
 * The analytics consumer: counts every order message into the rollups, once (docs/analytics.md). The same
 * retry and dead-letter rules as the worker: a malformed message is dead-lettered at once, a database outage is
 * retried with growing delays. It reads and writes only analytics tables.
 */
export function startAnalytics(services: Services): RunningAnalytics {
  const { config, db, amqp, topology } = services;
  const logger = services.logger.child({ component: 'analytics' });
  const lag: LagTracker = watchAnalyticsLag(amqp, topology, ANALYTICS_QUEUES);
  const notifier = notifyThrottled(db, 200, (err) =>
    logger.warn({ err }, 'could not tell the API instances that figures changed'),
  );

  const consumers = ANALYTICS_QUEUES.map((queue) => {
    const consumer = new QueueConsumer(amqp, topology, {
      queue,
      prefetch: config.AMQP_PREFETCH,
      handler: async (message) => {
        if (await handle(message, db, lag, logger)) notifier.changed();
      },
      logger,
    });
    const label = QUEUES[queue].name;
    consumer.on('settled', (e) => {
      messagesConsumed.inc({ queue: label, outcome: e.outcome });
      messageProcessingDuration.observe({ queue: label, outcome: e.outcome }, e.durationMs / 1000);
    });
    consumer.start();
    return consumer;
  });

  return {
    consumers,
    get consuming() {
      return consumers.every((c) => c.consuming);
    },
    async stop() {
      await Promise.all(consumers.map((c) => c.stop()));
      notifier.flush();
      lag.stop();
    },
  };
}

async function handle(
  message: IncomingMessage,
  db: Services['db'],
  lag: LagTracker,
  logger: Logger,
): Promise<boolean> {
  let envelope;
  let fact;
  try {
    envelope = parseEnvelope(message.content, ORDER_EXCHANGE_TYPES);
    fact = factOfEnvelope(envelope);
  } catch (err) {
    throw new PermanentMessageError(`Malformed order message: ${(err as Error).message.slice(0, 300)}`, {
      cause: err,
    });
  }
  lag.started(fact.occurredAt);
  try {
    const counted = await countFact(db, envelope.id, fact);
    lag.counted(fact.occurredAt);
    logger.debug(
      { order_id: fact.orderId, message_id: envelope.id, message_type: envelope.type, counted },
      counted ? 'message counted' : 'message counted before; skipped',
    );
    return counted;
  } catch (err) {
    lag.abandoned(fact.occurredAt);
    if (isTransientDbError(err)) {
      logger.warn({ err, message_id: envelope.id }, 'database unavailable; message will be retried');
    }
    throw err;
  }
}
