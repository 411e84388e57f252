// Device-private memory (mm/memremap.c memremap_pages with MEMORY_DEVICE_PRIVATE; struct
// dev_pagemap with its owner): the struct pages of device memory, refcounted by the CPU PTEs that
// hold device-private entries for them. Their content lives in the device, never in mm.
// Device pfns are numbered from DEVICE_PFN_BASE, apart from RAM frames.
import type { ActorId } from '@svmsim/runtime';
import type { Ctx } from '@svmsim/runtime';
import { assert } from './physmem.js';

export const DEVICE_PFN_BASE = 1 << 28;

interface Pagemap {
  owner: ActorId;
  base: number;
  nrPages: number;
  refcount: Int32Array;
}

export class DevicePages {
  private readonly maps: Pagemap[] = [];
  private nextBase = DEVICE_PFN_BASE;

  /** memremap_pages: `nrPages` device-private pages for `owner`; returns the first device pfn. */
  memremap(owner: ActorId, nrPages: number): number {
    assert(Number.isInteger(nrPages) && nrPages > 0, `memremap_pages of ${nrPages} pages`);
    const base = this.nextBase;
    this.nextBase += nrPages;
    this.maps.push({ owner, base, nrPages, refcount: new Int32Array(nrPages) });
    return base;
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
    if (--m.refcount[devPfn - m.base] === 0) k.ctx.send(m.owner, { type: 'device_page_free', dev_pfn: devPfn });
  }

  refs(devPfn: number): number {
    const m = this.find(devPfn);
    return m ? m.refcount[devPfn - m.base] : 0;
  }
}
