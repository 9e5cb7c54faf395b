import type { Db } from '../lib/db.ts';

/**
 * One event of the operations console's feed. `id` is its position, `<tx>-<row>`: the writing transaction's id
 * and the row's, which is the order the feed sends in and what `Last-Event-ID` gives back.
 */
export interface AdminFeedEvent {
  id: string;
  type: string;
  aggregate_type: string;
  aggregate_id: string;
  data: Record<string, unknown>;
  created_at: string;
}

/** Where a feed stands: after the row `id` of transaction `tx` (`tx` as digits: xid8 outgrows a JS number). */
export interface AdminCursor {
  tx: string;
  id: number;
}

/** The NOTIFY channel of admin events that no message announces (see the admin_events migration). */
export const ADMIN_EVENTS_CHANNEL = 'comanda_admin_events';

export const ADMIN_FEED_START: AdminCursor = { tx: '0', id: 0 };

const POSITION = /^(\d{1,20})-(\d{1,15})$/;

/** Reads an event id the feed sent (`<tx>-<row>`); undefined if it is not one. */
export function parseAdminEventId(value: string): AdminCursor | undefined {
  const m = POSITION.exec(value);
  return m ? { tx: m[1], id: Number(m[2]) } : undefined;
}

export const formatAdminEventId = (c: AdminCursor): string => `${c.tx}-${c.id}`;

export interface AdminFeedBatch {
  events: AdminFeedEvent[];
  /** Whether there are rows after these that cannot be sent yet: an older transaction is still running. */
  pending: boolean;
}

interface Row {
  id: string;
  tx: string;
  type: string;
  aggregate_type: string;
  aggregate_id: string;
  data: Record<string, unknown>;
  created_at: Date;
  settled: boolean;
}

/**
 * The events after `cursor`, oldest first, at most `limit`. Only rows of transactions older than every
 * transaction still running are returned (`tx < xmin` of the current snapshot): no row can commit later with a
 * position before them, so a feed that moves its cursor past them never skips one. Rows of newer transactions
 * wait for the next read, which `pending` asks for.
 */
export async function adminEventsAfter(db: Db, cursor: AdminCursor, limit = 500): Promise<AdminFeedBatch> {
  const { rows } = await db.raw<{ rows: Row[] }>(
    `select e.id::text as id, e.tx::text as tx, e.type, e.aggregate_type, e.aggregate_id, e.data, e.created_at,
            e.tx < pg_snapshot_xmin(pg_current_snapshot()) as settled
       from admin_events e
      where (e.tx, e.id) > (?::text::xid8, ?)
      order by e.tx, e.id
      limit ?`,
    [cursor.tx, cursor.id, limit],
  );
  const settled = rows.filter((r) => r.settled);
  return {
    events: settled.map((r) => ({
      id: `${r.tx}-${r.id}`,
      type: r.type,
      aggregate_type: r.aggregate_type,
      aggregate_id: r.aggregate_id,
      data: r.data,
      created_at: r.created_at.toISOString(),
    })),
    pending: settled.length < rows.length,
  };
}

/** The position of the newest event a feed could send now: where a feed of "from now on" starts. */
export async function latestAdminCursor(db: Db): Promise<AdminCursor> {
  const { rows } = await db.raw<{ rows: { tx: string; id: string }[] }>(
    `select tx::text as tx, id from admin_events
      where tx < pg_snapshot_xmin(pg_current_snapshot())
      order by tx desc, id desc limit 1`,
  );
  return rows[0] ? { tx: rows[0].tx, id: Number(rows[0].id) } : ADMIN_FEED_START;
}

export interface DeadLetterNotice {
  messageId: string;
  /** The queue it was dead-lettered from. */
  queue: string;
  reason: string;
  type: string | null;
  /** When, as the dead-lettering said (its header), so each time a message dies is one event. */
  deadAt: string;
}

/**
 * Records that a message was dead-lettered. Every API instance hears of it through its own queue; the dedupe key
 * makes that one event however many instances record it. Returns whether this call recorded it.
 */
export async function recordDeadLetter(db: Db, notice: DeadLetterNotice): Promise<boolean> {
  const inserted = await db('admin_events')
    .insert({
      type: 'MessageDeadLettered',
      aggregate_type: 'message',
      aggregate_id: notice.messageId,
      data: { queue: notice.queue, reason: notice.reason, type: notice.type },
      dedupe_key: `dead:${notice.queue}:${notice.messageId}:${notice.deadAt}`,
    })
    // The unique index covers only rows with a key: the conflict target names its predicate.
    .onConflict(db.raw('(dedupe_key) where dedupe_key is not null'))
    .ignore()
    .returning('id');
  return inserted.length > 0;
}
