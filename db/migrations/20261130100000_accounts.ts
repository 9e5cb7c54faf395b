import type { Knex } from '../../lib/db.ts';

/**
 * Accounts: users (scrypt password hashes), refresh tokens (SHA-256 of a random token, grouped in rotation
 * families), service clients (SHA-256 of a random secret), the signing keys of access tokens (private part
 * encrypted), failed logins (the brute-force limiter's PostgreSQL fallback) and, in development only, the
 * generated key that encrypts secrets at rest.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('users', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('email').notNullable();
    t.text('name').notNullable();
    t.text('password_hash').notNullable();
    t.specificType('roles', 'text[]').notNullable().defaultTo('{customer}');
    t.timestamp('disabled_at', { useTz: true });
    t.timestamps(true, true);
  });
  // Emails are compared without regard to case: Ana@x.test and ana@x.test are one account.
  await knex.raw('create unique index users_email_unique on users (lower(email))');

  await knex.schema.createTable('refresh_tokens', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('user_id').notNullable().references('users.id').onDelete('CASCADE');
    // Every token rotated from one login shares its family: reuse of a rotated token revokes them all.
    t.uuid('family_id').notNullable();
    t.text('token_hash').notNullable().unique();
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('used_at', { useTz: true });
    t.timestamp('revoked_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['family_id']);
    t.index(['user_id']);
  });

  await knex.schema.createTable('service_clients', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('client_id').notNullable().unique();
    t.text('name').notNullable();
    t.specificType('roles', 'text[]').notNullable();
    t.text('secret_hash').notNullable();
    t.text('created_by');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('revoked_at', { useTz: true });
  });

  await knex.schema.createTable('signing_keys', (t) => {
    t.text('kid').primary();
    t.text('alg').notNullable();
    t.jsonb('public_jwk').notNullable();
    // The private JWK, encrypted with the secrets key (lib/secret-box.ts).
    t.text('private_jwk').notNullable();
    // 'current' signs (one at a time), 'previous' only verifies until verify_until, 'retired' neither.
    t.text('state').notNullable();
    t.timestamp('verify_until', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.check("state in ('current','previous','retired')", [], 'signing_keys_state_known');
  });
  await knex.raw(
    "create unique index signing_keys_one_current on signing_keys (state) where state = 'current'",
  );

  await knex.schema.createTable('login_failures', (t) => {
    t.bigIncrements('id');
    // 'account:<sha256 of the lower-cased email>' or 'ip:<address>'.
    t.text('subject').notNullable();
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['subject', 'at']);
  });

  await knex.schema.createTable('development_keys', (t) => {
    t.text('name').primary();
    t.text('value').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of [
    'development_keys',
    'login_failures',
    'signing_keys',
    'service_clients',
    'refresh_tokens',
    'users',
  ]) {
    await knex.schema.dropTableIfExists(table);
  }
}
