import type { Knex, Tx } from '../lib/db.ts';
import { query, sql, statementWith, toKnex, type Sql } from '../lib/sql.ts';
import { messageHeaders, type MessageContext } from '../lib/outbox.ts';
import { PRODUCT_AGGREGATE } from './messages.ts';

/**
 * Stock and its ledger. Every change of a product's stock goes through here and is written as data-modifying CTEs
 * of one statement: the change itself, its `stock_movements` rows and its messages (inventory.updated on every
 * change of available stock; inventory.low_stock / inventory.back_in_stock when the change crosses the product's
 * threshold, and only then). Callers (the order lifecycle's steps, the admin routes, the import) put these CTEs in
 * their own statement, so stock, ledger and messages commit together at no extra round trip.
 *
 * The ledger's two columns add up to the two stock columns of every product: sum(delta) = stock_available (what
 * can be ordered) and sum(reserved_delta) = stock_reserved (held for orders not yet paid). A reservation moves
 * units from available to reserved (-q, +q), a release back (+q, -q), a sale takes them off the shelf (0, -q), a
 * return puts a confirmed order's units back (+q, 0); restocks, adjustments and imports change available stock.
 */

/** A named data-modifying CTE of a statement. */
export type Cte = [string, Sql | Knex.QueryBuilder | Knex.Raw];

export const STOCK_REASONS = [
  'restock',
  'adjustment',
  'import',
  'reservation',
  'release',
  'sale',
  'return',
] as const;
export type StockReason = (typeof STOCK_REASONS)[number];

/** Who changes the stock, and why: recorded on each ledger row and in the messages' headers. */
export interface StockChangeContext extends MessageContext {
  /** Who made the change: a lifecycle actor (worker, customer, admin, system) or a user's subject. */
  actor: string;
  orderId?: string | null | undefined;
  note?: string | null | undefined;
}

export interface OrderStockLine {
  product_id: string;
  quantity: number;
}

/**
 * The CTEs that record a stock change made by the CTE `changed`, which returns one row per product changed with
 * the columns id, sku, version, low_stock_threshold, stock (available after), previous_stock, delta,
 * reserved_delta and reason: its ledger rows and its messages. A new product's opening stock crosses no threshold
 * (`opening`): it was never low, nor back. `perOrder`: the rows are several orders' changes, each with its own
 * `order_id` and message `headers` columns (`who` then gives only the actor and the note).
 */
export function recordStockChange(
  changed: string,
  who: Omit<StockChangeContext, 'correlationId'> & Partial<MessageContext>,
  options: { opening?: boolean; perOrder?: boolean } = {},
): Cte[] {
  const crossing = (condition: string) => (options.opening ? 'false' : condition);
  const event = (type: string, condition: string, extra = '') =>
    sql.raw(`select '${type}'::text as type,
                    jsonb_build_object('product_id', s.id, 'sku', s.sku, 'stock', s.stock,
                                       'previous_stock', s.previous_stock${extra}) as data
              where ${condition}`);
  const aggregate = sql.raw(`'${PRODUCT_AGGREGATE}'`);
  return [
    [
      `${changed}_ledger`,
      sql`insert into stock_movements (product_id, delta, reserved_delta, reason, order_id, actor, note, stock_after)
          select id, delta, reserved_delta, reason, ${options.perOrder ? sql.raw('order_id') : sql`${who.orderId ?? null}::uuid`},
                 ${who.actor}, ${who.note ?? null}, stock
            from ${sql.raw(changed)}
           where delta <> 0 or reserved_delta <> 0`,
    ],
    [
      `${changed}_events`,
      sql`insert into outbox (id, aggregate_type, aggregate_id, exchange, type, payload, headers)
         select x.id, ${aggregate}, x.product_id, 'inventoryEvents', x.type,
                jsonb_build_object('id', x.id, 'type', x.type,
                  'occurred_at', to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                  'aggregate_type', ${aggregate}, 'aggregate_id', x.product_id, 'version', x.version,
                  'data', x.data),
                ${options.perOrder ? sql.raw('x.headers') : sql`${JSON.stringify(messageHeaders(who as MessageContext))}::jsonb`}
           from (select gen_random_uuid() as id, s.id as product_id, s.version, e.type, e.data,
                        ${sql.raw(options.perOrder ? 's.headers' : 'null::jsonb as headers')}
                   from ${sql.raw(changed)} s
                   cross join lateral (
                     ${event('inventory.updated', 's.stock <> s.previous_stock', ", 'reason', s.reason")}
                     union all
                     ${event(
                       'inventory.low_stock',
                       crossing(
                         's.previous_stock >= s.low_stock_threshold and s.stock < s.low_stock_threshold',
                       ),
                       ", 'threshold', s.low_stock_threshold",
                     )}
                     union all
                     ${event(
                       'inventory.back_in_stock',
                       crossing(
                         's.previous_stock < s.low_stock_threshold and s.stock >= s.low_stock_threshold',
                       ),
                       ", 'threshold', s.low_stock_threshold",
                     )}
                   ) e) x`,
    ],
  ];
}

/** The columns `recordStockChange` reads, for an update of `products p`: each argument SQL, or SQL text. */
function changedColumns(...[previous, delta, reservedDelta, reason]: (string | Sql)[]): Sql {
  const [p, d, r, why] = [previous, delta, reservedDelta, reason].map((x) =>
    typeof x === 'string' ? sql.raw(x) : x,
  );
  return sql`p.id, p.sku, p.version, p.low_stock_threshold, p.stock_available as stock,
             (${p})::int as previous_stock, (${d})::int as delta, (${r})::int as reserved_delta,
             (${why})::text as reason`;
}

/**
 * SQL of a scalar subquery (for the select list of a statement that has locked the order rows `o`): the order's
 * lines as a JSON array in product order, without their stock, which `lockStockOfOrders` reads under its lock.
 */
export const ORDER_ITEMS_SQL = `(select coalesce(json_agg(l order by l.product_id), '[]'::json)
    from (select i.product_id, i.quantity, p.sku
            from order_items i join products p on p.id = i.product_id
           where i.order_id = o.id) l)`;

/**
 * Locks the stock rows of the orders' products all at once, in id order, after the orders' own locks, and returns
 * each one's available stock: every line's product, or with `reservations`, the products of the orders'
 * reservations in those states. Locking them order by order would take them in no overall order: two batches, or a
 * batch and a cancellation, sharing two products could each hold the one the other waits for.
 */
export async function lockStockOfOrders(
  tx: Tx,
  orderIds: string[],
  reservations?: string[],
): Promise<Map<string, number>> {
  const products = reservations
    ? sql`select r.product_id from inventory_reservations r
           where r.order_id = any(${orderIds}::uuid[]) and r.state = any(${reservations}::text[])`
    : sql`select i.product_id from order_items i where i.order_id = any(${orderIds}::uuid[])`;
  // `= any(array(…))`, not `in (…)`: the ids become one array before the scan, so it probes the primary key. With
  // `in`, the generic plan estimated fifty lines and hash-joined them against a sequential scan of every product.
  const { rows } = await query<{ id: string; stock_available: number }>(
    tx,
    sql`select p.id, p.stock_available from products p
         where p.id = any(array(${products})) order by p.id for no key update`,
  );
  return new Map(rows.map((r) => [r.id, r.stock_available]));
}

/** One order's lines in `reserveStockOfOrdersCtes`, with the headers of its stock messages. */
export interface OrderReservation {
  orderId: string;
  lines: OrderStockLine[];
  context: MessageContext;
}

/**
 * Reserves the lines of several orders (their stock rows locked and checked by the caller, `lockStockOfOrders`) in
 * one statement, in the order given (which is the order their stock was
 * counted down in, under `lockStockOfOrders`'s locks): each product's stock changes once, by its orders' sum, and
 * each order's ledger rows and messages say what that order's reservation alone did (its available stock before and
 * after, and the product's version after it), as if the orders had been reserved one after another. Should anything
 * still take stock below zero, the table's CHECK constraint fails the whole statement rather than oversell.
 */
export function reserveStockOfOrdersCtes(orders: OrderReservation[], actor: string): Cte[] {
  const lines = JSON.stringify(
    orders.flatMap((o, seq) =>
      o.lines.map((l) => ({
        order_id: o.orderId,
        product_id: l.product_id,
        q: l.quantity,
        seq,
        headers: messageHeaders(o.context),
      })),
    ),
  );
  const productIds = [...new Set(orders.flatMap((o) => o.lines.map((l) => l.product_id)))];
  return [
    [
      'batch_lines',
      sql`select * from json_to_recordset(${lines}::json)
                          as v(order_id uuid, product_id uuid, q int, seq int, headers jsonb)`,
    ],
    [
      'stock_reservations',
      sql`insert into inventory_reservations (order_id, product_id, quantity, state)
          select order_id, product_id, q, 'reserved' from batch_lines order by seq, product_id`,
    ],
    [
      'stock_total',
      sql`update products p
             set stock_available = p.stock_available - s.q, stock_reserved = p.stock_reserved + s.q,
                 version = p.version + s.n, updated_at = now()
            from (select product_id, sum(q)::int as q, count(*)::int as n from batch_lines group by product_id) s
           where p.id = s.product_id and p.id = any(${productIds}::uuid[])
       returning p.id, p.sku, p.version, p.low_stock_threshold, p.stock_available, s.q as total, s.n`,
    ],
    [
      'stock',
      sql`select t.id, t.sku, t.low_stock_threshold, l.order_id, l.headers,
                 (t.version - t.n + row_number() over w)::int as version,
                 (t.stock_available + t.total - sum(l.q) over w)::int as stock,
                 (t.stock_available + t.total - sum(l.q) over w + l.q)::int as previous_stock,
                 (-l.q)::int as delta, l.q as reserved_delta, 'reservation'::text as reason
            from batch_lines l join stock_total t on t.id = l.product_id
          window w as (partition by l.product_id order by l.seq rows between unbounded preceding and current row)`,
    ],
    ...recordStockChange('stock', { actor }, { perOrder: true }),
  ];
}

/**
 * Settles an order's reservations (lock them first with `lockStockOfOrders`): `committed`, the reserved units leave
 * the shelf for good (a sale); `released`, they go back to what can be sold.
 */
export function settleStockCtes(
  orderId: string,
  outcome: 'committed' | 'released',
  who: StockChangeContext,
): Cte[] {
  const back = outcome === 'released' ? 's.quantity' : '0';
  return [
    [
      'stock_settled',
      sql`update inventory_reservations set state = ${outcome}, updated_at = now()
           where order_id = ${orderId} and state = 'reserved'
       returning product_id, quantity`,
    ],
    [
      'stock',
      sql`update products p
             set stock_reserved = p.stock_reserved - s.quantity, stock_available = p.stock_available + ${sql.raw(back)},
                 version = p.version + 1, updated_at = now()
            from stock_settled s
           where p.id = s.product_id
       returning ${changedColumns(
         `p.stock_available - ${back}`,
         back,
         '-s.quantity',
         outcome === 'released' ? "'release'" : "'sale'",
       )}`,
    ],
    ...recordStockChange('stock', { ...who, orderId }),
  ];
}

/**
 * settleStockCtes(…, 'committed') for the reservations of several orders in one statement: the units leave the shelf
 * (a sale), each product's reserved stock falls by its orders' sum, and each order's ledger rows are written. A
 * sale leaves available stock as it was, so it crosses no threshold and sends no message. `productIds`: the
 * products locked for these orders (`lockStockOfOrders`), matched by id so the update probes them by key.
 */
export function commitStockOfOrdersCtes(orderIds: string[], productIds: string[], actor: string): Cte[] {
  return [
    [
      'stock_settled',
      sql`update inventory_reservations set state = 'committed', updated_at = now()
           where order_id = any(${orderIds}::uuid[]) and state = 'reserved'
       returning order_id, product_id, quantity`,
    ],
    [
      'stock',
      sql`update products p
             set stock_reserved = p.stock_reserved - s.quantity, version = p.version + s.orders, updated_at = now()
            from (select product_id, sum(quantity)::int as quantity, count(*)::int as orders
                    from stock_settled group by product_id) s
           where p.id = s.product_id and p.id = any(${productIds}::uuid[])
       returning p.id, p.stock_available`,
    ],
    [
      'stock_ledger',
      sql`insert into stock_movements (product_id, delta, reserved_delta, reason, order_id, actor, note, stock_after)
          select s.product_id, 0, -s.quantity, 'sale', s.order_id, ${actor}, null, p.stock_available
            from stock_settled s join stock p on p.id = s.product_id
           order by s.order_id, s.product_id`,
    ],
  ];
}

/**
 * Gives back the stock of a cancelled order (lock it first with `lockStockOfOrders` for `reserved` and
 * `committed`): what was reserved is released, what a confirmed order had taken is returned to the shelf.
 */
export function restoreStockCtes(orderId: string, who: StockChangeContext): Cte[] {
  return [
    [
      'stock_restored',
      sql`update inventory_reservations
             set state = case state when 'reserved' then 'released' else 'returned' end, updated_at = now()
           where order_id = ${orderId} and state in ('reserved', 'committed')
       returning product_id, quantity, state`,
    ],
    [
      'stock',
      sql`update products p
             set stock_reserved = p.stock_reserved - case when r.state = 'released' then r.quantity else 0 end,
                 stock_available = p.stock_available + r.quantity,
                 version = p.version + 1, updated_at = now()
            from stock_restored r
           where p.id = r.product_id
       returning ${changedColumns(
         'p.stock_available - r.quantity',
         'r.quantity',
         "case when r.state = 'released' then -r.quantity else 0 end",
         "case when r.state = 'released' then 'release' else 'return' end",
       )}`,
    ],
    ...recordStockChange('stock', { ...who, orderId }),
  ];
}

/**
 * Adds `ctes` to a knex query in order (later ones may read earlier ones), for statements that go on with knex's
 * builder (the catalogue's admin routes, the import, the seeds); the order pipeline's own use `statementWith`.
 */
export function withCtes(tx: Tx, ctes: Cte[]): Knex.QueryBuilder {
  let q = tx.queryBuilder();
  for (const [name, cte] of ctes) q = q.with(name, toKnex(tx, cte));
  return q;
}

export interface StockChangeRow {
  id: string;
  sku: string;
  version: number;
  stock: number;
  previous_stock: number;
}

/**
 * Changes a product's available stock by `delta` (a restock, an adjustment) in one statement with its ledger row
 * and messages, unless that would take it below zero. Returns the change, or undefined when nothing changed (no
 * such product, or not enough stock: the caller tells which).
 */
export async function changeStock(
  tx: Tx,
  productId: string,
  delta: number,
  reason: Extract<StockReason, 'restock' | 'adjustment'>,
  who: StockChangeContext,
): Promise<StockChangeRow | undefined> {
  const ctes: Cte[] = [
    [
      'stock',
      sql`update products p
             set stock_available = p.stock_available + ${delta}, version = p.version + 1, updated_at = now()
           where p.id = ${productId} and p.stock_available + ${delta} >= 0
       returning ${changedColumns(sql`p.stock_available - ${delta}`, sql`${delta}`, '0', sql`${reason}`)}`,
    ],
    ...recordStockChange('stock', who),
  ];
  const { rows } = await query<StockChangeRow>(tx, statementWith(ctes, sql`select * from stock`));
  return rows[0];
}
