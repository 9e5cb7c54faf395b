import type { Db } from '../lib/db.ts';
import { NotFoundError } from '../lib/errors.ts';
import { StockBelowZeroError } from './errors.ts';
import { findProduct, getProduct, type ProductRow } from './products.ts';
import { changeStock, type StockChangeContext, type StockReason } from './stock.ts';

export interface MovementView {
  id: number;
  product_id: string;
  delta: number;
  reserved_delta: number;
  reason: StockReason;
  order_id: string | null;
  actor: string;
  note: string | null;
  stock_after: number;
  created_at: string;
}

interface MovementRow extends Omit<MovementView, 'created_at'> {
  created_at: Date;
}

/**
 * Restocks or adjusts a product's available stock by `delta`, with its ledger row and messages in the same
 * statement. A delta that would take the stock below zero changes nothing (409).
 */
export async function adjustStock(
  db: Db,
  productId: string,
  input: { delta: number; reason: 'restock' | 'adjustment'; note?: string | undefined },
  who: StockChangeContext,
): Promise<{ product: ProductRow; movement: MovementView }> {
  return db.transaction(async (tx) => {
    const product = await findProduct(tx, productId);
    if (!product) throw new NotFoundError(`Product ${productId} not found`);
    const changed = await changeStock(tx, productId, input.delta, input.reason, {
      ...who,
      note: input.note ?? null,
    });
    if (!changed) {
      const now = await getProduct(tx, productId);
      throw new StockBelowZeroError(now.stock_available, input.delta);
    }
    const movement = await tx<MovementRow>('stock_movements')
      .where({ product_id: productId })
      .orderBy('id', 'desc')
      .first();
    return { product: await getProduct(tx, productId), movement: toMovementView(movement!) };
  });
}

function toMovementView(row: MovementRow): MovementView {
  return { ...row, created_at: row.created_at.toISOString() };
}

/** A product's ledger, newest first; `cursor` is the last id of the previous page. */
export async function listMovements(
  db: Db,
  productId: string,
  options: { limit: number; cursor?: number | undefined },
): Promise<{ data: MovementView[]; next_cursor: string | null }> {
  await getProduct(db, productId);
  const q = db<MovementRow>('stock_movements')
    .where({ product_id: productId })
    .orderBy('id', 'desc')
    .limit(options.limit + 1)
    .select('*');
  if (options.cursor !== undefined) void q.andWhere('id', '<', options.cursor);
  const rows = await q;
  const page = rows.slice(0, options.limit);
  return {
    data: page.map(toMovementView),
    next_cursor: rows.length > options.limit ? String(page[page.length - 1].id) : null,
  };
}
