/**
 * Preloaded with `node --import` before a comanda process's entry point (see package.json's start scripts):
 * when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set it starts tracing, before the
 * libraries to instrument are imported. Otherwise it does nothing at all: no SDK is loaded, no span is made.
 */
import { basename, dirname } from 'node:path';
import { startTelemetry } from './telemetry.ts';

const env = process.env;
const endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
if (endpoint && env.OTEL_SDK_DISABLED !== 'true') {
  await startTelemetry({ serviceName: env.OTEL_SERVICE_NAME || `comanda-${roleOf(process.argv[1] ?? '')}` });
}

/** `api/main.ts` → api, `dist/worker/main.js` → worker, `scripts/start.ts` → all-in-one. */
function roleOf(entry: string): string {
  const file = basename(entry).replace(/\.[cm]?[jt]s$/, '');
  if (file === 'main') return basename(dirname(entry));
  return file === 'start' ? 'all-in-one' : file;
}
