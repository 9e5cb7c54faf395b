import { spawn, type ChildProcess } from 'node:child_process';
import test from 'ava';
import {
  buildProduct,
  waitForAllProcessed,
  waitForProcessed,
  type TestProduct,
} from '../helpers/factories.ts';
import { postOrder, type HttpResult } from '../helpers/http.ts';
import { startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';

/** A worker in a process of its own, joined to the test's pipeline, so the test can kill it. */
function spawnWorker(p: TestPipeline, extra: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'worker/main.ts'], {
    env: { PATH: process.env.PATH, ...p.env, LOG_LEVEL: process.env.TEST_CHILD_LOGS ?? 'silent', ...extra },
    stdio: process.env.TEST_CHILD_LOGS ? ['ignore', 'inherit', 'inherit'] : 'ignore',
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

async function postMany(p: TestPipeline, count: number, products: TestProduct[], concurrency: number) {
  const token = await p.token();
  const results: HttpResult[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const body = {
          items: [{ product_id: products[i % products.length].id, quantity: 1 + (i % 3) }],
          ...(i % 10 === 0 ? { payment: { token: 'tok_decline' } } : {}),
        };
        results.push(await postOrder(p.url, token, body));
      }
    }),
  );
  return results;
}

async function finalCount(p: TestPipeline): Promise<number> {
  const [row] = await p
    .db('orders')
    .whereIn('status', ['CONFIRMED', 'REJECTED'])
    .count<{ n: string }[]>({ n: '*' });
  return Number(row.n);
}

/** What must hold after any crash: every order final once, stock and payments matching the outcomes. */
async function assertConsistent(
  t: import('ava').ExecutionContext,
  p: TestPipeline,
  orders: HttpResult[],
  products: TestProduct[],
) {
  const ids = orders.map((o) => o.body.id as string);
  const rows: { id: string; status: string; total: number }[] = await p.db('orders').whereIn('id', ids);
  t.is(rows.length, ids.length);
  t.true(rows.every((r) => r.status === 'CONFIRMED' || r.status === 'REJECTED'));

  const steps: { order_id: string; to_status: string; n: string }[] = await p
    .db('order_events')
    .whereIn('order_id', ids)
    .groupBy('order_id', 'to_status')
    .select('order_id', 'to_status')
    .count({ n: '*' });
  t.true(
    steps.every((s) => Number(s.n) === 1),
    'no step of any order happened twice',
  );

  const confirmed = rows.filter((r) => r.status === 'CONFIRMED').map((r) => r.id);
  const payments: { order_id: string; status: string }[] = await p.db('payments').whereIn('order_id', ids);
  t.is(payments.filter((x) => x.status === 'captured').length, confirmed.length);
  t.is(payments.filter((x) => x.status === 'pending').length, 0);

  for (const product of products) {
    const sold: { n: string | null }[] = await p
      .db('order_items')
      .whereIn('order_id', confirmed)
      .andWhere({ product_id: product.id })
      .sum({ n: 'quantity' });
    const now = await p.db('products').where({ id: product.id }).first();
    t.is(now.stock_available, product.stock_available - Number(sold[0].n ?? 0), `stock of ${product.sku}`);
    t.is(now.stock_reserved, 0);
  }
}

test.serial(
  'when workers are killed with SIGKILL again and again while 500 orders flow, then every order is final exactly once and stock and payments add up',
  async (t) => {
    t.timeout(180_000);
    const p = await startPipeline({ AMQP_PREFETCH: '10' }, { worker: false });
    const workers = [spawnWorker(p), spawnWorker(p)];
    let kills = 0;
    let killing = true;
    const killer = (async () => {
      while (killing) {
        await new Promise((r) => setTimeout(r, 1500));
        if (!killing) break;
        const victim = kills % workers.length;
        workers[victim].kill('SIGKILL');
        await exited(workers[victim]);
        kills++;
        workers[victim] = spawnWorker(p);
      }
    })();
    try {
      const products = await Promise.all(
        Array.from({ length: 4 }, () => buildProduct(p.db, { stock_available: 150 })),
      );
      const started = Date.now();

      const orders = await postMany(p, 500, products, 10);
      t.true(orders.every((o) => o.status === 201));
      await until(async () => (await finalCount(p)) >= 250 || kills >= 5, 'some crashes under way', 60_000);
      killing = false;
      await killer;
      await waitForAllProcessed(
        p.db,
        orders.map((o) => o.body.id),
        90_000,
      );

      t.log(`500 orders, ${kills} worker kills, all final after ${Date.now() - started} ms`);
      t.true(kills >= 1);
      await assertConsistent(t, p, orders, products);
    } finally {
      killing = false;
      for (const w of workers) w.kill('SIGKILL');
      await Promise.all(workers.map(exited));
      await p.stop();
    }
  },
);

test.serial(
  'when a worker gets SIGTERM under load, then it finishes what it holds, exits 0, and a new worker finishes the rest with nothing done twice',
  async (t) => {
    t.timeout(120_000);
    const p = await startPipeline({}, { worker: false });
    const first = spawnWorker(p, { PAYMENT_LATENCY_MS: '20', SHUTDOWN_GRACE_MS: '10000' });
    let second: ChildProcess | undefined;
    try {
      const products = await Promise.all(
        Array.from({ length: 2 }, () => buildProduct(p.db, { stock_available: 500 })),
      );
      const orders = await postMany(p, 200, products, 10);
      await until(async () => (await finalCount(p)) >= 20, 'the worker to be busy', 30_000);

      first.kill('SIGTERM');
      const code = await exited(first);
      const doneAtExit = await finalCount(p);
      second = spawnWorker(p);
      await waitForAllProcessed(
        p.db,
        orders.map((o) => o.body.id),
        60_000,
      );

      t.is(code, 0);
      t.log(`${doneAtExit} of 200 orders final when the first worker exited`);
      t.true(doneAtExit < 200, 'the shutdown happened mid-run');
      await assertConsistent(t, p, orders, products);
    } finally {
      first.kill('SIGKILL');
      second?.kill('SIGKILL');
      await Promise.all([exited(first), ...(second ? [exited(second)] : [])]);
      await p.stop();
    }
  },
);

test.serial(
  'when a second signal comes during a graceful shutdown, then the process exits at once, and the message it held is redelivered',
  async (t) => {
    const p = await startPipeline({}, { worker: false });
    const slow = spawnWorker(p, { PAYMENT_LATENCY_MS: '30000', SHUTDOWN_GRACE_MS: '60000' });
    let next: ChildProcess | undefined;
    try {
      const product = await buildProduct(p.db, { stock_available: 5 });
      const order = await postOrder(p.url, await p.token(), {
        items: [{ product_id: product.id, quantity: 1 }],
      });
      await until(
        async () =>
          (await p.db('orders').where({ id: order.body.id }).first()).status === 'INVENTORY_RESERVED',
        'the worker to hold the order in payment',
        20_000,
      );

      slow.kill('SIGTERM');
      slow.kill('SIGINT');
      const code = await exited(slow);
      next = spawnWorker(p);

      t.is(code, 130);
      t.is(await waitForProcessed(p.db, order.body.id, 30_000), 'CONFIRMED');
      t.is((await p.db('order_events').where({ order_id: order.body.id })).length, 3);
    } finally {
      slow.kill('SIGKILL');
      next?.kill('SIGKILL');
      await Promise.all([exited(slow), ...(next ? [exited(next)] : [])]);
      await p.stop();
    }
  },
);
