import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import test from 'ava';
import { buildProduct } from '../helpers/factories.ts';
import { postOrder } from '../helpers/http.ts';
import { startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';
import {
  expectedProducts,
  expectedSummary,
  feedRowsPassed,
  fetchSummary,
  waitForAnalytics,
} from './helpers.ts';

/** The analytics reader in a process of its own, joined to the test's pipeline, so the test can kill it. */
function spawnAnalytics(p: TestPipeline): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'analytics/main.ts'], {
    env: { PATH: process.env.PATH, ...p.env, LOG_LEVEL: process.env.TEST_CHILD_LOGS ?? 'silent' },
    stdio: process.env.TEST_CHILD_LOGS ? ['ignore', 'inherit', 'inherit'] : 'ignore',
  });
}

function exited(child: ChildProcess): Promise<unknown> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', resolve));
}

const counted = (p: TestPipeline) => feedRowsPassed(p.db);

test('when the analytics process is killed with SIGKILL during a burst of 500 orders and restarted, then every figure is exact', async (t) => {
  t.timeout(180_000);
  const p = await startPipeline();
  let child = spawnAnalytics(p);
  try {
    const products = await Promise.all(
      [700, 1250, 2990].map((price) => buildProduct(p.db, { price, stock_available: 400 })),
    );
    const token = await p.token();
    let next = 0;
    const burst = Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < 500) {
          const i = next++;
          const body = {
            items: [{ product_id: products[i % 3].id, quantity: 1 + (i % 4) }],
            ...(i % 10 === 0 ? { payment: { token: 'tok_decline' } } : {}),
          };
          // As a client would: a 503 (the machine is busy) is retried with the same key, so still one order.
          const key = randomUUID();
          let res = await postOrder(p.url, token, body, { key });
          for (let attempt = 0; res.status === 503 && attempt < 20; attempt++) {
            await new Promise((r) => setTimeout(r, 250));
            res = await postOrder(p.url, token, body, { key });
          }
          if (res.status !== 201) throw new Error(`order refused: ${JSON.stringify(res.body)}`);
        }
      }),
    );
    await until(async () => (await counted(p)) >= 300, 'analytics to be counting', 120_000);
    child.kill('SIGKILL');
    await exited(child);
    const atKill = await counted(p);
    await burst;
    child = spawnAnalytics(p);
    await waitForAnalytics(p.db, 120_000);
    t.true(atKill < (await counted(p)), 'the restarted process counted what the killed one had not');

    const summary = await fetchSummary(p);
    const expected = await expectedSummary(p.db);
    t.deepEqual(summary.data, [expected]);
    t.is(expected.received, 500);
    t.true(expected.confirmed > 300);
    t.is(Object.keys(await expectedProducts(p.db)).length, 3);
  } finally {
    child.kill('SIGKILL');
    await exited(child);
    await p.stop();
  }
});
