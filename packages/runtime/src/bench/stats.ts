// Small statistics helpers for the bench: percentiles of latency samples and medians of repeats.

/** Nearest-rank percentile (p in [0, 100]) of samples; the input is not modified. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Round trip samples in ns -> p50 / p99 in µs (what the report prints). */
export function rttUs(samplesNs: readonly number[]): { rttUsP50: number; rttUsP99: number } {
  return { rttUsP50: round(percentile(samplesNs, 50) / 1e3, 1), rttUsP99: round(percentile(samplesNs, 99) / 1e3, 1) };
}

export function round(x: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
