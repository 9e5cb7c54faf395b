import { randomUUID } from 'node:crypto';

export interface HttpResult<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/** A fetch that returns the parsed JSON body (or the text when it is not JSON). */
export async function http<T = any>(url: string, init: RequestInit = {}): Promise<HttpResult<T>> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body: body as T };
}

/** POST /orders as a client would: JSON body, bearer token and (unless `key: null`) a fresh Idempotency-Key. */
export function postOrder(
  baseUrl: string,
  token: string,
  body: unknown,
  options: { key?: string | null; headers?: Record<string, string> } = {},
): Promise<HttpResult> {
  const key = options.key === undefined ? randomUUID() : options.key;
  return http(`${baseUrl}/orders`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${token}`,
      ...(key === null ? {} : { 'idempotency-key': key }),
      ...options.headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

export function getJson(baseUrl: string, path: string, token?: string): Promise<HttpResult> {
  return http(`${baseUrl}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
}

/** A JSON request with a bearer token, as any client would send it. */
export function sendJson(
  method: string,
  baseUrl: string,
  path: string,
  token: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<HttpResult> {
  return http(`${baseUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
}
