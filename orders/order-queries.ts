import type { Db } from '../lib/db.ts';
import type { OrderStatus } from './lifecycle.ts';

export interface OrderRow {
  id: string;
  customer_id: string;
  status: OrderStatus;
  total: number;
  currency: string;
  reject_reason: string | null;
  payment_token: string | null;
  correlation_id: string | null;
  version: number;
  payment_method: 'card' | 'later';
  payment_due_at: Date | null;
  cancel_reason: string | null;
  cancel_note: string | null;
  tracking_number: string | null;
  carrier: string | null;
  shipped_at: Date | null;
  delivered_at: Date | null;
  delivery_location: string | null;
  created_at: Date;
  updated_at: Date;
}

/** The payment columns a view shows (from `payments`, absent until the stock is reserved). */
interface PaymentColumns {
  pay_status: string | null;
  pay_provider_ref: string | null;
  pay_failure_reason: string | null;
  pay_attempts: number | null;
  pay_refund_ref: string | null;
  pay_refunded_amount: number | null;
  pay_refunded_at: Date | null;
}

export interface PaymentView {
  method: 'card' | 'later';
  status: string;
  due_at: string | null;
  provider_ref: string | null;
  failure_reason: string | null;
  attempts: number;
  refund: { amount: number; provider_ref: string | null; refunded_at: string } | null;
}

export interface OrderItemView {
  product_id: string;
  sku: string;
  name: string;
  quantity: number;
  unit_price: number;
}

/** An order as clients see it. */
export interface OrderView {
  id: string;
  customer_id: string;
  status: OrderStatus;
  reject_reason: string | null;
  cancel_reason: string | null;
  cancel_note: string | null;
  total: number;
  currency: string;
  items: OrderItemView[];
  /** Grows by one with every change; also the `ETag` of `GET /orders/:id`. */
  version: number;
  payment: PaymentView;
  tracking_number: string | null;
  carrier: string | null;
  shipped_at: string | null;
  delivered_at: string | null;
  delivery_location: string | null;
  created_at: string;
  updated_at: string;
}

const iso = (d: Date | null) => d?.toISOString() ?? null;

export function toOrderView(row: OrderRow & Partial<PaymentColumns>, items: OrderItemView[]): OrderView {
  return {
    id: row.id,
    customer_id: row.customer_id,
    status: row.status,
    reject_reason: row.reject_reason,
    cancel_reason: row.cancel_reason,
    cancel_note: row.cancel_note,
    total: row.total,
    currency: row.currency,
    items,
    version: row.version,
    payment: {
      method: row.payment_method,
      status: row.pay_status ?? 'pending',
      due_at: iso(row.payment_due_at),
      provider_ref: row.pay_provider_ref ?? null,
      failure_reason: row.pay_failure_reason ?? null,
      attempts: row.pay_attempts ?? 0,
      refund:
        row.pay_refunded_at && row.pay_refunded_amount !== null && row.pay_refunded_amount !== undefined
          ? {
              amount: row.pay_refunded_amount,
              provider_ref: row.pay_refund_ref ?? null,
              refunded_at: row.pay_refunded_at.toISOString(),
            }
          : null,
    },
    tracking_number: row.tracking_number,
    carrier: row.carrier,
    shipped_at: iso(row.shipped_at),
    delivered_at: iso(row.delivered_at),
    delivery_location: row.delivery_location,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

/** Orders with their payment's columns. */
function ordersWithPayment(db: Db) {
  return db('orders as o')
    .leftJoin('payments as pay', 'pay.order_id', 'o.id')
    .select(
      'o.*',
      'pay.status as pay_status',
      'pay.provider_ref as pay_provider_ref',
      'pay.failure_reason as pay_failure_reason',
      'pay.attempts as pay_attempts',
      'pay.refund_ref as pay_refund_ref',
      'pay.refunded_amount as pay_refunded_amount',
      'pay.refunded_at as pay_refunded_at',
    );
}

/** Who is asking: customers see only their own orders, admins see all. */
export interface Viewer {
  sub: string;
  admin: boolean;
}

async function itemsFor(db: Db, orderIds: string[]): Promise<Map<string, OrderItemView[]>> {
  const rows: (OrderItemView & { order_id: string })[] = await db('order_items as i')
    .join('products as p', 'p.id', 'i.product_id')
    .whereIn('i.order_id', orderIds)
    .orderBy('i.id')
    .select('i.order_id', 'i.product_id', 'p.sku', 'p.name', 'i.quantity', 'i.unit_price');
  const byOrder = new Map<string, OrderItemView[]>();
  for (const { order_id, ...item } of rows) {
    byOrder.set(order_id, [...(byOrder.get(order_id) ?? []), item]);
  }
  return byOrder;
}

/** The order if the viewer may see it; undefined otherwise (so another customer's order reads as not found). */
export async function findOrderForViewer(db: Db, id: string, viewer: Viewer): Promise<OrderView | undefined> {
  const q = ordersWithPayment(db).where('o.id', id);
  if (!viewer.admin) void q.andWhere('o.customer_id', viewer.sub);
  const row = (await q.first()) as (OrderRow & PaymentColumns) | undefined;
  if (!row) return undefined;
  return toOrderView(row, (await itemsFor(db, [id])).get(id) ?? []);
}

export interface OrderPage {
  data: OrderView[];
  next_cursor: string | null;
}

/** The viewer's orders, newest first; `cursor` is the id of the last order of the previous page. */
export async function listOrders(
  db: Db,
  viewer: Viewer,
  options: { limit: number; cursor?: string | undefined },
): Promise<OrderPage> {
  const q = ordersWithPayment(db)
    .orderBy([
      { column: 'o.created_at', order: 'desc' },
      { column: 'o.id', order: 'desc' },
    ])
    .limit(options.limit + 1);
  if (!viewer.admin) void q.where('o.customer_id', viewer.sub);
  if (options.cursor) {
    void q.whereRaw('(o.created_at, o.id) < (select created_at, id from orders where id = ?)', [
      options.cursor,
    ]);
  }
  const rows = (await q) as (OrderRow & PaymentColumns)[];
  const page = rows.slice(0, options.limit);
  const items = page.length
    ? await itemsFor(
        db,
        page.map((r) => r.id),
      )
    : new Map<string, OrderItemView[]>();
  return {
    data: page.map((r) => toOrderView(r, items.get(r.id) ?? [])),
    next_cursor: rows.length > options.limit ? page[page.length - 1].id : null,
  };
}
