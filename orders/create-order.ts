import { randomUUID } from 'node:crypto';
import { availabilityOf } from '../catalog/availability.ts';
import { InsufficientStockError } from '../catalog/errors.ts';
import type { LineProduct } from '../catalog/products.ts';
import { isUniqueViolation, type Tx } from '../lib/db.ts';
import type { Sql } from '../lib/sql.ts';
import { ConflictError, ValidationError, type FieldError } from '../lib/errors.ts';
import type { MessageContext } from '../lib/outbox.ts';
import type { OrderCreatedData } from './messages.ts';
import { toOrderView, type OrderRow, type OrderView } from './order-queries.ts';
import { applyCreation, type ChangeHook } from './transition.ts';

export interface OrderLineInput {
  product_id?: string | undefined;
  sku?: string | undefined;
  quantity: number;
}

export interface CreateOrderInput {
  /** A client-chosen order id (uuid); generated when absent. */
  id?: string | undefined;
  customerId: string;
  items: OrderLineInput[];
  paymentToken?: string | undefined;
  /** 'later': the order waits in AWAITING_PAYMENT for the customer to pay. */
  paymentMethod?: 'card' | 'later' | undefined;
}

/**
 * Records a new order as RECEIVED with its items, the first step of its trace and the OrderCreated message, all
 * inside `tx` and in one statement (the lifecycle's move from nothing). Prices come from the catalogue at this
 * moment (`products`, read in `tx` with `findProductsForLines` or `productsForLinesSql`), never from the client.
 * Every column of the new row is set here (its times are the transaction's `now()`, read with the prices), so the
 * order as clients will see it is known before the statement: `alongside`, given that view, adds a write of the
 * caller's to the same statement (the API stores its idempotent response there).
 */
export async function createOrder(
  tx: Tx,
  hooks: readonly ChangeHook[],
  input: CreateOrderInput,
  context: MessageContext,
  products: LineProduct[],
  alongside?: (order: OrderView) => Sql,
): Promise<OrderView> {
  const lines = priceLines(products, input.items);
  const currency = lines[0].product.currency;
  const total = lines.reduce((sum, l) => sum + l.product.price * l.quantity, 0);
  const id = input.id ?? randomUUID();

  const items = lines.map((l) => ({
    product_id: l.product.id,
    sku: l.product.sku,
    name: l.product.name,
    quantity: l.quantity,
    unit_price: l.product.price,
  }));
  const data: OrderCreatedData = {
    customer_id: input.customerId,
    total,
    currency,
    payment_method: input.paymentMethod ?? 'card',
    items,
  };
  // The transaction's own now(), as a column default would have set it: the trace and webhooks of this statement
  // use the same instant.
  const now = lines[0].product.read_at;
  const row: OrderRow = {
    id,
    customer_id: input.customerId,
    status: 'RECEIVED',
    total,
    currency,
    reject_reason: null,
    payment_token: input.paymentToken ?? null,
    correlation_id: context.correlationId,
    version: 1,
    payment_method: input.paymentMethod ?? 'card',
    payment_due_at: null,
    cancel_reason: null,
    cancel_note: null,
    tracking_number: null,
    carrier: null,
    shipped_at: null,
    delivered_at: null,
    delivery_location: null,
    created_at: now,
    updated_at: now,
  };
  const view = toOrderView(row, items);
  try {
    await applyCreation(
      tx,
      hooks,
      { ...row },
      items,
      {
        actor: 'customer',
        trace: { total, currency },
        details: { ...data },
        alongside: alongside ? [['alongside', alongside(view)]] : [],
      },
      context,
    );
  } catch (err) {
    if (isUniqueViolation(err, 'orders_pkey'))
      throw new ConflictError(`An order with id ${id} already exists`);
    throw err;
  }
  return view;
}

/** The ids and skus an order's lines name, as findProductsForLines and productsForLinesSql take them. */
export function productKeysOf(items: OrderLineInput[]): [ids: string[], skus: string[]] {
  return [
    items.flatMap((i) => (i.product_id ? [i.product_id] : [])),
    items.flatMap((i) => (i.sku ? [i.sku] : [])),
  ];
}

/**
 * Resolves each line to its product (by id or sku) from the products the lines name: every unknown, repeated or
 * inactive product is named in a 422; then any line asking for more than is available makes the order a 409
 * listing every line (the worker's reservation stays the truth when orders race for the last units).
 */
function priceLines(products: LineProduct[], items: OrderLineInput[]) {
  const byId = new Map(products.map((p) => [p.id, p]));
  const bySku = new Map(products.map((p) => [p.sku, p]));

  const errors: FieldError[] = [];
  const seen = new Set<string>();
  const lines: { product: LineProduct; quantity: number }[] = [];
  items.forEach((item, index) => {
    const product = item.product_id ? byId.get(item.product_id) : bySku.get(item.sku ?? '');
    const field = `items.${index}.${item.product_id ? 'product_id' : 'sku'}`;
    if (!product) {
      errors.push({ field, message: `unknown product ${item.product_id ?? item.sku}` });
    } else if (!product.active) {
      errors.push({ field, message: `product ${product.sku} is no longer sold` });
    } else if (seen.has(product.id)) {
      errors.push({
        field,
        message: `product ${product.sku} is listed more than once; give one line per product`,
      });
    } else {
      seen.add(product.id);
      lines.push({ product, quantity: item.quantity });
    }
  });
  if (errors.length) throw new ValidationError('Some order lines cannot be accepted', errors);
  const currencies = new Set(lines.map((l) => l.product.currency));
  if (currencies.size > 1) {
    throw new ValidationError('All products of one order must share a currency', [
      { field: 'items', message: `mixed currencies: ${[...currencies].join(', ')}` },
    ]);
  }
  const availability = lines.map((l) => availabilityOf(l.product, l.quantity));
  if (availability.some((a) => !a.is_available)) throw new InsufficientStockError(availability);
  return lines;
}
