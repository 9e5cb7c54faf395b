import type { Tx } from '../lib/db.ts';
import { MESSAGE_EXCHANGES, type Envelope } from './messages.ts';

/** Context that travels with a message: the correlation id of the request or message that caused it. */
export interface MessageContext {
  correlationId: string;
  traceparent?: string | undefined;
}

/**
 * Records a message in the outbox inside the caller's transaction: it is published (by the relay) if and only
 * if that transaction commits.
 */
export async function enqueueMessage(tx: Tx, envelope: Envelope, context: MessageContext): Promise<void> {
  const headers: Record<string, string> = { 'x-correlation-id': context.correlationId };
  if (context.traceparent) headers.traceparent = context.traceparent;
  await tx('outbox').insert({
    id: envelope.id,
    aggregate_id: envelope.order_id,
    exchange: MESSAGE_EXCHANGES[envelope.type],
    type: envelope.type,
    payload: envelope,
    headers,
  });
}
