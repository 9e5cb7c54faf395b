import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { importProducts } from '../catalog/import.ts';
import { loadConfig } from '../lib/config.ts';
import { createDb } from '../lib/db.ts';
import { AppError, ValidationError } from '../lib/errors.ts';

/**
 * `npm run import:products -- FILE.csv`: upserts the file's products by sku (see catalog/import.ts), with a
 * progress line, then prints the report: created, updated, unchanged and every rejected row with its line.
 * Exits 1 when a row was rejected, 2 when the file could not be imported at all.
 */
const file = process.argv[2];
if (!file || file === '--help') {
  console.error('usage: npm run import:products -- FILE.csv');
  console.error('columns: sku,name,price,currency,stock,low_stock_threshold (header required, any order)');
  process.exit(file ? 0 : 2);
}
const config = loadConfig();
const db = createDb({ url: config.DATABASE_URL, poolMax: 2, statementTimeoutMs: 0 });
const started = Date.now();
try {
  const text = await readFile(file, 'utf8');
  const report = await importProducts(db, text, {
    lowStockThreshold: config.LOW_STOCK_THRESHOLD,
    who: { actor: `cli:${userInfo().username}`, correlationId: randomUUID() },
    onProgress: (done, total) => {
      if (process.stderr.isTTY) process.stderr.write(`\rimporting ${file}: ${done}/${total} rows`);
      else process.stderr.write(`importing ${file}: ${done}/${total} rows\n`);
    },
  });
  if (process.stderr.isTTY) process.stderr.write('\n');
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(
    `${report.rows} rows in ${seconds} s: ${report.created} created, ${report.updated} updated, ` +
      `${report.unchanged} unchanged, ${report.rejected.length} rejected`,
  );
  for (const r of report.rejected) {
    console.log(
      `  line ${r.line}${r.sku ? ` (${r.sku})` : ''}: ${r.errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`,
    );
  }
  process.exitCode = report.rejected.length ? 1 : 0;
} catch (err) {
  if (err instanceof ValidationError) {
    console.error(`${file}: ${err.message}`);
    for (const e of err.errors) console.error(`  ${e.field}: ${e.message}`);
  } else if (err instanceof AppError) {
    console.error(`${file}: ${err.message}`);
  } else {
    console.error(`${file}: ${(err as Error).message}`);
  }
  process.exitCode = 2;
} finally {
  await db.destroy();
}
