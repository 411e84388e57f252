// A distribution printed as bpftrace's hist() prints one (bpftrace src/output.cpp, hist): one line
// per power-of-two bucket from the lowest to the highest non-empty one, `[lo, hi)` with K/M/G for
// powers of 1024 (the label in 16 columns, the count in 8), and a bar of '@' scaled to the largest
// bucket: floor(count / max × 52).
import type { Pow2Bucket } from './distribution.js';

const BAR_WIDTH = 52;
const SUFFIXES = ['', 'K', 'M', 'G', 'T', 'P', 'E'];

/** 4096 → "4K", 3 → "3", 2^20 → "1M" (powers of two only, as the bucket bounds are). */
export function pow2Label(n: number): string {
  let i = 0;
  while (n >= 1024 && n % 1024 === 0 && i < SUFFIXES.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n}${SUFFIXES[i]}`;
}

/** The lines of the histogram of `buckets` (pow2Buckets), under a `@name:` header as bpftrace prints a map. */
export function histLines(name: string, buckets: Pow2Bucket[]): string[] {
  if (buckets.length === 0) return [`@${name}: (no samples)`];
  const top = Math.max(...buckets.map((b) => b.count));
  const lines = [`@${name}:`];
  for (const b of buckets) {
    const label = b.lo === 0 ? '[0]' : b.lo === 1 && b.hi === 2 ? '[1]' : `[${pow2Label(b.lo)}, ${pow2Label(b.hi)})`;
    const bar = '@'.repeat(Math.floor((b.count / top) * BAR_WIDTH));
    lines.push(`${label.padEnd(16)}${String(b.count).padStart(8)} |${bar.padEnd(BAR_WIDTH)}|`);
  }
  return lines;
}
