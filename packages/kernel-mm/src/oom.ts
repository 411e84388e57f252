// The OOM killer and the OOM reaper (mm/oom_kill.c out_of_memory → select_bad_process /
// oom_badness, __oom_kill_process, queue_oom_reaper → oom_reap_task → __oom_reap_task_mm).
// Followed: a v6.18-era copy.
//
//   out_of_memory: if a victim is still on its way out (tsk_is_oom_victim and not MMF_OOM_SKIP),
//     kill nobody and let the allocation wait; else pick the live process with the largest
//     oom_badness (rss + swap entries) and SIGKILL it: its owner actor is told, and it exits
//     (exit_mmap, whose blockable notifiers may wait on a device).
//   the OOM reaper, OOM_REAPER_DELAY later, if the victim has not finished exiting: for each
//     private VMA, MMU_NOTIFY_UNMAP (v6.6) with mmu_notifier_invalidate_range_start_nonblock; a
//     driver that would have to sleep answers -EAGAIN and that VMA is skipped; otherwise its PTEs
//     are zapped. Up to MAX_OOM_REAP_RETRIES passes, HZ/10 apart; then MMF_OOM_SKIP, and the
//     OOM killer may pick another victim.
import { exit_mmap } from './exit.js';
import { mmap_read_trylock, mmap_read_unlock } from './mmap-lock.js';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './invalidate.js';
import type { Kernel } from './kernel.js';
import { reclaimHooks } from './page-alloc.js';
import { PTE_KIND_MASK, PTE_MIGRATION } from './page-table.js';
import type { Process } from './process.js';
import { EAGAIN, PAGE_SIZE } from './protocol.js';
import { OOM_REAPER } from './task.js';

/** OOM_REAPER_DELAY = 2*HZ in recent kernels. */
const OOM_REAPER_DELAY_NS = 2e9;
const MAX_OOM_REAP_RETRIES = 10;
/** HZ/10 between reaper attempts. */
const OOM_REAP_RETRY_NS = 100e6;

function oom_badness(k: Kernel, p: Process): number {
  let swapEntries = 0;
  p.pt.forEach(0, 1 << 20, (_v, f) => {
    if ((f & PTE_KIND_MASK) === 2) swapEntries++;
  });
  return p.rss + swapEntries;
}

export function out_of_memory(k: Kernel, then: (killed: boolean) => void): void {
  const live = [...k.procs.values()].filter((p) => p.alive);
  if (live.some((p) => p.oomVictim && !p.oomSkip)) return then(true); // a victim is still going: wait for it
  const candidates = live.filter((p) => !p.oomVictim && !p.exiting);
  if (candidates.length === 0) return then(false);
  let victim = candidates[0];
  let worst = oom_badness(k, victim);
  for (const p of candidates.slice(1)) {
    const b = oom_badness(k, p);
    if (b > worst) [victim, worst] = [p, b];
  }
  victim.oomVictim = true;
  k.stats.oomKills++;
  k.ctx.trace('oom_kill', { pid: victim.pid, comm: victim.comm, badness: worst, rss: victim.rss, free: k.pm.nrFree });
  if (victim.owner) k.ctx.send(victim.owner, { type: 'signal', pid: victim.pid, sig: 'SIGKILL' } as never);
  exit_mmap(k, victim, () => k.ctx.trace('oom_victim_exited', { pid: victim.pid }));
  k.afterNs(OOM_REAPER_DELAY_NS, () => oom_reap_task(k, victim, 0));
  then(true);
}

/** oom_reap_task_mm's mmap_read_trylock owner. */
const OOM_REAPER_LOCK_OWNER = 'oom_reaper';

function oom_reap_task(k: Kernel, p: Process, attempt: number): void {
  if (!p.alive || p.oomSkip) return;
  // oom_reap_task_mm (latest tree): mmap_read_trylock or skip this attempt (trace skip_task_reaping);
  // a writer holding or waiting for the victim's mmap_lock makes the reaper try again HZ/10 later.
  if (!mmap_read_trylock(k, p, OOM_REAPER_LOCK_OWNER)) {
    k.ctx.trace('skip_task_reaping', { pid: p.pid, attempt });
    return finishAttempt(k, p, attempt, false);
  }
  __oom_reap_task_mm(k, p, (complete) => {
    mmap_read_unlock(k, p, OOM_REAPER_LOCK_OWNER);
    finishAttempt(k, p, attempt, complete);
  });
}

/** oom_reap_task's loop: done, given up after MAX_OOM_REAP_RETRIES, or again HZ/10 later. */
function finishAttempt(k: Kernel, p: Process, attempt: number, complete: boolean): void {
  if (complete || attempt + 1 >= MAX_OOM_REAP_RETRIES) {
    p.oomSkip = true; // MMF_OOM_SKIP: done, or given up
    k.ctx.trace('oom_reaper', { pid: p.pid, complete, attempts: attempt + 1, rss: p.rss });
    return;
  }
  k.afterNs(OOM_REAP_RETRY_NS, () => oom_reap_task(k, p, attempt + 1));
}

/** One reaper pass; `done(true)` if every private VMA was reaped. */
function __oom_reap_task_mm(k: Kernel, p: Process, done: (complete: boolean) => void): void {
  const vmas = p.vmas.list.filter((v) => !v.shared);
  let complete = true;
  const next = (i: number) => {
    if (i === vmas.length || !p.alive) return done(complete);
    const v = vmas[i];
    const range = { start: v.start * PAGE_SIZE, end: v.end * PAGE_SIZE, event: 'MMU_NOTIFY_UNMAP' as const, blockable: false, owner: null, task: OOM_REAPER, caller: '__oom_reap_task_mm' };
    mmu_notifier_invalidate_range_start(k, p, range, (ret, inv) => {
      if (ret === EAGAIN) {
        complete = false; // that VMA is skipped; the core already ended the invalidation
        return k.bounce(() => next(i + 1));
      }
      // The reaper runs beside exit_mmap (it does not take the range lock); pages under migration are left.
      p.pt.forEach(v.start, v.end, (vpn, f) => {
        if ((f & PTE_KIND_MASK) !== PTE_MIGRATION && !p.locks.isLocked(vpn)) k.zapPte(p, vpn);
        else if ((f & PTE_KIND_MASK) !== PTE_MIGRATION && p.locks.holders().every((h) => h.startsWith('exit_mmap'))) k.zapPte(p, vpn);
      });
      mmu_notifier_invalidate_range_end(k, inv);
      k.bounce(() => next(i + 1));
    });
  };
  next(0);
}

export function installOom(): void {
  reclaimHooks.outOfMemory = out_of_memory;
}
