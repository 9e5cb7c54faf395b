import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defaultDatabaseUrl, loadConfig, type Config } from '../lib/config.ts';
import { createDb, dropDatabase, migrateLatest, type Db } from '../lib/db.ts';
import { createLogger } from '../lib/logger.ts';
import { connectServices, destroyScratchRun } from '../lib/services.ts';
import { scrape, valueOf } from './prometheus.ts';
import { freePort, startNode, stopProcess, type BenchProcess } from './processes.ts';

/** What the scenarios load: an api URL, tokens to call it with, products to order. */
export interface Target {
  kind: 'own' | 'url';
  url: string;
  tokens: string[];
  productIds: string[];
  /** The target's database, when the benchmark can read it: per-order end-to-end figures come from it. */
  db: Db | undefined;
  /** PostgreSQL connections of the api's pool (the bare-PostgreSQL limit uses as many). */
  apiPoolMax: number;
  /** The processes the benchmark started (api and workers), for memory and CPU figures. */
  processes(): BenchProcess[];
  /** Every /metrics the pipeline serves: the api's, and each worker's. */
  metricsUrls(): string[];
  workerCount(): number;
  /** Runs exactly `n` worker processes (own pipeline only). */
  setWorkers(n: number): Promise<void>;
  /** Waits until every order taken is final and nothing waits in the outbox or the queue. */
  drain(timeoutMs: number): Promise<boolean>;
  stop(): Promise<void>;
  logDir: string;
}

/** Settings of the machine's services, from the environment as the processes read them (host and credentials). */
function serviceUrls() {
  return {
    postgres: process.env.DATABASE_URL || defaultDatabaseUrl(),
    amqp: process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
    redis: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  };
}

/** The database URL on the same server as DATABASE_URL, named `name`: never the developer's own database. */
export function scratchDatabaseUrl(name: string): string {
  const url = new URL(serviceUrls().postgres);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * A scratch run's settings: a fresh database, AMQP prefix and Redis prefix (dev data is never touched), production
 * settings otherwise, then `overrides`; and a folder for its processes' logs.
 */
export function scratchRun(overrides: Record<string, string>) {
  const run = randomBytes(4).toString('hex');
  const logDir = mkdtempSync(path.join(tmpdir(), `comanda-bench-${run}-`));
  const urls = serviceUrls();
  const env: Record<string, string> = {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    DATABASE_URL: scratchDatabaseUrl(`comanda_bench_${run}`),
    AMQP_URL: urls.amqp,
    AMQP_PREFIX: `bench-${run}.`,
    REDIS_URL: urls.redis,
    REDIS_KEY_PREFIX: `comanda-bench:${run}:`,
    JWT_SECRET: randomBytes(32).toString('base64url'),
    // Tokens come from the api's demo login: it signs with keys of its own, kept in its database.
    DEMO_LOGIN: 'true',
    SEED_DEMO: 'false',
    ...overrides,
  };
  return { run, logDir, env };
}

export const BENCH_PRODUCTS = 100;
const BENCH_CUSTOMERS = 16;

/**
 * Starts a pipeline of its own: a fresh database, AMQP prefix and Redis prefix (so dev data is never touched),
 * the api (with its relay) as one child process and `workers` worker processes, all built from `overrides`
 * on top of production settings. `stop()` removes the database, the queues and the keys again.
 */
export async function startOwnPipeline(options: {
  workers: number;
  overrides: Record<string, string>;
  apiNodeArgs?: string[];
}): Promise<Target> {
  const { logDir, env } = scratchRun({ LOG_LEVEL: 'warn', ...options.overrides });
  const config = loadConfig(env);
  const services = await connectServices(config, createLogger({ level: 'warn', name: 'comanda-bench' }), {
    createDatabase: true,
    name: 'comanda-bench',
  });
  const processes: BenchProcess[] = [];
  const workers: (BenchProcess & { metricsUrl: string })[] = [];
  let stopped = false;

  const cleanUp = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all([...workers, ...processes].map((p) => stopProcess(p)));
    await destroyScratchRun(services);
  };

  try {
    await migrateLatest(services.db);
    const productIds = await seedProducts(services.db);
    const apiPort = await freePort();
    const api = startNode(
      'api',
      'api/main.ts',
      { ...env, PORT: String(apiPort) },
      {
        logDir,
        nodeArgs: options.apiNodeArgs,
      },
    );
    processes.push(api);
    const url = `http://127.0.0.1:${apiPort}`;
    await waitFor(
      async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200,
      api,
      60_000,
    );

    // The API signs with keys of its own (kept in its database): ask it for the demo tokens.
    const tokens = await Promise.all(
      Array.from({ length: BENCH_CUSTOMERS }, (_, i) => demoToken(url, `bench-${i}`)),
    );

    const target: Target = {
      kind: 'own',
      url,
      tokens,
      productIds,
      db: services.db,
      apiPoolMax: config.DATABASE_POOL_MAX,
      logDir,
      processes: () => [...processes, ...workers],
      metricsUrls: () => [`${url}/metrics`, ...workers.map((w) => w.metricsUrl)],
      workerCount: () => workers.length,
      async setWorkers(n) {
        while (workers.length > n) await stopProcess(workers.pop()!);
        while (workers.length < n) {
          const port = await freePort();
          workers.push({
            ...startNode(
              `worker-${workers.length + 1}`,
              'worker/main.ts',
              { ...env, METRICS_PORT: String(port) },
              {
                logDir,
              },
            ),
            metricsUrl: `http://127.0.0.1:${port}/metrics`,
          });
        }
        const consumers = async () =>
          valueOf(await scrape(`${url}/metrics`), 'comanda_queue_consumers', {
            queue: 'worker.order-created',
          });
        await waitFor(async () => (await consumers()) === n, workers.at(-1) ?? api, 60_000);
      },
      drain: (timeoutMs) => drainDatabase(services.db, timeoutMs),
      stop: cleanUp,
    };
    await target.setWorkers(options.workers);
    return target;
  } catch (err) {
    await cleanUp().catch(() => {});
    throw new Error(`${(err as Error).message} (process logs in ${logDir})`, { cause: err });
  }
}

/** A pipeline someone else runs, at `url`: the benchmark only sends requests (and reads `databaseUrl` if given). */
export async function useRunningPipeline(options: {
  url: string;
  token?: string | undefined;
  databaseUrl?: string | undefined;
}): Promise<Target> {
  const url = options.url.replace(/\/+$/, '');
  const tokens = options.token
    ? [options.token]
    : await Promise.all(Array.from({ length: BENCH_CUSTOMERS }, (_, i) => demoToken(url, `bench-${i}`)));
  const products = (await (await fetch(`${url}/products`)).json()) as {
    data: { id: string; stock_available: number }[];
  };
  const productIds = products.data.filter((p) => p.stock_available > 0).map((p) => p.id);
  if (productIds.length === 0) throw new Error(`${url}/products lists no product in stock`);
  const db = options.databaseUrl
    ? createDb({
        url: options.databaseUrl,
        poolMax: 4,
        statementTimeoutMs: 0,
        applicationName: 'comanda-bench',
      })
    : undefined;
  return {
    kind: 'url',
    url,
    tokens,
    productIds,
    db,
    apiPoolMax: loadConfig({}).DATABASE_POOL_MAX,
    logDir: '',
    processes: () => [],
    metricsUrls: () => [`${url}/metrics`],
    workerCount: () => 0,
    setWorkers: () => Promise.reject(new Error('--workers needs the pipeline the benchmark starts itself')),
    async drain(timeoutMs) {
      if (db) return drainDatabase(db, timeoutMs);
      return until(async () => {
        const s = await scrape(`${url}/metrics`);
        return (
          valueOf(s, 'comanda_outbox_pending_messages') === 0 &&
          valueOf(s, 'comanda_queue_messages', { queue: 'worker.order-created' }) === 0
        );
      }, timeoutMs);
    },
    async stop() {
      await db?.destroy();
    },
  };
}

/** Products with stock that will not run out during a benchmark, and prices that never hit the payment limit. */
export async function seedProducts(db: Db): Promise<string[]> {
  const rows = Array.from({ length: BENCH_PRODUCTS }, (_, i) => ({
    sku: `BENCH-${String(i).padStart(3, '0')}`,
    name: `Bench product ${i}`,
    price: 100 + ((i * 37) % 50) * 10,
    currency: 'EUR',
    stock_available: 1_000_000_000,
  }));
  const inserted: { id: string }[] = await db('products').insert(rows).returning('id');
  return inserted.map((r) => r.id);
}

export async function drainDatabase(db: Db, timeoutMs: number): Promise<boolean> {
  return until(async () => {
    const { rows } = await db.raw<{ rows: { open: number; pending: number }[] }>(
      `select (select count(*)::int from orders where status in ('RECEIVED', 'INVENTORY_RESERVED')) as open,
              (select count(*)::int from outbox where published_at is null) as pending`,
    );
    return rows[0].open === 0 && rows[0].pending === 0;
  }, timeoutMs);
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/** Polls `check` until true; fails at once if `process` exits meanwhile (its log says why). */
async function waitFor(
  check: () => Promise<boolean>,
  process: BenchProcess,
  timeoutMs: number,
): Promise<void> {
  let exited = false;
  void process.exited.then(() => (exited = true));
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (exited) throw new Error(`${process.name} exited while starting; see ${process.logFile}`);
    if (Date.now() > deadline)
      throw new Error(`${process.name} not ready after ${timeoutMs} ms; see ${process.logFile}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export { dropDatabase };

export type { Config };

/** A demo token from the API's /login-demo (it signs with keys of its own). */
export async function demoToken(url: string, customer: string): Promise<string> {
  const res = await fetch(`${url}/login-demo?customer=${customer}`);
  if (res.status !== 200) {
    throw new Error(`${url}/login-demo answered ${res.status}: pass a token with --token`);
  }
  return ((await res.json()) as { token: string }).token;
}
