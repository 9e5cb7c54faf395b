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
 */
export class StatusListener implements AmqpAttachment {
  readonly name = 'status-listener';
  private channel: Channel | undefined;
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

  async attach(model: ChannelModel) {
    const ch = await model.createChannel();
    // Every event exchange (orders, and whatever else a component publishes, such as stock): the order feeds
    // wake on what concerns them, the operators' feed on everything. Commands and dead letters are not events.
    const events = (Object.keys(EXCHANGES) as ExchangeKey[]).filter(
      (key) => key !== 'orderCommands' && key !== 'deadLetter',
    );
    const queue = await this.topology.assertListenerQueue(ch, 'api.order-status', events);
    for (const key of Object.keys(QUEUES) as QueueKey[]) {
      await ch.bindQueue(queue, this.topology.exchange('deadLetter'), this.topology.queue(key));
    }
    await ch.consume(queue, (msg) => msg && this.dispatch(msg), { noAck: true });
    this.channel = ch;
    ch.once('close', () => {
      if (this.channel === ch) this.channel = undefined;
    });
    for (const s of this.subscribers) s.notify();
    return [ch];
  }

  detach(): void {
    const ch = this.channel;
    this.channel = undefined;
    ch?.close().catch(() => {});
  }

  /** Registers a feed; returns the function that unregisters it. */
  subscribe(s: FeedSubscriber): () => void {
    this.subscribers.add(s);
    if (s.orderId) addTo(this.byOrder, s.orderId, s);
    if (s.customerId) addTo(this.byCustomer, s.customerId, s);
    if (s.allOrders) this.everything.add(s);
    if (s.operations) this.operators.add(s);
    return () => {
      this.operators.delete(s);
      this.subscribers.delete(s);
      if (s.orderId) removeFrom(this.byOrder, s.orderId, s);
      if (s.customerId) removeFrom(this.byCustomer, s.customerId, s);
      this.everything.delete(s);
    };
  }

  /** Stops listening and ends every open feed, so the HTTP server can close. */
  stop(): void {
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
