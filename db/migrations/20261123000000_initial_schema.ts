import type { Knex } from '../../lib/db.ts';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('products', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('sku').notNullable().unique();
    t.text('name').notNullable();
    t.bigInteger('price').notNullable().checkPositive();
    t.specificType('currency', 'char(3)').notNullable();
    t.integer('stock_available').notNullable().defaultTo(0);
    t.integer('stock_reserved').notNullable().defaultTo(0);
    t.timestamps(true, true);
    t.check('stock_available >= 0', [], 'products_stock_available_nonnegative');
    t.check('stock_reserved >= 0', [], 'products_stock_reserved_nonnegative');
  });

  await knex.schema.createTable('orders', (t) => {
    t.uuid('id').primary();
    t.text('customer_id').notNullable();
    t.text('status').notNullable();
    t.bigInteger('total').notNullable();
    t.specificType('currency', 'char(3)').notNullable();
    t.text('reject_reason');
    t.text('payment_token');
    t.text('correlation_id');
    t.timestamps(true, true);
    t.check(
      "status in ('RECEIVED','INVENTORY_RESERVED','CONFIRMED','REJECTED','CANCELLED','SHIPPED','DELIVERED')",
      [],
      'orders_status_known',
    );
    t.index(['customer_id', 'created_at', 'id'], 'orders_customer_recent');
  });

  await knex.schema.createTable('order_items', (t) => {
    t.bigIncrements('id');
    t.uuid('order_id').notNullable().references('orders.id').onDelete('CASCADE');
    t.uuid('product_id').notNullable().references('products.id');
    t.integer('quantity').notNullable().checkPositive();
    t.bigInteger('unit_price').notNullable();
    t.index(['order_id']);
  });

  await knex.schema.createTable('inventory_reservations', (t) => {
    t.bigIncrements('id');
    t.uuid('order_id').notNullable().references('orders.id').onDelete('CASCADE');
    t.uuid('product_id').notNullable().references('products.id');
    t.integer('quantity').notNullable().checkPositive();
    t.text('state').notNullable().defaultTo('reserved');
    t.timestamps(true, true);
    t.unique(['order_id', 'product_id']);
    t.check("state in ('reserved','released','committed')", [], 'reservations_state_known');
  });

  await knex.schema.createTable('payments', (t) => {
    t.bigIncrements('id');
    t.uuid('order_id').notNullable().unique().references('orders.id').onDelete('CASCADE');
    t.bigInteger('amount').notNullable();
    t.specificType('currency', 'char(3)').notNullable();
    t.text('status').notNullable();
    t.text('provider_ref');
    t.text('failure_reason');
    t.integer('attempts').notNullable().defaultTo(0);
    t.timestamps(true, true);
    t.check("status in ('pending','captured','declined')", [], 'payments_status_known');
  });

  await knex.schema.createTable('order_events', (t) => {
    t.bigIncrements('id');
    t.uuid('order_id').notNullable().references('orders.id').onDelete('CASCADE');
    t.text('type').notNullable();
    t.text('from_status');
    t.text('to_status');
    t.text('reason');
    t.jsonb('data').notNullable().defaultTo('{}');
    t.uuid('message_id');
    t.text('correlation_id');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['order_id', 'id']);
  });

  await knex.schema.createTable('idempotency_keys', (t) => {
    t.text('principal').notNullable();
    t.string('key', 255).notNullable();
    t.text('fingerprint').notNullable();
    t.text('state').notNullable().defaultTo('completed');
    t.integer('response_status');
    t.jsonb('response_body');
    t.jsonb('response_headers');
    t.uuid('order_id');
    t.timestamp('locked_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.primary(['principal', 'key']);
    t.index(['expires_at']);
  });

  await knex.schema.createTable('outbox', (t) => {
    t.uuid('id').primary();
    t.uuid('aggregate_id').notNullable();
    t.text('exchange').notNullable();
    t.text('type').notNullable();
    t.jsonb('payload').notNullable();
    t.jsonb('headers').notNullable().defaultTo('{}');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('published_at', { useTz: true });
    t.integer('attempts').notNullable().defaultTo(0);
    t.text('last_error');
  });
  // The relay only ever looks for unpublished rows; a partial index keeps that scan small however big the table grows.
  await knex.raw('create index outbox_unpublished on outbox (created_at) where published_at is null');

  await knex.schema.createTable('processed_messages', (t) => {
    t.text('consumer').notNullable();
    t.uuid('message_id').notNullable();
    t.timestamp('processed_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['consumer', 'message_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of [
    'processed_messages',
    'outbox',
    'idempotency_keys',
    'order_events',
    'payments',
    'inventory_reservations',
    'order_items',
    'orders',
    'products',
  ]) {
    await knex.schema.dropTableIfExists(table);
  }
}
