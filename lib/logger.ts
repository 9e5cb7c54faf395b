import { pino, type Logger } from 'pino';
import { traceIds, tracingEnabled } from './telemetry.ts';

export type { Logger };

/** Paths whose values never reach a log line: tokens, secrets and signatures. */
const REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  '*.token',
  '*.secret',
  '*.password',
  'token',
  'secret',
];

/**
 * One JSON logger per process; children carry the component and, per request or message, the correlation id.
 * With tracing on, every line written inside a span also carries its `trace_id` and `span_id`.
 */
export function createLogger(options: {
  level: string;
  name?: string;
  /** Where lines go (stdout when absent). */
  destination?: { write(line: string): void };
}): Logger {
  const settings = {
    level: options.level,
    // Under `npm start` each child's lines say which role (and which worker) wrote them.
    base: {
      service: options.name ?? 'comanda',
      ...(process.env.COMANDA_ROLE ? { role: process.env.COMANDA_ROLE } : {}),
    },
    redact: { paths: REDACT, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(tracingEnabled() ? { mixin: () => traceIds() ?? {} } : {}),
  };
  return options.destination ? pino(settings, options.destination) : pino(settings);
}
