import type { JWK } from 'jose';
import type { Config } from '../lib/config.ts';
import type { Db } from '../lib/db.ts';
import type { SecretBox } from '../lib/secret-box.ts';
import { loadStoredKeys, parseConfiguredKeys, type SigningKey } from './signing-keys.ts';

const UNKNOWN_KID_REFRESH_MS = 2000;

/**
 * The signing keys one process holds: the current key signs, every key verifies, and the public halves are the
 * JWKS. Keys kept in the database are re-read every JWT_KEYS_REFRESH_S, and at once (at most every two seconds)
 * when a token names a kid not held, so a rotation made by another instance reaches this one within that time.
 */
export class KeyRing {
  private keys: SigningKey[] = [];
  private timer: NodeJS.Timeout | undefined;
  private lastRefresh = 0;
  /** Grows whenever the set of keys changes, so caches of verified tokens know to forget. */
  version = 0;

  private constructor(private readonly load: () => Promise<SigningKey[]>) {}

  static async start(config: Config, db: Db, box: SecretBox): Promise<KeyRing> {
    if (config.JWT_SIGNING_KEYS) return KeyRing.fixed(await parseConfiguredKeys(config.JWT_SIGNING_KEYS));
    const ring = new KeyRing(() => loadStoredKeys(db, box, config.JWT_SIGNING_ALG));
    await ring.refresh();
    ring.timer = setInterval(() => void ring.refresh().catch(() => {}), config.JWT_KEYS_REFRESH_S * 1000);
    ring.timer.unref();
    return ring;
  }

  /** A ring of given keys that never changes (keys from configuration, tests). */
  static async fixed(keys: SigningKey[]): Promise<KeyRing> {
    const ring = new KeyRing(() => Promise.resolve(keys));
    await ring.refresh();
    return ring;
  }

  async refresh(): Promise<void> {
    this.lastRefresh = Date.now();
    const keys = await this.load();
    const before = this.keys.map((k) => k.kid).join();
    this.keys = keys;
    if (keys.map((k) => k.kid).join() !== before) this.version++;
  }

  /** The key that signs. */
  current(): SigningKey & { privateKey: NonNullable<SigningKey['privateKey']> } {
    const key = this.keys[0];
    if (!key?.privateKey) throw new Error('no current signing key');
    return key as SigningKey & { privateKey: NonNullable<SigningKey['privateKey']> };
  }

  /** The key with this kid, re-reading the keys first (rate-limited) when it is not held. */
  async find(kid: string): Promise<SigningKey | undefined> {
    const held = this.keys.find((k) => k.kid === kid);
    if (held || Date.now() - this.lastRefresh < UNKNOWN_KID_REFRESH_MS) return held;
    await this.refresh();
    return this.keys.find((k) => k.kid === kid);
  }

  jwks(): { keys: JWK[] } {
    return { keys: this.keys.map((k) => k.publicJwk) };
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
