import { EventEmitter } from 'node:events';
import type { Span } from '@opentelemetry/api';
import type { Config } from '../lib/config.ts';
import type { Db } from '../lib/db.ts';
import type { Logger } from '../lib/logger.ts';
import type { Services } from '../lib/services.ts';
import { DELIVERIES_CHANNEL } from '../webhooks/deliveries.ts';
import { claimDueDeliveries, type ClaimedDelivery } from '../webhooks/dispatch.ts';
import { syncConfiguredEndpoint } from '../webhooks/endpoints.ts';
import { decideOutcome, type AttemptOutcome, type RetryPolicy } from '../webhooks/retry-schedule.ts';
import { WebhookSender } from '../webhooks/sender.ts';
import { signWebhook } from '../webhooks/signing.ts';
import { AttemptRecorder } from './attempt-recorder.ts';
import { PgListener } from '../lib/pg-listener.ts';
import { contextFrom, detached, inSpan } from '../lib/telemetry.ts';

/** Emitted after every attempt is recorded: what metrics and tests watch. */
export interface AttemptEvent {
  deliveryId: string;
  endpointId: string;
  eventType: string;
  attempt: number;
  statusCode: number | null;
  latencyMs: number;
  outcome: AttemptOutcome['kind'];
  startedAt: Date;
}

export interface RunningNotifier {
  /** Looks for due deliveries now rather than at the next poll. */
  kick(): void;
  on(event: 'attempt', listener: (e: AttemptEvent) => void): this;
  off(event: 'attempt', listener: (e: AttemptEvent) => void): this;
  /** Stops claiming, lets the attempts in flight finish and be recorded, then closes its connections. */
  stop(): Promise<void>;
}

const MAX_CLAIM = 100;

/**
 * Sends due webhook deliveries: woken by NOTIFY when a delivery is created and by a short poll (for retries that
 * came due, leases of vanished notifiers, and any missed wake-up). At most WEBHOOK_CONCURRENCY attempts run at
 * once; any number of notifiers may run side by side (see webhooks/dispatch.ts).
 */
class Notifier extends EventEmitter implements RunningNotifier {
  private readonly db: Db;
  private readonly config: Config;
  private readonly logger: Logger;
  private readonly sender: WebhookSender;
  private readonly policy: RetryPolicy;
  private readonly listener: PgListener;
  private readonly recorder: AttemptRecorder;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private pumping: Promise<void> | undefined;
  private again = false;
  /** The last claim took all it could, so more may be due as soon as a slot frees up. */
  private saturated = false;
  private stopped = false;
  private poller: NodeJS.Timeout | undefined;

  constructor(services: Services) {
    super();
    this.db = services.db;
    this.config = services.config;
    this.logger = services.logger.child({ component: 'notifier' });
    this.sender = new WebhookSender({
      timeoutMs: this.config.WEBHOOK_TIMEOUT_MS,
      allowPrivate: this.config.WEBHOOK_ALLOW_PRIVATE_URLS,
      maxSockets: this.config.WEBHOOK_CONCURRENCY,
    });
    this.policy = { schedule: this.config.WEBHOOK_RETRY_SCHEDULE, jitter: this.config.WEBHOOK_RETRY_JITTER };
    this.recorder = new AttemptRecorder(this.db);
    this.listener = new PgListener(this.db, DELIVERIES_CHANNEL, () => this.kick(), this.logger);
  }

  async start(): Promise<void> {
    const synced = await syncConfiguredEndpoint(this.db, {
      url: this.config.OPS_WEBHOOK_URL,
      secret: this.config.OPS_WEBHOOK_SECRET,
      eventTypes: this.config.OPS_WEBHOOK_EVENT_TYPES,
    });
    if (synced !== 'none') this.logger.info({ synced }, 'operations endpoint from OPS_WEBHOOK_URL');
    await this.listener.start();
    this.poller = setInterval(() => this.kick(), this.config.WEBHOOK_POLL_INTERVAL_MS);
    this.poller.unref();
    this.kick();
  }

  kick(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    // Claims belong to no trace; each attempt then joins the trace of its delivery.
    this.pumping = detached(() => this.pump())
      .catch((err: unknown) => this.logger.warn({ err }, 'could not claim deliveries; will try again'))
      .finally(() => {
        this.pumping = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async pump(): Promise<void> {
    const leaseMs = this.config.WEBHOOK_TIMEOUT_MS + this.config.WEBHOOK_LEASE_GRACE_MS;
    while (!this.stopped) {
      const free = this.config.WEBHOOK_CONCURRENCY - this.inFlight.size;
      this.saturated = free <= 0;
      if (free <= 0) return;
      const wanted = Math.min(free, MAX_CLAIM);
      const claimed = await claimDueDeliveries(this.db, wanted, leaseMs);
      for (const delivery of claimed) {
        // With tracing on, each attempt is a span of the trace of the status change that created the delivery.
        const attempt = inSpan('webhook attempt', (span) => this.deliver(delivery, span), {
          parent: contextFrom({ traceparent: delivery.traceparent }),
          attributes: {
            'comanda.webhook.delivery_id': delivery.id,
            'comanda.webhook.event_type': delivery.eventType,
            'comanda.webhook.attempt': delivery.attempt,
          },
        });
        this.track(attempt);
      }
      if (claimed.length < wanted) return;
    }
  }

  private track(work: Promise<void>): void {
    const tracked = work
      .catch((err: unknown) =>
        this.logger.warn(
          { err },
          'could not record an attempt; the delivery is sent again when its lease ends',
        ),
      )
      .finally(() => {
        this.inFlight.delete(tracked);
        if (this.saturated) this.kick();
      });
    this.inFlight.add(tracked);
  }

  private async deliver(delivery: ClaimedDelivery, span?: Span): Promise<void> {
    const maxAttempts = delivery.maxAttempts ?? this.policy.schedule.length;
    const log = this.logger.child({
      delivery_id: delivery.id,
      endpoint_id: delivery.endpointId,
      order_id: delivery.orderId,
      correlation_id: delivery.correlationId,
      attempt: delivery.attempt,
    });
    if (delivery.abandonedAt) log.warn('taking over a delivery whose notifier stopped mid-attempt');
    if (delivery.attempt > maxAttempts) {
      // The abandoned attempt was the last one: no new attempt, so a crash loop cannot retry forever.
      await this.recorder.record({
        claimed: delivery,
        startedAt: new Date(),
        response: null,
        outcome: { kind: 'failed' },
      });
      log.warn('delivery failed: its last attempt was abandoned');
      return;
    }

    const body = JSON.stringify(delivery.payload);
    const startedAt = new Date();
    const timestamp = Math.floor(startedAt.getTime() / 1000);
    const response = await this.sender.send({
      url: delivery.url,
      body,
      headers: {
        'content-type': 'application/json',
        'user-agent': 'comanda-webhooks',
        'webhook-id': delivery.id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signWebhook(delivery.secrets, delivery.id, timestamp, body),
      },
    });
    const outcome = decideOutcome(response, delivery.attempt, maxAttempts, this.policy);
    const recorded = await this.recorder.record({ claimed: delivery, startedAt, response, outcome });

    span?.setAttributes({
      'comanda.webhook.outcome': outcome.kind,
      ...(response.statusCode === null ? {} : { 'http.response.status_code': response.statusCode }),
    });
    const summary = {
      status_code: response.statusCode,
      latency_ms: response.latencyMs,
      outcome: outcome.kind,
      ...(response.error ? { error: response.error } : {}),
      ...(outcome.kind === 'retry' ? { retry_in_ms: outcome.delayMs } : {}),
    };
    if (!recorded)
      log.warn(summary, 'attempt not recorded: the delivery was taken over or deleted meanwhile');
    else if (outcome.kind === 'delivered') log.debug(summary, 'webhook delivered');
    else if (outcome.kind === 'retry') log.info(summary, 'webhook attempt failed; will retry');
    else
      log.warn(
        summary,
        outcome.kind === 'gone' ? 'receiver answered 410: endpoint disabled' : 'webhook failed',
      );

    if (recorded) {
      this.emit('attempt', {
        deliveryId: delivery.id,
        endpointId: delivery.endpointId,
        eventType: delivery.eventType,
        attempt: delivery.attempt,
        statusCode: response.statusCode,
        latencyMs: response.latencyMs,
        outcome: outcome.kind,
        startedAt,
      } satisfies AttemptEvent);
    }
    if (outcome.kind === 'retry' && outcome.delayMs < this.config.WEBHOOK_POLL_INTERVAL_MS) {
      this.kickIn(outcome.delayMs);
    }
  }

  /** A wake-up for a retry due before the next poll. */
  private kickIn(ms: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.kick();
    }, ms + 5);
    timer.unref();
    this.timers.add(timer);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.poller);
    for (const timer of this.timers) clearTimeout(timer);
    await this.listener.close();
    await this.pumping;
    await Promise.all(this.inFlight);
    this.sender.close();
  }
}

/** Starts a notifier on the given services; `stop()` before closing them. */
export async function startNotifier(services: Services): Promise<RunningNotifier> {
  const notifier = new Notifier(services);
  await notifier.start();
  return notifier;
}
