import { randomUUID } from 'node:crypto';
import { http, type HttpResult } from './http.ts';

export interface TestAccount {
  id: string;
  email: string;
  password: string;
  name: string;
}

/** POST /auth/register as a client would; `overrides` replace the generated fields. */
export function register(baseUrl: string, body: Record<string, unknown>): Promise<HttpResult> {
  return http(`${baseUrl}/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** A new account with its own email and a good password (registered through the API). */
export async function buildAccount(
  baseUrl: string,
  overrides: Partial<Omit<TestAccount, 'id'>> = {},
): Promise<TestAccount> {
  const input = {
    email: `u-${randomUUID().slice(0, 8)}@example.test`,
    password: `pw-${randomUUID()}`,
    name: 'Test user',
    ...overrides,
  };
  const res = await register(baseUrl, input);
  if (res.status !== 201) throw new Error(`register answered ${res.status}: ${JSON.stringify(res.body)}`);
  return { ...input, id: (res.body as { id: string }).id };
}

/** POST /auth/token form-encoded (RFC 6749), with optional extra headers (HTTP Basic, X-Forwarded-For…). */
export function tokenRequest(
  baseUrl: string,
  form: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<HttpResult> {
  return http(`${baseUrl}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
  });
}

/** The password grant for `account`; returns the token response body (throws unless 200). */
export async function logIn(
  baseUrl: string,
  account: Pick<TestAccount, 'email' | 'password'>,
): Promise<{ access_token: string; refresh_token: string; expires_in: number; token_type: string }> {
  const res = await tokenRequest(baseUrl, {
    grant_type: 'password',
    username: account.email,
    password: account.password,
  });
  if (res.status !== 200) throw new Error(`token answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}
