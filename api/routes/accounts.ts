import Router from '@koa/router';
import { z } from 'zod';
import {
  createServiceClient,
  listServiceClients,
  revokeServiceClient,
} from '../../accounts/service-clients.ts';
import { ROLES } from '../../accounts/roles.ts';
import { findUser, PASSWORD_MAX, registerUser } from '../../accounts/users.ts';
import { UnsupportedMediaTypeError } from '../../lib/errors.ts';
import {
  ANY_ROLE,
  requireAuth,
  requireRole,
  type ApiContext,
  type ApiDeps,
  type ApiState,
} from '../context.ts';
import { parseInput } from '../validation.ts';
import { tokenEndpoint } from './token-endpoint.ts';

export const registerBody = z.strictObject({
  email: z.email({ message: 'must be an email address' }).max(254),
  // The length rules (8 to 128 characters, not the email) are the domain's: accounts/users.ts.
  password: z.string({ message: 'must be a string' }).max(PASSWORD_MAX * 4),
  name: z.string({ message: 'must be a string' }).trim().min(1, { message: 'must not be empty' }).max(200),
});

export const newClientBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  roles: z
    .array(z.enum(ROLES, { message: `must be one of ${ROLES.join(', ')}` }))
    .min(1, { message: 'give the client at least one role' }),
});

function body(ctx: ApiContext): unknown {
  if (!ctx.is('application/json')) throw new UnsupportedMediaTypeError('Send the body as application/json');
  return (ctx.request as { body?: unknown }).body;
}

/**
 * Accounts: registration, the OAuth 2.0 token endpoint, who am I, service clients (admin) and the public signing
 * keys. A user's `sub` is its id; a service client's is `client:<client_id>`.
 */
export function accountsRouter(deps: ApiDeps): Router<ApiState> {
  const router = new Router<ApiState>();
  const authed = requireAuth(deps.auth);

  router.post('/auth/register', async (ctx: ApiContext) => {
    const input = parseInput(registerBody, body(ctx));
    const user = await registerUser(deps.db, input, deps.config.PASSWORD_SCRYPT_LOG_N);
    ctx.state.log.info({ event: 'user_registered', user_id: user.id }, 'account created');
    ctx.status = 201;
    ctx.set('Location', '/me');
    ctx.body = { id: user.id, email: user.email, name: user.name };
  });

  router.post('/auth/token', tokenEndpoint(deps));

  router.get('/me', authed, requireRole(...ANY_ROLE), async (ctx: ApiContext) => {
    const { sub, roles } = ctx.state.principal;
    const user = /^[0-9a-f-]{36}$/i.test(sub) ? await findUser(deps.db, sub) : undefined;
    const kind = user
      ? 'user'
      : sub.startsWith('client:')
        ? 'client'
        : sub.startsWith('demo')
          ? 'demo'
          : 'external';
    ctx.body = { sub, roles, kind, ...(user ? { id: user.id, email: user.email, name: user.name } : {}) };
  });

  const admin = [authed, requireRole('admin')] as const;

  router.post('/clients', ...admin, async (ctx: ApiContext) => {
    const input = parseInput(newClientBody, body(ctx));
    const client = await createServiceClient(deps.db, input, ctx.state.principal.sub);
    ctx.state.log.info({ event: 'client_created', client_id: client.client_id }, 'service client created');
    ctx.status = 201;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = client;
  });

  router.get('/clients', ...admin, async (ctx: ApiContext) => {
    ctx.body = { data: await listServiceClients(deps.db) };
  });

  router.delete('/clients/:id', ...admin, async (ctx: ApiContext) => {
    const client = await revokeServiceClient(deps.db, (ctx.params as { id: string }).id);
    ctx.state.log.info({ event: 'client_revoked', client_id: client.client_id }, 'service client revoked');
    ctx.body = client;
  });

  router.get('/.well-known/jwks.json', (ctx: ApiContext) => {
    // Short caching: after a rotation, verifiers see the new key within a minute (and refetch on an unknown kid).
    ctx.set('Cache-Control', 'public, max-age=60');
    ctx.body = deps.keys.jwks();
  });

  return router;
}
