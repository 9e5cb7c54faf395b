import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import test from 'ava';
import { DeadLetters, type DeadLetter } from '../../lib/amqp/dead-letters.ts';
import type { SettledEvent } from '../../lib/amqp/consumer.ts';
import { ServiceUnavailableError } from '../../lib/errors.ts';
import type {
  ChargeRequest,
  ChargeResult,
  PaymentGateway,
  RefundRequest,
  RefundResult,
} from '../../orders/payment-gateway.ts';
import { SimulatedPaymentGateway } from '../../orders/payment-gateway.ts';
import { startWorker, type RunningWorker } from '../../worker/worker.ts';
import { buildProduct, stockOf, waitForProcessed } from '../helpers/factories.ts';
import { getJson, http, postOrder } from '../helpers/http.ts';
import { publishRaw, startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';

const run = promisify(execFile);

/** A payment provider that is unreachable for its first `failures` charges of each order, then works. */
class FlakyGateway implements PaymentGateway {
  readonly calls = new Map<string, number>();
  private readonly real = new SimulatedPaymentGateway({ declineAbove: 1e9, latencyMs: 0 });
  constructor(private failures: number) {}
  failFor(failures: number): void {
    this.failures = failures;
  }
  async charge(request: ChargeRequest): Promise<ChargeResult> {
    const n = (this.calls.get(request.idempotencyKey) ?? 0) + 1;
    this.calls.set(request.idempotencyKey, n);
    if (n <= this.failures) throw new ServiceUnavailableError('payment provider timed out');
    return this.real.charge(request);
  }
  refund(request: RefundRequest): Promise<RefundResult> {
    return this.real.refund(request);
  }
}

let p: TestPipeline;
let worker: RunningWorker;
const gateway = new FlakyGateway(2);
const settled: SettledEvent[] = [];
let dlq: DeadLetters;

test.before(async () => {
  // Three retries (50, 100, 200 ms), so two failures heal in time and a hard outage runs out of retries.
  p = await startPipeline({}, { worker: false });
  worker = startWorker(p.services, { payments: gateway });
  worker.consumer.on('settled', (e) => settled.push(e));
  await until(() => worker.consumer.consuming, 'the worker to consume');
  dlq = new DeadLetters(p.services.amqp, p.services.topology);
});
test.after.always(async () => {
  await worker?.stop();
  await p?.stop();
});

const outcomesOf = (messageId: string) =>
  settled.filter((e) => e.messageId === messageId).map((e) => e.outcome);
const createdMessageId = async (orderId: string) =>
  (await p.db('outbox').where({ aggregate_id: orderId, type: 'OrderCreated' }).first()).id as string;

test.serial(
  'when the payment provider fails twice and then answers, then the order is processed once, after two delayed retries',
  async (t) => {
    const product = await buildProduct(p.db, { stock_available: 10 });

    const res = await postOrder(p.url, await p.token(), { items: [{ product_id: product.id, quantity: 2 }] });

    t.is(await waitForProcessed(p.db, res.body.id), 'CONFIRMED');
    const messageId = await createdMessageId(res.body.id);
    await until(() => outcomesOf(messageId).includes('acked'), 'the message to be acked');
    t.deepEqual(outcomesOf(messageId), ['retried', 'retried', 'acked']);
    t.is(gateway.calls.get(`order:${res.body.id}`), 3);
    t.deepEqual(await stockOf(p.db, product.id), { available: 8, reserved: 0 });
    t.is((await p.db('inventory_reservations').where({ order_id: res.body.id })).length, 1);
    const events = await p.db('order_events').where({ order_id: res.body.id }).orderBy('id');
    t.deepEqual(
      events.map((e: { to_status: string }) => e.to_status),
      ['RECEIVED', 'INVENTORY_RESERVED', 'CONFIRMED'],
    );
  },
);

test.serial(
  'when the provider stays down past the retry schedule, then the message is dead-lettered with the reason, and a replay after it is back confirms the order',
  async (t) => {
    const product = await buildProduct(p.db, { stock_available: 10 });
    gateway.failFor(1_000);

    const res = await postOrder(p.url, await p.token(), { items: [{ product_id: product.id, quantity: 1 }] });
    const messageId = await createdMessageId(res.body.id);
    await until(() => outcomesOf(messageId).includes('dead-lettered'), 'the message to be dead-lettered');

    t.deepEqual(outcomesOf(messageId), ['retried', 'retried', 'retried', 'dead-lettered']);
    const letter = (await dlq.list()).find((d) => d.id === messageId);
    t.truthy(letter);
    t.regex(
      letter!.reason,
      /retries exhausted after 4 attempts: SERVICE_UNAVAILABLE: payment provider timed out/,
    );
    t.is(letter!.queue, p.services.topology.queue('workerOrderCreated'));
    t.is((await p.db('orders').where({ id: res.body.id }).first()).status, 'INVENTORY_RESERVED');

    gateway.failFor(0);
    const admin = await p.token('ops', 'admin');
    const replay = await http(`${p.url}/admin/dead-letters/${messageId}/replay`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}` },
    });

    t.is(replay.status, 200);
    t.is(await waitForProcessed(p.db, res.body.id), 'CONFIRMED');
    t.deepEqual(await stockOf(p.db, product.id), { available: 9, reserved: 0 });
    t.false((await dlq.list()).some((d) => d.id === messageId));
  },
);

test.serial(
  'when poison messages arrive, then each is dead-lettered once with its reason and the queue keeps flowing',
  async (t) => {
    const unknownOrder = randomUUID();
    const poison = [
      { id: randomUUID(), content: '{"this is": not json', reason: /Malformed OrderCreated message/ },
      {
        id: randomUUID(),
        content: JSON.stringify({
          id: randomUUID(),
          type: 'OrderShipped',
          occurred_at: '',
          aggregate_type: 'order',
          aggregate_id: randomUUID(),
          version: 5,
          data: {},
        }),
        reason: /Malformed OrderCreated message/,
      },
      {
        id: randomUUID(),
        content: JSON.stringify({
          id: randomUUID(),
          type: 'OrderCreated',
          occurred_at: new Date().toISOString(),
          aggregate_type: 'order',
          aggregate_id: unknownOrder,
          version: 1,
          data: {},
        }),
        reason: new RegExp(`Order ${unknownOrder} does not exist`),
      },
    ];
    for (const m of poison)
      await publishRaw(p, 'orderCreated', m.content, { messageId: m.id, type: 'OrderCreated' });
    const product = await buildProduct(p.db);
    const res = await postOrder(p.url, await p.token(), { items: [{ product_id: product.id, quantity: 1 }] });

    t.is(await waitForProcessed(p.db, res.body.id), 'CONFIRMED');
    await until(() => poison.every((m) => outcomesOf(m.id).length > 0), 'every poison message to be settled');
    const letters = await dlq.list();
    for (const m of poison) {
      t.deepEqual(outcomesOf(m.id), ['dead-lettered'], `settled once: ${m.id}`);
      const letter = letters.find((d: DeadLetter) => d.id === m.id);
      t.regex(letter?.reason ?? '', m.reason);
      t.is(letter?.attempts, 1);
    }
  },
);

test.serial(
  'when an operator lists and replays dead letters with the CLI, then an already-processed message changes nothing',
  async (t) => {
    const product = await buildProduct(p.db, { stock_available: 5 });
    const res = await postOrder(p.url, await p.token(), { items: [{ product_id: product.id, quantity: 1 }] });
    await waitForProcessed(p.db, res.body.id);
    const processed = await p.db('outbox').where({ aggregate_id: res.body.id, type: 'OrderCreated' }).first();
    // Park a copy of an already-processed message, as if it had been dead-lettered by mistake.
    await p.services.amqp.withConfirmChannel(async (ch) => {
      ch.sendToQueue(
        p.services.topology.deadLetterQueue('workerOrderCreated'),
        Buffer.from(JSON.stringify(processed.payload)),
        {
          messageId: processed.id,
          type: 'OrderCreated',
          persistent: true,
          headers: { 'x-comanda-dead-reason': 'parked by hand' },
        },
      );
      await ch.waitForConfirms();
    });
    const env = {
      ...process.env,
      AMQP_URL: p.config.AMQP_URL,
      AMQP_PREFIX: p.config.AMQP_PREFIX,
      RETRY_DELAYS: '50ms,100ms,200ms',
    };

    const list = await run(process.execPath, ['--import', 'tsx', 'scripts/dlq.ts', 'list'], { env });
    t.regex(list.stdout, new RegExp(`${processed.id} .*parked by hand`));
    const replayed = await run(
      process.execPath,
      ['--import', 'tsx', 'scripts/dlq.ts', 'replay', processed.id],
      { env },
    );
    t.regex(replayed.stdout, /replayed 1/);

    await until(() => outcomesOf(processed.id).includes('acked'), 'the replayed message to be consumed');
    t.deepEqual(await stockOf(p.db, product.id), { available: 4, reserved: 0 });
    t.is((await p.db('order_events').where({ order_id: res.body.id })).length, 3);
    const order = await getJson(p.url, `/orders/${res.body.id}`, await p.token('ops', 'admin'));
    t.is(order.body.status, 'CONFIRMED');
  },
);

test('when a customer calls the dead-letter routes, then it is refused with 403', async (t) => {
  const res = await getJson(p.url, '/admin/dead-letters', await p.token());

  t.is(res.status, 403);
});
