import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KeyRing } from '../accounts/key-ring.ts';
import { LoginLimiter } from '../accounts/login-limiter.ts';
import { resealStoredKeys } from '../accounts/signing-keys.ts';
import { ConfirmPublisher } from '../lib/amqp/publisher.ts';
import { loadSecretBox } from '../lib/secret-box.ts';
import { resealWebhookSecrets } from '../webhooks/endpoints.ts';
import type { Services } from '../lib/services.ts';
import { PgListener } from '../lib/pg-listener.ts';
import { ADMIN_EVENTS_CHANNEL, recordDeadLetter } from '../operations/admin-feed.ts';
import { relayFor, type OutboxRelay } from '../relay/outbox-relay.ts';
import { webhookDeliveriesHook } from '../webhooks/deliveries.ts';
import { AnalyticsFeed } from './analytics-feed.ts';
import { createApp } from './app.ts';
import { createAuth } from './auth.ts';
import { trackConnections } from './http-connections.ts';
import { StatusListener } from './status-listener.ts';

export interface RunningApi {
  url: string;
  server: Server;
  relay: OutboxRelay | undefined;
  publisher: ConfirmPublisher;
  /** Wakes the open event streams when an order changes. */
  statusListener: StatusListener;
  /** The signing keys: `refresh()` picks up a rotation made elsewhere at once. */
  keys: KeyRing;
  /** Stops taking connections, lets in-flight requests finish, then stops the relay. */
  stop(): Promise<void>;
}

/** Starts the HTTP API (and, unless RELAY_ENABLED=false, the outbox relay) on the configured host and port. */
export async function startApi(services: Services, options: { port?: number } = {}): Promise<RunningApi> {
  const { config, logger, db, redis, amqp, topology } = services;
  const publisher = new ConfirmPublisher(amqp, topology);
  publisher.start();
  const relay = config.RELAY_ENABLED ? relayFor(services, publisher, { housekeeping: true }) : undefined;
  relay?.start();
  const statusListener = new StatusListener(
    amqp,
    topology,
    logger.child({ component: 'status-listener' }),
    async (dead) => void (await recordDeadLetter(db, dead)),
  );
  statusListener.start();
  // Events of the operations feed that no message announces (a webhook endpoint disabled) wake it through NOTIFY.
  const adminEvents = new PgListener(
    db,
    ADMIN_EVENTS_CHANNEL,
    () => statusListener.notifyOperators(),
    logger.child({ component: 'admin-events-listener' }),
  );
  await adminEvents.start();
  const analyticsFeed = new AnalyticsFeed(db, logger.child({ component: 'analytics-feed' }));

  const box = await loadSecretBox(config, db);
  // Secrets written in plaintext before encryption at rest, or sealed by a previous SECRETS_KEY, are sealed anew.
  const resealed = (await resealWebhookSecrets(db, box)) + (await resealStoredKeys(db, box));
  if (resealed) logger.info({ resealed }, 'secrets sealed with the current secrets key');
  const keys = await KeyRing.start(config, db, box);
  const loginLimiter = new LoginLimiter(
    { db, redis, logger: logger.child({ component: 'login-limiter' }) },
    {
      maxFailures: config.LOGIN_MAX_FAILURES,
      ipMaxFailures: config.LOGIN_IP_MAX_FAILURES,
      windowSeconds: config.LOGIN_FAILURE_WINDOW_S,
    },
  );
  logger.info({ secrets_key: box.source, signing_key: keys.current().kid }, 'keys loaded');

  const app = createApp({
    config,
    db,
    redis,
    amqp,
    publisher,
    topology,
    logger: logger.child({ component: 'api' }),
    auth: createAuth(config, keys),
    keys,
    box,
    loginLimiter,
    hooks: [webhookDeliveriesHook],
    onOutboxWritten: () => relay?.kick(),
    statusListener,
    analyticsFeed,
  });
  const server = app.listen(options.port ?? config.PORT, config.HOST);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  server.keepAliveTimeout = 65_000;
  const connections = trackConnections(server);
  const { port } = server.address() as AddressInfo;
  const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? '127.0.0.1' : config.HOST;
  const url = `http://${host}:${port}`;
  logger.info({ url }, 'api listening');

  return {
    url,
    server,
    relay,
    publisher,
    statusListener,
    keys,
    async stop() {
      keys.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Open event streams would hold the server open forever: end them (clients reconnect elsewhere).
        statusListener.stop();
        void analyticsFeed.stop();
        connections.closeIdle();
      });
      await relay?.stop();
      await adminEvents.close();
      amqp.remove(publisher);
    },
  };
}
