// Policy `svm-fault` (and `unsafe-svm`): the GPU mirrors the process with HMM and retry faults, as
// amdgpu with XNACK on (drivers/gpu/drm/amd/amdkfd/kfd_svm.c, kfd_migrate.c; research/drivers.md
// §2b, §2c) and nouveau (drivers/gpu/drm/nouveau/nouveau_svm.c, nouveau_dmem.c; §3). Followed:
// nouveau_svm.c of v6.6 for the fault buffer and the per-fault loop, kfd_svm.c / kfd_migrate.c of
// v6.6–v6.8 for VRAM and migrate-on-fault.
//
// Kernel functions each step models:
//   create      mmu_interval_notifier_insert over the BO (kfd: one notifier per svm_range). Nothing
//               bound, nothing walked.
//   submit      nothing to validate: the job is pushed at once (pagesWalked 0).
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
//                 - nouveau_range_fault / svm_range_validate_and_map: loop { mmu_interval_read_begin;
//                   hmm_range_fault(HMM_PFN_REQ_FAULT [| REQ_WRITE], dev_private_owner = this GPU)
//                   over a window of `faultWindowPages` aligned pages clipped to the BO (1 page as
//                   nouveau v6.6; kfd uses its 2 MiB granularity); -EBUSY → again (maxBusyRetries);
//                   lock notifier_lock (nouveau: svmm->mutex; kfd: svm_range_lock);
//                   mmu_interval_read_retry → unlock, again; else write the GPUVM entries
//                   (NVIF_VMM_V0_PFNMAP / amdgpu_vm_update_range), unlock }.
//                 - hmm_range_fault -EFAULT / -EPERM (no VMA, PROT_NONE, write to a read-only VMA),
//                   or a bound hit → the fault is cancelled (GP100_VMM_VN_FAULT_CANCEL / a VM fault):
//                   the job ends in error.
//               Then one replay for the whole batch (GP100_VMM_VN_FAULT_REPLAY): every fault of the
//               batch retries its access; one still unmapped just faults again.
//   invalidate  nouveau_svm_range_invalidate + nouveau_svmm_invalidate_range_start / kfd's
//               svm_range_cpu_invalidate_pagetables → svm_range_unmap_from_gpus: blockable →
//               lock, non-blockable → trylock (held: return false); mmu_interval_set_seq; zap the
//               overlap from GPUVM (PFNCLR); TLB flush if anything was zapped; unlock; ack.
//               It does NOT wait for job fences (contrast userptr): a job that finds its entry gone
//               faults again. Accesses the GPU issued before the zap are `dma_access` messages
//               already on their way to mm, and messages between a pair of actors are FIFO, so mm
//               applies every one of them before it reads our ack: nothing is in flight after it.
//   VRAM        kgd2kfd_init_zone_device: `memremap_pages` of `vramPages` device-private pages at
//               first use. svm_migrate_vma_to_vram: migrate_vma_setup(MIGRATE_VMA_SELECT_SYSTEM,
//               pgmap_owner = this GPU), copy (`migratePerPageNs` per page, the SDMA copy),
//               migrate_vma_pages + migrate_vma_finalize (one message here). No free VRAM page →
//               first evict the least-recently-migrated range: svm_migrate_vram_to_ram
//               (migrate_vma_setup(MIGRATE_VMA_SELECT_DEVICE_PRIVATE), copy out, finalize).
//               GPU accesses through a device-pfn entry never reach mm (mm has no frame for them):
//               the GPU reads/writes its own copy of the page and traces a `dev_write` oracle
//               event, as lib/test_hmm.c's dmirror does (kernel-mm/dmirror.ts).
//               dev_pagemap_ops.migrate_to_ram (svm_migrate_to_ram / nouveau_dmem_migrate_to_ram):
//               mm sends `migrate_to_ram` after an MMU_NOTIFY_MIGRATE with our owner; under the lock
//               zap the GPUVM entry of the page, flush, and answer with its content.
//               dev_pagemap_ops.page_free (svm_migrate_page_free): `device_page_free` returns the
//               page to the VRAM free list. devmemRead (not kernel: the end of a run resolving
//               mm's dump, gpu_devmem_read) answers the content of VRAM pages.
//   own MIGRATE An MMU_NOTIFY_MIGRATE whose owner is this GPU (our migrate_vma_setup, or mm's
//               migrate_to_ram path) sets the seq under the lock like every invalidation (so a fault
//               loop in flight retries) but zaps only GPUVM entries of system pages: their frames
//               are about to be replaced, and a DMA through one after the ack would be lost. Entries
//               of our own VRAM pages stay: the migration itself moves them (migrate_to_ram and the
//               eviction zap them under the lock when they copy the page out). nouveau skips its own
//               MIGRATE entirely (it maps the new pfns itself); kfd zaps everything; dmirror does
//               what we do.
//   free        under migrate_mutex (so the migration in flight ends first, and those queued for the
//               BO are dropped: kfd's svm_range_list_fini flushes its deferred work), GPUVM cleared,
//               mmu_interval_notifier_remove. Pages in VRAM stay there (they are the process's
//               memory; a CPU access brings them back).
//
// Departures: the fault buffer is unbounded (HW rings overflow and drop faults; the wave retries
// them). Pages made hot by accesses (not faults) migrate in the background, at most
// BACKGROUND_MIGRATIONS_MAX queued on migrate_mutex at once (more are skipped: migrationsSkipped);
// kfd migrates on the fault path and by range attributes only.
// Not a departure: hmm_range_fault returns an own device-private page as it is, read-only to a
// write request without faulting it (mm/hmm.c hmm_vma_handle_pte, v6.6: "Don't fault in device
// private pages owned by the caller, just report the PFN"); the fault handler then migrates that
// page back to RAM itself and retries.
//
// `unsafe-svm` skips mmu_interval_read_retry: it binds whatever hmm_range_fault returned even if an
// invalidation of those pages was acked meanwhile. The checker must flag stale_translation.
import {
  EBUSY, EFAULT, HMM_PFN_DEVICE_PRIVATE, HMM_PFN_ERROR, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE,
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_VALID, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM, PAGE_SIZE,
  mmu_interval_read_retry, mmu_interval_set_seq,
  type DevicePageFree, type HmmRangeFaultResult, type Invalidate, type MemremapPagesResult, type MigrateToRam, type MigrateToRamResult,
  type MigrateVmaFinalizeResult, type MigrateVmaSetupResult, type MmuIntervalReadBeginResult, type Pid,
} from '@svmsim/kernel-mm';
import { Mutex, type Envelope, type Message } from '@svmsim/runtime';
import { boEnd, boFirstVpn, type Bo } from './bo.js';
import type { GpuPte } from './gpuvm.js';
import type { Job } from './job.js';
import { retOf, type GpuHost, type Policy, type SubmitOutcome, type SubscribedBo } from './policy.js';
import { registerUserptr } from './user-pages.js';

export interface SvmFaultOptions {
  unsafe: boolean;
  /** -EBUSY answers plus read_retry restarts of one fault before it is cancelled (nouveau: a 1 s budget). */
  maxBusyRetries: number;
  /** Pages mapped per fault, an aligned window clipped to the BO. Default 1 (nouveau v6.6). */
  faultWindowPages?: number;
  /** Device-private VRAM pages registered with memremap_pages at first use; 0 disables VRAM. Default 64. */
  vramPages?: number;
  /** GPU faults + accesses of a page after which it is migrated to VRAM. Default 4. */
  hotThreshold?: number;
}

export const SVM_DEFAULTS = { faultWindowPages: 1, vramPages: 64, hotThreshold: 4 } as const;

/** Background migrations (pages hot through accesses) queued on migrate_mutex at most; more are skipped. */
const BACKGROUND_MIGRATIONS_MAX = 32;
/** Simulation bound: evictions tried to make room for one migration. */
const EVICTIONS_PER_MIGRATION_MAX = 64;
/** Simulation bound: migrate-back-and-retry rounds of one write fault on a read-only VRAM page. */
const VRAM_RO_RETRIES_MAX = 3;

/** One entry of the fault buffer. */
interface Fault {
  job: Job;
  bo: Bo | undefined;
  pid: Pid;
  vpn: number;
  write: boolean;
  raisedAt: number;
  resolve: (replay: boolean) => void;
}

/** A VRAM page in use: its content (the device's copy) and the virtual page it backs. */
interface VramPage {
  value: number;
  pid: Pid;
  vpn: number;
}

/** A range migrated to VRAM in one migrate_vma, kept in migration order for eviction. */
interface VramRange {
  pid: Pid;
  startVpn: number;
  endVpn: number;
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

const pageKey = (pid: Pid, vpn: number): number => pid * 2 ** 40 + vpn;

export function createSvmFaultPolicy(host: GpuHost, opts: SvmFaultOptions): Policy {
  const window = opts.faultWindowPages ?? SVM_DEFAULTS.faultWindowPages;
  const vramPages = opts.vramPages ?? SVM_DEFAULTS.vramPages;
  const hotThreshold = opts.hotThreshold ?? SVM_DEFAULTS.hotThreshold;
  if (!Number.isInteger(window) || window < 1) throw new Error(`svm-fault: faultWindowPages must be an integer >= 1, got ${window}`);
  if (!Number.isInteger(vramPages) || vramPages < 0) throw new Error(`svm-fault: vramPages must be an integer >= 0, got ${vramPages}`);
  if (!(hotThreshold >= 1)) throw new Error(`svm-fault: hotThreshold must be >= 1, got ${hotThreshold}`);
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
    invalidationsZapped: 0,
    ptesZapped: 0,
    ownMigrateInvalidations: 0,
    vramRegistered: 0,
    migratedToVram: 0,
    /** Migrations to VRAM queued for a BO that was freed before their turn: not done. */
    migrationsDropped: 0,
    migrationsSkipped: 0,
    /** Most migrations to VRAM waiting for migrate_mutex at once. */
    migrateWaitersMax: 0,
    migratedToRam: 0,
    vramEvictions: 0,
    vramPagesEvicted: 0,
    vramReads: 0,
    vramWrites: 0,
  };

  // ---- VRAM state (kfd: the zone device pages of the GPU; test_hmm.c's devmem) ----
  const vramEnabled = vramPages > 0;
  let vramState: 'none' | 'registering' | 'ready' | 'failed' = 'none';
  const vramWaiters: (() => void)[] = [];
  const vramFree: number[] = [];
  const vram = new Map<number, VramPage>();
  /** (pid, vpn) → the VRAM page backing it (until migrate_to_ram or device_page_free). */
  const vramAt = new Map<number, number>();
  const vramRanges: VramRange[] = [];
  /** GPU faults + accesses per page, while it is in system memory. */
  const heat = new Map<number, number>();
  /** Pages with a migration to VRAM queued or running. */
  const migrating = new Set<number>();
  /** prange->migrate_mutex: one migration at a time (never held with notifierLock across a message to mm). */
  const migrateMutex = new Mutex('gpu svm migrate_mutex');
  /** BOs in freeBo or freed: their queued migrations to VRAM are dropped. */
  const closing = new WeakSet<Bo>();
  /** Migrations to VRAM waiting for migrate_mutex. */
  let migrateWaiters = 0;
  /**
   * mutex_unlock of migrate_mutex. Mutex.unlock runs the next waiter at once, and a waiter that
   * finishes without waiting for mm (a dropped migration) unlocks again from inside: thousands of
   * them queued behind a freeBo would nest that deep. So unlocks are counted and done in a loop.
   */
  let migrateUnlocksPending = 0;
  let migrateUnlocking = false;
  const migrateUnlock = (): void => {
    migrateUnlocksPending++;
    if (migrateUnlocking) return;
    migrateUnlocking = true;
    while (migrateUnlocksPending > 0) {
      migrateUnlocksPending--;
      migrateMutex.unlock();
    }
    migrateUnlocking = false;
  };

  // ---- the fault buffer ----
  let buffer: Fault[] = [];
  let handlerState: 'idle' | 'scheduled' | 'running' = 'idle';

  const bump = (pid: Pid, vpn: number): number => {
    const k = pageKey(pid, vpn);
    const h = (heat.get(k) ?? 0) + 1;
    heat.set(k, h);
    return h;
  };

  const scheduleHandler = (): void => {
    if (handlerState !== 'idle' || buffer.length === 0) return;
    handlerState = 'scheduled';
    const delay = Math.max(0, buffer[0].raisedAt + host.costs.faultInterruptNs - host.ctx.now());
    host.sleep(delay, runBatch);
  };

  /** nouveau_svm_fault: drain, sort, dedup, handle each distinct fault, replay once. */
  const runBatch = (): void => {
    handlerState = 'running';
    const batch = buffer;
    buffer = [];
    s.faultBatches++;
    s.faultBatchSizeMax = Math.max(s.faultBatchSizeMax, batch.length);
    batch.sort((a, b) => a.pid - b.pid || a.vpn - b.vpn || Number(a.write) - Number(b.write));
    const distinct: Fault[][] = [];
    for (const f of batch) {
      const last = distinct[distinct.length - 1];
      if (last && last[0].pid === f.pid && last[0].vpn === f.vpn && last[0].write === f.write) {
        last.push(f);
        s.deviceFaultsDeduped++;
      } else distinct.push([f]);
    }
    if (tracing()) host.ctx.trace('gpu_fault_batch', { faults: batch.length, distinct: distinct.length });
    const outcome = new Map<Fault, boolean>();
    const next = (i: number): void => {
      if (i === distinct.length) return void host.sleep(host.costs.replayNs, () => replay(batch, outcome));
      const group = distinct[i];
      handleFault(group[0], (ret) => {
        for (const f of group) outcome.set(f, ret === 0);
        next(i + 1);
      });
    };
    next(0);
  };

  /** GP100_VMM_VN_FAULT_REPLAY for the batch; cancelled faults become VM faults. */
  const replay = (batch: Fault[], outcome: Map<Fault, boolean>): void => {
    if (tracing()) host.ctx.trace('gpu_fault_replay', { faults: batch.length });
    handlerState = 'idle';
    for (const f of batch) {
      const ok = outcome.get(f) === true;
      if (ok) s.deviceFaultsResolved++;
      else s.deviceFaultsCancelled++;
      s.faultLatencyNs.push(host.ctx.now() - f.raisedAt);
      f.resolve(ok);
    }
    scheduleHandler();
  };

  /** One distinct fault: done(0) when its page is mapped (or covered), else done(-errno) → cancel. */
  const handleFault = (f: Fault, done: (ret: number) => void): void => {
    const bo = f.bo;
    if (!bo || !bo.notifier) return done(EFAULT);
    const pte = host.vm.lookup(f.pid, f.vpn * PAGE_SIZE);
    if (pte && (!f.write || pte.writable)) return done(0); // a previous fault of the batch mapped it
    const first = boFirstVpn(bo);
    const ws = Math.max(first, f.vpn - (f.vpn % window));
    const we = Math.min(first + bo.pages, ws + window);
    const hot = bump(f.pid, f.vpn) >= hotThreshold;
    const fault = (): void => rangeFault(bo, ws, we, f.write, f.vpn, 0, done);
    if (!hot || !vramEnabled || vramAt.has(pageKey(f.pid, f.vpn))) return fault();
    migrateToVram(bo, ws, we, fault);
  };

  /**
   * nouveau_range_fault: read_begin → hmm_range_fault → lock → read_retry → map → unlock, over
   * [ws, we) (pages). done(0) or done(-errno).
   */
  const rangeFault = (bo: Bo, ws: number, we: number, write: boolean, vpn: number, roRetries: number, done: (ret: number) => void): void => {
    const n = bo.notifier;
    if (!n) return done(EFAULT);
    const start = ws * PAGE_SIZE;
    const end = we * PAGE_SIZE;
    const default_flags = HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0);
    let restarts = 0;
    const again = (): void => {
      host.call({ type: 'mmu_interval_read_begin', sub: n.sub }, (r) => {
        const ret = retOf(r);
        if (ret < 0) return done(ret);
        const seq = (r as MmuIntervalReadBeginResult).seq;
        if (!n.known) n.invalidate_seq = seq;
        s.hmmRangeFaults++;
        host.call(
          { type: 'hmm_range_fault', sub: n.sub, notifier_seq: seq, start, end, default_flags, pfn_flags_mask: 0, dev_private_owner: vramEnabled ? host.id : null },
          (h) => {
            const hret = retOf(h);
            if (hret === EBUSY) {
              host.stats.ebusyRetries++;
              if (++restarts > opts.maxBusyRetries) return done(EBUSY);
              return again();
            }
            if (hret < 0) return done(hret);
            const res = h as HmmRangeFaultResult;
            lock.lock(() => {
              if (mmu_interval_read_retry(n, seq)) {
                if (!opts.unsafe) {
                  lock.unlock();
                  s.readRetries++;
                  if (tracing()) host.ctx.trace('gpu_svm_read_retry', { sub: n.sub, seq, invalidate_seq: n.invalidate_seq, start, end });
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
                evictRange({ pid: bo.pid, startVpn: vpn, endVpn: vpn + 1 }, () => rangeFault(bo, ws, we, write, vpn, roRetries + 1, done));
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
      const vramPage = (f & HMM_PFN_DEVICE_PRIVATE) !== 0;
      const pte: GpuPte = { pfn: res.pfns[i], writable: (f & HMM_PFN_WRITE) !== 0 && !bo.readonly, tr: { via: 'mirror', sub, seq } };
      if (vramPage) pte.vram = true;
      const old = host.vm.lookup(bo.pid, (ws + i) * PAGE_SIZE);
      if (!old || old.pfn !== pte.pfn || old.writable !== pte.writable || old.vram !== pte.vram) changed++;
      host.vm.set(bo.pid, ws + i, pte);
    }
    return changed;
  };

  /** Zap [start, end) (bytes) of pid from GPUVM; `keepVram` keeps entries of our VRAM pages. Returns entries zapped. */
  const zap = (pid: Pid, start: number, end: number, keepVram: boolean): number => {
    if (!keepVram) return host.vm.clear(pid, start, end);
    let n = 0;
    for (let vpn = Math.floor(start / PAGE_SIZE); vpn < Math.ceil(end / PAGE_SIZE); vpn++) {
      const pte = host.vm.lookup(pid, vpn * PAGE_SIZE);
      if (pte && !pte.vram) n += host.vm.clear(pid, vpn * PAGE_SIZE, (vpn + 1) * PAGE_SIZE);
    }
    return n;
  };

  /** Flush the TLB (with the lock held) if anything was zapped, then `then`. */
  const flushIf = (zapped: number, then: () => void): void => {
    if (zapped === 0) return then();
    host.vm.tlbFlushes++;
    host.sleep(host.costs.tlbFlushNs, then);
  };

  // ---- VRAM ----

  /** kgd2kfd_init_zone_device: memremap_pages of all VRAM, at first use. */
  const ensureVram = (then: () => void): void => {
    if (vramState === 'ready' || vramState === 'failed') return then();
    vramWaiters.push(then);
    if (vramState === 'registering') return;
    vramState = 'registering';
    host.call({ type: 'memremap_pages', nr_pages: vramPages }, (r) => {
      const ret = retOf(r);
      if (ret < 0 || r.type !== 'memremap_pages_result') {
        vramState = 'failed';
        host.warn(`memremap_pages of ${vramPages} VRAM pages failed (${ret})`);
      } else {
        const base = (r as MemremapPagesResult).base;
        for (let i = vramPages - 1; i >= 0; i--) vramFree.push(base + i);
        vramState = 'ready';
        s.vramRegistered = vramPages;
        if (tracing()) host.ctx.trace('gpu_vram_registered', { base, pages: vramPages });
      }
      for (const w of vramWaiters.splice(0)) w();
    });
  };

  /**
   * svm_migrate_vma_to_vram of [ws, we) (pages) of the BO, under migrate_mutex. Evicts the
   * least-recently-migrated ranges first if VRAM is short. Always calls `done` (a page that could
   * not move stays in system memory and is mapped from there). Nothing moves once the BO is closing:
   * freeBo waits for migrate_mutex, so a migration queued behind it must not start after the BO is gone.
   */
  const migrateToVram = (bo: Bo, ws: number, we: number, done: () => void): void => {
    const pid = bo.pid;
    const keys: number[] = [];
    for (let v = ws; v < we; v++) if (!migrating.has(pageKey(pid, v))) keys.push(pageKey(pid, v));
    if (keys.length === 0) return done();
    for (const k of keys) migrating.add(k);
    const finish = (): void => {
      for (const k of keys) migrating.delete(k);
      migrateUnlock();
      done();
    };
    migrateWaiters++;
    s.migrateWaitersMax = Math.max(s.migrateWaitersMax, migrateWaiters);
    migrateMutex.lock(() => {
      migrateWaiters--;
      if (closing.has(bo)) {
        s.migrationsDropped++;
        return finish();
      }
      ensureVram(() => {
        if (vramState !== 'ready') return finish();
        // Make room before setup: an eviction's migrate_vma must not wait on the range our setup locks.
        makeRoom(we - ws, 0, () => {
          host.call({ type: 'migrate_vma_setup', pid, start: ws * PAGE_SIZE, end: we * PAGE_SIZE, flags: MIGRATE_VMA_SELECT_SYSTEM, pgmap_owner: host.id }, (r) => {
            const ret = retOf(r);
            if (ret < 0 || r.type !== 'migrate_vma_setup_result') return finish();
            const su = r as MigrateVmaSetupResult;
            const n = we - ws;
            const dst = new Float64Array(n).fill(-1);
            let copies = 0;
            for (let i = 0; i < n; i++) {
              if (!(su.src_flags[i] & MIGRATE_PFN_MIGRATE)) continue;
              const dpfn = vramFree.pop();
              if (dpfn === undefined) break;
              // No VALID: pte_none or the zero page, cleared in VRAM.
              vram.set(dpfn, { value: su.src_flags[i] & MIGRATE_PFN_VALID ? su.src_data[i] : 0, pid, vpn: ws + i });
              dst[i] = dpfn;
              copies++;
            }
            host.sleep(copies * host.costs.migratePerPageNs, () => {
              host.call({ type: 'migrate_vma_finalize', migration: su.migration, dst_pfns: dst }, (fr) => {
                const fret = retOf(fr);
                if (fret < 0 || fr.type !== 'migrate_vma_finalize_result') {
                  for (let i = 0; i < n; i++) if (dst[i] >= 0 && vram.delete(dst[i])) vramFree.push(dst[i]);
                  return finish();
                }
                for (let i = 0; i < n; i++) {
                  if (dst[i] < 0) continue;
                  vramAt.set(pageKey(pid, ws + i), dst[i]);
                  heat.delete(pageKey(pid, ws + i));
                }
                const migrated = (fr as MigrateVmaFinalizeResult).migrated;
                s.migratedToVram += migrated;
                if (migrated > 0) vramRanges.push({ pid, startVpn: ws, endVpn: we });
                if (tracing()) host.ctx.trace('gpu_migrate_to_vram', { pid, start: ws * PAGE_SIZE, end: we * PAGE_SIZE, migrated });
                finish();
              });
            });
          });
        });
      });
    });
  };

  /** Evict least-recently-migrated ranges until `need` VRAM pages are free (or nothing is left to evict). */
  const makeRoom = (need: number, tries: number, done: () => void): void => {
    // Ranges whose pages all left VRAM already (CPU faults, munmap) have nothing to evict.
    while (vramRanges.length > 0 && !stillInVram(vramRanges[0])) vramRanges.shift();
    if (vramFree.length >= need || vramRanges.length === 0 || tries >= EVICTIONS_PER_MIGRATION_MAX) return done();
    s.vramEvictions++;
    evictRange(vramRanges.shift()!, () => makeRoom(need, tries + 1, done));
  };

  const stillInVram = (r: VramRange): boolean => {
    for (let v = r.startVpn; v < r.endVpn; v++) if (vramAt.has(pageKey(r.pid, v))) return true;
    return false;
  };

  /**
   * svm_migrate_vram_to_ram of a range: migrate_vma_setup(SELECT_DEVICE_PRIVATE); under the lock,
   * zap each page's GPUVM entry and copy it out; flush; migrate_vma_finalize with the content. The
   * pages come back to the free list by device_page_free (sent by mm before the finalize reply).
   */
  const evictRange = (r: VramRange, done: () => void): void => {
    host.call(
      { type: 'migrate_vma_setup', pid: r.pid, start: r.startVpn * PAGE_SIZE, end: r.endVpn * PAGE_SIZE, flags: MIGRATE_VMA_SELECT_DEVICE_PRIVATE, pgmap_owner: host.id },
      (sr) => {
        const ret = retOf(sr);
        if (ret < 0 || sr.type !== 'migrate_vma_setup_result') return done();
        const su = sr as MigrateVmaSetupResult;
        const n = r.endVpn - r.startVpn;
        const dst = new Float64Array(n).fill(-1);
        const dstData = new Float64Array(n);
        lock.lock(() => {
          let zapped = 0;
          let copies = 0;
          for (let i = 0; i < n; i++) {
            if (!(su.src_flags[i] & MIGRATE_PFN_VALID) || !(su.src_flags[i] & MIGRATE_PFN_MIGRATE)) continue;
            const vpn = r.startVpn + i;
            const dpfn = vramAt.get(pageKey(r.pid, vpn));
            const page = dpfn === undefined ? undefined : vram.get(dpfn);
            if (!page) continue;
            const pte = host.vm.lookup(r.pid, vpn * PAGE_SIZE);
            if (pte?.vram && pte.pfn === dpfn) zapped += host.vm.clear(r.pid, vpn * PAGE_SIZE, (vpn + 1) * PAGE_SIZE);
            vramAt.delete(pageKey(r.pid, vpn));
            dstData[i] = page.value;
            dst[i] = 0; // any destination: mm allocates the system page
            copies++;
          }
          flushIf(zapped, () => {
            lock.unlock();
            host.sleep(copies * host.costs.migratePerPageNs, () => {
              host.call({ type: 'migrate_vma_finalize', migration: su.migration, dst_pfns: dst, dst_data: dstData }, (fr) => {
                const migrated = retOf(fr) < 0 ? 0 : (fr as MigrateVmaFinalizeResult).migrated;
                s.vramPagesEvicted += migrated;
                if (tracing()) host.ctx.trace('gpu_vram_evict', { pid: r.pid, start: r.startVpn * PAGE_SIZE, end: r.endVpn * PAGE_SIZE, migrated });
                done();
              });
            });
          });
        });
      },
    );
  };

  const answer = (env: Envelope<Message>, r: MigrateToRamResult): void => host.ctx.reply(env, r as unknown as Message);

  /** dev_pagemap_ops.migrate_to_ram: a CPU touched one of our pages. Zap its entry, flush, hand the content over. */
  const migrateToRam = (env: Envelope<Message>, m: MigrateToRam): void => {
    const page = vram.get(m.dev_pfn);
    if (!page) {
      host.warn('migrate_to_ram of a VRAM page not in use', { dev_pfn: m.dev_pfn });
      return answer(env, { type: 'migrate_to_ram_result', ret: EFAULT, value: 0 });
    }
    lock.lock(() => {
      const vpn = Math.floor(m.addr / PAGE_SIZE);
      const pte = host.vm.lookup(m.pid, m.addr);
      const zapped = pte?.vram && pte.pfn === m.dev_pfn ? host.vm.clear(m.pid, vpn * PAGE_SIZE, (vpn + 1) * PAGE_SIZE) : 0;
      if (vramAt.get(pageKey(m.pid, vpn)) === m.dev_pfn) vramAt.delete(pageKey(m.pid, vpn));
      flushIf(zapped, () => {
        lock.unlock();
        s.migratedToRam++;
        host.sleep(host.costs.migratePerPageNs, () => answer(env, { type: 'migrate_to_ram_result', ret: 0, value: page.value }));
      });
    });
  };

  /** dev_pagemap_ops.page_free */
  const pageFree = (m: DevicePageFree): void => {
    const page = vram.get(m.dev_pfn);
    if (!page) return host.warn('page_free of a VRAM page not in use', { dev_pfn: m.dev_pfn });
    vram.delete(m.dev_pfn);
    if (vramAt.get(pageKey(page.pid, page.vpn)) === m.dev_pfn) vramAt.delete(pageKey(page.pid, page.vpn));
    vramFree.push(m.dev_pfn);
  };

  return {
    name: opts.unsafe ? 'unsafe-svm' : 'svm-fault',

    createBo(bo: Bo, done: (ret: number) => void): void {
      registerUserptr(host, bo, done);
    },

    submit(job: Job, done: (o: SubmitOutcome) => void): void {
      host.pushJob(job);
      done({ ret: 0, pagesWalked: 0, resubmissions: 0 });
    },

    gpuFault(job: Job, pid: Pid, addr: number, write: boolean, resolve: (replay: boolean) => void): void {
      s.deviceFaults++;
      const bo = job.bos.find((b) => b.pid === pid && addr >= b.addr && addr < boEnd(b));
      const vpn = Math.floor(addr / PAGE_SIZE);
      if (tracing()) host.ctx.trace('gpu_retry_fault', { job: job.id, pid, addr: vpn * PAGE_SIZE, write });
      buffer.push({ job, bo, pid, vpn, write, raisedAt: host.ctx.now(), resolve });
      scheduleHandler();
    },

    access(job: Job, bo: Bo, page: number, pte: GpuPte, value: number): boolean {
      const vpn = boFirstVpn(bo) + page;
      if (!pte.vram) {
        if (vramEnabled && bump(bo.pid, vpn) === hotThreshold && !vramAt.has(pageKey(bo.pid, vpn))) {
          // Hot through accesses alone: migrate in the background (the next access faults and maps VRAM).
          const ws = Math.max(boFirstVpn(bo), vpn - (vpn % window));
          if (migrateWaiters < BACKGROUND_MIGRATIONS_MAX) migrateToVram(bo, ws, Math.min(boFirstVpn(bo) + bo.pages, ws + window), () => {});
          else s.migrationsSkipped++;
        }
        return false;
      }
      // A VRAM page: the access stays in the GPU.
      const p = vram.get(pte.pfn);
      if (!p) {
        host.warn('GPUVM maps a VRAM page not in use', { pid: bo.pid, addr: vpn * PAGE_SIZE, dev_pfn: pte.pfn });
        return true;
      }
      if (job.pattern.write) {
        p.value = value;
        s.vramWrites++;
        if (tracing()) host.ctx.trace('dev_write', { pid: bo.pid, addr: vpn * PAGE_SIZE, dev_pfn: pte.pfn, value }); // the checker's oracle event
      } else s.vramReads++;
      return true;
    },

    invalidate(env: Envelope<Message>, m: Invalidate, bo: SubscribedBo): void {
      const ack = (ok: boolean) => host.reply(env, { type: 'invalidate_ack', sub: m.sub, ok });
      const n = bo.notifier;
      const start = Math.max(m.start, bo.addr);
      const end = Math.min(m.end, boEnd(bo));
      const own = m.event === 'MMU_NOTIFY_MIGRATE' && m.owner === host.id;
      if (own) s.ownMigrateInvalidations++;
      const t0 = host.ctx.now();
      const run = (): void => {
        mmu_interval_set_seq(n, m.cur_seq);
        n.known = true;
        const zapped = start < end ? zap(bo.pid, start, end, own) : 0;
        if (zapped > 0) {
          s.invalidationsZapped++;
          s.ptesZapped += zapped;
        }
        flushIf(zapped, () => {
          lock.unlock();
          if (m.blockable) host.stats.invalidateWaitNs.push(host.ctx.now() - t0);
          if (tracing()) host.ctx.trace('gpu_invalidate_done', { sub: m.sub, handle: bo.handle, zapped, own });
          ack(true);
        });
      };
      if (m.blockable) return lock.lock(run);
      if (!lock.trylock()) {
        host.stats.invalidationsRefused++;
        return ack(false);
      }
      run();
    },

    freeBo(bo: Bo, done: () => void): void {
      // The jobs are done, but not the migrations their accesses and faults queued (a hot page
      // migrates in the background, and each migration may first evict). Tear down under
      // migrate_mutex, as kfd's svm_range_list_fini flushes its deferred work and drains retry
      // faults before it removes the notifiers: the migration holding it (between
      // migrate_vma_setup and finalize, its pages under migration entries) ends first; those
      // queued see `closing` and do nothing. So when GEM_CLOSE returns, whatever reads the memory
      // next (the end-of-run dump) finds pages, not migration entries.
      closing.add(bo);
      migrateMutex.lock(() => {
        const finish = (): void => {
          migrateUnlock();
          done();
        };
        if (host.vm.clear(bo.pid, bo.addr, boEnd(bo)) > 0) host.vm.tlbFlushes++;
        const n = bo.notifier;
        if (!n) return finish();
        host.call({ type: 'mmu_interval_notifier_remove', sub: n.sub }, () => {
          host.bySub.delete(n.sub);
          bo.notifier = null;
          finish();
        });
      });
    },

    receive(env: Envelope<Message>, m: Message): boolean {
      switch (m.type) {
        case 'migrate_to_ram':
          migrateToRam(env, m as unknown as MigrateToRam);
          return true;
        case 'device_page_free':
          pageFree(m as unknown as DevicePageFree);
          return true;
        default:
          return false;
      }
    },

    devmemRead(devPfns: number[]): (number | null)[] {
      return devPfns.map((pfn) => vram.get(pfn)?.value ?? null);
    },

    summary(): Record<string, unknown> {
      return {
        ...s,
        faultLatencyNs: undefined,
        faultLatencyP50Ns: percentile(s.faultLatencyNs, 50),
        faultLatencyP99Ns: percentile(s.faultLatencyNs, 99),
        faultLatencyMaxNs: s.faultLatencyNs.length ? Math.max(...s.faultLatencyNs) : 0,
        faultsPending: buffer.length,
        vramPagesInUse: vram.size,
        vramPagesFree: vramFree.length,
      };
    },
  };
}
