// Policy `preempt`: KFD's userptr BOs (ROCm compute), drivers/gpu/drm/amd/amdgpu/amdgpu_amdkfd_gpuvm.c
// and amdgpu_hmm.c as of v6.6 (research/drivers.md §2a). User-mode queues cannot be gated per job,
// so an invalidation stops all of the process's queues, and a worker fixes the BOs and restarts them:
//   create      amdgpu_amdkfd_gpuvm_alloc_memory_of_gpu(USERPTR) → init_user_pages: amdgpu_hmm_register,
//               get the whole BO's pages, validate and map it in GPUVM (here under the process's
//               notifier_lock with read_retry, the same check the restore worker makes).
//   submit      a user-mode queue's doorbell: nothing walked, nothing bound. While the process's
//               queues are stopped the job waits in its queue.
//   invalidate  amdgpu_hmm_invalidate_hsa: non-blockable → false. Blockable →
//               amdgpu_amdkfd_evict_userptr: mutex_lock(process_info->notifier_lock),
//               mmu_interval_set_seq, mem->invalid++, and when ++evicted_bos == 1:
//               kgd2kfd_quiesce_mm (preempt every queue of the process; it returns once the HWS has
//               unmapped them: `preemptNs`) and queue restore_userptr_work after
//               AMDGPU_USERPTR_RESTORE_DELAY_MS (1 ms); unlock; true. GPUVM is left as it is: no
//               queue of the process runs until the worker rewrote it.
//   restore     amdgpu_amdkfd_restore_userptr_worker:
//               (1) update_invalid_user_pages: for each BO with mem->invalid, note it, drop the lock,
//                   get the whole BO's pages (-EFAULT counts as success: the GPU VM-faults later,
//                   better than queues stalled for ever; such a BO keeps mem->invalid and stays on
//                   the list, walked again at the next restore; other errors retry), retake the
//                   lock; if mem->invalid changed meanwhile → -EAGAIN, else mem->invalid = 0.
//               (2) validate_invalid_user_pages: write the BOs' GPUVM entries and wait for the update.
//               (3) under notifier_lock: evicted_bos changed since (1) → retry; any BO whose
//                   read_retry fails → retry; else evicted_bos = 0 and kgd2kfd_resume_mm (`resumeNs`).
//               Every retry is queued again after 1 ms.
//   free        amdgpu_amdkfd_gpuvm_free_memory_of_gpu once its fences signalled: unmap, amdgpu_hmm_unregister.
//   eviction fence  every KFD BO's reservation holds the process's eviction fence, so TTM moving a
//               VRAM BO out waits on it (vram-bos.ts): amdkfd_fence_enable_signaling →
//               kgd2kfd_schedule_evict_and_restore_process: after the process has run
//               PROCESS_ACTIVE_TIME_MS (10 ms) since its last restore, evict_process_worker stops
//               every queue of the process (`preemptNs`) and signals the fence; the move goes on.
//               PROCESS_RESTORE_TIME_MS (100 ms) later restore_process_worker validates the
//               process's BOs back into VRAM (amdgpu_amdkfd_gpuvm_restore_process_bos), attaches a
//               new fence and resumes the queues (kfd_process_restore_queues).
//
// kfd-svm with XNACK off (`waitUpdateUnderLock`, policy-kfd-svm.ts) runs the same machinery as
// svm_range_restore_work → svm_range_validate_and_map (kfd_svm.c, torvalds/linux at 8f8cc3fb; the
// same lines in 248951ddc14d): the walk, then svm_range_lock(prange), read_retry, and
// svm_range_map_to_gpus(wait = true), which waits for the page-table update's fence
// (dma_fence_wait(fence, false): no timeout) before svm_range_unlock. svm_range_cpu_invalidate_pagetables
// takes the same svm_range_lock, so while the worker waits every invalidation of the range waits
// behind it. `hangRestoreFence: N` (fault injection, hang-fence with `restore: N`) makes the N-th
// restore's update fence one that never signals: the worker holds the lock for good and the first
// invalidation after it (kswapd0's, as in the report the kswapd-fence-hang scenario follows) is a
// hung task. The callback traces what it waits on (gpu_invalidate_wait with `lock`, `holder`,
// `holderWaits`) so that the hung-task report can print the chain.
//
// svmsim departures: the lock is per process as in KFD (kfd-svm: one per process, where KFD has one
// per range), and queues belong to the process of their job's first BO. The restore moves BOs back
// only into free VRAM (KFD's may evict others).
import { EAGAIN, EFAULT, mmu_interval_read_retry, mmu_interval_set_seq, type Invalidate, type Pid } from '@svmsim/kernel-mm';
import type { Envelope, Message } from '@svmsim/runtime';
import { boEnd, type Bo } from './bo.js';
import type { Job } from './job.js';
import { Mutex } from './lock.js';
import type { GpuHost, Policy, SubmitOutcome, SubscribedBo } from './policy.js';
import { bindUserPages, getUserPages, registerUserptr, unregisterUserptr, type WalkedBo } from './user-pages.js';

export interface PreemptOptions {
  /** kgd2kfd_quiesce_mm: preempting the process's queues (HWS unmap_queues, CWSR wave save), ns. */
  preemptNs: number;
  /** kgd2kfd_resume_mm: mapping the queues again, ns. */
  resumeNs: number;
  /** AMDGPU_USERPTR_RESTORE_DELAY_MS: the restore worker's delay after the first eviction and after a failed attempt, ns. */
  restoreDelayNs: number;
  /** Retries of BO creation's get-pages before it fails with -EAGAIN. */
  maxCreateRetries: number;
  /** PROCESS_ACTIVE_TIME_MS: how long a process runs after a restore before an eviction fence may stop it again, ns. */
  processActiveNs: number;
  /** PROCESS_RESTORE_TIME_MS: from an eviction-fence eviction to the restore of the process, ns. */
  processRestoreNs: number;
  /**
   * kfd-svm XNACK off: the restore waits for its page-table update's fence holding the lock the
   * notifier takes (svm_range_validate_and_map → svm_range_map_to_gpus(wait = true) under
   * svm_range_lock). KFD userptr's validate_invalid_user_pages waits outside notifier_lock.
   */
  waitUpdateUnderLock: boolean;
  /** Fault injection: the page-table update fence of the N-th restore (from 1) never signals (0: none). */
  hangRestoreFence: number;
  /** The names the trace and the hung-task chain use for the worker and the lock. */
  names: { restore: string; lock: string; notifier: string };
}

export const DEFAULT_PREEMPT: PreemptOptions = {
  // No published figure; order-of-magnitude estimate because the HWS unmaps the queues and CWSR saves every wave's registers and
  // LDS. The kernel bounds it only by timeouts (queue_preemption_timeout_ms 9000, KFD_UNMAP_LATENCY_MS), which are not latencies.
  preemptNs: 100_000,
  // No published figure; estimate because resuming is a map_queues packet to the HWS with the saved state restored lazily.
  resumeNs: 20_000,
  // AMDGPU_USERPTR_RESTORE_DELAY_MS (amdgpu_amdkfd_gpuvm.c): 1 ms.
  restoreDelayNs: 1_000_000,
  // A simulation bound, not a kernel figure.
  maxCreateRetries: 1000,
  // PROCESS_ACTIVE_TIME_MS (kfd_priv.h): 10 ms.
  processActiveNs: 10_000_000,
  // PROCESS_RESTORE_TIME_MS (kfd_priv.h): 100 ms.
  processRestoreNs: 100_000_000,
  waitUpdateUnderLock: false,
  hangRestoreFence: 0,
  names: { restore: 'amdgpu_amdkfd_restore_userptr_worker', lock: 'process_info->notifier_lock', notifier: 'amdgpu_hmm_invalidate_hsa' },
};

/** amdkfd_process_info: one per process using the GPU. */
interface ProcessInfo {
  pid: Pid;
  notifierLock: Mutex;
  /** Invalidations since the last successful restore. */
  evictedBos: number;
  /** The process's userptr BOs, with how many invalidations each has taken since it was last revalidated (mem->invalid). */
  bos: Map<Bo, number>;
  restoreQueued: boolean;
  /** userptr_inval_list: BOs being revalidated, with the pages their last walk got (null: not walked yet). */
  inval: Map<Bo, WalkedBo | 'efault' | null>;
  /** The eviction fence: 'armed' (unsignalled, on every BO), 'evicting' (the worker is on its way; moves wait), 'signalled' (queues stopped until the restore). */
  fence: 'armed' | 'evicting' | 'signalled';
  /** TTM moves waiting for the fence to signal. */
  fenceWaiters: (() => void)[];
  /** When the process was last restored from an eviction-fence eviction (-inf: never evicted). */
  lastRestore: number;
  /** While the restore worker holds notifierLock across a wait: what it waits for, since when (for the hung-task chain). */
  holder: { waits: string; since: number } | null;
}

export function createPreemptPolicy(host: GpuHost, o: Partial<PreemptOptions>): Policy {
  const opts: PreemptOptions = { ...DEFAULT_PREEMPT, ...o };
  const processes = new Map<Pid, ProcessInfo>();
  const figures = { evictions: 0, restores: 0, restoreRetries: 0, restorePagesWalked: 0, fenceEvictions: 0, restoreAttempts: 0, restoreHmmCalls: 0, restoreFenceHangs: 0 };
  let restoreUpdates = 0;

  /** kgd2kfd_schedule_evict_and_restore_process → evict_process_worker → (later) restore_process_worker. */
  const evictionFence = (bo: Bo, then: () => void): void => {
    const p = infoOf(bo.pid);
    if (p.fence === 'signalled') return then();
    p.fenceWaiters.push(then);
    if (p.fence === 'evicting') return;
    p.fence = 'evicting';
    const delay = Math.max(0, p.lastRestore + opts.processActiveNs - host.ctx.now());
    host.sleep(delay, () => {
      trace('kfd_evict_process', { pid: p.pid, handle: bo.handle });
      figures.fenceEvictions++;
      host.sleep(opts.preemptNs, () => {
        host.queues.quiesce(p.pid);
        p.fence = 'signalled';
        for (const w of p.fenceWaiters.splice(0)) w();
        host.sleep(opts.processRestoreNs, () => {
          // restore_process_worker: BOs back into VRAM, a new fence, queues back.
          host.vramBos.restoreToVram(p.pid, () =>
            host.sleep(opts.resumeNs, () => {
              p.fence = 'armed';
              p.lastRestore = host.ctx.now();
              host.queues.resume(p.pid);
              trace('kfd_restore_process', { pid: p.pid });
            }),
          );
        });
      });
    });
  };

  const infoOf = (pid: Pid): ProcessInfo => {
    let p = processes.get(pid);
    if (!p) processes.set(pid, (p = { pid, notifierLock: new Mutex(`kfd notifier_lock of pid ${pid}`), evictedBos: 0, bos: new Map(), restoreQueued: false, inval: new Map(), fence: 'armed', fenceWaiters: [], lastRestore: -Infinity, holder: null }));
    return p;
  };

  const trace = (ev: string, fields: Record<string, unknown>) => {
    if (host.ctx.tracing) host.ctx.trace(ev, fields);
  };

  const queueRestore = (p: ProcessInfo): void => {
    if (p.restoreQueued) return;
    p.restoreQueued = true;
    host.sleep(opts.restoreDelayNs, () => {
      p.restoreQueued = false;
      restore(p);
    });
  };

  /** amdgpu_amdkfd_restore_userptr_worker. */
  const restore = (p: ProcessInfo): void => {
    const evicted = p.evictedBos;
    if (evicted === 0) return;
    figures.restoreAttempts++;
    const retry = (why: string): void => {
      figures.restoreRetries++;
      trace('kfd_restore_retry', { pid: p.pid, why });
      queueRestore(p);
    };
    // (1) update_invalid_user_pages: invalidated BOs join the invalid list; those invalidated
    // since their last walk are walked again, the others keep the pages a failed attempt got.
    for (const [bo, n] of p.bos) if (n > 0 && !p.inval.has(bo)) p.inval.set(bo, null);
    const list = [...p.inval.keys()];
    const update = (i: number): void => {
      if (i === list.length) return validate();
      const bo = list[i];
      const seen = p.bos.get(bo);
      if (seen === undefined || (seen === 0 && p.inval.get(bo) !== null)) return update(i + 1);
      getUserPages(host, bo, (ret, w, pages) => {
        figures.restorePagesWalked += pages;
        figures.restoreHmmCalls++;
        if (ret < 0 && ret !== EFAULT) return retry(`get_user_pages ${ret}`);
        p.notifierLock.lock(() => {
          const now = p.bos.get(bo);
          if (now !== undefined && now !== seen) {
            p.notifierLock.unlock();
            return retry('BO invalidated again while its pages were got');
          }
          if (now !== undefined && w) {
            p.bos.set(bo, 0);
            p.inval.set(bo, w);
          } else if (now !== undefined) {
            // -EFAULT: no pages (the GPU will VM-fault on the BO rather than the queues stall). It
            // stays invalid and on the list (mem->invalid kept, no mem->range): the next restore
            // walks it again.
            p.inval.set(bo, 'efault');
          }
          p.notifierLock.unlock();
          update(i + 1);
        });
      });
    };
    // (2) validate_invalid_user_pages: rewrite the GPUVM entries of every BO of the list.
    const validate = (): void => {
      p.notifierLock.lock(() => {
        let changed = 0;
        for (const [bo, pages] of p.inval) {
          if (pages === 'efault') {
            if (host.vm.clear(bo.pid, bo.addr, boEnd(bo)) > 0) changed++;
          } else if (pages !== null) changed += Math.max(0, bindUserPages(host, pages));
        }
        const update = ++restoreUpdates;
        if (opts.waitUpdateUnderLock && update === opts.hangRestoreFence) {
          // svm_range_map_to_gpus: dma_fence_wait(fence, false) on an update fence that never
          // signals, inside svm_range_lock. Nothing here unlocks: the worker is stuck for good.
          figures.restoreFenceHangs++;
          p.holder = { waits: `the page-table update fence of restore #${update} (dma_fence_wait, no timeout; never signalled: fault injection)`, since: host.ctx.now() };
          trace('kfd_restore_fence_hang', { pid: p.pid, fn: opts.names.restore, lock: opts.names.lock, update });
          return;
        }
        if (!opts.waitUpdateUnderLock) p.notifierLock.unlock();
        else p.holder = { waits: `the page-table update fence of restore #${update} (dma_fence_wait)`, since: host.ctx.now() };
        // The queues are stopped; the restore's flush lands before they resume (not counted, as before).
        host.sleep(changed * host.costs.ptePerPageNs + (changed > 0 ? host.costs.tlbFlushNs : 0), () => {
          if (changed > 0) host.vm.flushTlb(false);
          if (opts.waitUpdateUnderLock) {
            p.holder = null;
            p.notifierLock.unlock();
          }
          confirm();
        });
      });
    };
    // (3) confirm_valid_user_pages_locked, then resume.
    const confirm = (): void => {
      p.notifierLock.lock(() => {
        if (p.evictedBos !== evicted) {
          p.notifierLock.unlock();
          return retry('evicted again during the restore');
        }
        // confirm_valid_user_pages_locked: a BO without pages (-EFAULT) is skipped and stays listed.
        for (const [bo, pages] of p.inval) {
          if (pages === 'efault') continue;
          if (pages === null || mmu_interval_read_retry(bo.notifier!, pages.seq) || (p.bos.get(bo) ?? 0) > 0) {
            p.notifierLock.unlock();
            return retry('read_retry');
          }
        }
        let rebound = 0;
        for (const [bo, pages] of p.inval) {
          if (pages === 'efault') continue;
          p.inval.delete(bo);
          rebound++;
        }
        p.evictedBos = 0;
        figures.restores++;
        host.sleep(opts.resumeNs, () => {
          host.queues.resume(p.pid);
          trace('kfd_restore_done', { pid: p.pid, bos: rebound });
          p.notifierLock.unlock();
        });
      });
    };
    update(0);
  };

  /** Get the BO's pages and map it, retrying while invalidations intervene (init_user_pages + map_memory_to_gpu). */
  const mapBo = (bo: Bo, p: ProcessInfo, tries: number, done: (ret: number) => void): void => {
    getUserPages(host, bo, (ret, w) => {
      if (ret < 0) return done(ret);
      p.notifierLock.lock(() => {
        if (mmu_interval_read_retry(bo.notifier!, w!.seq)) {
          p.notifierLock.unlock();
          if (tries >= opts.maxCreateRetries) return done(EAGAIN);
          return mapBo(bo, p, tries + 1, done);
        }
        const changed = bindUserPages(host, w!);
        if (changed < 0) {
          p.notifierLock.unlock();
          return done(changed);
        }
        p.bos.set(bo, 0);
        p.notifierLock.unlock();
        host.sleep(changed * host.costs.ptePerPageNs, () => done(0));
      });
    });
  };

  return {
    name: 'preempt',

    createBo(bo: Bo, done: (ret: number) => void): void {
      registerUserptr(host, bo, (ret) => {
        if (ret < 0) return done(ret);
        mapBo(bo, infoOf(bo.pid), 0, (r) => {
          if (r >= 0) return done(0);
          unregisterUserptr(host, bo, () => done(r));
        });
      });
    },

    submit(job: Job, done: (o: SubmitOutcome) => void): void {
      host.pushJob(job);
      done({ ret: 0, pagesWalked: 0, resubmissions: 0 });
    },

    invalidate(env: Envelope<Message>, m: Invalidate, bo: SubscribedBo): void {
      const ack = (ok: boolean) => host.reply(env, { type: 'invalidate_ack', sub: m.sub, ok });
      if (!m.blockable) {
        host.stats.invalidationsRefused++;
        return ack(false);
      }
      const p = infoOf(bo.pid);
      const t0 = host.ctx.now();
      // Blocked behind the restore worker: say on what, for the hung-task chain (analysis wait-for.ts).
      const blocked = p.notifierLock.locked && p.holder !== null;
      if (blocked && host.ctx.tracing) {
        host.ctx.trace('gpu_invalidate_wait', { fn: opts.names.notifier, sub: m.sub, handle: bo.handle, jobs: [], lock: opts.names.lock, holder: opts.names.restore, holderSince: p.holder!.since, holderWaits: p.holder!.waits });
      }
      p.notifierLock.lock(() => {
        if (blocked && host.ctx.tracing) host.ctx.trace('gpu_invalidate_done', { sub: m.sub, handle: bo.handle, waitedNs: host.ctx.now() - t0 });
        mmu_interval_set_seq(host.ctx, env.from, bo.notifier!, m.cur_seq);
        bo.notifier!.known = true;
        if (p.bos.has(bo)) p.bos.set(bo, p.bos.get(bo)! + 1);
        figures.evictions++;
        const finish = (): void => {
          p.notifierLock.unlock();
          host.stats.invalidateWaitNs.push(host.ctx.now() - t0);
          ack(true);
        };
        if (++p.evictedBos !== 1) return finish();
        // The first eviction: stop the queues; the notifier returns once they are off the GPU.
        trace('kfd_quiesce', { pid: p.pid, sub: m.sub, event: m.event });
        host.sleep(opts.preemptNs, () => {
          host.queues.quiesce(p.pid);
          queueRestore(p);
          finish();
        });
      });
    },

    freeBo(bo: Bo, done: () => void): void {
      const p = infoOf(bo.pid);
      p.notifierLock.lock(() => {
        p.bos.delete(bo);
        p.inval.delete(bo);
        p.notifierLock.unlock();
        unregisterUserptr(host, bo, done);
      });
    },

    evictionFence,

    summary: () => figures,
  };
}
