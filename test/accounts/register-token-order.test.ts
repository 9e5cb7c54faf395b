import test from 'ava';
import { decodeJwt } from 'jose';
import { buildAccount, logIn, register } from '../helpers/accounts.ts';
import { buildProduct } from '../helpers/factories.ts';
import { getJson, postOrder } from '../helpers/http.ts';
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

test('when a client registers, takes a token and places an order, then the order is that user’s and another user gets 404 on it', async (t) => {
  const reg = await register(p.url, {
    email: 'Ana.Flow@example.test',
    password: 'correct horse battery',
    name: 'Ana',
  });
  t.is(reg.status, 201);
  t.deepEqual(Object.keys(reg.body).sort(), ['email', 'id', 'name']);

  const tokens = await logIn(p.url, { email: 'ana.flow@example.test', password: 'correct horse battery' });
  t.is(tokens.token_type, 'Bearer');
  t.is(tokens.expires_in, p.config.ACCESS_TOKEN_TTL_S);
  t.is(decodeJwt(tokens.access_token).sub, reg.body.id);

  const created = await postOrder(p.url, tokens.access_token, {
    items: [{ product_id: productId, quantity: 1 }],
  });
  t.is(created.status, 201);
  t.is(created.body.customer_id, reg.body.id);
  const row = await p.db('orders').where({ id: created.body.id }).first();
  t.is(row.customer_id, reg.body.id);

  const mine = await getJson(p.url, `/orders/${created.body.id}`, tokens.access_token);
  t.is(mine.status, 200);
  const list = await getJson(p.url, '/orders', tokens.access_token);
  t.deepEqual(
    list.body.data.map((o: { id: string }) => o.id),
    [created.body.id],
  );

  const other = await logIn(p.url, await buildAccount(p.url));
  t.is((await getJson(p.url, `/orders/${created.body.id}`, other.access_token)).status, 404);
  t.is((await getJson(p.url, `/orders/${created.body.id}/events`, other.access_token)).status, 404);
  t.deepEqual((await getJson(p.url, '/orders', other.access_token)).body.data, []);
});

test('when a user asks GET /me, then it says who the token is, with roles, and never the password hash', async (t) => {
  const account = await buildAccount(p.url, { name: 'Beto' });
  const { access_token } = await logIn(p.url, account);

  const me = await getJson(p.url, '/me', access_token);

  t.is(me.status, 200);
  t.deepEqual(me.body, {
    sub: account.id,
    id: account.id,
    kind: 'user',
    email: account.email,
    name: 'Beto',
    roles: ['customer'],
  });
  t.is((await getJson(p.url, '/me')).status, 401);
});

test('when an email is already registered (in any case), then 409 says no more than that, and no second account exists', async (t) => {
  const account = await buildAccount(p.url);

  const again = await register(p.url, {
    email: account.email.toUpperCase(),
    password: 'another password',
    name: 'X',
  });

  t.is(again.status, 409);
  t.is(again.headers.get('content-type'), 'application/problem+json');
  t.notRegex(JSON.stringify(again.body), /password|hash|"id"/i);
  const [{ n }] = await p.db('users').whereRaw('lower(email) = lower(?)', [account.email]).count({ n: '*' });
  t.is(Number(n), 1);
});

for (const [what, body, field] of [
  ['a password of 7 characters', { password: '1234567' }, 'password'],
  ['a password of 129 characters', { password: 'x'.repeat(129) }, 'password'],
  ['the email as the password', { email: 'same@example.test', password: 'SAME@example.test' }, 'password'],
  ['an email that is not one', { email: 'not-an-email' }, 'email'],
  ['no name', { name: '' }, 'name'],
] as const) {
  test(`when someone registers with ${what}, then 422 names the ${field} and no account is stored`, async (t) => {
    const before = await p.db('users').count({ n: '*' });

    const valid: Record<string, unknown> = {
      email: `v-${Math.random().toString(36).slice(2)}@example.test`,
      password: 'a good password',
      name: 'Valid',
    };

    const res = await register(p.url, { ...valid, ...body });

    t.is(res.status, 422);
    t.true(res.body.errors.some((e: { field: string }) => e.field === field));
    t.deepEqual(await p.db('users').count({ n: '*' }), before);
  });
}

test('when a password of exactly 8 and of 128 characters is chosen, then both register', async (t) => {
  t.is((await register(p.url, { email: 'eight@example.test', password: '8chars!!', name: 'E' })).status, 201);
  t.is(
    (await register(p.url, { email: 'long@example.test', password: 'y'.repeat(128), name: 'L' })).status,
    201,
  );
});

test('when an account is stored, then its password is an scrypt hash at OWASP cost and appears nowhere in plain', async (t) => {
  const account = await buildAccount(p.url);

  const row = await p.db('users').where({ id: account.id }).first();

  t.regex(row.password_hash, /^scrypt\$17\$8\$1\$/);
  t.false(JSON.stringify(row).includes(account.password));
});
