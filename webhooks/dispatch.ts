import type { Db } from '../lib/db.ts';
import type { DeliveryStatus, WebhookPayload } from './deliveries.ts';
import { signingSecrets } from './endpoints.ts';
import type { AttemptOutcome } from './retry-schedule.ts';
import type { WebhookResponse } from './sender.ts';

/** A delivery a notifier holds until `next_attempt_at` (its lease): nobody else sends it meanwhile. */
export interface ClaimedDelivery {
  id: string;
  endpointId: string;
  orderId: string | null;
  eventType: string;
  payload: WebhookPayload;
  /** The number of this attempt (1-based). */
  attempt: number;
  /** Null: as many as the retry schedule has. */
  maxAttempts: number | null;
  leaseId: string;
  correlationId: string | null;
  /** The trace context of the status change that created the delivery (tracing on), else null. */
  traceparent: string | null;
  url: string;
  secrets: string[];
  /** Set when the previous holder vanished mid-attempt (a crash): that attempt may or may not have arrived. */
  abandonedAt: Date | null;
}

interface ClaimRow {
  id: string;
  endpoint_id: string;
  order_id: string | null;
  event_type: string;
  payload: WebhookPayload;
  attempt_count: number;
  max_attempts: number | null;
  lease_id: string;
  correlation_id: string | null;
  traceparent: string | null;
  abandoned_lease: string | null;
  abandoned_at: Date | null;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
}

/**
 * Claims up to `limit` due deliveries of enabled endpoints, in one statement: `FOR UPDATE SKIP LOCKED` lets
 * several notifiers claim side by side without taking the same row, and the lease (`next_attempt_at` pushed
 * `leaseMs` ahead) keeps a claimed delivery from being claimed again while it is sent. If its holder dies, the
 * lease runs out and the delivery is due again: nothing is lost.
 */
export async function claimDueDeliveries(db: Db, limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
  const result: { rows: ClaimRow[] } = await db.raw(
    `with due as (
       select d.id, d.lease_id as abandoned_lease, d.claimed_at as abandoned_at
         from webhook_deliveries d
         join webhook_endpoints e on e.id = d.endpoint_id
        where d.status = 'pending' and d.next_attempt_at <= now() and e.enabled
        order by d.next_attempt_at
        limit ?
          for update of d skip locked
     )
     update webhook_deliveries d
        set attempt_count = d.attempt_count + 1,
            lease_id = gen_random_uuid(),
            claimed_at = clock_timestamp(),
            next_attempt_at = clock_timestamp() + make_interval(secs => ?),
            updated_at = now()
       from due, webhook_endpoints e
      where d.id = due.id and e.id = d.endpoint_id
  returning d.id, d.endpoint_id, d.order_id, d.event_type, d.payload, d.attempt_count, d.max_attempts,
            d.lease_id, d.correlation_id, d.traceparent, due.abandoned_lease, due.abandoned_at,
            e.url, e.secret, e.previous_secret, e.previous_secret_expires_at`,
    [limit, leaseMs / 1000],
  );
  const now = new Date();
  return result.rows.map((r) => ({
    id: r.id,
    endpointId: r.endpoint_id,
    orderId: r.order_id,
    eventType: r.event_type,
    payload: r.payload,
    attempt: r.attempt_count,
    maxAttempts: r.max_attempts,
    leaseId: r.lease_id,
    correlationId: r.correlation_id,
    traceparent: r.traceparent,
    url: r.url,
    secrets: signingSecrets(r, now),
    abandonedAt: r.abandoned_lease ? r.abandoned_at : null,
  }));
}

export const ABANDONED_ERROR =
  'the notifier stopped before this attempt finished; it may or may not have arrived';

/** One attempt, finished: `response` is null when none was made (an abandoned delivery with no attempts left). */
export interface FinishedAttempt {
  claimed: ClaimedDelivery;
  startedAt: Date;
  response: WebhookResponse | null;
  outcome: AttemptOutcome;
}

const STATUS_AFTER: Record<AttemptOutcome['kind'], DeliveryStatus> = {
  delivered: 'delivered',
  retry: 'pending',
  failed: 'failed',
  gone: 'failed',
};

/**
 * Records finished attempts and what follows from each, in one transaction, for the deliveries whose lease is
 * still ours (else the delivery was taken over or deleted, and its new holder records its own). Returns, per
 * attempt, whether it was recorded. One statement per table whatever the batch size: under load the notifier
 * records many attempts per round trip.
 */
export async function finishAttempts(db: Db, finished: FinishedAttempt[]): Promise<boolean[]> {
  if (finished.length === 0) return [];
  return db.transaction(async (tx) => {
    const rows = finished.map(({ claimed, startedAt, response, outcome }) => ({
      id: claimed.id,
      lease_id: claimed.leaseId,
      status: STATUS_AFTER[outcome.kind],
      delay_s: outcome.kind === 'retry' ? outcome.delayMs / 1000 : null,
      started_at: startedAt.toISOString(),
      status_code: response?.statusCode ?? null,
      error:
        response === null
          ? ABANDONED_ERROR
          : (response.error ?? (outcome.kind === 'delivered' ? null : `answered ${response.statusCode}`)),
    }));
    const updated: { rows: { id: string }[] } = await tx.raw(
      `update webhook_deliveries d
          set status = v.status,
              lease_id = null,
              next_attempt_at = case when v.status = 'pending'
                                     then now() + make_interval(secs => v.delay_s) else d.next_attempt_at end,
              delivered_at = case when v.status = 'delivered' then now() else d.delivered_at end,
              last_attempt_at = v.started_at,
              last_status_code = v.status_code,
              last_error = v.error,
              updated_at = now()
         from jsonb_to_recordset(?::jsonb) as v(id uuid, lease_id uuid, status text, delay_s float8,
                                                started_at timestamptz, status_code int, error text)
        where d.id = v.id and d.lease_id = v.lease_id
    returning d.id`,
      [JSON.stringify(rows)],
    );
    const recorded = new Set(updated.rows.map((r) => r.id));
    const mine = finished.filter((f) => recorded.has(f.claimed.id));

    const attempts = mine.flatMap(({ claimed, startedAt, response }) => [
      ...(claimed.abandonedAt
        ? [
            {
              delivery_id: claimed.id,
              attempt: claimed.attempt - 1,
              url: claimed.url,
              started_at: claimed.abandonedAt,
              error: ABANDONED_ERROR,
            },
          ]
        : []),
      ...(response
        ? [
            {
              delivery_id: claimed.id,
              attempt: claimed.attempt,
              url: claimed.url,
              started_at: startedAt,
              status_code: response.statusCode,
              latency_ms: response.latencyMs,
              error: response.error,
              response_excerpt: response.responseExcerpt,
            },
          ]
        : []),
    ]);
    if (attempts.length) await tx('webhook_attempts').insert(attempts);

    for (const { claimed, startedAt } of mine.filter((f) => f.outcome.kind === 'gone')) {
      const reason = `the receiver answered 410 Gone at ${startedAt.toISOString()}`;
      await tx('webhook_endpoints')
        .where({ id: claimed.endpointId })
        .update({ enabled: false, disabled_reason: reason, updated_at: tx.fn.now() });
      await tx('webhook_deliveries')
        .where({ endpoint_id: claimed.endpointId, status: 'pending' })
        .update({ status: 'failed', last_error: `endpoint disabled: ${reason}`, updated_at: tx.fn.now() });
    }
    return finished.map((f) => recorded.has(f.claimed.id));
  });
}
