import { createHmac } from 'node:crypto';
import Router from '@koa/router';
import type { Next } from 'koa';
import { decodeJwt, jwtVerify, SignJWT } from 'jose';
import type { Config } from '../../lib/config.ts';
import { NotFoundError, UnauthorizedError, ValidationError } from '../../lib/errors.ts';
import { latestOrderEventId, orderEventsAfter, type FeedScope } from '../../orders/order-event-feed.ts';
import { findOrderForViewer } from '../../orders/order-queries.ts';
import { bearerToken, principalOf, rolesOf, type Auth, type Principal } from '../auth.ts';
import {
  ANY_ROLE,
  requireAuth,
  requireRole,
  type ApiContext,
  type ApiDeps,
  type ApiState,
} from '../context.ts';
import { SseFeed } from '../sse.ts';
import type { FeedSubscriber, StatusListener } from '../status-listener.ts';
import { UUID } from '../../lib/uuid.ts';

const EVENT_ID = /^\d{1,15}$/;
const STREAM_TOKEN_TTL_S = 60;
const BATCH = 500;

export interface StreamDeps {
  statusListener: StatusListener;
}

/**
 * Live feeds of the order trace as Server-Sent Events:
 * - `GET /orders/:id/stream` — one order's trace: everything so far, then each step as it happens;
 * - `GET /orders/stream` — the steps of all the caller's orders from now on (the portal's live badges);
 * - `POST /stream-tokens` — a token for the two above that lives a minute.
 *
 * EventSource cannot send headers, so these two routes (and only these) also take the token as the
 * `access_token` query parameter: either a stream token (preferred: short-lived and good for nothing else) or
 * the JWT itself. A browser that opens a new EventSource cannot send `Last-Event-ID` either, so the
 * `last_event_id` query parameter stands in for it; the header wins when both are there.
 *
 * Register this router before the orders router: `/orders/stream` would otherwise read as the order "stream".
 */
export function streamRouter(
  deps: ApiDeps & StreamDeps,
  streamTokens = createStreamTokens(deps.config),
): Router<ApiState> {
  const router = new Router<ApiState>();

  router.post('/stream-tokens', requireAuth(deps.auth), requireRole(...ANY_ROLE), async (ctx: ApiContext) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await streamTokens.issue(ctx.state.principal);
  });

  const streamAuth = async (ctx: ApiContext, next: Next) => {
    await streamPrincipal(ctx, deps.auth, streamTokens);
    await next();
  };
  const readers = requireRole(...ANY_ROLE);

  router.get('/orders/stream', streamAuth, readers, async (ctx: ApiContext) => {
    const principal = ctx.state.principal;
    const scope: FeedScope = principal.admin ? { allOrders: true } : { customerId: principal.sub };
    const after = lastEventId(ctx) ?? (await latestOrderEventId(deps.db));
    openFeed(ctx, deps, scope, after);
  });

  router.get('/orders/:id/stream', streamAuth, readers, async (ctx: ApiContext) => {
    const principal = ctx.state.principal;
    const id = (ctx.params as { id?: string }).id;
    const order = id && UUID.test(id) ? await findOrderForViewer(deps.db, id, principal) : undefined;
    if (!order) throw new NotFoundError(`Order ${id} not found`);
    openFeed(ctx, deps, { orderId: order.id }, lastEventId(ctx) ?? 0);
  });

  return router;
}

function openFeed(ctx: ApiContext, deps: ApiDeps & StreamDeps, scope: FeedScope, after: number): void {
  const log = ctx.state.log.child({ stream: 'orderId' in scope ? scope.orderId : 'orders' });
  const feed = new SseFeed({
    read: async (afterId: number) => {
      const events = await orderEventsAfter(deps.db, scope, afterId, BATCH);
      return { events, more: events.length === BATCH };
    },
    cursorOf: (event) => event.id,
    cursor: after,
    log,
  });
  const subscriber: FeedSubscriber = {
    ...('orderId' in scope ? { orderId: scope.orderId } : {}),
    ...('customerId' in scope ? { customerId: scope.customerId } : {}),
    ...('allOrders' in scope ? { allOrders: true } : {}),
    notify: () => feed.notify(),
    close: () => feed.close(),
  };
  // Subscribe before the first read: a change committed in between wakes the feed rather than being missed.
  feed.onClose(deps.statusListener.subscribe(subscriber));
  feed.open(ctx);
  log.info({ last_event_id: after }, 'stream opened');
}

/** `Last-Event-ID` (sent by EventSource when it reconnects), else the `last_event_id` query parameter. */
export function givenLastEventId(ctx: ApiContext): { value: string; field: string } | undefined {
  const header = ctx.get('Last-Event-ID');
  const query = typeof ctx.query.last_event_id === 'string' ? ctx.query.last_event_id : '';
  const value = header || query;
  return value ? { value, field: header ? 'Last-Event-ID' : 'last_event_id' } : undefined;
}

function lastEventId(ctx: ApiContext): number | undefined {
  const given = givenLastEventId(ctx)?.value;
  const header = ctx.get('Last-Event-ID');
  if (!given) return undefined;
  if (!EVENT_ID.test(given)) {
    throw new ValidationError('Last-Event-ID must be the id of an event this stream sent', [
      { field: header ? 'Last-Event-ID' : 'last_event_id', message: 'must be a whole number' },
    ]);
  }
  return Number(given);
}

/** The caller of a stream: a stream token or a JWT, from `Authorization` or the `access_token` parameter. */
export async function streamPrincipal(
  ctx: ApiContext,
  auth: Auth,
  streamTokens: StreamTokens,
): Promise<Principal> {
  const query = typeof ctx.query.access_token === 'string' ? ctx.query.access_token : '';
  const token = ctx.get('Authorization') || !query ? bearerToken(ctx.get('Authorization')) : query;
  const principal = streamTokens.isStreamToken(token)
    ? await streamTokens.verify(token)
    : await auth.verify(token);
  ctx.state.principal = principal;
  return principal;
}

export interface StreamTokens {
  issue(principal: Principal): Promise<{ token: string; expires_in: number }>;
  isStreamToken(token: string): boolean;
  verify(token: string): Promise<Principal>;
}

/**
 * Stream tokens are JWTs with their own audience, signed with a key derived from JWT_SECRET that signs nothing
 * else: a stream token is never accepted as an access token, and one that leaks (URLs end up in proxy logs)
 * opens only a read-only feed for a minute. When an external issuer signs the access tokens (JWT_JWKS_URL),
 * JWT_SECRET may be nothing but the development default, so there are no stream tokens: clients pass their JWT.
 */
export function createStreamTokens(config: Config): StreamTokens {
  const key = createHmac('sha256', config.JWT_SECRET).update('comanda stream tokens').digest();
  const audience = `${config.JWT_AUDIENCE}:stream`;
  const enabled = !config.JWT_JWKS_URL;
  return {
    async issue(principal) {
      if (!enabled) {
        throw new NotFoundError(
          'Stream tokens are off while an external issuer signs tokens (JWT_JWKS_URL): pass the JWT as access_token',
        );
      }
      const token = await new SignJWT({ roles: principal.roles })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(principal.sub)
        .setIssuer(config.JWT_ISSUER)
        .setAudience(audience)
        .setIssuedAt()
        .setExpirationTime(`${STREAM_TOKEN_TTL_S}s`)
        .sign(key);
      return { token, expires_in: STREAM_TOKEN_TTL_S };
    },
    isStreamToken(token) {
      if (!enabled) return false;
      try {
        return decodeJwt(token).aud === audience;
      } catch {
        return false;
      }
    },
    async verify(token) {
      try {
        const { payload } = await jwtVerify(token, key, {
          algorithms: ['HS256'],
          issuer: config.JWT_ISSUER,
          audience,
          clockTolerance: config.JWT_CLOCK_TOLERANCE_S,
          requiredClaims: ['sub', 'exp'],
        });
        return principalOf(payload.sub!, rolesOf(payload.roles ?? []));
      } catch (err) {
        throw new UnauthorizedError('The stream token is not valid or has expired; ask for a new one', {
          cause: err,
        });
      }
    },
  };
}
