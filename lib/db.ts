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
    },
    pool: {
      min: 0,
      max: options.poolMax,
      idleTimeoutMillis: 30_000,
      ...(options.prepare
        ? {
            afterCreate: (connection: Parameters<typeof nameStatements>[0], done: (err?: Error) => void) => {
              nameStatements(connection);
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

/**
 * Names every statement that has parameters (a single statement, so the extended protocol can prepare it) after
 * a hash of its text; node-postgres then prepares it once per connection and sends only Bind/Execute afterwards.
 * Done on each connection rather than on knex's client, because knex runs a transaction's statements through a
 * client object of its own that would bypass it.
 */
function nameStatements(connection: { query: (...args: unknown[]) => unknown }): void {
  const query = connection.query.bind(connection);
  connection.query = (config: unknown, ...rest: unknown[]) => {
    const c = config as PgQueryConfig | undefined;
    if (c && typeof c === 'object' && c.text && c.values?.length && !c.name && !c.text.includes(';')) {
      c.name = statementName(c.text);
    }
    return query(config, ...rest);
  };
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
