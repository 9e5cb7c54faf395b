import { randomUUID } from 'node:crypto';
import { z } from 'zod';

/**
 * The JSON envelope of every message comanda publishes, whatever the aggregate: `id` is also the AMQP messageId
 * (consumers de-duplicate on it) and `version` is the aggregate's version after the change, so a consumer can put
 * one aggregate's messages in order or drop a stale one (several relays may publish out of order).
 */
export interface Envelope<T = unknown> {
  id: string;
  type: string;
  occurred_at: string;
  aggregate_type: string;
  aggregate_id: string;
  version: number;
  data: T;
}

export function buildEnvelope<T>(
  aggregate: { type: string; id: string; version: number },
  type: string,
  data: T,
): Envelope<T> {
  return {
    id: randomUUID(),
    type,
    occurred_at: new Date().toISOString(),
    aggregate_type: aggregate.type,
    aggregate_id: aggregate.id,
    version: aggregate.version,
    data,
  };
}

const envelopeSchema = z.object({
  id: z.uuid(),
  type: z.string().min(1),
  occurred_at: z.string(),
  aggregate_type: z.string().min(1),
  aggregate_id: z.string().min(1),
  version: z.number().int().nonnegative(),
  data: z.looseObject({}),
});

/**
 * Reads an envelope of one of `types`; anything else (not JSON, not an envelope, another type) throws, which a
 * consumer treats as a malformed message.
 */
export function parseEnvelope(content: Buffer, types: readonly string[]): Envelope<Record<string, unknown>> {
  return readEnvelope(JSON.parse(content.toString('utf8')), types);
}

/** `parseEnvelope` of a value already parsed from JSON (a jsonb column, such as a feed row's `data`). */
export function readEnvelope(value: unknown, types: readonly string[]): Envelope<Record<string, unknown>> {
  const envelope = envelopeSchema.parse(value);
  if (!types.includes(envelope.type)) {
    throw new Error(`unexpected message type ${envelope.type}; this queue takes ${types.join(', ')}`);
  }
  return envelope;
}
