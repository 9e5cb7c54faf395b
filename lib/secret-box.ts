import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import type { Config } from './config.ts';
import type { Db } from './db.ts';

const VERSION = 'v1';
const DEV_KEY_NAME = 'secrets-key';

/**
 * AES-256-GCM for secrets kept at rest (webhook endpoint secrets, private signing keys). A sealed value is
 * `v1.<key id>.<iv>.<ciphertext>.<tag>` (base64url): the key id names which key sealed it, so values sealed with a
 * previous key still open while `reseal` moves them to the current one. `context` is bound in as additional
 * data, so a value copied into another column (or row kind) does not open there.
 */
export class SecretBox {
  readonly keyId: string;
  private readonly keys = new Map<string, Buffer>();

  constructor(
    current: Buffer,
    previous: readonly Buffer[] = [],
    /** Where the current key comes from, for the start-up log line. */
    readonly source: 'SECRETS_KEY' | 'JWT_SECRET' | 'database' = 'SECRETS_KEY',
  ) {
    if (current.length !== 32) throw new Error('a secrets key has 32 bytes');
    this.keyId = keyIdOf(current);
    this.keys.set(this.keyId, current);
    for (const key of previous) this.keys.set(keyIdOf(key), key);
  }

  seal(plaintext: string, context: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.keyId)!, iv);
    cipher.setAAD(Buffer.from(context));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, this.keyId, b64(iv), b64(body), b64(cipher.getAuthTag())].join('.');
  }

  open(sealed: string, context: string): string {
    const [version, keyId, iv, body, tag] = sealed.split('.');
    const key = keyId === undefined ? undefined : this.keys.get(keyId);
    if (version !== VERSION || !key || !iv || body === undefined || !tag) {
      throw new Error(
        `cannot open a sealed value of key ${keyId ?? '?'}: is that key in SECRETS_PREVIOUS_KEYS?`,
      );
    }
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString(
      'utf8',
    );
  }

  /** Whether `value` is sealed with the current key (false for plaintext and for previous keys). */
  isCurrent(value: string): boolean {
    return value.startsWith(`${VERSION}.${this.keyId}.`);
  }
}

export function isSealed(value: string): boolean {
  return value.startsWith(`${VERSION}.`);
}

const b64 = (b: Buffer) => b.toString('base64url');

function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

/** A secrets key as configured: 32 bytes in base64 (or base64url), e.g. `openssl rand -base64 32`. */
export function parseSecretsKey(text: string): Buffer | undefined {
  const key = Buffer.from(text.trim(), 'base64');
  return key.length === 32 ? key : undefined;
}

/**
 * The secrets key, in this order: SECRETS_KEY (with SECRETS_PREVIOUS_KEYS still opening older values); else one
 * derived (HKDF) from a JWT_SECRET that was configured, so an installation that had only that keeps starting; else,
 * outside production, a random key generated once and kept in the database, so every process of a development
 * installation agrees. Production refuses the last case at config load: a key kept beside the data protects nothing
 * from a dump.
 */
export async function loadSecretBox(config: Config, db: Db): Promise<SecretBox> {
  const previous = config.SECRETS_PREVIOUS_KEYS;
  if (config.SECRETS_KEY) return new SecretBox(config.SECRETS_KEY, previous, 'SECRETS_KEY');
  if (config.JWT_SECRET_CONFIGURED) {
    const derived = Buffer.from(
      hkdfSync('sha256', config.JWT_SECRET, 'comanda', 'comanda secrets at rest v1', 32),
    );
    return new SecretBox(derived, previous, 'JWT_SECRET');
  }
  await db('development_keys')
    .insert({ name: DEV_KEY_NAME, value: randomBytes(32).toString('base64') })
    .onConflict('name')
    .ignore();
  const row = (await db('development_keys').where({ name: DEV_KEY_NAME }).first()) as { value: string };
  return new SecretBox(Buffer.from(row.value, 'base64'), previous, 'database');
}
