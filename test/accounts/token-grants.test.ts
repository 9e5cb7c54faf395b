import test from 'ava';
import { decodeJwt } from 'jose';
import { hashToken } from '../../accounts/refresh-tokens.ts';
import { buildAccount, logIn, tokenRequest, type TestAccount } from '../helpers/accounts.ts';
import { getJson, http } from '../helpers/http.ts';
import { startPipeline, type TestPipeline } from '../helpers/pipeline.ts';

let p: TestPipeline;
let admin: string;
let account: TestAccount;
test.before(async () => {
  p = await startPipeline({}, { worker: false });
  admin = await p.token('clients-admin', 'admin');
  account = await buildAccount(p.url);
});
test.after.always(async () => {
  await p?.stop();
});

async function newClient(roles: string[] = ['operations']) {
  const res = await http(`${p.url}/clients`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
    body: JSON.stringify({ name: 'shipping-service', roles }),
  });
  if (res.status !== 201) throw new Error(`POST /clients answered ${res.status}`);
  return res.body as { id: string; client_id: string; client_secret: string; roles: string[] };
}

function expectOAuthError(
  t: import('ava').ExecutionContext,
  res: { status: number; headers: Headers; body: unknown },
  status: number,
  error: string,
) {
  t.is(res.status, status);
  t.regex(res.headers.get('content-type') ?? '', /^application\/json/);
  t.is(res.headers.get('cache-control'), 'no-store');
  t.like(res.body, { error });
  t.is(typeof (res.body as { error_description: unknown }).error_description, 'string');
}

test('when the password grant is used, then it answers an access token, Bearer, expires_in and a refresh token', async (t) => {
  const res = await tokenRequest(p.url, {
    grant_type: 'password',
    username: account.email,
    password: account.password,
  });

  t.is(res.status, 200);
  t.is(res.headers.get('cache-control'), 'no-store');
  t.like(res.body, { token_type: 'Bearer', expires_in: 900 });
  t.regex(res.body.refresh_token, /^rt_/);
  const claims = decodeJwt(res.body.access_token);
  t.is(claims.sub, account.id);
  t.deepEqual(claims.roles, ['customer']);
  t.is((await getJson(p.url, '/me', res.body.access_token)).body.email, account.email);
});

test('when the token request comes as JSON, then it is accepted too', async (t) => {
  const res = await http(`${p.url}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'password', username: account.email, password: account.password }),
  });

  t.is(res.status, 200);
  t.truthy(res.body.access_token);
});

test('when the password is wrong, or the user unknown, then invalid_grant 400 — the same answer for both', async (t) => {
  const wrong = await tokenRequest(p.url, {
    grant_type: 'password',
    username: account.email,
    password: 'not-it-at-all',
  });
  const unknown = await tokenRequest(p.url, {
    grant_type: 'password',
    username: 'nobody@example.test',
    password: 'whatever-it-is',
  });

  expectOAuthError(t, wrong, 400, 'invalid_grant');
  expectOAuthError(t, unknown, 400, 'invalid_grant');
  t.is(wrong.body.error_description, unknown.body.error_description);
});

test('when a refresh token is used, then a new pair comes back and the old refresh token is spent', async (t) => {
  const first = await logIn(p.url, account);

  const refreshed = await tokenRequest(p.url, {
    grant_type: 'refresh_token',
    refresh_token: first.refresh_token,
  });

  t.is(refreshed.status, 200);
  t.not(refreshed.body.refresh_token, first.refresh_token);
  t.is(decodeJwt(refreshed.body.access_token).sub, account.id);
  const old = await p
    .db('refresh_tokens')
    .where({ token_hash: hashToken(first.refresh_token) })
    .first();
  t.truthy(old.used_at);
  t.is((await p.db('refresh_tokens').where({ family_id: old.family_id })).length, 2);
  t.is(
    await p.db('refresh_tokens').where({ token_hash: first.refresh_token }).first(),
    undefined,
    'stored hashed',
  );
});

test('when a spent refresh token is presented again, then invalid_grant and its whole family is revoked, the newest token included', async (t) => {
  const first = await logIn(p.url, account);
  const second = (
    await tokenRequest(p.url, { grant_type: 'refresh_token', refresh_token: first.refresh_token })
  ).body;

  const reused = await tokenRequest(p.url, {
    grant_type: 'refresh_token',
    refresh_token: first.refresh_token,
  });
  const newest = await tokenRequest(p.url, {
    grant_type: 'refresh_token',
    refresh_token: second.refresh_token,
  });

  expectOAuthError(t, reused, 400, 'invalid_grant');
  t.regex(reused.body.error_description, /already used/);
  expectOAuthError(t, newest, 400, 'invalid_grant');
  const { family_id } = await p
    .db('refresh_tokens')
    .where({ token_hash: hashToken(first.refresh_token) })
    .first();
  const family = await p.db('refresh_tokens').where({ family_id });
  t.true(family.every((r: { revoked_at: Date | null }) => r.revoked_at !== null));
  // Another login of the same user is another family and keeps working.
  const other = await logIn(p.url, account);
  t.is(
    (await tokenRequest(p.url, { grant_type: 'refresh_token', refresh_token: other.refresh_token })).status,
    200,
  );
});

test('when a refresh token is unknown or expired, then invalid_grant', async (t) => {
  const unknown = await tokenRequest(p.url, { grant_type: 'refresh_token', refresh_token: 'rt_made-up' });
  const { refresh_token } = await logIn(p.url, account);
  await p
    .db('refresh_tokens')
    .where({ token_hash: hashToken(refresh_token) })
    .update({ expires_at: new Date(0) });
  const expired = await tokenRequest(p.url, { grant_type: 'refresh_token', refresh_token });

  expectOAuthError(t, unknown, 400, 'invalid_grant');
  expectOAuthError(t, expired, 400, 'invalid_grant');
  t.regex(expired.body.error_description, /expired/);
});

test('when a service client uses client_credentials in the body or as HTTP Basic, then it gets a token as itself with its roles', async (t) => {
  const client = await newClient(['operations']);

  const inBody = await tokenRequest(p.url, {
    grant_type: 'client_credentials',
    client_id: client.client_id,
    client_secret: client.client_secret,
  });
  const basic = await tokenRequest(
    p.url,
    { grant_type: 'client_credentials' },
    {
      authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`,
    },
  );

  for (const res of [inBody, basic]) {
    t.is(res.status, 200);
    t.is(res.body.token_type, 'Bearer');
    t.is(res.body.refresh_token, undefined, 'no refresh token for a client');
    const me = await getJson(p.url, '/me', res.body.access_token);
    t.like(me.body, { sub: `client:${client.client_id}`, kind: 'client', roles: ['operations'] });
  }
  const row = await p.db('service_clients').where({ id: client.id }).first();
  t.not(row.secret_hash, client.client_secret);
  t.false(JSON.stringify(row).includes(client.client_secret));
});

test('when a client secret is wrong, the client unknown or revoked, then invalid_client 401 (with WWW-Authenticate for Basic)', async (t) => {
  const client = await newClient();
  const wrong = await tokenRequest(p.url, {
    grant_type: 'client_credentials',
    client_id: client.client_id,
    client_secret: 'cs_wrong',
  });
  const basicWrong = await tokenRequest(
    p.url,
    { grant_type: 'client_credentials' },
    { authorization: `Basic ${Buffer.from(`${client.client_id}:nope`).toString('base64')}` },
  );
  const unknown = await tokenRequest(p.url, {
    grant_type: 'client_credentials',
    client_id: 'cli_nobody',
    client_secret: client.client_secret,
  });
  const revokedRes = await http(`${p.url}/clients/${client.id}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${admin}` },
  });
  const revoked = await tokenRequest(p.url, {
    grant_type: 'client_credentials',
    client_id: client.client_id,
    client_secret: client.client_secret,
  });

  expectOAuthError(t, wrong, 401, 'invalid_client');
  expectOAuthError(t, basicWrong, 401, 'invalid_client');
  t.regex(basicWrong.headers.get('www-authenticate') ?? '', /^Basic/);
  expectOAuthError(t, unknown, 401, 'invalid_client');
  t.is(revokedRes.status, 200);
  t.truthy(revokedRes.body.revoked_at);
  expectOAuthError(t, revoked, 401, 'invalid_client');
});

test('when the grant type is unknown, or missing, or a field is missing, then unsupported_grant_type or invalid_request', async (t) => {
  const unsupported = await tokenRequest(p.url, { grant_type: 'authorization_code', code: 'x' });
  const missing = await tokenRequest(p.url, { username: account.email });
  const noPassword = await tokenRequest(p.url, { grant_type: 'password', username: account.email });

  expectOAuthError(t, unsupported, 400, 'unsupported_grant_type');
  expectOAuthError(t, missing, 400, 'invalid_request');
  expectOAuthError(t, noPassword, 400, 'invalid_request');
});

test('when an admin lists service clients, then each is there without any secret', async (t) => {
  const client = await newClient(['customer']);

  const list = await getJson(p.url, '/clients', admin);

  t.is(list.status, 200);
  const listed = list.body.data.find((c: { id: string }) => c.id === client.id);
  t.like(listed, { client_id: client.client_id, roles: ['customer'] });
  t.false(JSON.stringify(list.body).includes('secret'));
});
