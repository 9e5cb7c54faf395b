import { spawn, type ChildProcess } from 'node:child_process';
import test from 'ava';
import {
  buildProduct,
  waitForAllProcessed,
  waitForProcessed,
  type TestProduct,
} from '../helpers/factories.ts';
import { postOrder, sendJson, type HttpResult } from '../helpers/http.ts';
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

/**
 * Posts `count` orders from `concurrency` clients; with `cancelEvery`, the customer also cancels every n-th order
 * right after placing it (without waiting), so cancels race the workers at every step.
 */
async function postMany(
  p: TestPipeline,
  count: number,
  products: TestProduct[],
  concurrency: number,
  cancelEvery?: number,
) {
  const token = await p.token();
  const results: HttpResult[] = [];
  const cancels: Promise<HttpResult>[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const body = {
          items: [{ product_id: products[i % products.length].id, quantity: 1 + (i % 3) }],
          ...(i % 10 === 0 ? { payment: { token: 'tok_decline' } } : {}),
        };
        const res = await postOrder(p.url, token, body);
        results.push(res);
        if (cancelEvery && i % cancelEvery === 1 && res.status === 201) {
          const delay = (i * 37) % 400;
          cancels.push(
            new Promise((r) => setTimeout(r, delay)).then(() =>
              sendJson('POST', p.url, `/orders/${res.body.id}/cancel`, token),
            ),
          );
        }
      }
    }),
  );
  const cancelled = await Promise.all(cancels);
  if (cancelled.some((c) => c.status !== 200 && c.status !== 409)) {
    throw new Error(`a cancel failed: ${JSON.stringify(cancelled.find((c) => c.status >= 500)?.body)}`);
  }
  return results;
}

async function finalCount(p: TestPipeline): Promise<number> {
  const [row] = await p
    .db('orders')
    .whereIn('status', ['CONFIRMED', 'REJECTED', 'CANCELLED'])
    .count<{ n: string }[]>({ n: '*' });
  return Number(row.n);
}

/**
 * What must hold after any crash: every order settled (confirmed, rejected or cancelled) with each step once,
 * stock and payments matching the outcomes, and every captured payment of a cancelled order refunded once.
 */
async function assertConsistent(
  t: import('ava').ExecutionContext,
  p: TestPipeline,
  orders: HttpResult[],
  products: TestProduct[],
) {
  const ids = orders.map((o) => o.body.id as string);
  const rows: { id: string; status: string; total: number }[] = await p.db('orders').whereIn('id', ids);
  t.is(rows.length, ids.length);
  t.true(rows.every((r) => ['CONFIRMED', 'REJECTED', 'CANCELLED'].includes(r.status)));
  const cancelled = rows.filter((r) => r.status === 'CANCELLED').map((r) => r.id);
  // A refund is asked for in the cancel's (or the late charge's) transaction and made by a worker after it.
  await until(
    async () =>
      (await p.db('payments').whereIn('order_id', cancelled).andWhere({ status: 'captured' })).length === 0,
    'every captured payment of a cancelled order to be refunded',
    60_000,
  );

  const steps: { order_id: string; type: string; n: string }[] = await p
    .db('order_events')
    .whereIn('order_id', ids)
    .groupBy('order_id', 'type')
    .select('order_id', 'type')
    .count({ n: '*' });
  t.true(
    steps.every((s) => Number(s.n) === 1),
    'no step of any order happened twice',
  );

  const confirmed = rows.filter((r) => r.status === 'CONFIRMED').map((r) => r.id);
  const payments: { order_id: string; status: string }[] = await p.db('payments').whereIn('order_id', ids);
  t.is(payments.filter((x) => x.status === 'captured').length, confirmed.length);
  const refunded = payments.filter((x) => x.status === 'refunded').map((x) => x.order_id);
  t.true(
    refunded.every((id) => cancelled.includes(id)),
    'only cancelled orders are refunded',
  );
  const refundSteps = await p
    .db('order_events')
    .whereIn('order_id', ids)
    .andWhere({ type: 'PaymentRefunded' });
  t.is(refundSteps.length, refunded.length, 'one refund step per refunded payment');
  t.true(
    payments.filter((x) => x.status === 'pending').every((x) => cancelled.includes(x.order_id)),
    'a payment stays pending only when its order was cancelled before it was charged',
  );

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
  'when workers are killed with SIGKILL again and again while 500 orders flow and a fifth of them are cancelled, then every order settles exactly once and stock, payments and refunds add up',
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

      const answers = await postMany(p, 500, products, 10, 5);
      // Stock runs out during the run: once the workers have reserved it, a POST asking for more than is left is
      // answered 409 at once. Anything else refused is a failure.
      const orders = answers.filter((o) => o.status === 201);
      const refused = answers
        .filter((o) => o.status !== 201 && o.body?.code !== 'INSUFFICIENT_STOCK')
        .map((o) => `${o.status} ${o.body?.code}`);
      t.deepEqual(refused, [], 'every order is accepted or told the stock is short');
      t.true(orders.length > 250);
      await until(async () => (await finalCount(p)) >= 250 || kills >= 5, 'some crashes under way', 60_000);
      killing = false;
      await killer;
      await waitForAllProcessed(
        p.db,
        orders.map((o) => o.body.id),
        90_000,
      );

      const cancelled = await p
        .db('orders')
        .where({ status: 'CANCELLED' })
        .count<{ n: string }[]>({ n: '*' });
      t.log(
        `${orders.length} of 500 orders accepted (${cancelled[0].n} cancelled), ${kills} worker kills, all settled after ${Date.now() - started} ms`,
      );
      t.true(Number(cancelled[0].n) > 0);
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
    // A small prefetch, so the worker holds a few orders at a time (its batches) and the signal lands mid-run.
    const first = spawnWorker(p, {
      PAYMENT_LATENCY_MS: '20',
      SHUTDOWN_GRACE_MS: '10000',
      AMQP_PREFETCH: '5',
    });
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
