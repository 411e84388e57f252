// The actors' counters over time (kernel-mm's `mm_counters` {free, pinned, swap_used, rss_anon,
// rss_file}, the GPU's `gpu_counters` {vram_bo_pages, svm_vram_pages}, all in pages), and DMA in
// flight per device (an access sent and not yet applied by mm, or a read not yet answered), as
// bounded series for plots and counter tracks.
import type { TraceLine } from '@svmsim/runtime';
import { Series } from './series.js';

export class CounterSeries {
  /** The `ev`s of the lines it reads: the model hands it only those. */
  static readonly events: readonly string[] = ['mm_counters', 'gpu_counters'];

  /** "free", "pinned"…, and "gpu0.vram_bo_pages"… */
  readonly series = new Map<string, Series>();
  private readonly dmaInFlight = new Map<string, number>();

  line(l: TraceLine): void {
    if (l.ev !== 'mm_counters' && l.ev !== 'gpu_counters') return;
    for (const [k, v] of Object.entries(l)) {
      if (k === 't' || k === 'actor' || k === 'ev' || typeof v !== 'number') continue;
      this.add(l.ev === 'mm_counters' ? k : `${l.actor}.${k}`, l.t, v);
    }
  }

  /** A DMA access left `dev` (+1) or reached mm / got its answer (-1). */
  dma(dev: string, t: number, delta: number): void {
    const n = (this.dmaInFlight.get(dev) ?? 0) + delta;
    this.dmaInFlight.set(dev, n);
    this.add(`${dev}.dma_in_flight`, t, n, 'max');
  }

  private add(name: string, t: number, v: number, mode: 'max' | 'last' = 'last'): void {
    let s = this.series.get(name);
    if (s === undefined) this.series.set(name, (s = new Series(mode)));
    s.add(t, v);
  }
}
