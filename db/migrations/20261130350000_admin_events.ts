import type { Knex } from '../../lib/db.ts';

/**
 * The operations console's feed: one row for everything an admin is told of live. Rows are written in the
 * transaction of the change itself (by triggers, so no writer has to remember): every message put in the outbox
 * except the lifecycle's own commands, and every webhook endpoint that goes from enabled to disabled. Dead letters
 * are recorded by the API instances that hear of them (they happen in RabbitMQ, not here).
 *
 * `tx` is the writing transaction's id: readers order by (tx, id) and read only transactions older than any still
 * running, so a row committed late never lands behind a cursor that already passed it (see ADR 0012).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table admin_events (
      id bigint generated always as identity primary key,
      tx xid8 not null default pg_current_xact_id(),
      type text not null,
      aggregate_type text not null,
      aggregate_id text not null,
      data jsonb not null default '{}',
      dedupe_key text unique,
      created_at timestamptz not null default now()
    );
    create index admin_events_position on admin_events (tx, id);

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

    create function admin_events_endpoint_disabled() returns trigger language plpgsql as $$
    begin
      insert into admin_events (type, aggregate_type, aggregate_id, data)
      values ('WebhookEndpointDisabled', 'webhook_endpoint', new.id::text,
              jsonb_build_object('url', new.url, 'owner', new.owner, 'customer_id', new.customer_id,
                                 'reason', new.disabled_reason));
      perform pg_notify('comanda_admin_events', '');
      return null;
    end $$;
    create trigger admin_events_endpoint_disabled after update of enabled on webhook_endpoints
      for each row when (old.enabled and not new.enabled) execute function admin_events_endpoint_disabled();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop trigger if exists admin_events_endpoint_disabled on webhook_endpoints;
    drop function if exists admin_events_endpoint_disabled();
    drop trigger if exists admin_events_from_outbox on outbox;
    drop function if exists admin_events_from_outbox();
    drop table if exists admin_events;
  `);
}
