import Router from '@koa/router';
import type { Next } from 'koa';
import { z } from 'zod';
import { GRANULARITIES, GRANULARITY_MS } from '../../analytics/model.ts';
import {
  bucketCount,
  newestCounted,
  SERIES_METRICS,
  summarize,
  timeseries,
  topProducts,
  type Range,
} from '../../analytics/queries.ts';
import { ForbiddenError, ValidationError } from '../../lib/errors.ts';
import type { AnalyticsFeed } from '../analytics-feed.ts';
import { requireAuth, type ApiContext, type ApiDeps, type ApiState } from '../context.ts';
import { parseInput } from '../validation.ts';
import { createStreamTokens, streamPrincipal } from './stream.ts';

export interface AnalyticsDeps {
  analyticsFeed: AnalyticsFeed;
}

/** The most buckets one time series answers with. */
export const MAX_BUCKETS = 10_000;
const DAY_MS = 86_400_000;

const instant = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/, {
    message: 'must be an ISO 8601 date or time, such as 2026-12-01T10:00:00Z',
  })
  .transform((s, ctx) => {
    const at = new Date(/T/.test(s) && !/(Z|[+-]\d{2}:?\d{2})$/.test(s) ? `${s}Z` : s);
    if (Number.isNaN(at.getTime())) {
      ctx.addIssue({ code: 'custom', message: 'is not a valid date or time' });
      return z.NEVER;
    }
    return at;
  });

const currency = z
  .string()
  .regex(/^[A-Z]{3}$/, { message: 'must be a currency code such as EUR' })
  .optional();

const rangeFields = { from: instant.optional(), to: instant.optional(), currency };

export const summaryQuery = z.strictObject(rangeFields);
export const timeseriesQuery = z.strictObject({
  ...rangeFields,
  metric: z.enum(SERIES_METRICS, { message: `must be one of ${SERIES_METRICS.join(', ')}` }),
  granularity: z.enum(GRANULARITIES, { message: 'must be minute, hour or day' }).default('minute'),
});
export const topProductsQuery = z.strictObject({
  ...rangeFields,
  by: z.enum(['units', 'revenue'], { message: 'must be units or revenue' }).default('units'),
  limit: z.coerce
    .number({ message: 'must be a whole number from 1 to 100' })
    .int({ message: 'must be a whole number from 1 to 100' })
    .min(1, { message: 'must be a whole number from 1 to 100' })
    .max(100, { message: 'must be a whole number from 1 to 100' })
    .default(10),
});

function query<S extends z.ZodType>(schema: S, ctx: ApiContext): z.infer<S> {
  try {
    return parseInput(schema, { ...ctx.query }, 'query');
  } catch (err) {
    // Bad query parameters are a malformed request (400), as the API's contract for analytics says.
    if (err instanceof ValidationError) throw new ValidationError(err.message, err.errors, 400);
    throw err;
  }
}

/**
 * [from, to) in whole minutes: `to` defaults to now (rounded up to the minute), `from` to `defaultSpanMs` before
 * it. `from` must come before `to`.
 */
function rangeOf(q: { from?: Date | undefined; to?: Date | undefined }, defaultSpanMs: number): Range {
  const minute = GRANULARITY_MS.minute;
  const to = new Date(Math.ceil((q.to ?? new Date()).getTime() / minute) * minute);
  const from = new Date(
    Math.floor((q.from ?? new Date(to.getTime() - defaultSpanMs)).getTime() / minute) * minute,
  );
  if (from >= to) {
    throw new ValidationError(
      'from must be before to',
      [{ field: 'from', message: `must be before to (${to.toISOString()})` }],
      400,
    );
  }
  return { from, to };
}

function requireAnalyticsReader(ctx: ApiContext, next: Next): Promise<void> {
  const { principal } = ctx.state;
  if (!principal.admin && !(principal.roles as string[]).includes('operations')) {
    throw new ForbiddenError('Analytics are for admin and operations users');
  }
  return next();
}

/**
 * The business figures (admin and operations): a summary of a range, one figure over time, the best-selling
 * products, and a live stream telling dashboards when the figures changed. Every answer is read from the
 * analytics rollups alone, so it costs the same however many orders there are (docs/analytics.md).
 */
export function analyticsRouter(deps: ApiDeps & AnalyticsDeps): Router<ApiState> {
  const router = new Router<ApiState>({ prefix: '/analytics' });
  const reader = [requireAuth(deps.auth), requireAnalyticsReader] as const;
  const streamTokens = createStreamTokens(deps.config);

  router.get('/summary', ...reader, async (ctx: ApiContext) => {
    const q = query(summaryQuery, ctx);
    const range = rangeOf(q, DAY_MS);
    const [data, asOf] = await Promise.all([summarize(deps.db, range, q.currency), newestCounted(deps.db)]);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { from: range.from, to: range.to, as_of: asOf, data };
  });

  router.get('/timeseries', ...reader, async (ctx: ApiContext) => {
    const q = query(timeseriesQuery, ctx);
    const size = GRANULARITY_MS[q.granularity];
    const range = rangeOf(q, Math.min(MAX_BUCKETS, 60) * size);
    const buckets = bucketCount(range, q.granularity);
    if (buckets > MAX_BUCKETS) {
      throw new ValidationError(
        `The range holds ${buckets} ${q.granularity} buckets; at most ${MAX_BUCKETS}`,
        [{ field: 'from', message: `at most ${MAX_BUCKETS} ${q.granularity} buckets before to` }],
        400,
      );
    }
    const series = await timeseries(deps.db, q.metric, q.granularity, range, q.currency);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { metric: q.metric, granularity: q.granularity, from: range.from, to: range.to, series };
  });

  router.get('/top-products', ...reader, async (ctx: ApiContext) => {
    const q = query(topProductsQuery, ctx);
    const range = rangeOf(q, DAY_MS);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      by: q.by,
      from: range.from,
      to: range.to,
      data: await topProducts(deps.db, q.by, q.limit, range, q.currency),
    };
  });

  // EventSource cannot send headers: like the order streams, this takes a stream token as access_token.
  router.get('/stream', async (ctx: ApiContext, next: Next) => {
    await streamPrincipal(ctx, deps.auth, streamTokens);
    await requireAnalyticsReader(ctx, next);
    deps.analyticsFeed.open(ctx);
  });

  return router;
}
