// Policy `unsafe-lock-not-pinned`: memory "locked" for a DMA engine that the kernel never pinned,
// the lock-not-pinned report (ROCm/rocm-systems#10628, "Make hsa_amd_memory_lock actually pin under
// the SVM API"): a pageable hipMemcpy has ROCr lock the host source with hsa_amd_memory_lock(),
// whose contract is that the GPU mapping stays valid until the unlock. On a kernel with the KFD SVM
// API, libhsakmt implements the lock as one SET_ATTR without KFD_IOCTL_SVM_FLAG_GPU_ALWAYS_MAPPED,
// so nothing is pinned; and with XNACK on, svm_range_evict keeps a range mapped only when
// `!p->xnack_enabled || (prange->flags & KFD_IOCTL_SVM_FLAG_GPU_ALWAYS_MAPPED)` (kfd_svm.c,
// torvalds/linux at 8f8cc3fb): migration, compaction, khugepaged or reclaim takes the pages "while
// SDMA may still be reading it".
//
// What the model keeps of it: the engine (the SDMA copy the lock was for) works from the
// translations the lock produced, and nothing makes it stop when the pages move:
//   create      "lock": mmu_interval_notifier_insert (the SVM range) and one hmm_range_fault of the
//               whole buffer, mapped into GPUVM with read_retry under the lock; no pin_user_pages.
//   submit      the copy is pushed: it reads through the lock-time translations.
//   invalidate  the range is "locked", so the runtime's engine is not told: set_seq, ack, and the
//               translations stay (no zap, no TLB flush, no wait for the copy in flight). The page
//               moves (compaction's migrate_pages, reclaim) and the engine reads the old frame:
//               the checker's stale_translation.
//   free        "unlock": clear GPUVM, flush, remove the notifier.
// The fixes are the other rows of the lock-not-pinned scenario: a real pin (`pin`:
// pin_user_pages(FOLL_LONGTERM), compaction skips the pages) or XNACK's own path (`kfd-svm`: the
// notifier zaps and flushes, the engine faults and retries).
import { EAGAIN, mmu_interval_read_retry, mmu_interval_set_seq, type Invalidate } from '@svmsim/kernel-mm';
import type { Envelope, Message } from '@svmsim/runtime';
import { boEnd, type Bo } from './bo.js';
import type { Job } from './job.js';
import type { GpuHost, Policy, SubmitOutcome, SubscribedBo } from './policy.js';
import { bindUserPages, getUserPages, registerUserptr, unregisterUserptr } from './user-pages.js';

/** Attempts of the lock's walk before it fails with -EAGAIN (invalidations racing it). */
const LOCK_RETRIES_MAX = 100;

export function createLockNotPinnedPolicy(host: GpuHost): Policy {
  const figures = { lockedInvalidationsIgnored: 0 };

  const lockPages = (bo: Bo, tries: number, done: (ret: number) => void): void => {
    getUserPages(host, bo, (ret, w) => {
      if (ret < 0) return done(ret);
      host.notifierLock.lock(() => {
        if (mmu_interval_read_retry(bo.notifier!, w!.seq)) {
          host.notifierLock.unlock();
          return tries >= LOCK_RETRIES_MAX ? done(EAGAIN) : lockPages(bo, tries + 1, done);
        }
        const changed = bindUserPages(host, w!);
        host.notifierLock.unlock();
        if (changed < 0) return done(changed);
        host.sleep(changed * host.costs.ptePerPageNs, () => done(0));
      });
    });
  };

  return {
    name: 'unsafe-lock-not-pinned',

    createBo(bo: Bo, done: (ret: number) => void): void {
      registerUserptr(host, bo, (ret) => {
        if (ret < 0) return done(ret);
        lockPages(bo, 0, (r) => (r >= 0 ? done(0) : unregisterUserptr(host, bo, () => done(r))));
      });
    },

    submit(job: Job, done: (o: SubmitOutcome) => void): void {
      host.pushJob(job);
      done({ ret: 0, pagesWalked: 0, resubmissions: 0 });
    },

    invalidate(env: Envelope<Message>, m: Invalidate, bo: SubscribedBo): void {
      host.notifierLock.lock(() => {
        mmu_interval_set_seq(host.ctx, env.from, bo.notifier!, m.cur_seq);
        bo.notifier!.known = true;
        // The bug: "locked" memory is trusted not to move, so the engine keeps its translations.
        figures.lockedInvalidationsIgnored++;
        host.stats.unsafeEarlyAcks++;
        if (host.ctx.tracing) host.ctx.trace('gpu_locked_invalidate_ignored', { sub: m.sub, handle: bo.handle, event: m.event, start: m.start, end: m.end });
        host.notifierLock.unlock();
        host.reply(env, { type: 'invalidate_ack', sub: m.sub, ok: true });
      });
    },

    freeBo(bo: Bo, done: () => void): void {
      const cleared = host.vm.clear(bo.pid, bo.addr, boEnd(bo));
      host.flushTlb(cleared, () => unregisterUserptr(host, bo, done));
    },

    summary: () => figures,
  };
}
