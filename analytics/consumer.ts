import { MessageBatcher } from '../lib/amqp/batcher.ts';
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
import { countFacts, notifyThrottled, type CountedMessage } from './store.ts';

/** The analytics queues: one on each order fanout exchange that carries a figure. */
export const ANALYTICS_QUEUES = [
  'analyticsOrderCreated',
  'analyticsOrderStatusChanged',
  'analyticsOrderPaymentEvents',
] as const satisfies readonly QueueKey[];

export interface RunningAnalytics {
  consumers: QueueConsumer[];
  /** The one batcher the consumers share: at most one analytics transaction at a time in this process. */
  batcher: MessageBatcher;
  /** Whether every queue is being consumed. */
  readonly consuming: boolean;
  stop(): Promise<void>;
}

/**
 * The analytics consumer: counts every order message into the rollups, once (docs/analytics.md). Its three
 * consumers hand their deliveries to one batcher, so the process counts one batch at a time, in one transaction,
 * whatever messages are in hand. The same retry and dead-letter rules as the worker: a malformed message is
 * dead-lettered at once (alone: its batch is then counted one message at a time), a database outage is retried
 * with growing delays. It reads and writes only analytics tables.
 */
export function startAnalytics(services: Services): RunningAnalytics {
  const { db, amqp, topology, config } = services;
  const logger = services.logger.child({ component: 'analytics' });
  const lag: LagTracker = watchAnalyticsLag(amqp, topology, ANALYTICS_QUEUES);
  const notifier = notifyThrottled(db, 200, (err) =>
    logger.warn({ err }, 'could not tell the API instances that figures changed'),
  );
  const count = async (messages: IncomingMessage[]) => {
    if (await countMessages(messages.map(readMessage), db, lag, logger)) notifier.changed();
  };
  const batcher = new MessageBatcher({
    handler: count,
    failsEveryMessage: isTransientDbError,
    // Nobody waits on analytics (the API hears of new figures at most every 200 ms anyway, `notifyThrottled`),
    // and each batch is a transaction whose rollup rows are shared by every order it counts: the larger the
    // batch, the less each order costs (docs/performance.md).
    lingerMs: config.ANALYTICS_BATCH_WAIT_MS,
    maxBatch: ANALYTICS_QUEUES.length * config.ANALYTICS_PREFETCH,
    logger,
  });

  const consumers = ANALYTICS_QUEUES.map((queue) => {
    const consumer = new QueueConsumer(amqp, topology, {
      queue,
      // Its own prefetch, not AMQP_PREFETCH (the worker's and the notifier's): each queue must hold a whole wait's
      // worth of messages, or the prefetch would end a batch before its wait does.
      prefetch: config.ANALYTICS_PREFETCH,
      handler: (message) => count([message]),
      batcher,
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
    batcher,
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

/** The fact a delivery states; a message that does not state one is malformed, and is dead-lettered at once. */
function readMessage(message: IncomingMessage): CountedMessage {
  try {
    const envelope = parseEnvelope(message.content, ORDER_EXCHANGE_TYPES);
    return { messageId: envelope.id, fact: factOfEnvelope(envelope) };
  } catch (err) {
    throw new PermanentMessageError(`Malformed order message: ${(err as Error).message.slice(0, 300)}`, {
      cause: err,
    });
  }
}

/** Counts the messages in one transaction, telling the lag gauge what is in hand; resolves to how many counted. */
async function countMessages(
  messages: CountedMessage[],
  db: Services['db'],
  lag: LagTracker,
  logger: Logger,
): Promise<number> {
  for (const m of messages) lag.started(m.fact.occurredAt);
  try {
    const counted = await countFacts(db, messages);
    for (const m of messages) lag.counted(m.fact.occurredAt);
    logger.debug(
      { messages: messages.length, counted },
      counted < messages.length ? 'messages counted; some were counted before' : 'messages counted',
    );
    return counted;
  } catch (err) {
    for (const m of messages) lag.abandoned(m.fact.occurredAt);
    if (isTransientDbError(err)) {
      logger.warn({ err, messages: messages.length }, 'database unavailable; messages will be retried');
    }
    throw err;
  }
}
