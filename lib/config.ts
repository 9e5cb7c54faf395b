import { existsSync } from 'node:fs';
import { z } from 'zod';
import { parseSecretsKey } from './secret-box.ts';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);

/** Where PostgreSQL's packages for Debian and most Linux distributions put its Unix socket. */
export const LOCAL_POSTGRES_SOCKET = '/var/run/postgresql/.s.PGSQL.5432';

/**
 * The database comanda uses when DATABASE_URL is not set: the local server's `comanda` database, through its Unix
 * socket when there is one, otherwise over TCP on 127.0.0.1. On one machine a round trip through the socket costs
 * PostgreSQL and comanda noticeably less CPU than through TCP over loopback (docs/performance.md).
 */
export function defaultDatabaseUrl(socketExists = existsSync(LOCAL_POSTGRES_SOCKET)): string {
  return socketExists
    ? `postgres://postgres@${encodeURIComponent(LOCAL_POSTGRES_SOCKET.replace(/\/[^/]+$/, ''))}/comanda`
    : 'postgres://postgres@127.0.0.1:5432/comanda';
}

/**
 * The webhook events an endpoint may subscribe to: the order lifecycle's and the catalogue's (a test keeps this list
 * equal to webhooks/event-types.ts).
 */
export const WEBHOOK_EVENT_NAMES = [
  'order.created',
  'order.confirmed',
  'order.rejected',
  'order.awaiting_payment',
  'order.processing',
  'order.shipped',
  'order.delivered',
  'order.cancelled',
  'order.refunded',
  'product.created',
  'product.updated',
  'inventory.updated',
  'inventory.low_stock',
  'inventory.back_in_stock',
] as const;

/**
 * Every setting comanda reads, with its default. The defaults work against the local services a developer
 * runs (PostgreSQL, RabbitMQ and Redis on this machine); `.env.example` documents each key.
 */
const schema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  HOST: z.string().min(1).default('0.0.0.0'),
  PORT: int(0, 65535).default(3000),
  BODY_LIMIT: z
    .string()
    .regex(/^\d+(b|kb|mb)$/i, 'a size such as 64kb')
    .default('64kb'),

  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).default(defaultDatabaseUrl),
  DATABASE_POOL_MAX: int(1, 500).default(10),
  DATABASE_PREPARED_STATEMENTS: bool.default(true),
  /** BEGIN sent with a transaction's first statement and COMMIT with its last (lib/db.ts). */
  DATABASE_PIPELINE: bool.default(true),
  DATABASE_STATEMENT_TIMEOUT_MS: int(0).default(10_000),
  /**
   * The most new orders an API instance commits in one transaction (group commit: lib/group-commit.ts). Orders that
   * arrive while one is being committed share the next; 1: each order has a transaction of its own.
   */
  ORDERS_GROUP_COMMIT_MAX: int(1, 500).default(32),
  /** How long a request waits for a free connection before it is answered 503 instead of queueing on. */
  DATABASE_ACQUIRE_TIMEOUT_MS: int(50, 60_000).default(2000),

  AMQP_URL: z.url({ protocol: /^amqps?$/ }).default('amqp://guest:guest@127.0.0.1:5672'),
  AMQP_PREFIX: z
    .string()
    .regex(/^[a-z0-9._-]*$/i, 'letters, digits, dot, dash or underscore')
    .default(''),
  // At most the pool size, or handlers would queue for connections instead of in the broker.
  AMQP_PREFETCH: int(1, 1000).default(100),
  AMQP_DELIVERY_LIMIT: int(1, 1000).default(10),
  RETRY_DELAYS: z
    .string()
    .default('1s,5s,30s,2m')
    .transform((text, ctx) => {
      const delays = text.split(',').map((d) => parseDuration(d.trim()));
      if (delays.length > 20 || delays.some((d) => d === undefined || d < 1)) {
        ctx.addIssue({
          code: 'custom',
          message: 'a comma-separated list of up to 20 delays such as 1s,5s,30s,2m',
        });
        return z.NEVER;
      }
      return delays as number[];
    }),

  REDIS_URL: z.url({ protocol: /^rediss?$/ }).default('redis://127.0.0.1:6379'),
  REDIS_KEY_PREFIX: z.string().default('comanda:'),

  JWT_SECRET: z.string().min(32, 'at least 32 characters').optional(),
  JWT_ISSUER: z.string().min(1).default('comanda'),
  JWT_AUDIENCE: z.string().min(1).default('comanda-api'),
  JWT_ALGORITHMS: z
    .string()
    .default('HS256')
    .transform((s) => s.split(',').map((a) => a.trim()))
    .pipe(z.array(z.enum(['HS256', 'HS384', 'HS512', 'RS256', 'ES256', 'EdDSA'])).min(1)),
  JWT_JWKS_URL: z.url().optional(),
  JWT_CLOCK_TOLERANCE_S: int(0, 300).default(5),
  DEMO_LOGIN: bool.optional(),
  DEMO_TOKEN_TTL_S: int(30, 86_400).default(3600),
  /** Algorithm of the keys comanda generates to sign its own access tokens. */
  JWT_SIGNING_ALG: z.enum(['ES256', 'EdDSA']).default('ES256'),
  /** Signing keys from configuration: one PKCS#8 PEM, or a JSON array of private JWKs (the first signs). */
  JWT_SIGNING_KEYS: z.string().min(1).optional(),
  /** How often an API instance re-reads the signing keys kept in the database (a rotation elsewhere). */
  JWT_KEYS_REFRESH_S: int(1, 86_400).default(60),
  ACCESS_TOKEN_TTL_S: int(30, 86_400).default(900),
  REFRESH_TOKEN_TTL_S: int(60, 365 * 86_400).default(30 * 86_400),
  /** log2 of scrypt's cost N; OWASP recommends at least 17 (with r=8, p=1). */
  PASSWORD_SCRYPT_LOG_N: int(14, 20).default(17),
  LOGIN_MAX_FAILURES: int(1, 1000).default(5),
  LOGIN_IP_MAX_FAILURES: int(1, 100_000).default(100),
  LOGIN_FAILURE_WINDOW_S: int(1, 86_400).default(900),
  SECRETS_KEY: z
    .string()
    .optional()
    .transform((text, ctx) => {
      if (text === undefined) return undefined;
      const key = parseSecretsKey(text);
      if (!key) ctx.addIssue({ code: 'custom', message: '32 bytes in base64 (openssl rand -base64 32)' });
      return key;
    }),
  SECRETS_PREVIOUS_KEYS: z
    .string()
    .default('')
    .transform((text, ctx) => {
      const keys = text
        .split(',')
        .filter((k) => k.trim())
        .map(parseSecretsKey);
      if (keys.some((k) => !k)) {
        ctx.addIssue({ code: 'custom', message: 'a comma-separated list of 32-byte base64 keys' });
        return z.NEVER;
      }
      return keys as Buffer[];
    }),

  IDEMPOTENCY_TTL_HOURS: int(1, 24 * 30).default(24),
  ORDER_MAX_ITEMS: int(1, 1000).default(50),
  ORDER_MAX_QUANTITY: int(1, 1_000_000).default(1000),

  /** Available stock below this is low (inventory.low_stock), for products created without a threshold. */
  LOW_STOCK_THRESHOLD: int(0, 1_000_000_000).default(10),
  /** Largest CSV file POST /products/import accepts (bytes). */
  IMPORT_MAX_BYTES: int(1024, 1_000_000_000).default(10_000_000),

  PAYMENT_DECLINE_ABOVE: int(0).default(1_000_000),
  PAYMENT_LATENCY_MS: int(0, 60_000).default(0),
  PAYMENT_WINDOW_S: int(1, 30 * 86_400).default(900),
  PAYMENT_SWEEP_INTERVAL_MS: int(10, 600_000).default(5000),

  /** How long analytics waits before reading the feed again once it has counted everything there (ADR 0016). */
  ANALYTICS_BATCH_WAIT_MS: int(0, 60_000).default(200),
  /** Most feed rows one analytics batch reads (one transaction); a full batch is followed by the next at once. */
  ANALYTICS_BATCH_MAX: int(1, 100_000).default(5000),

  RELAY_ENABLED: bool.default(true),
  RELAY_SWEEP_INTERVAL_MS: int(10, 600_000).default(1000),
  RELAY_BATCH_SIZE: int(1, 10_000).default(200),
  RELAY_COALESCE_MS: int(0, 1000).default(50),
  OUTBOX_RETENTION_HOURS: int(1, 24 * 365).default(72),
  WEBHOOK_DELIVERY_RETENTION_HOURS: int(1, 24 * 3650).default(24 * 30),
  HOUSEKEEPING_INTERVAL_MS: int(1000, 86_400_000).default(60_000),

  SHUTDOWN_GRACE_MS: int(0, 600_000).default(10_000),
  SEED_DEMO: bool.default(true),
  WORKERS: int(1, 64).optional(),
  METRICS_PORT: int(0, 65535).optional(),
  // Read by the OpenTelemetry SDK itself (lib/telemetry-register.ts), which also honours the other standard
  // OTEL_* variables; here so that a bad URL stops the process with a clear message.
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
  OTEL_SERVICE_NAME: z.string().min(1).optional(),

  WEBHOOK_RETRY_SCHEDULE: z
    .string()
    .default('0s,5s,5m,30m,2h,5h,10h,10h')
    .transform((s, ctx) => {
      const delays = s.split(',').map((d) => parseDuration(d.trim()));
      if (delays.some((d) => d === undefined) || delays.length > 50 || delays[0] !== 0) {
        // The first attempt goes out as soon as the delivery exists, so the list starts with 0s.
        ctx.addIssue({
          code: 'custom',
          message: 'a comma-separated list of up to 50 delays starting with 0s, such as 0s,5s,5m,2h',
        });
        return z.NEVER;
      }
      return delays as number[];
    }),
  WEBHOOK_RETRY_JITTER: z.coerce.number().min(0).max(1).default(0.2),
  WEBHOOK_TIMEOUT_MS: int(100, 300_000).default(15_000),
  WEBHOOK_LEASE_GRACE_MS: int(100, 3_600_000).default(5000),
  WEBHOOK_ALLOW_PRIVATE_URLS: bool.optional(),
  WEBHOOK_POLL_INTERVAL_MS: int(10, 600_000).default(500),
  WEBHOOK_CONCURRENCY: int(1, 1000).default(50),
  WEBHOOK_SECRET_OVERLAP_HOURS: int(0, 24 * 30).default(24),
  OPS_WEBHOOK_URL: z.url({ protocol: /^https?$/ }).optional(),
  OPS_WEBHOOK_SECRET: z
    .string()
    .regex(/^whsec_[A-Za-z0-9+/]{32,}={0,2}$/, 'whsec_ followed by at least 24 base64-encoded bytes')
    .optional(),
  OPS_WEBHOOK_EVENT_TYPES: z
    .string()
    .default('order.created,order.confirmed,order.rejected')
    .transform((s) => s.split(',').map((t) => t.trim()))
    .pipe(z.array(z.enum(WEBHOOK_EVENT_NAMES)).min(1)),
});

const DURATION_UNITS_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `500ms`, `5s`, `30m`, `2h`, `1d` (or a bare number of milliseconds) → milliseconds; undefined when unreadable. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text);
  if (!match) return undefined;
  return Math.round(
    Number(match[1]) * DURATION_UNITS_MS[(match[2] ?? 'ms') as keyof typeof DURATION_UNITS_MS],
  );
}

/** The name of every setting the schema accepts (what `.env.example` must document). */
export const CONFIG_KEYS = Object.keys(schema.shape) as readonly (keyof typeof schema.shape)[];

type Raw = z.infer<typeof schema>;

export type Config = Omit<Raw, 'JWT_SECRET' | 'DEMO_LOGIN' | 'WEBHOOK_ALLOW_PRIVATE_URLS'> & {
  JWT_SECRET: string;
  /** Whether JWT_SECRET was set (rather than the development default). */
  JWT_SECRET_CONFIGURED: boolean;
  DEMO_LOGIN: boolean;
  WEBHOOK_ALLOW_PRIVATE_URLS: boolean;
};

/** Thrown at start when the environment holds a setting comanda cannot use; its message names every bad key. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
}

const DEV_JWT_SECRET = 'comanda-development-secret-change-me-0123456789';

/**
 * Reads and validates the configuration from `env` (process.env by default). Empty strings count as unset,
 * so `PORT=` in a .env file falls back to the default rather than failing.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid configuration — ${lines.join('; ')}`);
  }
  const raw = parsed.data;
  const production = raw.NODE_ENV === 'production';
  if (raw.OPS_WEBHOOK_URL && !raw.OPS_WEBHOOK_SECRET) {
    throw new ConfigError(
      'Invalid configuration — OPS_WEBHOOK_SECRET: required with OPS_WEBHOOK_URL (whsec_ and base64 bytes)',
    );
  }
  // Secrets at rest need a key that is not in the database: SECRETS_KEY, or one derived from JWT_SECRET.
  if (production && !raw.JWT_SECRET && !raw.SECRETS_KEY) {
    throw new ConfigError(
      'Invalid configuration — JWT_SECRET or SECRETS_KEY: one is required when NODE_ENV=production',
    );
  }
  return {
    ...raw,
    JWT_SECRET: raw.JWT_SECRET ?? DEV_JWT_SECRET,
    JWT_SECRET_CONFIGURED: raw.JWT_SECRET !== undefined,
    DEMO_LOGIN: raw.DEMO_LOGIN ?? !production,
    WEBHOOK_ALLOW_PRIVATE_URLS: raw.WEBHOOK_ALLOW_PRIVATE_URLS ?? !production,
  };
}
