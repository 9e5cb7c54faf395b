import test from 'ava';
import fc from 'fast-check';
import { loadConfig } from '../../lib/config.ts';
import {
  decideOutcome,
  delayBefore,
  MAX_RETRY_AFTER_MS,
  parseRetryAfter,
  type RetryPolicy,
} from '../../webhooks/retry-schedule.ts';

const exact: RetryPolicy = { schedule: [0, 200, 500], jitter: 0 };

test('when WEBHOOK_RETRY_SCHEDULE is unset, then the schedule is immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h', (t) => {
  const h = 3_600_000;
  t.deepEqual(loadConfig({}).WEBHOOK_RETRY_SCHEDULE, [
    0,
    5000,
    300_000,
    1_800_000,
    2 * h,
    5 * h,
    10 * h,
    10 * h,
  ]);
  t.deepEqual(loadConfig({ WEBHOOK_RETRY_SCHEDULE: '0s,200ms,500ms' }).WEBHOOK_RETRY_SCHEDULE, [0, 200, 500]);
});

test('when WEBHOOK_RETRY_SCHEDULE cannot be read or does not start with 0s, then the configuration error names it', (t) => {
  for (const bad of ['0s,5x', '5s,10s', '0s,,1m']) {
    const err = t.throws(() => loadConfig({ WEBHOOK_RETRY_SCHEDULE: bad }));
    t.regex(err.message, /WEBHOOK_RETRY_SCHEDULE/);
  }
});

test('when attempts fail, then each waits the delay of its place in the schedule, and the last one fails the delivery', (t) => {
  t.deepEqual(decideOutcome({ statusCode: 500 }, 1, 3, exact), { kind: 'retry', delayMs: 200 });
  t.deepEqual(decideOutcome({ statusCode: null }, 2, 3, exact), { kind: 'retry', delayMs: 500 });
  t.deepEqual(decideOutcome({ statusCode: 503 }, 3, 3, exact), { kind: 'failed' });
  t.deepEqual(decideOutcome({ statusCode: 302 }, 1, 3, exact), { kind: 'retry', delayMs: 200 });
});

test('when the receiver answers 2xx or 410, then the delivery is delivered or its endpoint gone, whatever the attempt', (t) => {
  for (const code of [200, 201, 204, 299])
    t.deepEqual(decideOutcome({ statusCode: code }, 3, 3, exact), { kind: 'delivered' });
  t.deepEqual(decideOutcome({ statusCode: 410 }, 1, 3, exact), { kind: 'gone' });
});

test('when Retry-After asks for longer than the schedule, then the longer wait wins', (t) => {
  t.deepEqual(decideOutcome({ statusCode: 429, retryAfterMs: 3000 }, 1, 3, exact), {
    kind: 'retry',
    delayMs: 3000,
  });
  t.deepEqual(decideOutcome({ statusCode: 429, retryAfterMs: 10 }, 1, 3, exact), {
    kind: 'retry',
    delayMs: 200,
  });
});

test('when Retry-After holds seconds or an HTTP date, then it is read as a wait, capped at a day', (t) => {
  const now = Date.parse('2026-11-23T10:00:00Z');
  t.is(parseRetryAfter('7', now), 7000);
  t.is(parseRetryAfter('Mon, 23 Nov 2026 10:00:30 GMT', now), 30_000);
  t.is(parseRetryAfter('Mon, 23 Nov 2026 09:00:00 GMT', now), 0);
  t.is(parseRetryAfter('999999999', now), MAX_RETRY_AFTER_MS);
  t.is(parseRetryAfter('soon', now), undefined);
  t.is(parseRetryAfter(undefined, now), undefined);
});

test('when jitter is on, then every delay stays within ±jitter of the schedule, and immediate stays immediate', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 36_000_000 }), { minLength: 1, maxLength: 10 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
      (rest, jitter, r) => {
        const policy = { schedule: [0, ...rest], jitter };
        if (delayBefore(policy, 1, () => r) !== 0) return false;
        return rest.every((base, i) => {
          const d = delayBefore(policy, i + 2, () => r);
          return d >= Math.floor(base * (1 - jitter)) && d <= Math.ceil(base * (1 + jitter));
        });
      },
    ),
  );
  t.pass();
});
