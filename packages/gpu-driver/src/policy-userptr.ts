// Policy `userptr`: amdgpu's gfx userptr BOs today (drivers/gpu/drm/amd/amdgpu/amdgpu_hmm.c,
// amdgpu_cs.c, amdgpu_ttm.c; research/drivers.md §1):
//   create   amdgpu_hmm_register: one mmu_interval_notifier per BO over [addr, addr + size)
//   submit   amdgpu_cs_parser_bos → amdgpu_ttm_tt_get_user_pages → amdgpu_hmm_range_get_pages:
//            for EVERY userptr BO of the job, mmu_interval_read_begin then hmm_range_fault of the
//            WHOLE BO (HMM_PFN_REQ_FAULT, + REQ_WRITE unless read-only), whatever the job touches;
//            -EBUSY → read_begin again. Then amdgpu_cs_submit: under adev->notifier_lock,
//            amdgpu_hmm_range_valid (= !mmu_interval_read_retry) for each BO; any stale → unlock,
//            -EAGAIN, and libdrm's drmIoctl restarts the whole ioctl (counted as a resubmission);
//            else (still under the lock) write GPUVM from the pfns, add the job's fence to every
//            BO's reservation, push the job, unlock.
//   DMA      through GPUVM, translation {via:'mirror', sub, seq} (seq: the one read_retry validated)
//   invalidate  amdgpu_hmm_invalidate_gfx: blockable → mutex_lock(notifier_lock),
//            mmu_interval_set_seq, dma_resv_wait_timeout(BOOKKEEP, MAX_SCHEDULE_TIMEOUT): wait,
//            unbounded, for every unsignalled fence on the BO; then (here) clear the overlap from
//            GPUVM and flush the TLB; unlock; return true. Non-blockable (the OOM reaper) → false
//            when a job on the BO is running (amdgpu returns false for every non-blockable
//            invalidation; svmsim refuses only when it would have to wait), else clear and true.
//   free     once the fences signalled: clear GPUVM, mmu_interval_notifier_remove.
//
// `unsafe-userptr` acks at once (set_seq under the lock, no fence wait, no unbind): the running
// job keeps writing through the stale GPUVM entries. The checker must flag stale_translation.
import { EAGAIN, mmu_interval_read_retry, mmu_interval_set_seq, type Invalidate } from '@svmsim/kernel-mm';
import type { Envelope, Message } from '@svmsim/runtime';
import { boEnd, type Bo } from './bo.js';
import { bindUserPages, getUserPages, registerUserptr, unregisterUserptr, type WalkedBo } from './user-pages.js';
import { waitFences, type Job } from './job.js';
import type { GpuHost, Policy, SubmitOutcome, SubscribedBo } from './policy.js';

export interface UserptrOptions {
  unsafe: boolean;
  /** Restarts of one submission before -EAGAIN reaches the app (libdrm loops forever; a simulation bound). */
  maxResubmits: number;
  /** -EBUSY answers to one BO's hmm_range_fault before giving up with -EBUSY (the kernel's 1 s timeout bound). */
  maxBusyRetries: number;
}

export function createUserptrPolicy(host: GpuHost, opts: UserptrOptions): Policy {
  const lock = host.notifierLock;

  return {
    name: opts.unsafe ? 'unsafe-userptr' : 'userptr',

    createBo(bo: Bo, done: (ret: number) => void): void {
      registerUserptr(host, bo, done);
    },

    submit(job: Job, done: (o: SubmitOutcome) => void): void {
      let pagesWalked = 0;
      let resubmissions = 0;
      // The job's userptr BOs (its VRAM BOs are TTM's, not ours).
      const userptrBos = job.bos.filter((b) => b.domain === 'userptr');
      const attempt = (): void => {
        const walkedBos: WalkedBo[] = [];
        const next = (i: number): void => {
          if (i === userptrBos.length) return void host.sleep(pagesWalkedThisAttempt * host.costs.walkPerPageNs, validate);
          getUserPages(host, userptrBos[i], opts.maxBusyRetries, (ret, w, walked) => {
            pagesWalked += walked;
            pagesWalkedThisAttempt += walked;
            if (ret < 0) return done({ ret, pagesWalked, resubmissions });
            walkedBos.push(w!);
            next(i + 1);
          });
        };
        let pagesWalkedThisAttempt = 0;
        // amdgpu_cs_submit
        const validate = (): void => {
          lock.lock(() => {
            const stale = walkedBos.some((w) => mmu_interval_read_retry(w.bo.notifier!, w.seq));
            if (stale) {
              lock.unlock();
              resubmissions++;
              if (host.ctx.tracing) host.ctx.trace('gpu_cs_eagain', { job: job.id, resubmissions });
              if (resubmissions > opts.maxResubmits) return done({ ret: EAGAIN, pagesWalked, resubmissions });
              return attempt();
            }
            let changed = 0;
            for (const w of walkedBos) {
              const c = bindUserPages(host, w);
              if (c < 0) {
                lock.unlock();
                return done({ ret: c, pagesWalked, resubmissions });
              }
              changed += c;
            }
            host.pushJob(job);
            lock.unlock();
            host.sleep(changed * host.costs.ptePerPageNs, () => done({ ret: 0, pagesWalked, resubmissions }));
          });
        };
        next(0);
      };
      attempt();
    },

    invalidate(env: Envelope<Message>, m: Invalidate, bo: SubscribedBo): void {
      const ack = (ok: boolean) => host.reply(env, { type: 'invalidate_ack', sub: m.sub, ok });
      const n = bo.notifier;
      const start = Math.max(m.start, bo.addr);
      const end = Math.min(m.end, boEnd(bo));
      if (!m.blockable) {
        if (!lock.trylock()) {
          host.stats.invalidationsRefused++;
          return ack(false);
        }
        if (bo.fences.size > 0 && !opts.unsafe) {
          lock.unlock();
          host.stats.invalidationsRefused++;
          return ack(false);
        }
        mmu_interval_set_seq(n, m.cur_seq);
        n.known = true;
        if (!opts.unsafe && host.vm.clear(bo.pid, start, end) > 0) host.vm.tlbFlushes++;
        lock.unlock();
        return ack(true);
      }
      const t0 = host.ctx.now();
      lock.lock(() => {
        mmu_interval_set_seq(n, m.cur_seq);
        n.known = true;
        const fences = [...bo.fences].map((j) => j.fence);
        if (opts.unsafe) {
          // The bug: ack without waiting; the GPU keeps its entries and its jobs keep running.
          if (fences.length > 0) host.stats.unsafeEarlyAcks++;
          lock.unlock();
          host.stats.invalidateWaitNs.push(host.ctx.now() - t0);
          return ack(true);
        }
        if (host.ctx.tracing && fences.length > 0) host.ctx.trace('gpu_invalidate_wait', { fn: 'amdgpu_hmm_invalidate_gfx', sub: m.sub, handle: bo.handle, jobs: [...bo.fences].map((j) => j.id) });
        waitFences(fences, () => {
          const cleared = host.vm.clear(bo.pid, start, end);
          const finish = (): void => {
            lock.unlock();
            host.stats.invalidateWaitNs.push(host.ctx.now() - t0);
            if (host.ctx.tracing) host.ctx.trace('gpu_invalidate_done', { sub: m.sub, handle: bo.handle, cleared, waitedNs: host.ctx.now() - t0 });
            ack(true);
          };
          host.flushTlb(cleared, finish);
        });
      });
    },

    freeBo(bo: Bo, done: () => void): void {
      unregisterUserptr(host, bo, done);
    },
  };
}
