import { randomUUID } from 'node:crypto';
import test from 'ava';
import { buildAccount, tokenRequest, type TestAccount } from '../helpers/accounts.ts';
import type { HttpResult } from '../helpers/http.ts';
import { baseUrls, startPipeline, type TestPipeline } from '../helpers/pipeline.ts';
import { proxyFor, type TcpProxy } from '../helpers/tcp-proxy.ts';

const WINDOW_S = 900;

const attempt = (p: TestPipeline, email: string, password: string) =>
  tokenRequest(p.url, { grant_type: 'password', username: email, password });

async function failTimes(p: TestPipeline, email: string, n: number): Promise<HttpResult[]> {
  const answers = [];
  for (let i = 0; i < n; i++) answers.push(await attempt(p, email, `wrong-${i}-${randomUUID()}`));
  return answers;
}

function assertLocked(t: import('ava').ExecutionContext, res: HttpResult, what: RegExp) {
  t.is(res.status, 429);
  t.is(res.body.error, 'too_many_attempts');
  t.regex(res.body.error_description, what);
  const retryAfter = Number(res.headers.get('retry-after'));
  t.true(retryAfter > 0 && retryAfter <= WINDOW_S, `Retry-After ${retryAfter}`);
}

let p: TestPipeline;
test.before(async () => {
  p = await startPipeline({ LOGIN_IP_MAX_FAILURES: '8' }, { worker: false });
});
test.after.always(async () => {
  await p?.stop();
});

test.serial(
  'when an account has 5 failed logins within 15 minutes, then the next attempt is 429 with Retry-After — even with the right password',
  async (t) => {
    const victim = await buildAccount(p.url);
    const bystander = await buildAccount(p.url);

    const failures = await failTimes(p, victim.email, 5);
    const sixth = await attempt(p, victim.email, victim.password);

    t.deepEqual(
      failures.map((r) => [r.status, r.body.error]),
      Array(5).fill([400, 'invalid_grant']),
    );
    assertLocked(t, sixth, /account/);
    t.is(sixth.body.access_token, undefined);
    // Another account from the same address still logs in: the address is under its own budget (8).
    t.is((await attempt(p, bystander.email, bystander.password)).status, 200);
    const counted = await p.services.redis.keys(`${p.config.REDIS_KEY_PREFIX}login-failures:account:*`);
    t.is(counted.length, 1);
  },
);

test.serial(
  'when one address fails logins across many accounts past its budget, then every login from it is 429',
  async (t) => {
    const someone = await buildAccount(p.url);

    // 5 failures were made from this address by the test before; 3 more on other (unknown) accounts reach 8.
    for (let i = 0; i < 3; i++) t.is((await failTimes(p, `sprayed-${i}@example.test`, 1))[0].status, 400);
    const blocked = await attempt(p, someone.email, someone.password);

    assertLocked(t, blocked, /address/);
  },
);

test('when Redis is cut, then failed logins are counted in PostgreSQL and the sixth attempt is still 429', async (t) => {
  const proxy: TcpProxy = await proxyFor(baseUrls().redis);
  const cut = await startPipeline({ REDIS_URL: proxy.rewrite(baseUrls().redis) }, { worker: false });
  try {
    const victim: TestAccount = await buildAccount(cut.url);
    proxy.cut();

    const failures = await failTimes(cut, victim.email, 5);
    const sixth = await attempt(cut, victim.email, victim.password);

    t.deepEqual(
      failures.map((r) => r.status),
      [400, 400, 400, 400, 400],
    );
    assertLocked(t, sixth, /account/);
    const [{ n }] = await cut.db('login_failures').where('subject', 'like', 'account:%').count({ n: '*' });
    t.is(Number(n), 5);
  } finally {
    proxy.restore();
    await cut.stop();
    await proxy.stop();
  }
});

test('when a successful login follows failures below the limit, then the account’s count starts again', async (t) => {
  const fresh = await startPipeline({}, { worker: false });
  try {
    const account = await buildAccount(fresh.url);
    await failTimes(fresh, account.email, 4);
    t.is((await attempt(fresh, account.email, account.password)).status, 200);

    const again = await failTimes(fresh, account.email, 4);

    t.deepEqual(
      again.map((r) => r.status),
      [400, 400, 400, 400],
    );
    t.is((await attempt(fresh, account.email, account.password)).status, 200);
  } finally {
    await fresh.stop();
  }
});
