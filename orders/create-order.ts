import { randomUUID } from 'node:crypto';
import { isUniqueViolation, type Tx } from '../lib/db.ts';
import { ConflictError, ValidationError, type FieldError } from '../lib/errors.ts';
import { buildEnvelope, type OrderCreatedData } from './messages.ts';
import { orderEventRow } from './order-events.ts';
import { outboxRow, type MessageContext } from './outbox.ts';
import { toOrderView, type OrderRow, type OrderView } from './order-queries.ts';
import { orderWebhooksInsert } from '../webhooks/deliveries.ts';

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
}

interface ProductRow {
  id: string;
  sku: string;
  name: string;
  price: number;
  currency: string;
}

/**
 * Records a new order as RECEIVED with its items, the first step of its trace and the OrderCreated message, all
 * inside `tx`. Prices come from the catalogue at this moment, never from the client.
 */
export async function createOrder(
  tx: Tx,
  input: CreateOrderInput,
  context: MessageContext,
): Promise<OrderView> {
  const lines = await priceLines(tx, input.items);
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
    items: items.map(({ product_id, quantity, unit_price }) => ({ product_id, quantity, unit_price })),
  };
  const envelope = buildEnvelope('OrderCreated', id, data);

  // The order, its lines, the first step of its trace, its message and its webhook deliveries: one statement.
  const deliveries = orderWebhooksInsert(tx, {
    id,
    customer_id: input.customerId,
    total,
    currency,
    status: 'RECEIVED',
    reason: null,
    items,
    correlationId: context.correlationId,
  });
  let order: OrderRow;
  try {
    let statement = tx
      .with(
        'o',
        tx('orders')
          .insert({
            id,
            customer_id: input.customerId,
            status: 'RECEIVED',
            total,
            currency,
            payment_token: input.paymentToken ?? null,
            correlation_id: context.correlationId,
          })
          .returning('*'),
      )
      .with(
        'i',
        tx('order_items').insert(
          items.map((i) => ({
            order_id: id,
            product_id: i.product_id,
            quantity: i.quantity,
            unit_price: i.unit_price,
          })),
        ),
      )
      .with(
        'e',
        tx('order_events').insert(
          orderEventRow({
            orderId: id,
            type: 'OrderReceived',
            fromStatus: null,
            toStatus: 'RECEIVED',
            data: { total, currency },
            messageId: envelope.id,
            correlationId: context.correlationId,
          }),
        ),
      )
      .with('x', tx('outbox').insert(outboxRow(envelope, context)));
    if (deliveries) statement = statement.with('webhooks', deliveries);
    [order] = await statement.select<OrderRow[]>('*').from('o');
  } catch (err) {
    if (isUniqueViolation(err, 'orders_pkey'))
      throw new ConflictError(`An order with id ${id} already exists`);
    throw err;
  }
  return toOrderView(order, items);
}

/** Resolves each line to its product (by id or sku); every unknown or repeated product is named in the error. */
async function priceLines(tx: Tx, items: OrderLineInput[]) {
  const ids = items.flatMap((i) => (i.product_id ? [i.product_id] : []));
  const skus = items.flatMap((i) => (i.sku ? [i.sku] : []));
  const products = await tx<ProductRow>('products')
    .select('id', 'sku', 'name', 'price', 'currency')
    .where((q) => {
      if (ids.length) void q.orWhereIn('id', ids);
      if (skus.length) void q.orWhereIn('sku', skus);
    });
  const byId = new Map(products.map((p) => [p.id, p]));
  const bySku = new Map(products.map((p) => [p.sku, p]));

  const errors: FieldError[] = [];
  const seen = new Set<string>();
  const lines: { product: ProductRow; quantity: number }[] = [];
  items.forEach((item, index) => {
    const product = item.product_id ? byId.get(item.product_id) : bySku.get(item.sku ?? '');
    const field = `items.${index}.${item.product_id ? 'product_id' : 'sku'}`;
    if (!product) {
      errors.push({ field, message: `unknown product ${item.product_id ?? item.sku}` });
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
  return lines;
}
