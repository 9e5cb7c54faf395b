import { EventEmitter } from 'node:events';
import type { ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { AppError } from '../errors.ts';
import type { Logger } from '../logger.ts';
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
  handler: MessageHandler;
  logger: Logger;
  /** Base of the pause before a transient failure is handed back to the broker; doubles per delivery. */
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
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

/** Whether a failure should be retried (true) or dead-lettered at once (false). */
export function isRecoverable(err: unknown): boolean {
  if (err instanceof AppError) return err.recoverable;
  return true;
}

/**
 * A queue consumer with bounded prefetch. A message is acked only after its handler resolved (its transaction
 * committed); a permanent failure is republished to the dead-letter exchange with the reason in a header and
 * then acked; a transient failure is handed back to the broker after a growing pause, and the quorum queue's
 * delivery limit dead-letters it when retries run out.
 */
export class QueueConsumer extends EventEmitter<{ settled: [SettledEvent] }> implements AmqpAttachment {
  readonly name: string;
  private channel: ConfirmChannel | undefined;
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
    const { consumerTag } = await ch.consume(queue, (msg) => {
      if (msg) this.track(this.handle(ch, queue, msg));
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
    this.client.remove(this);
  }

  private track(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private async handle(ch: ConfirmChannel, queue: string, msg: ConsumeMessage): Promise<void> {
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
    try {
      await this.options.handler(incoming);
      ch.ack(msg);
      settled('acked');
    } catch (err) {
      if (isRecoverable(err)) {
        const base = this.options.retryBaseDelayMs ?? 200;
        const delay = Math.min(base * 2 ** incoming.deliveryCount, this.options.retryMaxDelayMs ?? 10_000);
        log.warn({ err, messageId: incoming.messageId, delay }, 'transient failure; message will be retried');
        if (!this.stopping) await new Promise((r) => setTimeout(r, delay));
        safely(() => ch.nack(msg, false, true));
        settled('retried');
        return;
      }
      const reason =
        err instanceof Error ? `${(err as { code?: string }).code ?? err.name}: ${err.message}` : String(err);
      log.error({ err, messageId: incoming.messageId }, 'permanent failure; dead-lettering message');
      try {
        await new Promise<void>((resolve, reject) =>
          ch.publish(
            this.topology.exchange('deadLetter'),
            queue,
            msg.content,
            {
              ...msg.properties,
              headers: { ...headers, [DEAD_REASON_HEADER]: reason.slice(0, 500), [DEAD_QUEUE_HEADER]: queue },
            },
            (e) => (e ? reject(e as Error) : resolve()),
          ),
        );
        ch.ack(msg);
      } catch {
        // Could not park it with a reason: let the broker dead-letter it itself.
        safely(() => ch.nack(msg, false, false));
      }
      settled('dead-lettered');
    }
  }
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // The channel is gone; the broker redelivers unacked messages to the next consumer.
  }
}
