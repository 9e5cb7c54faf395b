import type { Knex } from '../../lib/db.ts';

/**
 * A statement that creates webhook deliveries wakes the notifiers on commit, whoever wrote it (deliveries are
 * written inside the order's own statements); a statement that created none wakes nobody.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create function webhook_deliveries_notify() returns trigger language plpgsql as $$
    begin
      if exists (select 1 from new_rows) then
        perform pg_notify('comanda_webhook_deliveries', '');
      end if;
      return null;
    end $$;
    create trigger webhook_deliveries_notify after insert on webhook_deliveries
      referencing new table as new_rows for each statement execute function webhook_deliveries_notify();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(
    'drop trigger if exists webhook_deliveries_notify on webhook_deliveries; drop function if exists webhook_deliveries_notify();',
  );
}
