// drm_pagemap as xe uses it for SVM ranges (drivers/gpu/drm/drm_pagemap.c as stored at
// 10dd1eaa80a5 in torvalds/linux, and xe_svm.c xe_drm_pagemap_populate_mm at 0131514f9789): device
// memory allocations, the migration of a range into them, and the time slice that keeps pages there.
//
//   to VRAM       xe_svm_alloc_vram → drm_pagemap_populate_mm (mmap_read_lock) →
//                 xe_drm_pagemap_populate_mm (a VRAM BO of the range's size: TTM may evict others,
//                 xe_svm_bo_evict → drm_pagemap_evict_to_ram) → drm_pagemap_migrate_to_devmem:
//                 migrate_vma_setup(SELECT_SYSTEM | SELECT_DEVICE_COHERENT); "we want to migrate all
//                 or nothing": cpages != npages (a file or KSM page, a pinned one, our own
//                 device-private pages) → -EBUSY and nothing moves; copy_to_devmem; on success
//                 `timeslice_expiration = jiffies + msecs_to_jiffies(timeslice_ms)`. The VRAM pages
//                 themselves, the copy and the eviction of older ranges are svm-vram.ts's.
//   migrate_to_ram  drm_pagemap_migrate_to_ram → __drm_pagemap_migrate_to_ram: "if
//                 (time_before64(get_jiffies_64(), zdd->devmem_allocation->timeslice_expiration))
//                 return 0": a CPU fault inside the allocation's time slice migrates nothing and
//                 returns 0, so the CPU retries the access and faults again until the slice is over.
//                 Only a CPU fault checks it: drm_pagemap_evict_to_ram (TTM eviction) does not.
//
// The slice is non-zero only for the allocations an atomic fault made (xe: ctx.timeslice_ms =
// atomic_svm_timeslice_ms, 5 ms, when the fault needs VRAM for its atomics, doubled at each retry of
// the fault): it gives the GPU's atomics time to run before the CPU takes the pages back, so that
// the two do not livelock bouncing them ("prevent a migration livelock", the comment above
// drm_pagemap_migrate_to_devmem).
//
// Departure: the CPU's loop of refaults while the slice lasts is one wait inside migrate_to_ram,
// after mm's MMU_NOTIFY_MIGRATE for the fault (the kernel's check comes before its migrate_vma_setup,
// so nothing is invalidated while it refuses; here the GPU keeps its VRAM entries through that
// invalidation, policy-gpusvm.ts). The wait is counted (`timesliceRefusals`, `timesliceWaitNs`).
import { EBUSY, PAGE_SIZE, type Pid } from '@svmsim/kernel-mm';
import type { Bo } from './bo.js';
import type { GpuHost } from './policy.js';
import { pageKey, type SvmVram } from './svm-vram.js';

/** xe_device_create: xe->atomic_svm_timeslice_ms = 5. */
export const XE_ATOMIC_SVM_TIMESLICE_MS_DEFAULT = 5;

/** struct drm_pagemap_devmem: one range's migration into VRAM. In pages. */
export interface DrmPagemapDevmem {
  readonly pid: Pid;
  readonly start: number;
  readonly end: number;
  /** devmem_allocation->timeslice_expiration, simulated ns. */
  readonly timeslice_expiration: number;
}

export class DrmPagemap {
  /** (pid, vpn) → the allocation its VRAM page belongs to (page->zone_device_data->devmem_allocation). */
  private readonly byPage = new Map<number, DrmPagemapDevmem>();
  readonly stats = {
    /** drm_pagemap_migrate_to_devmem calls that moved the whole range. */
    migrationsToVram: 0,
    /** ... that moved nothing (-EBUSY: not every page could be collected, or VRAM was short). */
    migrationsBusy: 0,
    /** CPU faults on a VRAM page inside its allocation's time slice: __drm_pagemap_migrate_to_ram returned 0 without migrating. */
    timesliceRefusals: 0,
    /** Total time CPU faults spent refused by time slices, ns. */
    timesliceWaitNs: 0,
  };

  constructor(
    private readonly host: GpuHost,
    private readonly vram: SvmVram,
  ) {}

  /**
   * drm_pagemap_populate_mm → drm_pagemap_migrate_to_devmem of [start, end) (pages) of the BO with
   * a slice of timesliceNs. The caller does not hold the mmap lock (svm-vram takes it around
   * setup … finalize, as drm_pagemap_populate_mm does). done(0) or done(-EBUSY).
   */
  migrateToDevmem(bo: Bo, start: number, end: number, timesliceNs: number, done: (ret: number) => void): void {
    if (!this.vram.enabled) throw new Error('gpusvm: a migration to VRAM on a GPU without VRAM (devmem_possible is false there)');
    this.vram.migrateToVram(bo, start, end, (migrated) => {
      if (migrated < end - start) {
        // "Raced while finalizing migration" or nothing collected: -EBUSY. A partial move cannot
        // happen with allOrNothing (svm-vram.ts); assert it.
        if (migrated > 0) throw new Error(`gpusvm: drm_pagemap_migrate_to_devmem moved ${migrated} of ${end - start} pages`);
        this.stats.migrationsBusy++;
        return done(EBUSY);
      }
      const a: DrmPagemapDevmem = { pid: bo.pid, start, end, timeslice_expiration: this.host.ctx.now() + timesliceNs };
      for (let v = start; v < end; v++) this.byPage.set(pageKey(bo.pid, v), a);
      this.stats.migrationsToVram++;
      if (this.host.ctx.tracing) this.host.ctx.trace('gpusvm_migrate_to_devmem', { pid: bo.pid, start: start * PAGE_SIZE, end: end * PAGE_SIZE, timesliceNs });
      done(0);
    }, false, true);
  }

  /** The allocation a VRAM page of (pid, vpn) came from, if it is still one of ours. */
  allocationOf(pid: Pid, vpn: number): DrmPagemapDevmem | undefined {
    return this.vram.has(pid, vpn) ? this.byPage.get(pageKey(pid, vpn)) : undefined;
  }

  /**
   * __drm_pagemap_migrate_to_ram's time-slice check for a CPU fault on (pid, vpn): `then` at once
   * when the slice is over (or the page has none), else when it ends, the CPU having been refused
   * meanwhile.
   */
  waitTimeslice(pid: Pid, vpn: number, then: () => void): void {
    const a = this.allocationOf(pid, vpn);
    const waitNs = a ? a.timeslice_expiration - this.host.ctx.now() : 0;
    if (waitNs <= 0) return then();
    this.stats.timesliceRefusals++;
    this.stats.timesliceWaitNs += waitNs;
    if (this.host.ctx.tracing) this.host.ctx.trace('gpusvm_timeslice_refuse', { pid, addr: vpn * PAGE_SIZE, waitNs });
    this.host.sleep(waitNs, then);
  }

  /** The page went home (or its BO went away): it no longer belongs to an allocation. */
  forgetPage(pid: Pid, vpn: number): void {
    this.byPage.delete(pageKey(pid, vpn));
  }

  forget(pid: Pid, start: number, end: number): void {
    for (let v = start; v < end; v++) this.byPage.delete(pageKey(pid, v));
  }
}
