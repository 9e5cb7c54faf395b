import type { Db } from '../lib/db.ts';

export interface Reaped {
  idempotencyKeys: number;
  outboxRows: number;
  webhookDeliveries: number;
  adminEvents: number;
}

/**
 * Deletes what has served its time: idempotency keys past their expiry (a retry after that is a new request),
 * outbox rows published more than `outboxRetentionHours` ago, and settled webhook deliveries (delivered or
 * failed, with their attempts) older than `deliveryRetentionHours` (kept for ever when unset), and operations-feed
 * events as old as the outbox rows they were copied from (no console resumes from that far back) once analytics has
 * counted them (it reads them: ADR 0016). In bounded batches, so it never holds long locks;
 * safe to run from any number of processes at once.
 */
export async function reapExpired(
  db: Db,
  options: { outboxRetentionHours: number; deliveryRetentionHours?: number; batch?: number },
): Promise<Reaped> {
  const batch = options.batch ?? 5000;
  const keys = await db.raw<{ rowCount: number }>(
    `delete from idempotency_keys where ctid in (
       select ctid from idempotency_keys where expires_at <= now() limit ? for update skip locked)`,
    [batch],
  );
  const outbox = await db.raw<{ rowCount: number }>(
    `delete from outbox where id in (
       select id from outbox
        where published_at is not null and published_at < now() - make_interval(hours => ?)
        limit ? for update skip locked)`,
    [options.outboxRetentionHours, batch],
  );
  const adminEvents = await db.raw<{ rowCount: number }>(
    `delete from admin_events where ctid in (
       select e.ctid from admin_events e, analytics_progress p
        where e.created_at < now() - make_interval(hours => ?) and (e.tx, e.id) <= (p.feed_tx, p.feed_id)
        limit ? for update of e skip locked)`,
    [options.outboxRetentionHours, batch],
  );
  let webhookDeliveries = 0;
  if (options.deliveryRetentionHours !== undefined) {
    const deliveries = await db.raw<{ rowCount: number }>(
      `delete from webhook_deliveries where id in (
         select id from webhook_deliveries
          where status <> 'pending' and updated_at < now() - make_interval(hours => ?)
          limit ? for update skip locked)`,
      [options.deliveryRetentionHours, batch],
    );
    webhookDeliveries = deliveries.rowCount;
  }
  return {
    idempotencyKeys: keys.rowCount,
    outboxRows: outbox.rowCount,
    webhookDeliveries,
    adminEvents: adminEvents.rowCount,
  };
}
