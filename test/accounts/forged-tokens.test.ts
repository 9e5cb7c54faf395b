import test from 'ava';
import { generateKeyPair, SignJWT, UnsecuredJWT, type JWK } from 'jose';
import { getJson } from '../helpers/http.ts';
import { startPipeline, type TestPipeline } from '../helpers/pipeline.ts';

let p: TestPipeline;
let published: JWK & { kid: string };
test.before(async () => {
  // Only comanda's own keys: no HS256 shared secret that a forger could also be refused by for another reason.
  p = await startPipeline({ JWT_ALGORITHMS: 'ES256' }, { worker: false });
  published = (await getJson(p.url, '/.well-known/jwks.json')).body.keys[0];
});
test.after.always(async () => {
  await p?.stop();
});

const claims = () =>
  new SignJWT({ roles: ['admin'] })
    .setSubject('forger')
    .setIssuer(p.config.JWT_ISSUER)
    .setAudience(p.config.JWT_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('5m');

/** Base64url JSON, for tokens jose would refuse to build (HS256 keyed with a public key). */
const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');

async function hmacWithPublicKey(as: 'pem' | 'jwk'): Promise<string> {
  const { createHmac } = await import('node:crypto');
  const header = part({ alg: 'HS256', typ: 'JWT', kid: published.kid });
  const payload = part({
    sub: 'forger',
    roles: ['admin'],
    iss: p.config.JWT_ISSUER,
    aud: p.config.JWT_AUDIENCE,
    exp: Math.floor(Date.now() / 1000) + 300,
  });
  // The classic key confusion: the verifier's public key (as published, JWK JSON, or its PEM) used as an HMAC secret.
  const { createPublicKey } = await import('node:crypto');
  const pem = createPublicKey({ key: published, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
  const sign = (secret: string | Buffer) =>
    `${header}.${payload}.${createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url')}`;
  return as === 'pem' ? sign(pem) : sign(JSON.stringify(published));
}

const forgeries: [string, () => Promise<string>][] = [
  [
    'alg none',
    () =>
      Promise.resolve(
        new UnsecuredJWT({ roles: ['admin'] })
          .setSubject('forger')
          .setIssuer(p.config.JWT_ISSUER)
          .setAudience(p.config.JWT_AUDIENCE)
          .setExpirationTime('5m')
          .encode(),
      ),
  ],
  [
    'alg none naming our kid',
    async () => {
      const token = await Promise.resolve(
        new UnsecuredJWT({ roles: ['admin'] })
          .setSubject('forger')
          .setIssuer(p.config.JWT_ISSUER)
          .setAudience(p.config.JWT_AUDIENCE)
          .setExpirationTime('5m')
          .encode(),
      );
      return `${part({ alg: 'none', kid: published.kid })}.${token.split('.')[1]}.`;
    },
  ],
  ['HS256 keyed with our public key’s PEM (key confusion)', () => hmacWithPublicKey('pem')],
  ['HS256 keyed with our published JWK (key confusion)', () => hmacWithPublicKey('jwk')],
  [
    'a stranger’s ES256 key claiming our kid',
    async () => {
      const { privateKey } = await generateKeyPair('ES256');
      return claims().setProtectedHeader({ alg: 'ES256', kid: published.kid }).sign(privateKey);
    },
  ],
  [
    'a stranger’s ES256 key with a kid we do not have',
    async () => {
      const { privateKey } = await generateKeyPair('ES256');
      return claims().setProtectedHeader({ alg: 'ES256', kid: 'not-a-kid-of-ours' }).sign(privateKey);
    },
  ],
  [
    'an expired token signed with our own key',
    async () => {
      const key = p.api.keys.current();
      return new SignJWT({ roles: ['customer'] })
        .setProtectedHeader({ alg: key.alg, kid: key.kid })
        .setSubject('late')
        .setIssuer(p.config.JWT_ISSUER)
        .setAudience(p.config.JWT_AUDIENCE)
        .setIssuedAt(Math.floor(Date.now() / 1000) - 7200)
        .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
        .sign(key.privateKey);
    },
  ],
  [
    'a wrong audience, signed with our own key',
    async () => {
      const key = p.api.keys.current();
      return new SignJWT({ roles: ['customer'] })
        .setProtectedHeader({ alg: key.alg, kid: key.kid })
        .setSubject('elsewhere')
        .setIssuer(p.config.JWT_ISSUER)
        .setAudience('another-api')
        .setExpirationTime('5m')
        .sign(key.privateKey);
    },
  ],
  [
    'an HS256 token although HS256 is not allowed',
    () => claims().setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(p.config.JWT_SECRET)),
  ],
];

for (const [name, forge] of forgeries) {
  test(`when a token comes with ${name}, then every protected route refuses it with 401`, async (t) => {
    const token = await forge();

    for (const path of ['/me', '/orders', '/clients']) {
      const res = await getJson(p.url, path, token);
      t.is(res.status, 401, path);
      t.is(res.body.code, 'UNAUTHORIZED');
    }
  });
}

test('when the same claims are signed with our own key, then they are accepted (the forgeries fail for their forgery alone)', async (t) => {
  const key = p.api.keys.current();
  const token = await claims().setProtectedHeader({ alg: key.alg, kid: key.kid }).sign(key.privateKey);

  t.is((await getJson(p.url, '/clients', token)).status, 200);
});
