import test from 'ava';
import { histogramQuantile, percentile, summarize } from '../../bench/stats.ts';

test('when latencies are summarized, then percentiles are nearest-rank over the sorted values', (t) => {
  const values = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 … 1, unsorted on purpose

  const s = summarize(values);

  t.is(s.count, 100);
  t.is(s.p50, 50);
  t.is(s.p95, 95);
  t.is(s.p99, 99);
  t.is(s.max, 100);
  t.is(s.mean, 50.5);
  t.is(percentile(Float64Array.from([7]), 0.99), 7);
  t.true(Number.isNaN(summarize([]).p99));
});

test('when a quantile is read from histogram buckets, then it is interpolated inside its bucket as PromQL does', (t) => {
  const buckets = [
    { le: 0.1, count: 50 },
    { le: 0.5, count: 90 },
    { le: 1, count: 100 },
    { le: Infinity, count: 100 },
  ];

  t.is(histogramQuantile(0.5, buckets), 0.1);
  t.is(histogramQuantile(0.7, buckets), 0.1 + (0.4 * 20) / 40);
  t.is(histogramQuantile(0.95, buckets), 0.75);
  t.true(Number.isNaN(histogramQuantile(0.5, [{ le: Infinity, count: 0 }])));
});
