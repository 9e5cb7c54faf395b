import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import knex, { type Knex } from 'knex';
import pg from 'pg';
import type { Logger } from './logger.ts';

// Money and counters are bigint columns well below 2^53: read them as numbers, not strings.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export type { Knex };
export type Db = Knex;
export type Tx = Knex.Transaction;

const MIGRATIONS_DIR = fileURLToPath(new URL('../db/migrations/', import.meta.url));

export interface DbOptions {
  url: string;
  poolMax: number;
  statementTimeoutMs: number;
  acquireTimeoutMs?: number;
  applicationName?: string;
  /** Where knex's own warnings go (connection errors while PostgreSQL is away); silent when absent. */
  logger?: Logger;
  /**
   * Session settings of every connection (`SET key = value` at connect, in the startup packet: no round trip),
   * such as `comanda.outbox_notify`.
   */
  settings?: Record<string, string>;
  /**
   * Sends each statement with parameters as a named prepared statement (named by a hash of its text), so
   * PostgreSQL parses and plans it once per connection: the order pipeline's big statements are the same text
   * every time and planning them was a large share of their cost.
   */
  prepare?: boolean;
  /**
   * Sends several statements of a transaction without waiting between them (node-postgres's pipeline mode): knex's
   * BEGIN goes out with the transaction's first statement, `commitWithNext` sends its last one with the COMMIT, and
   * `together` sends independent ones at once. Each wait saved is a round trip's latency, a system call and a
   * wake-up on both sides; what that is worth is measured in docs/performance.md.
   */
  pipeline?: boolean;
}

/** A knex instance on PostgreSQL, with a statement timeout so no query holds a connection forever. */
export function createDb(options: DbOptions): Db {
  // A prepared statement is planned anew for each run while PostgreSQL judges a custom plan cheaper than the
  // generic one, which it does for the pipeline's CTEs: their planning cost as much as running them. Their plans
  // do not depend on the values (lookups by key), so prepared statements keep the generic plan.
  const settings = options.prepare
    ? { plan_cache_mode: 'force_generic_plan', ...options.settings }
    : options.settings;
  const db = knex({
    client: 'pg',
    connection: {
      connectionString: options.url,
      application_name: options.applicationName ?? 'comanda',
      statement_timeout: options.statementTimeoutMs || undefined,
      ...(settings && Object.keys(settings).length
        ? {
            options: Object.entries(settings)
              .map(([k, v]) => `-c ${k}=${v}`)
              .join(' '),
          }
        : {}),
      connectionTimeoutMillis: 5000,
      ...(options.pipeline ? { pipeline: true } : {}),
    },
    pool: {
      min: 0,
      max: options.poolMax,
      idleTimeoutMillis: 30_000,
      ...(options.prepare || options.pipeline
        ? {
            afterCreate: (connection: PgClient, done: (err?: Error) => void) => {
              tuneConnection(connection, { prepare: !!options.prepare, pipeline: !!options.pipeline });
              done();
            },
          }
        : {}),
    },
    acquireConnectionTimeout: options.acquireTimeoutMs ?? 5000,
    log: {
      warn: (message: unknown) => options.logger?.warn({ knex: String(message) }, 'database warning'),
      error: (message: unknown) => options.logger?.error({ knex: String(message) }, 'database error'),
      deprecate: () => {},
      debug: () => {},
    },
  });
  return db;
}

interface PgQueryConfig {
  text?: string;
  values?: unknown[];
  name?: string;
}

type PgCallback = (err: Error | null, result?: unknown) => void;

/** The node-postgres client under a knex connection, as far as comanda touches it. */
interface PgClient {
  query: (config: unknown, ...rest: unknown[]) => unknown;
  connection: { stream: { cork(): void; uncork(): void } };
}

/** Where a connection's transaction stands, for the pipelining of BEGIN and COMMIT. */
interface Pipelining {
  /** knex's BEGIN, answered here and not sent yet: it goes out with the first statement. */
  beginHeld: boolean;
  /** How many statements the transaction has left (`commitWithNext`): the last goes out with the COMMIT. 0: unknown. */
  commitIn: number;
  /** The transaction ended with its last statement: knex's COMMIT (or ROLLBACK) is answered here. */
  ended: boolean;
  /** The socket is corked until the end of this tick: the statements sent meanwhile go out in one write. */
  corked: boolean;
}

const pipelining = new WeakMap<object, Pipelining>();

/** A result for a statement answered here rather than by PostgreSQL (a held BEGIN, a COMMIT already sent). */
function localResult(command: string) {
  return { command, rowCount: null, rows: [], fields: [] };
}

const TRANSACTION_END = /^(COMMIT|ROLLBACK);?$/i;

/**
 * Tunes a new connection. With `prepare`, every statement that has parameters (a single statement, so the extended
 * protocol can prepare it) is named after its text; node-postgres then prepares it once per connection and sends
 * only Bind/Execute afterwards. With `pipeline`, knex's BEGIN is held back and written with the transaction's
 * first statement, and a statement marked by `commitWithNext` is written with the COMMIT: a transaction of n
 * statements is n round trips instead of n + 2. Done on each connection rather than on knex's client, because knex
 * runs a transaction's statements through a client object of its own that would bypass it.
 *
 * A held BEGIN can only fail with the connection itself (PostgreSQL refuses BEGIN only inside an aborted
 * transaction, and knex never leaves one behind), in which case the statement sent with it fails too; should it
 * ever fail alone, its error is still the statement's, so the caller rolls back.
 */
function tuneConnection(client: PgClient, options: { prepare: boolean; pipeline: boolean }): void {
  const query = client.query.bind(client);
  const state: Pipelining = { beginHeld: false, commitIn: 0, ended: false, corked: false };
  pipelining.set(client, state);
  // Statements sent in one tick (a transaction's independent ones, a group's: lib/group-commit.ts) share a write:
  // one system call and one wake-up of the server instead of one each.
  const holdWrites = () => {
    if (state.corked) return;
    state.corked = true;
    const stream = client.connection.stream;
    stream.cork();
    process.nextTick(() => {
      state.corked = false;
      stream.uncork();
    });
  };
  client.query = (config: unknown, ...rest: unknown[]) => {
    // knex passes (config, callback); anything else (a text, a promise-style call) goes through as it came.
    const callback = rest.length === 1 && typeof rest[0] === 'function' ? (rest[0] as PgCallback) : undefined;
    if (typeof config !== 'object' || config === null) return query(config, ...rest);
    const c = config as PgQueryConfig;
    const text = c.text?.trim();
    if (!options.pipeline || !text || !callback) return query(nameOf(c, options.prepare), ...rest);

    if (/^BEGIN;?$/i.test(text)) {
      state.beginHeld = true;
      state.ended = false;
      state.commitIn = 0;
      process.nextTick(() => callback(null, localResult('BEGIN')));
      return undefined;
    }
    if (TRANSACTION_END.test(text) && (state.ended || state.beginHeld)) {
      // Committed with its last statement, or nothing ran: there is nothing to end.
      state.ended = state.beginHeld = false;
      state.commitIn = 0;
      process.nextTick(() => callback(null, localResult(text.replace(';', '').toUpperCase())));
      return undefined;
    }
    if (TRANSACTION_END.test(text)) {
      state.commitIn = 0;
      holdWrites();
      return query(config, ...rest);
    }
    if (state.ended) {
      process.nextTick(() =>
        callback(
          new Error('A statement after the transaction committed with its last statement (commitWithNext)'),
        ),
      );
      return undefined;
    }
    const commit = state.commitIn > 0 && --state.commitIn === 0;
    holdWrites();
    if (!state.beginHeld && !commit) return query(nameOf(c, options.prepare), ...rest);

    const begin = state.beginHeld;
    state.beginHeld = false;
    state.ended = commit;
    let failure: Error | null = null;
    let outcome: [Error | null, unknown] = [null, undefined];
    const statement = nameOf(c, options.prepare);
    const stream = client.connection.stream;
    stream.cork();
    try {
      if (begin) query('BEGIN', (err: Error | null) => (failure ??= err));
      if (!commit) {
        return query(statement, (err: Error | null, res?: unknown) => callback(err ?? failure, res));
      }
      query(statement, (err: Error | null, res?: unknown) => (outcome = [err, res]));
      // In a transaction the statement aborted, COMMIT rolls back without an error: the statement's is the one.
      return query('COMMIT', (err: Error | null) => callback(outcome[0] ?? failure ?? err, outcome[1]));
    } finally {
      stream.uncork();
    }
  };
}

/** The statement to send: named after its text, when it can be prepared and naming is on. */
function nameOf(c: PgQueryConfig, prepare: boolean): PgQueryConfig {
  if (prepare && c.text && c.values?.length && !c.name && !c.text.includes(';')) {
    c.name = statementName(c.text);
  }
  return c;
}

/**
 * Marks the transaction's next `statements` statements as its last: the last one goes out with the COMMIT, and
 * resolves once the COMMIT is done too (rejecting with its own error, or the COMMIT's), so awaiting all of them
 * awaits the commit. Issued together (not one after another's result), they go out without waiting for each
 * other. The transaction is then committed: knex's own COMMIT afterwards is answered without a round trip, and
 * any further statement in it fails. Without pipelining (DbOptions.pipeline) it does nothing: knex commits.
 */
export async function commitWithNext(tx: Tx, statements = 1): Promise<void> {
  // A shared transaction commits when all its works are done, not with one work's last statement.
  if (sharedTransactions.has(tx)) return;
  const client = await clientOf(tx);
  const state = pipelining.get(client);
  if (state && client.pipeline && statements > 0) state.commitIn = statements;
}

const sharedTransactions = new WeakSet<Tx>();

/**
 * Marks `tx` as shared by several works (lib/group-commit.ts): `commitWithNext` then leaves the COMMIT to the
 * transaction's owner, since one work's last statement is not the transaction's.
 */
export function shareTransaction(tx: Tx): void {
  sharedTransactions.add(tx);
}

/**
 * Commits a shared transaction: one last statement goes out with the COMMIT and fails if any statement before it
 * failed, since PostgreSQL refuses every statement of an aborted transaction (where a COMMIT alone would roll back
 * without an error). Resolves once the transaction committed; rejects when it did not. Its answer comes after every
 * other statement's, so no earlier failure can still be on its way.
 */
export async function commitShared(tx: Tx): Promise<void> {
  sharedTransactions.delete(tx);
  await commitWithNext(tx);
  await tx.raw('select 1');
}

/** The node-postgres client a transaction runs on (knex's transaction client hands out only its own). */
export function clientOf(tx: Tx): Promise<{ pipeline?: boolean }> {
  return (tx.client as { acquireConnection(): Promise<{ pipeline?: boolean }> }).acquireConnection();
}

/**
 * Runs statements of one transaction that do not depend on each other's results: with pipelining, all at once (each
 * goes out without waiting for the one before it to be answered, and PostgreSQL runs them in the order sent); without,
 * one after another, since a connection then takes one statement at a time.
 */
export async function together<T extends readonly unknown[]>(
  tx: Tx,
  ...statements: { [K in keyof T]: () => Promise<T[K]> }
): Promise<T> {
  if ((await clientOf(tx)).pipeline) {
    return Promise.all(statements.map((run) => run())) as unknown as Promise<T>;
  }
  const results: unknown[] = [];
  for (const run of statements) results.push(await run());
  return results as unknown as T;
}

/**
 * A statement's name, remembered per text: the hot statements are a few texts of several kilobytes sent hundreds of
 * times a second, and hashing each again cost the worker 2 % of its CPU. Bounded: emptied when it fills up.
 */
const statementNames = new Map<string, string>();

function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) {
    if (statementNames.size >= 2000) statementNames.clear();
    name = `c_${createHash('sha1').update(text).digest('base64url')}`;
    statementNames.set(text, name);
  }
  return name;
}

/**
 * Migrations are loaded from db/migrations by dynamic import: the TypeScript files when run through tsx
 * (development, tests), the compiled JavaScript next to this file in dist/ (production). A migration keeps its
 * `.ts` name either way, so a database migrated by one is up to date for the other.
 */
class DirectoryMigrationSource implements Knex.MigrationSource<string> {
  async getMigrations(): Promise<string[]> {
    const files = await readdir(MIGRATIONS_DIR);
    return files.filter((f) => /^\d{14}_[\w-]+\.[jt]s$/.test(f)).sort();
  }
  getMigrationName(migration: string): string {
    return migration.replace(/\.js$/, '.ts');
  }
  async getMigration(migration: string): Promise<Knex.Migration> {
    return (await import(pathToFileURL(path.join(MIGRATIONS_DIR, migration)).href)) as Knex.Migration;
  }
}

/** Brings the schema up to date; safe to run from several processes at once (knex takes a lock). */
export async function migrateLatest(db: Db): Promise<string[]> {
  const [, applied] = (await db.migrate.latest({ migrationSource: new DirectoryMigrationSource() })) as [
    number,
    string[],
  ];
  return applied;
}

/** Creates the database named in `url` when it does not exist yet (connecting to the `postgres` database). */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!name) return;
  await withAdminDb(url, async (db) => {
    const found: { rowCount: number } = await db.raw('select 1 from pg_database where datname = ?', [name]);
    if (found.rowCount === 0) {
      await db.raw('create database ??', [name]).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err; // created meanwhile by another process
      });
    }
  });
}

/** Drops the database named in `url`, ending its sessions (for scratch databases of tests and benchmarks). */
export async function dropDatabase(url: string): Promise<void> {
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  await withAdminDb(url, (db) => db.raw('drop database if exists ?? with (force)', [name]));
}

/** Runs `fn` on a one-connection pool to the server's `postgres` database (to create or drop others). */
async function withAdminDb(url: string, fn: (db: Db) => Promise<unknown>): Promise<void> {
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const db = createDb({ url: admin.toString(), poolMax: 1, statementTimeoutMs: 0 });
  try {
    await fn(db);
  } finally {
    await db.destroy();
  }
}

const TRANSIENT_PG_CODES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '55P03', // lock_not_available
  '57014', // query_canceled (statement timeout)
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
  '53400', // configuration_limit_exceeded
]);

const TRANSIENT_NET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** True when a database error may go away by itself: connection loss, timeouts, deadlocks, pool exhaustion. */
export function isTransientDbError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: string }).code;
  if (code && (TRANSIENT_PG_CODES.has(code) || code.startsWith('08') || TRANSIENT_NET_CODES.has(code))) {
    return true;
  }
  if (err.name === 'KnexTimeoutError') return true;
  return /Connection terminated|connection (is )?closed|Client has encountered a connection error|timeout exceeded when trying to connect/i.test(
    err.message,
  );
}

/** True for a unique-constraint violation, optionally on one named constraint. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const e = err as { code?: string; constraint?: string };
  return e?.code === '23505' && (constraint === undefined || e.constraint === constraint);
}
