import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from '../lib/config.ts';
import { ensureDatabase, migrateLatest, type Db } from '../lib/db.ts';
import { createLogger } from '../lib/logger.ts';
import { connectServices, destroyScratchRun, type Services } from '../lib/services.ts';
import { DELIVERIES_CHANNEL } from '../webhooks/deliveries.ts';
import { generateSecret } from '../webhooks/signing.ts';
import { demoToken } from './pipeline.ts';

/**
 * The webhook benchmark: how soon after an order's status changes its receivers hear about it, and how many
 * deliveries per second one notifier gets out. It starts a pipeline of its own (fresh database, AMQP prefix and
 * Redis prefix, all removed afterwards) as separate processes — api (with relay), worker, notifier — and a local
 * receiver that answers 204 at once.
 *
 * 1. Latency: orders at `rate`/s for `durationS` s, with an operations endpoint on order.created, order.confirmed
 *    and order.rejected (two deliveries per order). Figure: status change → first delivery attempt, where the
 *    status change is when its transaction wrote the delivery row (conservative: it includes the commit).
 * 2. Throughput: `burst` deliveries made due at once; figure: deliveries/s until the last one is delivered.
 */
export interface WebhookBenchOptions {
  rate: number;
  durationS: number;
  burst: number;
  /** Settings for the started processes, on top of the benchmark's. */
  env?: Record<string, string>;
  log?: (line: string) => void;
}

export interface Percentiles {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface WebhookBenchResult {
  latency: {
    offeredRate: number;
    durationS: number;
    ordersTaken: number;
    /** From the first order offered until every delivery of every order was settled. */
    allSettledS: number;
    /** All deliveries (order.created and the final status). */
    statusChangeToFirstAttemptMs: Percentiles;
    /** Only order.confirmed / order.rejected: the figure the target speaks of. */
    finalStatusToFirstAttemptMs: Percentiles;
    /** Its two parts: until a notifier claimed the delivery (commit, NOTIFY, claim), then until it sent it. */
    finalStatusToClaimMs: Percentiles;
    claimToFirstAttemptMs: Percentiles;
    targetP95Ms: number;
    met: boolean;
  };
  throughput: { deliveries: number; seconds: number; perSecond: number };
}

export const WEBHOOK_BENCH_DEFAULTS = { rate: 200, durationS: 10, burst: 5000 } as const;
const TARGET_P95_MS = 200;
const ROOT = fileURLToPath(new URL('..', import.meta.url));

export async function runWebhookBench(
  options: Partial<WebhookBenchOptions> = {},
): Promise<WebhookBenchResult> {
  const { rate, durationS, burst } = { ...WEBHOOK_BENCH_DEFAULTS, ...options };
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const env = benchEnv(options.env ?? {});
  const config = loadConfig(env);
  const logger = createLogger({ level: 'warn', name: 'comanda-bench' });

  await ensureDatabase(config.DATABASE_URL);
  const services = await connectServices(config, logger, { name: 'comanda-bench' });
  const children: ChildProcess[] = [];
  const receiver = await startReceiver();
  try {
    await migrateLatest(services.db);
    // The worker's queue exists before the first order is published, whoever starts first.
    await services.amqp.withChannel((ch) => services.topology.assertQueue(ch, 'workerOrderCreated'));
    const productIds = await createProducts(services.db);
    await createOperationsEndpoint(services.db, receiver.url, [
      'order.created',
      'order.confirmed',
      'order.rejected',
    ]);

    const port = Number(env.PORT);
    children.push(startChild('api', 'api/main.ts', { ...env, LOG_LEVEL: 'warn' }));
    children.push(startChild('worker', 'worker/main.ts', env));
    const notifier = startChild('notifier', 'notifier/main.ts', { ...env, LOG_LEVEL: 'info' });
    children.push(notifier);
    await Promise.all([
      waitForLine(notifier, 'notifier started'),
      waitFor(
        async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.ok === true,
      ),
    ]);

    log(`webhooks: ${rate} orders/s for ${durationS} s…`);
    // The API signs with keys of its own (kept in its database): ask it for the demo tokens.
    const tokens = await Promise.all(
      Array.from({ length: 8 }, (_, i) => demoToken(`http://127.0.0.1:${port}`, `bench-${i}`)),
    );
    const started = Date.now();
    const orderIds = await offerOrders(`http://127.0.0.1:${port}`, rate, durationS, tokens, productIds);
    const taken = orderIds.length;
    log(`webhooks: ${taken} orders taken; waiting for their deliveries…`);
    await waitFor(() => deliveriesSettled(services.db, taken * 2), 180_000);
    const allSettledS = Math.round((Date.now() - started) / 100) / 10;

    const all = await firstAttemptLatencies(services.db, 'a.started_at - d.created_at', false);
    const final = await firstAttemptLatencies(services.db, 'a.started_at - d.created_at', true);
    const toClaim = await firstAttemptLatencies(services.db, 'd.claimed_at - d.created_at', true);
    const claimToAttempt = await firstAttemptLatencies(services.db, 'a.started_at - d.claimed_at', true);

    log(`webhooks: burst of ${burst} deliveries…`);
    const throughput = await measureBurst(services.db, burst, receiver.url);

    return {
      latency: {
        offeredRate: rate,
        durationS,
        ordersTaken: taken,
        allSettledS,
        statusChangeToFirstAttemptMs: all,
        finalStatusToFirstAttemptMs: final,
        finalStatusToClaimMs: toClaim,
        claimToFirstAttemptMs: claimToAttempt,
        targetP95Ms: TARGET_P95_MS,
        met: final.p95 <= TARGET_P95_MS,
      },
      throughput,
    };
  } finally {
    await Promise.all(children.map(stopChild));
    await receiver.stop();
    await cleanUp(services);
  }
}

function benchEnv(extra: Record<string, string>): Record<string, string> {
  const run = randomBytes(4).toString('hex');
  const database = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  database.pathname = `/comanda_bench_webhooks_${run}`;
  return {
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: String(20_000 + Math.floor(Math.random() * 20_000)),
    DATABASE_URL: database.toString(),
    AMQP_URL: process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
    AMQP_PREFIX: `bench-webhooks-${run}.`,
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    REDIS_KEY_PREFIX: `comanda-bench-webhooks:${run}:`,
    JWT_SECRET: randomBytes(32).toString('base64url'),
    DEMO_LOGIN: 'false',
    SEED_DEMO: 'false',
    // The receiver is on this machine.
    WEBHOOK_ALLOW_PRIVATE_URLS: 'true',
    ...extra,
  };
}

function startChild(name: string, entry: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr.on('data', (c: Buffer) => process.stderr.write(`[${name}] ${c.toString()}`));
  return child;
}

async function waitForLine(child: ChildProcess, text: string): Promise<void> {
  let seen = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      seen = (seen + c.toString()).slice(-10_000);
      if (seen.includes(text)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`process exited (${code}) before "${text}"`)));
  });
  child.stdout!.resume();
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await once(child, 'exit');
  clearTimeout(timer);
}

async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function startReceiver(): Promise<{ url: string; stop(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function createProducts(db: Db): Promise<string[]> {
  const rows: { id: string }[] = await db('products')
    .insert(
      Array.from({ length: 50 }, (_, i) => ({
        sku: `BENCH-WH-${i}`,
        name: `Bench product ${i}`,
        price: 100 + i,
        currency: 'EUR',
        stock_available: 1_000_000_000,
      })),
    )
    .returning('id');
  return rows.map((r) => r.id);
}

async function createOperationsEndpoint(db: Db, url: string, eventTypes: string[]): Promise<string> {
  const [row]: { id: string }[] = await db('webhook_endpoints')
    .insert({
      owner: 'operations',
      url,
      event_types: eventTypes,
      secret: generateSecret(),
      description: 'bench',
    })
    .returning('id');
  return row.id;
}

/** Open loop: `rate` POST /orders per second for `durationS`, whatever the answers' speed. Returns the ids taken. */
async function offerOrders(
  baseUrl: string,
  rate: number,
  durationS: number,
  tokens: string[],
  productIds: string[],
): Promise<string[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const ids: string[] = [];
  const pending: Promise<void>[] = [];
  const total = rate * durationS;
  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
    for (; sent < due; sent++) {
      const i = sent;
      pending.push(
        postOrder(agent, baseUrl, tokens[i % tokens.length], productIds[i % productIds.length]).then((id) => {
          if (id) ids.push(id);
        }),
      );
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(pending);
  agent.destroy();
  return ids;
}

function postOrder(
  agent: http.Agent,
  baseUrl: string,
  token: string,
  productId: string,
): Promise<string | undefined> {
  const body = JSON.stringify({ items: [{ product_id: productId, quantity: 1 }] });
  return new Promise((resolve) => {
    const req = http.request(
      `${baseUrl}/orders`,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          authorization: `Bearer ${token}`,
          'idempotency-key': randomUUID(),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode !== 201) return resolve(undefined);
          resolve((JSON.parse(Buffer.concat(chunks).toString()) as { id: string }).id);
        });
      },
    );
    req.on('error', () => resolve(undefined));
    req.end(body);
  });
}

async function deliveriesSettled(db: Db, expected: number): Promise<boolean> {
  const [row]: { settled: number }[] = await db('webhook_deliveries')
    .whereNotNull('order_id')
    .select(db.raw("count(*) filter (where status <> 'pending')::int as settled"));
  return row.settled >= expected;
}

/** Percentiles of `interval` over the deliveries' first attempts (deliveries attempted once: claimed once). */
async function firstAttemptLatencies(db: Db, interval: string, finalOnly: boolean): Promise<Percentiles> {
  const result: { rows: Percentiles[] } = await db.raw(
    `select count(*)::int as count,
            round(percentile_cont(0.5) within group (order by ms))::int as p50,
            round(percentile_cont(0.95) within group (order by ms))::int as p95,
            round(percentile_cont(0.99) within group (order by ms))::int as p99,
            round(max(ms))::int as max
       from (select extract(epoch from (${interval})) * 1000 as ms
               from webhook_deliveries d
               join webhook_attempts a on a.delivery_id = d.id and a.attempt = 1
              where d.order_id is not null and d.attempt_count = 1 ${finalOnly ? "and d.event_type <> 'order.created'" : ''}) t`,
  );
  return result.rows[0];
}

/** `n` deliveries made due in one transaction; the notifier is woken as the worker would wake it. */
async function measureBurst(db: Db, n: number, url: string): Promise<WebhookBenchResult['throughput']> {
  const endpointId = await createOperationsEndpoint(db, url, ['order.created']);
  const payload = { type: 'order.created', timestamp: new Date().toISOString(), data: { bench: true } };
  const started = Date.now();
  await db.transaction(async (tx) => {
    await tx.raw(
      `insert into webhook_deliveries (endpoint_id, event_type, payload)
       select ?, 'order.created', ?::jsonb from generate_series(1, ?)`,
      [endpointId, JSON.stringify(payload), n],
    );
    await tx.raw('select pg_notify(?, ?)', [DELIVERIES_CHANNEL, '']);
  });
  await waitFor(async () => {
    const [row]: { n: string }[] = await db('webhook_deliveries')
      .where({ endpoint_id: endpointId, status: 'delivered' })
      .count({ n: '*' });
    return Number(row.n) >= n;
  }, 300_000);
  const [last]: { at: Date }[] = await db('webhook_deliveries')
    .where({ endpoint_id: endpointId })
    .max({ at: 'delivered_at' });
  const seconds = (last.at.getTime() - started) / 1000;
  return { deliveries: n, seconds: Math.round(seconds * 100) / 100, perSecond: Math.round(n / seconds) };
}

function cleanUp(services: Services): Promise<void> {
  return destroyScratchRun(services);
}

/** One paragraph for a report or a terminal. */
export function describeWebhookBench(r: WebhookBenchResult): string {
  const f = r.latency.finalStatusToFirstAttemptMs;
  const a = r.latency.statusChangeToFirstAttemptMs;
  return [
    `webhooks: ${r.latency.ordersTaken} orders offered at ${r.latency.offeredRate}/s; they and their ${a.count} deliveries were all settled after ${r.latency.allSettledS} s`,
    `  final status → first attempt: p50 ${f.p50} ms, p95 ${f.p95} ms, p99 ${f.p99} ms, max ${f.max} ms` +
      ` (target p95 ≤ ${r.latency.targetP95Ms} ms: ${r.latency.met ? 'met' : 'NOT met'})`,
    `    of which status change → claimed: p50 ${r.latency.finalStatusToClaimMs.p50} ms, p95 ${r.latency.finalStatusToClaimMs.p95} ms;` +
      ` claimed → sent: p50 ${r.latency.claimToFirstAttemptMs.p50} ms, p95 ${r.latency.claimToFirstAttemptMs.p95} ms`,
    `  any status change → first attempt: p50 ${a.p50} ms, p95 ${a.p95} ms, p99 ${a.p99} ms, max ${a.max} ms`,
    `  burst: ${r.throughput.deliveries} deliveries in ${r.throughput.seconds} s → ${r.throughput.perSecond} deliveries/s`,
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string', default: String(WEBHOOK_BENCH_DEFAULTS.rate) },
      duration: { type: 'string', default: String(WEBHOOK_BENCH_DEFAULTS.durationS) },
      burst: { type: 'string', default: String(WEBHOOK_BENCH_DEFAULTS.burst) },
      json: { type: 'boolean', default: false },
    },
  });
  const result = await runWebhookBench({
    rate: Number(values.rate),
    durationS: Number(values.duration),
    burst: Number(values.burst),
  });
  process.stdout.write(
    values.json ? `${JSON.stringify(result, null, 2)}\n` : `${describeWebhookBench(result)}\n`,
  );
}
