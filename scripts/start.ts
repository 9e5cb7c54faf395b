import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { prettyFactory } from 'pino-pretty';
import { seedDemoProducts } from '../db/seeds/demo-products.ts';
import { ConfigError, loadConfig, type Config } from '../lib/config.ts';
import { createDb, ensureDatabase, migrateLatest } from '../lib/db.ts';
import { createLogger } from '../lib/logger.ts';
import { unreachable } from '../lib/services.ts';
import { Supervisor } from '../lib/supervisor.ts';

/**
 * `npm start`: migrations and the demo seed, then every role in a process of its own — the api (with its relay),
 * WORKERS workers, the notifier and the analytics consumer — under one supervisor, so the pipeline uses every core. One log stream (JSON
 * lines with the role in each; readable when it goes to a terminal), one Ctrl-C stops them all in order, and a
 * child that dies is restarted. The children are the same programs as `npm run start:api|worker|notifier|analytics`.
 */
let config: Config;
try {
  config = loadConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`comanda: ${err.message}\n`);
  process.exit(78);
}

const pretty = process.stdout.isTTY ? prettyFactory({ colorize: true, ignore: 'pid,hostname' }) : undefined;
const write = (line: string) =>
  process.stdout.write(pretty ? pretty(line) : line.endsWith('\n') ? line : `${line}\n`);
const logger = createLogger({ level: config.LOG_LEVEL, name: 'comanda-supervisor', destination: { write } });

async function prepare(): Promise<void> {
  await ensureDatabase(config.DATABASE_URL).catch((err: unknown) => {
    throw unreachable('PostgreSQL', config.DATABASE_URL, err);
  });
  const db = createDb({ url: config.DATABASE_URL, poolMax: 1, statementTimeoutMs: 0 });
  try {
    const applied = await migrateLatest(db);
    if (applied.length) logger.info({ applied }, 'migrations applied');
    if (config.SEED_DEMO) {
      const added = await seedDemoProducts(db);
      if (added) logger.info({ added }, 'demo products seeded');
    }
  } finally {
    await db.destroy();
  }
}

const workers = config.WORKERS ?? Math.max(1, availableParallelism() - 1);
const metricsPort = (n: number): Record<string, string> =>
  config.METRICS_PORT === undefined || config.METRICS_PORT === 0
    ? {}
    : { METRICS_PORT: String(config.METRICS_PORT + n) };

// The children run as this file does: the compiled dist/ (npm start, npm run start:prod), or the TypeScript sources
// through tsx (the tests), with the same node options (the loader if any, the tracing preload).
const extension = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
const entry = (role: string) => fileURLToPath(new URL(`../${role}/main.${extension}`, import.meta.url));

// The consumers hold at most a batch of messages at a time, so a smaller heap than V8 would grow to is plenty, and
// a major collection is cheap at their live size: under load their resident memory stays near 120 MB instead of
// 150–190 (docs/performance.md). A cap costs the api CPU and latency (V8 then collects far more often), so its heap
// is bounded by how far it may grow past what the last full collection kept: 1.5× instead of up to 4×, which V8
// allows a young process with a small heap and which took the api's RSS from about 130 MB to 200 in its first
// burst of orders (docs/performance.md).
const consumerHeap = ['--max-old-space-size=96'];
const apiHeap = ['--heap-growing-percent=50'];

const supervisor = new Supervisor({
  roles: [
    // The notifier first: it mirrors OPS_WEBHOOK_URL into an endpoint before the first order can need it.
    { role: 'notifier', entry: entry('notifier'), env: () => metricsPort(workers), nodeArgs: consumerHeap },
    {
      role: 'worker',
      entry: entry('worker'),
      count: workers,
      env: (i) => metricsPort(i),
      nodeArgs: consumerHeap,
    },
    { role: 'api', entry: entry('api'), nodeArgs: apiHeap },
    {
      role: 'analytics',
      entry: entry('analytics'),
      env: () => metricsPort(workers + 1),
      nodeArgs: consumerHeap,
    },
  ],
  stopOrder: ['api', 'worker', 'analytics', 'notifier'],
  logger,
  env: process.env,
  // JSON lines go straight from each child to stdout; only a terminal's readable lines pass through here.
  ...(pretty ? { onLine: (line: string) => write(line) } : {}),
  onReady({ role, url }) {
    if (role === 'api' && url) logger.info(`comanda is running: ${url} (try: curl ${url}/login-demo)`);
  },
});

let stopping = false;
function shutdown(signal: string): void {
  if (stopping) {
    logger.warn({ signal }, 'second signal: ending every process now');
    supervisor.kill();
    process.exit(130);
  }
  stopping = true;
  logger.info({ signal }, 'stopping: api first, then workers, analytics, then the notifier');
  supervisor.stop().then(
    (clean) => process.exit(clean ? 0 : 1),
    (err: unknown) => {
      logger.error({ err }, 'stopping failed');
      process.exit(1);
    },
  );
}
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));

prepare().then(
  () => {
    logger.info({ workers }, 'starting the api, the workers, the notifier and analytics');
    supervisor.start();
  },
  (err: unknown) => {
    logger.fatal({ err }, 'could not prepare the database');
    process.stderr.write(`comanda: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
