import test from 'ava';
import { chromium, type Browser } from 'playwright-core';
import { decodeJwt } from 'jose';
import { buildProduct } from '../helpers/factories.ts';
import { startPipeline, until, type TestPipeline } from '../helpers/pipeline.ts';

let p: TestPipeline;
let browser: Browser;
test.before(async () => {
  [p, browser] = await Promise.all([
    // Short access tokens, so the page has to refresh within the test.
    startPipeline({ ACCESS_TOKEN_TTL_S: '30' }, { worker: false }),
    chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    }),
  ]);
  await buildProduct(p.db);
});
test.after.always(async () => {
  await browser?.close();
  await p?.stop();
});

test('when someone signs up in the portal, then the page uses their own token, and refreshes it before it expires', async (t) => {
  const page = await browser.newPage();
  const authorizations: string[] = [];
  const refreshes: number[] = [];
  page.on('request', (req) => {
    const auth = req.headers().authorization;
    if (auth) authorizations.push(auth.slice('Bearer '.length));
    if (req.url().endsWith('/auth/token') && req.postData()?.includes('grant_type=refresh_token')) {
      refreshes.push(Date.now());
    }
  });
  await page.goto(p.url);
  const email = `portal-${Date.now()}@example.test`;

  await page.fill('#account input[name=email]', email);
  await page.fill('#account input[name=password]', 'a portal password');
  await page.fill('#account input[name=name]', 'Portal user');
  await page.click('#account [data-action=sign-up]');

  await page.waitForSelector('#account .account-who');
  t.regex((await page.textContent('#account .account-who')) ?? '', new RegExp(email));
  const user = await p.db('users').where({ email }).first();
  t.truthy(user);
  await until(
    () => authorizations.some((a) => decodeJwt(a).sub === user.id),
    'a request with the user’s own token',
  );
  // 30 s tokens are refreshed at 15 s: wait for the rotation the page makes by itself.
  await until(() => refreshes.length > 0, 'the page to refresh its token', 25_000);
  await until(
    async () => (await p.db('refresh_tokens').where({ user_id: user.id }).whereNotNull('used_at')).length > 0,
    'the first refresh token to be spent',
  );
  await page.click('#account [data-action=sign-out]');
  await page.waitForSelector('#account input[name=email]');
  await page.close();
});
