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

/** The median run of `reps` runs of `fn` (by `key`), each reported on `progress`. */
export async function medianOf<T extends Record<string, unknown>>(reps: number, progress: (line: string) => void, what: string, key: keyof T, fn: () => Promise<T>): Promise<T> {
  const runs: T[] = [];
  for (let i = 0; i < reps; i++) {
    runs.push(await fn());
    progress(`${what} #${i + 1}: ${JSON.stringify(runs[i])}`);
  }
  const m = median(runs.map((r) => r[key] as number));
  return runs.find((r) => r[key] === m)!;
}

/**
 * The median run of each case, its `reps` repetitions interleaved (every case once, then again…),
 * so that drift over the run (the JIT still warming, other load on the cores) falls on every case alike.
 */
export async function mediansInterleaved<T extends Record<string, unknown>>(
  reps: number,
  progress: (line: string) => void,
  what: string,
  key: keyof T,
  cases: readonly string[],
  fn: (c: string) => Promise<T>,
): Promise<Record<string, T>> {
  const runs = new Map<string, T[]>(cases.map((c) => [c, []]));
  for (let i = 0; i < reps; i++) {
    for (const c of cases) {
      const r = await fn(c);
      runs.get(c)!.push(r);
      progress(`${what} ${c} #${i + 1}: ${JSON.stringify(r)}`);
    }
  }
  const out: Record<string, T> = {};
  for (const [c, rs] of runs) {
    const m = median(rs.map((r) => r[key] as number));
    out[c] = rs.find((r) => r[key] === m)!;
  }
  return out;
}
