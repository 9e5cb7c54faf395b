import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from '../lib/db.ts';
import { NotFoundError } from '../lib/errors.ts';
import { UUID } from '../lib/uuid.ts';
import { hashToken } from './refresh-tokens.ts';
import type { Role } from './roles.ts';

export interface ServiceClientView {
  id: string;
  client_id: string;
  name: string;
  roles: Role[];
  created_by: string | null;
  created_at: string;
  revoked_at: string | null;
}

interface ServiceClientRow {
  id: string;
  client_id: string;
  name: string;
  roles: Role[];
  secret_hash: string;
  created_by: string | null;
  created_at: Date;
  revoked_at: Date | null;
}

const toView = (row: ServiceClientRow): ServiceClientView => ({
  id: row.id,
  client_id: row.client_id,
  name: row.name,
  roles: row.roles,
  created_by: row.created_by,
  created_at: row.created_at.toISOString(),
  revoked_at: row.revoked_at?.toISOString() ?? null,
});

/** A service that authenticates as itself. Its secret (256 random bits, kept as a SHA-256) is returned only here. */
export async function createServiceClient(
  db: Db,
  input: { name: string; roles: Role[] },
  createdBy: string,
): Promise<ServiceClientView & { client_secret: string }> {
  const secret = `cs_${randomBytes(32).toString('base64url')}`;
  const [row] = (await db('service_clients')
    .insert({
      client_id: `cli_${randomBytes(12).toString('hex')}`,
      name: input.name,
      roles: [...new Set(input.roles)],
      secret_hash: hashToken(secret),
      created_by: createdBy,
    })
    .returning('*')) as [ServiceClientRow];
  return { ...toView(row), client_secret: secret };
}

export async function listServiceClients(db: Db): Promise<ServiceClientView[]> {
  const rows = await db<ServiceClientRow>('service_clients').orderBy('created_at');
  return rows.map(toView);
}

/** Revokes a client: it gets no new tokens (those it holds run out within ACCESS_TOKEN_TTL_S). */
export async function revokeServiceClient(db: Db, id: string): Promise<ServiceClientView> {
  const [row] = UUID.test(id)
    ? ((await db('service_clients')
        .where({ id })
        .update({ revoked_at: db.raw('coalesce(revoked_at, now())') })
        .returning('*')) as ServiceClientRow[])
    : [];
  if (!row) throw new NotFoundError(`Service client ${id} not found`);
  return toView(row);
}

/** The client these credentials belong to, if it is not revoked; the secrets are compared in constant time. */
export async function authenticateClient(
  db: Db,
  clientId: string,
  secret: string,
): Promise<ServiceClientView | undefined> {
  const row = await db<ServiceClientRow>('service_clients').where({ client_id: clientId }).first();
  const given = Buffer.from(hashToken(secret));
  const expected = Buffer.from(row?.secret_hash ?? hashToken(randomBytes(32).toString('hex')));
  const ok = given.length === expected.length && timingSafeEqual(given, expected);
  if (!row || !ok || row.revoked_at) return undefined;
  return toView(row);
}
