import type { Knex } from '../../lib/db.ts';

/**
 * Every transaction that writes outbox rows wakes the relays: a statement-level trigger sends NOTIFY, which
 * PostgreSQL delivers only on commit and folds into one per transaction. No extra round trip for the writers.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create function outbox_notify() returns trigger language plpgsql as $$
    begin
      perform pg_notify('comanda_outbox', '');
      return null;
    end $$;
    create trigger outbox_notify after insert on outbox for each statement execute function outbox_notify();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop trigger if exists outbox_notify on outbox; drop function if exists outbox_notify();');
}
