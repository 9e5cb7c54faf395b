import { AppError } from '../lib/errors.ts';

/** One line of an availability check, as `POST /products/check-availability` and the 409 of an order show it. */
export interface AvailabilityItem {
  product_id: string;
  sku: string;
  requested: number;
  available: number;
  is_available: boolean;
}

/** Some line of an order asks for more than is available: the problem lists every line, as the check does. */
export class InsufficientStockError extends AppError {
  readonly code = 'INSUFFICIENT_STOCK';
  readonly status = 409;
  readonly title = 'Not enough stock for this order';
  override readonly extensions: Record<string, unknown>;

  constructor(readonly items: AvailabilityItem[]) {
    const short = items.filter((i) => !i.is_available);
    super(
      `Not enough stock of ${short.map((i) => `${i.sku} (${i.requested} asked, ${i.available} available)`).join(', ')}`,
    );
    this.extensions = { items };
  }
}

/** A stock adjustment would take the available stock below zero: nothing changed. */
export class StockBelowZeroError extends AppError {
  readonly code = 'STOCK_BELOW_ZERO';
  readonly status = 409;
  readonly title = 'Stock cannot go below zero';
  override readonly extensions: Record<string, unknown>;

  constructor(available: number, delta: number) {
    super(`The product has ${available} available; a change of ${delta} would take it below zero`);
    this.extensions = { stock_available: available, delta };
  }
}

export class DuplicateSkuError extends AppError {
  readonly code = 'DUPLICATE_SKU';
  readonly status = 409;
  readonly title = 'A product with this sku exists';
}
