// kfd's retry-fault path with XNACK on: svm_range_restore_pages and the munmap side it races
// (kfd_svm.c, read in the torvalds/linux copy at 006ad514 for v6.6's drain_pagefaults, and the
// checkpoint_ts patches "drm/amdkfd: Change kfd/svm page fault drain handling", 2024, with its
// 2025 follow-ups for v6.15 and later: kernel-era.ts kfdUnmapDrain).
//
//   restore     mmap_read_lock(mm); svms->lock;
//                 checkpoint_ts (v6.15+): a fault raised at or before the checkpoint an munmap
//                   set is stale: -EAGAIN (dropped; the hardware retries);
//                 svm_range_from_addr → none: mmap_read_unlock, mmap_write_lock ("Need the write
//                   lock to create new range with MMU notifier"), look again, create the range
//                   (kfd-svm-ranges.ts; no VMA → -EFAULT, a VM fault), mmap_write_downgrade;
//                 svm_range_skip_recover: the range waits on the deferred list to be unmapped → 0;
//                 vma_lookup → removed ("__do_munmap removed VMA … stale retry fault") → 0;
//                 svm_fault_allowed: VM_READ (and VM_WRITE for a write fault), else -EPERM;
//                 the granularity window within the range; the first fault of a range migrates it
//                 to VRAM; svm_range_validate_and_map (read-only when the VMA is: !(vm_flags &
//                 VM_WRITE)); mmap_read_unlock.
//               v6.6 (drain_pagefaults): every fault is dropped (0) while an munmap's drain is
//               pending, before the lock is taken.
//   unmap       svm_range_unmap_from_cpu, inside the MMU_NOTIFY_UNMAP callback (munmap holds the
//               mmap write lock): split, the unmapped pieces onto the deferred list
//               (SVM_OP_UNMAP_RANGE); v6.6 drain_pagefaults++, v6.15+ checkpoint_ts = the newest
//               entry in the IH ring (if any).
//   deferred    svm_range_deferred_list_work, per piece: mmap_write_lock; v6.6: if a drain is
//               pending, mmap_write_unlock, svm_range_drain_retry_fault (wait until the IH ring
//               has been handled up to its current entry), and again; remove the piece;
//               mmap_write_unlock.
//
// Departure: the 2 ms "already restored" drop (AMDGPU_SVM_RANGE_RETRY_FAULT_PENDING) is checked
// before the mmap lock is taken and holds the serial handler until the 2 ms have passed (the
// kernel drops the fault and the hardware retries it meanwhile): a storm of retries is not
// simulated, and no lock is held while it waits.
import { EFAULT, EPERM, PAGE_SIZE, PROT_READ, PROT_WRITE, type Pid, type VmaLookupResult } from '@svmsim/kernel-mm';
import { boFirstVpn, type Bo } from './bo.js';
import type { KfdUnmapDrain } from './kernel-era.js';
import { SvmRangeList, type SvmRange } from './kfd-svm-ranges.js';
import { retOf, type GpuHost } from './policy.js';

/** AMDGPU_SVM_RANGE_RETRY_FAULT_PENDING (kfd_svm.c): faults on a range validated less than this ago are dropped, ns. */
export const AMDGPU_SVM_RANGE_RETRY_FAULT_PENDING_NS = 2e6;

/** From schedule_deferred_list_work to svm_range_deferred_list_work running on the system workqueue: svmsim's cost, ns. */
export const KFD_DEFERRED_WORK_NS = 10_000;

/** What the restore path needs to know of a fault. */
export interface KfdFault {
  bo: Bo;
  pid: Pid;
  vpn: number;
  write: boolean;
  raisedAt: number;
}

export interface KfdRestoreDeps {
  host: GpuHost;
  drain: KfdUnmapDrain;
  /** 1 << granularity, pages. */
  granularityPages: number;
  /** AMDGPU_SVM_RANGE_RETRY_FAULT_PENDING, ns (default 2 ms). */
  retryFaultPendingNs?: number;
  /**
   * svm_range_validate_and_map of [ws, we) (pages) for the fault at vpn, the caller holding the
   * mmap read lock: migrate to VRAM first if `migrate`; done(0), -EAGAIN, or -errno.
   */
  validateAndMap(bo: Bo, ws: number, we: number, f: KfdFault, reqWrite: boolean, migrate: boolean, done: (ret: number) => void): void;
  /** svm_range_drain_retry_fault: `then` once every fault now in the IH ring is handled. */
  drainRetryFaults(then: () => void): void;
  /** The newest fault in the IH ring (raise time, ns), or undefined if the ring is empty. */
  newestPendingFault(): number | undefined;
}

export interface KfdRestorePages {
  /** svm_range_restore_pages: done(0) (mapped, or dropped for the hardware to retry), -EAGAIN, or -errno (a VM fault). */
  restore(f: KfdFault, done: (ret: number) => void): void;
  /** svm_range_unmap_from_cpu for [startVpn, endVpn) of pid. Returns the pieces put on the deferred list. */
  unmapFromCpu(pid: Pid, startVpn: number, endVpn: number): number;
  /** A BO's teardown: its ranges go. */
  forgetBo(bo: Bo): number;
  summary(): Record<string, number>;
}

export function createKfdRestorePages(deps: KfdRestoreDeps): KfdRestorePages {
  const { host } = deps;
  const retryPendingNs = deps.retryFaultPendingNs ?? AMDGPU_SVM_RANGE_RETRY_FAULT_PENDING_NS;
  const ranges = new SvmRangeList();
  const s = {
    svmRangesCreated: 0,
    /** Faults that took mmap_lock for write to create their range. */
    rangeCreateWriteLocks: 0,
    /** kfd: stale faults dropped (r = 0 / -EAGAIN): drain pending, before the checkpoint, range being unmapped, VMA removed. */
    faultsDroppedStale: 0,
    faultsDroppedRetryPending: 0,
    /** svm_fault_allowed said no: -EPERM. */
    faultsNotAllowed: 0,
    rangesSplit: 0,
    rangesRemovedDeferred: 0,
    deferredDrains: 0,
  };
  /** v6.6: svms->drain_pagefaults per process. */
  const draining = new Map<Pid, boolean>();
  /** v6.15+: svms->checkpoint_ts per process (this GPU), ns; absent = 0. */
  const checkpoint = new Map<Pid, number>();
  const deferred: SvmRange[] = [];
  let deferredScheduled = false;

  const call = (msg: object, then: (ret: number, r: unknown) => void): void =>
    host.call(msg as never, (r) => then(retOf(r), r));
  const readUnlock = (pid: Pid, then: () => void): void => call({ type: 'mmap_read_unlock', pid }, () => then());

  /**
   * Under the read lock: the range holding f, created under the write lock if there is none.
   * then(ret, range, locked): `locked` says whether the read lock is still held (not when the
   * process went away while the write lock was awaited).
   */
  const findOrCreate = (f: KfdFault, then: (ret: number, r: SvmRange | undefined, locked: boolean) => void): void => {
    const r = ranges.find(f.pid, f.vpn);
    if (r) return then(0, r, true);
    s.rangeCreateWriteLocks++;
    readUnlock(f.pid, () => call({ type: 'mmap_write_lock', pid: f.pid }, (wret) => {
      if (wret < 0) return then(wret, undefined, false);
      const downgrade = (ret: number, got?: SvmRange): void => call({ type: 'mmap_write_downgrade', pid: f.pid }, () => then(ret, got, true));
      const again = ranges.find(f.pid, f.vpn); // another path may have made it meanwhile
      if (again) return downgrade(0, again);
      call({ type: 'vma_lookup', pid: f.pid, addr: f.vpn * PAGE_SIZE }, (vret, v) => {
        if (vret < 0) return downgrade(EFAULT); // svm_range_create_unregistered_range: no VMA
        const vma = v as VmaLookupResult;
        const first = boFirstVpn(f.bo);
        const created = ranges.create(f.pid, f.vpn, deps.granularityPages, vma.start / PAGE_SIZE, vma.end / PAGE_SIZE, first, first + f.bo.pages);
        s.svmRangesCreated++;
        downgrade(0, created);
      });
    }));
  };

  const restoreLocked = (f: KfdFault, done: (ret: number) => void): void => {
    const out = (ret: number): void => readUnlock(f.pid, () => done(ret));
    if (deps.drain === 'checkpoint_ts') {
      const cp = checkpoint.get(f.pid);
      if (cp !== undefined && f.raisedAt <= cp) {
        s.faultsDroppedStale++;
        return out(0);
      }
      checkpoint.delete(f.pid);
    }
    findOrCreate(f, (ret, r, locked) => {
      if (!locked) return done(EFAULT);
      if (ret < 0 || !r) return out(ret);
      if (r.unmapping) {
        s.faultsDroppedStale++; // svm_range_skip_recover
        return out(0);
      }
      call({ type: 'vma_lookup', pid: f.pid, addr: f.vpn * PAGE_SIZE }, (vret, v) => {
        if (vret < 0) {
          s.faultsDroppedStale++; // the VMA is gone, the deferred worker has not run yet
          return out(0);
        }
        const prot = (v as VmaLookupResult).prot;
        if (!(prot & PROT_READ) || (f.write && !(prot & PROT_WRITE))) {
          s.faultsNotAllowed++;
          return out(EPERM);
        }
        const g = deps.granularityPages;
        const ws = Math.max(f.vpn - (f.vpn % g), r.start);
        const we = Math.min(f.vpn - (f.vpn % g) + g, r.end);
        const migrate = !r.restoredOnce;
        r.restoredOnce = true;
        deps.validateAndMap(f.bo, ws, we, f, (prot & PROT_WRITE) !== 0, migrate, (vr) => {
          if (vr === 0) r.validatedAt = host.ctx.now();
          out(vr);
        });
      });
    });
  };

  const restore = (f: KfdFault, done: (ret: number) => void): void => {
    if (deps.drain === 'drain_pagefaults' && draining.get(f.pid)) {
      s.faultsDroppedStale++;
      return done(0);
    }
    const known = ranges.find(f.pid, f.vpn);
    const since = host.ctx.now() - (known?.validatedAt ?? -Infinity);
    if (since < retryPendingNs) {
      s.faultsDroppedRetryPending++;
      return host.sleep(retryPendingNs - since, () => restore(f, done));
    }
    call({ type: 'mmap_read_lock', pid: f.pid }, (lret) => (lret < 0 ? done(EFAULT) : restoreLocked(f, done)));
  };

  /** svm_range_deferred_list_work: one piece at a time under the mmap write lock. */
  const runDeferred = (): void => {
    const r = deferred.shift();
    if (!r) {
      deferredScheduled = false;
      return;
    }
    call({ type: 'mmap_write_lock', pid: r.pid }, (wret) => {
      if (wret < 0) {
        ranges.remove(r); // mmget_not_zero failed: the process is gone
        return runDeferred();
      }
      if (deps.drain === 'drain_pagefaults' && draining.get(r.pid)) {
        s.deferredDrains++;
        draining.set(r.pid, false);
        return call({ type: 'mmap_write_unlock', pid: r.pid }, () => deps.drainRetryFaults(() => {
          deferred.unshift(r);
          runDeferred();
        }));
      }
      if (ranges.remove(r)) s.rangesRemovedDeferred++;
      call({ type: 'mmap_write_unlock', pid: r.pid }, () => runDeferred());
    });
  };

  return {
    restore,

    unmapFromCpu(pid: Pid, startVpn: number, endVpn: number): number {
      const pieces = ranges.unmapSplit(pid, startVpn, endVpn);
      if (pieces.length === 0) return 0;
      if (deps.drain === 'drain_pagefaults') draining.set(pid, true);
      else {
        const newest = deps.newestPendingFault();
        if (newest !== undefined) checkpoint.set(pid, newest);
      }
      s.rangesSplit += pieces.length;
      deferred.push(...pieces);
      if (!deferredScheduled) {
        deferredScheduled = true;
        host.sleep(KFD_DEFERRED_WORK_NS, runDeferred);
      }
      return pieces.length;
    },

    forgetBo(bo: Bo): number {
      const first = boFirstVpn(bo);
      return ranges.removeWithin(bo.pid, first, first + bo.pages);
    },

    summary(): Record<string, number> {
      return { ...s, svmRanges: ranges.count() };
    },
  };
}
