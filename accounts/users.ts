import type { Db } from '../lib/db.ts';
import { ConflictError, ValidationError } from '../lib/errors.ts';
import { dummyHash, hashPassword, verifyPassword } from './passwords.ts';
import type { Role } from './roles.ts';

export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 128;

export interface User {
  id: string;
  email: string;
  name: string;
  roles: Role[];
}

interface UserRow extends User {
  password_hash: string;
  disabled_at: Date | null;
}

/** The password rules: 8 to 128 characters (counted as characters, not bytes), and not the email itself. */
export function checkPassword(password: string, email: string): void {
  const length = [...password].length;
  const problem =
    length < PASSWORD_MIN
      ? `must be at least ${PASSWORD_MIN} characters`
      : length > PASSWORD_MAX
        ? `must be at most ${PASSWORD_MAX} characters`
        : password.trim().toLowerCase() === email.trim().toLowerCase()
          ? 'must not be the email'
          : undefined;
  if (problem)
    throw new ValidationError(`The password ${problem}`, [{ field: 'password', message: problem }]);
}

/**
 * Creates a customer account. The password is hashed before the email is looked at, so a taken email (409) takes
 * as long to answer as a new one, and the 409 says no more than that this email cannot register.
 */
export async function registerUser(
  db: Db,
  input: { email: string; password: string; name: string },
  scryptLogN: number,
): Promise<User> {
  checkPassword(input.password, input.email);
  const passwordHash = await hashPassword(input.password, scryptLogN);
  const result: { rows: User[] } = await db.raw(
    `insert into users (email, name, password_hash) values (?, ?, ?)
     on conflict ((lower(email))) do nothing
     returning id, email, name, roles`,
    [input.email.trim(), input.name.trim(), passwordHash],
  );
  const [user] = result.rows;
  if (!user) throw new ConflictError('This email cannot be registered');
  return user;
}

/**
 * The account whose email and password these are, or undefined. An unknown email is checked against a dummy hash
 * of the same cost, so both failures take as long.
 */
export async function authenticateUser(
  db: Db,
  email: string,
  password: string,
  scryptLogN: number,
): Promise<User | undefined> {
  const row = await db<UserRow>('users').whereRaw('lower(email) = lower(?)', [email.trim()]).first();
  const ok = await verifyPassword(password, row?.password_hash ?? (await dummyHash(scryptLogN)));
  if (!row || !ok || row.disabled_at) return undefined;
  return { id: row.id, email: row.email, name: row.name, roles: row.roles };
}

export async function findUser(db: Db, id: string): Promise<User | undefined> {
  const row = await db<UserRow>('users')
    .where({ id })
    .whereNull('disabled_at')
    .first('id', 'email', 'name', 'roles');
  return row;
}

/** Gives an account a role (the CLI's `grant`; there is no HTTP route that makes admins). */
export async function grantRole(db: Db, email: string, role: Role): Promise<User | undefined> {
  const result: { rows: User[] } = await db.raw(
    `update users set roles = array(select distinct unnest(roles || ?::text)), updated_at = now()
      where lower(email) = lower(?) returning id, email, name, roles`,
    [role, email],
  );
  return result.rows[0];
}
