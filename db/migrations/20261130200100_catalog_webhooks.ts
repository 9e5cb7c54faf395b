import type { Knex } from '../../lib/db.ts';

/**
 * The catalogue's events (product.*, inventory.*) reach operations webhook endpoints that subscribe to them: an
 * outbox row of a product becomes one delivery per such endpoint, in the statement that wrote it. A trigger,
 * because those rows are written by many statements (the order lifecycle's steps, admin changes, imports) that
 * should not each carry the webhooks component; the WHEN clause keeps it off order rows at no cost. See ADR 0008.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create function catalog_webhook_deliveries() returns trigger language plpgsql as $$
    begin
      insert into webhook_deliveries (endpoint_id, order_id, event_type, payload, correlation_id, created_at)
      select e.id, null, new.type,
             jsonb_build_object(
               'type', new.type,
               'timestamp', to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
               'data', (new.payload -> 'data') || jsonb_build_object('version', new.payload -> 'version')),
             new.headers ->> 'x-correlation-id', clock_timestamp()
        from webhook_endpoints e
       where e.enabled and e.owner = 'operations' and new.type = any(e.event_types);
      return null;
    end $$;
    create trigger catalog_webhook_deliveries after insert on outbox
      for each row when (new.aggregate_type = 'product') execute function catalog_webhook_deliveries();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(
    'drop trigger if exists catalog_webhook_deliveries on outbox; drop function if exists catalog_webhook_deliveries();',
  );
}
