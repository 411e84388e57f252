// Device memory with struct pages (mm/memremap.c memremap_pages; struct dev_pagemap with its
// owner), of two types:
//   MEMORY_DEVICE_PRIVATE    a driver's memory, refcounted by the CPU PTEs that hold device-private
//                            entries for them; the last reference → page_free, a message to the owner
//   MEMORY_DEVICE_PCI_P2PDMA a PCI device's published p2pmem (pci_p2pdma_add_resource), here one
//                            pagemap per p2pmem_alloc_mmap; referenced by the VMA that maps it and
//                            by gup (FOLL_PCI_P2PDMA); the last reference → p2pdma_page_free, which
//                            gives the page back to the provider's pool (drivers/pci/p2pdma.c v6.6)
// Their content lives in the device, never in mm. Device pfns are numbered from DEVICE_PFN_BASE,
// apart from RAM frames.
import type { ActorId } from '@svmsim/runtime';
import type { Ctx } from '@svmsim/runtime';
import { assert } from './physmem.js';
import type { Vma } from './vma.js';

export const DEVICE_PFN_BASE = 1 << 28;

export type PagemapType = 'MEMORY_DEVICE_PRIVATE' | 'MEMORY_DEVICE_PCI_P2PDMA';

interface Pagemap {
  owner: ActorId;
  type: PagemapType;
  base: number;
  nrPages: number;
  /** PCI_P2PDMA: the provider's p2pmem page behind `base`. */
  first: number;
  refcount: Int32Array;
}

export class DevicePages {
  private readonly maps: Pagemap[] = [];
  private nextBase = DEVICE_PFN_BASE;

  /** memremap_pages: `nrPages` device-private pages for `owner`; returns the first device pfn. */
  memremap(owner: ActorId, nrPages: number, type: PagemapType = 'MEMORY_DEVICE_PRIVATE', first = 0): number {
    assert(Number.isInteger(nrPages) && nrPages > 0, `memremap_pages of ${nrPages} pages`);
    const base = this.nextBase;
    this.nextBase += nrPages;
    this.maps.push({ owner, type, base, nrPages, first, refcount: new Int32Array(nrPages) });
    return base;
  }

  /** is_pci_p2pdma_page. */
  isPciP2pdma(devPfn: number): boolean {
    return this.find(devPfn)?.type === 'MEMORY_DEVICE_PCI_P2PDMA';
  }

  /** A p2pdma page's provider and its page in the provider's p2pmem. */
  p2pdmaPage(devPfn: number): { provider: ActorId; page: number } | undefined {
    const m = this.find(devPfn);
    return m?.type === 'MEMORY_DEVICE_PCI_P2PDMA' ? { provider: m.owner, page: m.first + devPfn - m.base } : undefined;
  }

  private find(devPfn: number): Pagemap | undefined {
    return this.maps.find((m) => devPfn >= m.base && devPfn < m.base + m.nrPages);
  }

  owner(devPfn: number): ActorId | undefined {
    return this.find(devPfn)?.owner;
  }

  get(devPfn: number): void {
    const m = this.find(devPfn);
    assert(m !== undefined, `device pfn ${devPfn} belongs to no pagemap`);
    m.refcount[devPfn - m.base]++;
  }

  /** The last reference gone: dev_pagemap_ops.page_free, a message to the owner. */
  put(k: { ctx: Ctx<any> }, devPfn: number): void {
    const m = this.find(devPfn);
    assert(m !== undefined && m.refcount[devPfn - m.base] > 0, `put of device pfn ${devPfn} with no reference`);
    if (--m.refcount[devPfn - m.base] > 0) return;
    if (m.type === 'MEMORY_DEVICE_PCI_P2PDMA') k.ctx.send(m.owner, { type: 'p2pdma_page_free', page: m.first + devPfn - m.base });
    else k.ctx.send(m.owner, { type: 'device_page_free', dev_pfn: devPfn });
  }

  refs(devPfn: number): number {
    const m = this.find(devPfn);
    return m ? m.refcount[devPfn - m.base] : 0;
  }
}

/**
 * The references a p2pmem VMA's pages hold for the mapping: vm_insert_page takes one per page at
 * mmap (p2pmem_alloc_mmap), fork copies them (VM_MIXEDMAP: copy_page_range copies the PTEs),
 * unmap drops them; the last reference frees the page (p2pdma_page_free).
 */
export function p2pdmaVmaRefs(k: { ctx: Ctx<any>; devicePages: DevicePages }, v: Vma, get: boolean): void {
  if (v.p2pdma === undefined) return;
  for (let pfn = v.pgoff; pfn < v.pgoff + (v.end - v.start); pfn++) {
    if (get) k.devicePages.get(pfn);
    else k.devicePages.put(k, pfn);
  }
}
