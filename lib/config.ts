import { z } from 'zod';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);

/**
 * Every setting comanda reads, with its default. The defaults work against the local services a developer
 * runs (PostgreSQL, RabbitMQ and Redis on 127.0.0.1); `.env.example` documents each key.
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

  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).default('postgres://postgres@127.0.0.1:5432/comanda'),
  DATABASE_POOL_MAX: int(1, 500).default(10),
  DATABASE_STATEMENT_TIMEOUT_MS: int(0).default(10_000),

  AMQP_URL: z.url({ protocol: /^amqps?$/ }).default('amqp://guest:guest@127.0.0.1:5672'),
  AMQP_PREFIX: z
    .string()
    .regex(/^[a-z0-9._-]*$/i, 'letters, digits, dot, dash or underscore')
    .default(''),
  AMQP_PREFETCH: int(1, 1000).default(20),
  AMQP_DELIVERY_LIMIT: int(1, 1000).default(10),

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

  IDEMPOTENCY_TTL_HOURS: int(1, 24 * 30).default(24),
  ORDER_MAX_ITEMS: int(1, 1000).default(50),
  ORDER_MAX_QUANTITY: int(1, 1_000_000).default(1000),

  PAYMENT_DECLINE_ABOVE: int(0).default(1_000_000),
  PAYMENT_LATENCY_MS: int(0, 60_000).default(0),

  RELAY_ENABLED: bool.default(true),
  RELAY_SWEEP_INTERVAL_MS: int(10, 600_000).default(1000),
  RELAY_BATCH_SIZE: int(1, 10_000).default(200),

  SHUTDOWN_GRACE_MS: int(0, 600_000).default(10_000),
  SEED_DEMO: bool.default(true),
});

type Raw = z.infer<typeof schema>;

export type Config = Omit<Raw, 'JWT_SECRET' | 'DEMO_LOGIN'> & {
  JWT_SECRET: string;
  DEMO_LOGIN: boolean;
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
  if (production && !raw.JWT_SECRET && !raw.JWT_JWKS_URL) {
    throw new ConfigError('Invalid configuration — JWT_SECRET: required when NODE_ENV=production');
  }
  return {
    ...raw,
    JWT_SECRET: raw.JWT_SECRET ?? DEV_JWT_SECRET,
    DEMO_LOGIN: raw.DEMO_LOGIN ?? !production,
  };
}
