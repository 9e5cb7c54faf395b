import type { Next } from 'koa';
import { z } from 'zod';
import { rotateRefreshToken, issueRefreshToken } from '../../accounts/refresh-tokens.ts';
import { authenticateClient } from '../../accounts/service-clients.ts';
import { authenticateUser, findUser, type User } from '../../accounts/users.ts';
import { OAuthError, TooManyAttemptsError, ValidationError } from '../../lib/errors.ts';
import type { ApiContext, ApiDeps } from '../context.ts';
import { parseInput } from '../validation.ts';

const field = z.string({ message: 'is required' }).min(1, { message: 'is required' }).max(4096);
const passwordGrant = z.object({ grant_type: z.literal('password'), username: field, password: field });
const refreshGrant = z.object({ grant_type: z.literal('refresh_token'), refresh_token: field });
const clientGrant = z.object({
  grant_type: z.literal('client_credentials'),
  client_id: field.optional(),
  client_secret: field.optional(),
});

const GRANTS = ['password', 'refresh_token', 'client_credentials'];

interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token?: string;
}

/**
 * `POST /auth/token`, the OAuth 2.0 token endpoint (RFC 6749): form-encoded or JSON, grants `password`,
 * `refresh_token` and `client_credentials` (client credentials in the body or as HTTP Basic). Its errors are RFC 6749
 * §5.2 JSON — `{"error", "error_description"}`, 400, or 401 for `invalid_client` — not problem+json, so any OAuth
 * client library reads them; too many failed logins are a 429 with Retry-After in the same shape.
 */
export function tokenEndpoint(deps: ApiDeps) {
  return async (ctx: ApiContext, _next: Next): Promise<void> => {
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Pragma', 'no-cache');
    const basic = ctx.get('Authorization').startsWith('Basic ');
    try {
      ctx.body = await grant(deps, ctx);
    } catch (err) {
      const refused = asOAuthRefusal(err);
      if (!refused) throw err;
      ctx.status = refused.status;
      if (refused.status === 429) ctx.set('Retry-After', String(refused.retryAfter));
      if (refused.error === 'invalid_client' && basic) ctx.set('WWW-Authenticate', 'Basic realm="comanda"');
      ctx.body = { error: refused.error, error_description: refused.description };
    }
  };
}

function asOAuthRefusal(err: unknown) {
  if (err instanceof OAuthError) return { status: err.status, error: err.error, description: err.message };
  if (err instanceof ValidationError)
    return { status: 400, error: 'invalid_request', description: err.message };
  if (err instanceof TooManyAttemptsError) {
    return {
      status: 429,
      error: 'too_many_attempts',
      description: err.message,
      retryAfter: err.retryAfterSeconds,
    };
  }
  return undefined;
}

async function grant(deps: ApiDeps, ctx: ApiContext): Promise<TokenResponse> {
  if (!ctx.is('application/x-www-form-urlencoded', 'application/json')) {
    throw new OAuthError('invalid_request', 'Send the token request as application/x-www-form-urlencoded');
  }
  const raw = (ctx.request as { body?: unknown }).body;
  const grantType = (raw as { grant_type?: unknown } | undefined)?.grant_type;
  if (typeof grantType !== 'string' || !grantType)
    throw new OAuthError('invalid_request', 'grant_type is required');
  if (!GRANTS.includes(grantType)) {
    throw new OAuthError('unsupported_grant_type', `grant_type must be one of ${GRANTS.join(', ')}`);
  }
  switch (grantType) {
    case 'password':
      return passwordFlow(deps, ctx, parseInput(passwordGrant, raw));
    case 'refresh_token':
      return refreshFlow(deps, parseInput(refreshGrant, raw));
    default:
      return clientFlow(deps, ctx, parseInput(clientGrant, raw));
  }
}

async function userTokens(deps: ApiDeps, user: User, refreshToken: string): Promise<TokenResponse> {
  const access = await deps.auth.issueAccessToken(user.id, user.roles, { name: user.name });
  return {
    access_token: access.token,
    token_type: 'Bearer',
    expires_in: access.expires_in,
    refresh_token: refreshToken,
  };
}

async function passwordFlow(
  deps: ApiDeps,
  ctx: ApiContext,
  input: z.infer<typeof passwordGrant>,
): Promise<TokenResponse> {
  const log = ctx.state.log;
  const { config, db, loginLimiter } = deps;
  try {
    await loginLimiter.check(input.username, ctx.ip);
  } catch (err) {
    log.warn(
      { event: 'login_refused', username: input.username, ip: ctx.ip },
      'login refused: too many failures',
    );
    throw err;
  }
  const user = await authenticateUser(db, input.username, input.password, config.PASSWORD_SCRYPT_LOG_N);
  if (!user) {
    await loginLimiter.recordFailure(input.username, ctx.ip);
    log.warn({ event: 'login_failed', username: input.username, ip: ctx.ip }, 'login failed');
    throw new OAuthError('invalid_grant', 'The email or the password is not right');
  }
  await loginLimiter.recordSuccess(input.username);
  log.info({ event: 'login_succeeded', user_id: user.id, ip: ctx.ip }, 'login succeeded');
  return userTokens(deps, user, await issueRefreshToken(db, user.id, config.REFRESH_TOKEN_TTL_S));
}

async function refreshFlow(deps: ApiDeps, input: z.infer<typeof refreshGrant>): Promise<TokenResponse> {
  const { userId, refreshToken } = await rotateRefreshToken(
    deps.db,
    input.refresh_token,
    deps.config.REFRESH_TOKEN_TTL_S,
  );
  const user = await findUser(deps.db, userId);
  if (!user) throw new OAuthError('invalid_grant', 'The account of this refresh token is gone');
  return userTokens(deps, user, refreshToken);
}

async function clientFlow(
  deps: ApiDeps,
  ctx: ApiContext,
  input: z.infer<typeof clientGrant>,
): Promise<TokenResponse> {
  const credentials = basicCredentials(ctx.get('Authorization')) ?? {
    id: input.client_id,
    secret: input.client_secret,
  };
  if (!credentials.id || !credentials.secret) {
    throw new OAuthError('invalid_client', 'Send client_id and client_secret (in the body or as HTTP Basic)');
  }
  const client = await authenticateClient(deps.db, credentials.id, credentials.secret);
  if (!client) {
    ctx.state.log.warn(
      { event: 'client_auth_failed', client_id: credentials.id, ip: ctx.ip },
      'client authentication failed',
    );
    throw new OAuthError('invalid_client', 'The client is unknown, revoked, or its secret is not right');
  }
  ctx.state.log.info(
    { event: 'client_authenticated', client_id: client.client_id, ip: ctx.ip },
    'client token issued',
  );
  const access = await deps.auth.issueAccessToken(`client:${client.client_id}`, client.roles, {
    client_id: client.client_id,
  });
  return { access_token: access.token, token_type: 'Bearer', expires_in: access.expires_in };
}

/** RFC 6749 §2.3.1: `Basic base64(urlencode(id):urlencode(secret))`. */
function basicCredentials(header: string): { id: string; secret: string } | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!match) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  try {
    return {
      id: decodeURIComponent(decoded.slice(0, colon).replaceAll('+', ' ')),
      secret: decodeURIComponent(decoded.slice(colon + 1).replaceAll('+', ' ')),
    };
  } catch {
    return undefined;
  }
}
