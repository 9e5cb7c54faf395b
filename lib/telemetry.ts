import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
} from '@opentelemetry/api';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';

/**
 * Distributed tracing with OpenTelemetry. Off unless a process starts it (see lib/telemetry-register.ts, which
 * does when OTEL_EXPORTER_OTLP_ENDPOINT is set): then the SDK and its instrumentations are not even loaded,
 * and every helper below is a plain function call that creates no span. Only this file imports the SDK.
 */
let enabled = false;
let running: RunningTelemetry | undefined;

/** Whether this process traces (the SDK was started). */
export function tracingEnabled(): boolean {
  return enabled;
}

export interface TelemetryOptions {
  serviceName: string;
  /** Where finished spans go; by default the OTLP exporter configured by the standard OTEL_* variables. */
  spanProcessors?: SpanProcessor[];
}

export interface RunningTelemetry {
  /** Flushes what is buffered and stops exporting. */
  shutdown(): Promise<void>;
}

const QUIET_PATHS = new Set(['/metrics', '/healthz', '/readyz']);

/**
 * Starts the OpenTelemetry SDK with the instrumentations of the libraries comanda uses (http, koa, pg, amqplib,
 * ioredis). Must run before those libraries are imported: ES modules are instrumented through
 * import-in-the-middle's loader hook, registered here for just the modules the instrumentations name.
 */
export async function startTelemetry(options: TelemetryOptions): Promise<RunningTelemetry> {
  const { register } = await import('node:module');
  const { createAddHookMessageChannel } = await import('import-in-the-middle');
  const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel();
  register('import-in-the-middle/hook.mjs', import.meta.url, registerOptions);

  const [{ NodeSDK }, http, koa, pg, amqplib, ioredis] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-koa'),
    import('@opentelemetry/instrumentation-pg'),
    import('@opentelemetry/instrumentation-amqplib'),
    import('@opentelemetry/instrumentation-ioredis'),
  ]);
  const sdk = new NodeSDK({
    serviceName: options.serviceName,
    ...(options.spanProcessors ? { spanProcessors: options.spanProcessors } : {}),
    // Metrics stay with prom-client (/metrics) and logs with pino: the SDK exports traces only.
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      new http.HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => QUIET_PATHS.has((req.url ?? '').split('?')[0]),
      }),
      // Router layers only: a span per middleware would bury the route in noise.
      new koa.KoaInstrumentation({ ignoreLayersType: [koa.KoaLayerType.MIDDLEWARE] }),
      // Queries outside a traced operation (relay sweeps, pool checks, LISTEN) would each be a trace of one span.
      new pg.PgInstrumentation({ requireParentSpan: true }),
      new amqplib.AmqplibInstrumentation(),
      new ioredis.IORedisInstrumentation({ requireParentSpan: true }),
    ],
  });
  sdk.start();
  await waitForAllMessagesAcknowledged();
  enabled = true;
  running = {
    async shutdown() {
      enabled = false;
      running = undefined;
      await sdk.shutdown();
    },
  };
  return running;
}

/** Flushes and stops the SDK if this process started it (before it exits, so the last spans are not lost). */
export async function stopTelemetry(): Promise<void> {
  await running?.shutdown();
}

function tracer() {
  return trace.getTracer('comanda');
}

/**
 * Runs `fn` inside a new span (a child of the active one, or of `parent`), ending it when `fn` settles and
 * marking it failed if `fn` throws. With tracing off it only calls `fn`.
 */
export function inSpan<T>(
  name: string,
  fn: (span: Span | undefined) => Promise<T>,
  options: { kind?: SpanKind; attributes?: Attributes; parent?: Context } = {},
): Promise<T> {
  if (!enabled) return fn(undefined);
  const parent = options.parent ?? context.active();
  return tracer().startActiveSpan(
    name,
    { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes ?? {} },
    parent,
    async (span) => {
      try {
        return await fn(span);
      } catch (err) {
        span.recordException(err instanceof Error ? err : String(err));
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message });
        throw err;
      } finally {
        span.end();
      }
    },
  );
}

/** The W3C `traceparent` of the active span, to store with work that continues later (an outbox row). */
export function currentTraceparent(): string | undefined {
  if (!enabled) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent;
}

/** The context a stored `traceparent` (and `tracestate`) continue; the root context when there is none. */
export function contextFrom(carrier: Record<string, unknown> | null | undefined): Context {
  if (!enabled || !carrier) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, carrier, {
    get: (c, key) => {
      const v = c[key];
      return typeof v === 'string' ? v : undefined;
    },
    keys: (c) => Object.keys(c),
  });
}

/** Runs `fn` with the context carried by `carrier` active, so spans `fn` starts join that trace. */
export function withContextFrom<T>(carrier: Record<string, unknown> | null | undefined, fn: () => T): T {
  if (!enabled) return fn();
  return context.with(contextFrom(carrier), fn);
}

/**
 * Runs `fn` outside any trace: for background work that whoever woke it (a request, an earlier attempt) should
 * not own, such as a relay batch or a notifier's claim.
 */
export function detached<T>(fn: () => T): T {
  if (!enabled) return fn();
  return context.with(ROOT_CONTEXT, fn);
}

/** The trace and span ids of the active span, for log lines and stored records; empty with tracing off. */
export function traceIds(): { trace_id: string; span_id: string } | undefined {
  if (!enabled) return undefined;
  const span = trace.getActiveSpan();
  if (!span) return undefined;
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}
