import type { Knex } from '../../lib/db.ts';

/**
 * The W3C trace context of the status change that created a delivery: with tracing on, each attempt the notifier
 * makes later (on another machine, hours later for a retry) continues that order's trace.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('webhook_deliveries', (t) => {
    t.text('traceparent');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('webhook_deliveries', (t) => {
    t.dropColumn('traceparent');
  });
}
