// A time series in bounded memory, for plots: at most 2 × `maxPoints` points, however many samples.
// When full, neighbouring points are merged in pairs and each new point then stands for twice as
// many samples (so the series stays evenly thinned). A merged point keeps the larger value (`max`:
// a wait must not vanish from a plot) or the later one (`last`: a counter's level).
export type SeriesMode = 'max' | 'last';

export class Series {
  readonly t: number[] = [];
  readonly v: number[] = [];
  private stride = 1;
  private pending = 0;
  private pendingT = 0;
  private pendingV = 0;

  constructor(
    readonly mode: SeriesMode,
    readonly maxPoints = 2048,
  ) {}

  add(t: number, v: number): void {
    if (this.pending === 0 || this.mode === 'last' || v > this.pendingV) {
      this.pendingT = t;
      this.pendingV = v;
    }
    if (++this.pending < this.stride) return;
    this.push();
  }

  /** The points, the last partial one included. */
  points(): { t: number[]; v: number[] } {
    if (this.pending === 0) return { t: this.t, v: this.v };
    return { t: [...this.t, this.pendingT], v: [...this.v, this.pendingV] };
  }

  private push(): void {
    this.t.push(this.pendingT);
    this.v.push(this.pendingV);
    this.pending = 0;
    if (this.t.length < 2 * this.maxPoints) return;
    const n = this.t.length >> 1;
    for (let i = 0; i < n; i++) {
      const a = 2 * i, b = a + 1;
      const takeB = this.mode === 'last' || this.v[b] > this.v[a];
      this.t[i] = takeB ? this.t[b] : this.t[a];
      this.v[i] = takeB ? this.v[b] : this.v[a];
    }
    this.t.length = n;
    this.v.length = n;
    this.stride *= 2;
  }
}
