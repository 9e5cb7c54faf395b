import { createHash } from 'node:crypto';
import type { Db } from '../lib/db.ts';
import { TooManyAttemptsError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import type { Redis } from '../lib/redis.ts';

export interface LoginLimits {
  /** Failed logins of one account within the window before it is locked for the rest of the window. */
  maxFailures: number;
  /** Failed logins from one address within the window, across accounts (password spraying). */
  ipMaxFailures: number;
  windowSeconds: number;
}

interface Budget {
  subject: string;
  max: number;
}

/**
 * Brute-force limits on the password grant, counted per account and per client address over a fixed window.
 * Redis counts (one INCR per failure); every failure is also written to PostgreSQL, which answers alone while Redis
 * is down — slower, never more permissive. A locked account is refused before its password is checked, so a
 * locked-out guesser learns nothing more.
 */
export class LoginLimiter {
  constructor(
    private readonly deps: { db: Db; redis: Redis; logger: Logger },
    private readonly limits: LoginLimits,
  ) {}

  /** Throws TooManyAttemptsError (with Retry-After seconds) when the account or the address is over its budget. */
  async check(email: string, ip: string): Promise<void> {
    for (const budget of this.budgets(email, ip)) {
      const retryAfter = await this.lockedFor(budget);
      if (retryAfter > 0) {
        throw new TooManyAttemptsError(
          budget.subject.startsWith('ip:')
            ? 'Too many failed logins from this address; try again later'
            : 'Too many failed logins for this account; try again later',
          retryAfter,
        );
      }
    }
  }

  async recordFailure(email: string, ip: string): Promise<void> {
    const window = this.limits.windowSeconds;
    for (const { subject } of this.budgets(email, ip)) {
      await this.deps.db('login_failures').insert({ subject });
      await this.deps
        .db('login_failures')
        .where({ subject })
        .andWhere('at', '<', this.deps.db.raw('now() - make_interval(secs => ?)', [window]))
        .delete();
      await this.deps.redis
        .multi()
        .set(redisKey(subject), 0, 'EX', window, 'NX')
        .incr(redisKey(subject))
        .exec()
        .catch((err: unknown) => this.redisDown(err));
    }
  }

  /** A successful login clears its account's count (not its address's). */
  async recordSuccess(email: string): Promise<void> {
    const subject = accountSubject(email);
    await this.deps.db('login_failures').where({ subject }).delete();
    await this.deps.redis.del(redisKey(subject)).catch((err: unknown) => this.redisDown(err));
  }

  private budgets(email: string, ip: string): Budget[] {
    return [
      { subject: accountSubject(email), max: this.limits.maxFailures },
      { subject: `ip:${ip}`, max: this.limits.ipMaxFailures },
    ];
  }

  /** Seconds until the subject may try again; 0 when it may now. */
  private async lockedFor({ subject, max }: Budget): Promise<number> {
    try {
      const [[, count], [, ttl]] = (await this.deps.redis
        .multi()
        .get(redisKey(subject))
        .ttl(redisKey(subject))
        .exec()) as [[Error | null, string | null], [Error | null, number]];
      return Number(count ?? 0) >= max ? Math.max(1, ttl) : 0;
    } catch (err) {
      this.redisDown(err);
      return this.lockedForFromDb(subject, max);
    }
  }

  private async lockedForFromDb(subject: string, max: number): Promise<number> {
    const result: { rows: { n: number; retry: number | null }[] } = await this.deps.db.raw(
      `with recent as (
         select at from login_failures where subject = ? and at > now() - make_interval(secs => ?)
       )
       select (select count(*) from recent)::int as n,
              ceil(extract(epoch from (
                (select at from recent order by at desc offset ? - 1 limit 1) + make_interval(secs => ?) - now()
              )))::int as retry`,
      [subject, this.limits.windowSeconds, max, this.limits.windowSeconds],
    );
    const [row] = result.rows;
    return row && row.n >= max ? Math.max(1, row.retry ?? this.limits.windowSeconds) : 0;
  }

  private redisDown(err: unknown): void {
    this.deps.logger.warn(
      { err: (err as Error).message },
      'login limiter: Redis unavailable, counting in PostgreSQL',
    );
  }
}

/** Accounts are counted by a hash of the email, so the table and Redis hold no addresses. */
function accountSubject(email: string): string {
  return `account:${createHash('sha256').update(email.trim().toLowerCase()).digest('base64url')}`;
}

const redisKey = (subject: string) => `login-failures:${subject}`;
