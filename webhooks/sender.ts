import http from 'node:http';
import https from 'node:https';
import { assertPublicLiteral, publicOnlyLookup } from './url-safety.ts';
import { parseRetryAfter } from './retry-schedule.ts';

export interface WebhookRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** What one attempt came to; a failure to connect or a timeout has no status code and an `error`. */
export interface WebhookResponse {
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
  responseExcerpt: string | null;
  retryAfterMs: number | undefined;
}

export interface WebhookSenderOptions {
  /** The whole exchange (connect, send, response body) must finish within this. */
  timeoutMs: number;
  allowPrivate: boolean;
  maxSockets: number;
}

const EXCERPT_CHARS = 500;
const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * POSTs webhooks over keep-alive connections. Redirects are not followed (a 3xx is a failed attempt), and unless
 * private URLs are allowed every connection is checked at DNS time, so a name cannot later resolve to an internal
 * address.
 */
export class WebhookSender {
  private readonly agents: { http: http.Agent; https: https.Agent };

  constructor(private readonly options: WebhookSenderOptions) {
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets, timeout: options.timeoutMs };
    this.agents = { http: new http.Agent(agentOptions), https: new https.Agent(agentOptions) };
  }

  send(request: WebhookRequest): Promise<WebhookResponse> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    return new Promise((resolve) => {
      let settled = false;
      const timeout: { timer?: NodeJS.Timeout } = {};
      const finish = (r: Omit<WebhookResponse, 'latencyMs'>) => {
        if (settled) return;
        settled = true;
        clearTimeout(timeout.timer);
        resolve({ ...r, latencyMs: elapsed() });
      };
      const fail = (error: string) =>
        finish({ statusCode: null, error, responseExcerpt: null, retryAfterMs: undefined });

      let url: URL;
      try {
        url = new URL(request.url);
        if (!this.options.allowPrivate) assertPublicLiteral(url);
      } catch (err) {
        fail((err as Error).message);
        return;
      }
      const secure = url.protocol === 'https:';
      const req = (secure ? https : http).request(url, {
        method: 'POST',
        agent: secure ? this.agents.https : this.agents.http,
        lookup: this.options.allowPrivate ? undefined : publicOnlyLookup,
        headers: { ...request.headers, 'content-length': Buffer.byteLength(request.body) },
      });
      timeout.timer = setTimeout(() => {
        fail(`no complete response within ${this.options.timeoutMs} ms`);
        req.destroy();
      }, this.options.timeoutMs);

      req.on('error', (err: NodeJS.ErrnoException) =>
        fail(err.code ? `${err.code}: ${err.message}` : err.message),
      );
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= MAX_RESPONSE_BYTES) chunks.push(chunk);
          else res.destroy(); // the status is what matters; do not read an endless body
        });
        const done = () => {
          const status = res.statusCode ?? 0;
          const redirect = status >= 300 && status < 400;
          finish({
            statusCode: status,
            error: redirect ? `redirect to ${res.headers.location ?? '(no location)'} not followed` : null,
            responseExcerpt: Buffer.concat(chunks).toString('utf8').slice(0, EXCERPT_CHARS) || null,
            retryAfterMs: parseRetryAfter(res.headers['retry-after']),
          });
        };
        res.on('end', done);
        res.on('close', done);
        res.on('error', done);
      });
      req.end(request.body);
    });
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }
}
