import type { Knex } from '../../lib/db.ts';

/**
 * What a statement that writes outbox rows brings with it, in one trigger call per statement instead of three:
 * the operations feed's rows (ADR 0012) and the catalogue's deliveries to operations endpoints, which were a row
 * trigger called once per product message (a worker's batch writes one per order line). The wake-up NOTIFY
 * trigger is skipped by its WHEN clause on the connections of writers that kick their own relay
 * (`comanda.outbox_notify = off`), where it used to be called only to return at once.
 */
const OUTBOX_INSERTED = `
  create function outbox_inserted() returns trigger language plpgsql as $$
  begin
    insert into admin_events (type, aggregate_type, aggregate_id, data, created_at)
    select n.type, coalesce(n.aggregate_type, 'order'), n.aggregate_id::text, n.payload, n.created_at
      from new_rows n
     where n.exchange <> 'orderCommands'
     order by n.created_at;

    -- Inserting no delivery would still fire the deliveries' own wake-up trigger: insert only when one listens.
    if exists (select 1 from new_rows n
                 join webhook_endpoints e on e.enabled and e.owner = 'operations' and n.type = any(e.event_types)
                where n.aggregate_type = 'product') then
      insert into webhook_deliveries (endpoint_id, order_id, event_type, payload, correlation_id, created_at)
      select e.id, null, n.type,
             jsonb_build_object(
               'type', n.type,
               'timestamp', to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
               'data', (n.payload -> 'data') || jsonb_build_object('version', n.payload -> 'version')),
             n.headers ->> 'x-correlation-id', clock_timestamp()
        from new_rows n
        join webhook_endpoints e on e.enabled and e.owner = 'operations' and n.type = any(e.event_types)
       where n.aggregate_type = 'product'
       order by n.created_at;
    end if;
    return null;
  end $$;
  create trigger outbox_inserted after insert on outbox
    referencing new table as new_rows for each statement execute function outbox_inserted();`;

const NOTIFY_UNLESS_OFF = `
  create trigger outbox_notify after insert on outbox for each statement
    when (current_setting('comanda.outbox_notify', true) is distinct from 'off')
    execute function outbox_notify();`;

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    drop trigger admin_events_from_outbox on outbox;
    drop function admin_events_from_outbox();
    drop trigger catalog_webhook_deliveries on outbox;
    drop function catalog_webhook_deliveries();
    ${OUTBOX_INSERTED}
    drop trigger outbox_notify on outbox;
    ${NOTIFY_UNLESS_OFF}
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop trigger outbox_inserted on outbox;
    drop function outbox_inserted();
    create function admin_events_from_outbox() returns trigger language plpgsql as $$
    begin
      insert into admin_events (type, aggregate_type, aggregate_id, data, created_at)
      select n.type, coalesce(n.aggregate_type, 'order'), n.aggregate_id::text, n.payload, n.created_at
        from new_rows n
       where n.exchange <> 'orderCommands'
       order by n.created_at;
      return null;
    end $$;
    create trigger admin_events_from_outbox after insert on outbox
      referencing new table as new_rows for each statement execute function admin_events_from_outbox();
    create function catalog_webhook_deliveries() returns trigger language plpgsql as $$
    begin
      if not exists (select 1 from webhook_endpoints e
                      where e.enabled and e.owner = 'operations' and new.type = any(e.event_types)) then
        return null;
      end if;
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
    drop trigger outbox_notify on outbox;
    create trigger outbox_notify after insert on outbox for each statement execute function outbox_notify();
  `);
}
