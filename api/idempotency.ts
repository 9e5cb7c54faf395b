import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { isUniqueViolation, type Db, type Tx } from '../lib/db.ts';
import { insertInto, query, sql, type Sql } from '../lib/sql.ts';
import {
  IdempotencyKeyInFlightError,
  IdempotencyKeyInvalidError,
  IdempotencyKeyReusedError,
} from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import type { Redis } from '../lib/redis.ts';
import type { GroupCommit } from '../lib/group-commit.ts';

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
  /** Where concurrent requests share a transaction (group commit); without it each has its own. */
  group?: GroupCommit;
  /** Told how long each phase of a request took, in seconds (for metrics). */
  observePhase?: (phase: IdempotentPhase, seconds: number) => void;
}

/**
 * The phases of an idempotent request: the replay cache's lookup, the wait for a transaction (a connection, or the
 * next group of a group commit) and the transaction itself, commit included. A retried attempt is timed again.
 */
export const IDEMPOTENT_PHASES = ['cache_lookup', 'group_wait', 'transaction'] as const;
export type IdempotentPhase = (typeof IDEMPOTENT_PHASES)[number];

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
  expires_in_ms: number;
}

interface CachedEntry {
  fingerprint: string;
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

/**
 * Runs `work` at most once per (principal, key), however many times and however concurrently the request
 * comes. PostgreSQL is the truth: a transaction-scoped advisory lock on the key serialises attempts (a second
 * attempt while the first is in flight is refused at once), the stored response is written in the same
 * transaction as the work, and a failure before commit stores nothing. Redis is only a replay cache; when it is
 * down the same guarantees hold.
 */
export async function runIdempotent(
  deps: IdempotencyDeps,
  request: IdempotentRequest,
  work: IdempotentWork,
  prefetch?: Prefetch,
): Promise<IdempotentResult> {
  try {
    const result = await runOnce(deps, request, work, prefetch);
    idempotencyEvents.emit('outcome', result.replayed ? 'replayed' : 'executed');
    return result;
  } catch (err) {
    if (err instanceof IdempotencyKeyInFlightError) idempotencyEvents.emit('outcome', 'in_flight');
    else if (err instanceof IdempotencyKeyReusedError) idempotencyEvents.emit('outcome', 'key_reused');
    throw err;
  }
}

/**
 * The statement that stores a response with its key. Work that writes with one statement of its own runs this one
 * inside it (as a CTE): the key and the work are then one round trip.
 */
export type StoreResponse = (response: StoredResponse) => Sql;

/**
 * What runs once per key, in the key's transaction. It may call `store` with the response it will return and run
 * the statement it gets inside its own; if it does not call it, the response is stored after it returns.
 * `prefetched` is the value of the caller's `prefetch`, read in the key's statement.
 */
export type IdempotentWork = (tx: Tx, store: StoreResponse, prefetched: unknown) => Promise<StoredResponse>;

/**
 * SQL of one value the work needs (a scalar subquery's select), read in the statement that takes the key, which
 * saves the work a round trip of its own. It runs whether or not the work then does.
 */
export type Prefetch = Sql;

/** How an idempotent request ended: its work ran, a stored response was replayed, or it was refused. */
export type IdempotencyOutcome = 'executed' | 'replayed' | 'in_flight' | 'key_reused';

/** Every outcome of runIdempotent in this process, for metrics: subscribers need no change here. */
export const idempotencyEvents = new EventEmitter<{ outcome: [IdempotencyOutcome] }>();

/** A concurrent request stored the same key between our snapshot and our insert: run again to replay it. */
class KeyStoredMeanwhile extends Error {}

/**
 * A key's first request costs one Redis round trip (a cache miss); the response is cached when it is first
 * replayed, so a retry storm reaches PostgreSQL once and Redis after that. Caching every first response, and
 * holding a Redis in-flight lock beside PostgreSQL's, cost a second round trip on every order for requests that
 * are almost never retried (docs/performance.md).
 */
async function runOnce(
  deps: IdempotencyDeps,
  request: IdempotentRequest,
  work: IdempotentWork,
  prefetch: Prefetch | undefined,
): Promise<IdempotentResult> {
  const cacheKey = `idem:${createHash('sha256').update(request.principal).digest('base64url')}:${request.key}`;
  const observe = deps.observePhase;
  let mark = performance.now();
  const lap = (phase: IdempotentPhase) => {
    const now = performance.now();
    observe?.(phase, (now - mark) / 1000);
    mark = now;
  };
  const cached = await cacheLookup(deps, cacheKey);
  lap('cache_lookup');
  if (cached) return replay(request, cached);
  for (let attempt = 1; ; attempt++) {
    try {
      const attemptOnce = (tx: Tx) => {
        lap('group_wait');
        return storeOnce(deps, tx, request, work, prefetch);
      };
      // In a group, the key keeps two attempts at it out of one transaction, where its lock would not hold.
      const outcome = await (deps.group
        ? deps.group.run(attemptOnce, cacheKey)
        : deps.db.transaction(attemptOnce));
      lap('transaction');
      if (outcome.stored) return { ...outcome.entry, replayed: false };
      await cacheStore(deps, cacheKey, outcome.entry, outcome.expiresInMs ?? 0);
      return replay(request, outcome.entry);
    } catch (err) {
      if (!(err instanceof KeyStoredMeanwhile) || attempt >= 3) throw err;
      lap('transaction');
    }
  }
}

/**
 * One attempt, in one transaction: the key's advisory lock and any stored response in one statement (which also
 * clears the key's expired row, so the key can be used again); then the work with the response stored alongside.
 * The lock serialises attempts at the key; the primary key of `idempotency_keys` is the last word should two ever
 * overlap (the later one fails on it, rolls back and replays).
 */
async function storeOnce(
  deps: IdempotencyDeps,
  tx: Tx,
  request: IdempotentRequest,
  work: IdempotentWork,
  prefetch: Prefetch | undefined,
): Promise<{ stored: boolean; entry: CachedEntry; expiresInMs?: number }> {
  const { principal, key } = request;
  const { rows } = await query<{ ok: boolean; existing: KeyRow | null; prefetched: unknown }>(
    tx,
    sql`with lock as (select pg_try_advisory_xact_lock(hashtextextended(${JSON.stringify([principal, key])}, 0)) as ok),
             expired as (delete from idempotency_keys
                          where principal = ${principal} and key = ${key} and expires_at <= now()
                            and (select ok from lock))
        select (select ok from lock) as ok,
               (select json_build_object('fingerprint', fingerprint, 'response_status', response_status,
                                         'response_body', response_body, 'response_headers', response_headers,
                                         'expires_in_ms', floor(extract(epoch from expires_at - now()) * 1000))
                  from idempotency_keys
                 where principal = ${principal} and key = ${key} and expires_at > now()) as existing
               ${prefetch ? sql`, (${prefetch}) as prefetched` : sql.raw('')}`,
  );
  if (!rows[0]?.ok) {
    throw new IdempotencyKeyInFlightError(
      'Another request with this Idempotency-Key is in progress; retry shortly',
    );
  }
  const existing = rows[0].existing;
  if (existing) {
    return {
      stored: false,
      expiresInMs: existing.expires_in_ms,
      entry: {
        fingerprint: existing.fingerprint,
        status: existing.response_status,
        body: existing.response_body,
        headers: existing.response_headers ?? {},
      },
    };
  }
  let storedByWork = false;
  const store: StoreResponse = (response) => {
    storedByWork = true;
    return keyRowInsert(deps, request, response);
  };
  try {
    const response = await work(tx, store, rows[0].prefetched);
    if (!storedByWork) await query(tx, keyRowInsert(deps, request, response));
    return { stored: true, entry: { fingerprint: request.fingerprint, ...response } };
  } catch (err) {
    // A live row for the key appeared after our lookup: the other attempt's response is the one to replay.
    if (isUniqueViolation(err, 'idempotency_keys_pkey')) throw new KeyStoredMeanwhile();
    throw err;
  }
}

function keyRowInsert(deps: IdempotencyDeps, request: IdempotentRequest, response: StoredResponse): Sql {
  return insertInto('idempotency_keys', [
    {
      principal: request.principal,
      key: request.key,
      fingerprint: request.fingerprint,
      state: 'completed',
      response_status: response.status,
      response_body: JSON.stringify(response.body),
      response_headers: response.headers,
      expires_at: sql`now() + make_interval(hours => ${deps.ttlHours})`,
      created_at: sql.raw('now()'),
    },
  ]);
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

async function cacheLookup(deps: IdempotencyDeps, key: string): Promise<CachedEntry | undefined> {
  try {
    const raw = await deps.redis.get(key);
    return raw ? (JSON.parse(raw) as CachedEntry) : undefined;
  } catch (err) {
    deps.logger.debug({ err }, 'idempotency cache unavailable');
    return undefined;
  }
}

async function cacheStore(
  deps: IdempotencyDeps,
  key: string,
  entry: CachedEntry,
  expiresInMs: number,
): Promise<void> {
  // Cached for a minute less than the key has left in PostgreSQL, so an expired key is never replayed from Redis.
  const ttlMs = expiresInMs - 60_000;
  if (ttlMs <= 0) return;
  try {
    await deps.redis.set(key, JSON.stringify(entry), 'PX', ttlMs);
  } catch (err) {
    deps.logger.debug({ err }, 'idempotency cache unavailable');
  }
}
