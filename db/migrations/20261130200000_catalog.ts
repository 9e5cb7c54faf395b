import type { Knex } from '../../lib/db.ts';

// The reasons of catalog/stock.ts's movements as they were when this ran.
const REASONS = ['restock', 'adjustment', 'import', 'reservation', 'release', 'sale', 'return'];

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('products', (t) => {
    // An inactive product cannot be ordered but keeps its history (orders, ledger).
    t.boolean('active').notNullable().defaultTo(true);
    // Available stock below this is "low": crossing it announces inventory.low_stock (and back_in_stock).
    t.integer('low_stock_threshold').notNullable().defaultTo(10);
    // One more with every change of the product or its stock: the version of its messages.
    t.integer('version').notNullable().defaultTo(1);
    t.check('low_stock_threshold >= 0', [], 'products_low_stock_threshold_nonnegative');
  });

  // The stock ledger: `delta` is the change of stock_available, `reserved_delta` that of stock_reserved, so for
  // every product sum(delta) = stock_available and sum(reserved_delta) = stock_reserved.
  await knex.schema.createTable('stock_movements', (t) => {
    t.bigIncrements('id');
    t.uuid('product_id').notNullable().references('products.id');
    t.integer('delta').notNullable();
    t.integer('reserved_delta').notNullable().defaultTo(0);
    t.text('reason').notNullable();
    // No foreign key: the ledger outlives whatever happens to orders, and the hot path skips the check.
    t.uuid('order_id');
    t.text('actor').notNullable();
    t.text('note');
    t.integer('stock_after').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['product_id', 'id']);
    t.check(`reason in (${REASONS.map((r) => `'${r}'`).join(',')})`, [], 'stock_movements_reason_known');
  });

  // The opening balance of every product that exists already, so the ledger adds up from the start.
  await knex.raw(
    `insert into stock_movements (product_id, delta, reserved_delta, reason, actor, note, stock_after)
     select id, stock_available, stock_reserved, 'adjustment', 'migration', 'opening balance', stock_available
       from products`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('stock_movements');
  await knex.schema.alterTable('products', (t) => {
    t.dropChecks(['products_low_stock_threshold_nonnegative']);
    for (const c of ['active', 'low_stock_threshold', 'version']) t.dropColumn(c);
  });
}
