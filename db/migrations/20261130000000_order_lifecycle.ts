import type { Knex } from '../../lib/db.ts';

// The statuses of orders/lifecycle.ts as they were when this ran (a test checks the constraint still matches).
const STATUSES = [
  'RECEIVED',
  'INVENTORY_RESERVED',
  'AWAITING_PAYMENT',
  'CONFIRMED',
  'PROCESSING',
  'SHIPPED',
  'DELIVERED',
  'REJECTED',
  'CANCELLED',
];

const list = (values: string[]) => values.map((v) => `'${v}'`).join(',');

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('orders', (t) => {
    // Grows by one with every change, so consumers and webhook receivers can order changes and drop stale ones.
    t.integer('version').notNullable().defaultTo(1);
    t.text('payment_method').notNullable().defaultTo('card');
    t.timestamp('payment_due_at', { useTz: true });
    t.text('cancel_reason');
    t.text('cancel_note');
    t.text('tracking_number');
    t.text('carrier');
    t.timestamp('shipped_at', { useTz: true });
    t.timestamp('delivered_at', { useTz: true });
    t.text('delivery_location');
    t.check("payment_method in ('card','later')", [], 'orders_payment_method_known');
  });
  await knex.raw('alter table orders drop constraint orders_status_known');
  await knex.raw(
    `alter table orders add constraint orders_status_known check (status in (${list(STATUSES)}))`,
  );
  // The payment window's sweep looks only at orders still waiting for their payment.
  await knex.raw(
    "create index orders_payment_due on orders (payment_due_at) where status = 'AWAITING_PAYMENT'",
  );

  await knex.schema.alterTable('payments', (t) => {
    // The payment request (message id) whose charge is in flight: a second one waits until it is settled.
    t.uuid('request_id');
    t.text('refund_ref');
    t.bigInteger('refunded_amount');
    t.timestamp('refunded_at', { useTz: true });
  });
  await knex.raw('alter table payments drop constraint payments_status_known');
  await knex.raw(
    "alter table payments add constraint payments_status_known check (status in ('pending','processing','captured','declined','refunded'))",
  );

  // 'returned': stock a confirmed order had taken, put back on the shelf when it was cancelled.
  await knex.raw('alter table inventory_reservations drop constraint reservations_state_known');
  await knex.raw(
    "alter table inventory_reservations add constraint reservations_state_known check (state in ('reserved','released','committed','returned'))",
  );

  // Messages of any aggregate go through the one outbox.
  await knex.schema.alterTable('outbox', (t) => {
    t.text('aggregate_type').notNullable().defaultTo('order');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('outbox', (t) => t.dropColumn('aggregate_type'));
  await knex.raw('alter table inventory_reservations drop constraint reservations_state_known');
  await knex.raw(
    "alter table inventory_reservations add constraint reservations_state_known check (state in ('reserved','released','committed'))",
  );
  await knex.raw('alter table payments drop constraint payments_status_known');
  await knex.raw(
    "alter table payments add constraint payments_status_known check (status in ('pending','captured','declined'))",
  );
  await knex.schema.alterTable('payments', (t) => {
    for (const c of ['request_id', 'refund_ref', 'refunded_amount', 'refunded_at']) t.dropColumn(c);
  });
  await knex.raw('drop index orders_payment_due');
  await knex.raw('alter table orders drop constraint orders_status_known');
  await knex.raw(
    "alter table orders add constraint orders_status_known check (status in ('RECEIVED','INVENTORY_RESERVED','CONFIRMED','REJECTED','CANCELLED','SHIPPED','DELIVERED'))",
  );
  await knex.schema.alterTable('orders', (t) => {
    t.dropChecks(['orders_payment_method_known']);
    for (const c of [
      'version',
      'payment_method',
      'payment_due_at',
      'cancel_reason',
      'cancel_note',
      'tracking_number',
      'carrier',
      'shipped_at',
      'delivered_at',
      'delivery_location',
    ])
      t.dropColumn(c);
  });
}
