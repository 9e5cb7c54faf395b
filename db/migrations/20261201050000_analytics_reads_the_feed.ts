import type { Knex } from '../../lib/db.ts';

/**
 * Analytics counts the order events of the operations feed (`admin_events`, ADR 0012) instead of three queues of
 * its own (ADR 0016): where it stands in the feed is kept in `analytics_progress`, in the same transaction as what
 * it counted, so the inbox of counted message ids goes. The cursor starts at the beginning of the feed: on a
 * database that analytics was counting from queues, the first batches count again what it had counted, which
 * changes no figure (each order's tally records the changes applied to it), and count whatever the queues still
 * held, which the feed has too.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table analytics_progress
      add column feed_tx xid8 not null default '0',
      add column feed_id bigint not null default 0;
    drop table analytics_inbox;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    create table analytics_inbox (
      message_id uuid primary key,
      processed_at timestamptz not null default now()
    );
    alter table analytics_progress drop column feed_tx, drop column feed_id;
  `);
}
