import { ConfigError, loadConfig, type Config } from './config.ts';
import { createLogger, type Logger } from './logger.ts';
import { ServiceUnreachableError } from './services.ts';
import { stopTelemetry } from './telemetry.ts';

export interface Stoppable {
  /** Where the process serves, if it does: told to `npm start`'s supervisor. */
  url?: string;
  stop(): Promise<void>;
}

/**
 * Runs one comanda process: validated config, a logger, and graceful shutdown. The first SIGTERM/SIGINT stops
 * taking work and lets in-flight work finish within SHUTDOWN_GRACE_MS; a second signal exits at once. A bad
 * setting or an unreachable service ends the process with one clear line, not a stack trace.
 */
export function runProcess(
  name: string,
  start: (config: Config, logger: Logger) => Promise<Stoppable>,
): void {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`comanda ${name}: ${err.message}\n`);
      process.exit(78);
    }
    throw err;
  }
  const logger = createLogger({ level: config.LOG_LEVEL, name: `comanda-${name}` });

  let running: Stoppable | undefined;
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    stopping = true;
    logger.info({ signal, grace_ms: config.SHUTDOWN_GRACE_MS }, 'shutting down');
    const deadline = setTimeout(() => {
      logger.error('grace period over: exiting with work unfinished');
      process.exit(1);
    }, config.SHUTDOWN_GRACE_MS);
    deadline.unref();
    (running?.stop() ?? Promise.resolve()).then(
      async () => {
        logger.info('stopped');
        // The last spans are still in the exporter's buffer.
        await stopTelemetry().catch(() => {});
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // A child of `npm start`'s supervisor: if the supervisor dies without stopping us, stop by ourselves.
  if (process.send) process.once('disconnect', () => shutdown('supervisor gone'));

  start(config, logger).then(
    (r) => {
      running = r;
      // Tells `npm start`'s supervisor this child is up (and handles SIGTERM gracefully from now on).
      process.send?.({ type: 'ready', url: r.url });
    },
    (err: unknown) => {
      if (err instanceof ServiceUnreachableError) {
        logger.fatal(err.message);
        process.stderr.write(`comanda ${name}: ${err.message}\n`);
      } else {
        logger.fatal({ err }, 'failed to start');
      }
      process.exit(1);
    },
  );
}
