// Ping-pong: pages whose device mapping is invalidated and re-established over and over, detected
// as NVIDIA's UVM driver detects thrashing, so that the figures compare with its thrashing_stats.
// Followed: open-gpu-kernel-modules kernel-open/nvidia-uvm/uvm_perf_thrashing.c (thrashing_event_cb,
// 2016-2023 header), with its defaults: threshold 3 (at most 7: a 3-bit counter), lapse 500 µs.
//
// Events, per (subscription, page):
//   remap   the device maps the page again: a successful hmm_range_fault answer marks it valid
//           (UVM: a migration to the device; its processor is the device)
//   revoke  an acked invalidation takes a page the device had mapped. UVM would see a migration back
//           to the CPU (a revocation, in UVM, is of a read-duplicated copy, its processor the one
//           losing it); an mm invalidation hands the page back to the CPU, so its processor here is
//           the CPU, the side that took the page
// thrashing_event_cb, per event:
//   - the 2 MiB block keeps the time and processor of its last event; per-page tracking starts only
//     once two consecutive events of the block come from different processors within the lapse;
//   - per page: the first event only stamps the time; an event within `lapse` of the page's last
//     one increments its count (saturating at 7), and reaching `threshold` is one thrashing
//     detection (`thrashing` in thrashing_stats, counted for the processor of that event: the
//     device for a remap, `cpu` for a revoke); an event later than the lapse resets a page that
//     was thrashing (its count and time start over). A page below the threshold keeps its count
//     across a long gap: UVM does the same.
// Per page it also keeps who took it (`mm <task> <caller>`) and who mapped it again
// (`<device> hmm_range_fault`), counts of each, and a heat map of events over time.
import { PAGE_SIZE } from '@svmsim/kernel-mm';

export interface ThrashingOptions {
  /** Consecutive events within the lapse that make a page thrash (UVM: 3, at most 7). */
  threshold: number;
  /** ns between two events of a page for them to be consecutive (UVM: 500 µs). */
  lapseNs: number;
}

export const UVM_THRASHING: ThrashingOptions = { threshold: 3, lapseNs: 500_000 };
export const THRASHING_THRESHOLD_MAX = 7;
/** UVM_VA_BLOCK_SIZE: 2 MiB, in pages. */
const BLOCK_PAGES = 512;
/** Heat-map columns: the run's span is cut into this many equal slices (widths double as it grows). */
export const HEAT_BINS = 128;
const CPU = 0;
const DEVICE = 1;

export interface PageThrash {
  pid: number;
  addr: number;
  dev: string;
  sub: number;
  events: number;
  revokes: number;
  remaps: number;
  detections: number;
  firstT: number;
  lastT: number;
  /** Events per second between the first and the last. */
  ratePerS: number;
  takenBy: Record<string, number>;
  mappedBy: Record<string, number>;
}

export interface ThrashingReport {
  options: ThrashingOptions;
  /** thrashing_stats' `thrashing`: detections (a page reaching the threshold), per processor (a device, or `cpu`). */
  thrashing: Record<string, number>;
  pagesTracked: number;
  pagesThrashing: number;
  events: number;
  /** (who took a page, who mapped it again) → how often one followed the other. */
  pairs: { takenBy: string; mappedBy: string; count: number }[];
  top: PageThrash[];
}

/** Grows on demand: per-page state in typed arrays indexed by a dense page number. */
class Pages {
  n = 0;
  lastT = new Float64Array(1024).fill(-1);
  count = new Uint8Array(1024);
  mapped = new Uint8Array(1024);
  thrashing = new Uint8Array(1024);
  events = new Uint32Array(1024);
  revokes = new Uint32Array(1024);
  remaps = new Uint32Array(1024);
  detections = new Uint32Array(1024);
  firstT = new Float64Array(1024);
  lastEventT = new Float64Array(1024);
  sub = new Int32Array(1024);
  vpn = new Float64Array(1024);
  /** The last revoke's cause id, until a remap pairs with it (-1: none). */
  pendingTaker = new Int32Array(1024).fill(-1);
  /** The first event's cause id: a page that moved once (most, in a walk) needs no cause map. */
  firstCause = new Int32Array(1024).fill(-1);
  firstIsRemap = new Uint8Array(1024);

  add(sub: number, vpn: number): number {
    if (this.n === this.lastT.length) this.grow();
    const i = this.n++;
    this.sub[i] = sub;
    this.vpn[i] = vpn;
    return i;
  }

  private grow(): void {
    const size = this.lastT.length * 2;
    const g = <T extends Float64Array | Uint8Array | Uint32Array | Int32Array>(a: T, fill = 0): T => {
      const b = new (a.constructor as new (n: number) => T)(size);
      if (fill !== 0) b.fill(fill);
      b.set(a);
      return b;
    };
    this.lastT = g(this.lastT, -1);
    this.count = g(this.count);
    this.mapped = g(this.mapped);
    this.thrashing = g(this.thrashing);
    this.events = g(this.events);
    this.revokes = g(this.revokes);
    this.remaps = g(this.remaps);
    this.detections = g(this.detections);
    this.firstT = g(this.firstT);
    this.lastEventT = g(this.lastEventT);
    this.sub = g(this.sub);
    this.vpn = g(this.vpn);
    this.pendingTaker = g(this.pendingTaker, -1);
    this.firstCause = g(this.firstCause, -1);
    this.firstIsRemap = g(this.firstIsRemap);
  }
}

export class ThrashingDetector {
  private readonly pages = new Pages();
  /** sub → vpn → dense page index. */
  private readonly bySub = new Map<number, Map<number, number>>();
  /** (sub, block) → block state: last time, last processor, whether its pages are tracked. */
  private readonly blocks = new Map<string, { lastT: number; lastProc: number; tracked: boolean }>();
  private readonly causes: string[] = [];
  private readonly causeIds = new Map<string, number>();
  /** Per page: cause id → count, for takers and mappers. */
  private readonly takenBy = new Map<number, Map<number, number>>();
  private readonly mappedBy = new Map<number, Map<number, number>>();
  private readonly pairs = new Map<string, number>();
  readonly detectionsByDev = new Map<string, number>();
  private events = 0;
  // Heat map: per page HEAT_BINS counts; bin width doubles when the span outgrows them.
  private heatT0 = NaN;
  private binNs = 1000;
  private readonly heat = new Map<number, Uint32Array>();

  constructor(
    readonly options: ThrashingOptions,
    private readonly devOf: (sub: number) => { dev: string; pid: number } | undefined,
  ) {}

  /** The device mapped [start, start + valid.length pages) again; `valid[i]` says whether page i is mapped. */
  remap(sub: number, start: number, valid: ArrayLike<boolean>, t: number, cause: string): void {
    const first = Math.floor(start / PAGE_SIZE);
    const c = this.causeId(cause);
    for (let i = 0; i < valid.length; i++) {
      if (!valid[i]) continue;
      const p = this.page(sub, first + i);
      if (this.pages.mapped[p]) continue;
      this.pages.mapped[p] = 1;
      this.pages.remaps[p]++;
      this.cause(p, c, true);
      const taker = this.pages.pendingTaker[p];
      if (taker >= 0) {
        const k = `${taker}\u0000${c}`;
        this.pairs.set(k, (this.pairs.get(k) ?? 0) + 1);
        this.pages.pendingTaker[p] = -1;
      }
      this.event(p, t, DEVICE);
    }
  }

  /** An acked invalidation took [start, end) from the device behind `sub`. */
  revoke(sub: number, start: number, end: number, t: number, cause: string): void {
    const mine = this.bySub.get(sub);
    if (mine === undefined) return;
    const s = Math.floor(start / PAGE_SIZE), e = Math.ceil(end / PAGE_SIZE);
    const c = this.causeId(cause);
    const take = (p: number): void => {
      if (!this.pages.mapped[p]) return;
      this.pages.mapped[p] = 0;
      this.pages.revokes[p]++;
      this.pages.pendingTaker[p] = c;
      this.cause(p, c, false);
      this.event(p, t, CPU);
    };
    if (e - s <= mine.size) {
      for (let v = s; v < e; v++) {
        const p = mine.get(v);
        if (p !== undefined) take(p);
      }
    } else for (const [v, p] of mine) if (v >= s && v < e) take(p);
  }

  report(topN: number): ThrashingReport {
    const P = this.pages;
    const idx = Array.from({ length: P.n }, (_, i) => i).filter((i) => P.events[i] > 0);
    idx.sort((a, b) => P.events[b] - P.events[a] || P.vpn[a] - P.vpn[b]);
    const named = (m: Map<number, number> | undefined): Record<string, number> =>
      Object.fromEntries([...(m ?? new Map<number, number>())].sort((a, b) => b[1] - a[1]).map(([c, n]) => [this.causes[c], n]));
    const top = idx.slice(0, topN).map((i): PageThrash => {
      const owner = this.devOf(P.sub[i]);
      const span = P.lastEventT[i] - P.firstT[i];
      return {
        pid: owner?.pid ?? -1, addr: P.vpn[i] * PAGE_SIZE, dev: owner?.dev ?? `sub ${P.sub[i]}`, sub: P.sub[i],
        events: P.events[i], revokes: P.revokes[i], remaps: P.remaps[i], detections: P.detections[i],
        firstT: P.firstT[i], lastT: P.lastEventT[i], ratePerS: span > 0 ? ((P.events[i] - 1) / span) * 1e9 : 0,
        takenBy: named(this.causesOf(i, false)), mappedBy: named(this.causesOf(i, true)),
      };
    });
    const pairs = [...this.pairs].map(([k, count]) => {
      const [a, b] = k.split('\u0000').map(Number);
      return { takenBy: this.causes[a], mappedBy: this.causes[b], count };
    });
    pairs.sort((a, b) => b.count - a.count);
    let thrashing = 0;
    for (let i = 0; i < P.n; i++) if (P.detections[i] > 0) thrashing++;
    return {
      options: this.options,
      thrashing: Object.fromEntries(this.detectionsByDev),
      pagesTracked: idx.length,
      pagesThrashing: thrashing,
      events: this.events,
      pairs,
      top,
    };
  }

  /** The heat map of the `pages` given (their addresses and devices), events per time slice. */
  heatMap(top: PageThrash[]): { t0: number; binNs: number; rows: { label: string; counts: number[] }[] } {
    const rows = top.map((p) => {
      const i = this.bySub.get(p.sub)?.get(p.addr / PAGE_SIZE);
      const h = i === undefined ? undefined : this.heat.get(i);
      const counts = h ? Array.from(h) : new Array<number>(HEAT_BINS).fill(0);
      if (!h && i !== undefined && this.pages.events[i] === 1) counts[Math.min(HEAT_BINS - 1, Math.floor((this.pages.firstT[i] - this.heatT0) / this.binNs))] = 1; // no row for a single event
      return { label: `${p.dev} pid ${p.pid} 0x${p.addr.toString(16)}`, counts };
    });
    return { t0: Number.isNaN(this.heatT0) ? 0 : this.heatT0, binNs: this.binNs, rows };
  }

  // ---- uvm_perf_thrashing.c thrashing_event_cb, for one page ----

  private event(p: number, t: number, proc: number): void {
    const P = this.pages;
    this.events++;
    if (P.events[p]++ === 0) P.firstT[p] = t;
    P.lastEventT[p] = t;
    this.heatAdd(p, t);
    const { lapseNs, threshold } = this.options;
    const blockKey = `${P.sub[p]}:${Math.floor(P.vpn[p] / BLOCK_PAGES)}`;
    let b = this.blocks.get(blockKey);
    if (b === undefined) this.blocks.set(blockKey, (b = { lastT: -1, lastProc: -1, tracked: false }));
    if (!b.tracked) {
      // Per-page structures are created only once the block sees events from two processors in a row.
      const start = b.lastT >= 0 && b.lastProc !== proc && t - b.lastT <= lapseNs;
      b.lastT = t;
      b.lastProc = proc;
      if (!start) return;
      b.tracked = true;
    }
    b.lastT = t;
    b.lastProc = proc;
    const last = P.lastT[p];
    P.lastT[p] = t;
    if (last < 0) return;
    if (t - last <= lapseNs) {
      if (P.count[p] < THRASHING_THRESHOLD_MAX) P.count[p]++;
      if (P.count[p] === threshold) {
        P.detections[p]++;
        P.thrashing[p] = 1;
        // PROCESSOR_THRASHING_STATS_INC(va_space, processor_id, num_thrashing): the event's processor.
        const who = proc === CPU ? 'cpu' : (this.devOf(P.sub[p])?.dev ?? `sub ${P.sub[p]}`);
        this.detectionsByDev.set(who, (this.detectionsByDev.get(who) ?? 0) + 1);
      }
    } else if (P.count[p] >= threshold) {
      // thrashing_reset_page: no longer thrashing; the next event starts over.
      P.count[p] = 0;
      P.thrashing[p] = 0;
      P.lastT[p] = -1;
    }
  }

  private page(sub: number, vpn: number): number {
    let m = this.bySub.get(sub);
    if (m === undefined) this.bySub.set(sub, (m = new Map()));
    let p = m.get(vpn);
    if (p === undefined) m.set(vpn, (p = this.pages.add(sub, vpn)));
    return p;
  }

  private causeId(c: string): number {
    let id = this.causeIds.get(c);
    if (id === undefined) {
      id = this.causes.length;
      this.causes.push(c);
      this.causeIds.set(c, id);
    }
    return id;
  }

  /**
   * Who caused an event of page p: kept in the typed arrays for its first event, in per-page maps
   * (and a heat-map row) only from its second, so a page that moved once costs no objects.
   */
  private cause(p: number, c: number, remap: boolean): void {
    const P = this.pages;
    if (P.events[p] === 0) {
      P.firstCause[p] = c;
      P.firstIsRemap[p] = remap ? 1 : 0;
      return;
    }
    if (P.events[p] === 1) bump(P.firstIsRemap[p] ? this.mappedBy : this.takenBy, p, P.firstCause[p]);
    bump(remap ? this.mappedBy : this.takenBy, p, c);
  }

  private causesOf(p: number, remap: boolean): Map<number, number> | undefined {
    const P = this.pages;
    if (P.events[p] > 1) return (remap ? this.mappedBy : this.takenBy).get(p);
    return P.events[p] === 1 && (P.firstIsRemap[p] === 1) === remap ? new Map([[P.firstCause[p], 1]]) : undefined;
  }

  private heatAdd(p: number, t: number): void {
    if (Number.isNaN(this.heatT0)) this.heatT0 = t;
    while (t - this.heatT0 >= this.binNs * HEAT_BINS) {
      // Double the slices: merge neighbours in every row.
      this.binNs *= 2;
      for (const h of this.heat.values()) {
        for (let i = 0; i < HEAT_BINS / 2; i++) h[i] = h[2 * i] + h[2 * i + 1];
        h.fill(0, HEAT_BINS / 2);
      }
    }
    if (this.pages.events[p] === 1) return; // a row from the page's second event, which adds the first one too
    let h = this.heat.get(p);
    if (h === undefined) {
      this.heat.set(p, (h = new Uint32Array(HEAT_BINS)));
      h[Math.floor((this.pages.firstT[p] - this.heatT0) / this.binNs)]++;
    }
    h[Math.floor((t - this.heatT0) / this.binNs)]++;
  }
}

function bump(m: Map<number, Map<number, number>>, p: number, c: number): void {
  let x = m.get(p);
  if (x === undefined) m.set(p, (x = new Map()));
  x.set(c, (x.get(c) ?? 0) + 1);
}
