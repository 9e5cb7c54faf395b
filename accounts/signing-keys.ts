import { createPrivateKey } from 'node:crypto';
import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type CryptoKey,
  type JWK,
} from 'jose';
import type { Db } from '../lib/db.ts';
import type { SecretBox } from '../lib/secret-box.ts';

export type SigningAlg = 'ES256' | 'EdDSA';

export interface SigningKey {
  kid: string;
  alg: SigningAlg;
  publicKey: CryptoKey;
  /** Only the current key has its private half in memory. */
  privateKey: CryptoKey | undefined;
  /** What `/.well-known/jwks.json` publishes for it. */
  publicJwk: JWK;
}

interface SigningKeyRow {
  kid: string;
  alg: SigningAlg;
  public_jwk: JWK;
  private_jwk: string;
  state: 'current' | 'previous' | 'retired';
  verify_until: Date | null;
}

const PRIVATE_CONTEXT = 'signing_keys.private_jwk';

const publicPart = ({ kty, crv, x, y }: JWK): JWK => ({ kty, crv, x, ...(y ? { y } : {}) });

function algOf(jwk: JWK): SigningAlg {
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256';
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA';
  throw new Error(
    `a signing key must be EC P-256 (ES256) or Ed25519 (EdDSA), not ${jwk.kty} ${jwk.crv ?? ''}`,
  );
}

async function toSigningKey(jwk: JWK, withPrivate: boolean, kid?: string): Promise<SigningKey> {
  const alg = algOf(jwk);
  const pub = publicPart(jwk);
  const id = kid ?? jwk.kid ?? (await calculateJwkThumbprint(pub));
  return {
    kid: id,
    alg,
    publicKey: (await importJWK(pub, alg)) as CryptoKey,
    privateKey: withPrivate && jwk.d ? ((await importJWK(jwk, alg)) as CryptoKey) : undefined,
    publicJwk: { ...pub, kid: id, alg, use: 'sig' },
  };
}

/**
 * JWT_SIGNING_KEYS: one PKCS#8 PEM (its kid is its JWK thumbprint), or a JSON array of JWKs whose first one, with its
 * private part, signs and the rest only verify — the rotation path for keys kept in configuration: put the new key
 * first, keep the old one second until the tokens it signed have expired, then remove it.
 */
export async function parseConfiguredKeys(text: string): Promise<SigningKey[]> {
  const trimmed = text.trim();
  const jwks: JWK[] = trimmed.startsWith('[')
    ? (JSON.parse(trimmed) as JWK[])
    : trimmed.startsWith('{')
      ? [JSON.parse(trimmed) as JWK]
      : [createPrivateKey(trimmed.replaceAll('\\n', '\n')).export({ format: 'jwk' })];
  if (!jwks.length || !jwks[0].d) throw new Error('JWT_SIGNING_KEYS: the first key must be a private key');
  return Promise.all(jwks.map((jwk, i) => toSigningKey(jwk, i === 0)));
}

async function generateRow(
  alg: SigningAlg,
  box: SecretBox,
): Promise<Omit<SigningKeyRow, 'state' | 'verify_until'>> {
  const { privateKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}),
  });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(publicPart(jwk));
  return {
    kid,
    alg,
    public_jwk: publicPart(jwk),
    private_jwk: box.seal(JSON.stringify(jwk), PRIVATE_CONTEXT),
  };
}

/**
 * The keys kept in the database: the current one (generated on first use, once for all instances: the partial
 * unique index lets only one insert win) and the previous ones still inside their verification window.
 */
export async function loadStoredKeys(db: Db, box: SecretBox, alg: SigningAlg): Promise<SigningKey[]> {
  let rows = await liveRows(db);
  if (!rows.some((r) => r.state === 'current')) {
    await db.raw(
      `insert into signing_keys (kid, alg, public_jwk, private_jwk, state) values (?, ?, ?, ?, 'current')
       on conflict (state) where state = 'current' do nothing`,
      Object.values(await generateRow(alg, box)).map((v) => (typeof v === 'object' ? JSON.stringify(v) : v)),
    );
    rows = await liveRows(db);
  }
  return Promise.all(
    rows.map(async (row) =>
      row.state === 'current'
        ? toSigningKey(JSON.parse(box.open(row.private_jwk, PRIVATE_CONTEXT)) as JWK, true, row.kid)
        : toSigningKey(row.public_jwk, false, row.kid),
    ),
  );
}

function liveRows(db: Db): Promise<SigningKeyRow[]> {
  return db<SigningKeyRow>('signing_keys')
    .whereIn('state', ['current', 'previous'])
    .andWhere((q) => void q.whereNull('verify_until').orWhere('verify_until', '>', db.fn.now()))
    .orderByRaw("state = 'current' desc, created_at desc");
}

/**
 * Makes a new current key; the old one only verifies from now on, for `verifyForSeconds` (at least the longest
 * token lifetime), and then drops out of the JWKS by itself. Returns the new kid.
 */
export async function rotateStoredKey(
  db: Db,
  box: SecretBox,
  alg: SigningAlg,
  verifyForSeconds: number,
): Promise<string> {
  const row = await generateRow(alg, box);
  await db.transaction(async (tx) => {
    await tx('signing_keys')
      .where({ state: 'current' })
      .update({
        state: 'previous',
        verify_until: tx.raw('now() + make_interval(secs => ?)', [verifyForSeconds]),
      });
    await tx('signing_keys').insert({ ...row, public_jwk: JSON.stringify(row.public_jwk), state: 'current' });
  });
  return row.kid;
}

/** Stops a key verifying at once (a leaked key): the tokens it signed are refused from the next refresh on. */
export async function retireStoredKey(db: Db, kid: string): Promise<boolean> {
  return (
    (await db('signing_keys').where({ kid }).whereNot({ state: 'current' }).update({ state: 'retired' })) > 0
  );
}

/** Re-seals the private keys that a previous secrets key sealed (part of rotating SECRETS_KEY). */
export async function resealStoredKeys(db: Db, box: SecretBox): Promise<number> {
  const rows = await db<SigningKeyRow>('signing_keys').select('kid', 'private_jwk');
  let changed = 0;
  for (const row of rows.filter((r) => !box.isCurrent(r.private_jwk))) {
    const sealed = box.seal(box.open(row.private_jwk, PRIVATE_CONTEXT), PRIVATE_CONTEXT);
    changed += await db('signing_keys')
      .where({ kid: row.kid, private_jwk: row.private_jwk })
      .update({ private_jwk: sealed });
  }
  return changed;
}
