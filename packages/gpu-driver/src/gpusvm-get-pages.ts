// drm_gpusvm_get_pages and the two other hmm_range_fault walks of drm_gpusvm.c (torvalds/linux as
// stored at 0542972950ef): how a range gets its pages, and the check that makes binding them safe.
//
//   get_pages   retry: past HMM_RANGE_DEFAULT_TIMEOUT (1 s) → -EBUSY;
//                 seq = mmu_interval_read_begin(notifier);
//                 drm_gpusvm_pages_valid_unlocked → still DMA-mapped: nothing to do;
//                 loop { mmap_read_lock; hmm_range_fault(REQ_FAULT [| REQ_WRITE unless read_only],
//                        dev_private_owner); mmap_read_unlock; -EBUSY → read_begin again }
//                 notifier_lock:
//                   flags.unmapped → -EFAULT (an munmap got there first; the collector removes it);
//                   mmu_interval_read_retry(notifier, seq) → unlock, goto retry;
//                   per page: our device-private page → device_map, else dma_map_page; a mix of
//                   device and system pages, or device pages of two allocations (!allow_mixed) →
//                   -EOPNOTSUPP; a system page under devmem_only → -EFAULT;
//                   has_dma_mapping (and has_devmem_pages) set;
//                 unlock; pages.notifier_seq = seq.
//               Every -EBUSY and every stale read is counted (`getPagesRetries`).
//
//   check_pages drm_gpusvm_check_pages (range creation, chunks up to check_pages_threshold): under the
//               caller's mmap lock, hmm_range_fault without REQ_FAULT: are all pages present?
//
//   evict       drm_gpusvm_range_evict (xe_svm_range_get_pages on -EOPNOTSUPP): hmm_range_fault
//               with REQ_FAULT and dev_private_owner NULL, so every device-private page of the range
//               is faulted back to RAM (migrate_to_ram); then the fault retries.
//
// The binding itself (policy-gpusvm.ts bind) takes the notifier lock again and commits only if
// drm_gpusvm_range_pages_valid still holds: an invalidation between get_pages and the bind cleared
// has_dma_mapping (drm_gpusvm_range_unmap_pages) and the bind answers -EAGAIN. That second check is
// the one `unsafe-gpusvm` skips.
import {
  EBUSY, EFAULT, EOPNOTSUPP, SVMSIM_PFN_DEVICE_PRIVATE, HMM_PFN_ERROR, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, PAGE_SIZE,
  mmu_interval_read_retry, type HmmRangeFaultResult, type MmuIntervalReadBeginResult,
} from '@svmsim/kernel-mm';
import type { UserptrNotifier } from './bo.js';
import type { DrmPagemap } from './gpusvm-pagemap.js';
import type { DrmGpusvmRange } from './gpusvm-ranges.js';
import { retOf, withMmapReadLock, type GpuHost, type Reply } from './policy.js';

/** HMM_RANGE_DEFAULT_TIMEOUT (include/linux/hmm.h): 1000 ms. */
export const HMM_RANGE_DEFAULT_TIMEOUT_NS = 1e9;

/** struct drm_gpusvm_ctx, the fields these walks read. */
export interface DrmGpusvmCtx {
  read_only: boolean;
  devmem_possible: boolean;
  devmem_only: boolean;
  /** ns (the kernel's timeslice_ms). */
  timesliceNs: number;
  check_pages_threshold: number;
}

export interface GpusvmWalkStats {
  /** get_pages round trips repeated: hmm_range_fault -EBUSY or a stale mmu_interval_read_retry. */
  getPagesRetries: number;
  getPagesCalls: number;
  /** get_pages that found the range still DMA-mapped (drm_gpusvm_pages_valid_unlocked). */
  getPagesStillValid: number;
  hmmRangeFaults: number;
  checkPagesCalls: number;
  rangeEvictions: number;
}

export class GpusvmWalks {
  readonly stats: GpusvmWalkStats = { getPagesRetries: 0, getPagesCalls: 0, getPagesStillValid: 0, hmmRangeFaults: 0, checkPagesCalls: 0, rangeEvictions: 0 };

  constructor(
    private readonly host: GpuHost,
    private readonly pagemap: DrmPagemap,
    /** Simulation bound on get_pages' retries besides its 1 s timeout. */
    private readonly retriesMax: number,
  ) {}

  private readBegin(n: UserptrNotifier, then: (ret: number, seq: number) => void): void {
    this.host.call({ type: 'mmu_interval_read_begin', sub: n.sub }, (r) => {
      const ret = retOf(r);
      if (ret < 0) return then(ret, 0);
      const seq = (r as MmuIntervalReadBeginResult).seq;
      if (!n.known) n.invalidate_seq = seq;
      then(0, seq);
    });
  }

  /** hmm_range_fault over [start, end) pages under mmap_read_lock (taken here unless `locked`). */
  private hmmRangeFault(pid: number, n: UserptrNotifier, seq: number, start: number, end: number, flags: number, owner: string | null, locked: boolean, then: (r: Reply) => void): void {
    this.stats.hmmRangeFaults++;
    const req = { type: 'hmm_range_fault' as const, sub: n.sub, notifier_seq: seq, start: start * PAGE_SIZE, end: end * PAGE_SIZE, default_flags: flags, pfn_flags_mask: 0, dev_private_owner: owner };
    if (locked) return this.host.call(req, then);
    withMmapReadLock(this.host, pid, (ret) => then({ type: 'hmm_range_fault_result', ret } as Reply), (unlock) => this.host.call(req, (r) => unlock(() => then(r))));
  }

  /** drm_gpusvm_check_pages of [start, end) (pages); the caller holds mmap_read_lock. */
  checkPages(pid: number, n: UserptrNotifier, start: number, end: number, then: (ok: boolean) => void): void {
    this.stats.checkPagesCalls++;
    let tries = 0;
    const again = (): void => this.readBegin(n, (ret, seq) => {
      if (ret < 0) return then(false);
      this.hmmRangeFault(pid, n, seq, start, end, 0, this.host.id, true, (h) => {
        const hret = retOf(h);
        if (hret === EBUSY && ++tries <= this.retriesMax) return again();
        if (hret < 0) return then(false);
        const res = h as HmmRangeFaultResult;
        for (let i = 0; i < res.flags.length; i++) if (!(res.flags[i] & HMM_PFN_VALID)) return then(false);
        then(true);
      });
    });
    again();
  }

  /**
   * drm_gpusvm_get_pages for the range: done(0) with the range DMA-mapped, or -EFAULT, -EOPNOTSUPP,
   * -EBUSY, -errno from hmm_range_fault.
   */
  getPages(r: DrmGpusvmRange, n: UserptrNotifier, ctx: DrmGpusvmCtx, done: (ret: number) => void): void {
    this.stats.getPagesCalls++;
    const host = this.host;
    const timeout = host.ctx.now() + HMM_RANGE_DEFAULT_TIMEOUT_NS;
    let retries = 0;
    const flags = HMM_PFN_REQ_FAULT | (ctx.read_only ? 0 : HMM_PFN_REQ_WRITE);
    const owner = ctx.devmem_possible ? host.id : null;
    const retry = (): void => {
      if (host.ctx.now() > timeout || retries > this.retriesMax) return done(EBUSY);
      this.readBegin(n, (ret, seq) => {
        if (ret < 0) return done(ret);
        // drm_gpusvm_pages_valid_unlocked: nothing invalidated the pages since the last get_pages.
        if (r.flags.has_dma_mapping) {
          this.stats.getPagesStillValid++;
          r.notifier_seq = seq;
          return done(0);
        }
        const walk = (s: number): void => this.hmmRangeFault(r.pid, n, s, r.start, r.end, flags, owner, false, (h) => {
          const hret = retOf(h);
          if (hret === EBUSY) {
            this.stats.getPagesRetries++;
            retries++;
            if (host.ctx.now() > timeout || retries > this.retriesMax) return done(EBUSY);
            return this.readBegin(n, (r2, s2) => (r2 < 0 ? done(r2) : walk(s2)));
          }
          if (hret < 0) return done(hret);
          this.mapPages(r, n, s, h as HmmRangeFaultResult, ctx, (mret) => {
            if (mret === 1) {
              this.stats.getPagesRetries++;
              retries++;
              return retry();
            }
            done(mret);
          });
        });
        walk(seq);
      });
    };
    retry();
  }

  /** The map_pages part of get_pages, under the notifier lock: done(0), done(1) for "goto retry", or -errno. */
  private mapPages(r: DrmGpusvmRange, n: UserptrNotifier, seq: number, res: HmmRangeFaultResult, ctx: DrmGpusvmCtx, done: (ret: number) => void): void {
    const host = this.host;
    const lock = host.notifierLock;
    lock.lock(() => {
      const out = (ret: number): void => {
        lock.unlock();
        done(ret);
      };
      if (r.flags.unmapped || r.removed) return out(EFAULT);
      if (mmu_interval_read_retry(n, seq)) {
        if (host.ctx.tracing) host.ctx.trace('gpu_svm_read_retry', { sub: n.sub, seq, invalidate_seq: n.invalidate_seq, start: r.start * PAGE_SIZE, end: r.end * PAGE_SIZE });
        return out(1);
      }
      const npages = r.end - r.start;
      if (res.flags.length !== npages) throw new Error(`gpusvm: hmm_range_fault gave ${res.flags.length} pfns for a range of ${npages} pages`);
      let devmem = -1; // -1 unknown, 0 system, 1 ours
      let alloc: unknown;
      for (let i = 0; i < npages; i++) {
        const f = res.flags[i];
        if (f & HMM_PFN_ERROR || !(f & HMM_PFN_VALID)) {
          host.warn('hmm_range_fault succeeded with a page the GPU cannot map', { vpn: r.start + i, flags: f });
          return out(EFAULT);
        }
        const dev = (f & SVMSIM_PFN_DEVICE_PRIVATE) !== 0;
        if (dev) {
          const a = this.pagemap.allocationOf(r.pid, r.start + i);
          // !ctx->allow_mixed: device pages of one zdd (allocation) only, and no system pages beside them.
          if (devmem === 0 || (i > 0 && a !== alloc)) return out(EOPNOTSUPP);
          alloc = a;
          devmem = 1;
        } else {
          if (devmem === 1) return out(EOPNOTSUPP);
          if (ctx.devmem_only) return out(EFAULT);
          devmem = 0;
        }
      }
      r.pfns.set(res.pfns);
      r.pfnFlags.set(res.flags);
      r.flags.has_dma_mapping = true;
      r.flags.has_devmem_pages = devmem === 1;
      r.notifier_seq = seq;
      // dma_map_page / device_map per page: the driver's own work, under the lock.
      host.sleep(npages * host.costs.faultPerPageNs, () => out(0));
    });
  }

  /** drm_gpusvm_range_evict: fault every page of the range into RAM (dev_private_owner NULL). */
  evict(r: DrmGpusvmRange, n: UserptrNotifier, done: (ret: number) => void): void {
    this.stats.rangeEvictions++;
    let tries = 0;
    const again = (): void => this.readBegin(n, (ret, seq) => {
      if (ret < 0) return done(ret);
      this.hmmRangeFault(r.pid, n, seq, r.start, r.end, HMM_PFN_REQ_FAULT, null, false, (h) => {
        const hret = retOf(h);
        if (hret === EBUSY && ++tries <= this.retriesMax) return again();
        done(hret < 0 ? hret : 0);
      });
    });
    again();
  }
}
