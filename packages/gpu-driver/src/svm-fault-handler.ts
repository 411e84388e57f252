// svm-fault's GPU fault handler: the fault buffer, the batch handler and the per-fault
// hmm_range_fault loop, as nouveau_svm.c (v6.6: nouveau_svm_fault, nouveau_range_fault; research/
// drivers.md §3) and amdgpu with XNACK on (amdgpu_vm_handle_fault → kfd_svm.c
// svm_range_restore_pages → svm_range_validate_and_map, v6.6–v6.8; §2b) do it.
//
//   GPU fault   an access with no GPUVM entry, or a write through a read-only one, is a retry fault
//               (XNACK on / GP100 replayable faults): the wave stalls and the fault goes into the
//               fault buffer. After `faultInterruptNs` (IH interrupt + work item) the handler
//               (nouveau_svm_fault; kfd: amdgpu_vm_handle_fault → svm_range_restore_pages) drains
//               the buffer as one batch, sorts it by (pid, page, write) and drops duplicates; faults
//               arriving meanwhile wait for the next batch. Per distinct fault, in order:
//                 - already covered by an entry a previous fault of the batch mapped → done
//                   (nouveau: "later queued faults covered by the granted mapping are folded in");
//                 - VRAM: a hot page (faults + accesses >= hotThreshold) not in VRAM is migrated
//                   first (kfd: svm_range_best_restore_location → svm_migrate_to_vram);
//                 - nouveau_range_fault: loop { mmu_interval_read_begin;
//                   mmap_read_lock; hmm_range_fault(HMM_PFN_REQ_FAULT [| REQ_WRITE],
//                   dev_private_owner = this GPU); mmap_read_unlock
//                   over a window of `faultWindowPages` aligned pages clipped to the BO (1 page as
//                   nouveau v6.6; kfd uses its 2 MiB granularity); -EBUSY → again (maxBusyRetries);
//                   lock notifier_lock (nouveau: svmm->mutex; kfd: svm_range_lock);
//                   mmu_interval_read_retry → unlock, again; else write the GPUVM entries
//                   (NVIF_VMM_V0_PFNMAP / amdgpu_vm_update_range), unlock }.
//                   The loop is nouveau's. kfd's svm_range_validate_and_map does not loop: -EBUSY
//                   from hmm_range_fault, or a stale read under svm_range_lock
//                   (amdgpu_hmm_range_get_pages_done), is -EAGAIN: the fault is dropped and the
//                   hardware retries it, and svm_range_restore_pages then drops faults on a range
//                   validated less than 2 ms ago (AMDGPU_SVM_RANGE_RETRY_FAULT_PENDING). kfd's whole
//                   path, its ranges and its locks are kfd-restore-pages.ts.
//                 - REQ_WRITE (faultPermission): 'access' (default, nouveau_svm_fault) for a write
//                   fault only; 'vma' (kfd) for every fault in a writable VMA:
//                   svm_range_validate_and_map sets readonly = !(vma->vm_flags & VM_WRITE) and
//                   amdgpu_hmm_range_get_pages adds HMM_PFN_REQ_WRITE whenever !readonly, so with
//                   XNACK on a GPU read breaks COW and KSM sharing and dirties file pages. kfd
//                   reads vm_flags by vma_lookup under the mmap lock; `svm-fault` with 'vma' has no
//                   lock to read them under: it asks for write and, on -EPERM for a read fault,
//                   asks again without REQ_WRITE (readonlyVmaRefaults).
//                 - hmm_range_fault -EFAULT / -EPERM (no VMA, PROT_NONE, write to a read-only VMA),
//                   or a bound hit → the fault is cancelled (GP100_VMM_VN_FAULT_CANCEL / a VM fault):
//                   the job ends in error.
//               Then one replay for the whole batch (GP100_VMM_VN_FAULT_REPLAY): every fault of the
//               batch retries its access; one still unmapped just faults again.
//   ended jobs  a VM fault kills the whole job at the replay that cancels one of its faults
//               (queues.ts kill), and its fence signals at once; faults of its other waves raised
//               before that are still in the buffer. A fault whose job has ended when its batch
//               comes is cancelled without touching mm: the job is gone, and its BOs may be on their
//               way out (gpu_bo_free waits on the fences, nothing else).
//   teardown    gpu_bo_free (policy-svm-fault.ts freeBo) marks the BO closing and waits in drain()
//               until every fault of the BO raised so far is decided (svm_range_drain_retry_fault).
//               A fault of a closing BO is cancelled before read_begin; a loop whose hmm_range_fault
//               was in flight when the BO started closing maps nothing: under the lock it checks
//               that the BO is not closing and still has the notifier the loop began with (a
//               notifier remove does not bump the sequence, so read_retry would pass).
//
// hmm_range_fault returns an own device-private page as it is, read-only to a write request without
// faulting it (mm/hmm.c hmm_vma_handle_pte, v6.6: "Don't fault in device private pages owned by the
// caller, just report the PFN"); the handler then migrates that page back to RAM itself and retries.
//
// `unsafe` (unsafe-svm) skips mmu_interval_read_retry: it binds whatever hmm_range_fault returned
// even if an invalidation of those pages was acked meanwhile. The checker must flag stale_translation.
//
// Departure: the fault buffer is unbounded (HW rings overflow and drop faults; the wave retries them).
import {
  EAGAIN, EBUSY, EFAULT, EPERM, SVMSIM_PFN_DEVICE_PRIVATE, HMM_PFN_ERROR, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE, PAGE_SIZE,
  mmu_interval_read_retry, type HmmRangeFault, type HmmRangeFaultResult, type MmuIntervalReadBeginResult, type Pid,
} from '@svmsim/kernel-mm';
import { boFirstVpn, type Bo } from './bo.js';
import { createKfdRestorePages } from './kfd-restore-pages.js';
import type { GpuPte } from './gpuvm.js';
import type { Job } from './job.js';
import { maxOf, percentile } from './percentile.js';
import { retOf, withMmapReadLock, type GpuHost, type Reply } from './policy.js';
import type { SvmVram } from './svm-vram.js';

/** Simulation bound: migrate-back-and-retry rounds of one write fault on a read-only VRAM page. */
const VRAM_RO_RETRIES_MAX = 3;

/**
 * 'access': a fault asks for write access only for a GPU write (nouveau_svm_fault: the fault's
 * access type; lib/test_hmm.c likewise). 'vma': for every fault in a writable VMA (kfd:
 * svm_range_validate_and_map sets readonly = !(vma->vm_flags & VM_WRITE), and
 * amdgpu_hmm_range_get_pages adds HMM_PFN_REQ_WRITE whenever !readonly), so a GPU read breaks COW
 * and KSM sharing and dirties file pages as a write would.
 */
export type FaultPermission = 'access' | 'vma';

/** One entry of a replayable fault buffer: what the GPU raised, and how to answer it (replay or cancel). */
export interface FaultBufferEntry {
  job: Job;
  bo: Bo | undefined;
  pid: Pid;
  vpn: number;
  write: boolean;
  raisedAt: number;
  resolve: (replay: boolean) => void;
}

/** One entry of the fault buffer. */
interface Fault extends FaultBufferEntry {
  /** kfd: faults amdgpu_gmc_filter_faults dropped as duplicates of this one; they retry when it is resolved. */
  joined: Fault[];
}

/**
 * Whose fault handling: 'nouveau' (nouveau_svm_fault: batches, writes first, per-fault loop, one
 * replay) or 'kfd' (amdgpu XNACK on: amdgpu_gmc_filter_faults, one fault at a time through
 * svm_range_restore_pages, -EAGAIN instead of a loop, no replay, the 2 ms retry-pending drop).
 */
export type SvmFlavour = 'nouveau' | 'kfd';


export interface SvmFaultHandlerOptions {
  flavour: SvmFlavour;
  unsafe: boolean;
  /** -EBUSY answers plus read_retry restarts of one fault before it is cancelled. */
  maxBusyRetries: number;
  /** Pages mapped per fault, an aligned window clipped to the BO. */
  window: number;
  /** Whether a fault asks hmm_range_fault for write access: the GPU access's ('access') or the VMA's ('vma'). */
  faultPermission: FaultPermission;
  hotThreshold: number;
  /** BOs being torn down (policy-svm-fault.ts freeBo): their faults are cancelled, never mapped. */
  closing: WeakSet<Bo>;
  /** kfd: AMDGPU_SVM_RANGE_RETRY_FAULT_PENDING, ns (kfd-restore-pages.ts). */
  retryFaultPendingNs?: number;
  /**
   * kfd, the read-begin-outside-loop variant (policy-kfd-svm-read-begin-outside-loop.ts): on
   * -EBUSY, amdgpu_hmm_range_get_pages retries hmm_range_fault with the sequence its one
   * read_begin took, for this long (HMM_RANGE_DEFAULT_TIMEOUT), before it returns -EBUSY.
   */
  staleSeqRetryNs?: number;
}

export interface SvmFaultHandler {
  /** A retry fault into the fault buffer; resolve(true) replays it, resolve(false) cancels it. */
  raise(job: Job, bo: Bo | undefined, pid: Pid, vpn: number, write: boolean, resolve: (replay: boolean) => void): void;
  /**
   * svm_range_drain_retry_fault for one BO: `then` once every fault of the BO raised so far is
   * decided (mapped or cancelled), so nothing the handler does for the BO outlives the teardown.
   */
  drain(bo: Bo, then: () => void): void;
  /** kfd: svm_range_unmap_from_cpu over [startVpn, endVpn) (kfd-restore-pages.ts). Returns the range pieces put on the deferred list. */
  unmapFromCpu(pid: Pid, startVpn: number, endVpn: number): number;
  /** kfd: a BO's ranges go with it (after drain). */
  forgetBo(bo: Bo): void;
  summary(): Record<string, unknown>;
}

export function createSvmFaultHandler(host: GpuHost, opts: SvmFaultHandlerOptions, vram: SvmVram): SvmFaultHandler {
  const { window, hotThreshold, closing } = opts;
  const lock = host.notifierLock;
  const tracing = () => host.ctx.tracing;
  const s = {
    deviceFaults: 0,
    deviceFaultsResolved: 0,
    deviceFaultsCancelled: 0,
    /** Faults of a batch that an earlier fault of the same batch (same pid, page, access) covered. */
    deviceFaultsDeduped: 0,
    faultBatches: 0,
    faultBatchSizeMax: 0,
    pagesFaulted: 0,
    hmmRangeFaults: 0,
    readRetries: 0,
    /** unsafe-svm: read_retry said stale and was ignored. */
    readRetriesSkipped: 0,
    faultLatencyNs: [] as number[],
    /** Faults of jobs that had ended (a VM fault killed them) when their batch came: cancelled without mm. */
    deviceFaultsOfEndedJobs: 0,
    /** Faults of a BO being torn down: cancelled before read_begin or, under the lock, before mapping. */
    faultsOfClosingBos: 0,
    /** gpu_bo_free calls that waited for faults of the BO to be decided. */
    freeDrainWaits: 0,
    /** faultPermission 'vma': read faults whose REQ_WRITE walk found a read-only VMA (-EPERM), asked again without it. */
    readonlyVmaRefaults: 0,
    /** kfd: faults amdgpu_gmc_filter_faults dropped (the same page already pending). */
    faultsFiltered: 0,
    /** kfd read-begin-outside-loop: -EBUSY spins to the timeout with a stale sequence, and the time they took, ns. */
    staleSeqSpins: 0,
    staleSeqSpinNs: 0,
    /** kfd: faults that got -EAGAIN (hmm_range_fault -EBUSY or a stale read): dropped, the hardware retries. */
    faultsRetriedByHardware: 0,
  };
  const kfd = opts.flavour === 'kfd';
  /** kfd: pending faults by (pid, page), for amdgpu_gmc_filter_faults. */
  const pendingByPage = new Map<string, Fault>();
  const faultKey = (pid: Pid, vpn: number): string => `${pid}:${vpn}`;
  /** kfd: faults taken off the IH ring and handled so far, in ring order (svm_range_drain_retry_fault waits on it). */
  let kfdRaised = 0;
  let kfdHandled = 0;
  const ringDrainWaiters: { upTo: number; then: () => void }[] = [];
  const kfdHandledOne = (): void => {
    kfdHandled++;
    while (ringDrainWaiters.length > 0 && ringDrainWaiters[0].upTo <= kfdHandled) ringDrainWaiters.shift()!.then();
  };
  const kfdRestore = createKfdRestorePages({
    host,
    drain: host.era.kfdUnmapDrain,
    granularityPages: window,
    ...(opts.retryFaultPendingNs !== undefined && { retryFaultPendingNs: opts.retryFaultPendingNs }),
    validateAndMap: (bo, ws, we, f, reqWrite, migrate, done) => {
      const fault = (): void => rangeFault(bo, ws, we, f.write, f.vpn, 0, done, reqWrite);
      if (!migrate || !vram.enabled || vram.has(f.pid, f.vpn)) return fault();
      vram.migrateToVram(bo, ws, we, fault, true); // svm_range_restore_pages holds mmap_read_lock
    },
    drainRetryFaults: (then) => {
      if (kfdHandled >= kfdRaised) return then();
      ringDrainWaiters.push({ upTo: kfdRaised, then });
    },
    newestPendingFault: () => buffer[buffer.length - 1]?.raisedAt,
  });

  /** Per BO, its faults raised and not yet decided (in the buffer, or in the batch being handled). */
  const undecided = new Map<Bo, number>();
  const drainWaiters = new Map<Bo, (() => void)[]>();
  const decided = (f: Fault): void => {
    if (!f.bo) return;
    const left = undecided.get(f.bo)! - 1;
    if (left < 0) throw new Error(`svm-fault: BO ${f.bo.handle} has more faults decided than raised`);
    if (left > 0) return void undecided.set(f.bo, left);
    undecided.delete(f.bo);
    const waiters = drainWaiters.get(f.bo);
    drainWaiters.delete(f.bo);
    for (const w of waiters ?? []) w();
  };

  let buffer: Fault[] = [];
  let handlerState: 'idle' | 'scheduled' | 'running' = 'idle';

  const scheduleHandler = (): void => {
    if (handlerState !== 'idle' || buffer.length === 0) return;
    handlerState = 'scheduled';
    const delay = Math.max(0, buffer[0].raisedAt + host.costs.faultInterruptNs - host.ctx.now());
    host.sleep(delay, runBatch);
  };

  /** nouveau_svm_fault: drain, sort, dedup, handle each distinct fault, replay once. */
  const runBatch = (): void => {
    handlerState = 'running';
    // kfd: the soft IH ring hands amdgpu_vm_handle_fault one entry at a time.
    const batch = kfd ? buffer.splice(0, 1) : buffer;
    if (!kfd) buffer = [];
    s.faultBatches++;
    s.faultBatchSizeMax = Math.max(s.faultBatchSizeMax, batch.length);
    // nouveau_svm_fault_cmp (v6.6): by instance, address, then writes (and atomics) before reads
    // and prefetches, so that the first fault of a page asks for the most and covers the rest.
    batch.sort((a, b) => a.pid - b.pid || a.vpn - b.vpn || Number(b.write) - Number(a.write));
    const distinct: Fault[][] = [];
    for (const f of batch) {
      const last = distinct[distinct.length - 1];
      if (last && last[0].pid === f.pid && last[0].vpn === f.vpn && (last[0].write || !f.write)) {
        last.push(f);
        s.deviceFaultsDeduped++;
      } else distinct.push([f]);
    }
    if (tracing()) host.ctx.trace('gpu_fault_batch', { faults: batch.length, distinct: distinct.length });
    const outcome = new Map<Fault, boolean>();
    const next = (i: number): void => {
      // kfd: no replay; the hardware retries the access by itself (XNACK).
      if (i === distinct.length) return void host.sleep(kfd ? 0 : host.costs.replayNs, () => replay(batch, outcome));
      const group = distinct[i];
      const decide = (ret: number): void => {
        for (const f of group) {
          outcome.set(f, ret === 0 && f.job.endedAt < 0);
          decided(f);
        }
        next(i + 1);
      };
      // A fault raised before a VM fault killed its job (queues.ts kill) is still in the buffer:
      // the job is gone (its fence signalled, its BOs may be on their way out), so nothing is
      // faulted or mapped for it; the replay cancels it.
      const live = group.find((f) => f.job.endedAt < 0);
      s.deviceFaultsOfEndedJobs += group.filter((f) => f.job.endedAt >= 0).length;
      if (!live) return decide(EFAULT);
      handleFault(live, decide);
    };
    next(0);
  };

  /** GP100_VMM_VN_FAULT_REPLAY for the batch; cancelled faults become VM faults. */
  const replay = (batch: Fault[], outcome: Map<Fault, boolean>): void => {
    handlerState = 'idle';
    const now = host.ctx.now();
    let resolved = 0;
    for (const f of batch) if (outcome.get(f) === true) resolved++;
    // Each fault's latency, raise to replay: the trace's device-fault distribution.
    if (tracing()) host.ctx.trace('gpu_fault_replay', { faults: batch.length, resolved, ns: Float64Array.from(batch, (f) => now - f.raisedAt) });
    for (const f of batch) {
      const ok = outcome.get(f) === true;
      if (kfd) {
        pendingByPage.delete(faultKey(f.pid, f.vpn));
        kfdHandledOne();
      }
      for (const x of [f, ...f.joined]) {
        if (ok) s.deviceFaultsResolved++;
        else s.deviceFaultsCancelled++;
        s.faultLatencyNs.push(now - x.raisedAt);
        if (x !== f) decided(x);
        x.resolve(ok);
      }
    }
    scheduleHandler();
  };

  /** One distinct fault: done(0) when its page is mapped (or covered), else done(-errno) → cancel. */
  const handleFault = (f: Fault, done: (ret: number) => void): void => {
    const bo = f.bo;
    if (!bo || !bo.notifier) return done(EFAULT);
    if (closing.has(bo)) {
      s.faultsOfClosingBos++;
      return done(EFAULT);
    }
    const pte = host.vm.lookup(f.pid, f.vpn * PAGE_SIZE);
    if (pte && (!f.write || pte.writable)) return done(0); // a previous fault of the batch mapped it
    if (kfd) {
      // svm_range_restore_pages (kfd-restore-pages.ts); its -EAGAIN: amdgpu_gmc_filter_faults_remove,
      // return 0: the hardware retries the access and faults again (resolve(true) replays it here).
      return kfdRestore.restore({ bo, pid: f.pid, vpn: f.vpn, write: f.write, raisedAt: f.raisedAt }, (ret) => {
        if (ret !== EAGAIN) return done(ret);
        s.faultsRetriedByHardware++;
        done(0);
      });
    }
    // The fault's window: `window` aligned pages clipped to the BO.
    const first = boFirstVpn(bo);
    const ws = Math.max(first, f.vpn - (f.vpn % window));
    const we = Math.min(first + bo.pages, ws + window);
    const fault = (): void => rangeFault(bo, ws, we, f.write, f.vpn, 0, done);
    if (vram.bump(f.pid, f.vpn) < hotThreshold || !vram.enabled || vram.has(f.pid, f.vpn)) return fault();
    vram.migrateToVram(bo, ws, we, fault);
  };

  /**
   * hmm_range_fault as its caller holds the mmap lock: nouveau_range_fault takes mmap_read_lock
   * around it (nouveau_svm.c, v6.6 and the latest tree); kfd's path holds it already for the whole
   * fault (kfd-restore-pages.ts).
   */
  const mmapLockedHmmRangeFault = (pid: Pid, req: HmmRangeFault, then: (r: Reply) => void): void => {
    if (kfd) return host.call(req, then);
    withMmapReadLock(host, pid, () => then({ type: 'hmm_range_fault_result', ret: EFAULT } as Reply), (unlock) =>
      host.call(req, (r) => unlock(() => then(r))));
  };

  /**
   * nouveau_range_fault: read_begin → hmm_range_fault → lock → read_retry → map → unlock, over
   * [ws, we) (pages), again on -EBUSY or a stale read (kfd returns -EAGAIN instead and lets the
   * hardware retry). done(0) or done(-errno).
   */
  const rangeFault = (bo: Bo, ws: number, we: number, write: boolean, vpn: number, roRetries: number, done: (ret: number) => void, vmaWritable?: boolean): void => {
    const n = bo.notifier;
    if (!n) return done(EFAULT);
    const start = ws * PAGE_SIZE;
    const end = we * PAGE_SIZE;
    // 'vma': write access whenever the VMA allows it. kfd read vm_flags under the mmap lock
    // (vmaWritable, kfd-restore-pages.ts); otherwise ask for write and learn a read-only VMA from
    // hmm_range_fault's -EPERM, and a read fault asks again without REQ_WRITE.
    let reqWrite = vmaWritable !== undefined ? vmaWritable && !bo.readonly : write || (opts.faultPermission === 'vma' && !bo.readonly);
    let restarts = 0;
    /** The BO is being torn down, or its notifier is not the one this loop began with: map nothing. */
    const gone = (): boolean => closing.has(bo) || bo.notifier !== n;
    const again = (): void => {
      if (gone()) {
        s.faultsOfClosingBos++;
        return done(EFAULT);
      }
      host.call({ type: 'mmu_interval_read_begin', sub: n.sub }, (r) => {
        const ret = retOf(r);
        if (ret < 0) return done(ret);
        const seq = (r as MmuIntervalReadBeginResult).seq;
        if (!n.known) n.invalidate_seq = seq;
        s.hmmRangeFaults++;
        const default_flags = HMM_PFN_REQ_FAULT | (reqWrite ? HMM_PFN_REQ_WRITE : 0);
        mmapLockedHmmRangeFault(
          bo.pid,
          { type: 'hmm_range_fault', sub: n.sub, notifier_seq: seq, start, end, default_flags, pfn_flags_mask: 0, dev_private_owner: vram.enabled ? host.id : null },
          (h) => {
            const hret = retOf(h);
            if (hret === EPERM && reqWrite && !write) {
              // At most once per fault: reqWrite stays false from here on.
              reqWrite = false;
              s.readonlyVmaRefaults++;
              return again();
            }
            if (hret === EBUSY) {
              host.stats.ebusyRetries++;
              if (kfd && opts.staleSeqRetryNs !== undefined) {
                // The sequence read_begin gave is stale for good once an invalidation has passed
                // (mmu_interval_check_retry compares it with the notifier's, which only moves on),
                // so every hmm_range_fault of the retry loop returns -EBUSY at once until the
                // timeout: one wait of the whole timeout stands for the spin, with the same result.
                s.staleSeqSpins++;
                s.staleSeqSpinNs += opts.staleSeqRetryNs;
                if (tracing()) host.ctx.trace('gpu_hmm_stale_seq_spin', { sub: n.sub, seq, start, end, spinNs: opts.staleSeqRetryNs });
                return host.sleep(opts.staleSeqRetryNs, () => done(EAGAIN));
              }
              if (kfd) return done(EAGAIN); // kfd does not loop: the fault is retried by the hardware
              if (++restarts > opts.maxBusyRetries) return done(EBUSY);
              return again();
            }
            if (hret < 0) return done(hret);
            const res = h as HmmRangeFaultResult;
            lock.lock(() => {
              // A notifier remove does not bump the sequence: read_retry cannot see the BO go.
              if (gone()) {
                lock.unlock();
                s.faultsOfClosingBos++;
                return done(EFAULT);
              }
              if (mmu_interval_read_retry(n, seq)) {
                if (!opts.unsafe) {
                  lock.unlock();
                  s.readRetries++;
                  if (tracing()) host.ctx.trace('gpu_svm_read_retry', { sub: n.sub, seq, invalidate_seq: n.invalidate_seq, start, end });
                  if (kfd) return done(EAGAIN);
                  if (++restarts > opts.maxBusyRetries) return done(EBUSY);
                  return again();
                }
                s.readRetriesSkipped++; // the bug: bind pfns an acked invalidation may have replaced
              }
              const mapped = map(bo, ws, res, n.sub, seq);
              lock.unlock();
              if (mapped < 0) return done(mapped);
              s.pagesFaulted += we - ws;
              const got = host.vm.lookup(bo.pid, vpn * PAGE_SIZE);
              const roVram = write && got?.vram === true && !got.writable;
              host.sleep((we - ws) * host.costs.faultPerPageNs + mapped * host.costs.ptePerPageNs, () => {
                if (!roVram) return done(0);
                // mm gave our own VRAM page read-only to a write request (the kernel would have
                // faulted it to RAM): bring it back ourselves, then fault again.
                if (roRetries >= VRAM_RO_RETRIES_MAX) return done(EFAULT);
                // kfd holds mmap_read_lock over the whole fault: the eviction must not take it again.
                vram.evictPage(bo, vpn, (ok) => (ok ? rangeFault(bo, ws, we, write, vpn, roRetries + 1, done, vmaWritable) : done(EFAULT)), kfd);
              });
            });
          },
        );
      });
    };
    again();
  };

  /** Under the lock: write GPUVM from the pfns. Returns the entries changed, or -EFAULT. */
  const map = (bo: Bo, ws: number, res: HmmRangeFaultResult, sub: number, seq: number): number => {
    let changed = 0;
    for (let i = 0; i < res.flags.length; i++) {
      const f = res.flags[i];
      if (f & HMM_PFN_ERROR || !(f & HMM_PFN_VALID)) {
        host.warn('hmm_range_fault succeeded with a page the GPU cannot map', { handle: bo.handle, vpn: ws + i, flags: f });
        return EFAULT;
      }
    }
    for (let i = 0; i < res.flags.length; i++) {
      const f = res.flags[i];
      const vramPage = (f & SVMSIM_PFN_DEVICE_PRIVATE) !== 0;
      const pte: GpuPte = { pfn: res.pfns[i], writable: (f & HMM_PFN_WRITE) !== 0 && !bo.readonly, tr: { via: 'mirror', sub, seq } };
      if (vramPage) pte.vram = true;
      const old = host.vm.lookup(bo.pid, (ws + i) * PAGE_SIZE);
      if (!old || old.pfn !== pte.pfn || old.writable !== pte.writable || old.vram !== pte.vram) changed++;
      host.vm.set(bo.pid, ws + i, pte);
    }
    return changed;
  };

  return {
    raise(job: Job, bo: Bo | undefined, pid: Pid, vpn: number, write: boolean, resolve: (replay: boolean) => void): void {
      s.deviceFaults++;
      if (bo) undecided.set(bo, (undecided.get(bo) ?? 0) + 1);
      if (tracing()) host.ctx.trace('gpu_retry_fault', { job: job.id, pid, addr: vpn * PAGE_SIZE, write });
      const f: Fault = { job, bo, pid, vpn, write, raisedAt: host.ctx.now(), resolve, joined: [] };
      if (kfd) {
        // amdgpu_gmc_filter_faults: a fault on a page already pending is dropped at the IH; the
        // wave retries, and succeeds once that fault is handled. A write joins only a write.
        const first = pendingByPage.get(faultKey(pid, vpn));
        if (first && (first.write || !write)) {
          s.faultsFiltered++;
          first.joined.push(f);
          return;
        }
        if (!first) pendingByPage.set(faultKey(pid, vpn), f);
      }
      if (kfd) kfdRaised++;
      buffer.push(f);
      scheduleHandler();
    },

    drain(bo: Bo, then: () => void): void {
      if (!undecided.has(bo)) return then();
      s.freeDrainWaits++;
      const waiters = drainWaiters.get(bo);
      if (waiters) waiters.push(then);
      else drainWaiters.set(bo, [then]);
    },

    unmapFromCpu(pid: Pid, startVpn: number, endVpn: number): number {
      return kfdRestore.unmapFromCpu(pid, startVpn, endVpn);
    },

    forgetBo(bo: Bo): void {
      kfdRestore.forgetBo(bo);
    },

    summary(): Record<string, unknown> {
      return {
        ...s,
        ...(kfd ? kfdRestore.summary() : {}),
        faultLatencyNs: undefined,
        faultLatencyP50Ns: percentile(s.faultLatencyNs, 50),
        faultLatencyP99Ns: percentile(s.faultLatencyNs, 99),
        faultLatencyMaxNs: maxOf(s.faultLatencyNs),
        faultsPending: buffer.length,
      };
    },
  };
}
