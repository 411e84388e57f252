// The actors' counters over time (kernel-mm's `mm_counters` {free, pinned, swap_used, rss_anon,
// rss_file}, the GPU's `gpu_counters` {vram_bo_pages, svm_vram_pages}, all in pages), and DMA in
// flight per device (an access sent and not yet applied by mm, or a read not yet answered), as
// bounded series for plots; every sample also goes to `onSample` (the Perfetto export's counter
// tracks). DMA in flight is known only in traces that mark requests.
import type { TraceLine } from '@svmsim/runtime';
import { Series } from './series.js';

/** How plots and counter tracks name each counter. */
export const COUNTER_LABELS: Record<string, string> = {
  free: 'free frames',
  pinned: 'pinned pages',
  swap_used: 'swap slots used',
  rss_anon: 'RSS anon pages',
  rss_file: 'RSS file pages',
  vram_bo_pages: 'VRAM BO pages',
  svm_vram_pages: 'VRAM pages (svm)',
  dma_in_flight: 'DMA in flight',
};

export type CounterSample = (actor: string, counter: string, t: number, value: number) => void;

export class CounterSeries {
  /** The `ev`s of the lines it reads: the model hands it only those. */
  static readonly events: readonly string[] = ['mm_counters', 'gpu_counters'];

  /** "free", "pinned"…, and "gpu0.vram_bo_pages", "gpu0.dma_in_flight"… */
  readonly series = new Map<string, Series>();
  private readonly dmaInFlight = new Map<string, number>();

  constructor(private readonly onSample?: CounterSample) {}

  line(l: TraceLine): void {
    for (const [k, v] of Object.entries(l)) {
      if (k === 't' || k === 'actor' || k === 'ev' || typeof v !== 'number') continue;
      this.add(l.actor, k, l.ev === 'mm_counters' ? k : `${l.actor}.${k}`, l.t, v, 'last');
    }
  }

  /** A DMA access left `dev` (+1) or reached mm / got its answer (-1). */
  dma(dev: string, t: number, delta: number): void {
    const n = (this.dmaInFlight.get(dev) ?? 0) + delta;
    this.dmaInFlight.set(dev, n);
    this.add(dev, 'dma_in_flight', `${dev}.dma_in_flight`, t, n, 'max');
  }

  private add(actor: string, counter: string, name: string, t: number, v: number, mode: 'max' | 'last'): void {
    let s = this.series.get(name);
    if (s === undefined) this.series.set(name, (s = new Series(mode)));
    s.add(t, v);
    this.onSample?.(actor, counter, t, v);
  }
}
