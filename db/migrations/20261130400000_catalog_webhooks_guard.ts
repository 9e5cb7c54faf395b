import type { Knex } from '../../lib/db.ts';

/**
 * The catalogue's webhook trigger runs for every product outbox row — on the order path, one inventory.updated
 * per order line. Most installations have no operations endpoint for these events: look first, and insert (which
 * also fires the deliveries' own wake-up trigger) only when one listens.
 */
const INSERT_DELIVERIES = `
      insert into webhook_deliveries (endpoint_id, order_id, event_type, payload, correlation_id, created_at)
      select e.id, null, new.type,
             jsonb_build_object(
               'type', new.type,
               'timestamp', to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
               'data', (new.payload -> 'data') || jsonb_build_object('version', new.payload -> 'version')),
             new.headers ->> 'x-correlation-id', clock_timestamp()
        from webhook_endpoints e
       where e.enabled and e.owner = 'operations' and new.type = any(e.event_types);
`;

const GUARD = `
      if not exists (select 1 from webhook_endpoints e
                      where e.enabled and e.owner = 'operations' and new.type = any(e.event_types)) then
        return null;
      end if;`;

function triggerFunction(guarded: boolean): string {
  return `
    create or replace function catalog_webhook_deliveries() returns trigger language plpgsql as $$
    begin${guarded ? GUARD : ''}${INSERT_DELIVERIES}
      return null;
    end $$;`;
}

export async function up(knex: Knex): Promise<void> {
  await knex.raw(triggerFunction(true));
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(triggerFunction(false));
}
