import { randomBytes } from 'node:crypto';
import type { Channel } from 'amqplib';

/**
 * The whole RabbitMQ topology of comanda, as data: who publishes where and who consumes what. Every process
 * asserts it on (re)connect, so a fresh broker or a restarted one is set up by whichever process comes first.
 */
export const EXCHANGES = {
  orderCreated: 'order.created',
  orderStatusChanged: 'order.status-changed',
  /** Steps of an order that change no status: a declined payment attempt, a refund. */
  orderPaymentEvents: 'order.payment-events',
  /** Work the order lifecycle asks of its workers after a commit: take a payment, refund one. */
  orderCommands: 'order.commands',
  /** The catalogue's products: product.created, product.updated. */
  productEvents: 'product.events',
  /** Stock: inventory.updated on every change of available stock, low_stock and back_in_stock on crossings. */
  inventoryEvents: 'inventory.events',
  deadLetter: 'comanda.dead-letter',
} as const;

export type ExchangeKey = keyof typeof EXCHANGES;

export const QUEUES = {
  workerOrderCreated: { name: 'worker.order-created', exchange: 'orderCreated' },
  workerOrderCommands: { name: 'worker.order-commands', exchange: 'orderCommands' },
} as const satisfies Record<string, { name: string; exchange: ExchangeKey }>;

/**
 * Queues comanda declared once and no longer reads: deleted on connect (with their dead-letter and delay queues),
 * since a fanout exchange would otherwise keep filling them. Analytics read three until it read the feed (ADR 0016).
 */
export const RETIRED_QUEUES = [
  'analytics.order-created',
  'analytics.order-status-changed',
  'analytics.order-payment-events',
] as const;

export type QueueKey = keyof typeof QUEUES;

export interface TopologyOptions {
  /** Prefixed to every exchange and queue name: isolates test runs and benchmarks sharing one broker. */
  prefix: string;
  /** Deliveries of one message before the broker dead-letters it (RabbitMQ 3.10 quorum queues have no default). */
  deliveryLimit: number;
  /** The pauses before each retry of a transiently failed message; one delay queue per entry. */
  retryDelaysMs: number[];
}

export class Topology {
  constructor(readonly options: TopologyOptions) {}

  exchange(key: ExchangeKey): string {
    return this.options.prefix + EXCHANGES[key];
  }

  queue(key: QueueKey): string {
    return this.options.prefix + QUEUES[key].name;
  }

  deadLetterQueue(key: QueueKey): string {
    return deadLetterOf(this.queue(key));
  }

  /** The delay queue that holds a message of `key` for `delayMs`, then hands it back to `key`'s queue. */
  retryQueue(key: QueueKey, delayMs: number): string {
    return retryOf(this.queue(key), delayMs);
  }

  /** Declares every exchange; cheap and idempotent, so publishers call it on each connect. */
  async assertExchanges(ch: Channel): Promise<void> {
    for (const key of Object.keys(EXCHANGES) as ExchangeKey[]) {
      await ch.assertExchange(this.exchange(key), key === 'deadLetter' ? 'direct' : 'fanout', {
        durable: true,
      });
    }
  }

  /**
   * Declares a consumer's quorum queue bound to its fanout exchange, and its dead-letter queue. Dead-lettering is
   * at-least-once (which needs `reject-publish` overflow) so a message is never dropped between the two queues.
   */
  async assertQueue(ch: Channel, key: QueueKey): Promise<string> {
    await this.assertExchanges(ch);
    const name = this.queue(key);
    const dead = this.deadLetterQueue(key);
    await ch.assertQueue(dead, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await ch.bindQueue(dead, this.exchange('deadLetter'), name);
    await ch.assertQueue(name, {
      durable: true,
      arguments: {
        'x-queue-type': 'quorum',
        'x-dead-letter-exchange': this.exchange('deadLetter'),
        'x-dead-letter-routing-key': name,
        'x-dead-letter-strategy': 'at-least-once',
        'x-overflow': 'reject-publish',
        'x-delivery-limit': this.options.deliveryLimit,
      },
    });
    await ch.bindQueue(name, this.exchange(QUEUES[key].exchange), '');
    for (const delay of new Set(this.options.retryDelaysMs)) {
      // Expired messages dead-letter through the default exchange straight back to the consumer's queue.
      await ch.assertQueue(this.retryQueue(key, delay), {
        durable: true,
        arguments: {
          'x-queue-type': 'quorum',
          'x-message-ttl': delay,
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': name,
          'x-dead-letter-strategy': 'at-least-once',
          'x-overflow': 'reject-publish',
        },
      });
    }
    return name;
  }

  /**
   * Declares a queue that lives only as long as this connection (exclusive, auto-delete, not durable), bound to
   * the given fanout exchanges: for listeners that want what happens from now on, such as an API instance
   * pushing status changes to its open streams. `name` says who listens; a random suffix keeps instances apart.
   * The length cap drops the oldest messages rather than letting a stalled listener grow the broker's memory.
   */
  async assertListenerQueue(ch: Channel, name: string, exchanges: ExchangeKey[]): Promise<string> {
    await this.assertExchanges(ch);
    const { queue } = await ch.assertQueue(
      `${this.options.prefix}${name}.${randomBytes(4).toString('hex')}`,
      {
        exclusive: true,
        autoDelete: true,
        durable: false,
        arguments: { 'x-max-length': 10_000, 'x-overflow': 'drop-head' },
      },
    );
    for (const key of exchanges) await ch.bindQueue(queue, this.exchange(key), '');
    return queue;
  }

  /**
   * Declares the whole topology: every exchange and every consumer's queue. Publishers call this on connect, so
   * a message published before any consumer ever ran waits in its durable queue instead of being dropped by a
   * fanout exchange with nothing bound to it.
   */
  async assertAll(ch: Channel): Promise<void> {
    for (const key of Object.keys(QUEUES) as QueueKey[]) await this.assertQueue(ch, key);
    await this.assertExchanges(ch);
    await this.deleteRetired(ch);
  }

  /** Deletes the retired queues of this prefix, if they are there (deleting a missing queue is not an error). */
  async deleteRetired(ch: Channel): Promise<void> {
    for (const retired of RETIRED_QUEUES) await this.deleteQueueSet(ch, this.options.prefix + retired);
  }

  /** Deletes a consumer's queue with its dead-letter queue and its delay queues. */
  private async deleteQueueSet(ch: Channel, name: string): Promise<void> {
    await ch.deleteQueue(name);
    await ch.deleteQueue(deadLetterOf(name));
    for (const delay of new Set(this.options.retryDelaysMs)) await ch.deleteQueue(retryOf(name, delay));
  }

  /** Removes everything this prefix declared: used by tests and benchmarks to clean up after themselves. */
  async deleteAll(ch: Channel): Promise<void> {
    for (const key of Object.keys(QUEUES) as QueueKey[]) await this.deleteQueueSet(ch, this.queue(key));
    for (const key of Object.keys(EXCHANGES) as ExchangeKey[]) {
      await ch.deleteExchange(this.exchange(key));
    }
  }
}

const deadLetterOf = (queue: string) => `${queue}.dead`;
const retryOf = (queue: string, delayMs: number) => `${queue}.retry.${delayMs}ms`;
