import type { Context, Next } from 'koa';
import {
  AppError,
  InternalError,
  MalformedRequestError,
  PayloadTooLargeError,
  ServiceUnavailableError,
  UnsupportedMediaTypeError,
  ValidationError,
} from '../../lib/errors.ts';
import { isTransientDbError } from '../../lib/db.ts';
import type { Logger } from '../../lib/logger.ts';

/** Maps anything thrown below it to an AppError: parser errors, database outages, and bugs. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as { status?: number; type?: string; message?: string; expose?: boolean };
  if (e?.type === 'entity.too.large' || e?.status === 413) {
    return new PayloadTooLargeError('The request body is larger than this API accepts', { cause: err });
  }
  if (e?.type === 'entity.parse.failed' || (e?.status === 400 && e.message?.includes('JSON'))) {
    return new MalformedRequestError('The request body is not valid JSON', { cause: err });
  }
  if (err instanceof SyntaxError) {
    // The JSON parser refuses prototype-poisoning keys (__proto__, constructor.prototype) with a bare SyntaxError.
    const detail = /prototype/i.test(err.message)
      ? 'The request body contains a forbidden key (__proto__ or constructor.prototype)'
      : 'The request body is not valid JSON';
    return new MalformedRequestError(detail, { cause: err });
  }
  if (e?.status === 415)
    return new UnsupportedMediaTypeError('Send the body as application/json', { cause: err });
  if (isTransientDbError(err)) {
    return new ServiceUnavailableError('The database is not available right now; retry shortly', {
      cause: err,
    });
  }
  if (e?.status && e.status >= 400 && e.status < 500 && e.expose) {
    return new MalformedRequestError(e.message ?? 'Bad request', { cause: err });
  }
  return new InternalError('Something went wrong on our side', { cause: err });
}

/**
 * Turns every error into an RFC 9457 problem+json response and logs it once: client errors at info, server
 * errors with their stack. Never shows a stack trace or an internal message to the client.
 */
export async function problemDetails(ctx: Context, next: Next): Promise<void> {
  try {
    await next();
    if (ctx.status === 404 && ctx.body === undefined) {
      writeProblem(ctx, {
        type: '/problems/not-found',
        title: 'Not found',
        status: 404,
        detail: `No route for ${ctx.method} ${ctx.path}`,
      });
    }
  } catch (err) {
    const app = toAppError(err);
    const log = (ctx.state as { log?: Logger }).log;
    if (app.status >= 500) log?.error({ err, code: app.code }, 'request failed');
    else log?.info({ code: app.code, detail: app.message }, 'request refused');

    if ('retryAfterSeconds' in app && typeof app.retryAfterSeconds === 'number') {
      ctx.set('Retry-After', String(app.retryAfterSeconds));
    }
    writeProblem(ctx, {
      type: `/problems/${app.code.toLowerCase().replaceAll('_', '-')}`,
      title: app.title,
      status: app.status,
      detail: app.expose ? app.message : 'An unexpected error occurred; it has been logged',
      code: app.code,
      ...(app.expose ? app.extensions : {}),
      ...(app instanceof ValidationError && app.errors.length ? { errors: app.errors } : {}),
      ...(ctx.state.requestId ? { request_id: ctx.state.requestId as string } : {}),
    });
  }
}

export function writeProblem(
  ctx: Context,
  problem: { type: string; title: string; status: number; detail: string } & Record<string, unknown>,
): void {
  ctx.status = problem.status;
  ctx.type = 'application/problem+json';
  ctx.body = { ...problem, instance: ctx.path };
}
