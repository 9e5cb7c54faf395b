import type { Knex } from '../../lib/db.ts';

/**
 * The operations feed is read by position only, `(tx, id)`: that becomes its primary key, instead of a key on
 * `id` and a second index on the position. One index entry less for each feed row (about five an order).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table admin_events drop constraint admin_events_pkey;
    drop index admin_events_position;
    alter table admin_events add constraint admin_events_pkey primary key (tx, id);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table admin_events drop constraint admin_events_pkey;
    alter table admin_events add constraint admin_events_pkey primary key (id);
    create index admin_events_position on admin_events (tx, id);
  `);
}
