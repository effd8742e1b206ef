/**
 * The sink's latency histogram (bench/bpf/bench_sink.c): bucket bounds, percentiles and CDF points.
 * Buckets are log-linear over nanoseconds: 0..15 one each, then 16 per power of two (about 6% wide),
 * the last one open-ended (2^40 ns and up). A percentile is reported as the upper bound of the bucket
 * it falls in, so it never understates.
 */

export const LATENCY_BUCKETS = 16 + 36 * 16;

/** Bucket of a latency in nanoseconds, as the sink computes it. */
export function latencyBucket(ns: number): number {
  if (ns < 16) return Math.max(0, Math.floor(ns));
  const e = Math.floor(Math.log2(ns));
  if (e >= 40) return LATENCY_BUCKETS - 1;
  return 16 + (e - 4) * 16 + (Math.floor(ns / 2 ** (e - 4)) & 15);
}

/** [lower, upper) bounds in nanoseconds of bucket `index`. */
export function bucketBounds(index: number): [number, number] {
  if (index < 16) return [index, index + 1];
  const e = 4 + Math.floor((index - 16) / 16);
  const sub = (index - 16) % 16;
  const width = 2 ** (e - 4);
  return [(16 + sub) * width, (17 + sub) * width];
}

/** Sparse histogram: [bucket, count] pairs for the non-empty buckets, ascending. */
export type Histogram = [number, number][];

export function sparseHistogram(counts: number[]): Histogram {
  const out: Histogram = [];
  counts.forEach((count, bucket) => {
    if (count > 0) out.push([bucket, count]);
  });
  return out;
}

export function histogramDelta(after: number[], before: number[]): number[] {
  return after.map((v, i) => v - (before[i] ?? 0));
}

export interface LatencySummary {
  samples: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
}

/** Upper bound (ns) of the bucket holding quantile q (0..1), or NaN for an empty histogram. */
export function quantileNs(histogram: Histogram, q: number): number {
  const total = histogram.reduce((sum, [, count]) => sum + count, 0);
  if (total === 0) return NaN;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (const [bucket, count] of histogram) {
    seen += count;
    if (seen >= rank) return bucketBounds(bucket)[1];
  }
  return bucketBounds(histogram[histogram.length - 1][0])[1];
}

export function summarize(histogram: Histogram): LatencySummary {
  const samples = histogram.reduce((sum, [, count]) => sum + count, 0);
  const us = (q: number) => +(quantileNs(histogram, q) / 1000).toFixed(2);
  return { samples, p50Us: us(0.5), p99Us: us(0.99), p999Us: us(0.999), maxUs: us(1) };
}

/** CDF points (upper bound in microseconds, fraction of samples at or below it). */
export function cdf(histogram: Histogram): [number, number][] {
  const total = histogram.reduce((sum, [, count]) => sum + count, 0);
  let seen = 0;
  return histogram.map(([bucket, count]) => {
    seen += count;
    return [bucketBounds(bucket)[1] / 1000, seen / total];
  });
}
