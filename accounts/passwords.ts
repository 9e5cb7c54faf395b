import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const KEY_LENGTH = 32;
const BLOCK_SIZE = 8;
const PARALLELISM = 1;

function derive(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFKC'), salt, KEY_LENGTH, options, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

const memoryFor = (n: number, r: number) => 128 * n * r * 2;

/**
 * A password hash: scrypt at OWASP's parameters (N = 2^17 by default, r = 8, p = 1), with a 16-byte salt, written
 * as `scrypt$<log2 N>$<r>$<p>$<salt>$<hash>` so the cost can be raised later and older hashes still verify.
 */
export async function hashPassword(password: string, logN: number): Promise<string> {
  const salt = randomBytes(16);
  const n = 2 ** logN;
  const key = await derive(password, salt, {
    N: n,
    r: BLOCK_SIZE,
    p: PARALLELISM,
    maxmem: memoryFor(n, BLOCK_SIZE),
  });
  return [
    'scrypt',
    logN,
    BLOCK_SIZE,
    PARALLELISM,
    salt.toString('base64url'),
    key.toString('base64url'),
  ].join('$');
}

/** Compares in constant time; false (never a throw) for a hash it cannot read. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, logN, r, p, salt, expected] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !expected) return false;
  const n = 2 ** Number(logN);
  const want = Buffer.from(expected, 'base64url');
  const key = await derive(password, Buffer.from(salt, 'base64url'), {
    N: n,
    r: Number(r),
    p: Number(p),
    maxmem: memoryFor(n, Number(r)),
  });
  return key.length === want.length && timingSafeEqual(key, want);
}

const dummyHashes = new Map<number, Promise<string>>();

/**
 * A hash of nothing anyone knows, at the given cost: checking a password against it for an unknown account takes
 * as long as for a real one, so the answer's timing does not tell whether the account exists.
 */
export function dummyHash(logN: number): Promise<string> {
  let hash = dummyHashes.get(logN);
  if (!hash) {
    hash = hashPassword(randomBytes(16).toString('hex'), logN);
    dummyHashes.set(logN, hash);
  }
  return hash;
}
