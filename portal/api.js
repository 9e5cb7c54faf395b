// @ts-check
// The API client both pages use: JSON in and out, the bearer token, problem+json turned into an ApiError, and
// whether the API answers at all (a failed fetch, or a proxy's bodiless 502/504, means it is away).

export class ApiError extends Error {
  /**
   * @param {'network' | 'problem'} kind
   * @param {number} [status]
   * @param {any} [problem]  the problem+json body
   * @param {number | null} [retryAfter]  seconds
   */
  constructor(kind, status = 0, problem = null, retryAfter = null) {
    super(problem?.detail ?? kind);
    this.kind = kind;
    this.status = status;
    this.problem = problem;
    this.retryAfter = retryAfter;
  }

  get retryable() {
    // A 409 is worth retrying only while the same key is in flight; a refusal such as too little stock stays.
    if (this.status === 409) return this.problem?.code === 'IDEMPOTENCY_KEY_IN_FLIGHT';
    return this.kind === 'network' || [408, 429, 502, 503, 504].includes(this.status);
  }
}

/**
 * @typedef {object} RequestOptions
 * @property {string} [method]
 * @property {unknown} [body]
 * @property {Record<string, string>} [headers]
 * @property {boolean} [auth]  send the bearer token (default true)
 * @property {boolean} [relogin]  on a 401, get a new token and try once more (default true)
 * @property {boolean} [raw]  the body is sent as it is (a CSV upload), with headers.content-type
 */

/**
 * @typedef {object} ApiClient
 * @property {(path: string, options?: RequestOptions) => Promise<any>} api
 * @property {() => Promise<string>} token  a valid access token (logging in when there is none)
 * @property {() => void} forget  drop the token: the next request logs in again
 */

/**
 * @param {object} options
 * @param {() => Promise<{ token: string, expires_in: number }>} options.login  gets a new token
 * @param {(online: boolean) => void} [options.onOnline]  called with every answer (true) or failure to reach (false)
 * @param {() => string | null} [options.ownToken]  a token of the user's own (a signed-in account), used first
 * @returns {ApiClient}
 */
export function createApiClient({ login, onOnline = () => {}, ownToken = () => null }) {
  /** @type {string | null} */
  let current = null;
  let expiresAt = 0;
  /** @type {Promise<{ token: string, expires_in: number }> | null} */
  let pending = null; // the login in progress, shared by every request that needs a token meanwhile

  async function token() {
    const own = ownToken();
    if (own) return own;
    if (current && Date.now() < expiresAt - 60_000) return current;
    const mine = (pending ??= login().finally(() => {
      pending = null;
    }));
    const data = await mine;
    current = data.token;
    expiresAt = Date.now() + data.expires_in * 1000;
    return data.token;
  }

  /** @type {ApiClient['api']} */
  async function api(path, options = {}) {
    const { method = 'GET', body, headers = {}, auth = true, relogin = true, raw = false } = options;
    /** @type {Record<string, string>} */
    const h = { accept: 'application/json', ...headers };
    if (body !== undefined && !raw) h['content-type'] = 'application/json';
    if (auth) h.authorization = `Bearer ${await token()}`;
    let res;
    try {
      res = await fetch(path, {
        method,
        headers: h,
        body: body === undefined ? undefined : raw ? /** @type {BodyInit} */ (body) : JSON.stringify(body),
      });
    } catch {
      onOnline(false);
      throw new ApiError('network');
    }
    onOnline(true);
    if (res.status === 401 && auth && relogin) {
      current = null; // expired or revoked: log in again once, then retry
      return api(path, { ...options, relogin: false });
    }
    const text = await res.text();
    let data;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!res.ok) {
      // A proxy in front of a stopped API answers 502/504 with no problem body: the same as no answer.
      if ([502, 504].includes(res.status) && !data) onOnline(false);
      throw new ApiError('problem', res.status, data, Number(res.headers.get('retry-after')) || null);
    }
    if (res.headers.get('etag') && data && typeof data === 'object') {
      Object.defineProperty(data, 'etag', { value: res.headers.get('etag'), enumerable: false });
    }
    return data;
  }

  return {
    api,
    token,
    forget() {
      current = null;
      expiresAt = 0;
    },
  };
}

/** A v4 uuid; crypto.randomUUID exists only on secure origins, and the demo may be opened over plain http. */
export function uuid() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** @param {number} ms */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
