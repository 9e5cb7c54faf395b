import { loadConfig } from '../lib/config.ts';
import { createDb, ensureDatabase, migrateLatest } from '../lib/db.ts';
import { seedDemoProducts } from '../db/seeds/demo-products.ts';

/** `npm run migrate [-- --seed]`: creates the database if needed and brings its schema up to date. */
const config = loadConfig();
await ensureDatabase(config.DATABASE_URL);
const db = createDb({ url: config.DATABASE_URL, poolMax: 1, statementTimeoutMs: 0 });
try {
  const applied = await migrateLatest(db);
  console.log(applied.length ? `applied: ${applied.join(', ')}` : 'schema is up to date');
  if (process.argv.includes('--seed')) console.log(`demo products added: ${await seedDemoProducts(db)}`);
} finally {
  await db.destroy();
}
