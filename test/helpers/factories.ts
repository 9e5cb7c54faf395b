import { randomUUID } from 'node:crypto';
import { insertProductsCtes } from '../../catalog/products.ts';
import { changeStock, withCtes } from '../../catalog/stock.ts';
import type { Db } from '../../lib/db.ts';
import { PROCESSED_STATUSES, type OrderStatus } from '../../orders/lifecycle.ts';
import { until } from './pipeline.ts';

export interface TestProduct {
  id: string;
  sku: string;
  name: string;
  price: number;
  currency: string;
  stock_available: number;
  stock_reserved: number;
}

/**
 * A product with its own sku, so tests never share stock; made the way the catalogue makes them (its opening stock
 * in the ledger, product.created and inventory.updated in the outbox).
 */
export async function buildProduct(
  db: Db,
  overrides: Partial<Omit<TestProduct, 'id' | 'stock_reserved'>> & { low_stock_threshold?: number } = {},
): Promise<TestProduct> {
  const { stock_available = 100, ...fields } = overrides;
  const row = {
    id: randomUUID(),
    sku: `SKU-${randomUUID().slice(0, 8)}`,
    name: 'Test product',
    price: 1000,
    currency: 'EUR',
    low_stock_threshold: 10,
    ...fields,
    stock: stock_available,
  };
  await db.transaction(async (tx) => {
    await withCtes(
      tx,
      insertProductsCtes(tx, [row], 'restock', { actor: 'test', correlationId: randomUUID() }),
    ).select(tx.raw('1'));
  });
  return (await db<TestProduct>('products').where({ id: row.id }).first())!;
}

export async function stockOf(db: Db, productId: string): Promise<{ available: number; reserved: number }> {
  const row = await db<TestProduct>('products').where({ id: productId }).first();
  return { available: row!.stock_available, reserved: row!.stock_reserved };
}

/** Waits until the order is in one of `statuses`, and returns the status it found. */
export async function waitForStatus(
  db: Db,
  orderId: string,
  statuses: Iterable<OrderStatus>,
  timeoutMs = 10_000,
): Promise<OrderStatus> {
  const wanted = new Set(statuses);
  let status: OrderStatus | undefined;
  await until(
    async () => {
      status = (await db<{ id: string; status: OrderStatus }>('orders').where({ id: orderId }).first())
        ?.status;
      return status !== undefined && wanted.has(status);
    },
    `order ${orderId} to reach ${[...wanted].join(' or ')}`,
    timeoutMs,
  );
  return status!;
}

/**
 * Waits until the worker is done with the order's OrderCreated (CONFIRMED, REJECTED, AWAITING_PAYMENT, or
 * cancelled meanwhile), and returns that status. Not "final": a confirmed order still ships.
 */
export function waitForProcessed(db: Db, orderId: string, timeoutMs = 10_000): Promise<OrderStatus> {
  return waitForStatus(db, orderId, PROCESSED_STATUSES, timeoutMs);
}

/** Waits until the worker is done with every one of `orderIds` (one query per poll, however many orders). */
export async function waitForAllProcessed(db: Db, orderIds: string[], timeoutMs = 30_000): Promise<void> {
  await until(
    async () => {
      const [row] = await db('orders')
        .whereIn('id', orderIds)
        .whereIn('status', [...PROCESSED_STATUSES])
        .count<{ n: string }[]>({ n: '*' });
      return Number(row.n) === orderIds.length;
    },
    `${orderIds.length} orders to be processed`,
    timeoutMs,
  );
}

/** Row counts of the tables a rejected request must leave untouched. */
export async function writtenRows(db: Db): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of ['orders', 'order_items', 'order_events', 'outbox', 'idempotency_keys']) {
    const [row] = await db(table).count<{ n: string }[]>({ n: '*' });
    counts[table] = Number(row.n);
  }
  return counts;
}

/**
 * Runs `act` (placing orders, say) while the product's stock row is locked, so the API's availability check passes
 * but no worker can reserve until `act` is done; `then` (if given) changes the stock inside the lock first. This
 * makes "the stock ran out between the order's acceptance and its reservation" happen every time.
 */
export async function whileStockIsHeld<T>(
  db: Db,
  productId: string,
  act: () => Promise<T>,
  then?: { takeAll: true },
): Promise<T> {
  const tx = await db.transaction();
  try {
    const row = await tx<TestProduct>('products').where({ id: productId }).forNoKeyUpdate().first();
    const result = await act();
    if (then?.takeAll && row!.stock_available > 0) {
      await changeStock(tx, productId, -row!.stock_available, 'adjustment', {
        actor: 'test',
        correlationId: randomUUID(),
        note: 'sold elsewhere',
      });
    }
    await tx.commit();
    return result;
  } catch (err) {
    await tx.rollback();
    throw err;
  }
}
