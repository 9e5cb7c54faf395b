import type { Db } from '../lib/db.ts';
import { ConflictError, NotFoundError, ValidationError } from '../lib/errors.ts';
import type { Viewer } from '../orders/order-queries.ts';
import type { WebhookEventType } from './event-types.ts';
import { generateSecret } from './signing.ts';
import { findUrlProblem } from './url-safety.ts';
import { UUID } from '../lib/uuid.ts';
import { isSealed, type SecretBox } from '../lib/secret-box.ts';

export interface EndpointRow {
  id: string;
  owner: 'operations' | 'customer';
  customer_id: string | null;
  url: string;
  description: string;
  event_types: WebhookEventType[];
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  enabled: boolean;
  disabled_reason: string | null;
  source: 'api' | 'config';
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
}

/** An endpoint as its owner sees it: never with its secret, which is shown only when created or rotated. */
export interface EndpointView {
  id: string;
  url: string;
  description: string;
  event_types: WebhookEventType[];
  enabled: boolean;
  disabled_reason: string | null;
  owner: 'operations' | 'customer';
  customer_id: string | null;
  source: 'api' | 'config';
  previous_secret_expires_at: string | null;
  created_at: string;
  updated_at: string;
}

export function toEndpointView(row: EndpointRow): EndpointView {
  return {
    id: row.id,
    url: row.url,
    description: row.description,
    event_types: row.event_types,
    enabled: row.enabled,
    disabled_reason: row.disabled_reason,
    owner: row.owner,
    customer_id: row.customer_id,
    source: row.source,
    previous_secret_expires_at: row.previous_secret_expires_at?.toISOString() ?? null,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

export interface EndpointOptions {
  allowPrivateUrls: boolean;
}

/** The additional data every sealed endpoint secret is bound to (lib/secret-box.ts). */
const SECRET_CONTEXT = 'webhook_endpoints.secret';

/**
 * Seals every endpoint secret not yet sealed with the current secrets key: those stored before secrets were
 * encrypted, and those sealed with a previous key (listed in SECRETS_PREVIOUS_KEYS). The API runs it at start.
 */
export async function resealWebhookSecrets(db: Db, box: SecretBox): Promise<number> {
  const rows = await db<EndpointRow>('webhook_endpoints').select('id', 'secret', 'previous_secret');
  let changed = 0;
  for (const row of rows) {
    const reseal = (value: string | null) =>
      value === null || box.isCurrent(value)
        ? value
        : box.seal(isSealed(value) ? box.open(value, SECRET_CONTEXT) : value, SECRET_CONTEXT);
    const secret = reseal(row.secret);
    const previous = reseal(row.previous_secret);
    if (secret === row.secret && previous === row.previous_secret) continue;
    // Only if unchanged meanwhile: a rotation that ran in between wins.
    changed += await db('webhook_endpoints')
      .where({ id: row.id, secret: row.secret })
      .update({ secret, previous_secret: previous });
  }
  return changed;
}

async function assertUrlAllowed(url: string, options: EndpointOptions): Promise<void> {
  const problem = await findUrlProblem(url, { allowPrivate: options.allowPrivateUrls });
  if (problem) throw new ValidationError(`The webhook URL ${problem}`, [{ field: 'url', message: problem }]);
}

/**
 * Registers an endpoint. An admin registers an operations endpoint (every order); a customer one that hears only
 * about that customer's orders. The secret is returned here and never again.
 */
export async function createEndpoint(
  db: Db,
  viewer: Viewer,
  input: { url: string; event_types: WebhookEventType[]; description?: string | undefined },
  options: EndpointOptions & { box: SecretBox },
): Promise<EndpointView & { secret: string }> {
  await assertUrlAllowed(input.url, options);
  const secret = generateSecret();
  const [row] = (await db('webhook_endpoints')
    .insert({
      owner: viewer.admin ? 'operations' : 'customer',
      customer_id: viewer.admin ? null : viewer.sub,
      url: input.url,
      description: input.description ?? '',
      event_types: [...new Set(input.event_types)],
      secret: options.box.seal(secret, SECRET_CONTEXT),
      created_by: viewer.sub,
    })
    .returning('*')) as [EndpointRow];
  return { ...toEndpointView(row), secret };
}

function visibleTo(db: Db, viewer: Viewer) {
  const q = db<EndpointRow>('webhook_endpoints');
  if (!viewer.admin) void q.where({ owner: 'customer', customer_id: viewer.sub });
  return q;
}

/** The endpoint if the viewer may see it (admins: all; customers: their own), else a 404. */
export async function findEndpoint(db: Db, viewer: Viewer, id: string): Promise<EndpointRow> {
  const row = UUID.test(id) ? await visibleTo(db, viewer).where({ id }).first() : undefined;
  if (!row) throw new NotFoundError(`Webhook endpoint ${id} not found`);
  return row;
}

export async function listEndpoints(db: Db, viewer: Viewer): Promise<EndpointView[]> {
  const rows = await visibleTo(db, viewer).orderBy([
    { column: 'created_at', order: 'asc' },
    { column: 'id', order: 'asc' },
  ]);
  return rows.map(toEndpointView);
}

function assertManagedHere(row: EndpointRow): void {
  if (row.source === 'config') {
    throw new ConflictError('This endpoint comes from OPS_WEBHOOK_URL; change the configuration instead');
  }
}

export async function updateEndpoint(
  db: Db,
  viewer: Viewer,
  id: string,
  patch: {
    url?: string | undefined;
    event_types?: WebhookEventType[] | undefined;
    enabled?: boolean | undefined;
    description?: string | undefined;
  },
  options: EndpointOptions,
): Promise<EndpointView> {
  const current = await findEndpoint(db, viewer, id);
  assertManagedHere(current);
  if (patch.url !== undefined) await assertUrlAllowed(patch.url, options);
  const [row] = (await db('webhook_endpoints')
    .where({ id: current.id })
    .update({
      ...(patch.url !== undefined ? { url: patch.url } : {}),
      ...(patch.event_types !== undefined ? { event_types: [...new Set(patch.event_types)] } : {}),
      ...(patch.description !== undefined ? { description: patch.description } : {}),
      ...(patch.enabled !== undefined
        ? { enabled: patch.enabled, disabled_reason: patch.enabled ? null : `disabled by ${viewer.sub}` }
        : {}),
      updated_at: db.fn.now(),
    })
    .returning('*')) as [EndpointRow];
  return toEndpointView(row);
}

/** Deletes the endpoint with its deliveries and their log. */
export async function deleteEndpoint(db: Db, viewer: Viewer, id: string): Promise<void> {
  const current = await findEndpoint(db, viewer, id);
  assertManagedHere(current);
  await db('webhook_endpoints').where({ id: current.id }).delete();
}

/**
 * Gives the endpoint a new secret. For `overlapHours` the old one still signs too (a second `v1,` signature), so
 * receivers can switch without losing a delivery.
 */
export async function rotateSecret(
  db: Db,
  viewer: Viewer,
  id: string,
  overlapHours: number,
  box: SecretBox,
): Promise<EndpointView & { secret: string }> {
  const current = await findEndpoint(db, viewer, id);
  assertManagedHere(current);
  const secret = generateSecret();
  const [row] = (await db('webhook_endpoints')
    .where({ id: current.id })
    .update({
      secret: box.seal(secret, SECRET_CONTEXT),
      previous_secret: current.secret,
      previous_secret_expires_at: db.raw(`now() + make_interval(hours => ?)`, [overlapHours]),
      updated_at: db.fn.now(),
    })
    .returning('*')) as [EndpointRow];
  return { ...toEndpointView(row), secret };
}

/**
 * The secrets that sign a delivery now, opened: the current one, and the previous one while its overlap lasts. A
 * value still in plaintext (stored before encryption at rest, not yet resealed) is used as it is.
 */
export function signingSecrets(
  row: Pick<EndpointRow, 'secret' | 'previous_secret' | 'previous_secret_expires_at'>,
  box: SecretBox,
  now = new Date(),
): string[] {
  const open = (value: string) => (isSealed(value) ? box.open(value, SECRET_CONTEXT) : value);
  const previousValid =
    row.previous_secret && row.previous_secret_expires_at && row.previous_secret_expires_at > now;
  return previousValid ? [open(row.secret), open(row.previous_secret!)] : [open(row.secret)];
}

/**
 * Mirrors OPS_WEBHOOK_URL / OPS_WEBHOOK_SECRET into the one `config` operations endpoint (created, updated, or
 * disabled when the setting is gone). The notifier calls it at start.
 */
export async function syncConfiguredEndpoint(
  db: Db,
  config: { url?: string | undefined; secret?: string | undefined; eventTypes: WebhookEventType[] },
  box: SecretBox,
): Promise<'created' | 'updated' | 'disabled' | 'none'> {
  if (!config.url || !config.secret) {
    const disabled = await db('webhook_endpoints').where({ source: 'config', enabled: true }).update({
      enabled: false,
      disabled_reason: 'OPS_WEBHOOK_URL is no longer set',
      updated_at: db.fn.now(),
    });
    return disabled ? 'disabled' : 'none';
  }
  const result: { rows: { inserted: boolean }[] } = await db.raw(
    `insert into webhook_endpoints (owner, source, description, url, secret, event_types)
     values ('operations', 'config', 'from OPS_WEBHOOK_URL', ?, ?, ?::text[])
     on conflict (source) where source = 'config' do update
       set url = excluded.url, secret = excluded.secret, event_types = excluded.event_types,
           enabled = true, disabled_reason = null, updated_at = now()
     returning (xmax = 0) as inserted`,
    [config.url, box.seal(config.secret, SECRET_CONTEXT), `{${config.eventTypes.join(',')}}`],
  );
  const [row] = result.rows;
  return row.inserted ? 'created' : 'updated';
}
