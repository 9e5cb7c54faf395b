import test from 'ava';
import { KeyRing } from '../../accounts/key-ring.ts';
import { createAuth } from '../../api/auth.ts';
import { createStreamTokens } from '../../api/routes/stream.ts';
import { loadConfig } from '../../lib/config.ts';

const principal = { sub: 'demo:ana', roles: ['customer' as const], admin: false };

test('when a stream token is issued, then it verifies as its customer and is no access token', async (t) => {
  const config = loadConfig({ NODE_ENV: 'test' });
  const tokens = createStreamTokens(config);

  const { token, expires_in } = await tokens.issue(principal);

  t.is(expires_in, 60);
  t.true(tokens.isStreamToken(token));
  t.deepEqual(await tokens.verify(token), principal);
  await t.throwsAsync(createAuth(config, await KeyRing.fixed([])).verify(token), {
    message: /audience|"aud"|not valid/i,
  });
});

test('when another secret signed a stream token, then it is refused', async (t) => {
  const other = createStreamTokens(loadConfig({ NODE_ENV: 'test', JWT_SECRET: 'x'.repeat(40) }));
  const { token } = await other.issue(principal);

  const tokens = createStreamTokens(loadConfig({ NODE_ENV: 'test' }));

  await t.throwsAsync(tokens.verify(token), { message: /stream token is not valid/ });
});

test('when an external issuer signs access tokens, then no stream token is issued or accepted', async (t) => {
  const config = loadConfig({
    NODE_ENV: 'test',
    JWT_JWKS_URL: 'https://issuer.example/.well-known/jwks.json',
  });
  const signedAnyway = await createStreamTokens(loadConfig({ NODE_ENV: 'test' })).issue(principal);

  const tokens = createStreamTokens(config);

  await t.throwsAsync(tokens.issue(principal), { message: /JWT_JWKS_URL/ });
  t.false(tokens.isStreamToken(signedAnyway.token));
});
