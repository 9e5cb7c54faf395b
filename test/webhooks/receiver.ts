import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePortRange } from '../../bench/processes.ts';

export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  body: string;
  json: any;
  /** Date.now() when the request arrived. */
  at: number;
}

/** How the receiver answers its n-th request (1-based): a status, or 'hang' to never answer. */
export type Answer = { status: number; headers?: Record<string, string>; body?: string } | 'hang';

/** A real HTTP server standing in for a customer's or operations' webhook receiver. */
export class TestReceiver {
  readonly received: ReceivedWebhook[] = [];
  private readonly held = new Set<http.ServerResponse>();
  private server: http.Server | undefined;
  port = 0;

  constructor(public answer: (n: number, request: ReceivedWebhook) => Answer = () => ({ status: 204 })) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks`;
  }

  /** Starts listening (on `port`, or any free port). */
  static async start(
    answer?: (n: number, request: ReceivedWebhook) => Answer,
    port = 0,
  ): Promise<TestReceiver> {
    const receiver = new TestReceiver(answer);
    await receiver.listen(port);
    return receiver;
  }

  /**
   * A port nothing listens on (yet): a receiver that is down. It is below the ephemeral range, so no server of
   * another test listening on "any free port" is given it while it is meant to be down.
   */
  static freePort(): Promise<number> {
    return freePortRange(1);
  }

  async listen(port = 0): Promise<void> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(body);
        } catch {
          json = undefined;
        }
        const request = { headers: req.headers, body, json, at: Date.now() };
        this.received.push(request);
        const answer = this.answer(this.received.length, request);
        if (answer === 'hang') {
          this.held.add(res);
          res.on('close', () => this.held.delete(res));
          return;
        }
        res.writeHead(answer.status, answer.headers).end(answer.body ?? '');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** The requests about one order. */
  forOrder(orderId: string): ReceivedWebhook[] {
    return this.received.filter((r) => r.json?.data?.order_id === orderId);
  }

  /** Requests being held right now (their senders still waiting). */
  get heldCount(): number {
    return this.held.size;
  }

  async stop(): Promise<void> {
    for (const res of this.held) res.destroy();
    this.held.clear();
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

/** The request headers as the `standardwebhooks` library wants them. */
export function webhookHeaders(r: ReceivedWebhook): Record<string, string> {
  return {
    'webhook-id': String(r.headers['webhook-id']),
    'webhook-timestamp': String(r.headers['webhook-timestamp']),
    'webhook-signature': String(r.headers['webhook-signature']),
  };
}
