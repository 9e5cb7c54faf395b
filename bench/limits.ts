import { createHash, randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { ensureDatabase, migrateLatest, createDb } from '../lib/db.ts';
import { dropDatabase, scratchDatabaseUrl, BENCH_PRODUCTS } from './pipeline.ts';
import { Samples, summarize, type LatencySummary } from './stats.ts';

export interface LimitResult {
  concurrency: number;
  connections: number;
  durationS: number;
  transactions: number;
  errors: number;
  /** The first error, when there were any: a bare transaction should never fail. */
  firstError?: string;
  throughput: number;
  latency: LatencySummary;
}

/**
 * The machine's own ceiling for taking orders: the inserts of one POST /orders (order, items, trace step,
 * outbox row, idempotency key) as one transaction on bare `pg`, with `connections` connections driven by
 * `concurrency` clients in a closed loop, on a scratch database with comanda's schema. No HTTP, no JSON, no
 * knex, no idempotency lock or Redis: what comanda adds on top is the difference. `synchronous_commit` stays
 * whatever the server has (on by default), as for comanda.
 */
export async function measureBarePostgres(options: {
  concurrency: number;
  connections: number;
  durationS: number;
  onProgress?: (done: number, elapsedS: number) => void;
}): Promise<LimitResult> {
  const url = scratchDatabaseUrl(`comanda_bench_limit_${randomBytes(4).toString('hex')}`);
  await ensureDatabase(url);
  try {
    // The same schema as comanda's, through its own migrations.
    const knex = createDb({ url, poolMax: 1, statementTimeoutMs: 0 });
    try {
      await migrateLatest(knex);
    } finally {
      await knex.destroy();
    }
    const pool = new pg.Pool({
      connectionString: url,
      max: options.connections,
      application_name: 'comanda-bench',
    });
    // The database is dropped (with force) right after this run: a connection still closing then must not crash.
    pool.on('error', () => {});
    try {
      const products = await seed(pool);
      return await drive(pool, products, options);
    } finally {
      await pool.end();
    }
  } finally {
    await dropDatabase(url);
  }
}

async function seed(pool: pg.Pool): Promise<{ id: string; price: number }[]> {
  const values = Array.from(
    { length: BENCH_PRODUCTS },
    (_, i) => `('LIMIT-${i}', 'Product ${i}', ${100 + i}, 'EUR', 1000000000)`,
  );
  const { rows } = await pool.query<{ id: string; price: string }>(
    `insert into products (sku, name, price, currency, stock_available) values ${values.join(',')} returning id, price`,
  );
  return rows.map((r) => ({ id: r.id, price: Number(r.price) }));
}

async function drive(
  pool: pg.Pool,
  products: { id: string; price: number }[],
  options: {
    concurrency: number;
    connections: number;
    durationS: number;
    onProgress?: (done: number, elapsedS: number) => void;
  },
): Promise<LimitResult> {
  const latencies = new Samples();
  let errors = 0;
  let firstError: string | undefined;
  let n = 0;
  const start = performance.now();
  const end = start + options.durationS * 1000;
  const ticker = options.onProgress
    ? setInterval(() => options.onProgress!(latencies.length, (performance.now() - start) / 1000), 250)
    : undefined;
  const client = async () => {
    while (performance.now() < end) {
      const began = performance.now();
      try {
        await orderTransaction(pool, products, n++);
        latencies.push(performance.now() - began);
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, client));
  if (ticker) clearInterval(ticker);
  const seconds = (performance.now() - start) / 1000;
  return {
    concurrency: options.concurrency,
    connections: options.connections,
    durationS: options.durationS,
    transactions: latencies.length,
    errors,
    ...(firstError ? { firstError } : {}),
    throughput: latencies.length / seconds,
    latency: summarize(latencies.values()),
  };
}

/** The writes of one POST /orders, as comanda makes them, in one transaction. */
async function orderTransaction(
  pool: pg.Pool,
  products: { id: string; price: number }[],
  i: number,
): Promise<void> {
  const orderId = randomUUID();
  const messageId = randomUUID();
  const customer = `demo:bench-${i % 16}`;
  const lines = [products[i % products.length], products[(i * 7 + 3) % products.length]].map((p, k) => ({
    ...p,
    quantity: 1 + ((i + k) % 3),
  }));
  const total = lines.reduce((s, l) => s + l.price * l.quantity, 0);
  const payload = JSON.stringify({
    id: messageId,
    type: 'OrderCreated',
    occurred_at: new Date().toISOString(),
    order_id: orderId,
    data: {
      customer_id: customer,
      total,
      currency: 'EUR',
      items: lines.map((l) => ({ product_id: l.id, quantity: l.quantity, unit_price: l.price })),
    },
  });
  const client = await pool.connect();
  try {
    await client.query('begin');
    await client.query(
      `insert into orders (id, customer_id, status, total, currency, correlation_id)
       values ($1, $2, 'RECEIVED', $3, 'EUR', $4) returning *`,
      [orderId, customer, total, messageId],
    );
    await client.query(
      `insert into order_items (order_id, product_id, quantity, unit_price) values ($1, $2, $3, $4), ($1, $5, $6, $7)`,
      [
        orderId,
        lines[0].id,
        lines[0].quantity,
        lines[0].price,
        lines[1].id,
        lines[1].quantity,
        lines[1].price,
      ],
    );
    await client.query(
      `insert into order_events (order_id, type, from_status, to_status, data, message_id, correlation_id)
       values ($1, 'OrderReceived', null, 'RECEIVED', $2, $3, $4)`,
      [orderId, JSON.stringify({ total, currency: 'EUR' }), messageId, messageId],
    );
    await client.query(
      `insert into outbox (id, aggregate_id, exchange, type, payload, headers) values ($1, $2, 'orderCreated', 'OrderCreated', $3, $4)`,
      [messageId, orderId, payload, JSON.stringify({ 'x-correlation-id': messageId })],
    );
    await client.query(
      `insert into idempotency_keys (principal, key, fingerprint, state, response_status, response_body, response_headers, expires_at)
       values ($1, $2, $3, 'completed', 201, $4, $5, now() + interval '24 hours')`,
      [
        customer,
        orderId,
        createHash('sha256').update(payload).digest('base64url'),
        payload,
        JSON.stringify({ Location: `/orders/${orderId}` }),
      ],
    );
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
