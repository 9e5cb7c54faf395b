import { createRemoteJWKSet, errors as joseErrors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import type { Config } from '../lib/config.ts';
import { UnauthorizedError } from '../lib/errors.ts';

export type Role = 'customer' | 'admin';

const CACHE_SIZE = 10_000;
const CACHE_MS = 5 * 60_000;

/** Who is calling, from a verified JWT. */
export interface Principal {
  sub: string;
  roles: Role[];
  admin: boolean;
}

export interface Auth {
  verify(token: string): Promise<Principal>;
  issueDemoToken(customer: string, role: Role): Promise<{ token: string; expires_in: number; sub: string }>;
}

/**
 * JWT verification with an algorithm allow-list and `iss`, `aud` and `exp` checked (small clock tolerance).
 * Tokens are HMAC-signed with JWT_SECRET, or verified against JWT_JWKS_URL when an external issuer signs them.
 */
export function createAuth(config: Config): Auth {
  const secret = new TextEncoder().encode(config.JWT_SECRET);
  const jwks = config.JWT_JWKS_URL ? createRemoteJWKSet(new URL(config.JWT_JWKS_URL)) : undefined;
  const verifyOptions = {
    algorithms: config.JWT_ALGORITHMS,
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
    clockTolerance: config.JWT_CLOCK_TOLERANCE_S,
    requiredClaims: ['sub', 'exp'],
  };

  // A client sends the same token on every request: verified once, it is remembered until it expires (at most
  // CACHE_MS), which takes a signature check off the hot path without ever accepting an expired token.
  const verified = new Map<string, { principal: Principal; until: number }>();

  return {
    async verify(token) {
      const hit = verified.get(token);
      if (hit && hit.until > Date.now()) return hit.principal;
      let payload: JWTPayload;
      try {
        ({ payload } = jwks
          ? await jwtVerify(token, jwks, verifyOptions)
          : await jwtVerify(token, secret, verifyOptions));
      } catch (err) {
        throw new UnauthorizedError(describeJwtError(err), { cause: err });
      }
      const roles = (Array.isArray(payload.roles) ? payload.roles : ['customer']).filter(
        (r): r is Role => r === 'customer' || r === 'admin',
      );
      const principal: Principal = { sub: payload.sub!, roles, admin: roles.includes('admin') };
      if (verified.size >= CACHE_SIZE) verified.delete(verified.keys().next().value!);
      verified.set(token, { principal, until: Math.min(payload.exp! * 1000, Date.now() + CACHE_MS) });
      return principal;
    },

    async issueDemoToken(customer, role) {
      const sub = role === 'admin' ? `demo-admin:${customer}` : `demo:${customer}`;
      const token = await new SignJWT({ roles: [role], name: customer })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(sub)
        .setIssuer(config.JWT_ISSUER)
        .setAudience(config.JWT_AUDIENCE)
        .setIssuedAt()
        .setExpirationTime(`${config.DEMO_TOKEN_TTL_S}s`)
        .sign(secret);
      return { token, expires_in: config.DEMO_TOKEN_TTL_S, sub };
    },
  };
}

function describeJwtError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'The token has expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed)
    return `The token's "${err.claim}" claim is not accepted`;
  if (err instanceof joseErrors.JOSEAlgNotAllowed)
    return 'The token is signed with an algorithm that is not accepted';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'The token signature is not valid';
  return 'The token is not valid';
}

/** Reads `Authorization: Bearer <token>`; anything else is a 401. */
export function bearerToken(header: string | undefined): string {
  const match = /^Bearer\s+([A-Za-z0-9\-_.]+)\s*$/i.exec(header ?? '');
  if (!match) throw new UnauthorizedError('Send a token as "Authorization: Bearer <token>"');
  return match[1];
}
