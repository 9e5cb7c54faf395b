import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { startNotifier } from '../../notifier/notifier.ts';
import { buildProduct, waitForProcessed } from '../helpers/factories.ts';
import { http, postOrder } from '../helpers/http.ts';
import { startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';
import { TestReceiver } from './receiver.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

// No notifier of its own: each test starts the ones it needs. Serial, so one test's notifiers never send another's.
let p: TestPipeline;
test.before(async () => {
  p = await startPipeline({
    WEBHOOK_RETRY_SCHEDULE: '0s,200ms,500ms',
    WEBHOOK_TIMEOUT_MS: '2000',
    WEBHOOK_LEASE_GRACE_MS: '200',
    WEBHOOK_POLL_INTERVAL_MS: '100',
  });
});
test.after.always(async () => {
  await p?.stop();
});

async function registerEndpoint(token: string, url: string, eventTypes: string[]) {
  const res = await http(`${p.url}/webhook-endpoints`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ url, event_types: eventTypes }),
  });
  return res.body as { id: string; secret: string };
}

test.serial(
  'when a notifier is killed mid-run, then no delivery is lost: another notifier sends every one',
  async (t) => {
    let holding = true;
    const receiver = await TestReceiver.start(() => (holding ? 'hang' : { status: 204 }));
    t.teardown(() => receiver.stop());
    const customer = await p.token();
    const endpoint = await registerEndpoint(customer, receiver.url, ['order.created', 'order.confirmed']);
    const child = spawn(process.execPath, ['--import', 'tsx', 'notifier/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, ...p.env, LOG_LEVEL: 'debug' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.teardown(() => child.kill('SIGKILL'));
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    await until(() => output.includes('notifier started'), 'the notifier process to start', 45_000);

    const product = await buildProduct(p.db);
    const orders = await Promise.all(
      [1, 2, 3].map(
        async () =>
          (await postOrder(p.url, customer, { items: [{ product_id: product.id, quantity: 1 }] })).body
            .id as string,
      ),
    );
    await Promise.all(orders.map((id) => waitForProcessed(p.db, id)));
    await until(() => receiver.heldCount >= 3, 'the notifier process to be in the middle of sending');
    child.kill('SIGKILL');
    await once(child, 'exit');
    holding = false;
    const notifier = await startNotifier(p.services);
    t.teardown(() => notifier.stop());

    const deliveries = () => p.db('webhook_deliveries').whereIn('order_id', orders);
    await until(
      async () => (await deliveries()).every((d: any) => d.status === 'delivered'),
      'every delivery to be delivered',
    );
    const all = await deliveries();
    t.is(all.length, 6);
    for (const d of all) {
      t.true(
        receiver.received.some((r) => r.headers['webhook-id'] === d.id),
        `delivery ${d.id} reached the receiver`,
      );
    }
    // On a slow machine the process may have timed out some held requests itself before the kill: those are
    // ordinary failed attempts. The ones in flight at the kill are logged as abandoned by the notifier taking over.
    const abandoned = await p
      .db('webhook_attempts')
      .whereIn(
        'delivery_id',
        all.map((d: any) => d.id),
      )
      .where('error', 'like', 'the notifier stopped before this attempt finished%');
    t.true(abandoned.length >= 1, 'the attempts cut short by the kill are in the log');
    t.false(output.includes(endpoint.secret), 'the secret never reaches the log');
  },
);

test.serial('when two notifiers run side by side, then each delivery is sent exactly once', async (t) => {
  const receiver = await TestReceiver.start();
  t.teardown(() => receiver.stop());
  const customer = await p.token();
  const endpoint = await registerEndpoint(customer, receiver.url, ['order.created']);
  const sent = [0, 0];

  // Few slots each, so neither can take every delivery at once and both must claim side by side.
  const services = { ...p.services, config: { ...p.config, WEBHOOK_CONCURRENCY: 5 } };
  const notifiers = await Promise.all([startNotifier(services), startNotifier(services)]);
  notifiers.forEach((n, i) => n.on('attempt', () => sent[i]++));
  t.teardown(() => Promise.all(notifiers.map((n) => n.stop())));

  // The deliveries come after both notifiers listen (their trigger wakes them), so every attempt is counted.
  const ids: { id: string }[] = await p
    .db('webhook_deliveries')
    .insert(
      Array.from({ length: 60 }, (_, i) => ({
        endpoint_id: endpoint.id,
        event_type: 'order.created',
        payload: { type: 'order.created', timestamp: new Date().toISOString(), data: { n: i } },
      })),
    )
    .returning('id');
  await until(() => receiver.received.length >= 60, 'all 60 deliveries to arrive');
  await until(
    async () =>
      (await p.db('webhook_deliveries').where({ endpoint_id: endpoint.id, status: 'delivered' })).length ===
      60,
    'all 60 to be recorded',
  );
  const webhookIds = receiver.received.map((r) => r.headers['webhook-id']);
  t.is(webhookIds.length, 60);
  t.is(new Set(webhookIds).size, 60);
  t.deepEqual(webhookIds.sort(), ids.map((r) => r.id).sort());
  t.is(sent[0] + sent[1], 60);
  t.true(sent[0] > 0 && sent[1] > 0, `attempts per notifier: ${sent.join(', ')}`);
});
