import amqp, {
  type Channel,
  type ChannelModel,
  type ConfirmChannel,
  type RecoveringChannelModel,
} from 'amqplib';
import type { Logger } from '../logger.ts';

export type { Channel, ChannelModel, ConfirmChannel };

/**
 * Something that lives on the AMQP connection (a publisher's confirm channel, a consumer): `attach` runs on
 * every (re)connect and returns the channels it opened; `detach` runs when the connection is lost.
 */
export interface AmqpAttachment {
  name: string;
  attach(model: ChannelModel): Promise<Channel[]>;
  detach(): void;
}

export interface AmqpClientOptions {
  url: string;
  logger: Logger;
  /** Connection attempts at start before giving up (steady-state recovery never gives up). */
  initialRetries?: number;
}

/**
 * One AMQP connection per process, recovered by amqplib after any outage. Attachments are re-attached on each
 * reconnect, and a channel that closes on its own (a channel-level error) is reopened while the connection
 * stays up.
 */
export class AmqpClient {
  private connection: RecoveringChannelModel | undefined;
  private model: ChannelModel | undefined;
  private readonly attachments = new Set<AmqpAttachment>();
  /** Attaches under way: each still declares its topology and opens its channels when it goes on. */
  private readonly attaching = new Set<Promise<Channel[]>>();
  private closing = false;

  constructor(private readonly options: AmqpClientOptions) {}

  get connected(): boolean {
    return this.model !== undefined;
  }

  async connect(): Promise<void> {
    const log = this.options.logger;
    this.connection = await amqp.connect(this.options.url, {
      recovery: {
        initialDelay: 200,
        maxDelay: 5000,
        initialMaxRetries: this.options.initialRetries ?? 2,
        maxRetries: Infinity,
        waitForConnect: false,
      },
    });
    this.connection.on('connect', (model: ChannelModel) => {
      this.model = model;
      log.info('amqp connected');
      for (const a of this.attachments) this.attachSafely(a, model);
    });
    this.connection.on('disconnect', (err: Error) => {
      this.model = undefined;
      if (!this.closing) log.warn({ err: err.message }, 'amqp connection lost; reconnecting');
      for (const a of this.attachments) a.detach();
    });
    this.connection.on('reconnect-scheduled', ({ attempt, delay }: { attempt: number; delay: number }) => {
      log.debug({ attempt, delay }, 'amqp reconnect scheduled');
    });
    this.connection.on('error', (err: Error) => log.warn({ err: err.message }, 'amqp connection error'));
    this.connection.on('handler-error', (err: Error, event: string) =>
      log.error({ err, event }, 'amqp event handler failed'),
    );
    await this.connection.waitForConnect();
  }

  /** Adds an attachment; attaches it at once when connected, and again after every reconnect. */
  add(attachment: AmqpAttachment): void {
    this.attachments.add(attachment);
    if (this.model) this.attachSafely(attachment, this.model);
  }

  remove(attachment: AmqpAttachment): void {
    this.attachments.delete(attachment);
    attachment.detach();
  }

  /**
   * Detaches every attachment for good and keeps the connection for administrative work: before a scratch run's
   * topology is deleted, so no consumer that loses its queue declares it again. Resolves once the attaches that
   * were under way have finished (and closed what they opened), so none declares anything afterwards.
   */
  async detachAll(): Promise<void> {
    for (const a of this.attachments) a.detach();
    this.attachments.clear();
    await Promise.allSettled([...this.attaching]);
  }

  /** A short-lived channel for administrative work (checks, topology, tests); throws while disconnected. */
  async withChannel<T>(fn: (ch: Channel) => Promise<T>): Promise<T> {
    if (!this.model) throw new Error('RabbitMQ is not connected');
    return useChannel(await this.model.createChannel(), fn);
  }

  /** A channel the caller owns and closes (it dies with the connection; attachments are for what must survive). */
  async openChannel(): Promise<Channel> {
    if (!this.model) throw new Error('RabbitMQ is not connected');
    const ch = await this.model.createChannel();
    ch.on('error', () => {});
    return ch;
  }

  /** Like withChannel, on a confirm channel (call `waitForConfirms` before returning). */
  async withConfirmChannel<T>(fn: (ch: ConfirmChannel) => Promise<T>): Promise<T> {
    if (!this.model) throw new Error('RabbitMQ is not connected');
    return useChannel(await this.model.createConfirmChannel(), fn);
  }

  async close(): Promise<void> {
    this.closing = true;
    void this.detachAll(); // closing the connection ends the attaches under way
    await this.connection?.close().catch(() => {});
    this.model = undefined;
  }

  private attachSafely(attachment: AmqpAttachment, model: ChannelModel): void {
    const log = this.options.logger;
    const attaching = attachment.attach(model);
    this.attaching.add(attaching);
    const done = () => this.attaching.delete(attaching);
    attaching.then(done, done);
    attaching.then(
      (channels) => {
        if (!this.attachments.has(attachment)) {
          // Removed while it attached (a consumer stopped, a scratch run torn down): it must not start now.
          attachment.detach();
          return;
        }
        for (const ch of channels) {
          ch.on('error', (err: Error) =>
            log.warn({ err: err.message, attachment: attachment.name }, 'channel error'),
          );
          ch.once('close', () => {
            // A channel closed while its connection lives on: reopen it after a pause.
            if (this.closing || this.model !== model || !this.attachments.has(attachment)) return;
            attachment.detach();
            setTimeout(() => {
              if (this.model === model && this.attachments.has(attachment))
                this.attachSafely(attachment, model);
            }, 500).unref();
          });
        }
      },
      (err: unknown) => {
        log.warn({ err, attachment: attachment.name }, 'amqp attach failed; retrying');
        setTimeout(() => {
          if (this.model === model && this.attachments.has(attachment)) this.attachSafely(attachment, model);
        }, 1000).unref();
      },
    );
  }
}

async function useChannel<C extends Channel, T>(ch: C, fn: (ch: C) => Promise<T>): Promise<T> {
  ch.on('error', () => {});
  try {
    return await fn(ch);
  } finally {
    await ch.close().catch(() => {});
  }
}
