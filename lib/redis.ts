import { Redis } from 'ioredis';

export type { Redis };

/**
 * A Redis client for fast paths only: commands fail at once while Redis is unreachable (no offline queue, one
 * try), so callers fall back to PostgreSQL instead of waiting. It reconnects on its own in the background. The
 * commands of one turn of the event loop (the idempotency lookups of the requests read together) go out in one
 * write (auto-pipelining): a write per command cost a system call and a wake-up of Redis each.
 */
export function createRedis(url: string, keyPrefix: string): Redis {
  const redis = new Redis(url, {
    keyPrefix,
    lazyConnect: true,
    enableAutoPipelining: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 2000,
    commandTimeout: 500,
    retryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 5000),
  });
  // Errors surface on the commands; the client-level event would otherwise crash the process.
  redis.on('error', () => {});
  return redis;
}

export async function connectRedis(redis: Redis): Promise<void> {
  if (redis.status === 'wait' || redis.status === 'end') await redis.connect();
}

/** Deletes every key of the client's key prefix (a scratch run's cache and locks), leaving other keys alone. */
export async function deleteOwnKeys(redis: Redis): Promise<void> {
  const prefix = redis.options.keyPrefix ?? '';
  if (!prefix) throw new Error('refusing to delete keys without a key prefix');
  let cursor = '0';
  do {
    // SCAN does not apply the client's keyPrefix, and DEL does: strip it from what SCAN returns.
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length) await redis.del(...keys.map((k) => k.slice(prefix.length)));
  } while (cursor !== '0');
}
