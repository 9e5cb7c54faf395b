import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import test from 'ava';
import { createDb } from '../lib/db.ts';
import { DEMO_PRODUCTS, seedDemoProducts } from '../db/seeds/demo-products.ts';
import { getJson, postOrder } from './helpers/http.ts';
import { cleanupRun, isolatedEnv, until } from './helpers/pipeline.ts';

test('when a newcomer runs npm start on an empty machine, then the database is created, seeded, and an order posted with a demo token is CONFIRMED; SIGTERM stops it cleanly', async (t) => {
  t.timeout(60_000);
  const env = isolatedEnv({ LOG_LEVEL: 'info', PORT: '0' });
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    let url: string | undefined;
    createInterface({ input: child.stdout }).on('line', (line) => {
      const match = /comanda is running: (http:\/\/[^ ]+)/.exec(line);
      if (match) url = match[1];
    });
    await until(() => url !== undefined, 'comanda to say where it runs', 45_000);

    const products = await getJson(url!, '/products');
    t.deepEqual(
      products.body.data.map((p: { sku: string }) => p.sku).sort(),
      DEMO_PRODUCTS.map((p) => p.sku).sort(),
    );
    const { body: login } = await getJson(url!, '/login-demo');
    const order = await postOrder(url!, login.token, { items: [{ sku: 'CAFE-500', quantity: 1 }] });
    t.is(order.status, 201);
    let status = '';
    await until(async () => {
      status = (await getJson(url!, `/orders/${order.body.id}`, login.token)).body.status;
      return status === 'CONFIRMED' || status === 'REJECTED';
    }, 'the order to be final');
    t.is(status, 'CONFIRMED');

    child.kill('SIGTERM');
    t.is(await exit, 0);
  } finally {
    child.kill('SIGKILL');
    await exit;
    const db = createDb({ url: env.DATABASE_URL, poolMax: 1, statementTimeoutMs: 0 });
    // Seeding again changes nothing: the demo catalogue is only ever added, never reset.
    const again = await seedDemoProducts(db).catch(() => -1);
    const stock = await db('products')
      .where({ sku: 'CAFE-500' })
      .first()
      .catch(() => undefined);
    await db.destroy();
    t.is(again, 0);
    t.is(stock?.stock_available, DEMO_PRODUCTS.find((p) => p.sku === 'CAFE-500')!.stock_available - 1);
    await cleanupRun(env);
  }
});
