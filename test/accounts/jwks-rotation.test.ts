import test from 'ava';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { retireStoredKey, rotateStoredKey } from '../../accounts/signing-keys.ts';
import { loadSecretBox } from '../../lib/secret-box.ts';
import { buildAccount, logIn } from '../helpers/accounts.ts';
import { getJson } from '../helpers/http.ts';
import { startPipeline, type TestPipeline } from '../helpers/pipeline.ts';

let p: TestPipeline;
test.before(async () => {
  p = await startPipeline({}, { worker: false });
});
test.after.always(async () => {
  await p?.stop();
});

/** Another service: it knows only the JWKS URL (and the issuer and audience it expects), no secret of comanda's. */
function separateVerifier() {
  const jwks = createRemoteJWKSet(new URL(`${p.url}/.well-known/jwks.json`), { cooldownDuration: 0 });
  return (token: string) =>
    jwtVerify(token, jwks, { issuer: p.config.JWT_ISSUER, audience: p.config.JWT_AUDIENCE });
}

test('when another service fetches /.well-known/jwks.json, then it verifies comanda’s access and demo tokens with jose alone', async (t) => {
  const { access_token } = await logIn(p.url, await buildAccount(p.url));
  const demo = await p.token('jwks-demo');
  const jwks = await getJson(p.url, '/.well-known/jwks.json');

  const verified = await separateVerifier()(access_token);
  const verifiedDemo = await separateVerifier()(demo);

  t.is(jwks.status, 200);
  t.is(jwks.body.keys.length, 1);
  t.like(jwks.body.keys[0], { kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
  t.is(jwks.body.keys[0].d, undefined, 'no private part');
  t.like(verified.protectedHeader, { alg: 'ES256', kid: jwks.body.keys[0].kid });
  t.deepEqual(verified.payload.roles, ['customer']);
  t.is(verifiedDemo.payload.sub, 'demo:jwks-demo');
});

test.serial(
  'when the key is rotated, then tokens of the previous key are still accepted, and once that key is removed they are refused',
  async (t) => {
    const account = await buildAccount(p.url);
    const before = (await logIn(p.url, account)).access_token;
    const oldKid = decodeProtectedHeader(before).kid!;
    const box = await loadSecretBox(p.config, p.db);

    const newKid = await rotateStoredKey(p.db, box, 'ES256', 3600);
    await p.api.keys.refresh();
    const after = (await logIn(p.url, account)).access_token;

    t.is(decodeProtectedHeader(after).kid, newKid);
    const published = (await getJson(p.url, '/.well-known/jwks.json')).body.keys.map(
      (k: { kid: string }) => k.kid,
    );
    t.deepEqual(published.sort(), [oldKid, newKid].sort());
    for (const token of [before, after]) {
      t.is((await getJson(p.url, '/me', token)).status, 200);
      await t.notThrowsAsync(separateVerifier()(token));
    }

    t.true(await retireStoredKey(p.db, oldKid));
    await p.api.keys.refresh();

    t.deepEqual(
      (await getJson(p.url, '/.well-known/jwks.json')).body.keys.map((k: { kid: string }) => k.kid),
      [newKid],
    );
    const refused = await getJson(p.url, '/me', before);
    t.is(refused.status, 401);
    t.is(refused.body.code, 'UNAUTHORIZED');
    await t.throwsAsync(separateVerifier()(before));
    t.is((await getJson(p.url, '/me', after)).status, 200);
  },
);

test.serial(
  'when a previous key’s verification window has passed, then it leaves the JWKS by itself',
  async (t) => {
    const box = await loadSecretBox(p.config, p.db);
    const current = (await getJson(p.url, '/.well-known/jwks.json')).body.keys[0].kid;

    const newKid = await rotateStoredKey(p.db, box, 'ES256', 0);
    await p.api.keys.refresh();

    const kids = (await getJson(p.url, '/.well-known/jwks.json')).body.keys.map(
      (k: { kid: string }) => k.kid,
    );
    t.deepEqual(kids, [newKid]);
    t.not(newKid, current);
  },
);

test('when a second API instance starts on the same database, then it signs and verifies with the same key', async (t) => {
  const { startApi } = await import('../../api/server.ts');
  const second = await startApi(p.services, { port: 0 });
  try {
    const fromSecond = await getJson(second.url, '/.well-known/jwks.json');
    const fromFirst = await getJson(p.url, '/.well-known/jwks.json');
    t.deepEqual(fromSecond.body, fromFirst.body);
    const demo = await p.token('two-instances');
    t.is((await getJson(second.url, '/me', demo)).status, 200);
  } finally {
    await second.stop();
  }
});

test('when the private signing key is stored, then the database holds it sealed, never as a JWK', async (t) => {
  const rows = await p.db('signing_keys').select('private_jwk', 'public_jwk');

  t.true(rows.length > 0);
  for (const row of rows) {
    t.regex(row.private_jwk, /^v1\./);
    t.false(row.private_jwk.includes('"d"'));
    t.is(row.public_jwk.d, undefined);
  }
});
