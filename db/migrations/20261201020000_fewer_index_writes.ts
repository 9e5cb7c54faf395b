import type { Knex } from '../../lib/db.ts';

/**
 * Index entries nobody reads, measured with pg_waldump at 300 orders/s (docs/performance.md):
 *
 * - `admin_events.dedupe_key` is set only on dead-letter notices, yet its unique index took an entry for every
 *   feed row, about five an order. It now indexes only the rows that have a key; the one writer that uses it
 *   names the index's predicate in its ON CONFLICT.
 * - `analytics_orders.last_event_at` was indexed only to answer "how fresh are the figures" (its maximum), and
 *   because every tally update changes it, no update of a tally could be HOT: each one added an entry to both
 *   indexes. That maximum now lives in a one-row table, `analytics_progress`, raised at the end of every batch,
 *   and tally pages keep room for their updates (fill factor 75).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table admin_events drop constraint admin_events_dedupe_key_key;
    create unique index admin_events_dedupe_key on admin_events (dedupe_key) where dedupe_key is not null;

    create table analytics_progress (
      only_row boolean primary key default true check (only_row),
      newest_event_at timestamptz
    );
    insert into analytics_progress (newest_event_at) select max(last_event_at) from analytics_orders;
    drop index analytics_orders_last_event_at_index;
    alter table analytics_orders set (fillfactor = 75);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table analytics_orders reset (fillfactor);
    create index analytics_orders_last_event_at_index on analytics_orders (last_event_at);
    drop table analytics_progress;

    drop index admin_events_dedupe_key;
    alter table admin_events add constraint admin_events_dedupe_key_key unique (dedupe_key);
  `);
}
