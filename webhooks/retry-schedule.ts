/** When to try a delivery again: delays before attempt 1, 2, … (WEBHOOK_RETRY_SCHEDULE) and a jitter ratio. */
export interface RetryPolicy {
  schedule: readonly number[];
  /** Each delay is spread uniformly over ±jitter of itself, so receivers back from an outage are not stampeded. */
  jitter: number;
}

/** A receiver may ask for a later retry with `Retry-After`, but not for one later than this. */
export const MAX_RETRY_AFTER_MS = 24 * 3_600_000;

/** Milliseconds to wait before attempt number `attempt` (1-based), with jitter. */
export function delayBefore(
  policy: RetryPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const base = policy.schedule[Math.min(attempt, policy.schedule.length) - 1] ?? 0;
  if (base === 0 || policy.jitter === 0) return base;
  return Math.round(base * (1 + policy.jitter * (2 * random() - 1)));
}

/** `Retry-After` as milliseconds from `now`: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | undefined, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Math.min(Number(value) * 1000, MAX_RETRY_AFTER_MS);
  const date = Date.parse(value);
  if (Number.isNaN(date)) return undefined;
  return Math.min(Math.max(date - now, 0), MAX_RETRY_AFTER_MS);
}

export interface AttemptResult {
  /** The HTTP status, or null when no response came (timeout, refused connection, refused address). */
  statusCode: number | null;
  retryAfterMs?: number | undefined;
}

export type AttemptOutcome =
  | { kind: 'delivered' }
  | { kind: 'retry'; delayMs: number }
  | { kind: 'failed' }
  /** 410 Gone: the receiver asks never to be called again. */
  | { kind: 'gone' };

/**
 * What follows an attempt: 2xx delivers; 410 disables the endpoint; anything else retries on the schedule (later
 * if the receiver's `Retry-After` says so) until `maxAttempts` attempts were made, then fails.
 */
export function decideOutcome(
  result: AttemptResult,
  attemptsMade: number,
  maxAttempts: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): AttemptOutcome {
  const code = result.statusCode;
  if (code !== null && code >= 200 && code < 300) return { kind: 'delivered' };
  if (code === 410) return { kind: 'gone' };
  if (attemptsMade >= maxAttempts) return { kind: 'failed' };
  const delayMs = Math.max(delayBefore(policy, attemptsMade + 1, random), result.retryAfterMs ?? 0);
  return { kind: 'retry', delayMs };
}
