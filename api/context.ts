import type { Next, ParameterizedContext } from 'koa';
import type { AmqpClient } from '../lib/amqp/connection.ts';
import type { ConfirmPublisher } from '../lib/amqp/publisher.ts';
import type { Topology } from '../lib/amqp/topology.ts';
import type { Config } from '../lib/config.ts';
import type { Db } from '../lib/db.ts';
import { ForbiddenError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import type { Redis } from '../lib/redis.ts';
import type { Actor } from '../orders/lifecycle.ts';
import type { ChangeHook } from '../orders/transition.ts';
import { bearerToken, type Auth, type Principal } from './auth.ts';

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

export function requireAdmin(ctx: ApiContext, next: Next): Promise<void> {
  if (!ctx.state.principal.admin) throw new ForbiddenError('This needs an admin token');
  return next();
}

/** The lifecycle actor a caller acts as: an admin, an operations user, or a customer. */
export function lifecycleActor(principal: Principal): Extract<Actor, 'admin' | 'operations' | 'customer'> {
  if (principal.admin) return 'admin';
  if ((principal.roles as string[]).includes('operations')) return 'operations';
  return 'customer';
}
