import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { buildProduct } from '../helpers/factories.ts';
import { getJson, postOrder } from '../helpers/http.ts';
import { startPipeline, type TestPipeline } from '../helpers/pipeline.ts';

/** An identity provider of the test's own: a key pair and its JWKS served over HTTP. */
async function startIssuer() {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const server: Server = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  return { url, privateKey, stop: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

let p: TestPipeline;
let issuer: Awaited<ReturnType<typeof startIssuer>>;
test.before(async () => {
  issuer = await startIssuer();
  p = await startPipeline(
    {
      JWT_JWKS_URL: issuer.url,
      JWT_ALGORITHMS: 'RS256',
      JWT_ISSUER: 'https://id.example.test',
      DEMO_LOGIN: 'false',
    },
    { worker: false },
  );
});
test.after.always(async () => {
  await p?.stop();
  await issuer?.stop();
});

const sign = (key: Parameters<SignJWT['sign']>[0], kid = 'k1') =>
  new SignJWT({ roles: ['customer'] })
    .setProtectedHeader({ alg: 'RS256', kid })
    .setSubject('idp-user-7')
    .setIssuer('https://id.example.test')
    .setAudience(p.config.JWT_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(key);

test('when an external issuer signs the token, then comanda verifies it against the JWKS URL and the order is its subject’s', async (t) => {
  const product = await buildProduct(p.db);

  const res = await postOrder(p.url, await sign(issuer.privateKey), {
    items: [{ product_id: product.id, quantity: 1 }],
  });

  t.is(res.status, 201);
  t.is(res.body.customer_id, 'idp-user-7');
});

test('when a token is signed by a key the issuer does not publish, then it is refused with 401', async (t) => {
  const { privateKey: stranger } = await generateKeyPair('RS256');

  const res = await getJson(p.url, '/orders', await sign(stranger));

  t.is(res.status, 401);
  t.is(res.body.code, 'UNAUTHORIZED');
});
