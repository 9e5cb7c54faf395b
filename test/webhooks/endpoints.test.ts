import test from 'ava';
import { http } from '../helpers/http.ts';
import { startPipeline, type TestPipeline } from '../helpers/pipeline.ts';
import { loadSecretBox } from '../../lib/secret-box.ts';
import { signingSecrets, syncConfiguredEndpoint } from '../../webhooks/endpoints.ts';

// Private URLs refused, as in production; public IP literals need no DNS and are never called (no notifier).
let p: TestPipeline;
test.before(async () => {
  p = await startPipeline({ WEBHOOK_ALLOW_PRIVATE_URLS: 'false' }, { worker: false });
});
test.after.always(async () => {
  await p?.stop();
});

const PUBLIC_URL = 'https://93.184.215.14/hooks/comanda';

function call(method: string, path: string, token: string | undefined, body?: unknown) {
  return http(`${p.url}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** A fresh customer: its token, and (through its JWT `sub`) the endpoint rows it owns. */
async function newCustomer() {
  const name = `c-${Math.random().toString(36).slice(2, 10)}`;
  const sub = `demo:${name}`;
  return {
    token: await p.token(name),
    rows: (): Promise<any[]> => p.db('webhook_endpoints').where({ customer_id: sub }).orderBy('id'),
  };
}

test('when a customer registers an endpoint, then it is theirs, its secret is shown once, and they can read, change and delete it', async (t) => {
  const customer = await p.token();

  const created = await call('POST', '/webhook-endpoints', customer, {
    url: PUBLIC_URL,
    event_types: ['order.confirmed', 'order.rejected', 'order.confirmed'],
    description: 'ERP',
  });

  t.is(created.status, 201);
  t.is(created.headers.get('location'), `/webhook-endpoints/${created.body.id}`);
  t.regex(created.body.secret, /^whsec_[A-Za-z0-9+/]+=*$/);
  t.like(created.body, {
    url: PUBLIC_URL,
    event_types: ['order.confirmed', 'order.rejected'],
    enabled: true,
    owner: 'customer',
  });
  const read = await call('GET', `/webhook-endpoints/${created.body.id}`, customer);
  t.is(read.status, 200);
  t.is(read.body.secret, undefined);
  const patched = await call('PATCH', `/webhook-endpoints/${created.body.id}`, customer, {
    enabled: false,
    event_types: ['order.created'],
  });
  t.is(patched.status, 200);
  t.like(patched.body, { enabled: false, event_types: ['order.created'], url: PUBLIC_URL });
  t.is((await call('DELETE', `/webhook-endpoints/${created.body.id}`, customer)).status, 204);
  t.is((await call('GET', `/webhook-endpoints/${created.body.id}`, customer)).status, 404);
});

test('when an admin registers an endpoint, then it is an operations endpoint, and the admin sees every endpoint while a customer sees only theirs', async (t) => {
  const [admin, customer, other] = [await p.token('ops-1', 'admin'), await p.token(), await p.token()];

  const ops = await call('POST', '/webhook-endpoints', admin, {
    url: PUBLIC_URL,
    event_types: ['order.created'],
  });
  const mine = await call('POST', '/webhook-endpoints', customer, {
    url: PUBLIC_URL,
    event_types: ['order.created'],
  });
  await call('POST', '/webhook-endpoints', other, { url: PUBLIC_URL, event_types: ['order.created'] });

  t.like(ops.body, { owner: 'operations', customer_id: null });
  const seenByAdmin = (await call('GET', '/webhook-endpoints', admin)).body.data.map((e: any) => e.id);
  t.true([ops.body.id, mine.body.id].every((id) => seenByAdmin.includes(id)));
  const seenByCustomer = (await call('GET', '/webhook-endpoints', customer)).body.data.map((e: any) => e.id);
  t.deepEqual(seenByCustomer, [mine.body.id]);
});

test('when the URL is invalid, not http(s), or points to a private address, then 422 names the url and nothing is stored', async (t) => {
  const { token: customer, rows } = await newCustomer();

  for (const url of [
    'not a url',
    'ftp://93.184.215.14/hooks',
    'http://10.1.2.3/hooks',
    'http://127.0.0.1:3000/hooks',
    'http://[::1]/hooks',
    'http://169.254.169.254/latest/meta-data',
    'http://localhost:3000/hooks',
    'https://user:secret@93.184.215.14/hooks',
  ]) {
    const res = await call('POST', '/webhook-endpoints', customer, { url, event_types: ['order.created'] });
    t.is(res.status, 422, url);
    t.is(res.headers.get('content-type'), 'application/problem+json');
    t.is(res.body.errors[0].field, 'url', url);
  }
  t.deepEqual(await rows(), []);
});

test('when an endpoint is moved to a private URL, then 422 and it keeps its URL', async (t) => {
  const customer = await p.token();
  const created = await call('POST', '/webhook-endpoints', customer, {
    url: PUBLIC_URL,
    event_types: ['order.created'],
  });

  const res = await call('PATCH', `/webhook-endpoints/${created.body.id}`, customer, {
    url: 'http://192.168.1.10/x',
  });

  t.is(res.status, 422);
  t.is((await call('GET', `/webhook-endpoints/${created.body.id}`, customer)).body.url, PUBLIC_URL);
});

test('when an event type is unknown, missing, or the body is not as expected, then 4xx names the field and nothing is stored', async (t) => {
  const { token: customer, rows } = await newCustomer();

  const unknown = await call('POST', '/webhook-endpoints', customer, {
    url: PUBLIC_URL,
    event_types: ['order.created', 'order.exploded'],
  });
  const none = await call('POST', '/webhook-endpoints', customer, { url: PUBLIC_URL, event_types: [] });
  const extra = await call('POST', '/webhook-endpoints', customer, {
    url: PUBLIC_URL,
    event_types: ['order.created'],
    secret: 'whsec_mine',
  });
  const broken = await call('POST', '/webhook-endpoints', customer, '{"url":');
  const anonymous = await call('POST', '/webhook-endpoints', undefined, {
    url: PUBLIC_URL,
    event_types: ['order.created'],
  });

  t.is(unknown.status, 422);
  t.is(unknown.body.errors[0].field, 'event_types.1');
  t.regex(unknown.body.errors[0].message, /order\.created, .*order\.confirmed, .*order\.refunded/);
  t.is(none.status, 422);
  t.is(extra.status, 422);
  t.is(extra.body.errors[0].field, 'secret');
  t.is(broken.status, 400);
  t.is(anonymous.status, 401);
  t.deepEqual(await rows(), []);
});

test("when a customer reaches for another customer's endpoint or delivery, then 404 and nothing changes", async (t) => {
  const [{ token: owner, rows }, { token: intruder }] = [await newCustomer(), await newCustomer()];
  const created = await call('POST', '/webhook-endpoints', owner, {
    url: PUBLIC_URL,
    event_types: ['order.created'],
  });
  const id = created.body.id as string;
  const [delivery] = await p
    .db('webhook_deliveries')
    .insert({ endpoint_id: id, event_type: 'order.created', payload: {}, status: 'failed', attempt_count: 8 })
    .returning('id');
  const before = await rows();

  const answers = [
    await call('GET', `/webhook-endpoints/${id}`, intruder),
    await call('PATCH', `/webhook-endpoints/${id}`, intruder, { url: 'https://93.184.215.15/mine' }),
    await call('DELETE', `/webhook-endpoints/${id}`, intruder),
    await call('POST', `/webhook-endpoints/${id}/rotate-secret`, intruder),
    await call('GET', `/webhook-endpoints/${id}/deliveries`, intruder),
    await call('POST', `/webhook-deliveries/${delivery.id}/retry`, intruder),
  ];

  t.deepEqual(
    answers.map((a) => a.status),
    [404, 404, 404, 404, 404, 404],
  );
  t.deepEqual(await rows(), before);
  t.like(await p.db('webhook_deliveries').where({ id: delivery.id }).first(), {
    status: 'failed',
    attempt_count: 8,
  });
  t.is((await call('GET', `/webhook-endpoints/${id}/deliveries`, owner)).body.data[0].id, delivery.id);
});

test('when OPS_WEBHOOK_URL is configured, then it becomes one operations endpoint the API will not change, disabled when the setting goes', async (t) => {
  const admin = await p.token('ops-2', 'admin');
  const secret = 'whsec_' + Buffer.alloc(32, 7).toString('base64');
  const types = ['order.confirmed' as const];

  const box = await loadSecretBox(p.config, p.db);

  t.is(await syncConfiguredEndpoint(p.db, { url: PUBLIC_URL, secret, eventTypes: types }, box), 'created');
  t.is(
    await syncConfiguredEndpoint(p.db, { url: `${PUBLIC_URL}/v2`, secret, eventTypes: types }, box),
    'updated',
  );
  const [row] = await p.db('webhook_endpoints').where({ source: 'config' });
  t.like(row, { url: `${PUBLIC_URL}/v2`, owner: 'operations', enabled: true });
  t.deepEqual(signingSecrets(row, box), [secret], 'stored sealed, opened to the configured secret');
  t.is((await call('PATCH', `/webhook-endpoints/${row.id}`, admin, { enabled: false })).status, 409);
  t.is((await call('DELETE', `/webhook-endpoints/${row.id}`, admin)).status, 409);

  t.is(await syncConfiguredEndpoint(p.db, { eventTypes: types }, box), 'disabled');
  t.false((await p.db('webhook_endpoints').where({ id: row.id }).first()).enabled);
});
