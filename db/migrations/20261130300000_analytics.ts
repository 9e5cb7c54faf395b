import type { Knex } from '../../lib/db.ts';

/**
 * The analytics component's tables (docs/analytics.md). Only `analytics/` writes them; `npm run analytics:rebuild`
 * can recreate their contents from the order history at any time.
 */
export async function up(knex: Knex): Promise<void> {
  // Additive figures per time bucket: counts, money in minor units, and histogram bins (metric, dim = the bin).
  await knex.schema.createTable('analytics_rollups', (t) => {
    t.text('granularity').notNullable();
    t.text('metric').notNullable();
    t.timestamp('bucket', { useTz: true }).notNullable();
    t.text('currency').notNullable();
    // A reject or cancel reason, a product id, a histogram bin; '' when the metric has no dimension.
    t.text('dim').notNullable().defaultTo('');
    t.bigInteger('value').notNullable();
    // A metric's range of buckets is one contiguous stretch of the index: every query reads just that.
    t.primary(['granularity', 'metric', 'bucket', 'currency', 'dim']);
    t.check("granularity in ('minute','hour','day')", [], 'analytics_rollups_granularity_known');
  });

  // What analytics knows of each order: enough to apply each effect once, whatever order the messages come in.
  await knex.schema.createTable('analytics_orders', (t) => {
    t.uuid('order_id').primary();
    t.text('currency');
    t.bigInteger('total');
    t.jsonb('items');
    t.timestamp('received_at', { useTz: true });
    t.timestamp('confirmed_at', { useTz: true });
    t.timestamp('outcome_at', { useTz: true });
    // The status of the newest version seen: an older change arriving late does not move it back.
    t.text('status');
    t.integer('version').notNullable().defaultTo(0);
    // The effects already counted for this order: 'received', 'confirmed', 'refund:7', 'products', …
    t.specificType('applied', 'text[]').notNullable().defaultTo('{}');
    t.timestamp('last_event_at', { useTz: true });
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['last_event_at']);
  });

  // Names for product ids, from the lines of the orders analytics has seen.
  await knex.schema.createTable('analytics_products', (t) => {
    t.uuid('product_id').primary();
    t.text('sku');
    t.text('name');
  });

  // The inbox: a message id here was counted, in the same transaction as its rollup changes.
  await knex.schema.createTable('analytics_inbox', (t) => {
    t.uuid('message_id').primary();
    t.timestamp('processed_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['analytics_inbox', 'analytics_products', 'analytics_orders', 'analytics_rollups']) {
    await knex.schema.dropTableIfExists(table);
  }
}
