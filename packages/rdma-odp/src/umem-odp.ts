// ib_umem_odp (drivers/infiniband/core/umem_odp.c, the v5.13–v6.15 form with `fault` and dma_list;
// the hmm_dma_map rewrite of v6.16 is not followed, errata 21):
//
//   ib_umem_odp_get / _alloc_child   an mmu_interval_notifier over the umem (ib_init_umem_odp),
//                                    nothing mapped.
//   ib_umem_odp_map_dma_and_lock     the fault path's heart, returning with umem_mutex HELD so the
//                                    caller writes the MTT before any invalidation can run:
//       retry: seq = mmu_interval_read_begin(notifier)
//              mmap_read_lock(owning_mm) around
//              hmm_range_fault(default_flags = fault ? REQ_FAULT [| REQ_WRITE if access_mask has
//                              ODP_WRITE_ALLOWED] : 0); -EBUSY → retry until
//                              HMM_RANGE_DEFAULT_TIMEOUT (1 s), then the error
//              mutex_lock(umem_mutex)
//              mmu_interval_read_retry(notifier, seq) → unlock, retry (no limit in the kernel, errata 16)
//              per page: fault → the page must be VALID; snapshot → skip pages not VALID, access from
//              HMM_PFN_WRITE; ib_umem_odp_map_dma_single_page: DMA-map a new page, or resync the
//              access bits of one already mapped (which may take WRITE away: a PREFETCH downgrade)
//              return the pages of the range, mutex held
//   ib_umem_odp_unmap_dma_pages      under umem_mutex: DMA-unmap every mapped page of the range and
//                                    set_page_dirty those mapped writable (counted: mm's protocol has
//                                    no set_page_dirty; mm dirties a page when a mirror DMA writes it).
//
// The race it closes, as mmu_interval_read_begin's comment draws it:
//      fault worker                          mm
//      seq = read_begin                      (page present)
//      hmm_range_fault → pfn                 invalidate_range_start → mlx5_ib_invalidate_range:
//                                              umem_mutex; set_seq; zap MTT; unmap; unlock; ack
//      umem_mutex; read_retry(seq) → true    PTE changes, the frame is freed
//      unlock; retry                         (without it the MTT would point at the freed frame)
import {
  EBUSY, EFAULT, EINVAL, HMM_PFN_ERROR, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE, PAGE_SIZE,
  mmu_interval_read_retry, type HmmRangeFault, type HmmRangeFaultResult, type MmuIntervalNotifierInsertResult, type MmuIntervalReadBeginResult,
} from '@svmsim/kernel-mm';
import type { LeafMr } from './mr.js';
import { MTT_READ, MTT_WRITE, ODP_WRITE_ALLOWED } from './mtt.js';
import { retOf, type NicHost } from './nic.js';

/** HMM_RANGE_DEFAULT_TIMEOUT: how long -EBUSY answers are retried, simulated ns (1000 ms). */
export const HMM_RANGE_DEFAULT_TIMEOUT_NS = 1e9;
/** read_retry restarts of one call before it fails with -EBUSY: a simulation bound (the kernel retries without limit). */
export const ODP_READ_RETRIES_MAX = 10_000;

/** ib_init_umem_odp: the notifier over [startVa, startVa + pages·PAGE_SIZE); done(0) or done(-errno). */
export function ib_umem_odp_get(host: NicHost, mr: LeafMr, done: (ret: number) => void): void {
  host.call(host.mm, { type: 'mmu_interval_notifier_insert', pid: mr.pid, start: mr.startVa, length: mr.mtt.entries * PAGE_SIZE }, (r) => {
    const ret = retOf(r);
    if (ret < 0) return done(ret);
    const sub = (r as unknown as MmuIntervalNotifierInsertResult).sub;
    mr.notifier = { sub, invalidate_seq: 0, known: false };
    host.bySub.set(sub, mr);
    host.trace('rdma_odp_notifier', { key: mr.key, sub, pid: mr.pid, start: mr.startVa, pages: mr.mtt.entries });
    done(0);
  });
}

/** mmu_interval_notifier_remove (ib_umem_odp_release); then `done`. */
export function ib_umem_odp_release(host: NicHost, mr: LeafMr, done: () => void): void {
  const n = mr.notifier;
  if (!n) return done();
  host.call(host.mm, { type: 'mmu_interval_notifier_remove', sub: n.sub }, () => {
    host.bySub.delete(n.sub);
    mr.notifier = null;
    done();
  });
}

/**
 * Map bytes [va, va + bcnt) of the umem for DMA; `done(np)` with umem_mutex held (np: the pages of
 * the range), or `done(-errno)` without it. `write`: the access mask has ODP_WRITE_ALLOWED;
 * `fault`: fault pages in (else a snapshot of those present).
 */
export function ib_umem_odp_map_dma_and_lock(host: NicHost, mr: LeafMr, va: number, bcnt: number, write: boolean, fault: boolean, done: (np: number) => void): void {
  const end = mr.startVa + mr.mtt.entries * PAGE_SIZE;
  if (va < mr.startVa || va + bcnt > end || bcnt <= 0) return done(EFAULT);
  const n = mr.notifier;
  if (!n) return done(EFAULT);
  const start = va - (va % PAGE_SIZE);
  const stop = Math.min(end, Math.ceil((va + bcnt) / PAGE_SIZE) * PAGE_SIZE);
  const first = (start - mr.startVa) / PAGE_SIZE;
  const np = (stop - start) / PAGE_SIZE;
  const deadline = host.ctx.now() + HMM_RANGE_DEFAULT_TIMEOUT_NS;
  let restarts = 0;
  const retry = (): void => {
    host.call(host.mm, { type: 'mmu_interval_read_begin', sub: n.sub }, (rb) => {
      const rret = retOf(rb);
      if (rret < 0) return done(rret);
      const seq = (rb as unknown as MmuIntervalReadBeginResult).seq;
      if (!n.known) n.invalidate_seq = seq;
      const m: HmmRangeFault = {
        type: 'hmm_range_fault', sub: n.sub, notifier_seq: seq, start, end: stop,
        default_flags: fault ? HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0) : 0, pfn_flags_mask: 0, dev_private_owner: null,
      };
      // mmap_read_lock(owning_mm); hmm_range_fault(&range); mmap_read_unlock(owning_mm)
      host.call(host.mm, { type: 'mmap_read_lock', pid: mr.pid }, (l) => {
      const lret = retOf(l);
      if (lret < 0) return done(EINVAL); // mmget_not_zero failed (the process is gone): -EINVAL, as umem_odp.c
      host.call(host.mm, m, (h) => host.call(host.mm, { type: 'mmap_read_unlock', pid: mr.pid }, () => {
        const hret = retOf(h);
        if (hret === EBUSY && host.ctx.now() <= deadline) {
          host.stats.ebusyRetries++;
          return retry();
        }
        if (hret < 0) return done(hret);
        const res = h as unknown as HmmRangeFaultResult;
        mr.umemMutex.lock(() => {
          if (mmu_interval_read_retry(n, seq)) {
            mr.umemMutex.unlock();
            host.stats.readRetries++;
            if (++restarts > ODP_READ_RETRIES_MAX) {
              host.warn('ib_umem_odp_map_dma_and_lock: read_retry without progress', { key: mr.key, restarts });
              return done(EBUSY);
            }
            return retry();
          }
          let mapped = 0;
          for (let i = 0; i < np; i++) {
            const f = res.flags[i];
            if (!(f & HMM_PFN_VALID) || f & HMM_PFN_ERROR) {
              if (fault) {
                // hmm_range_fault asked to populate cannot return such an entry on success (WARN_ON).
                mr.umemMutex.unlock();
                host.warn('hmm_range_fault succeeded with a page not valid', { key: mr.key, page: first + i, flags: f });
                return done(EFAULT);
              }
              continue;
            }
            const w = fault ? write : (f & HMM_PFN_WRITE) !== 0;
            if (mr.mtt.mapDma(first + i, res.pfns[i], seq, w)) mapped++;
          }
          host.sleep(mapped * host.costs.dmaMapPerPageNs, () => done(np));
        });
      }));
      });
    });
  };
  retry();
}

/** Under umem_mutex: DMA-unmap the mapped entries of [from, to); returns how many (the caller charges their cost). */
export function ib_umem_odp_unmap_dma_pages(host: NicHost, mr: LeafMr, from: number, to: number): number {
  let unmapped = 0;
  mr.mtt.forEachAllocated(from, to, (i) => {
    const was = mr.mtt.unmapDma(i);
    if (was === 0) return;
    // The ZAP came first: the device no longer translates through an entry being unmapped.
    if (mr.mtt.flags(i) & (MTT_READ | MTT_WRITE)) throw new Error(`${host.id}: mkey 0x${mr.key.toString(16)} entry ${i} unmapped while the MTT still maps it`);
    unmapped++;
    // set_page_dirty of a page mapped writable
    if (was & ODP_WRITE_ALLOWED) host.stats.pagesDirtiedAtUnmap++;
  });
  host.stats.pagesUnmapped += unmapped;
  return unmapped;
}
