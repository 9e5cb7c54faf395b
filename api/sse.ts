import { PassThrough } from 'node:stream';
import type { Logger } from '../lib/logger.ts';
import type { ApiContext } from './context.ts';

/** What one read of a feed found. */
export interface SseBatch<E> {
  /** Oldest first. */
  events: E[];
  /** Whether more may be read at once (a full batch). */
  more: boolean;
  /** Whether something is there that cannot be sent yet: read again in a moment even if nobody wakes the feed. */
  pending?: boolean;
}

export interface SseFeedOptions<E extends { id: number | string }, C> {
  /** Reads what happened after `cursor`, oldest first. */
  read(cursor: C): Promise<SseBatch<E>>;
  /** The cursor just after `event`. */
  cursorOf(event: E): C;
  /** Where the client stands (from `Last-Event-ID`), or where a fresh feed starts. */
  cursor: C;
  /** How soon a feed with pending events reads again. */
  pendingRetryMs?: number;
  log: Logger;
  /** How often a comment line goes out on an idle stream, so proxies and load balancers keep it open. */
  heartbeatMs?: number;
  /** How long the browser waits before reconnecting after a drop (the SSE `retry` field). */
  retryMs?: number;
}

/**
 * One Server-Sent Events response fed from the order trace. Every wake-up (`notify`) reads the rows after the
 * last one sent and writes each as an event whose `id` is its row id, so a client that reconnects with
 * `Last-Event-ID` misses nothing and sees nothing twice. Reads never overlap: wake-ups during a read fold into
 * one more read. If the trace cannot be read, the stream ends and the client reconnects where it stopped.
 */
export class SseFeed<E extends { id: number | string }, C> {
  private readonly out = new PassThrough();
  private cursor: C;
  private pendingTimer: NodeJS.Timeout | undefined;
  private reading = false;
  private again = false;
  private closed = false;
  private sent = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly opened = Date.now();
  private readonly closeHandlers: (() => void)[] = [];

  constructor(private readonly options: SseFeedOptions<E, C>) {
    this.cursor = options.cursor;
    // Writing to a stream the client already dropped is harmless; `close` follows from the response.
    this.out.on('error', () => {});
  }

  /** Turns the Koa response into the event stream; the middleware chain returns at once, the stream stays open. */
  open(ctx: ApiContext): void {
    ctx.req.socket.setNoDelay(true);
    ctx.req.socket.setTimeout(0);
    ctx.status = 200;
    ctx.type = 'text/event-stream';
    ctx.set('Cache-Control', 'no-cache, no-transform');
    ctx.set('X-Accel-Buffering', 'no'); // nginx and friends: pass each event through as it is written
    // The connection ends with the stream: a shutting-down server is not held open by an idle keep-alive socket.
    ctx.set('Connection', 'close');
    ctx.body = this.out;
    ctx.res.once('close', () => this.close());
    this.write(`retry: ${this.options.retryMs ?? 2000}\n\n`);
    this.heartbeat = setInterval(() => this.write(': keep-alive\n\n'), this.options.heartbeatMs ?? 15_000);
    this.heartbeat.unref();
    this.notify();
  }

  onClose(handler: () => void): void {
    this.closeHandlers.push(handler);
  }

  /** Something may have happened: read and send what is new. */
  notify(): void {
    if (this.closed) return;
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = true;
    void this.drain().finally(() => {
      this.reading = false;
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.pendingTimer);
    if (!this.out.destroyed) this.out.end();
    this.options.log.info({ events: this.sent, ms: Date.now() - this.opened }, 'stream closed');
    for (const h of this.closeHandlers) h();
  }

  private write(chunk: string): void {
    if (!this.out.destroyed && !this.out.writableEnded) this.out.write(chunk);
  }

  private async drain(): Promise<void> {
    try {
      let pending = false;
      do {
        this.again = false;
        for (;;) {
          const batch = await this.options.read(this.cursor);
          if (this.closed) return;
          for (const event of batch.events) {
            this.write(`id: ${event.id}\ndata: ${JSON.stringify(event)}\n\n`);
            this.cursor = this.options.cursorOf(event);
            this.sent++;
          }
          pending = batch.pending ?? false;
          if (!batch.more) break;
        }
      } while (this.again && !this.closed);
      if (pending && !this.closed) {
        clearTimeout(this.pendingTimer);
        this.pendingTimer = setTimeout(() => this.notify(), this.options.pendingRetryMs ?? 50);
      }
    } catch (err) {
      this.options.log.warn({ err }, 'stream could not read the trace; ending it so the client resumes');
      this.close();
    }
  }
}
