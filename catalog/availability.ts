import type { Db, Tx } from '../lib/db.ts';
import { ValidationError, type FieldError } from '../lib/errors.ts';
import type { AvailabilityItem } from './errors.ts';
import { findProductsForLines, type ProductRow } from './products.ts';

export interface LineRequest {
  product_id?: string | undefined;
  sku?: string | undefined;
  quantity: number;
}

/**
 * Whether `requested` units of a product can be ordered now: it is active and has that many available. An
 * inactive product shows 0 available. The worker's reservation stays the truth when orders race for the last units.
 */
export function availabilityOf(
  product: Pick<ProductRow, 'id' | 'sku' | 'stock_available' | 'active'>,
  requested: number,
): AvailabilityItem {
  const available = product.active ? product.stock_available : 0;
  return {
    product_id: product.id,
    sku: product.sku,
    requested,
    available,
    is_available: available >= requested,
  };
}

/** Answers `POST /products/check-availability`: every line in order; an unknown product is a 422 naming it. */
export async function checkAvailability(
  db: Db | Tx,
  lines: LineRequest[],
): Promise<{ all_available: boolean; items: AvailabilityItem[] }> {
  const products = await findProductsForLines(
    db,
    lines.flatMap((l) => (l.product_id ? [l.product_id] : [])),
    lines.flatMap((l) => (l.sku ? [l.sku] : [])),
  );
  const byId = new Map(products.map((p) => [p.id, p]));
  const bySku = new Map(products.map((p) => [p.sku, p]));
  const errors: FieldError[] = [];
  const items: AvailabilityItem[] = [];
  lines.forEach((line, index) => {
    const product = line.product_id ? byId.get(line.product_id) : bySku.get(line.sku ?? '');
    if (!product) {
      errors.push({
        field: `items.${index}.${line.product_id ? 'product_id' : 'sku'}`,
        message: `unknown product ${line.product_id ?? line.sku}`,
      });
    } else {
      items.push(availabilityOf(product, line.quantity));
    }
  });
  if (errors.length) throw new ValidationError('Some lines name no product', errors);
  return { all_available: items.every((i) => i.is_available), items };
}
