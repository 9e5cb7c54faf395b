import type { Knex } from '../../lib/db.ts';

/**
 * Room on each page for the updates that follow an insert within a second: the relay's claim of an outbox row, and
 * an order's status changes. On a full page the new version of a row goes to another page, and PostgreSQL first
 * writes a lock record for the old one (pg_waldump at 300 orders/s: two lock records per outbox row where one is
 * the claim's own). With room left, the new version stays on the row's page.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table outbox set (fillfactor = 50);
    alter table orders set (fillfactor = 70);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table outbox reset (fillfactor);
    alter table orders reset (fillfactor);
  `);
}
