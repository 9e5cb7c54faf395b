/**
 * The analytics model as data: time buckets, metrics and the histogram of RECEIVED → outcome times. Everything
 * stored is an additive figure (a count, an amount in minor units, a histogram bin's count) per bucket, currency
 * and optional dimension, so figures of any range are sums of rows, whatever order the events were counted in.
 */

export const GRANULARITIES = ['minute', 'hour', 'day'] as const;
export type Granularity = (typeof GRANULARITIES)[number];

export const GRANULARITY_MS: Record<Granularity, number> = {
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
};

/** The start of the UTC bucket of `granularity` that holds `at`. */
export function bucketOf(at: Date, granularity: Granularity): Date {
  const size = GRANULARITY_MS[granularity];
  return new Date(Math.floor(at.getTime() / size) * size);
}

/** What the rollups store. `dim` is the reason, product id or histogram bin for the metrics that have one. */
export const STORED_METRICS = [
  'received',
  'confirmed',
  'rejected', // dim: reason
  'cancelled', // dim: reason
  'shipped',
  'delivered',
  'gross_revenue', // totals of orders confirmed in the bucket
  'refunds', // amounts refunded in the bucket
  'refund_count',
  'product_units', // dim: product id, of orders confirmed in the bucket
  'product_revenue', // dim: product id
  'outcome_time', // dim: histogram bin (upper bound in ms, or 'inf'); counted in the bucket of the outcome
] as const;
export type StoredMetric = (typeof STORED_METRICS)[number];

/**
 * Upper bounds (ms) of the bins of RECEIVED → outcome. Percentiles are read as the upper bound of the bin that
 * holds them: exact to the bin, identical however the events arrived, and cheap to sum over any range.
 */
export const OUTCOME_BINS_MS = [
  10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000,
  3_600_000, 21_600_000, 86_400_000,
] as const;

export function outcomeBin(ms: number): string {
  const bound = OUTCOME_BINS_MS.find((b) => ms <= b);
  return bound === undefined ? 'inf' : String(bound);
}

/**
 * The `q` quantile of a histogram (bin → count) as the upper bound of the bin where the cumulative count first
 * reaches ceil(q·n); null when empty or when it falls in the open last bin.
 */
export function quantileOf(bins: Map<string, number>, q: number): number | null {
  const n = [...bins.values()].reduce((a, b) => a + b, 0);
  if (n === 0) return null;
  const rank = Math.max(1, Math.ceil(q * n));
  let seen = 0;
  for (const bound of OUTCOME_BINS_MS) {
    seen += bins.get(String(bound)) ?? 0;
    if (seen >= rank) return bound;
  }
  return null;
}
