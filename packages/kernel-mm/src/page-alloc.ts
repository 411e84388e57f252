// Page allocation with watermarks (mm/page_alloc.c __alloc_pages → get_page_from_freelist, then
// __alloc_pages_slowpath). v6.x.
//
//   free > low           take a frame (fast path, ALLOC_WMARK_LOW)
//   min < free <= low    wake kswapd, take a frame (retry at ALLOC_WMARK_MIN)
//   free <= min          direct reclaim in the allocating task's context (here: the operation that
//                        allocates waits), retry; MAX_RECLAIM_RETRIES rounds without progress →
//                        out_of_memory (the OOM killer), then retry once more; else -ENOMEM.
//
// The allocating operation is a continuation: it resumes when a frame is had, or with -1.
import type { Kernel } from './kernel.js';
import { PG_LOCKED } from './physmem.js';

/** mm/internal.h: reclaim rounds without progress before the OOM killer is invoked. */
export const MAX_RECLAIM_RETRIES = 16;
/** mm/vmscan.c reclaim_throttle: an allocation that made no progress sleeps up to HZ/10; 1 ms here. */
const RECLAIM_THROTTLE_NS = 1e6;

/** Hooks the reclaim and OOM files install (kept apart so that each mechanism has its own file). */
export interface ReclaimHooks {
  wakeKswapd(k: Kernel): void;
  /** try_to_free_pages in the context of `task`: calls `then(nrReclaimed)`. */
  directReclaim(k: Kernel, nr: number, task: string, then: (reclaimed: number) => void): void;
  /** out_of_memory: kill a victim; `then(true)` once memory may have been freed, false if none. */
  outOfMemory(k: Kernel, then: (killed: boolean) => void): void;
}

export const reclaimHooks: ReclaimHooks = {
  wakeKswapd: () => {},
  directReclaim: (_k, _nr, _task, then) => then(0),
  outOfMemory: (_k, then) => then(false),
};

/**
 * alloc_pages(GFP_HIGHUSER_MOVABLE or GFP_HIGHUSER) by `task` (task.ts: who does direct reclaim):
 * `then(pfn)`, or `then(-1)` (-ENOMEM).
 */
export function alloc_page(k: Kernel, movable: boolean, task: string, then: (pfn: number) => void): void {
  const pm = k.pm;
  if (pm.nrFree > pm.wmarkLow) return then(pm.alloc(movable));
  reclaimHooks.wakeKswapd(k);
  if (pm.nrFree > pm.wmarkMin) {
    const pfn = pm.alloc(movable);
    if (pfn >= 0) return then(pfn);
  }
  slowpath(k, movable, task, 0, k.ctx.now(), then);
}

/**
 * Traced as the kernel's tracepoints name it: `mm_vmscan_direct_reclaim_begin` / `_end` around each
 * round of direct reclaim, and `alloc_stall` {task, ns, ok} when the allocation leaves the slow path.
 */
function slowpath(k: Kernel, movable: boolean, task: string, round: number, startNs: number, then: (pfn: number) => void): void {
  k.stats.directReclaims++;
  if (k.ctx.tracing) k.ctx.trace('mm_vmscan_direct_reclaim_begin', { task, free: k.pm.nrFree });
  const stalled = (pfn: number) => {
    k.stats.directReclaimNs.push(k.ctx.now() - startNs);
    if (k.ctx.tracing) k.ctx.trace('alloc_stall', { task, ns: k.ctx.now() - startNs, ok: pfn >= 0 });
    then(pfn);
  };
  reclaimHooks.directReclaim(k, 32, task, (reclaimed) => {
    const pm = k.pm;
    if (k.ctx.tracing) k.ctx.trace('mm_vmscan_direct_reclaim_end', { task, nr_reclaimed: reclaimed, free: pm.nrFree });
    if (pm.nrFree > pm.wmarkMin || (reclaimed > 0 && pm.nrFree > 0)) {
      const pfn = pm.alloc(movable);
      if (pfn >= 0) return stalled(pfn);
    }
    if (reclaimed > 0 || round + 1 < MAX_RECLAIM_RETRIES) {
      // Progress, or retries left: sleep a little (reclaim_throttle) so that I/O, acks and other
      // work move on in simulated time, then retry.
      k.afterNs(RECLAIM_THROTTLE_NS, () => slowpath(k, movable, task, reclaimed > 0 ? 0 : round + 1, startNs, then));
      return;
    }
    reclaimHooks.outOfMemory(k, (killed) => {
      const pfn = pm.nrFree > 0 ? pm.alloc(movable) : -1;
      if (pfn >= 0 || !killed) return stalled(pfn);
      k.stats.directReclaimNs.push(k.ctx.now() - startNs);
      k.afterNs(RECLAIM_THROTTLE_NS, () => slowpath(k, movable, task, 0, startNs, then));
    });
  });
}

// ---- page lock (folio_lock / folio_unlock / folio_wait_locked) ----

export function lockPage(k: Kernel, pfn: number): void {
  k.pm.flags[pfn] |= PG_LOCKED;
}

export function unlockPage(k: Kernel, pfn: number): void {
  k.pm.flags[pfn] &= ~PG_LOCKED;
  const waiters = k.pageWaiters.get(pfn);
  if (waiters) {
    k.pageWaiters.delete(pfn);
    for (const w of waiters) w();
  }
}

/** Run `then` once the page is unlocked (now if it is). */
export function waitOnPage(k: Kernel, pfn: number, then: () => void): void {
  if (!(k.pm.flags[pfn] & PG_LOCKED)) return then();
  let w = k.pageWaiters.get(pfn);
  if (!w) k.pageWaiters.set(pfn, (w = []));
  w.push(then);
}
