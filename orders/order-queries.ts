import type { Db } from '../lib/db.ts';
import type { OrderStatus } from './order-status.ts';

export interface OrderRow {
  id: string;
  customer_id: string;
  status: OrderStatus;
  total: number;
  currency: string;
  reject_reason: string | null;
  payment_token: string | null;
  correlation_id: string | null;
  created_at: Date;
  updated_at: Date;
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
  total: number;
  currency: string;
  items: OrderItemView[];
  created_at: string;
  updated_at: string;
}

export function toOrderView(row: OrderRow, items: OrderItemView[]): OrderView {
  return {
    id: row.id,
    customer_id: row.customer_id,
    status: row.status,
    reject_reason: row.reject_reason,
    total: row.total,
    currency: row.currency,
    items,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
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
  const q = db<OrderRow>('orders').where({ id });
  if (!viewer.admin) void q.andWhere({ customer_id: viewer.sub });
  const row = await q.first();
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
  const q = db<OrderRow>('orders')
    .orderBy([
      { column: 'created_at', order: 'desc' },
      { column: 'id', order: 'desc' },
    ])
    .limit(options.limit + 1);
  if (!viewer.admin) void q.where({ customer_id: viewer.sub });
  if (options.cursor) {
    void q.whereRaw('(created_at, id) < (select created_at, id from orders where id = ?)', [options.cursor]);
  }
  const rows = await q;
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
