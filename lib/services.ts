import { AmqpClient } from './amqp/connection.ts';
import { Topology } from './amqp/topology.ts';
import type { Config } from './config.ts';
import { createDb, dropDatabase, ensureDatabase, type Db } from './db.ts';
import type { Logger } from './logger.ts';
import { countQueries } from './metrics.ts';
import { connectRedis, createRedis, deleteOwnKeys, type Redis } from './redis.ts';

/** A dependency that cannot be reached at start: its message is the one line an operator needs. */
export class ServiceUnreachableError extends Error {
  readonly code = 'SERVICE_UNREACHABLE';
}

const HOW_TO_START = {
  PostgreSQL:
    'start it (pg_ctlcluster <version> main start, or docker compose up -d postgres) or set DATABASE_URL',
  RabbitMQ: 'start it (rabbitmq-server -detached, or docker compose up -d rabbitmq) or set AMQP_URL',
  Redis: 'start it (redis-server --daemonize yes, or docker compose up -d redis) or set REDIS_URL',
} as const;

/** A URL with its password masked, for log lines. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable url)';
  }
}

export function unreachable(
  service: keyof typeof HOW_TO_START,
  url: string,
  cause: unknown,
): ServiceUnreachableError {
  const reason = cause instanceof Error ? cause.message || cause.name : String(cause);
  return new ServiceUnreachableError(
    `${service} is not reachable at ${redactUrl(url)} (${reason.split('\n')[0]}): ${HOW_TO_START[service]}`,
  );
}

export interface Services {
  config: Config;
  logger: Logger;
  db: Db;
  redis: Redis;
  amqp: AmqpClient;
  topology: Topology;
}

/**
 * Connects to PostgreSQL, RabbitMQ and Redis. PostgreSQL and RabbitMQ must answer at start; Redis is only a
 * fast path, so a missing Redis is a warning and the client keeps reconnecting in the background.
 */
export async function connectServices(
  config: Config,
  logger: Logger,
  /** `broker: false`: the AMQP client is made but not connected, for a process that publishes and consumes nothing. */
  options: { createDatabase?: boolean; name?: string; broker?: boolean } = {},
): Promise<Services> {
  if (options.createDatabase) {
    await ensureDatabase(config.DATABASE_URL).catch((err: unknown) => {
      throw unreachable('PostgreSQL', config.DATABASE_URL, err);
    });
  }
  const db = createPool(config, logger, options.name ?? 'comanda');
  try {
    await db.raw('select 1');
  } catch (err) {
    await db.destroy();
    if ((err as { code?: string }).code === '3D000') {
      throw new ServiceUnreachableError(
        `PostgreSQL at ${redactUrl(config.DATABASE_URL)} has no such database: create it and its schema with "npm run migrate" (npm start does this by itself)`,
      );
    }
    throw unreachable('PostgreSQL', config.DATABASE_URL, err);
  }

  const amqp = new AmqpClient({ url: config.AMQP_URL, logger: logger.child({ component: 'amqp' }) });
  try {
    if (options.broker !== false) await amqp.connect();
  } catch (err) {
    await db.destroy();
    await amqp.close();
    throw unreachable('RabbitMQ', config.AMQP_URL, err);
  }

  const redis = createRedis(config.REDIS_URL, config.REDIS_KEY_PREFIX);
  try {
    await connectRedis(redis);
  } catch (err) {
    logger.warn(unreachable('Redis', config.REDIS_URL, err).message + ' — continuing without the fast path');
  }

  return { config, logger, db, redis, amqp, topology: topologyFor(config) };
}

/** The RabbitMQ topology as this configuration names and sizes it (prefix, delivery limit, retry delays). */
export function topologyFor(config: Config): Topology {
  return new Topology({
    prefix: config.AMQP_PREFIX,
    deliveryLimit: config.AMQP_DELIVERY_LIMIT,
    retryDelaysMs: config.RETRY_DELAYS,
  });
}

function createPool(config: Config, logger: Logger, name: string): Db {
  const db = createDb({
    url: config.DATABASE_URL,
    poolMax: config.DATABASE_POOL_MAX,
    statementTimeoutMs: config.DATABASE_STATEMENT_TIMEOUT_MS,
    acquireTimeoutMs: config.DATABASE_ACQUIRE_TIMEOUT_MS,
    applicationName: name,
    logger: logger.child({ component: 'db', pool: name }),
    // A process that runs its own relay kicks it after each commit: its outbox writes need not NOTIFY the
    // others (a NOTIFY takes a cluster-wide lock at commit, which serialises every committing transaction).
    settings: config.RELAY_ENABLED ? { 'comanda.outbox_notify': 'off' } : {},
    prepare: config.DATABASE_PREPARED_STATEMENTS,
    pipeline: config.DATABASE_PIPELINE,
  });
  countQueries(db, name);
  return db;
}

/**
 * The same services with a database pool of their own, for a component that shares a process with others (the
 * all-in-one `npm start`): a busy worker then cannot take every connection the API needs, or the other way round.
 */
export function withOwnPool(s: Services, name: string): Services {
  return { ...s, db: createPool(s.config, s.logger, name) };
}

/**
 * Closes a scratch run's services and removes everything it made: its exchanges and queues, its Redis keys and
 * its database. Only for runs with their own prefix and database (tests, benchmarks), never for a real install.
 */
export async function destroyScratchRun(s: Services): Promise<void> {
  // Consumers still attached (a test that left one running) would declare their queues again as they go.
  await s.amqp.detachAll();
  await s.amqp.withChannel((ch) => s.topology.deleteAll(ch)).catch(() => {});
  await deleteOwnKeys(s.redis).catch(() => {});
  await closeServices(s);
  await dropDatabase(s.config.DATABASE_URL);
}

export async function closeServices(s: Services): Promise<void> {
  await s.amqp.close();
  s.redis.disconnect();
  await s.db.destroy();
}
