// A distribution of non-negative samples (latencies in ns, hold times, sizes) in bounded memory:
// exact while it has at most EXACT_SAMPLES_MAX samples (so small traces give exact percentiles),
// then log-linear buckets of 1/SUB_BUCKETS relative width (percentiles within 1/64 ≈ 1.6 %, as
// HdrHistogram does), plus the power-of-two buckets that bpftrace's hist() prints. Count, sum,
// min and max stay exact.

/** Samples kept exactly before switching to buckets. */
export const EXACT_SAMPLES_MAX = 1 << 16;
/** Log-linear buckets per power of two. */
const SUB_BUCKETS = 64;
/** Powers of two covered: values up to 2^64 (ns: 584 years). */
const OCTAVES = 64;

export class Distribution {
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;
  /** pow2[0] counts values below 1, pow2[1] = [1, 2), pow2[k] = [2^(k-1), 2^k). */
  readonly pow2 = new Float64Array(OCTAVES + 1);
  private exact: number[] | null = [];
  private sorted = true;
  private fine: Float64Array | null = null;
  private belowOne = 0;

  add(v: number): void {
    if (!(v >= 0) || !Number.isFinite(v)) return; // a negative or NaN sample is a bug upstream: not counted
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    this.pow2[pow2Index(v)]++;
    if (this.exact !== null) {
      if (this.exact.length > 0 && v < this.exact[this.exact.length - 1]) this.sorted = false;
      this.exact.push(v);
      if (this.exact.length > EXACT_SAMPLES_MAX) this.toBuckets();
      return;
    }
    this.bucket(v);
  }

  get mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count;
  }

  /** The q-quantile (0 < q <= 1), nearest rank; 0 when empty. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    if (this.exact !== null) {
      if (!this.sorted) {
        this.exact.sort((a, b) => a - b);
        this.sorted = true;
      }
      return this.exact[rank - 1];
    }
    let seen = this.belowOne;
    if (seen >= rank) return Math.min(this.max, 0);
    const fine = this.fine!;
    for (let i = 0; i < fine.length; i++) {
      seen += fine[i];
      if (seen >= rank) {
        const e = Math.floor(i / SUB_BUCKETS), sub = i % SUB_BUCKETS;
        const mid = 2 ** e * (1 + (sub + 0.5) / SUB_BUCKETS);
        return Math.min(this.max, Math.max(this.min, mid));
      }
    }
    return this.max;
  }

  /** The figures a report shows. */
  summary(): DistributionSummary {
    return {
      count: this.count,
      p50: this.quantile(0.5),
      p99: this.quantile(0.99),
      max: this.count === 0 ? 0 : this.max,
      mean: this.mean,
      sum: this.sum,
      exact: this.exact !== null,
    };
  }

  private toBuckets(): void {
    this.fine = new Float64Array(OCTAVES * SUB_BUCKETS);
    for (const v of this.exact!) this.bucket(v);
    this.exact = null;
  }

  private bucket(v: number): void {
    if (v < 1) {
      this.belowOne++;
      return;
    }
    const e = Math.min(OCTAVES - 1, Math.floor(Math.log2(v)));
    const sub = Math.min(SUB_BUCKETS - 1, Math.floor((v / 2 ** e - 1) * SUB_BUCKETS));
    this.fine![e * SUB_BUCKETS + sub]++;
  }
}

export interface DistributionSummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
  sum: number;
  /** Percentiles are exact (few enough samples), else within 1/64 of the value. */
  exact: boolean;
}

function pow2Index(v: number): number {
  if (v < 1) return 0;
  return Math.min(OCTAVES, Math.floor(Math.log2(v)) + 1);
}

/** A power-of-two bucket of a Distribution: [lo, hi), or [0] / [1] as bpftrace prints them. */
export interface Pow2Bucket {
  lo: number;
  hi: number;
  count: number;
}

/** The buckets from the lowest to the highest non-empty one, empty ones between included. */
export function pow2Buckets(d: Distribution): Pow2Bucket[] {
  let first = -1, last = -1;
  for (let i = 0; i < d.pow2.length; i++) {
    if (d.pow2[i] === 0) continue;
    if (first < 0) first = i;
    last = i;
  }
  const out: Pow2Bucket[] = [];
  for (let i = first; first >= 0 && i <= last; i++) {
    const lo = i === 0 ? 0 : 2 ** (i - 1);
    out.push({ lo, hi: i === 0 ? 1 : 2 ** i, count: d.pow2[i] });
  }
  return out;
}
