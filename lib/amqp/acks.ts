import type { Channel, ConsumeMessage } from 'amqplib';

/** The part of a channel acks go through (a ConfirmChannel, or a test's stand-in). */
export type AckChannel = Pick<Channel, 'ack'>;

/**
 * Acks of one channel, sent together. Each ack a consumer gives in one turn of the event loop (a batch settling,
 * say) waits for the end of that turn; then the acks that cover every delivery from the oldest one still unsettled
 * go out as one `basic.ack` with `multiple` (RabbitMQ then settles them in a single command of each quorum queue's
 * log, instead of one command per message), and any other ack goes out alone, as it would have without this.
 *
 * So an ack is never held behind a delivery still being handled (one slow message cannot fill the prefetch window
 * with acks that were not sent), and a `multiple` ack never covers a delivery that is not acked: one settled
 * otherwise (requeued, or republished and then acked by the consumer itself) is `release`d first, and one still
 * in hand stays unsettled and ends the run.
 */
export class AckCoalescer {
  /** Every delivery not yet settled, by delivery tag (a channel numbers its deliveries 1, 2, 3…). */
  private readonly unsettled = new Map<number, ConsumeMessage>();
  /** Acked deliveries waiting for the end of this turn. */
  private readonly acked: ConsumeMessage[] = [];
  private scheduled = false;

  constructor(private readonly channel: AckChannel) {}

  /** A delivery arrived: it is unsettled until acked or released. */
  delivered(msg: ConsumeMessage): void {
    this.unsettled.set(msg.fields.deliveryTag, msg);
  }

  /** The delivery was handled: ack it (at the end of this turn, possibly with others). */
  ack(msg: ConsumeMessage): void {
    this.acked.push(msg);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** The delivery was settled some other way (nacked, or republished and acked alone): forget it. */
  release(msg: ConsumeMessage): void {
    this.unsettled.delete(msg.fields.deliveryTag);
  }

  /**
   * Sends the acks of this turn now. If the channel is closed they cannot go out, and need not: the broker
   * redelivers every unacked delivery of a closed channel, and the handler finds its work already done.
   */
  flush(): void {
    this.scheduled = false;
    if (this.acked.length === 0) return;
    const acked = this.acked.splice(0).sort((a, b) => a.fields.deliveryTag - b.fields.deliveryTag);
    let oldest = Infinity;
    for (const tag of this.unsettled.keys()) if (tag < oldest) oldest = tag;
    // The run: acked deliveries whose tags follow on from the oldest unsettled one without a gap.
    let run = 0;
    while (run < acked.length && acked[run].fields.deliveryTag === oldest + run) run++;
    for (const msg of acked) this.unsettled.delete(msg.fields.deliveryTag);
    try {
      if (run > 1) this.channel.ack(acked[run - 1], true);
      else run = 0;
      for (const msg of acked.slice(run)) this.channel.ack(msg);
    } catch {
      // Closed: see above.
    }
  }
}
