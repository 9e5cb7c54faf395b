import { randomUUID } from 'node:crypto';
import test from 'ava';
import type Router from '@koa/router';
import { grantRole } from '../../accounts/users.ts';
import type { ApiDeps, ApiState } from '../../api/context.ts';
import { accountsRouter } from '../../api/routes/accounts.ts';
import { adminRouter } from '../../api/routes/admin.ts';
import { orderActionsRouter } from '../../api/routes/order-actions.ts';
import { ordersRouter } from '../../api/routes/orders.ts';
import { adminStreamRouter } from '../../api/routes/admin-stream.ts';
import { productsRouter } from '../../api/routes/products.ts';
import { createStreamTokens, streamRouter, type StreamDeps } from '../../api/routes/stream.ts';
import { webhooksRouter } from '../../api/routes/webhooks.ts';
import { buildAccount, logIn, tokenRequest } from '../helpers/accounts.ts';
import { buildProduct } from '../helpers/factories.ts';
import { http, postOrder } from '../helpers/http.ts';
import { startPipeline, type TestPipeline } from '../helpers/pipeline.ts';

type Caller = 'anonymous' | 'customer' | 'operations' | 'admin';

interface Case {
  method: string;
  /** The route template, as the router has it. */
  route: string;
  /** The request: the path with ids filled in, and a body. */
  path: () => string;
  body?: () => unknown;
  expect: Record<Caller, number>;
}

let p: TestPipeline;
const tokens = {} as Record<Exclude<Caller, 'anonymous'>, string>;
let orderId: string;
let endpointId: string;
let productId: string;
const missing = randomUUID();

test.before(async () => {
  p = await startPipeline({}, { worker: false });
  productId = (await buildProduct(p.db)).id;

  const customer = await buildAccount(p.url);
  tokens.customer = (await logIn(p.url, customer)).access_token;
  const admin = await buildAccount(p.url);
  await grantRole(p.db, admin.email, 'admin');
  tokens.admin = (await logIn(p.url, admin)).access_token;
  const client = await http(`${p.url}/clients`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.admin}` },
    body: JSON.stringify({ name: 'fulfilment', roles: ['operations'] }),
  });
  tokens.operations = (
    await tokenRequest(p.url, {
      grant_type: 'client_credentials',
      client_id: client.body.client_id,
      client_secret: client.body.client_secret,
    })
  ).body.access_token;

  orderId = (await postOrder(p.url, tokens.customer, { items: [{ product_id: productId, quantity: 1 }] }))
    .body.id;
  endpointId = (
    await http(`${p.url}/webhook-endpoints`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.customer}` },
      body: JSON.stringify({ url: 'https://example.test/hook', event_types: ['order.confirmed'] }),
    })
  ).body.id;
});
test.after.always(async () => {
  await p?.stop();
});

const all = (code: number, anonymous = 401) => ({ anonymous, customer: code, operations: code, admin: code });
const customerAndAdmin = (customer: number, admin = customer) => ({
  anonymous: 401,
  customer,
  operations: 403,
  admin,
});
const adminOnly = (admin: number) => ({ anonymous: 401, customer: 403, operations: 403, admin });

/** Every route that takes a token, and what each kind of caller gets. */
const cases: Case[] = [
  { method: 'GET', route: '/me', path: () => '/me', expect: all(200) },
  {
    method: 'POST',
    route: '/orders',
    path: () => '/orders',
    body: () => ({ items: [{ product_id: productId, quantity: 1 }] }),
    expect: customerAndAdmin(201),
  },
  { method: 'GET', route: '/orders', path: () => '/orders', expect: all(200) },
  { method: 'GET', route: '/orders/:id', path: () => `/orders/${orderId}`, expect: all(200) },
  { method: 'GET', route: '/orders/:id/events', path: () => `/orders/${orderId}/events`, expect: all(200) },
  { method: 'GET', route: '/orders/:id/stream', path: () => `/orders/${orderId}/stream`, expect: all(200) },
  { method: 'GET', route: '/orders/stream', path: () => '/orders/stream', expect: all(200) },
  { method: 'POST', route: '/stream-tokens', path: () => '/stream-tokens', expect: all(200) },
  {
    method: 'GET',
    route: '/orders/:id/deliveries',
    path: () => `/orders/${orderId}/deliveries`,
    expect: customerAndAdmin(200),
  },
  {
    method: 'POST',
    route: '/webhook-endpoints',
    path: () => '/webhook-endpoints',
    body: () => ({ url: 'https://example.test/matrix', event_types: ['order.created'] }),
    expect: customerAndAdmin(201),
  },
  {
    method: 'GET',
    route: '/webhook-endpoints',
    path: () => '/webhook-endpoints',
    expect: customerAndAdmin(200),
  },
  {
    method: 'GET',
    route: '/webhook-endpoints/:id',
    path: () => `/webhook-endpoints/${endpointId}`,
    expect: customerAndAdmin(200),
  },
  {
    method: 'PATCH',
    route: '/webhook-endpoints/:id',
    path: () => `/webhook-endpoints/${endpointId}`,
    body: () => ({ description: 'checked by the role matrix' }),
    expect: customerAndAdmin(200),
  },
  {
    method: 'DELETE',
    route: '/webhook-endpoints/:id',
    path: () => `/webhook-endpoints/${missing}`,
    expect: customerAndAdmin(404),
  },
  {
    method: 'POST',
    route: '/webhook-endpoints/:id/rotate-secret',
    path: () => `/webhook-endpoints/${endpointId}/rotate-secret`,
    expect: customerAndAdmin(200),
  },
  {
    method: 'GET',
    route: '/webhook-endpoints/:id/deliveries',
    path: () => `/webhook-endpoints/${endpointId}/deliveries`,
    expect: customerAndAdmin(200),
  },
  {
    method: 'POST',
    route: '/webhook-deliveries/:id/retry',
    path: () => `/webhook-deliveries/${missing}/retry`,
    expect: customerAndAdmin(404),
  },
  {
    method: 'POST',
    route: '/orders/:id/cancel',
    path: () => `/orders/${missing}/cancel`,
    body: () => ({ reason: 'role matrix' }),
    expect: customerAndAdmin(404),
  },
  {
    method: 'POST',
    route: '/orders/:id/payment',
    path: () => `/orders/${missing}/payment`,
    body: () => ({ token: 'tok_visa' }),
    // A customer's route; the admin here is a registered customer granted admin, so it passes too.
    expect: customerAndAdmin(404),
  },
  {
    method: 'PATCH',
    route: '/orders/:id/status',
    path: () => `/orders/${missing}/status`,
    body: () => ({ status: 'PROCESSING' }),
    expect: { anonymous: 401, customer: 403, operations: 404, admin: 404 },
  },
  { method: 'GET', route: '/admin/dead-letters', path: () => '/admin/dead-letters', expect: adminOnly(200) },
  {
    method: 'GET',
    route: '/admin/stream',
    path: () => '/admin/stream',
    expect: { anonymous: 401, customer: 403, operations: 200, admin: 200 },
  },
  {
    method: 'GET',
    route: '/admin/dead-letters/:id',
    path: () => `/admin/dead-letters/${missing}`,
    expect: adminOnly(404),
  },
  {
    method: 'POST',
    route: '/admin/dead-letters/:id/replay',
    path: () => `/admin/dead-letters/${missing}/replay`,
    expect: adminOnly(404),
  },
  {
    method: 'POST',
    route: '/admin/dead-letters/replay',
    path: () => '/admin/dead-letters/replay',
    expect: adminOnly(200),
  },
  {
    method: 'POST',
    route: '/clients',
    path: () => '/clients',
    body: () => ({ name: 'matrix', roles: ['customer'] }),
    expect: adminOnly(201),
  },
  { method: 'GET', route: '/clients', path: () => '/clients', expect: adminOnly(200) },
  { method: 'DELETE', route: '/clients/:id', path: () => `/clients/${missing}`, expect: adminOnly(404) },
  {
    method: 'POST',
    route: '/products',
    path: () => '/products',
    // Only the admin's request is valid: a role check comes before the body is read.
    body: () => ({
      sku: `M-${randomUUID().slice(0, 8)}`,
      name: 'Matrix',
      price: 100,
      currency: 'EUR',
      stock: 1,
    }),
    expect: adminOnly(201),
  },
  {
    method: 'PATCH',
    route: '/products/:id',
    path: () => `/products/${productId}`,
    body: () => ({ name: 'Renamed by the role matrix' }),
    expect: adminOnly(200),
  },
  {
    method: 'POST',
    route: '/products/:id/stock-adjustments',
    path: () => `/products/${productId}/stock-adjustments`,
    body: () => ({ delta: 1, reason: 'restock' }),
    expect: adminOnly(201),
  },
  {
    method: 'GET',
    route: '/products/:id/stock-movements',
    path: () => `/products/${productId}/stock-movements`,
    expect: adminOnly(200),
  },
  {
    method: 'POST',
    route: '/products/import',
    path: () => '/products/import',
    expect: adminOnly(415),
  },
];

/** Routes anyone may call: they take no token. */
const PUBLIC = new Set([
  'POST /auth/register',
  'POST /auth/token',
  'GET /.well-known/jwks.json',
  // The catalogue is public; an admin token only adds inactive products and stock details.
  'GET /products',
  'GET /products/:id',
  'POST /products/check-availability',
]);

/** The status of one request; the body of an event stream is not waited for. */
async function statusOf(c: Case, caller: Caller): Promise<number> {
  const body = c.body?.();
  const res = await fetch(`${p.url}${c.path()}`, {
    method: c.method,
    headers: {
      ...(caller === 'anonymous' ? {} : { authorization: `Bearer ${tokens[caller]}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(c.method === 'POST' && c.route === '/orders' ? { 'idempotency-key': randomUUID() } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  await res.body?.cancel();
  return res.status;
}

for (const c of cases) {
  test(`when anonymous, a customer, operations and an admin call ${c.method} ${c.route}, then they get ${Object.values(c.expect).join('/')}`, async (t) => {
    const got: Record<string, number> = {};
    for (const caller of ['anonymous', 'customer', 'operations', 'admin'] as const)
      got[caller] = await statusOf(c, caller);

    t.deepEqual(got, c.expect);
  });
}

test('when the routers are read, then every route that is not public is in the matrix above', (t) => {
  const deps = {
    config: p.config,
    db: p.db,
    redis: p.services.redis,
    amqp: p.services.amqp,
    topology: p.services.topology,
    publisher: p.api.publisher,
    logger: p.services.logger,
    keys: p.api.keys,
    statusListener: p.api.statusListener,
  } as unknown as ApiDeps & StreamDeps;
  const routers: Router<ApiState>[] = [
    accountsRouter(deps),
    ordersRouter(deps),
    orderActionsRouter(deps),
    streamRouter(deps),
    adminStreamRouter(deps, createStreamTokens(p.config)),
    webhooksRouter(deps),
    adminRouter(deps),
    productsRouter(deps),
  ];
  const routes = routers.flatMap((r) =>
    r.stack.flatMap((layer) => layer.methods.filter((m) => m !== 'HEAD').map((m) => `${m} ${layer.path}`)),
  );

  const covered = new Set(cases.map((c) => `${c.method} ${c.route}`));
  t.deepEqual(
    routes.filter((r) => !covered.has(r) && !PUBLIC.has(r)),
    [],
    'routes missing from the matrix',
  );
  t.deepEqual(
    [...covered].filter((r) => !routes.includes(r)),
    [],
    'matrix entries for routes that do not exist',
  );
});
