// Percentiles and maxima of lists of samples, for the figures of a summary: the GPU's submit
// latencies and invalidate waits (gpu-actor.ts), svm-fault's fault latencies (svm-fault-handler.ts).

/** The p-th percentile (0 < p <= 100) of xs by nearest rank; 0 for no samples. xs is not changed. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

/** The largest sample; 0 for none. A loop, not Math.max(...xs): a summary may hold more samples than a call has arguments. */
export function maxOf(xs: number[]): number {
  let m = 0;
  for (const x of xs) if (x > m) m = x;
  return m;
}
