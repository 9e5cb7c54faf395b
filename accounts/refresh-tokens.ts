import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Db } from '../lib/db.ts';
import { OAuthError } from '../lib/errors.ts';

interface RefreshTokenRow {
  id: string;
  user_id: string;
  family_id: string;
  expires_at: Date;
  used_at: Date | null;
  revoked_at: Date | null;
}

/** Refresh tokens are 256 random bits, so a plain SHA-256 is enough to keep them unusable in a dump. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** A new refresh token for the user (a new family, unless one is given), stored only as its hash. */
export async function issueRefreshToken(
  db: Db,
  userId: string,
  ttlSeconds: number,
  familyId: string = randomUUID(),
): Promise<string> {
  const token = `rt_${randomBytes(32).toString('base64url')}`;
  await db('refresh_tokens').insert({
    user_id: userId,
    family_id: familyId,
    token_hash: hashToken(token),
    expires_at: db.raw('now() + make_interval(secs => ?)', [ttlSeconds]),
  });
  return token;
}

/**
 * Exchanges a refresh token for a new one of the same family (rotation): the presented one is spent. Presenting a
 * spent or revoked token again means it was copied, so the whole family is revoked — the thief's and the owner's
 * tokens alike — and the owner logs in again.
 */
export async function rotateRefreshToken(
  db: Db,
  token: string,
  ttlSeconds: number,
): Promise<{ userId: string; refreshToken: string }> {
  type Outcome = { refused: string } | { userId: string; refreshToken: string };
  const outcome = await db.transaction(async (tx): Promise<Outcome> => {
    const row = (await tx('refresh_tokens')
      .where({ token_hash: hashToken(token) })
      .forUpdate()
      .first()) as RefreshTokenRow | undefined;
    if (!row) return { refused: 'The refresh token is not valid' };
    if (row.used_at || row.revoked_at) {
      await tx('refresh_tokens')
        .where({ family_id: row.family_id })
        .whereNull('revoked_at')
        .update({ revoked_at: tx.fn.now() });
      return { refused: 'The refresh token was already used; every token of its login is now revoked' };
    }
    if (row.expires_at <= new Date()) return { refused: 'The refresh token has expired' };
    await tx('refresh_tokens').where({ id: row.id }).update({ used_at: tx.fn.now() });
    return {
      userId: row.user_id,
      refreshToken: await issueRefreshToken(tx, row.user_id, ttlSeconds, row.family_id),
    };
  });
  if ('refused' in outcome) throw new OAuthError('invalid_grant', outcome.refused);
  return outcome;
}
