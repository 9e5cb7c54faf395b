import type { Knex } from '../../lib/db.ts';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('webhook_endpoints', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    // 'operations' endpoints hear about every order; 'customer' endpoints only about customer_id's orders.
    t.text('owner').notNullable();
    t.text('customer_id');
    t.text('url').notNullable();
    t.text('description').notNullable().defaultTo('');
    t.specificType('event_types', 'text[]').notNullable();
    t.text('secret').notNullable();
    t.text('previous_secret');
    t.timestamp('previous_secret_expires_at', { useTz: true });
    t.boolean('enabled').notNullable().defaultTo(true);
    t.text('disabled_reason');
    // 'api' endpoints are managed through the API; the one 'config' endpoint mirrors OPS_WEBHOOK_URL.
    t.text('source').notNullable().defaultTo('api');
    t.text('created_by');
    t.timestamps(true, true);
    t.check("owner in ('operations','customer')", [], 'webhook_endpoints_owner_known');
    t.check(
      "(owner = 'customer') = (customer_id is not null)",
      [],
      'webhook_endpoints_customer_iff_customer_owner',
    );
    t.check("source in ('api','config')", [], 'webhook_endpoints_source_known');
    t.index(['customer_id']);
  });
  await knex.raw(
    "create unique index webhook_endpoints_one_config on webhook_endpoints (source) where source = 'config'",
  );

  await knex.schema.createTable('webhook_deliveries', (t) => {
    // Also the Standard Webhooks `webhook-id`: the same for every attempt of one delivery.
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('endpoint_id').notNullable().references('webhook_endpoints.id').onDelete('CASCADE');
    t.uuid('order_id').references('orders.id').onDelete('CASCADE');
    t.text('event_type').notNullable();
    t.jsonb('payload').notNullable();
    t.text('status').notNullable().defaultTo('pending');
    t.integer('attempt_count').notNullable().defaultTo(0);
    // Null: as many as the notifier's WEBHOOK_RETRY_SCHEDULE has; a manual retry sets one more than made so far.
    t.integer('max_attempts');
    t.timestamp('next_attempt_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    // Set while a notifier holds the delivery (until next_attempt_at); still set at the next claim = abandoned.
    t.uuid('lease_id');
    t.timestamp('claimed_at', { useTz: true });
    t.timestamp('last_attempt_at', { useTz: true });
    t.integer('last_status_code');
    t.text('last_error');
    t.timestamp('delivered_at', { useTz: true });
    t.text('correlation_id');
    t.timestamps(true, true);
    t.check("status in ('pending','delivered','failed')", [], 'webhook_deliveries_status_known');
    t.index(['endpoint_id', 'created_at', 'id']);
    t.index(['order_id']);
  });
  // Notifiers only ever look for pending deliveries that are due: keep that scan small however big the log grows.
  await knex.raw(
    "create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending'",
  );

  await knex.schema.createTable('webhook_attempts', (t) => {
    t.bigIncrements('id');
    t.uuid('delivery_id').notNullable().references('webhook_deliveries.id').onDelete('CASCADE');
    t.integer('attempt').notNullable();
    t.text('url').notNullable();
    t.timestamp('started_at', { useTz: true }).notNullable();
    t.integer('status_code');
    t.integer('latency_ms');
    t.text('error');
    t.text('response_excerpt');
    t.index(['delivery_id', 'id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('webhook_attempts');
  await knex.schema.dropTableIfExists('webhook_deliveries');
  await knex.schema.dropTableIfExists('webhook_endpoints');
}
