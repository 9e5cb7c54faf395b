import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  SignJWT,
  type JWTPayload,
  type JWTVerifyOptions,
} from 'jose';
import type { KeyRing } from '../accounts/key-ring.ts';
import { isRole, type Role } from '../accounts/roles.ts';
import type { Config } from '../lib/config.ts';
import { UnauthorizedError } from '../lib/errors.ts';

export type { Role };

const CACHE_SIZE = 10_000;
const CACHE_MS = 5 * 60_000;
const HMAC_ALGS = new Set(['HS256', 'HS384', 'HS512']);

/** Who is calling, from a verified JWT. */
export interface Principal {
  sub: string;
  roles: Role[];
  /** Sees every order, not only its own (admin and operations). */
  admin: boolean;
}

export interface IssuedToken {
  token: string;
  expires_in: number;
}

export interface Auth {
  verify(token: string): Promise<Principal>;
  /** An access token signed with the current key of the ring. */
  issueAccessToken(sub: string, roles: Role[], extra?: Record<string, unknown>): Promise<IssuedToken>;
  issueDemoToken(customer: string, role: Role): Promise<IssuedToken & { sub: string }>;
}

/** The roles claim as comanda reads it: known roles only; a token without one is a customer's. */
export function rolesOf(claim: unknown): Role[] {
  return (Array.isArray(claim) ? claim : ['customer']).filter(isRole);
}

export function principalOf(sub: string, roles: Role[]): Principal {
  return { sub, roles, admin: roles.includes('admin') || roles.includes('operations') };
}

/**
 * JWT verification, chosen by the token's header rather than tried in turn:
 * - a `kid` of comanda's own keys → that key, and only its algorithm (ES256 or EdDSA): a token that names our key
 *   but says HS256 (the public key used as an HMAC secret) is refused;
 * - HS256/384/512 → JWT_SECRET, if JWT_ALGORITHMS allows that algorithm (the tokens of before the key pairs);
 * - anything else → the external issuer's JWKS (JWT_JWKS_URL) with JWT_ALGORITHMS, if there is one.
 * `iss`, `aud` and `exp` are checked everywhere, with JWT_CLOCK_TOLERANCE_S.
 */
export function createAuth(config: Config, keys: KeyRing): Auth {
  const secret = new TextEncoder().encode(config.JWT_SECRET);
  const jwks = config.JWT_JWKS_URL ? createRemoteJWKSet(new URL(config.JWT_JWKS_URL)) : undefined;
  const common: JWTVerifyOptions = {
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
    clockTolerance: config.JWT_CLOCK_TOLERANCE_S,
    requiredClaims: ['sub', 'exp'],
  };
  const hmacAlgs: string[] = config.JWT_ALGORITHMS.filter((a) => HMAC_ALGS.has(a));
  const externalAlgs: string[] = config.JWT_ALGORITHMS.filter((a) => !HMAC_ALGS.has(a));

  async function verifyPayload(token: string): Promise<JWTPayload> {
    const header = decodeProtectedHeader(token);
    const own = header.kid ? await keys.find(header.kid) : undefined;
    if (own) return (await jwtVerify(token, own.publicKey, { ...common, algorithms: [own.alg] })).payload;
    if (header.alg && HMAC_ALGS.has(header.alg)) {
      if (!hmacAlgs.includes(header.alg)) throw new joseErrors.JOSEAlgNotAllowed('not allowed');
      return (await jwtVerify(token, secret, { ...common, algorithms: hmacAlgs })).payload;
    }
    if (jwks && header.alg && externalAlgs.includes(header.alg))
      return (await jwtVerify(token, jwks, { ...common, algorithms: externalAlgs })).payload;
    throw new joseErrors.JWKSNoMatchingKey();
  }

  // A client sends the same token on every request: verified once, it is remembered until it expires (at most
  // CACHE_MS), which takes a signature check off the hot path without ever accepting an expired token. A change of
  // the key ring (a key removed) empties the cache.
  const verified = new Map<string, { principal: Principal; until: number }>();
  let cacheVersion = keys.version;

  async function sign(sub: string, claims: Record<string, unknown>, ttlSeconds: number): Promise<string> {
    const key = keys.current();
    return new SignJWT(claims)
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
      .setSubject(sub)
      .setIssuer(config.JWT_ISSUER)
      .setAudience(config.JWT_AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(`${ttlSeconds}s`)
      .sign(key.privateKey);
  }

  return {
    async verify(token) {
      if (cacheVersion !== keys.version) {
        verified.clear();
        cacheVersion = keys.version;
      }
      const hit = verified.get(token);
      if (hit && hit.until > Date.now()) return hit.principal;
      let payload: JWTPayload;
      try {
        payload = await verifyPayload(token);
      } catch (err) {
        throw new UnauthorizedError(describeJwtError(err), { cause: err });
      }
      const principal = principalOf(payload.sub!, rolesOf(payload.roles));
      if (verified.size >= CACHE_SIZE) verified.delete(verified.keys().next().value!);
      verified.set(token, { principal, until: Math.min(payload.exp! * 1000, Date.now() + CACHE_MS) });
      return principal;
    },

    async issueAccessToken(sub, roles, extra = {}) {
      const ttl = config.ACCESS_TOKEN_TTL_S;
      return { token: await sign(sub, { ...extra, roles }, ttl), expires_in: ttl };
    },

    async issueDemoToken(customer, role) {
      const prefix = { customer: 'demo', admin: 'demo-admin', operations: 'demo-ops' }[role];
      const sub = `${prefix}:${customer}`;
      const token = await sign(sub, { roles: [role], name: customer }, config.DEMO_TOKEN_TTL_S);
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
  if (err instanceof joseErrors.JWKSNoMatchingKey) return 'The token is signed by a key that is not known';
  return 'The token is not valid';
}

/** Reads `Authorization: Bearer <token>`; anything else is a 401. */
export function bearerToken(header: string | undefined): string {
  const match = /^Bearer\s+([A-Za-z0-9\-_.]+)\s*$/i.exec(header ?? '');
  if (!match) throw new UnauthorizedError('Send a token as "Authorization: Bearer <token>"');
  return match[1];
}
