import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AmqpClient } from './amqp/connection.ts';
import { QUEUES, type QueueKey, type Topology } from './amqp/topology.ts';
import type { Db } from './db.ts';
import type { Logger } from './logger.ts';

/**
 * The Prometheus metrics of a comanda process (docs/metrics.md describes each one, with a sample query).
 * One registry per process, as prom-client intends: the API, the worker and the notifier each record into it
 * and expose it on `GET /metrics` (the API's port, or METRICS_PORT for the worker and notifier).
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry });

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const PIPELINE_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export const httpRequestDuration = new Histogram({
  name: 'comanda_http_request_duration_seconds',
  help: 'HTTP requests by method, route template and status, with their duration.',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

const dbQueries = new Counter({
  name: 'comanda_db_queries_total',
  help: 'Statements sent to PostgreSQL (round trips, BEGIN and COMMIT included), by connection pool.',
  labelNames: ['pool'] as const,
  registers: [registry],
});

/** Counts every statement `db` sends, under `pool`: the round trips per order in the benchmark's cost model. */
export function countQueries(db: Db, pool: string): void {
  const counter = dbQueries.labels({ pool });
  db.on('query', () => counter.inc());
}

export const ordersCreated = new Counter({
  name: 'comanda_orders_created_total',
  help: 'Orders accepted (201) by POST /orders; idempotent replays are not counted again.',
  registers: [registry],
});

export const ordersFinal = new Counter({
  name: 'comanda_orders_final_total',
  help: 'Orders that reached a final status, by status and reject reason ("none" when confirmed).',
  labelNames: ['status', 'reason'] as const,
  registers: [registry],
});

export const orderReceivedToFinal = new Histogram({
  name: 'comanda_order_received_to_final_seconds',
  help: 'Time from RECEIVED to a final status, by final status (PostgreSQL clock, one clock for both ends).',
  labelNames: ['status'] as const,
  buckets: PIPELINE_BUCKETS,
  registers: [registry],
});

export const orderStepDuration = new Histogram({
  name: 'comanda_order_step_seconds',
  help: "Time between two consecutive steps of an order's trace (e.g. RECEIVED to INVENTORY_RESERVED).",
  labelNames: ['from', 'to'] as const,
  buckets: PIPELINE_BUCKETS,
  registers: [registry],
});

export const paymentDuration = new Histogram({
  name: 'comanda_payment_duration_seconds',
  help: 'Calls to the payment gateway by result (captured, declined, error).',
  labelNames: ['result'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

export const outboxPublished = new Counter({
  name: 'comanda_outbox_published_total',
  help: 'Outbox messages the broker confirmed, by message type.',
  labelNames: ['type'] as const,
  registers: [registry],
});

export const outboxPublishFailures = new Counter({
  name: 'comanda_outbox_publish_failures_total',
  help: 'Outbox messages whose publish failed (nacked, unconfirmed or channel lost); they are retried.',
  registers: [registry],
});

export const messagesConsumed = new Counter({
  name: 'comanda_messages_consumed_total',
  help: 'Deliveries handled by consumers, by queue and outcome (acked, retried, dead-lettered).',
  labelNames: ['queue', 'outcome'] as const,
  registers: [registry],
});

export const messageProcessingDuration = new Histogram({
  name: 'comanda_message_processing_seconds',
  help: 'Time a consumer spent on one delivery, from receipt to ack, retry or dead-letter.',
  labelNames: ['queue', 'outcome'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

export const orderAcceptPhaseDuration = new Histogram({
  name: 'comanda_order_accept_phase_seconds',
  help:
    'Where the time of POST /orders goes, by phase: cache_lookup (the Redis replay cache), group_wait (queued for ' +
    'the next shared transaction), transaction (from its start to its commit); a replay from Redis has only the first.',
  labelNames: ['phase'] as const,
  buckets: [0.0005, ...LATENCY_BUCKETS],
  registers: [registry],
});

export const orderCommitGroupSize = new Histogram({
  name: 'comanda_order_commit_group_size',
  help: 'New orders committed per transaction by the API (group commit): its count is the transactions, its sum the orders.',
  buckets: [1, 2, 4, 8, 16, 32, 64],
  registers: [registry],
});

export const idempotencyOutcomes = new Counter({
  name: 'comanda_idempotency_requests_total',
  help: 'Idempotent requests by outcome: executed, replayed, in_flight (409), key_reused (422).',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const webhookAttempts = new Counter({
  name: 'comanda_webhook_attempts_total',
  help: 'Webhook delivery attempts by result (delivered, retry, failed, gone).',
  labelNames: ['result'] as const,
  registers: [registry],
});

export const webhookDeliveryDuration = new Histogram({
  name: 'comanda_webhook_delivery_seconds',
  help: "Duration of one webhook delivery attempt, by result, as the receiver's answer came back.",
  labelNames: ['result'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

/** Records one webhook attempt: for the notifier, which knows how each attempt ended. */
export function recordWebhookAttempt(result: string, seconds: number): void {
  webhookAttempts.inc({ result });
  webhookDeliveryDuration.observe({ result }, seconds);
}

/** Something that reports each webhook attempt as it is recorded, as the notifier does. */
export interface WebhookAttemptSource {
  on(event: 'attempt', listener: (e: { outcome: string; latencyMs: number }) => void): unknown;
}

/** Counts every attempt `notifier` reports: result = delivered, retry, failed or gone. */
export function observeWebhookAttempts(notifier: WebhookAttemptSource): void {
  notifier.on('attempt', (e) => recordWebhookAttempt(e.outcome, e.latencyMs / 1000));
}

// Sampled gauges: read from PostgreSQL and RabbitMQ when Prometheus scrapes, from every source registered in
// this process. They describe shared state (one outbox, one broker): every instance reports the same value,
// so dashboards take max(), not sum().

interface OutboxSample {
  pending: number;
  oldestAgeSeconds: number;
}

interface QueueSample {
  queue: string;
  messages: number;
  consumers: number;
}

const SAMPLE_TIMEOUT_MS = 1000;
/** prom-client collects metrics in parallel: gauges sharing one sample reuse it for this long. */
const SAMPLE_REUSE_MS = 250;

/** Runs every registered source at most once per scrape; a source that fails or hangs is left out. */
class SampledSources<T> {
  private readonly sources = new Set<() => Promise<T[]>>();
  private last: { at: number; values: Promise<T[]> } | undefined;

  add(source: () => Promise<T[]>): () => void {
    this.sources.add(source);
    return () => this.sources.delete(source);
  }

  sample(): Promise<T[]> {
    const now = performance.now();
    if (this.last && now - this.last.at < SAMPLE_REUSE_MS) return this.last.values;
    const values = Promise.all(
      [...this.sources].map((s) => withTimeout(s(), SAMPLE_TIMEOUT_MS).catch(() => [] as T[])),
    ).then((all) => all.flat());
    this.last = { at: now, values };
    return values;
  }
}

const outboxSources = new SampledSources<OutboxSample>();
const queueSources = new SampledSources<QueueSample>();

export const outboxPending = new Gauge({
  name: 'comanda_outbox_pending_messages',
  help: 'Outbox rows committed but not yet confirmed by the broker (sampled at scrape).',
  registers: [registry],
  async collect() {
    const samples = await outboxSources.sample();
    this.set(samples.reduce((sum, s) => sum + s.pending, 0));
  },
});

export const outboxOldestAge = new Gauge({
  name: 'comanda_outbox_oldest_pending_age_seconds',
  help: 'Age of the oldest unpublished outbox row, 0 when none waits (sampled at scrape).',
  registers: [registry],
  async collect() {
    const samples = await outboxSources.sample();
    this.set(samples.reduce((max, s) => Math.max(max, s.oldestAgeSeconds), 0));
  },
});

export const queueMessages = new Gauge({
  name: 'comanda_queue_messages',
  help: 'Messages ready in each queue, dead-letter queues included (sampled at scrape).',
  labelNames: ['queue'] as const,
  registers: [registry],
  async collect() {
    const samples = await queueSources.sample();
    this.reset();
    for (const s of samples) this.inc({ queue: s.queue }, s.messages);
  },
});

export const queueConsumers = new Gauge({
  name: 'comanda_queue_consumers',
  help: 'Consumers attached to each queue (sampled at scrape).',
  labelNames: ['queue'] as const,
  registers: [registry],
  async collect() {
    const samples = await queueSources.sample();
    this.reset();
    for (const s of samples) this.inc({ queue: s.queue }, s.consumers);
  },
});

/** Reports the outbox backlog of `db` at each scrape; returns a function that stops it. */
export function watchOutbox(db: Db): () => void {
  return outboxSources.add(async () => {
    const result = await db.raw<{ rows: { pending: number; oldest: number | null }[] }>(
      `select count(*)::int as pending,
              extract(epoch from (clock_timestamp() - min(created_at)))::float8 as oldest
         from outbox where published_at is null`,
    );
    const row = result.rows[0];
    return [{ pending: row?.pending ?? 0, oldestAgeSeconds: Math.max(0, row?.oldest ?? 0) }];
  });
}

/** How the queues of one install are named (a Topology, or anything that names queues the same way). */
export type QueueNaming = Pick<Topology, 'queue' | 'deadLetterQueue'>;

/** Reports the depth of every comanda queue (and its dead-letter queue) at each scrape; returns a stop function. */
export function watchQueues(amqp: AmqpClient, topology: QueueNaming): () => void {
  return queueSources.add(async () => {
    if (!amqp.connected) return [];
    const samples: QueueSample[] = [];
    for (const key of Object.keys(QUEUES) as QueueKey[]) {
      const names = [
        [QUEUES[key].name, topology.queue(key)],
        [`${QUEUES[key].name}.dead`, topology.deadLetterQueue(key)],
      ];
      for (const [label, name] of names) {
        // checkQueue closes its channel when the queue does not exist yet: one channel per check.
        const q = await amqp.withChannel((ch) => ch.checkQueue(name)).catch(() => undefined);
        if (q) samples.push({ queue: label, messages: q.messageCount, consumers: q.consumerCount });
      }
    }
    return samples;
  });
}

interface DeliverySample {
  pending: number;
  oldestDueAgeSeconds: number;
}

const deliverySources = new SampledSources<DeliverySample>();

export const webhookDeliveriesPending = new Gauge({
  name: 'comanda_webhook_deliveries_pending',
  help: 'Webhook deliveries not yet delivered nor given up on (sampled at scrape).',
  registers: [registry],
  async collect() {
    const samples = await deliverySources.sample();
    this.set(samples.reduce((max, s) => Math.max(max, s.pending), 0));
  },
});

export const webhookOldestDueAge = new Gauge({
  name: 'comanda_webhook_oldest_due_age_seconds',
  help: 'How long the most overdue pending delivery has been due, 0 when none is (sampled at scrape).',
  registers: [registry],
  async collect() {
    const samples = await deliverySources.sample();
    this.set(samples.reduce((max, s) => Math.max(max, s.oldestDueAgeSeconds), 0));
  },
});

/** Reports the pending webhook deliveries of `db` at each scrape; returns a function that stops it. */
export function watchWebhookDeliveries(db: Db): () => void {
  return deliverySources.add(async () => {
    const result = await db.raw<{ rows: { pending: number; overdue: number | null }[] }>(
      `select count(*)::int as pending,
              extract(epoch from (clock_timestamp() - min(next_attempt_at)
                                  filter (where next_attempt_at <= clock_timestamp())))::float8 as overdue
         from webhook_deliveries where status = 'pending'`,
    );
    const row = result.rows[0];
    return [{ pending: row?.pending ?? 0, oldestDueAgeSeconds: Math.max(0, row?.overdue ?? 0) }];
  });
}

/** What `GET /readyz` reports: each dependency up or down. */
export type ReadinessCheck = () => Promise<Record<string, 'up' | 'down'>>;

const readinessSources = new SampledSources<{ dependency: string; up: boolean }>();

export const dependencyUp = new Gauge({
  name: 'comanda_dependency_up',
  help: "1 when the api reaches the dependency (postgres, rabbitmq, redis), 0 when not: /readyz's checks (sampled at scrape).",
  labelNames: ['dependency'] as const,
  registers: [registry],
  async collect() {
    const samples = await readinessSources.sample();
    this.reset();
    for (const s of samples) this.set({ dependency: s.dependency }, s.up ? 1 : 0);
  },
});

/** Reports the readiness checks of this process at each scrape; returns a function that stops it. */
export function watchReadiness(check: ReadinessCheck): () => void {
  return readinessSources.add(async () =>
    Object.entries(await check()).map(([dependency, state]) => ({ dependency, up: state === 'up' })),
  );
}

export const METRICS_CONTENT_TYPE = registry.contentType;

/** The Prometheus text exposition of every metric of this process. */
export function renderMetrics(): Promise<string> {
  return registry.metrics();
}

export interface MetricsServer {
  url: string;
  stop(): Promise<void>;
}

/**
 * A minimal HTTP server answering `GET /metrics`, for processes without an HTTP API of their own (the worker,
 * the notifier). Port 0 picks a free port; the returned URL says which.
 */
/**
 * The metrics server of a process without an HTTP API of its own (worker, notifier, analytics): started only when
 * METRICS_PORT is set, its address logged; `watch` then starts the gauges only that server reads.
 */
export async function serveMetricsIfConfigured(
  config: { METRICS_PORT?: number | undefined; HOST: string },
  logger: Logger,
  watch: () => void = () => {},
): Promise<MetricsServer | undefined> {
  if (config.METRICS_PORT === undefined) return undefined;
  const metrics = await serveMetrics({ port: config.METRICS_PORT, host: config.HOST });
  watch();
  logger.info({ url: metrics.url }, 'metrics listening');
  return metrics;
}

export async function serveMetrics(options: { port: number; host: string }): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found: try GET /metrics\n');
      return;
    }
    renderMetrics().then(
      (text) => res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE }).end(text),
      () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host;
  return {
    url: `http://${host}:${port}/metrics`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
