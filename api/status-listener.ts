import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { AmqpAttachment, AmqpClient } from '../lib/amqp/connection.ts';
import { DEAD_AT_HEADER, DEAD_QUEUE_HEADER, DEAD_REASON_HEADER } from '../lib/amqp/consumer.ts';
import { EXCHANGES, QUEUES, type ExchangeKey, type QueueKey, type Topology } from '../lib/amqp/topology.ts';
import type { Logger } from '../lib/logger.ts';

/** An open live feed (an SSE stream) as the listener sees it: what it follows, and how to wake or end it. */
export interface FeedSubscriber {
  /** Follows one order. */
  orderId?: string;
  /** Follows every order of one customer. */
  customerId?: string;
  /** Follows every order (an admin's feed). */
  allOrders?: boolean;
  /** Follows everything an operator is told of: orders, stock, dead letters, disabled endpoints. */
  operations?: boolean;
  /** Something may have happened to what it follows: read the trace again from where it stopped. */
  notify(): void;
  /** The API is shutting down: end the feed. */
  close(): void;
}

/**
 * Every event exchange (orders, and whatever else a component publishes, such as stock): the order feeds wake on
 * what concerns them, the operators' feed on everything. Commands and dead letters are not events.
 */
const EVENT_EXCHANGES = (Object.keys(EXCHANGES) as ExchangeKey[]).filter(
  (key) => key !== 'orderCommands' && key !== 'deadLetter',
);

/** How long the event exchanges stay bound after the last feed closed. */
const UNBIND_AFTER_MS = 10_000;

/** A message that was dead-lettered, as the listener heard of it. */
export interface DeadLetterHeard {
  messageId: string;
  queue: string;
  reason: string;
  type: string | null;
  deadAt: string;
}

/**
 * How an API instance learns that an order changed: its own exclusive, auto-delete queue bound to the
 * event fanout exchanges (`order.created`, `order.status-changed`, … and the catalogue's), consumed without acks (a lost message costs
 * nothing: the trace in PostgreSQL is the truth, and every feed re-reads it on each wake-up). After a reconnect
 * every feed is woken, since messages published while the queue did not exist are gone. The same queue is bound to
 * the dead-letter exchange, so operators' feeds hear of each dead-lettered message (`onDeadLetter` records it).
 *
 * The event exchanges are bound only while a feed is open on this instance: every order makes about five event
 * messages, and routing them to an instance nobody watches would cost the broker and the API a delivery each. A
 * feed opened before the binding is in place is woken once it is (it re-reads from its cursor, so nothing in
 * between is missed); the binding is dropped when the last feed has been closed for UNBIND_AFTER_MS.
 */
export class StatusListener implements AmqpAttachment {
  readonly name = 'status-listener';
  private channel: Channel | undefined;
  private queue: string | undefined;
  /** Whether the event exchanges are bound to the queue of the current channel. */
  private eventsBound = false;
  /** Bindings change one at a time, in the order asked. */
  private bindings: Promise<void> = Promise.resolve();
  private unbindTimer: NodeJS.Timeout | undefined;
  private readonly subscribers = new Set<FeedSubscriber>();
  private readonly byOrder = new Map<string, Set<FeedSubscriber>>();
  private readonly byCustomer = new Map<string, Set<FeedSubscriber>>();
  private readonly everything = new Set<FeedSubscriber>();
  private readonly operators = new Set<FeedSubscriber>();

  constructor(
    private readonly client: AmqpClient,
    private readonly topology: Topology,
    private readonly logger: Logger,
    private readonly onDeadLetter: (dead: DeadLetterHeard) => Promise<void> = () => Promise.resolve(),
  ) {}

  start(): void {
    this.client.add(this);
  }

  /** Whether the listener's queue is bound and consumed right now. */
  get listening(): boolean {
    return this.channel !== undefined;
  }

  /** How many feeds are open on this instance. */
  get feeds(): number {
    return this.subscribers.size;
  }

  /** Whether the event exchanges are bound right now (only while a feed is open). */
  get followingEvents(): boolean {
    return this.eventsBound;
  }

  async attach(model: ChannelModel) {
    const ch = await model.createChannel();
    const queue = await this.topology.assertListenerQueue(ch, 'api.order-status', []);
    for (const key of Object.keys(QUEUES) as QueueKey[]) {
      await ch.bindQueue(queue, this.topology.exchange('deadLetter'), this.topology.queue(key));
    }
    await ch.consume(queue, (msg) => msg && this.dispatch(msg), { noAck: true });
    this.channel = ch;
    this.queue = queue;
    this.eventsBound = false;
    ch.once('close', () => {
      if (this.channel === ch) this.lost();
    });
    this.reconcile();
    return [ch];
  }

  detach(): void {
    const ch = this.channel;
    this.lost();
    ch?.close().catch(() => {});
  }

  private lost(): void {
    this.channel = undefined;
    this.queue = undefined;
    this.eventsBound = false;
  }

  /**
   * Binds the event exchanges when feeds are open and they are not bound, unbinds them when no feed is open;
   * feeds are woken after a binding, since what happened before it reached no queue of this instance.
   */
  private reconcile(): void {
    this.bindings = this.bindings
      .then(async () => {
        const ch = this.channel;
        const queue = this.queue;
        if (!ch || !queue) return;
        const wanted = this.subscribers.size > 0;
        if (wanted === this.eventsBound) return;
        for (const key of EVENT_EXCHANGES) {
          const exchange = this.topology.exchange(key);
          if (wanted) await ch.bindQueue(queue, exchange, '');
          else await ch.unbindQueue(queue, exchange, '');
        }
        if (this.channel !== ch) return;
        this.eventsBound = wanted;
        if (wanted) for (const s of this.subscribers) s.notify();
      })
      .catch((err: unknown) => {
        // The channel is gone; the next attach binds again if feeds are open.
        this.logger.warn({ err }, 'could not change the live feeds binding');
      });
  }

  /** Registers a feed; returns the function that unregisters it. */
  subscribe(s: FeedSubscriber): () => void {
    this.subscribers.add(s);
    if (s.orderId) addTo(this.byOrder, s.orderId, s);
    if (s.customerId) addTo(this.byCustomer, s.customerId, s);
    if (s.allOrders) this.everything.add(s);
    if (s.operations) this.operators.add(s);
    clearTimeout(this.unbindTimer);
    if (!this.eventsBound) this.reconcile();
    return () => {
      this.operators.delete(s);
      this.subscribers.delete(s);
      if (s.orderId) removeFrom(this.byOrder, s.orderId, s);
      if (s.customerId) removeFrom(this.byCustomer, s.customerId, s);
      this.everything.delete(s);
      if (this.subscribers.size === 0) {
        // A page that reloads opens its feed again at once: keep the binding for a moment.
        clearTimeout(this.unbindTimer);
        this.unbindTimer = setTimeout(() => this.reconcile(), UNBIND_AFTER_MS).unref();
      }
    };
  }

  /** Stops listening and ends every open feed, so the HTTP server can close. */
  stop(): void {
    clearTimeout(this.unbindTimer);
    this.client.remove(this);
    for (const s of [...this.subscribers]) s.close();
  }

  /** Something an operator is told of happened outside the order exchanges: wake the operators' feeds. */
  notifyOperators(): void {
    for (const s of this.operators) s.notify();
  }

  private dispatch(msg: ConsumeMessage): void {
    if (msg.fields.exchange === this.topology.exchange('deadLetter')) {
      this.heardDeadLetter(msg);
      return;
    }
    let orderId: unknown;
    let customerId: unknown;
    try {
      const envelope = JSON.parse(msg.content.toString('utf8')) as {
        aggregate_id?: unknown;
        data?: { customer_id?: unknown };
      };
      orderId = envelope.aggregate_id;
      customerId = envelope.data?.customer_id;
    } catch {
      this.logger.warn(
        { messageId: msg.properties.messageId as unknown },
        'unreadable status message ignored',
      );
      return;
    }
    const woken = new Set<FeedSubscriber>([...this.everything, ...this.operators]);
    if (typeof orderId === 'string') for (const s of this.byOrder.get(orderId) ?? []) woken.add(s);
    if (typeof customerId === 'string') for (const s of this.byCustomer.get(customerId) ?? []) woken.add(s);
    for (const s of woken) s.notify();
  }

  private heardDeadLetter(msg: ConsumeMessage): void {
    const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
    const death = (
      headers['x-death'] as { queue?: string; reason?: string; count?: number }[] | undefined
    )?.[0];
    const text = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : undefined);
    const dead: DeadLetterHeard = {
      messageId: text(msg.properties.messageId) ?? 'unknown',
      queue: text(headers[DEAD_QUEUE_HEADER]) ?? death?.queue ?? msg.fields.routingKey,
      reason: text(headers[DEAD_REASON_HEADER]) ?? death?.reason ?? 'dead-lettered',
      type: text(msg.properties.type) ?? null,
      deadAt: text(headers[DEAD_AT_HEADER]) ?? `death-${death?.count ?? 0}`,
    };
    this.onDeadLetter(dead).then(
      () => this.notifyOperators(),
      (err: unknown) =>
        this.logger.warn({ err, messageId: dead.messageId }, 'could not record a dead letter'),
    );
  }
}

function addTo(map: Map<string, Set<FeedSubscriber>>, key: string, s: FeedSubscriber): void {
  const set = map.get(key) ?? new Set();
  set.add(s);
  map.set(key, set);
}

function removeFrom(map: Map<string, Set<FeedSubscriber>>, key: string, s: FeedSubscriber): void {
  const set = map.get(key);
  set?.delete(s);
  if (set?.size === 0) map.delete(key);
}
