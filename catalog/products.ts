import { randomUUID } from 'node:crypto';
import { isUniqueViolation, type Db, type Tx } from '../lib/db.ts';
import { NotFoundError } from '../lib/errors.ts';
import { sql, toKnex, type Sql } from '../lib/sql.ts';
import { messageHeaders } from '../lib/outbox.ts';
import { UUID } from '../lib/uuid.ts';
import { DuplicateSkuError } from './errors.ts';
import { PRODUCT_AGGREGATE, type ProductEventType } from './messages.ts';
import type { NewProductInput, ProductPatch } from './product-input.ts';
import { recordStockChange, withCtes, type Cte, type StockChangeContext, type StockReason } from './stock.ts';

export interface ProductRow {
  id: string;
  sku: string;
  name: string;
  price: number;
  currency: string;
  stock_available: number;
  stock_reserved: number;
  active: boolean;
  low_stock_threshold: number;
  version: number;
  created_at: Date;
  updated_at: Date;
}

/** A product as everyone sees it (the portal's list): what it is, what it costs, how many can be ordered. */
export interface ProductView {
  id: string;
  sku: string;
  name: string;
  price: number;
  currency: string;
  stock_available: number;
}

/** A product as an admin sees it: also what is held for orders, its threshold and whether it runs low. */
export interface AdminProductView extends ProductView {
  stock_reserved: number;
  low_stock_threshold: number;
  low_stock: boolean;
  active: boolean;
  version: number;
  created_at: string;
  updated_at: string;
}

export function toProductView(row: ProductRow, admin: boolean): ProductView | AdminProductView {
  const view: ProductView = {
    id: row.id,
    sku: row.sku,
    name: row.name,
    price: row.price,
    currency: row.currency.trim(),
    stock_available: row.stock_available,
  };
  if (!admin) return view;
  return {
    ...view,
    stock_reserved: row.stock_reserved,
    low_stock_threshold: row.low_stock_threshold,
    low_stock: row.stock_available < row.low_stock_threshold,
    active: row.active,
    version: row.version,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

/** The catalogue by sku: active products only, unless `includeInactive` (admins). */
export async function listProducts(db: Db, options: { includeInactive: boolean }): Promise<ProductRow[]> {
  const q = db<ProductRow>('products').orderBy('sku').select('*');
  if (!options.includeInactive) void q.where({ active: true });
  return q;
}

export async function findProduct(db: Db | Tx, id: string): Promise<ProductRow | undefined> {
  if (!UUID.test(id)) return undefined;
  return db<ProductRow>('products').where({ id }).first();
}

export async function getProduct(db: Db | Tx, id: string): Promise<ProductRow> {
  const product = await findProduct(db, id);
  if (!product) throw new NotFoundError(`Product ${id} not found`);
  return product;
}

/** The products named by id or sku in one query, with what an order needs to price and check its lines. */
export async function findProductsForLines(
  db: Db | Tx,
  ids: string[],
  skus: string[],
): Promise<LineProduct[]> {
  if (!ids.length && !skus.length) return [];
  const { rows } = (await toKnex(db, sql`select (${productsForLinesSql(ids, skus)}) as products`)) as {
    rows: { products: unknown }[];
  };
  return lineProductsOf(rows[0].products);
}

/**
 * The same read as one SQL value (a JSON array) for another statement to carry: the API reads an order's products
 * in the statement that takes its idempotency key. One text whatever the number of lines.
 */
export function productsForLinesSql(ids: string[], skus: string[]): Sql {
  return sql`select coalesce(json_agg(json_build_object('id', id, 'sku', sku, 'name', name, 'price', price,
                    'currency', currency, 'stock_available', stock_available, 'active', active,
                    'read_at', now())), '[]'::json)
               from products where id = any(${ids}::uuid[]) or sku = any(${skus}::text[])`;
}

/** What productsForLinesSql read, as findProductsForLines returns it. */
export function lineProductsOf(json: unknown): LineProduct[] {
  return (json as (Omit<LineProduct, 'read_at'> & { read_at: string })[]).map((p) => ({
    ...p,
    read_at: new Date(p.read_at),
  }));
}

/** A product as an order line reads it. */
export type LineProduct = Pick<
  ProductRow,
  'id' | 'sku' | 'name' | 'price' | 'currency' | 'stock_available' | 'active'
> & {
  /** The transaction's `now()`: the time of whatever the transaction goes on to write. */
  read_at: Date;
};

/** A product to insert: its fields and opening stock, with the id it will have. */
export interface NewProductRow {
  id: string;
  sku: string;
  name: string;
  price: number;
  currency: string;
  stock: number;
  low_stock_threshold: number;
}

const PRODUCT_DATA = `jsonb_build_object('product_id', s.id, 'sku', s.sku, 'name', s.name, 'price', s.price,
  'currency', trim(s.currency), 'active', s.active, 'low_stock_threshold', s.low_stock_threshold,
  'stock_available', s.stock_available)`;

/**
 * A CTE that writes a product.created or product.updated message for each row of `source` (products as they are
 * after the change; for updates, a `changed` column lists the fields that changed, and rows where none did are
 * skipped).
 */
export function productEventsCte(
  tx: Tx,
  name: string,
  source: string,
  type: ProductEventType,
  who: StockChangeContext,
): Cte {
  const data =
    type === 'product.updated' ? `${PRODUCT_DATA} || jsonb_build_object('changed', s.changed)` : PRODUCT_DATA;
  return [
    name,
    tx.raw(
      `insert into outbox (id, aggregate_type, aggregate_id, exchange, type, payload, headers)
       select x.id, '${PRODUCT_AGGREGATE}', x.product_id, 'productEvents', ?,
              jsonb_build_object('id', x.id, 'type', ?::text,
                'occurred_at', to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                'aggregate_type', '${PRODUCT_AGGREGATE}', 'aggregate_id', x.product_id, 'version', x.version,
                'data', x.data),
              ?::jsonb
         from (select gen_random_uuid() as id, s.id as product_id, s.version, ${data} as data
                 from ${source} s
                ${type === 'product.updated' ? 'where cardinality(s.changed) > 0' : ''}) x`,
      [type, type, JSON.stringify(messageHeaders(who))],
    ),
  ];
}

/**
 * The CTEs that insert `rows` as new products (a sku that exists is skipped when `skipExisting`), each with its
 * opening stock as a ledger movement of `reason`, product.created and inventory.updated. The CTE `new_products`
 * returns the rows inserted.
 */
export function insertProductsCtes(
  tx: Tx,
  rows: NewProductRow[],
  reason: StockReason,
  who: StockChangeContext,
  options: { skipExisting?: boolean } = {},
): Cte[] {
  return [
    [
      'new_products',
      tx.raw(
        `insert into products (id, sku, name, price, currency, stock_available, low_stock_threshold)
         select v.id, v.sku, v.name, v.price, v.currency, v.stock, v.low_stock_threshold
           from json_to_recordset(?::json)
                as v(id uuid, sku text, name text, price bigint, currency text, stock int, low_stock_threshold int)
         ${options.skipExisting ? 'on conflict (sku) do nothing' : ''}
      returning *, stock_available as stock, 0 as previous_stock, stock_available as delta, 0 as reserved_delta,
                ?::text as reason`,
        [JSON.stringify(rows), reason],
      ),
    ],
    ...recordStockChange('new_products', who, { opening: true }),
    productEventsCte(tx, 'new_products_created', 'new_products', 'product.created', who),
  ];
}

/** Creates a product with its opening stock (a `restock` movement); a sku that exists is a 409. */
export async function createProduct(
  db: Db,
  input: NewProductInput,
  defaults: { lowStockThreshold: number },
  who: StockChangeContext,
): Promise<ProductRow> {
  const row: NewProductRow = {
    id: randomUUID(),
    sku: input.sku,
    name: input.name,
    price: input.price,
    currency: input.currency,
    stock: input.stock,
    low_stock_threshold: input.low_stock_threshold ?? defaults.lowStockThreshold,
  };
  try {
    await db.transaction(async (tx) => {
      await withCtes(tx, insertProductsCtes(tx, [row], 'restock', who))
        .select('id')
        .from('new_products');
    });
  } catch (err) {
    if (isUniqueViolation(err, 'products_sku_unique')) {
      throw new DuplicateSkuError(`A product with sku ${input.sku} exists already`, { cause: err });
    }
    throw err;
  }
  return getProduct(db, row.id);
}

/**
 * Changes a product's name, price, threshold or whether it can be ordered, with a product.updated message naming
 * the fields that changed. Asking for what it already is changes nothing (and announces nothing).
 */
export async function updateProduct(
  db: Db,
  id: string,
  patch: ProductPatch,
  who: StockChangeContext,
): Promise<ProductRow> {
  return db.transaction(async (tx) => {
    const current = await tx<ProductRow>('products')
      .where({ id: UUID.test(id) ? id : '00000000-0000-0000-0000-000000000000' })
      .forNoKeyUpdate()
      .first();
    if (!current) throw new NotFoundError(`Product ${id} not found`);
    const changed = (Object.keys(patch) as (keyof ProductPatch)[]).filter(
      (k) => patch[k] !== undefined && patch[k] !== current[k],
    );
    if (!changed.length) return current;
    await withCtes(tx, [
      [
        'updated',
        tx.raw(
          `update products set ${changed.map((k) => `${k} = ?`).join(', ')}, version = version + 1, updated_at = now()
            where id = ?
        returning *, string_to_array(?, ',') as changed`,
          [...changed.map((k) => patch[k]!), id, changed.join(',')],
        ),
      ],
      productEventsCte(tx, 'updated_event', 'updated', 'product.updated', who),
    ])
      .select('id')
      .from('updated');
    return (await tx<ProductRow>('products').where({ id }).first())!;
  });
}
