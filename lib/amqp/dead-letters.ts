import { createHash } from 'node:crypto';
import type { ConfirmChannel, GetMessage } from 'amqplib';
import type { AmqpClient } from './connection.ts';
import { DEAD_AT_HEADER, DEAD_QUEUE_HEADER, DEAD_REASON_HEADER, RETRIES_HEADER } from './consumer.ts';
import { QUEUES, type QueueKey, type Topology } from './topology.ts';

/** A parked message, as an operator sees it. */
export interface DeadLetter {
  id: string;
  /** The queue it was dead-lettered from, and where a replay puts it back. */
  queue: string;
  reason: string;
  /** How many times it was tried (retries by comanda, or the broker's delivery count). */
  attempts: number;
  dead_lettered_at: string | null;
  age_seconds: number | null;
  type: string | null;
  correlation_id: string | null;
  body: string;
}

interface XDeath {
  queue?: string;
  reason?: string;
  count?: number;
  time?: { value?: number } | Date | number;
}

const BROWSE_LIMIT = 10_000;

/**
 * Lists, replays and purges the dead-letter queues. Browsing takes messages without acking them and hands them
 * back when its channel closes, so looking changes nothing; a replay republishes to the original queue (not the
 * exchange, so other consumers of the event are not bothered again), waits for the broker's confirm, and only
 * then removes the dead letter. Consumers are idempotent, so replaying an already-processed message is harmless.
 */
export class DeadLetters {
  constructor(
    private readonly amqp: AmqpClient,
    private readonly topology: Topology,
  ) {}

  async list(): Promise<DeadLetter[]> {
    const all: DeadLetter[] = [];
    for (const key of Object.keys(QUEUES) as QueueKey[]) {
      await this.browse(key, (_ch, messages) => {
        all.push(...messages.map((m) => describe(this.topology.queue(key), m)));
      });
    }
    return all;
  }

  async show(id: string): Promise<DeadLetter | undefined> {
    return (await this.list()).find((d) => d.id === id);
  }

  /** Replays the dead letters whose id is in `ids` (all of them when `ids` is undefined); returns how many. */
  async replay(ids?: string[]): Promise<number> {
    let replayed = 0;
    for (const key of Object.keys(QUEUES) as QueueKey[]) {
      const fallbackQueue = this.topology.queue(key);
      await this.browse(key, async (ch, messages) => {
        const chosen = messages.filter((m) => !ids || ids.includes(describe(fallbackQueue, m).id));
        for (const m of chosen) {
          const target = describe(fallbackQueue, m).queue;
          const headers = { ...(m.properties.headers ?? {}) } as Record<string, unknown>;
          for (const h of [
            DEAD_REASON_HEADER,
            DEAD_QUEUE_HEADER,
            DEAD_AT_HEADER,
            RETRIES_HEADER,
            'x-death',
          ]) {
            delete headers[h];
          }
          headers['x-comanda-replayed-at'] = Date.now();
          ch.sendToQueue(target, m.content, { ...m.properties, headers, persistent: true });
        }
        await ch.waitForConfirms();
        for (const m of chosen) ch.ack(m);
        replayed += chosen.length;
      });
    }
    return replayed;
  }

  /** Deletes every dead letter; returns how many there were. */
  async purge(): Promise<number> {
    let purged = 0;
    await this.amqp.withChannel(async (ch) => {
      for (const key of Object.keys(QUEUES) as QueueKey[]) {
        purged += (await ch.purgeQueue(this.topology.deadLetterQueue(key))).messageCount;
      }
    });
    return purged;
  }

  private async browse(
    key: QueueKey,
    fn: (ch: ConfirmChannel, messages: GetMessage[]) => void | Promise<void>,
  ) {
    const queue = this.topology.deadLetterQueue(key);
    await this.amqp.withConfirmChannel(async (ch) => {
      await this.topology.assertQueue(ch, key);
      const messages: GetMessage[] = [];
      for (let i = 0; i < BROWSE_LIMIT; i++) {
        const m = await ch.get(queue, { noAck: false });
        if (!m) break;
        messages.push(m);
      }
      await fn(ch, messages);
      // Closing the channel hands back every message not acked above.
    });
  }
}

function describe(fallbackQueue: string, m: GetMessage): DeadLetter {
  const headers = (m.properties.headers ?? {}) as Record<string, unknown>;
  const death = (Array.isArray(headers['x-death']) ? headers['x-death'][0] : undefined) as XDeath | undefined;
  const deadAt = typeof headers[DEAD_AT_HEADER] === 'number' ? headers[DEAD_AT_HEADER] : deathTime(death);
  const id =
    (m.properties.messageId as string | undefined) ??
    createHash('sha256').update(m.content).digest('hex').slice(0, 32);
  const reason =
    typeof headers[DEAD_REASON_HEADER] === 'string'
      ? headers[DEAD_REASON_HEADER]
      : death?.reason
        ? `broker: ${death.reason}`
        : 'unknown';
  return {
    id,
    queue: (headers[DEAD_QUEUE_HEADER] as string | undefined) ?? death?.queue ?? fallbackQueue,
    reason,
    attempts: Number(headers[RETRIES_HEADER] ?? death?.count ?? 0) + 1,
    dead_lettered_at: deadAt ? new Date(deadAt).toISOString() : null,
    age_seconds: deadAt ? Math.round((Date.now() - deadAt) / 1000) : null,
    type: (m.properties.type as string | undefined) ?? null,
    correlation_id: (headers['x-correlation-id'] as string | undefined) ?? null,
    body: m.content.toString('utf8').slice(0, 2000),
  };
}

function deathTime(death: XDeath | undefined): number | undefined {
  const t = death?.time;
  if (t instanceof Date) return t.getTime();
  if (typeof t === 'number') return t * 1000;
  if (t && typeof t === 'object' && typeof t.value === 'number') return t.value * 1000;
  return undefined;
}
