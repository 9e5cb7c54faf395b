import { randomBytes, randomUUID } from 'node:crypto';
import type { Options } from 'amqplib';
import type { Role } from '../../accounts/roles.ts';
import type { ExchangeKey } from '../../lib/amqp/topology.ts';
import { startApi, type RunningApi } from '../../api/server.ts';
import { loadConfig, type Config } from '../../lib/config.ts';
import { migrateLatest, type Db } from '../../lib/db.ts';
import { createLogger } from '../../lib/logger.ts';
import { connectServices, destroyScratchRun, type Services } from '../../lib/services.ts';
import { startWorker, type RunningWorker } from '../../worker/worker.ts';
import { startNotifier, type RunningNotifier } from '../../notifier/notifier.ts';

export interface TestPipeline {
  url: string;
  config: Config;
  services: Services;
  db: Db;
  api: RunningApi;
  worker: RunningWorker | undefined;
  /** The notifier, when started with `notifier: true`. */
  notifier: RunningNotifier | undefined;
  /** The environment this pipeline was configured from: what a child process needs to join it. */
  env: Record<string, string>;
  /** A demo token for `customer` (a distinct JWT `sub` per name). */
  token(customer?: string, role?: Role): Promise<string>;
  stop(): Promise<void>;
}

/** Connection settings of the machine's services, overridable from the environment like the real processes. */
export function baseUrls() {
  return {
    postgres: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    amqp: process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
    redis: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  };
}

/** Settings for an isolated run: its own database, exchange/queue prefix and Redis key prefix. */
export function isolatedEnv(overrides: Record<string, string> = {}): Record<string, string> {
  const run = randomBytes(5).toString('hex');
  const dbUrl = new URL(baseUrls().postgres);
  dbUrl.pathname = `/comanda_test_${run}`;
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: dbUrl.toString(),
    AMQP_URL: baseUrls().amqp,
    AMQP_PREFIX: `test-${run}.`,
    REDIS_URL: baseUrls().redis,
    REDIS_KEY_PREFIX: `comanda-test:${run}:`,
    RELAY_SWEEP_INTERVAL_MS: '200',
    RETRY_DELAYS: '50ms,100ms,200ms',
    SHUTDOWN_GRACE_MS: '5000',
    ...overrides,
  };
}

/**
 * Starts the API (with its relay) and, unless `worker: false`, a worker, against a fresh database and a fresh
 * set of exchanges and queues. `stop()` removes all of it again.
 */
export async function startPipeline(
  overrides: Record<string, string> = {},
  options: { worker?: boolean; notifier?: boolean } = {},
): Promise<TestPipeline> {
  const env = isolatedEnv(overrides);
  const config = loadConfig(env);
  const logger = createLogger({ level: config.LOG_LEVEL, name: 'comanda-test' });
  const services = await connectServices(config, logger, { createDatabase: true, name: 'comanda-test' });
  await migrateLatest(services.db);
  const api = await startApi(services);
  await until(() => api.publisher.ready, 'the publisher to be ready');
  const worker = options.worker === false ? undefined : startWorker(services);
  if (worker) await until(() => worker.consumer.consuming, 'the worker to start consuming');
  const notifier = options.notifier ? await startNotifier(services) : undefined;

  return {
    url: api.url,
    config,
    services,
    db: services.db,
    api,
    worker,
    notifier,
    env,
    async token(customer = `c-${randomUUID().slice(0, 8)}`, role = 'customer') {
      const res = await fetch(`${api.url}/login-demo?customer=${customer}&role=${role}`);
      return ((await res.json()) as { token: string }).token;
    },
    async stop() {
      await worker?.stop();
      await notifier?.stop();
      await api.stop();
      await destroyScratchRun(services);
    },
  };
}

/** Removes what a run configured by `env` (from `isolatedEnv`) left: its queues, exchanges, Redis keys and database. */
export async function cleanupRun(env: Record<string, string>): Promise<void> {
  const config = loadConfig(env);
  await destroyScratchRun(
    await connectServices(config, createLogger({ level: 'silent' }), { createDatabase: true }),
  );
}

/** Publishes a raw message to one of the pipeline's exchanges, as another producer (or a bad one) would. */
export async function publishRaw(
  p: TestPipeline,
  exchange: ExchangeKey,
  content: Buffer | string,
  properties: Options.Publish = {},
): Promise<void> {
  await p.services.amqp.withConfirmChannel(async (ch) => {
    ch.publish(p.services.topology.exchange(exchange), '', Buffer.from(content), {
      persistent: true,
      ...properties,
    });
    await ch.waitForConfirms();
  });
}

/** Polls `check` every `intervalMs` until it is true (or throws after `timeoutMs`, saying what it waited for). */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 15,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
