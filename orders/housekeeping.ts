import type { Db } from '../lib/db.ts';

export interface Reaped {
  idempotencyKeys: number;
  outboxRows: number;
}

/**
 * Deletes what has served its time: idempotency keys past their expiry (a retry after that is a new request) and
 * outbox rows published more than `outboxRetentionHours` ago. In bounded batches, so it never holds long locks;
 * safe to run from any number of processes at once.
 */
export async function reapExpired(
  db: Db,
  options: { outboxRetentionHours: number; batch?: number },
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
  return { idempotencyKeys: keys.rowCount, outboxRows: outbox.rowCount };
}
