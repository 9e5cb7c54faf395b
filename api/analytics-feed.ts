import { PassThrough } from 'node:stream';
import { ANALYTICS_CHANNEL } from '../analytics/store.ts';
import { newestCounted } from '../analytics/queries.ts';
import type { Db } from '../lib/db.ts';
import type { Logger } from '../lib/logger.ts';
import { PgListener } from '../lib/pg-listener.ts';
import type { ApiContext } from './context.ts';

/** How often, at most, open dashboards are told the figures changed (a busy minute is one update per tick). */
const TICK_MS = 500;

/**
 * Tells open analytics dashboards (Server-Sent Events) when the figures changed. The analytics consumer NOTIFYs
 * in each transaction that counted something; this API instance LISTENs on one connection of its own, opened
 * when the first dashboard connects, and sends every dashboard at most one `analytics` event per tick, carrying
 * the time of the newest event counted. A dashboard then reads the figures it shows again: nothing to reconcile,
 * nothing lost by a dropped event or a reconnect.
 */
export class AnalyticsFeed {
  private readonly streams = new Set<PassThrough>();
  private listener: PgListener | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pending = false;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
  ) {}

  /** Turns the response into an event stream that gets an `analytics` event now and after each change. */
  open(ctx: ApiContext): void {
    const out = new PassThrough();
    out.on('error', () => {});
    ctx.req.socket.setNoDelay(true);
    ctx.req.socket.setTimeout(0);
    ctx.status = 200;
    ctx.type = 'text/event-stream';
    ctx.set('Cache-Control', 'no-cache, no-transform');
    ctx.set('X-Accel-Buffering', 'no');
    ctx.set('Connection', 'close');
    ctx.body = out;
    this.streams.add(out);
    ctx.res.once('close', () => {
      this.streams.delete(out);
      if (!out.destroyed) out.end();
    });
    out.write('retry: 2000\n\n');
    this.ensureListening();
    void this.send([out]);
  }

  /** Ends every open stream and stops listening (the API is shutting down). */
  async stop(): Promise<void> {
    clearTimeout(this.timer);
    clearInterval(this.heartbeat);
    for (const out of this.streams) out.end();
    this.streams.clear();
    await this.listener?.close();
    this.listener = undefined;
  }

  get open_streams(): number {
    return this.streams.size;
  }

  private ensureListening(): void {
    if (this.listener) return;
    this.listener = new PgListener(this.db, ANALYTICS_CHANNEL, () => this.changed(), this.logger);
    void this.listener.start();
    this.heartbeat = setInterval(() => {
      for (const out of this.streams) out.write(': keep-alive\n\n');
    }, 15_000);
    this.heartbeat.unref();
  }

  private changed(): void {
    if (this.timer) {
      this.pending = true;
      return;
    }
    void this.send([...this.streams]);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.pending) {
        this.pending = false;
        this.changed();
      }
    }, TICK_MS);
    this.timer.unref();
  }

  private async send(streams: PassThrough[]): Promise<void> {
    if (!streams.length) return;
    let asOf: Date | null = null;
    try {
      asOf = await newestCounted(this.db);
    } catch (err) {
      this.logger.warn({ err }, 'could not read analytics freshness');
    }
    const data = JSON.stringify({ as_of: asOf?.toISOString() ?? null, sent_at: new Date().toISOString() });
    for (const out of streams) {
      if (!out.destroyed && !out.writableEnded) out.write(`event: analytics\ndata: ${data}\n\n`);
    }
  }
}
