// Virtual memory areas (include/linux/mm_types.h struct vm_area_struct, mm/mmap.c, mm/vma.c): a
// process's mappings, kept sorted and non-overlapping, in page numbers [start, end).
import { MAP_SHARED, PROT_READ, PROT_WRITE } from './protocol.js';
import { assert } from './physmem.js';

export interface Vma {
  start: number;
  end: number;
  prot: number;
  shared: boolean;
  /** File id for file mappings and shared anonymous (shm, negative ids); null for private anonymous. */
  file: number | null;
  /** File page index of `start`. */
  pgoff: number;
  /** VM_MERGEABLE (madvise MADV_MERGEABLE): KSM may merge its pages. */
  mergeable: boolean;
  /**
   * A mapping of this PCI device's p2pmem (p2pmem_alloc_mmap): its pages are
   * MEMORY_DEVICE_PCI_P2PDMA, and `pgoff` is the device pfn behind `start` (device-memory.ts).
   * p2pmem_alloc_mmap inserts every page at mmap (vm_insert_page, VM_MIXEDMAP); here the VMA
   * holds them instead of PTEs, so no PTE walk (reclaim, migration, KSM, dump) ever sees them.
   */
  p2pdma?: string;
  /** VM_SOFTDIRTY: set on a new VMA, cleared by clear_refs 4 (then soft-dirty tracking is on: vma_soft_dirty_enabled). */
  softDirty: boolean;
}

export const vmaReadable = (v: Vma) => (v.prot & PROT_READ) !== 0;
export const vmaWritable = (v: Vma) => (v.prot & PROT_WRITE) !== 0;
export const vmaIsAnon = (v: Vma) => v.file === null;
/** A private anonymous page or a COW copy in a private file mapping: the process's own. */
export const vmaIsCow = (v: Vma) => !v.shared;
/** vma_needs_dirty_tracking: a shared, writable file mapping (not shm). */
export const vmaNeedsDirtyTracking = (v: Vma) => v.shared && v.file !== null && v.file > 0;
export const fileIndex = (v: Vma, vpn: number) => v.pgoff + (vpn - v.start);
/** The MEMORY_DEVICE_PCI_P2PDMA page behind vpn of a p2pmem VMA. */
export const p2pdmaPfn = (v: Vma, vpn: number) => v.pgoff + (vpn - v.start);

export function describeFlags(v: Vma): string {
  return `${v.shared ? 'MAP_SHARED' : 'MAP_PRIVATE'}${v.file === null ? '|MAP_ANONYMOUS' : ''}`;
}

export class VmaList {
  /** Sorted by start, non-overlapping. */
  readonly list: Vma[] = [];

  /** find_vma: the VMA containing vpn, or undefined. */
  find(vpn: number): Vma | undefined {
    const l = this.list;
    let lo = 0;
    let hi = l.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = l[mid];
      if (vpn < v.start) hi = mid - 1;
      else if (vpn >= v.end) lo = mid + 1;
      else return v;
    }
    return undefined;
  }

  /** VMAs overlapping [start, end), in order. */
  overlapping(start: number, end: number): Vma[] {
    return this.list.filter((v) => v.start < end && v.end > start);
  }

  /** True if every page of [start, end) is inside some VMA. */
  covers(start: number, end: number): boolean {
    let at = start;
    for (const v of this.list) {
      if (v.end <= at) continue;
      if (v.start > at) return false;
      at = v.end;
      if (at >= end) return true;
    }
    return at >= end;
  }

  insert(v: Vma): void {
    assert(v.start < v.end, `vma insert: empty [${v.start}, ${v.end})`);
    assert(this.overlapping(v.start, v.end).length === 0, `vma insert: [${v.start}, ${v.end}) overlaps`);
    let i = 0;
    while (i < this.list.length && this.list[i].start < v.start) i++;
    this.list.splice(i, 0, v);
  }

  /** Split VMAs at start and end so that [start, end) is covered by whole VMAs (split_vma). */
  splitAt(start: number, end: number): Vma[] {
    for (const at of [start, end]) {
      const v = this.find(at);
      if (v && v.start < at) {
        const tail: Vma = { ...v, start: at, pgoff: v.pgoff + (at - v.start) };
        v.end = at;
        this.list.splice(this.list.indexOf(v) + 1, 0, tail);
      }
    }
    return this.overlapping(start, end);
  }

  /** Remove [start, end) (splitting as needed); returns the removed pieces. */
  remove(start: number, end: number): Vma[] {
    const pieces = this.splitAt(start, end);
    for (const p of pieces) this.list.splice(this.list.indexOf(p), 1);
    return pieces;
  }

  /** The lowest free gap of `pages` at or above `from` (get_unmapped_area, bottom-up). */
  findGap(pages: number, from: number, limit: number): number {
    let at = from;
    for (const v of this.list) {
      if (v.end <= at) continue;
      if (v.start - at >= pages) return at;
      at = Math.max(at, v.end);
    }
    return at + pages <= limit ? at : -1;
  }

  clone(): VmaList {
    const c = new VmaList();
    for (const v of this.list) c.list.push({ ...v });
    return c;
  }
}

export const isSharedFlag = (flags: number) => (flags & MAP_SHARED) !== 0;
