import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { AmqpAttachment, AmqpClient } from '../lib/amqp/connection.ts';
import type { Topology } from '../lib/amqp/topology.ts';
import type { Logger } from '../lib/logger.ts';

/** An open live feed (an SSE stream) as the listener sees it: what it follows, and how to wake or end it. */
export interface FeedSubscriber {
  /** Follows one order. */
  orderId?: string;
  /** Follows every order of one customer. */
  customerId?: string;
  /** Follows every order (an admin's feed). */
  allOrders?: boolean;
  /** Something may have happened to what it follows: read the trace again from where it stopped. */
  notify(): void;
  /** The API is shutting down: end the feed. */
  close(): void;
}

/**
 * How an API instance learns that an order changed: its own exclusive, auto-delete queue bound to the
 * `order.created` and `order.status-changed` fanout exchanges, consumed without acks (a lost message costs
 * nothing: the trace in PostgreSQL is the truth, and every feed re-reads it on each wake-up). After a reconnect
 * every feed is woken, since messages published while the queue did not exist are gone.
 */
export class StatusListener implements AmqpAttachment {
  readonly name = 'status-listener';
  private channel: Channel | undefined;
  private readonly subscribers = new Set<FeedSubscriber>();
  private readonly byOrder = new Map<string, Set<FeedSubscriber>>();
  private readonly byCustomer = new Map<string, Set<FeedSubscriber>>();
  private readonly everything = new Set<FeedSubscriber>();

  constructor(
    private readonly client: AmqpClient,
    private readonly topology: Topology,
    private readonly logger: Logger,
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
    const queue = await this.topology.assertListenerQueue(ch, 'api.order-status', [
      'orderCreated',
      'orderStatusChanged',
      'orderPaymentEvents',
    ]);
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
    return () => {
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

  private dispatch(msg: ConsumeMessage): void {
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
    const woken = new Set<FeedSubscriber>(this.everything);
    if (typeof orderId === 'string') for (const s of this.byOrder.get(orderId) ?? []) woken.add(s);
    if (typeof customerId === 'string') for (const s of this.byCustomer.get(customerId) ?? []) woken.add(s);
    for (const s of woken) s.notify();
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
