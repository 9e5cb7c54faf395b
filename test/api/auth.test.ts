import test from 'ava';
import { SignJWT, UnsecuredJWT } from 'jose';
import { buildProduct } from '../helpers/factories.ts';
import { getJson, http, postOrder } from '../helpers/http.ts';
import { startPipeline, type TestPipeline } from '../helpers/pipeline.ts';

let p: TestPipeline;
let productId: string;
test.before(async () => {
  p = await startPipeline({}, { worker: false });
  productId = (await buildProduct(p.db)).id;
});
test.after.always(async () => {
  await p?.stop();
});

const order = () => ({ items: [{ product_id: productId, quantity: 1 }] });

async function signed(
  claims: { sub?: string; iss?: string; aud?: string; exp?: number | string },
  secret = p.config.JWT_SECRET,
): Promise<string> {
  const jwt = new SignJWT({ roles: ['customer'] }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt();
  if (claims.sub !== undefined) jwt.setSubject(claims.sub);
  jwt.setIssuer(claims.iss ?? p.config.JWT_ISSUER);
  jwt.setAudience(claims.aud ?? p.config.JWT_AUDIENCE);
  jwt.setExpirationTime(claims.exp ?? '5m');
  return jwt.sign(new TextEncoder().encode(secret));
}

const refused: [string, () => Record<string, string> | Promise<Record<string, string>>][] = [
  ['no token', () => ({})],
  [
    'a header that is not Bearer',
    () => ({ authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }),
  ],
  ['garbage', () => ({ authorization: 'Bearer not.a.jwt' })],
  [
    'a bad signature',
    async () => ({
      authorization: `Bearer ${await signed({ sub: 'x' }, 'another-secret-of-at-least-32-characters!')}`,
    }),
  ],
  [
    'an expired token',
    async () => ({
      authorization: `Bearer ${await signed({ sub: 'x', exp: Math.floor(Date.now() / 1000) - 3600 })}`,
    }),
  ],
  [
    'a wrong issuer',
    async () => ({ authorization: `Bearer ${await signed({ sub: 'x', iss: 'someone-else' })}` }),
  ],
  [
    'a wrong audience',
    async () => ({ authorization: `Bearer ${await signed({ sub: 'x', aud: 'other-api' })}` }),
  ],
  ['no subject', async () => ({ authorization: `Bearer ${await signed({})}` })],
  [
    'alg none',
    () => ({
      authorization: `Bearer ${new UnsecuredJWT({ roles: ['admin'] })
        .setSubject('x')
        .setIssuer(p.config.JWT_ISSUER)
        .setAudience(p.config.JWT_AUDIENCE)
        .setExpirationTime('5m')
        .encode()}`,
    }),
  ],
];

for (const [name, headers] of refused) {
  test(`when a request comes with ${name}, then it is refused with 401 problem+json`, async (t) => {
    const res = await http(`${p.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'k', ...(await headers()) },
      body: JSON.stringify(order()),
    });

    t.is(res.status, 401);
    t.is(res.headers.get('content-type'), 'application/problem+json');
    t.is(res.body.code, 'UNAUTHORIZED');
  });
}

test('when a token is valid, then the order belongs to its subject', async (t) => {
  const token = await signed({ sub: 'customer-42' });

  const res = await postOrder(p.url, token, order());

  t.is(res.status, 201);
  t.is(res.body.customer_id, 'customer-42');
});

test('when a customer asks for another customer’s order, then it is 404 — and an admin sees it', async (t) => {
  const owner = await p.token('owner');
  const created = await postOrder(p.url, owner, order());

  const other = await getJson(p.url, `/orders/${created.body.id}`, await p.token('intruder'));
  const otherEvents = await getJson(p.url, `/orders/${created.body.id}/events`, await p.token('intruder'));
  const admin = await getJson(p.url, `/orders/${created.body.id}`, await p.token('boss', 'admin'));

  t.is(other.status, 404);
  t.is(otherEvents.status, 404);
  t.is(admin.status, 200);
  t.is(admin.body.customer_id, 'demo:owner');
});

test('when the demo login is asked for two customers, then their tokens have distinct subjects', async (t) => {
  const a = await getJson(p.url, '/login-demo?customer=ana');
  const b = await getJson(p.url, '/login-demo?customer=beto');

  t.is(a.status, 200);
  t.true(a.body.expires_in > 0);
  t.not(a.body.sub, b.body.sub);
});

test('when the demo login gets a bad customer name, then it is a 422 problem', async (t) => {
  const res = await getJson(p.url, '/login-demo?customer=%3Cscript%3E');

  t.is(res.status, 422);
});

test('when DEMO_LOGIN=false, then /login-demo is not there', async (t) => {
  const off = await startPipeline({ DEMO_LOGIN: 'false' }, { worker: false });
  try {
    const res = await getJson(off.url, '/login-demo');
    t.is(res.status, 404);
  } finally {
    await off.stop();
  }
});
