import { Gauge } from 'prom-client';
import type { AmqpClient } from '../lib/amqp/connection.ts';
import type { QueueKey, Topology } from '../lib/amqp/topology.ts';
import { registry } from '../lib/metrics.ts';

/** What the consumer tells the lag gauge about each message it handles. */
export interface LagTracker {
  started(occurredAt: Date): void;
  counted(occurredAt: Date): void;
  abandoned(occurredAt: Date): void;
  stop(): void;
}

type LagSource = () => Promise<number>;
const sources = new Set<LagSource>();

export const analyticsLag = new Gauge({
  name: 'comanda_analytics_lag_seconds',
  help: 'How far the analytics figures are behind: age of the oldest order event not yet counted, 0 when none waits (sampled at scrape).',
  registers: [registry],
  async collect() {
    const values = await Promise.all([...sources].map((s) => s().catch(() => 0)));
    this.set(values.reduce((max, v) => Math.max(max, v), 0));
  },
});

/**
 * Tracks the events in hand and, at each scrape, reports the age of the oldest one not yet counted: an event
 * being counted right now, or, when the consumer holds none but its queues still have messages waiting, the
 * events after the last one it counted (queues are first in, first out, so that is close to the oldest waiting).
 */
export function watchAnalyticsLag(
  amqp: AmqpClient,
  topology: Topology,
  queues: readonly QueueKey[],
): LagTracker {
  const inHand = new Map<number, number>();
  let lastCounted: number | undefined;
  const release = (at: number) => {
    const n = (inHand.get(at) ?? 1) - 1;
    if (n <= 0) inHand.delete(at);
    else inHand.set(at, n);
  };
  const source: LagSource = async () => {
    const now = Date.now();
    if (inHand.size) return Math.max(0, (now - Math.min(...inHand.keys())) / 1000);
    if (lastCounted === undefined || !amqp.connected) return 0;
    let waiting = 0;
    for (const key of queues) {
      const q = await amqp.withChannel((ch) => ch.checkQueue(topology.queue(key))).catch(() => undefined);
      waiting += q?.messageCount ?? 0;
    }
    return waiting > 0 ? Math.max(0, (now - lastCounted) / 1000) : 0;
  };
  sources.add(source);
  return {
    started(occurredAt) {
      const at = occurredAt.getTime();
      inHand.set(at, (inHand.get(at) ?? 0) + 1);
    },
    counted(occurredAt) {
      release(occurredAt.getTime());
      lastCounted = Math.max(lastCounted ?? 0, occurredAt.getTime());
    },
    abandoned(occurredAt) {
      release(occurredAt.getTime());
    },
    stop() {
      sources.delete(source);
    },
  };
}
