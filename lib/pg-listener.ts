import type { Db } from './db.ts';
import type { Logger } from './logger.ts';

/** The part of a raw PostgreSQL connection a listener uses. */
interface ListenConnection {
  query(sql: string): Promise<unknown>;
  on(event: 'notification', listener: (message: { channel: string }) => void): void;
  on(event: 'error' | 'end', listener: (err?: Error) => void): void;
  removeAllListeners(): void;
}

interface RawConnections {
  acquireRawConnection(): Promise<ListenConnection>;
  destroyRawConnection(connection: ListenConnection): Promise<void>;
}

/**
 * LISTENs on a channel over a connection of its own (outside the pool) and calls `onNotify` for each NOTIFY; on a
 * lost connection it calls `onNotify` once (something may have been missed) and reconnects with growing delays.
 * Only a wake-up: callers poll as well, so a missed notification delays work and loses nothing.
 */
export class PgListener {
  private connection: ListenConnection | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;

  constructor(
    private readonly db: Db,
    private readonly channel: string,
    private readonly onNotify: () => void,
    private readonly logger: Logger,
  ) {}

  private get raw(): RawConnections {
    return this.db.client as RawConnections;
  }

  async start(): Promise<void> {
    if (this.closed) return;
    let connection: ListenConnection | undefined;
    try {
      connection = await this.raw.acquireRawConnection();
      connection.on('notification', (m) => {
        if (m.channel === this.channel) this.onNotify();
      });
      connection.on('error', (err) => this.lost(connection!, err));
      connection.on('end', () => this.lost(connection!));
      await connection.query(`LISTEN "${this.channel}"`);
      this.connection = connection;
      this.failures = 0;
      if (this.closed) await this.close();
    } catch (err) {
      if (connection) this.lost(connection, err as Error);
      else this.retry(err as Error);
    }
  }

  private lost(connection: ListenConnection, err?: Error): void {
    connection.removeAllListeners();
    connection.on('error', () => {});
    if (this.connection === connection) this.connection = undefined;
    void this.raw.destroyRawConnection(connection).catch(() => {});
    if (this.closed) return;
    this.onNotify();
    this.retry(err);
  }

  private retry(err?: Error): void {
    if (this.closed || this.retryTimer) return;
    const delay = Math.min(200 * 2 ** this.failures++, 10_000);
    this.logger.warn({ err, retry_in_ms: delay }, 'lost the LISTEN connection; polling until it is back');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.start();
    }, delay);
    this.retryTimer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    const connection = this.connection;
    this.connection = undefined;
    if (connection) {
      connection.removeAllListeners();
      connection.on('error', () => {});
      await this.raw.destroyRawConnection(connection).catch(() => {});
    }
  }
}
