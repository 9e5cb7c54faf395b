import { randomUUID } from 'node:crypto';
import { insertProductsCtes } from '../../catalog/products.ts';
import { withCtes } from '../../catalog/stock.ts';
import type { Db } from '../../lib/db.ts';

/** The demo catalogue: prices in cents (EUR). */
export const DEMO_PRODUCTS = [
  { sku: 'CAFE-500', name: 'Café de Colombia 500 g', price: 1290, currency: 'EUR', stock_available: 500 },
  { sku: 'TAZA-CER', name: 'Taza de cerámica', price: 850, currency: 'EUR', stock_available: 200 },
  { sku: 'MOLINILLO', name: 'Molinillo manual', price: 3490, currency: 'EUR', stock_available: 50 },
  { sku: 'PRENSA-FR', name: 'Prensa francesa 1 L', price: 2750, currency: 'EUR', stock_available: 80 },
  { sku: 'FILTROS-100', name: 'Filtros de papel (100)', price: 390, currency: 'EUR', stock_available: 1000 },
  {
    sku: 'EDICION-LTD',
    name: 'Edición limitada — último lote',
    price: 9900,
    currency: 'EUR',
    stock_available: 3,
  },
];

/**
 * Inserts the demo products that are missing, each with its opening stock in the ledger; running it again
 * changes nothing (stock included).
 */
export async function seedDemoProducts(db: Db): Promise<number> {
  const rows = DEMO_PRODUCTS.map(({ stock_available, ...p }) => ({
    ...p,
    id: randomUUID(),
    stock: stock_available,
    low_stock_threshold: 10,
  }));
  return db.transaction(async (tx) => {
    const inserted: { id: string }[] = await withCtes(
      tx,
      insertProductsCtes(
        tx,
        rows,
        'restock',
        { actor: 'seed', correlationId: randomUUID() },
        {
          skipExisting: true,
        },
      ),
    )
      .select('id')
      .from('new_products');
    return inserted.length;
  });
}
