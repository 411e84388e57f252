// A userptr BO's interval notifier and its pages, shared by the policies that subscribe to BOs
// (userptr, preempt; svm-fault subscribes too) and those that walk whole BOs (userptr at each
// submission, preempt in its restore worker):
//   registerUserptr    amdgpu_hmm_register: mmu_interval_notifier_insert over [addr, addr + size)
//   unregisterUserptr  amdgpu_hmm_unregister: mmu_interval_notifier_remove
//   getUserPages   amdgpu_ttm_tt_get_user_pages (amdgpu_ttm.c) → amdgpu_hmm_range_get_pages
//                  (amdgpu_hmm.c, v6.6 and the latest tree, read at 0eaed89c): mmap_read_lock(mm)
//                  for the whole of it (vma_lookup, read_begin, hmm_range_fault of the WHOLE BO with
//                  HMM_PFN_REQ_FAULT (+ HMM_PFN_REQ_WRITE unless read-only), v6.6's -EBUSY retries),
//                  then mmap_read_unlock: an munmap / mprotect of the process waits behind the walk.
//   bindUserPages  under the notifier lock, after read_retry said the pages are current: write the
//                  BO's GPUVM entries (amdgpu_vm_update_range) with translation {via:'mirror', sub, seq}.
import {
  EAGAIN, EBUSY, EFAULT, HMM_PFN_ERROR, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE,
  type HmmRangeFaultResult, type MmuIntervalNotifierInsert, type MmuIntervalNotifierInsertResult, type MmuIntervalReadBeginResult,
} from '@svmsim/kernel-mm';
import { boEnd, boFirstVpn, type Bo } from './bo.js';
import { hmmBusyBudgetNs } from './kernel-era.js';
import { retOf, withMmapReadLock, type GpuHost } from './policy.js';

/** Subscribe the BO: done(0), or done(-errno) from mm. */
export function registerUserptr(host: GpuHost, bo: Bo, done: (ret: number) => void): void {
  // The ops the driver registers: with invalidate_multipass when the device key asks for it.
  const insert: MmuIntervalNotifierInsert = { type: 'mmu_interval_notifier_insert', pid: bo.pid, start: bo.addr, length: boEnd(bo) - bo.addr };
  if (host.multipass) insert.multipass = true;
  host.call(insert, (r) => {
    const ret = retOf(r);
    if (ret < 0) return done(ret);
    const sub = (r as MmuIntervalNotifierInsertResult).sub;
    bo.notifier = { sub, invalidate_seq: 0, known: false };
    host.bySub.set(sub, bo);
    if (host.ctx.tracing) host.ctx.trace('gpu_userptr_register', { handle: bo.handle, sub, pid: bo.pid, addr: bo.addr, pages: bo.pages });
    done(0);
  });
}

/** Clear the BO's GPUVM entries (a TLB flush if any were mapped) and remove its notifier; then done. */
export function unregisterUserptr(host: GpuHost, bo: Bo, done: () => void): void {
  if (host.vm.clear(bo.pid, bo.addr, boEnd(bo)) > 0) host.vm.flushTlb();
  const n = bo.notifier;
  if (!n) return done();
  host.call({ type: 'mmu_interval_notifier_remove', sub: n.sub }, () => {
    host.bySub.delete(n.sub);
    bo.notifier = null;
    done();
  });
}

/** A BO's pages as one hmm_range_fault returned them, and the notifier sequence they are valid for. */
export interface WalkedBo {
  bo: Bo;
  seq: number;
  res: HmmRangeFaultResult;
}

/**
 * amdgpu_hmm_range_get_pages: read_begin → hmm_range_fault of the whole BO. What -EBUSY (an
 * invalidation raced the walk) does is the era's (kernel-era.ts `hmmBusy`):
 *   'budget'  v6.6/v6.15: read_begin again until 1 s per 512 MiB (HMM_RANGE_DEFAULT_TIMEOUT ×
 *             max(bytes >> 29, 1)) has passed since the walk began, then -EBUSY: a time budget,
 *             not a count ("FIXME: This timeout should encompass the retry from
 *             mmu_interval_read_retry() as well": a stale read_retry is not charged to it);
 *   'eagain'  latest: no retry here; -EBUSY becomes -EAGAIN for the caller (the CS restarts).
 * `walked`: pages walked, every attempt counted.
 */
export function getUserPages(
  host: GpuHost,
  bo: Bo,
  done: (ret: number, w: WalkedBo | undefined, walked: number) => void,
  /** Run under the lock before the walk (amdgpu_ttm_tt_get_user_pages' vma_lookup checks): ret < 0 ends it. */
  underLock?: (then: (ret: number) => void) => void,
): void {
  withMmapReadLock(host, bo.pid, (ret) => done(ret, undefined, 0), (unlock) => {
    // mmap_read_unlock, then the caller goes on: the lock is not held across CS submit.
    const unlockThen = (ret: number, w: WalkedBo | undefined, walked: number): void => unlock(() => done(ret, w, walked));
    if (!underLock) return walkBo(host, bo, unlockThen);
    underLock((ret) => (ret < 0 ? unlockThen(ret, undefined, 0) : walkBo(host, bo, unlockThen)));
  });
}

/** amdgpu_hmm_range_get_pages, the caller holding mmap_read_lock. */
function walkBo(host: GpuHost, bo: Bo, done: (ret: number, w: WalkedBo | undefined, walked: number) => void): void {
  const n = bo.notifier!;
  let walked = 0;
  const deadline = host.ctx.now() + hmmBusyBudgetNs(bo.pages);
  const again = (): void => {
    host.call({ type: 'mmu_interval_read_begin', sub: n.sub }, (r) => {
      const ret = retOf(r);
      if (ret < 0) return done(ret, undefined, walked);
      const seq = (r as MmuIntervalReadBeginResult).seq;
      if (!n.known) n.invalidate_seq = seq;
      const default_flags = HMM_PFN_REQ_FAULT | (bo.readonly ? 0 : HMM_PFN_REQ_WRITE);
      host.call(
        { type: 'hmm_range_fault', sub: n.sub, notifier_seq: seq, start: bo.addr, end: boEnd(bo), default_flags, pfn_flags_mask: 0, dev_private_owner: null },
        (h) => {
          walked += bo.pages;
          const hret = retOf(h);
          if (hret === EBUSY) {
            host.stats.ebusyRetries++;
            if (host.era.hmmBusy === 'eagain') return done(EAGAIN, undefined, walked);
            if (host.ctx.now() > deadline) return done(EBUSY, undefined, walked);
            return again();
          }
          if (hret < 0) return done(hret, undefined, walked);
          done(0, { bo, seq, res: h as HmmRangeFaultResult }, walked);
        },
      );
    });
  };
  again();
}

/** Under the notifier lock, pages current: write the BO's GPUVM entries. Returns how many changed, or -EFAULT. */
export function bindUserPages(host: GpuHost, w: WalkedBo): number {
  const { bo, seq, res } = w;
  const first = boFirstVpn(bo);
  for (let i = 0; i < bo.pages; i++) {
    const f = res.flags[i];
    if (f & HMM_PFN_ERROR || !(f & HMM_PFN_VALID) || (!bo.readonly && !(f & HMM_PFN_WRITE))) {
      host.warn('hmm_range_fault succeeded with a page the BO cannot use', { handle: bo.handle, page: i, flags: f });
      return EFAULT;
    }
  }
  let changed = 0;
  for (let i = 0; i < bo.pages; i++) {
    const pfn = res.pfns[i];
    const writable = (res.flags[i] & HMM_PFN_WRITE) !== 0 && !bo.readonly;
    if (host.vm.set(bo.pid, first + i, { pfn, writable, tr: { via: 'mirror', sub: bo.notifier!.sub, seq } })) changed++;
  }
  return changed;
}
