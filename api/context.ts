import type { Next, ParameterizedContext } from 'koa';
import type { AmqpClient } from '../lib/amqp/connection.ts';
import type { ConfirmPublisher } from '../lib/amqp/publisher.ts';
import type { Topology } from '../lib/amqp/topology.ts';
import type { Config } from '../lib/config.ts';
import type { Db } from '../lib/db.ts';
import { ForbiddenError, UnauthorizedError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import type { Redis } from '../lib/redis.ts';
import type { KeyRing } from '../accounts/key-ring.ts';
import type { LoginLimiter } from '../accounts/login-limiter.ts';
import type { SecretBox } from '../lib/secret-box.ts';
import type { Actor } from '../orders/lifecycle.ts';
import type { ChangeHook } from '../orders/transition.ts';
import { bearerToken, type Auth, type Principal, type Role } from './auth.ts';

/** What the HTTP layer is built from; the entry point creates each piece and passes it in. */
export interface ApiDeps {
  config: Config;
  db: Db;
  redis: Redis;
  amqp: AmqpClient;
  publisher: ConfirmPublisher;
  topology: Topology;
  logger: Logger;
  auth: Auth;
  /** comanda's signing keys (the JWKS). */
  keys: KeyRing;
  /** Seals and opens secrets kept at rest. */
  box: SecretBox;
  loginLimiter: LoginLimiter;
  /** Run with every change of an order (webhook deliveries). */
  hooks: readonly ChangeHook[];
  /** Called after an order commits, so the relay publishes it at once rather than at its next sweep. */
  onOutboxWritten: () => void;
}

export interface ApiState {
  requestId: string;
  log: Logger;
  principal: Principal;
}

export type ApiContext = ParameterizedContext<ApiState>;

/** Verifies the bearer token and puts the caller in `ctx.state.principal`. */
export function requireAuth(auth: Auth) {
  return async (ctx: ApiContext, next: Next): Promise<void> => {
    ctx.state.principal = await auth.verify(bearerToken(ctx.get('Authorization')));
    await next();
  };
}

/** Every role: any authenticated caller. */
export const ANY_ROLE: readonly Role[] = ['customer', 'admin', 'operations'];

/**
 * The one role check of the API: the caller (put there by requireAuth, or by a stream's own token reading) must hold
 * at least one of `allowed`, else 403. Every route that takes a token names its roles with it.
 */
export function requireRole(...allowed: readonly Role[]) {
  return (ctx: ApiContext, next: Next): Promise<void> => {
    const principal = (ctx.state as Partial<ApiState>).principal;
    if (!principal) throw new UnauthorizedError('Send a token as "Authorization: Bearer <token>"');
    if (!principal.roles.some((r) => allowed.includes(r))) {
      throw new ForbiddenError(`This needs the role ${allowed.join(' or ')}`);
    }
    return next();
  };
}

/** The lifecycle actor a caller acts as: an admin, an operations user, or a customer. */
export function lifecycleActor(principal: Principal): Extract<Actor, 'admin' | 'operations' | 'customer'> {
  // Principal.admin is true for operations too (both see every order): the roles decide the actor.
  if (principal.roles.includes('admin')) return 'admin';
  if (principal.roles.includes('operations')) return 'operations';
  return 'customer';
}
