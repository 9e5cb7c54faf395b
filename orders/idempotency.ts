import { createHash, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Db, Tx } from '../lib/db.ts';
import {
  IdempotencyKeyInFlightError,
  IdempotencyKeyInvalidError,
  IdempotencyKeyReusedError,
} from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import type { Redis } from '../lib/redis.ts';

/** A response as it is stored with its key and replayed. */
export interface StoredResponse {
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

export interface IdempotentResult extends StoredResponse {
  replayed: boolean;
}

export interface IdempotencyDeps {
  db: Db;
  redis: Redis;
  logger: Logger;
  ttlHours: number;
}

export interface IdempotentRequest {
  /** Whose key it is (the JWT `sub`): two clients may use the same key without meeting. */
  principal: string;
  key: string;
  /** Hash of what the request asks for; a different fingerprint under the same key is refused. */
  fingerprint: string;
}

const MAX_KEY_LENGTH = 255;

/**
 * Reads an `Idempotency-Key` header value: a Structured Field string (`"abc"`) or a bare token, at most 255
 * printable ASCII characters.
 */
export function parseIdempotencyKey(header: string): string {
  let key = header.trim();
  if (key.length >= 2 && key.startsWith('"') && key.endsWith('"')) {
    key = key.slice(1, -1).replace(/\\(["\\])/g, '$1');
  }
  if (key.length === 0) throw new IdempotencyKeyInvalidError('Idempotency-Key must not be empty');
  if (key.length > MAX_KEY_LENGTH) {
    throw new IdempotencyKeyInvalidError(`Idempotency-Key must be at most ${MAX_KEY_LENGTH} characters`);
  }
  if (!/^[\x20-\x7e]+$/.test(key)) {
    throw new IdempotencyKeyInvalidError('Idempotency-Key must contain printable ASCII characters only');
  }
  return key;
}

/** A stable hash of a request: the same JSON with keys in any order gives the same fingerprint. */
export function fingerprintRequest(method: string, path: string, body: unknown): string {
  return createHash('sha256').update(`${method} ${path}\n`).update(canonicalJson(body)).digest('base64url');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

interface KeyRow {
  principal: string;
  key: string;
  fingerprint: string;
  response_status: number;
  response_body: unknown;
  response_headers: Record<string, string> | null;
}

interface CachedEntry {
  fingerprint: string;
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

/**
 * Runs `work` at most once per (principal, key), however many times and however concurrently the request
 * comes. PostgreSQL is the truth: a transaction-scoped advisory lock on the key serialises attempts, the
 * stored response is written in the same transaction as the work, and a failure before commit stores nothing.
 * Redis is only a fast path (an in-flight lock and a replay cache); when it is down the same guarantees hold.
 */
export async function runIdempotent(
  deps: IdempotencyDeps,
  request: IdempotentRequest,
  work: (tx: Tx) => Promise<StoredResponse>,
): Promise<IdempotentResult> {
  try {
    const result = await runOnce(deps, request, work);
    idempotencyEvents.emit('outcome', result.replayed ? 'replayed' : 'executed');
    return result;
  } catch (err) {
    if (err instanceof IdempotencyKeyInFlightError) idempotencyEvents.emit('outcome', 'in_flight');
    else if (err instanceof IdempotencyKeyReusedError) idempotencyEvents.emit('outcome', 'key_reused');
    throw err;
  }
}

/** How an idempotent request ended: its work ran, a stored response was replayed, or it was refused. */
export type IdempotencyOutcome = 'executed' | 'replayed' | 'in_flight' | 'key_reused';

/** Every outcome of runIdempotent in this process, for metrics: subscribers need no change here. */
export const idempotencyEvents = new EventEmitter<{ outcome: [IdempotencyOutcome] }>();

async function runOnce(
  deps: IdempotencyDeps,
  request: IdempotentRequest,
  work: (tx: Tx) => Promise<StoredResponse>,
): Promise<IdempotentResult> {
  const cacheKey = `idem:${createHash('sha256').update(request.principal).digest('base64url')}:${request.key}`;
  const cached = await cacheGet(deps, cacheKey);
  if (cached) return replay(request, cached);

  const lockToken = randomUUID();
  const locked = await cacheLock(deps, `${cacheKey}:lock`, lockToken);
  if (locked === false) {
    const justDone = await cacheGet(deps, cacheKey);
    if (justDone) return replay(request, justDone);
    throw new IdempotencyKeyInFlightError(
      'Another request with this Idempotency-Key is in progress; retry shortly',
    );
  }
  try {
    const outcome = await deps.db.transaction(async (tx) => {
      const lock = await tx.raw<{ rows: { ok: boolean }[] }>(
        'select pg_try_advisory_xact_lock(hashtextextended(?, 0)) as ok',
        [JSON.stringify([request.principal, request.key])],
      );
      if (!lock.rows[0]?.ok) {
        throw new IdempotencyKeyInFlightError(
          'Another request with this Idempotency-Key is in progress; retry shortly',
        );
      }
      const existing = await tx<KeyRow>('idempotency_keys')
        .where({ principal: request.principal, key: request.key })
        .andWhere('expires_at', '>', tx.fn.now())
        .first('fingerprint', 'response_status', 'response_body', 'response_headers');
      if (existing) {
        return {
          stored: false,
          entry: {
            fingerprint: existing.fingerprint,
            status: existing.response_status,
            body: existing.response_body,
            headers: existing.response_headers ?? {},
          },
        };
      }
      // An expired key may be reused: its old row goes, in this same transaction.
      await tx('idempotency_keys').where({ principal: request.principal, key: request.key }).delete();
      const response = await work(tx);
      await tx('idempotency_keys').insert({
        principal: request.principal,
        key: request.key,
        fingerprint: request.fingerprint,
        state: 'completed',
        response_status: response.status,
        response_body: JSON.stringify(response.body),
        response_headers: response.headers,
        expires_at: tx.raw(`now() + make_interval(hours => ?)`, [deps.ttlHours]),
      });
      return { stored: true, entry: { fingerprint: request.fingerprint, ...response } };
    });
    await cacheSet(deps, cacheKey, outcome.entry);
    if (!outcome.stored) return replay(request, outcome.entry);
    return { ...outcome.entry, replayed: false };
  } finally {
    if (locked) await cacheUnlock(deps, `${cacheKey}:lock`, lockToken);
  }
}

function replay(request: IdempotentRequest, entry: CachedEntry): IdempotentResult {
  if (entry.fingerprint !== request.fingerprint) {
    throw new IdempotencyKeyReusedError(
      'This Idempotency-Key was already used with a different request body; use a new key for a new request',
    );
  }
  return { status: entry.status, body: entry.body, headers: entry.headers, replayed: true };
}

// Redis helpers: every failure means "no fast path", never an error for the client.

async function cacheGet(deps: IdempotencyDeps, key: string): Promise<CachedEntry | undefined> {
  try {
    const raw = await deps.redis.get(key);
    return raw ? (JSON.parse(raw) as CachedEntry) : undefined;
  } catch (err) {
    deps.logger.debug({ err }, 'idempotency cache unavailable');
    return undefined;
  }
}

async function cacheSet(deps: IdempotencyDeps, key: string, entry: CachedEntry): Promise<void> {
  try {
    // Cached for less than the key lives in PostgreSQL, so an expired key is never replayed from Redis.
    await deps.redis.set(key, JSON.stringify(entry), 'PX', Math.max(1, deps.ttlHours * 3_600_000 - 60_000));
  } catch (err) {
    deps.logger.debug({ err }, 'idempotency cache unavailable');
  }
}

/** true: we hold the lock; false: someone else does; undefined: Redis cannot say (PostgreSQL decides). */
async function cacheLock(deps: IdempotencyDeps, key: string, token: string): Promise<boolean | undefined> {
  try {
    return (await deps.redis.set(key, token, 'PX', 5_000, 'NX')) === 'OK';
  } catch {
    return undefined;
  }
}

const UNLOCK_SCRIPT = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

async function cacheUnlock(deps: IdempotencyDeps, key: string, token: string): Promise<void> {
  try {
    await deps.redis.eval(UNLOCK_SCRIPT, 1, key, token);
  } catch {
    // The lock expires by itself.
  }
}
