import type { Knex } from '../../lib/db.ts';

/**
 * Writers that run a relay of their own (the api, the worker) kick it in process after each commit, so their outbox
 * rows need no NOTIFY: a NOTIFY takes a cluster-wide lock at commit, which serialises every committing
 * transaction. They set `comanda.outbox_notify = off` on their connections; anyone else (a deployment whose relays
 * run apart, `RELAY_ENABLED=false`) still wakes the relays.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create or replace function outbox_notify() returns trigger language plpgsql as $$
    begin
      if current_setting('comanda.outbox_notify', true) is distinct from 'off' then
        perform pg_notify('comanda_outbox', '');
      end if;
      return null;
    end $$;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    create or replace function outbox_notify() returns trigger language plpgsql as $$
    begin
      perform pg_notify('comanda_outbox', '');
      return null;
    end $$;
  `);
}
