import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import type { z } from 'zod';
import type { Db, Tx } from '../lib/db.ts';
import { ValidationError, type FieldError } from '../lib/errors.ts';
import { productFields } from './product-input.ts';
import { insertProductsCtes, productEventsCte, type NewProductRow, type ProductRow } from './products.ts';
import { recordStockChange, withCtes, type StockChangeContext } from './stock.ts';

/**
 * The CSV import: `sku,name,price,currency,stock,low_stock_threshold` (header required, columns in any order,
 * low_stock_threshold optional). Upsert by sku; `stock` sets the available stock through an `import` movement.
 * Importing the same file twice changes nothing the second time, and a bad row never stops the good ones.
 */

const REQUIRED = ['sku', 'name', 'price', 'currency', 'stock'] as const;
const COLUMNS: readonly string[] = [...REQUIRED, 'low_stock_threshold'];
const BATCH = 1000;

export interface RejectedRow {
  /** The row's line in the file (the header is line 1). */
  line: number;
  sku: string | null;
  errors: FieldError[];
}

export interface ImportReport {
  rows: number;
  created: number;
  updated: number;
  unchanged: number;
  rejected: RejectedRow[];
}

interface ImportRow {
  line: number;
  sku: string;
  name: string;
  price: number;
  currency: string;
  stock: number;
  low_stock_threshold: number | undefined;
}

/** One record of the file, with the line it starts on. */
interface CsvRecord {
  line: number;
  record: Record<string, string>;
}

/**
 * The file's records one at a time, never all at once: a 10 MB file is over 100,000 rows, which as objects would
 * take more memory than the whole API needs otherwise. A body that is not CSV, or whose first line is not the
 * header, is a 422 saying what is wrong.
 */
async function* readRecords(text: string): AsyncGenerator<CsvRecord> {
  let names: string[] | undefined;
  let headerChecked = false;
  const parser = parse({
    bom: true,
    columns: (header: string[]) => (names = header.map((h) => h.trim().toLowerCase())),
    info: true,
    skip_empty_lines: true,
    trim: true,
    relax_column_count: true,
  });
  // Fed a slice at a time, so the parser waits for its records to be taken (given the whole text, it would parse
  // every record ahead of the reader and hold them all).
  const source = Readable.from(slices(text));
  source.pipe(parser);
  const records = parser[Symbol.asyncIterator]() as AsyncIterator<{
    info: { lines: number };
    record: Record<string, string>;
  }>;
  try {
    for (;;) {
      let next;
      try {
        next = await records.next();
      } catch (err) {
        throw new ValidationError(`The file is not readable CSV: ${(err as Error).message}`, [], 422);
      }
      if (!headerChecked) {
        checkHeader(names ?? []);
        headerChecked = true;
      }
      if (next.done) return;
      yield { line: next.value.info.lines, record: next.value.record };
    }
  } finally {
    source.destroy();
    parser.destroy();
  }
}

/** `text` in slices of about 64 KB, never splitting a surrogate pair. */
function* slices(text: string, size = 64 * 1024): Generator<string> {
  for (let at = 0; at < text.length;) {
    let end = Math.min(at + size, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end -= 1;
    yield text.slice(at, end);
    at = end;
  }
}

function checkHeader(names: string[]): void {
  const missing = REQUIRED.filter((c) => !names.includes(c));
  const unknown = names.filter((c) => !COLUMNS.includes(c));
  if (missing.length || unknown.length) {
    throw new ValidationError(
      `The first line must be a header with the columns ${COLUMNS.join(',')} (any order; low_stock_threshold optional)`,
      [
        ...missing.map((c) => ({ field: c, message: 'missing column' })),
        ...unknown.map((c) => ({ field: c, message: 'unknown column' })),
      ],
    );
  }
}

/**
 * Checks one record: the row to import, or why it is rejected. `firstLine` holds the line of every sku accepted
 * so far, so a sku that comes again is rejected.
 */
function checkRecord({ line, record }: CsvRecord, firstLine: Map<string, number>): ImportRow | RejectedRow {
  const errors: FieldError[] = [];
  const check = <T>(field: string, schema: z.ZodType<T>, value: unknown): T => {
    const r = schema.safeParse(value);
    if (!r.success) errors.push({ field, message: r.error.issues[0].message });
    return r.data as T;
  };
  const int = (v: string | undefined) => (v !== undefined && /^-?\d+$/.test(v) ? Number(v) : v);
  const sku = check<string>('sku', productFields.sku, record.sku ?? '');
  const name = check<string>('name', productFields.name, record.name ?? '');
  const price = check<number>('price', productFields.price, int(record.price));
  const currency = check<string>('currency', productFields.currency, (record.currency ?? '').toUpperCase());
  const stock = check<number>('stock', productFields.stock, int(record.stock));
  const rawThreshold = record.low_stock_threshold;
  const threshold =
    rawThreshold === undefined || rawThreshold === ''
      ? undefined
      : check<number>('low_stock_threshold', productFields.low_stock_threshold, int(rawThreshold));
  if (!errors.length && firstLine.has(sku)) {
    errors.push({ field: 'sku', message: `sku ${sku} appears again (first at line ${firstLine.get(sku)})` });
  }
  if (errors.length) return { line, sku: record.sku || null, errors };
  firstLine.set(sku, line);
  return { line, sku, name, price, currency, stock, low_stock_threshold: threshold };
}

const isRejected = (r: ImportRow | RejectedRow): r is RejectedRow => 'errors' in r;

/**
 * Imports the CSV `text` in batches of 1000 rows, each one transaction; `onProgress` hears how many rows are done.
 * The file is read twice, a record at a time: first to check it whole (a file that is not CSV imports nothing, and
 * the report's rejections are known), then to import the rows that passed.
 */
export async function importProducts(
  db: Db,
  text: string,
  options: {
    lowStockThreshold: number;
    who: StockChangeContext;
    onProgress?: (done: number, total: number) => void;
  },
): Promise<ImportReport> {
  const report: ImportReport = { rows: 0, created: 0, updated: 0, unchanged: 0, rejected: [] };
  const good = new Set<number>();
  const firstLine = new Map<string, number>();
  for await (const record of readRecords(text)) {
    report.rows += 1;
    const checked = checkRecord(record, firstLine);
    if (isRejected(checked)) report.rejected.push(checked);
    else good.add(checked.line);
  }
  firstLine.clear();

  let batch: ImportRow[] = [];
  let done = 0;
  const flush = async () => {
    if (!batch.length) return;
    const counts = await db.transaction((tx) => importBatch(tx, batch, options));
    report.created += counts.created;
    report.updated += counts.updated;
    report.unchanged += counts.unchanged;
    done += batch.length;
    batch = [];
    options.onProgress?.(done, good.size);
  };
  for await (const record of readRecords(text)) {
    if (!good.has(record.line)) continue;
    // Checked once already; the rows that passed name no sku twice.
    batch.push(checkRecord(record, firstLine) as ImportRow);
    if (batch.length === BATCH) await flush();
  }
  await flush();
  return report;
}

async function importBatch(
  tx: Tx,
  batch: ImportRow[],
  options: { lowStockThreshold: number; who: StockChangeContext },
): Promise<{ created: number; updated: number; unchanged: number }> {
  const existing = await tx<ProductRow>('products')
    .whereIn(
      'sku',
      batch.map((r) => r.sku),
    )
    .orderBy('id')
    .forNoKeyUpdate()
    .select('*');
  const bySku = new Map(existing.map((p) => [p.sku, p]));
  const created: NewProductRow[] = [];
  const changed: Record<string, unknown>[] = [];
  let unchanged = 0;
  for (const row of batch) {
    const current = bySku.get(row.sku);
    if (!current) {
      created.push({
        id: randomUUID(),
        sku: row.sku,
        name: row.name,
        price: row.price,
        currency: row.currency,
        stock: row.stock,
        low_stock_threshold: row.low_stock_threshold ?? options.lowStockThreshold,
      });
      continue;
    }
    const next = {
      name: row.name,
      price: row.price,
      currency: row.currency,
      low_stock_threshold: row.low_stock_threshold ?? current.low_stock_threshold,
    };
    const fields = (Object.keys(next) as (keyof typeof next)[]).filter(
      (k) => next[k] !== (k === 'currency' ? current.currency.trim() : current[k]),
    );
    if (!fields.length && row.stock === current.stock_available) {
      unchanged += 1;
      continue;
    }
    changed.push({
      id: current.id,
      ...next,
      stock: row.stock,
      prev: current.stock_available,
      changed: fields,
    });
  }
  if (created.length || changed.length) {
    await withCtes(tx, [
      ...insertProductsCtes(tx, created, 'import', options.who),
      [
        'changed_products',
        tx.raw(
          `update products p
              set name = v.name, price = v.price, currency = v.currency,
                  low_stock_threshold = v.low_stock_threshold, stock_available = v.stock,
                  version = p.version + 1, updated_at = now()
             from json_to_recordset(?::json) as v(id uuid, name text, price bigint, currency text,
                                                  low_stock_threshold int, stock int, prev int, changed text[])
            where p.id = v.id
        returning p.*, p.stock_available as stock, v.prev as previous_stock, p.stock_available - v.prev as delta,
                  0 as reserved_delta, 'import'::text as reason, v.changed`,
          [JSON.stringify(changed)],
        ),
      ],
      ...recordStockChange('changed_products', options.who),
      productEventsCte(tx, 'changed_products_updated', 'changed_products', 'product.updated', options.who),
    ]).select(tx.raw('1'));
  }
  return { created: created.length, updated: changed.length, unchanged };
}
