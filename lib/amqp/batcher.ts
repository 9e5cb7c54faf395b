import type { Logger } from '../logger.ts';
import type { IncomingMessage, MessageHandler } from './consumer.ts';

/**
 * Handles a batch all or nothing: when it resolves, every message of it is done; when it throws, none is. It must
 * do for each message what the consumer's single-message handler does.
 */
export type BatchHandler = (messages: IncomingMessage[]) => Promise<void>;

export interface BatcherOptions {
  handler: BatchHandler;
  /** The most messages in one batch. Default 500. */
  maxBatch?: number;
  /**
   * Whether a batch's failure is no one message's fault (the database is away): then every message of the batch
   * fails with it at once and takes its retry path, instead of each being tried alone against the same outage.
   * Default: never.
   */
  failsEveryMessage?: (err: unknown) => boolean;
  logger: Logger;
}

interface Delivery {
  message: IncomingMessage;
  alone: MessageHandler;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Collects the deliveries of one or more consumers in batch mode and hands them to one batch handler, one batch
 * at a time: when it is idle, the deliveries in hand are the next batch; those that arrive while a batch runs
 * form the one after. No timer, so an idle batcher adds no latency, and a busy one
 * makes batches as large as the consumers' prefetch allows. When a batch fails, its messages are handled one at a time by their consumer's
 * single-message handler, so a poison message fails alone and the rest still get through.
 */
export class MessageBatcher {
  private readonly waiting: Delivery[] = [];
  private running = false;
  private readonly maxBatch: number;

  constructor(private readonly options: BatcherOptions) {
    this.maxBatch = options.maxBatch ?? 500;
  }

  /** Deliveries waiting for the next batch. */
  get pending(): number {
    return this.waiting.length;
  }

  /** Batches handled so far, the messages in them, and the largest one. */
  readonly handled = { batches: 0, messages: 0, largest: 0 };

  /**
   * Resolves once `message` was handled, in a batch or alone (by `alone`, after its batch failed); rejects with
   * the error that settles it (the consumer then retries or dead-letters it).
   */
  submit(message: IncomingMessage, alone: MessageHandler): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ message, alone, resolve, reject });
      if (this.running) return;
      this.running = true;
      // After the current turn: deliveries dispatched together from one network read go in one batch.
      queueMicrotask(() => void this.drain());
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.waiting.length) {
        await this.run(this.waiting.splice(0, this.maxBatch));
      }
    } finally {
      this.running = false;
    }
  }

  private async run(batch: Delivery[]): Promise<void> {
    this.handled.batches++;
    this.handled.messages += batch.length;
    this.handled.largest = Math.max(this.handled.largest, batch.length);
    try {
      await this.options.handler(batch.map((d) => d.message));
    } catch (err) {
      // A batch of one that failed is that message's failure: handling it alone would only repeat it.
      if (batch.length === 1 || this.options.failsEveryMessage?.(err)) {
        for (const d of batch) d.reject(err);
        return;
      }
      this.options.logger.warn(
        { err, messages: batch.length },
        'batch failed; handling its messages one at a time',
      );
      for (const d of batch) {
        try {
          await d.alone(d.message);
          d.resolve();
        } catch (e) {
          d.reject(e);
        }
      }
      return;
    }
    for (const d of batch) d.resolve();
  }
}
