import { randomUUID } from 'node:crypto';
import type { ConsumeMessage } from 'amqplib';
import type { ExchangeKey } from '../../lib/amqp/topology.ts';
import type { Envelope } from '../../lib/messages.ts';
import type { TestPipeline } from './pipeline.ts';

/** A queue of the test's own bound to a fanout exchange: it sees every message published there, as envelopes. */
export async function probeExchange(p: TestPipeline, exchange: ExchangeKey) {
  const queue = `${p.config.AMQP_PREFIX}probe-${randomUUID()}`;
  const seen: Envelope<Record<string, any>>[] = [];
  const ch = await p.services.amqp.openChannel();
  await ch.assertQueue(queue, { exclusive: true });
  await ch.bindQueue(queue, p.services.topology.exchange(exchange), '');
  await ch.consume(
    queue,
    (m: ConsumeMessage | null) => {
      if (m) seen.push(JSON.parse(m.content.toString('utf8')) as Envelope<Record<string, any>>);
    },
    { noAck: true },
  );
  return {
    seen,
    /** The messages about one product (the aggregate), of `type` when given. */
    about(productId: string, type?: string) {
      return seen.filter((m) => m.aggregate_id === productId && (type === undefined || m.type === type));
    },
    close: () => ch.close(),
  };
}
