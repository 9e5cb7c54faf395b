import type { Db, Knex } from '../lib/db.ts';
import { GRANULARITY_MS, quantileOf, type Granularity, type StoredMetric } from './model.ts';

/** Figures a time series can show: stored ones, and ones derived from them bucket by bucket. */
export const SERIES_METRICS = [
  'received',
  'confirmed',
  'rejected',
  'cancelled',
  'shipped',
  'delivered',
  'gross_revenue',
  'refunds',
  'net_revenue',
  'average_order_value',
  'conversion',
  'outcome_p50_ms',
  'outcome_p95_ms',
] as const;
export type SeriesMetric = (typeof SERIES_METRICS)[number];

/** The stored metrics each series metric is computed from. */
const SOURCES: Record<SeriesMetric, StoredMetric[]> = {
  received: ['received'],
  confirmed: ['confirmed'],
  rejected: ['rejected'],
  cancelled: ['cancelled'],
  shipped: ['shipped'],
  delivered: ['delivered'],
  gross_revenue: ['gross_revenue'],
  refunds: ['refunds'],
  net_revenue: ['gross_revenue', 'refunds'],
  average_order_value: ['gross_revenue', 'confirmed'],
  conversion: ['confirmed', 'received'],
  outcome_p50_ms: ['outcome_time'],
  outcome_p95_ms: ['outcome_time'],
};

const SUMMARY_METRICS: StoredMetric[] = [
  'received',
  'confirmed',
  'rejected',
  'cancelled',
  'shipped',
  'delivered',
  'gross_revenue',
  'refunds',
  'refund_count',
  'outcome_time',
];

export interface Range {
  from: Date;
  to: Date;
}

interface Segment extends Range {
  granularity: Granularity;
}

const FINER: Record<Granularity, Granularity | undefined> = {
  day: 'hour',
  hour: 'minute',
  minute: undefined,
};

/**
 * Covers [from, to) (whole minutes) with as few rollup rows as possible: whole days in the middle, whole hours
 * around them, minutes at the edges. A year's summary reads a few hundred rows per metric, not half a million.
 */
export function coverRange(from: Date, to: Date, granularity: Granularity = 'day'): Segment[] {
  if (from >= to) return [];
  const finer = FINER[granularity];
  if (!finer) return [{ granularity, from, to }];
  const size = GRANULARITY_MS[granularity];
  const start = Math.ceil(from.getTime() / size) * size;
  const end = Math.floor(to.getTime() / size) * size;
  if (start >= end) return coverRange(from, to, finer);
  return [
    ...coverRange(from, new Date(start), finer),
    { granularity, from: new Date(start), to: new Date(end) },
    ...coverRange(new Date(end), to, finer),
  ];
}

function rowsIn(segments: Segment[], metrics: StoredMetric[], currency?: string) {
  return (q: Knex.QueryBuilder) => {
    q.whereIn('metric', metrics);
    if (currency) q.where('currency', currency);
    q.where((w) => {
      for (const s of segments) {
        w.orWhere((one) => {
          void one
            .where('granularity', s.granularity)
            .where('bucket', '>=', s.from)
            .where('bucket', '<', s.to);
        });
      }
    });
  };
}

interface SumRow {
  currency: string;
  metric: StoredMetric;
  dim: string;
  value: number;
}

export interface CurrencySummary {
  currency: string;
  received: number;
  confirmed: number;
  rejected: { total: number; by_reason: Record<string, number> };
  cancelled: { total: number; by_reason: Record<string, number> };
  shipped: number;
  delivered: number;
  gross_revenue: number;
  refunds: number;
  refund_count: number;
  net_revenue: number;
  /** Gross revenue / confirmed orders, rounded to a whole minor unit; null without confirmed orders. */
  average_order_value: number | null;
  /** Confirmed / received, null without received orders. */
  conversion: number | null;
  received_to_outcome: { count: number; p50_ms: number | null; p95_ms: number | null };
}

/** Every figure for [from, to), one entry per currency. */
export async function summarize(db: Db, range: Range, currency?: string): Promise<CurrencySummary[]> {
  const segments = coverRange(range.from, range.to);
  if (!segments.length) return [];
  const rows = await db('analytics_rollups')
    .modify(rowsIn(segments, SUMMARY_METRICS, currency))
    .groupBy('currency', 'metric', 'dim')
    .select<SumRow[]>('currency', 'metric', 'dim', db.raw('sum(value)::bigint as value'));
  const byCurrency = new Map<string, SumRow[]>();
  for (const r of rows) byCurrency.set(r.currency, [...(byCurrency.get(r.currency) ?? []), r]);
  return [...byCurrency.keys()].sort().map((c) => summaryOf(c, byCurrency.get(c)!));
}

function summaryOf(currency: string, rows: SumRow[]): CurrencySummary {
  const total = (metric: StoredMetric) =>
    rows.filter((r) => r.metric === metric).reduce((sum, r) => sum + r.value, 0);
  const byDim = (metric: StoredMetric) =>
    Object.fromEntries(
      rows
        .filter((r) => r.metric === metric && r.value !== 0)
        .sort((a, b) => b.value - a.value || a.dim.localeCompare(b.dim))
        .map((r) => [r.dim, r.value]),
    );
  const bins = new Map(rows.filter((r) => r.metric === 'outcome_time').map((r) => [r.dim, r.value]));
  const received = total('received');
  const confirmed = total('confirmed');
  const gross = total('gross_revenue');
  const refunds = total('refunds');
  return {
    currency,
    received,
    confirmed,
    rejected: { total: total('rejected'), by_reason: byDim('rejected') },
    cancelled: { total: total('cancelled'), by_reason: byDim('cancelled') },
    shipped: total('shipped'),
    delivered: total('delivered'),
    gross_revenue: gross,
    refunds,
    refund_count: total('refund_count'),
    net_revenue: gross - refunds,
    average_order_value: confirmed ? Math.round(gross / confirmed) : null,
    conversion: received ? confirmed / received : null,
    received_to_outcome: {
      count: total('outcome_time'),
      p50_ms: quantileOf(bins, 0.5),
      p95_ms: quantileOf(bins, 0.95),
    },
  };
}

export interface Series {
  currency: string;
  points: { t: string; v: number | null }[];
}

/** How many buckets of `granularity` [from, to) spans, counting the partial first and last ones. */
export function bucketCount(range: Range, granularity: Granularity): number {
  const size = GRANULARITY_MS[granularity];
  return Math.ceil(range.to.getTime() / size) - Math.floor(range.from.getTime() / size);
}

/** One point per bucket of [from, to) (zeros included), per currency; derived metrics bucket by bucket. */
export async function timeseries(
  db: Db,
  metric: SeriesMetric,
  granularity: Granularity,
  range: Range,
  currency?: string,
): Promise<Series[]> {
  const size = GRANULARITY_MS[granularity];
  const first = Math.floor(range.from.getTime() / size) * size;
  const end = Math.ceil(range.to.getTime() / size) * size;
  const rows = await db('analytics_rollups')
    .modify(rowsIn([{ granularity, from: new Date(first), to: new Date(end) }], SOURCES[metric], currency))
    .groupBy('currency', 'bucket', 'metric', 'dim')
    .select<(SumRow & { bucket: Date })[]>(
      'currency',
      'bucket',
      'metric',
      'dim',
      db.raw('sum(value)::bigint as value'),
    );
  const cells = new Map<string, Map<number, SumRow[]>>();
  for (const r of rows) {
    const perBucket = cells.get(r.currency) ?? new Map<number, SumRow[]>();
    const at = r.bucket.getTime();
    perBucket.set(at, [...(perBucket.get(at) ?? []), r]);
    cells.set(r.currency, perBucket);
  }
  const currencies = [...cells.keys()].sort();
  return currencies.map((c) => {
    const perBucket = cells.get(c)!;
    const points: Series['points'] = [];
    for (let at = first; at < end; at += size) {
      points.push({ t: new Date(at).toISOString(), v: valueOf(metric, perBucket.get(at) ?? []) });
    }
    return { currency: c, points };
  });
}

function valueOf(metric: SeriesMetric, rows: SumRow[]): number | null {
  const total = (m: StoredMetric) => rows.filter((r) => r.metric === m).reduce((s, r) => s + r.value, 0);
  switch (metric) {
    case 'net_revenue':
      return total('gross_revenue') - total('refunds');
    case 'average_order_value':
      return total('confirmed') ? Math.round(total('gross_revenue') / total('confirmed')) : null;
    case 'conversion':
      return total('received') ? total('confirmed') / total('received') : null;
    case 'outcome_p50_ms':
    case 'outcome_p95_ms': {
      const bins = new Map(rows.map((r) => [r.dim, r.value]));
      return quantileOf(bins, metric === 'outcome_p50_ms' ? 0.5 : 0.95);
    }
    case 'received':
    case 'confirmed':
    case 'rejected':
    case 'cancelled':
    case 'shipped':
    case 'delivered':
    case 'gross_revenue':
    case 'refunds':
      return total(metric);
  }
}

export interface TopProduct {
  product_id: string;
  sku: string | null;
  name: string | null;
  currency: string;
  units: number;
  revenue: number;
}

/** The best-selling products of confirmed orders in [from, to), by units or revenue. */
export async function topProducts(
  db: Db,
  by: 'units' | 'revenue',
  limit: number,
  range: Range,
  currency?: string,
): Promise<TopProduct[]> {
  const segments = coverRange(range.from, range.to);
  if (!segments.length) return [];
  const sums = db('analytics_rollups')
    .modify(rowsIn(segments, ['product_units', 'product_revenue'], currency))
    .groupBy('currency', 'dim')
    .select(
      'currency',
      'dim',
      db.raw("sum(value) filter (where metric = 'product_units')::bigint as units"),
      db.raw("sum(value) filter (where metric = 'product_revenue')::bigint as revenue"),
    );
  return db
    .with('sums', sums)
    .from('sums as s')
    .leftJoin('analytics_products as p', (j) => j.on(db.raw('p.product_id::text = s.dim')))
    .orderBy([
      { column: by, order: 'desc' },
      { column: 's.dim', order: 'asc' },
    ])
    .limit(limit)
    .select<TopProduct[]>(
      's.dim as product_id',
      'p.sku',
      'p.name',
      's.currency',
      db.raw('coalesce(s.units, 0)::bigint as units'),
      db.raw('coalesce(s.revenue, 0)::bigint as revenue'),
    );
}

/** The time of the newest order event counted (what the figures are up to date with), or null. */
export async function newestCounted(db: Db): Promise<Date | null> {
  const row = await db('analytics_progress').first<{ newest_event_at: Date | null } | undefined>(
    'newest_event_at',
  );
  return row?.newest_event_at ?? null;
}
