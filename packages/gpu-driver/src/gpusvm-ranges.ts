// The DRM GPU SVM layer's notifiers and ranges (drivers/gpu/drm/drm_gpusvm.c, include/drm/drm_gpusvm.h;
// read in the torvalds/linux tree as stored at 0542972950ef, the v7.0 development tree):
//
//   notifier   drm_gpusvm_notifier_alloc: one per `notifier_size` (xe: svm_notifier_size, 512 MiB)
//              aligned window of the address space, made by the first fault in it and freed by
//              drm_gpusvm_range_remove when its last range goes. Here it holds the window's ranges;
//              the mmu_interval_notifier is the mirror BO's (policy-gpusvm.ts, a departure).
//   range      drm_gpusvm_range_alloc: [ALIGN_DOWN(addr, chunk), ALIGN(addr + 1, chunk)) where
//              drm_gpusvm_range_chunk_size picks the largest of the chunk sizes (xe's
//              fault_chunk_sizes: 2 MiB, 64 KiB, 4 KiB) whose aligned chunk around the fault fits
//              the CPU VMA, the notifier and the GPU VA (the mirror BO), does not overlap a range
//              already there (checked for chunks above 4 KiB only) and, for chunks up to
//              check_pages_threshold (xe: 64 KiB on a discrete GPU), whose pages the CPU has all
//              faulted in (drm_gpusvm_check_pages, the caller's hmm_range_fault without REQ_FAULT).
//              Ranges are never split or resized: an munmap of part of one invalidates it whole
//              and the garbage collector removes it (gpusvm-garbage-collector.ts).
//   pages      struct drm_gpusvm_pages: notifier_seq (LONG_MAX until get_pages), the flags
//              (has_dma_mapping, has_devmem_pages, unmapped, partial_unmap, migrate_devmem) and the
//              dma_addr array: here a pfn and HMM flags per page, in typed arrays.
//
// The invariants asserted: ranges of one notifier never overlap and never leave its window; a
// range's pages are valid only while it has a DMA mapping; an unmapped range never gets pages again.
import type { Pid } from '@svmsim/kernel-mm';

/** xe_modparam.svm_notifier_size (MiB; xe_module.c default 512) as pages. */
export const XE_SVM_NOTIFIER_SIZE_MIB_DEFAULT = 512;
/** xe_svm.c fault_chunk_sizes: SZ_2M, SZ_64K, SZ_4K, as pages (largest first, as drm_gpusvm_init requires). */
export const XE_FAULT_CHUNK_PAGES: readonly number[] = [512, 16, 1];
/** xe's ctx.check_pages_threshold on a discrete GPU: SZ_64K, as pages. */
export const XE_CHECK_PAGES_THRESHOLD_PAGES = 16;
/** Simulation bound: ranges per notifier (a 512 MiB notifier of 4 KiB ranges holds 131072). */
export const GPUSVM_RANGES_PER_NOTIFIER_MAX = 1 << 17;

/** struct drm_gpusvm_pages_flags. */
export interface DrmGpusvmPagesFlags {
  /** Pages are DMA-mapped (get_pages succeeded, no invalidation since). */
  has_dma_mapping: boolean;
  /** The pages are this GPU's device-private pages (VRAM). */
  has_devmem_pages: boolean;
  /** An MMU_NOTIFY_UNMAP covered (part of) the range: it waits for the garbage collector. */
  unmapped: boolean;
  /** ... and only part of it. */
  partial_unmap: boolean;
  /** The range may migrate to device memory (anonymous, non-hugetlb VMA, devmem possible). */
  migrate_devmem: boolean;
}

/** struct drm_gpusvm_range (+ xe_svm_range's tile_present / tile_invalidated for the one tile). In pages. */
export interface DrmGpusvmRange {
  readonly pid: Pid;
  readonly start: number;
  readonly end: number;
  readonly notifier: DrmGpusvmNotifier;
  flags: DrmGpusvmPagesFlags;
  /** pages.notifier_seq: the sequence get_pages read (LONG_MAX, here Infinity, before). */
  notifier_seq: number;
  /** pages.dma_addr: a pfn per page (a device pfn for a VRAM page), valid while has_dma_mapping. */
  pfns: Float64Array;
  /** The HMM_PFN_* flags get_pages got for each page. */
  pfnFlags: Uint8Array;
  /** xe_svm_range.tile_present: a GPU binding was made. */
  tile_present: boolean;
  /** xe_svm_range.tile_invalidated: the notifier zapped that binding. */
  tile_invalidated: boolean;
  /** On the garbage collector's list (xe_svm_range.garbage_collector_link not empty). */
  queuedForGc: boolean;
  /** Removed by drm_gpusvm_range_remove: a fault loop holding it must drop it. */
  removed: boolean;
}

/** struct drm_gpusvm_notifier: one aligned window of a process's address space and its ranges (sorted by start). */
export interface DrmGpusvmNotifier {
  readonly pid: Pid;
  readonly start: number;
  readonly end: number;
  ranges: DrmGpusvmRange[];
}

/** What drm_gpusvm_range_chunk_size needs to know besides the ranges: the boundaries, in pages. */
export interface ChunkBounds {
  vmaStart: number;
  vmaEnd: number;
  gpuvaStart: number;
  gpuvaEnd: number;
}

export class DrmGpusvm {
  /** pid → notifier window index → notifier. */
  private readonly notifiers = new Map<Pid, Map<number, DrmGpusvmNotifier>>();
  readonly stats = { notifiersCreated: 0, notifiersFreed: 0, rangesCreated: 0, rangesRemoved: 0, rangesByChunk: {} as Record<string, number> };

  constructor(
    /** notifier_size, pages. */
    readonly notifierPages: number,
    /** chunk_sizes, pages, largest first. */
    readonly chunkPages: readonly number[],
  ) {
    if (!(Number.isInteger(notifierPages) && notifierPages > 0)) throw new Error(`gpusvm: notifier size must be a positive number of pages, got ${notifierPages}`);
    for (let i = 0; i < chunkPages.length; i++) {
      const c = chunkPages[i];
      // drm_gpusvm_init: chunk sizes are powers of two, in descending order, the last one a page.
      if (!(Number.isInteger(c) && c > 0 && (c & (c - 1)) === 0)) throw new Error(`gpusvm: chunk sizes must be powers of two pages, got ${c}`);
      if (i > 0 && c >= chunkPages[i - 1]) throw new Error(`gpusvm: chunk sizes must descend, got ${chunkPages.join(', ')}`);
      if (c > notifierPages) throw new Error(`gpusvm: chunk of ${c} pages larger than the notifier (${notifierPages} pages)`);
    }
    if (chunkPages.length === 0) throw new Error('gpusvm: no chunk sizes');
  }

  /** drm_gpusvm_notifier_find. */
  notifierFind(pid: Pid, vpn: number): DrmGpusvmNotifier | undefined {
    return this.notifiers.get(pid)?.get(Math.floor(vpn / this.notifierPages));
  }

  /** drm_gpusvm_notifier_alloc + drm_gpusvm_notifier_insert: the window around vpn. */
  notifierAlloc(pid: Pid, vpn: number): DrmGpusvmNotifier {
    const idx = Math.floor(vpn / this.notifierPages);
    let byIdx = this.notifiers.get(pid);
    if (!byIdx) this.notifiers.set(pid, (byIdx = new Map()));
    if (byIdx.has(idx)) throw new Error(`gpusvm: a notifier already covers page ${vpn} of pid ${pid}`);
    const n: DrmGpusvmNotifier = { pid, start: idx * this.notifierPages, end: (idx + 1) * this.notifierPages, ranges: [] };
    byIdx.set(idx, n);
    this.stats.notifiersCreated++;
    return n;
  }

  /** Index of the first range of n ending after vpn. */
  private upper(n: DrmGpusvmNotifier, vpn: number): number {
    let lo = 0;
    let hi = n.ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (n.ranges[mid].end <= vpn) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** drm_gpusvm_range_find: the first range of n overlapping [start, end). */
  rangeFind(n: DrmGpusvmNotifier, start: number, end: number): DrmGpusvmRange | undefined {
    const r = n.ranges[this.upper(n, start)];
    return r && r.start < end ? r : undefined;
  }

  /** drm_gpusvm_for_each_range over [start, end) of n (a copy: the caller may remove). */
  rangesIn(n: DrmGpusvmNotifier, start: number, end: number): DrmGpusvmRange[] {
    const out: DrmGpusvmRange[] = [];
    for (let i = this.upper(n, start); i < n.ranges.length && n.ranges[i].start < end; i++) out.push(n.ranges[i]);
    return out;
  }

  /** Every range of pid overlapping [start, end) (pages), over the notifiers it spans. */
  rangesOf(pid: Pid, start: number, end: number): DrmGpusvmRange[] {
    const byIdx = this.notifiers.get(pid);
    if (!byIdx) return [];
    const out: DrmGpusvmRange[] = [];
    for (let idx = Math.floor(start / this.notifierPages); idx * this.notifierPages < end; idx++) {
      const n = byIdx.get(idx);
      if (n) out.push(...this.rangesIn(n, start, end));
    }
    return out;
  }

  /**
   * drm_gpusvm_range_chunk_size: the pages of the range a fault at vpn makes, or -1 (LONG_MAX in
   * the kernel: -EINVAL). `cpuFaultedIn(start, end)` is drm_gpusvm_check_pages, asked for chunks of
   * more than one page up to `checkPagesThreshold`; it answers through `then`.
   */
  chunkSize(n: DrmGpusvmNotifier, vpn: number, b: ChunkBounds, checkPagesThreshold: number, cpuFaultedIn: (start: number, end: number, then: (ok: boolean) => void) => void, then: (pages: number) => void): void {
    const tryChunk = (i: number): void => {
      for (; i < this.chunkPages.length; i++) {
        const c = this.chunkPages[i];
        const start = vpn - (vpn % c);
        const end = start + c;
        if (start >= b.vmaStart && end <= b.vmaEnd && start >= n.start && end <= n.end && start >= b.gpuvaStart && end <= b.gpuvaEnd) break;
      }
      if (i === this.chunkPages.length) return then(-1);
      const c = this.chunkPages[i];
      const start = vpn - (vpn % c);
      const end = start + c;
      if (c === 1) return then(c);
      // "If allocation more than page, ensure not to overlap with existing ranges."
      if (this.rangeFind(n, start, end)) return tryChunk(i + 1);
      if (c > checkPagesThreshold) return then(c);
      cpuFaultedIn(start, end, (ok) => (ok ? then(c) : tryChunk(i + 1)));
    };
    tryChunk(0);
  }

  /** drm_gpusvm_range_alloc + drm_gpusvm_range_insert of `pages` around vpn in n. */
  rangeInsert(n: DrmGpusvmNotifier, vpn: number, pages: number, migrate_devmem: boolean): DrmGpusvmRange {
    const start = vpn - (vpn % pages);
    const end = start + pages;
    if (start < n.start || end > n.end) throw new Error(`gpusvm: range [${start}, ${end}) leaves its notifier [${n.start}, ${n.end})`);
    if (this.rangeFind(n, start, end)) throw new Error(`gpusvm: range [${start}, ${end}) of pid ${n.pid} overlaps another`);
    if (n.ranges.length >= GPUSVM_RANGES_PER_NOTIFIER_MAX) throw new Error(`gpusvm: more than ${GPUSVM_RANGES_PER_NOTIFIER_MAX} ranges in one notifier`);
    const r: DrmGpusvmRange = {
      pid: n.pid, start, end, notifier: n,
      flags: { has_dma_mapping: false, has_devmem_pages: false, unmapped: false, partial_unmap: false, migrate_devmem },
      notifier_seq: Infinity, pfns: new Float64Array(pages).fill(-1), pfnFlags: new Uint8Array(pages),
      tile_present: false, tile_invalidated: false, queuedForGc: false, removed: false,
    };
    n.ranges.splice(this.upper(n, start), 0, r);
    this.stats.rangesCreated++;
    const key = pages >= 512 ? `${pages / 256}M` : `${pages * 4}K`;
    this.stats.rangesByChunk[key] = (this.stats.rangesByChunk[key] ?? 0) + 1;
    return r;
  }

  /**
   * drm_gpusvm_range_remove (the caller holds the notifier lock for __drm_gpusvm_unmap_pages): the
   * range's pages are unmapped and freed, it leaves its notifier, and an empty notifier is freed.
   */
  rangeRemove(r: DrmGpusvmRange): void {
    const n = r.notifier;
    const i = n.ranges.indexOf(r);
    if (i < 0) throw new Error(`gpusvm: range [${r.start}, ${r.end}) of pid ${r.pid} removed twice`);
    drm_gpusvm_range_unmap_pages(r);
    n.ranges.splice(i, 1);
    r.removed = true;
    this.stats.rangesRemoved++;
    if (n.ranges.length === 0) {
      this.notifiers.get(n.pid)?.delete(Math.floor(n.start / this.notifierPages));
      this.stats.notifiersFreed++;
    }
  }

  rangeCount(): number {
    let k = 0;
    for (const byIdx of this.notifiers.values()) for (const n of byIdx.values()) k += n.ranges.length;
    return k;
  }

  notifierCount(): number {
    let k = 0;
    for (const byIdx of this.notifiers.values()) k += byIdx.size;
    return k;
  }
}

/** drm_gpusvm_range_unmap_pages (under the notifier lock): the DMA mapping goes, and with it the pages' validity. */
export function drm_gpusvm_range_unmap_pages(r: DrmGpusvmRange): void {
  r.flags.has_dma_mapping = false;
  r.flags.has_devmem_pages = false;
}

/** drm_gpusvm_range_pages_valid (under the notifier lock): the last check before committing a GPU binding. */
export function drm_gpusvm_range_pages_valid(r: DrmGpusvmRange): boolean {
  return r.flags.has_devmem_pages || r.flags.has_dma_mapping;
}

/** drm_gpusvm_range_set_unmapped: an MMU_NOTIFY_UNMAP over [start, end) (pages) reached the range. */
export function drm_gpusvm_range_set_unmapped(r: DrmGpusvmRange, start: number, end: number): void {
  r.flags.unmapped = true;
  if (r.start < start || r.end > end) r.flags.partial_unmap = true;
}
