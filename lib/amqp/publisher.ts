import type { ChannelModel, ConfirmChannel, Options } from 'amqplib';
import { ServiceUnavailableError } from '../errors.ts';
import { withContextFrom } from '../telemetry.ts';
import type { AmqpAttachment, AmqpClient } from './connection.ts';
import type { Topology } from './topology.ts';

export interface OutgoingMessage {
  exchange: string;
  routingKey?: string;
  body: Buffer;
  options: Options.Publish;
}

/**
 * Publishes on a confirm channel: `publish` resolves only once the broker has taken responsibility for every
 * message (persistent, and on a quorum queue replicated), and rejects if it nacks or the channel is lost.
 * With tracing on, each message is published in the trace its `traceparent` header names (the one stored
 * with its outbox row), so the publish span, and the consumer's span after it, continue the work that wrote it.
 */
export class ConfirmPublisher implements AmqpAttachment {
  readonly name = 'publisher';
  private channel: ConfirmChannel | undefined;

  constructor(
    private readonly client: AmqpClient,
    private readonly topology: Topology,
  ) {}

  start(): void {
    this.client.add(this);
  }

  get ready(): boolean {
    return this.channel !== undefined;
  }

  async attach(model: ChannelModel) {
    const ch = await model.createConfirmChannel();
    await this.topology.assertAll(ch);
    this.channel = ch;
    ch.once('close', () => {
      if (this.channel === ch) this.channel = undefined;
    });
    return [ch];
  }

  detach(): void {
    const ch = this.channel;
    this.channel = undefined;
    ch?.close().catch(() => {});
  }

  async publish(messages: OutgoingMessage[]): Promise<void> {
    const ch = this.channel;
    if (!ch) throw new ServiceUnavailableError('RabbitMQ is not connected');
    const confirms: Promise<void>[] = [];
    for (const m of messages) {
      confirms.push(
        new Promise<void>((resolve, reject) => {
          withContextFrom(m.options.headers as Record<string, unknown> | undefined, () =>
            ch.publish(m.exchange, m.routingKey ?? '', m.body, m.options, (err) =>
              err
                ? reject(new ServiceUnavailableError('RabbitMQ did not confirm a message', { cause: err }))
                : resolve(),
            ),
          );
        }),
      );
    }
    // A channel closing mid-batch leaves callbacks unanswered: race the confirms against the close.
    await new Promise<void>((resolve, reject) => {
      const onClose = () => reject(new ServiceUnavailableError('RabbitMQ channel closed before confirming'));
      ch.once('close', onClose);
      Promise.all(confirms).then(
        () => {
          ch.removeListener('close', onClose);
          resolve();
        },
        (err: unknown) => {
          ch.removeListener('close', onClose);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }
}
