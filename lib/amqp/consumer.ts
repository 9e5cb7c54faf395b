import { EventEmitter } from 'node:events';
import type { ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { AppError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { AckCoalescer } from './acks.ts';
import type { MessageBatcher } from './batcher.ts';
import type { AmqpAttachment, AmqpClient } from './connection.ts';
import type { QueueKey, Topology } from './topology.ts';

/** What a handler sees of a delivery. */
export interface IncomingMessage {
  messageId: string | undefined;
  type: string | undefined;
  content: Buffer;
  headers: Record<string, unknown>;
  /** How many times the broker delivered this message before (quorum queues count it). */
  deliveryCount: number;
  redelivered: boolean;
}

export type MessageHandler = (message: IncomingMessage) => Promise<void>;

export interface ConsumerOptions {
  queue: QueueKey;
  prefetch: number;
  /** Handles one message; in batch mode, each message of a batch that failed, one at a time. */
  handler: MessageHandler;
  /**
   * Batch mode: each delivery goes to this batcher (which may serve other consumers too) and is settled as the
   * batcher handled it, by the same rules as a single message.
   */
  batcher?: MessageBatcher | undefined;
  logger: Logger;
}

/** How a delivery ended: acked after success, handed back for a retry, or dead-lettered. */
export type Settlement = 'acked' | 'retried' | 'dead-lettered';

export interface SettledEvent {
  messageId: string | undefined;
  outcome: Settlement;
  durationMs: number;
}

export const DEAD_REASON_HEADER = 'x-comanda-dead-reason';
export const DEAD_QUEUE_HEADER = 'x-comanda-original-queue';
export const DEAD_AT_HEADER = 'x-comanda-dead-at';
/** How many delayed retries a message has had so far. */
export const RETRIES_HEADER = 'x-comanda-retries';
export const LAST_ERROR_HEADER = 'x-comanda-last-error';

/** Whether a failure should be retried (true) or dead-lettered at once (false). */
export function isRecoverable(err: unknown): boolean {
  if (err instanceof AppError) return err.recoverable;
  return true;
}

/**
 * A queue consumer with bounded prefetch. A message is acked only after its handler resolved (its transaction
 * committed), or in batch mode after its batch (or, when that failed, the message alone) was handled. A transient
 * failure goes to the next delay queue of the topology's retry schedule, which hands it back to the queue when its
 * time is up — no hot requeue loop; a permanent failure, or a transient one past the schedule, goes to the
 * dead-letter queue with the reason in a header. A message that kills its process before it is settled is
 * redelivered, and the quorum queue's delivery limit dead-letters it if that keeps happening.
 */
export class QueueConsumer extends EventEmitter<{ settled: [SettledEvent] }> implements AmqpAttachment {
  readonly name: string;
  private channel: ConfirmChannel | undefined;
  private acks: AckCoalescer | undefined;
  private consumerTag: string | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private stopping = false;

  constructor(
    private readonly client: AmqpClient,
    private readonly topology: Topology,
    private readonly options: ConsumerOptions,
  ) {
    super();
    this.name = `consumer:${options.queue}`;
  }

  start(): void {
    this.stopping = false;
    this.client.add(this);
  }

  get consuming(): boolean {
    return this.consumerTag !== undefined;
  }

  async attach(model: ChannelModel) {
    const ch = await model.createConfirmChannel();
    await ch.prefetch(this.options.prefetch);
    const queue = await this.topology.assertQueue(ch, this.options.queue);
    this.channel = ch;
    const acks = new AckCoalescer(ch);
    this.acks = acks;
    const { consumerTag } = await ch.consume(queue, (msg) => {
      if (!msg) return;
      acks.delivered(msg);
      this.track(this.handle(ch, acks, queue, msg));
    });
    this.consumerTag = consumerTag;
    return [ch];
  }

  detach(): void {
    const ch = this.channel;
    this.channel = undefined;
    this.consumerTag = undefined;
    ch?.close().catch(() => {});
  }

  /** Stops taking deliveries, waits for the ones in hand to finish (and be acked), then closes the channel. */
  async stop(): Promise<void> {
    this.stopping = true;
    const ch = this.channel;
    if (ch && this.consumerTag) await ch.cancel(this.consumerTag).catch(() => {});
    this.consumerTag = undefined;
    await Promise.allSettled([...this.inFlight]);
    // The last acks go out before the channel closes, not after (when they could not).
    this.acks?.flush();
    this.client.remove(this);
  }

  private track(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private async handle(
    ch: ConfirmChannel,
    acks: AckCoalescer,
    queue: string,
    msg: ConsumeMessage,
  ): Promise<void> {
    const log = this.options.logger;
    const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
    const incoming: IncomingMessage = {
      messageId: msg.properties.messageId as string | undefined,
      type: msg.properties.type as string | undefined,
      content: msg.content,
      headers,
      deliveryCount: Number(headers['x-delivery-count'] ?? 0),
      redelivered: msg.fields.redelivered,
    };
    const started = performance.now();
    const settled = (outcome: Settlement) =>
      this.emit('settled', {
        messageId: incoming.messageId,
        outcome,
        durationMs: performance.now() - started,
      });
    const { handler, batcher } = this.options;
    let failure: { err: unknown } | undefined;
    try {
      await (batcher ? batcher.submit(incoming, handler) : handler(incoming));
    } catch (err) {
      failure = { err };
    }
    if (!failure) {
      // If the channel died meanwhile the ack cannot go out; the broker redelivers and the handler sees it done.
      acks.ack(msg);
      settled('acked');
      return;
    }
    const { err } = failure;
    const reason = describeError(err);
    const retries = Number(headers[RETRIES_HEADER] ?? 0);
    const delays = this.topology.options.retryDelaysMs;
    if (this.stopping) {
      // Shutting down: hand it straight back; another consumer (or this one, restarted) takes it.
      safely(() => ch.nack(msg, false, true));
      acks.release(msg);
      settled('retried');
    } else if (isRecoverable(err) && retries < delays.length) {
      log.warn(
        { err, messageId: incoming.messageId, retry: retries + 1, delay_ms: delays[retries] },
        'transient failure; retrying later',
      );
      await this.republish(ch, acks, msg, '', this.topology.retryQueue(this.options.queue, delays[retries]), {
        ...headers,
        [RETRIES_HEADER]: retries + 1,
        [LAST_ERROR_HEADER]: reason.slice(0, 500),
      });
      settled('retried');
    } else {
      const why = isRecoverable(err) ? `retries exhausted after ${retries + 1} attempts: ${reason}` : reason;
      log.error({ err, messageId: incoming.messageId }, 'dead-lettering message');
      await this.republish(ch, acks, msg, this.topology.exchange('deadLetter'), queue, {
        ...headers,
        [DEAD_REASON_HEADER]: why.slice(0, 500),
        [DEAD_QUEUE_HEADER]: queue,
        [DEAD_AT_HEADER]: Date.now(),
      });
      settled('dead-lettered');
    }
  }

  /**
   * Publishes a copy of `msg` (to a delay queue or the dead-letter exchange) and acks the original once the
   * broker confirmed the copy. If that fails the original is handed back to the queue instead, so nothing is
   * lost (at worst it is tried once more; the delivery limit stops that from going on forever).
   */
  private async republish(
    ch: ConfirmChannel,
    acks: AckCoalescer,
    msg: ConsumeMessage,
    exchange: string,
    routingKey: string,
    headers: Record<string, unknown>,
  ): Promise<void> {
    try {
      await new Promise<void>((resolve, reject) =>
        ch.publish(
          exchange,
          routingKey,
          msg.content,
          { ...msg.properties, headers, persistent: true },
          (e) => (e ? reject(e as Error) : resolve()),
        ),
      );
      ch.ack(msg);
    } catch {
      safely(() => ch.nack(msg, false, true));
    } finally {
      acks.release(msg);
    }
  }
}

function describeError(err: unknown): string {
  if (err instanceof Error) return `${(err as { code?: string }).code ?? err.name}: ${err.message}`;
  return String(err);
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // The channel is gone; the broker redelivers unacked messages to the next consumer.
  }
}
