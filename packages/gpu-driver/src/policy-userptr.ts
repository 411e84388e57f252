// Policy `userptr`: amdgpu's gfx userptr BOs (drivers/gpu/drm/amd/amdgpu/amdgpu_gem.c, amdgpu_hmm.c,
// amdgpu_cs.c, amdgpu_ttm.c; read in v6.6 and the latest tree, research/drivers.md §1):
//   create   amdgpu_gem_userptr_ioctl with the flags libdrm's amdgpu_create_bo_from_user_mem always
//            passes (Mesa, RADV): ANONONLY | REGISTER | VALIDATE.
//              REGISTER  amdgpu_hmm_register: one mmu_interval_notifier over [addr, addr + size)
//              VALIDATE  amdgpu_ttm_tt_get_user_pages now: vma_lookup of the first page → no VMA
//                        -EFAULT; ANONONLY and vma->vm_file → -EPERM (a file mapping, or shared
//                        anonymous memory, cannot be a gfx userptr BO); then the whole-BO walk,
//                        and ttm_bo_validate into GTT (sg table + dma_map of every page).
//            Any failure releases the BO (the notifier goes) and the ioctl returns the error.
//   submit   amdgpu_cs_parser_bos → amdgpu_ttm_tt_get_user_pages for EVERY userptr BO of the job:
//            read_begin, hmm_range_fault of the WHOLE BO (REQ_FAULT, + REQ_WRITE unless read-only);
//            -EBUSY per era (user-pages.ts: v6.6 retries within 1 s per 512 MiB, latest returns
//            -EAGAIN and the ioctl restarts). The result is compared with ttm->pages; a BO with any
//            page changed is revalidated WHOLE (e->user_invalidated: TTM unbind + dma_unmap of the old
//            sg table, amdgpu_ttm_tt_set_user_pages, validate to GTT: sg table + dma_map of every
//            page, then amdgpu_vm_bo_update rewrites every PTE of the mapping): `rebindPerPageNs`
//            and `ptePerPageNs` per page of the BO, not per page that changed.
//            Then amdgpu_cs_submit under adev->notifier_lock: amdgpu_hmm_range_valid (=
//            !mmu_interval_read_retry) per BO; stale → unlock, -EAGAIN, libdrm's drmIoctl restarts
//            the ioctl (a resubmission); else add the job's fence to every BO, push it, unlock.
//   DMA      through GPUVM, translation {via:'mirror', sub, seq}
//   invalidate  amdgpu_hmm_invalidate_gfx: non-blockable → false (every one, whatever runs).
//            Else mutex_lock(notifier_lock), mmu_interval_set_seq, then dma_resv_wait_timeout(
//            BOOKKEEP, MAX_SCHEDULE_TIMEOUT): wait, with no bound of its own, for the BO's fences
//            (v6.6, v6.15: bo->tbo.base.resv) or, after v6.15, amdgpu_vm_bo_invalidate (the
//            mapping marked moved) and the VM root's resv (bo->parent: every job of the process);
//            a job timeout (job-timeout.ts) is what bounds it. unlock; return true. GPUVM is NOT
//            cleared and the TLB not flushed: the entries stay until the next CS revalidates the BO
//            (nothing of the BO runs in between: the fences were waited for, and a new CS fails
//            read_retry).
//   free     once the fences signalled: clear GPUVM, mmu_interval_notifier_remove.
//
// `unsafe-userptr` acks at once (set_seq under the lock, no fence wait): the running job keeps
// writing through the old GPUVM entries. The checker must flag stale_translation.
import {
  EAGAIN, EFAULT, EPERM, mmu_interval_read_retry, mmu_interval_set_seq, type Invalidate, type InvalidateMultipass, type InvalidatePass, type VmaLookupResult,
} from '@svmsim/kernel-mm';
import { PassTable, takeSecondPass } from './multipass.js';
import type { Envelope, Message } from '@svmsim/runtime';
import type { Bo } from './bo.js';
import { bindUserPages, getUserPages, registerUserptr, unregisterUserptr, type WalkedBo } from './user-pages.js';
import { waitFences, type Job } from './job.js';
import { retOf, type GpuHost, type Policy, type SubmitOutcome, type SubscribedBo } from './policy.js';

export interface UserptrOptions {
  unsafe: boolean;
  /** Restarts of one submission before -EAGAIN reaches the app (libdrm loops forever; a simulation bound). */
  maxResubmits: number;
}

/** AMDGPU_GEM_USERPTR_* (include/uapi/drm/amdgpu_drm.h). */
export const AMDGPU_GEM_USERPTR_READONLY = 1 << 0;
export const AMDGPU_GEM_USERPTR_ANONONLY = 1 << 1;
export const AMDGPU_GEM_USERPTR_VALIDATE = 1 << 2;
export const AMDGPU_GEM_USERPTR_REGISTER = 1 << 3;
/** What libdrm's amdgpu_create_bo_from_user_mem passes, always (amdgpu/amdgpu_bo.c). */
export const LIBDRM_USERPTR_FLAGS = AMDGPU_GEM_USERPTR_ANONONLY | AMDGPU_GEM_USERPTR_REGISTER | AMDGPU_GEM_USERPTR_VALIDATE;

export function createUserptrPolicy(host: GpuHost, opts: UserptrOptions): Policy {
  const lock = host.notifierLock;
  const flags = LIBDRM_USERPTR_FLAGS;

  /** amdgpu_ttm_tt_get_user_pages: under mmap_read_lock, the ANONONLY check on the first VMA, then the whole-BO walk. */
  const getPages = (bo: Bo, done: (ret: number, w: WalkedBo | undefined, walked: number) => void): void => {
    getUserPages(host, bo, done, (then) =>
      host.call({ type: 'vma_lookup', pid: bo.pid, addr: bo.addr }, (r) => {
        const ret = retOf(r);
        if (ret < 0) return then(EFAULT);
        if (flags & AMDGPU_GEM_USERPTR_ANONONLY && (r as VmaLookupResult).file) return then(EPERM);
        then(0);
      }),
    );
  };

  /** ttm_bo_validate into GTT after new pages: unbind and dma_unmap the old sg table, dma_map every page, rewrite every PTE. ns. */
  /** Second passes handed out (multipass.ts): the fences each waits for. */
  const passes = new PassTable<{ handle: number; jobs: Job[]; firstNs: number }>();

  const revalidateNs = (bo: Bo): number => bo.pages * (host.costs.rebindPerPageNs + host.costs.ptePerPageNs);

  return {
    name: opts.unsafe ? 'unsafe-userptr' : 'userptr',

    createBo(bo: Bo, done: (ret: number) => void): void {
      if (!(flags & AMDGPU_GEM_USERPTR_REGISTER)) return done(0);
      registerUserptr(host, bo, (ret) => {
        if (ret < 0 || !(flags & AMDGPU_GEM_USERPTR_VALIDATE)) return done(ret);
        getPages(bo, (gret, w, walked) => {
          const fail = (e: number) => unregisterUserptr(host, bo, () => done(e));
          if (gret < 0) {
            if (host.ctx.tracing) host.ctx.trace('gpu_userptr_refused', { fn: 'amdgpu_ttm_tt_get_user_pages', handle: bo.handle, ret: gret, flags: 'ANONONLY|REGISTER|VALIDATE' });
            return fail(gret);
          }
          host.sleep(walked * host.costs.walkPerPageNs, () =>
            lock.lock(() => {
              // The pages are current if no invalidation came in meanwhile; if one did, the first CS walks again.
              const stale = mmu_interval_read_retry(bo.notifier!, w!.seq);
              const c = stale ? 0 : bindUserPages(host, w!);
              lock.unlock();
              if (c < 0) return fail(c);
              host.stats.bosRevalidated++;
              host.sleep(stale ? 0 : revalidateNs(bo), () => done(0));
            }),
          );
        });
      });
    },

    submit(job: Job, done: (o: SubmitOutcome) => void): void {
      let pagesWalked = 0;
      let resubmissions = 0;
      // The job's userptr BOs (its VRAM BOs are TTM's, not ours).
      const userptrBos = job.bos.filter((b) => b.domain === 'userptr');
      const restart = (): void => {
        resubmissions++;
        if (host.ctx.tracing) host.ctx.trace('gpu_cs_eagain', { job: job.id, resubmissions });
        if (resubmissions > opts.maxResubmits) return done({ ret: EAGAIN, pagesWalked, resubmissions });
        attempt();
      };
      const attempt = (): void => {
        const walkedBos: WalkedBo[] = [];
        let pagesWalkedThisAttempt = 0;
        const next = (i: number): void => {
          if (i === userptrBos.length) return void host.sleep(pagesWalkedThisAttempt * host.costs.walkPerPageNs, validate);
          getPages(userptrBos[i], (ret, w, walked) => {
            pagesWalked += walked;
            pagesWalkedThisAttempt += walked;
            if (ret === EAGAIN) return restart(); // latest: hmm_range_fault's -EBUSY, the ioctl restarts
            if (ret < 0) return done({ ret, pagesWalked, resubmissions });
            walkedBos.push(w!);
            next(i + 1);
          });
        };
        // amdgpu_cs_submit
        const validate = (): void => {
          lock.lock(() => {
            if (walkedBos.some((w) => mmu_interval_read_retry(w.bo.notifier!, w.seq))) {
              lock.unlock();
              return restart();
            }
            let revalidate = 0;
            for (const w of walkedBos) {
              const c = bindUserPages(host, w);
              if (c < 0) {
                lock.unlock();
                return done({ ret: c, pagesWalked, resubmissions });
              }
              if (c > 0) {
                // e->user_invalidated: the whole BO goes through TTM again, not just what changed.
                host.stats.bosRevalidated++;
                host.stats.pagesRevalidated += w.bo.pages;
                revalidate += revalidateNs(w.bo);
              }
            }
            host.pushJob(job);
            lock.unlock();
            host.sleep(revalidate, () => done({ ret: 0, pagesWalked, resubmissions }));
          });
        };
        next(0);
      };
      attempt();
    },

    invalidate(env: Envelope<Message>, m: Invalidate, bo: SubscribedBo): void {
      const ack = (ok: boolean) => host.reply(env, { type: 'invalidate_ack', sub: m.sub, ok });
      const n = bo.notifier;
      if (!m.blockable) {
        // if (!mmu_notifier_range_blockable(range)) return false;
        host.stats.invalidationsRefused++;
        return ack(false);
      }
      const t0 = host.ctx.now();
      lock.lock(() => {
        mmu_interval_set_seq(host.ctx, env.from, n, m.cur_seq);
        n.known = true;
        // The reservation waited on: the BO's (v6.6, v6.15) or the VM root's (after v6.15: every job of the process).
        const jobs = host.era.invalidateWaitsVm ? host.vmJobs(bo.pid) : [...bo.fences];
        if (opts.unsafe) {
          // The bug: ack without waiting; the jobs keep running through the GPUVM entries.
          if (bo.fences.size > 0) host.stats.unsafeEarlyAcks++;
          lock.unlock();
          host.stats.invalidateWaitNs.push(host.ctx.now() - t0);
          return ack(true);
        }
        if (host.ctx.tracing && jobs.length > 0) host.ctx.trace('gpu_invalidate_wait', { fn: 'amdgpu_hmm_invalidate_gfx', sub: m.sub, handle: bo.handle, jobs: jobs.map((j) => j.id) });
        waitFences(jobs.map((j) => j.fence), () => {
          lock.unlock();
          host.stats.invalidateWaitNs.push(host.ctx.now() - t0);
          if (host.ctx.tracing) host.ctx.trace('gpu_invalidate_done', { sub: m.sub, handle: bo.handle, waitedNs: host.ctx.now() - t0 });
          ack(true);
        });
      });
    },

    // The two-pass RFC (multipass.ts) as its later revisions convert xe's userptr notifier
    // (xe_vma_userptr_invalidate as invalidate_start / invalidate_finish, Thomas Hellström, v3 of
    // 2026-03): the first pass marks the BO invalid (set_seq under the lock) and enables signalling
    // on the reservation's fences; if they have all signalled already it finishes at once (pass
    // null). The second pass waits for them. Here, as in amdgpu's gfx userptr, nothing has to be
    // started for a fence to signal (the jobs run to their end whatever the notifier does) and
    // GPUVM is neither cleared nor flushed, so the wait moves to the second pass but is not
    // shortened: the fences of several GPUs' jobs were already running side by side.
    invalidateMultipass(env: Envelope<Message>, m: InvalidateMultipass, bo: SubscribedBo): void {
      const ack = (ok: boolean, pass: number | null) => host.reply(env, { type: 'invalidate_multipass_ack', sub: m.sub, ok, pass });
      const n = bo.notifier;
      if (!m.blockable) {
        host.stats.invalidationsRefused++;
        return ack(false, null);
      }
      const t0 = host.ctx.now();
      lock.lock(() => {
        mmu_interval_set_seq(host.ctx, env.from, n, m.cur_seq);
        n.known = true;
        const jobs = (host.era.invalidateWaitsVm ? host.vmJobs(bo.pid) : [...bo.fences]).filter((j) => !j.fence.signalled);
        lock.unlock();
        if (opts.unsafe && bo.fences.size > 0) host.stats.unsafeEarlyAcks++;
        if (opts.unsafe || jobs.length === 0) {
          // Nothing to wait for (or the unsafe twin's bug: not waiting): done in one pass.
          host.stats.invalidateWaitNs.push(host.ctx.now() - t0);
          return ack(true, null);
        }
        if (host.ctx.tracing) host.ctx.trace('gpu_invalidate_wait', { fn: 'xe_vma_userptr_invalidate_start', sub: m.sub, handle: bo.handle, jobs: jobs.map((j) => j.id) });
        ack(true, passes.add({ handle: bo.handle, jobs, firstNs: host.ctx.now() - t0 }));
      });
    },

    invalidatePass(env: Envelope<Message>, m: InvalidatePass): void {
      const done = () => host.reply(env, { type: 'invalidate_pass_done', sub: m.sub, next: null });
      const p = takeSecondPass(host, passes, env, m);
      if (!p) return;
      const t0 = host.ctx.now();
      // invalidate_finish: dma_resv_wait_timeout(BOOKKEEP) on what the first pass saw.
      waitFences(p.jobs.map((j) => j.fence), () => {
        host.stats.invalidateWaitNs.push(p.firstNs + host.ctx.now() - t0);
        if (host.ctx.tracing) host.ctx.trace('gpu_invalidate_done', { sub: m.sub, handle: p.handle, pass: m.pass, waitedNs: host.ctx.now() - t0 });
        done();
      });
    },

    freeBo(bo: Bo, done: () => void): void {
      unregisterUserptr(host, bo, done);
    },
  };
}
