import type { ExchangeKey } from './amqp/topology.ts';
import type { Envelope } from './messages.ts';

/** Context that travels with a message: the correlation id of the request or message that caused it. */
export interface MessageContext {
  correlationId: string;
  traceparent?: string | undefined;
}

/**
 * The outbox row of a message for `exchange`. Inserted in the transaction of the change that causes it, the
 * message is published (by the relay) if and only if that transaction commits.
 */
export function outboxRow(exchange: ExchangeKey, envelope: Envelope, context: MessageContext) {
  const headers = messageHeaders(context);
  return {
    id: envelope.id,
    aggregate_type: envelope.aggregate_type,
    aggregate_id: envelope.aggregate_id,
    exchange,
    type: envelope.type,
    payload: envelope,
    headers,
  };
}

/** The AMQP headers of a message: its correlation id and, when there is one, the W3C traceparent. */
export function messageHeaders(context: MessageContext): Record<string, string> {
  const headers: Record<string, string> = { 'x-correlation-id': context.correlationId };
  if (context.traceparent) headers.traceparent = context.traceparent;
  return headers;
}
