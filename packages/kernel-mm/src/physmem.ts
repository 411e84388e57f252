// Physical memory: page frames and their struct-page state, in typed arrays indexed by pfn
// (mm/page_alloc.c, include/linux/mm_types.h struct page / struct folio, mm/swap.c LRU).
//
// Per frame: content word, refcount (_refcount: mappings + gup refs + GUP_PIN_COUNTING_BIAS per
// pin, as for small folios), mapcount (_mapcount + 1), an exact pin count (the kernel keeps one only
// for large folios; exactness here costs 4 bytes and lets the checker be precise), flags, the owner
// (a page-cache page's file and index) and the reverse map (rmap): the (pid, vpn) of the first
// mapping inline, further mappings (after fork) in a side table.
//
// Zones: frames [0, movableStart) are ZONE_NORMAL, [movableStart, nrFrames) ZONE_MOVABLE, where
// FOLL_LONGTERM pins may not stay (folio_is_longterm_pinnable).
//
// LRU: one list per kind (anon, file), second-chance: reclaim takes the tail; a page whose
// referenced bit is set is rotated to the head with the bit cleared (folio_referenced + the
// active/inactive dance of mm/vmscan.c reduced to one list).
import { GUP_PIN_COUNTING_BIAS } from './protocol.js';

export const PG_DIRTY = 1 << 0;
export const PG_ANON = 1 << 1;
export const PG_REFERENCED = 1 << 2;
export const PG_LRU = 1 << 3;
export const PG_KSM = 1 << 4;
/** In the swap cache: some PTE still holds a swap entry whose content is this page. */
export const PG_SWAPCACHE = 1 << 5;
/** Locked for I/O or migration (folio_lock): faults on it wait. */
export const PG_LOCKED = 1 << 6;
/** Frame is in use (allocated). */
export const PG_USED = 1 << 7;

export const LRU_ANON = 0;
export const LRU_FILE = 1;

export interface PhysmemConfig {
  nrFrames: number;
  /** Frames from this pfn up are ZONE_MOVABLE. Default: no movable zone. */
  movableStart?: number;
  /** Watermarks in frames (mm/page_alloc.c __setup_per_zone_wmarks): min < low < high. */
  wmarkMin?: number;
  wmarkLow?: number;
  wmarkHigh?: number;
}

export interface RmapEntry {
  pid: number;
  vpn: number;
}

export class Physmem {
  readonly nrFrames: number;
  readonly movableStart: number;
  readonly wmarkMin: number;
  readonly wmarkLow: number;
  readonly wmarkHigh: number;

  readonly content: Float64Array;
  readonly refcount: Int32Array;
  readonly mapcount: Int32Array;
  readonly pincount: Int32Array;
  /** Frames with a pin count above zero. */
  nrPinned = 0;
  readonly flags: Uint8Array;
  /**
   * PageAnonExclusive (include/linux/page-flags.h, v6.15): set when an anonymous page is mapped as
   * this mm's own (a new anon page, a COW copy, an exclusive swap-in, a reuse), cleared when fork
   * shares it or KSM merges it. do_wp_page reuses an exclusive page without looking at references;
   * a non-exclusive one only if nothing but its mapping holds it (wp_can_reuse_anon_folio).
   */
  readonly anonExclusive: Uint8Array;
  /** MADV_FREE'd (folio_mark_lazyfree: !PG_swapbacked): reclaim discards it, unless it was written since. */
  readonly lazyfree: Uint8Array;
  /** The swap slot a PG_SWAPCACHE page stands for (-1 otherwise): folio->swap. */
  readonly swapSlot: Int32Array;
  /** Page-cache owner: file id (or 0 for none: file ids start at 1, shm ids are negative). */
  readonly fileId: Int32Array;
  readonly fileIdx: Int32Array;
  /** First mapping of the frame (rmap), -1 when unmapped. */
  readonly rmapPid: Int32Array;
  readonly rmapVpn: Int32Array;
  /** Mappings beyond the first, for frames shared after fork or by several mappings of a file. */
  readonly rmapMore = new Map<number, RmapEntry[]>();
  /** LRU doubly linked lists: prev/next pfn, -1 ends. */
  readonly lruPrev: Int32Array;
  readonly lruNext: Int32Array;
  readonly lruHead = [-1, -1];
  readonly lruTail = [-1, -1];
  readonly lruSize = [0, 0];

  private readonly freeStack: Int32Array;
  private freeTop = 0;
  /** Free frames in the movable zone are kept on a separate stack so either zone can be asked for. */
  private readonly freeMovable: Int32Array;
  private freeMovableTop = 0;

  constructor(cfg: PhysmemConfig) {
    const n = cfg.nrFrames;
    if (!Number.isInteger(n) || n < 16 || n > 1 << 24) throw new RangeError(`nrFrames must be an integer in [16, 2^24], got ${n}`);
    this.nrFrames = n;
    this.movableStart = cfg.movableStart ?? n;
    if (this.movableStart < 0 || this.movableStart > n) throw new RangeError(`movableStart must be in [0, ${n}], got ${this.movableStart}`);
    this.wmarkMin = cfg.wmarkMin ?? Math.max(4, Math.floor(n / 128));
    this.wmarkLow = cfg.wmarkLow ?? Math.floor((this.wmarkMin * 5) / 4) + 1;
    this.wmarkHigh = cfg.wmarkHigh ?? Math.floor((this.wmarkMin * 3) / 2) + 2;
    if (!(this.wmarkMin < this.wmarkLow && this.wmarkLow < this.wmarkHigh && this.wmarkHigh < n)) {
      throw new RangeError(`watermarks must satisfy min < low < high < nrFrames, got ${this.wmarkMin} ${this.wmarkLow} ${this.wmarkHigh} ${n}`);
    }
    this.content = new Float64Array(n);
    this.refcount = new Int32Array(n);
    this.mapcount = new Int32Array(n);
    this.pincount = new Int32Array(n);
    this.flags = new Uint8Array(n);
    this.anonExclusive = new Uint8Array(n);
    this.lazyfree = new Uint8Array(n);
    this.swapSlot = new Int32Array(n).fill(-1);
    this.fileId = new Int32Array(n);
    this.fileIdx = new Int32Array(n);
    this.rmapPid = new Int32Array(n).fill(-1);
    this.rmapVpn = new Int32Array(n).fill(-1);
    this.lruPrev = new Int32Array(n).fill(-1);
    this.lruNext = new Int32Array(n).fill(-1);
    this.freeStack = new Int32Array(this.movableStart);
    this.freeMovable = new Int32Array(n - this.movableStart);
    // Push in reverse so that low pfns are handed out first: traces read better.
    for (let pfn = this.movableStart - 1; pfn >= 0; pfn--) this.freeStack[this.freeTop++] = pfn;
    for (let pfn = n - 1; pfn >= this.movableStart; pfn--) this.freeMovable[this.freeMovableTop++] = pfn;
  }

  get nrFree(): number {
    return this.freeTop + this.freeMovableTop;
  }

  isMovable(pfn: number): boolean {
    return pfn >= this.movableStart;
  }

  /**
   * Take a free frame: refcount 1, content 0. `movable` allows ZONE_MOVABLE (GFP_HIGHUSER_MOVABLE),
   * preferred when allowed, as the kernel's zonelist does. -1 when the zones allowed are empty:
   * the watermark policy (alloc_pages' slow path) is the caller's.
   */
  alloc(movable: boolean): number {
    let pfn: number;
    if (movable && this.freeMovableTop > 0) pfn = this.freeMovable[--this.freeMovableTop];
    else if (this.freeTop > 0) pfn = this.freeStack[--this.freeTop];
    else return -1;
    assert(this.flags[pfn] === 0 && this.refcount[pfn] === 0, `alloc: frame ${pfn} is not free`);
    this.flags[pfn] = PG_USED;
    this.refcount[pfn] = 1;
    this.content[pfn] = 0;
    return pfn;
  }

  /** Drop one reference; the frame is freed at zero. Returns true when freed. */
  put(pfn: number): boolean {
    assert(this.refcount[pfn] > 0, `put: frame ${pfn} has refcount ${this.refcount[pfn]}`);
    if (--this.refcount[pfn] > 0) return false;
    this.free(pfn);
    return true;
  }

  get(pfn: number, n = 1): void {
    assert(this.refcount[pfn] > 0, `get: frame ${pfn} is free`);
    this.refcount[pfn] += n;
  }

  private free(pfn: number): void {
    assert(this.mapcount[pfn] === 0 && this.pincount[pfn] === 0, `free: frame ${pfn} still mapped (${this.mapcount[pfn]}) or pinned (${this.pincount[pfn]})`);
    if (this.flags[pfn] & PG_LRU) this.lruDel(pfn);
    this.flags[pfn] = 0;
    this.anonExclusive[pfn] = 0;
    this.lazyfree[pfn] = 0;
    this.fileId[pfn] = 0;
    this.fileIdx[pfn] = 0;
    this.rmapPid[pfn] = -1;
    this.rmapVpn[pfn] = -1;
    this.rmapMore.delete(pfn);
    this.content[pfn] = 0;
    if (pfn >= this.movableStart) this.freeMovable[this.freeMovableTop++] = pfn;
    else this.freeStack[this.freeTop++] = pfn;
  }

  // ---- pins (mm/gup.c try_grab_folio / gup_put_folio) ----

  pin(pfn: number): void {
    this.get(pfn, GUP_PIN_COUNTING_BIAS);
    if (this.pincount[pfn]++ === 0) this.nrPinned++;
  }

  unpin(pfn: number): boolean {
    assert(this.pincount[pfn] > 0, `unpin: frame ${pfn} is not pinned`);
    if (--this.pincount[pfn] === 0) this.nrPinned--;
    this.refcount[pfn] -= GUP_PIN_COUNTING_BIAS - 1;
    return this.put(pfn);
  }

  /** folio_maybe_dma_pinned: exact here. */
  maybeDmaPinned(pfn: number): boolean {
    return this.pincount[pfn] > 0;
  }

  /** References beyond the mappings (and the page cache's own): gup, pins, in-flight I/O. */
  extraRefs(pfn: number): number {
    const cacheRef = this.fileId[pfn] !== 0 ? 1 : 0;
    return this.refcount[pfn] - this.mapcount[pfn] - cacheRef;
  }

  // ---- rmap (mm/rmap.c folio_add_*_rmap / folio_remove_rmap_pte) ----

  addRmap(pfn: number, pid: number, vpn: number): void {
    this.mapcount[pfn]++;
    this.refcount[pfn]++;
    if (this.rmapPid[pfn] < 0) {
      this.rmapPid[pfn] = pid;
      this.rmapVpn[pfn] = vpn;
      return;
    }
    let more = this.rmapMore.get(pfn);
    if (!more) this.rmapMore.set(pfn, (more = []));
    more.push({ pid, vpn });
  }

  /** Removes one mapping and its reference; returns true if that freed the frame. */
  removeRmap(pfn: number, pid: number, vpn: number): boolean {
    assert(this.mapcount[pfn] > 0, `removeRmap: frame ${pfn} is not mapped`);
    const more = this.rmapMore.get(pfn);
    if (this.rmapPid[pfn] === pid && this.rmapVpn[pfn] === vpn) {
      if (more && more.length > 0) {
        const next = more.pop()!;
        this.rmapPid[pfn] = next.pid;
        this.rmapVpn[pfn] = next.vpn;
        if (more.length === 0) this.rmapMore.delete(pfn);
      } else {
        this.rmapPid[pfn] = -1;
        this.rmapVpn[pfn] = -1;
      }
    } else {
      const i = more ? more.findIndex((e) => e.pid === pid && e.vpn === vpn) : -1;
      assert(i >= 0, `removeRmap: frame ${pfn} has no mapping (${pid}, ${vpn})`);
      more!.splice(i, 1);
      if (more!.length === 0) this.rmapMore.delete(pfn);
    }
    this.mapcount[pfn]--;
    return this.put(pfn);
  }

  /** How many (pid, vpn) map the frame: mappings(pfn).length without building the list. */
  mappingCount(pfn: number): number {
    return this.rmapPid[pfn] < 0 ? 0 : 1 + (this.rmapMore.get(pfn)?.length ?? 0);
  }

  /** Every (pid, vpn) mapping the frame (rmap_walk). */
  mappings(pfn: number): RmapEntry[] {
    if (this.rmapPid[pfn] < 0) return [];
    const first = { pid: this.rmapPid[pfn], vpn: this.rmapVpn[pfn] };
    const more = this.rmapMore.get(pfn);
    return more ? [first, ...more] : [first];
  }

  // ---- LRU ----

  lruAdd(pfn: number): void {
    assert(!(this.flags[pfn] & PG_LRU), `lruAdd: frame ${pfn} already on an LRU`);
    const l = this.flags[pfn] & PG_ANON ? LRU_ANON : LRU_FILE;
    this.flags[pfn] |= PG_LRU;
    this.lruPrev[pfn] = -1;
    this.lruNext[pfn] = this.lruHead[l];
    if (this.lruHead[l] >= 0) this.lruPrev[this.lruHead[l]] = pfn;
    else this.lruTail[l] = pfn;
    this.lruHead[l] = pfn;
    this.lruSize[l]++;
  }

  lruDel(pfn: number): void {
    assert((this.flags[pfn] & PG_LRU) !== 0, `lruDel: frame ${pfn} not on an LRU`);
    const l = this.flags[pfn] & PG_ANON ? LRU_ANON : LRU_FILE;
    const p = this.lruPrev[pfn];
    const nx = this.lruNext[pfn];
    if (p >= 0) this.lruNext[p] = nx;
    else this.lruHead[l] = nx;
    if (nx >= 0) this.lruPrev[nx] = p;
    else this.lruTail[l] = p;
    this.lruPrev[pfn] = this.lruNext[pfn] = -1;
    this.flags[pfn] &= ~PG_LRU;
    this.lruSize[l]--;
  }

  /** Typed-array bytes per frame: what the frames cost. */
  static bytesPerFrame(): number {
    return 8 + 4 * 7 + 1 + 1 + 4 * 2;
  }
}

export class InvariantError extends Error {
  override name = 'InvariantError';
}

/** A broken invariant of the simulated kernel: reported as a violation with the seed that found it. */
export function assert(cond: boolean, what: string): asserts cond {
  if (!cond) throw new InvariantError(`invariant: ${what}`);
}
