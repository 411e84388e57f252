// uvm's servicing of one VA block's faults in HMM mode: service_fault_batch_block_locked
// (uvm_gpu_replayable_faults.c) → uvm_hmm_va_block_service_locked (uvm_hmm.c) →
// uvm_va_block_service_locked (uvm_va_block.c), open-gpu-kernel-modules kernel-open/nvidia-uvm read
// at commit 10d538dfbd349161507294d61d3b2f92fcfe2593.
//
//   per fault   a job already ended → cancel; a page the GPU may already access as asked
//               (uvm_va_block_page_is_gpu_authorized) → nothing to do; else
//               uvm_perf_thrashing_get_hint (uvm-thrashing.ts): THROTTLE → not serviced, replayed at
//               the nap's end; PIN → serviced where it is pinned (the CPU's memory: mapped remotely,
//               not migrated; this GPU: migrated as usual); NONE → serviced.
//   region      the faulted pages plus uvm_perf_prefetch's density prefetch inside the block clipped
//               to the BO (uvm-prefetch.ts), serviced as contiguous runs.
//   migrate     new residency = the faulting GPU (uvm_va_block_select_residency with no preferred
//               location): migrate_vma_setup(SELECT_SYSTEM, owner this GPU), copy, finalize
//               (uvm_hmm_va_block_migrate_locked → svm-vram.ts) of each run's pages not pinned to
//               the CPU and not in VRAM yet; a page migrate_vma does not select (file, KSM, pinned)
//               stays in system memory and is mapped remotely. Each page moved is a thrashing
//               migration event of the GPU.
//   map         the HMM mirror loop per run: mmu_interval_read_begin; mmap_read_lock;
//               hmm_range_fault(REQ_FAULT [| REQ_WRITE], dev_private_owner = this GPU);
//               mmap_read_unlock; lock (va_block->lock, here the device's notifier lock);
//               mmu_interval_read_retry → unlock, again (bounded by `maxBusyRetries`); else write
//               the GPU PTEs; unlock. uvm_hmm.c's hmm_range_fault loop retries -EBUSY the same way
//               (hmm_range_fault_locked / uvm_hmm_va_block_service_locked's NV_WARN_MORE_PROCESSING_REQUIRED).
//               A BO closing, or whose notifier is not the one the loop began with, maps nothing.
//
// `unsafe` (unsafe-uvm) maps without mmu_interval_read_retry: it binds what hmm_range_fault returned
// even if an invalidation of those pages was acked meanwhile. The checker must flag stale_translation.
//
// Departures: REQ_WRITE is asked for a whole run when any of its faults is a write (UVM asks per
// page through the pfn flags); an own VRAM page returned read-only to a write fault fails the fault
// (UVM migrates it to system memory first).
import {
  EBUSY, EFAULT, SVMSIM_PFN_DEVICE_PRIVATE, HMM_PFN_ERROR, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE, PAGE_SIZE,
  mmu_interval_read_retry, type HmmRangeFaultResult, type MmuIntervalReadBeginResult,
} from '@svmsim/kernel-mm';
import { boFirstVpn, type Bo } from './bo.js';
import type { GpuPte } from './gpuvm.js';
import { retOf, withMmapReadLock, type GpuHost, type Reply } from './policy.js';
import type { SvmVram } from './svm-vram.js';
import type { UvmBlockFaults, UvmFaultGroup } from './uvm-fault-batch.js';
import { UVM_BIG_PAGE_PAGES, uvmPrefetchMask } from './uvm-prefetch.js';
import { UVM_ID_CPU, UVM_ID_GPU, UVM_VA_BLOCK_PAGES, type UvmThrashing } from './uvm-thrashing.js';

export interface UvmServiceOptions {
  unsafe: boolean;
  /** -EBUSY answers plus read_retry restarts of one run before its faults are cancelled. */
  maxBusyRetries: number;
  /** uvm_perf_prefetch_enable. */
  prefetch: boolean;
  /** uvm_perf_prefetch_threshold. */
  prefetchThreshold: number;
  /** BOs being torn down: their faults are cancelled, never mapped. */
  closing: WeakSet<Bo>;
}

export interface UvmServiceStats {
  /** Faults whose page the GPU could already access as asked when their block was serviced. */
  faultsAlreadyMapped: number;
  pagesPrefetched: number;
  pagesServiced: number;
  /** Pages mapped remotely because they are pinned to the CPU's memory. */
  pagesMappedRemotePinned: number;
  hmmRangeFaults: number;
  readRetries: number;
  /** unsafe-uvm: read_retry said stale and was ignored. */
  readRetriesSkipped: number;
  faultsOfClosingBos: number;
  blocksServiced: number;
}

/** One run of pages [ws, we) of a BO to service, and whether it needs write access. */
interface Run {
  ws: number;
  we: number;
  write: boolean;
}

export class UvmBlockService {
  readonly stats: UvmServiceStats = {
    faultsAlreadyMapped: 0, pagesPrefetched: 0, pagesServiced: 0, pagesMappedRemotePinned: 0, hmmRangeFaults: 0, readRetries: 0, readRetriesSkipped: 0,
    faultsOfClosingBos: 0, blocksServiced: 0,
  };

  constructor(
    private readonly host: GpuHost,
    private readonly opts: UvmServiceOptions,
    private readonly vram: SvmVram,
    private readonly thrashing: UvmThrashing,
  ) {}

  /** service_fault_batch_block: decide every group's outcome, then service the block's runs. */
  service(b: UvmBlockFaults, done: () => void): void {
    this.stats.blocksServiced++;
    const now = this.host.ctx.now();
    const live: UvmFaultGroup[] = [];
    for (const g of b.groups) if (this.triage(g, now)) live.push(g);
    // Every fault of a block is on one BO here (BOs are 2 MiB-block aligned or smaller; one run per BO).
    const byBo = new Map<Bo, UvmFaultGroup[]>();
    for (const g of live) {
      const bo = g.faults[0].bo!;
      const list = byBo.get(bo);
      if (list) list.push(g);
      else byBo.set(bo, [g]);
    }
    const bos = [...byBo];
    const next = (i: number): void => {
      if (i === bos.length) return done();
      const [bo, groups] = bos[i];
      this.serviceBo(bo, b.block, groups, () => next(i + 1));
    };
    next(0);
  }

  /** The per-fault checks before servicing: false if the group's outcome is decided already. */
  private triage(g: UvmFaultGroup, now: number): boolean {
    const f = g.faults[0];
    const bo = f.bo;
    if (!g.faults.some((x) => x.job.endedAt < 0) || !bo || !bo.notifier) {
      g.outcome = 'cancel';
      return false;
    }
    if (this.opts.closing.has(bo)) {
      this.stats.faultsOfClosingBos++;
      g.outcome = 'cancel';
      return false;
    }
    const pte = this.host.vm.lookup(f.pid, f.vpn * PAGE_SIZE);
    if (pte && (!f.write || pte.writable)) {
      this.stats.faultsAlreadyMapped++;
      return false;
    }
    const hint = this.thrashing.getHint(f.pid, f.vpn, now);
    if (hint.type === 'throttle') {
      g.outcome = 'throttle';
      g.untilNs = hint.endNs;
      return false;
    }
    return true;
  }

  /** The block's faults on one BO: prefetch, migrate, map, run by run. */
  private serviceBo(bo: Bo, block: number, groups: UvmFaultGroup[], done: () => void): void {
    const first = boFirstVpn(bo);
    const rs = Math.max(first, block * UVM_VA_BLOCK_PAGES);
    const re = Math.min(first + bo.pages, (block + 1) * UVM_VA_BLOCK_PAGES);
    const n = re - rs;
    const faulted = new Uint8Array(n);
    const write = new Uint8Array(n);
    const resident = new Uint8Array(n);
    const thrashing = new Uint8Array(n);
    for (const g of groups) {
      const i = g.faults[0].vpn - rs;
      faulted[i] = 1;
      if (g.faults[0].write) write[i] = 1;
    }
    for (let i = 0; i < n; i++) {
      if (this.vram.has(bo.pid, rs + i)) resident[i] = 1;
      if (this.thrashing.isThrashing(bo.pid, rs + i)) thrashing[i] = 1;
    }
    const prefetch = this.opts.prefetch
      ? uvmPrefetchMask({ pages: n, firstInBlock: rs % UVM_VA_BLOCK_PAGES, resident, faulted, thrashing, threshold: this.opts.prefetchThreshold, bigPagePages: UVM_BIG_PAGE_PAGES })
      : new Uint8Array(n);
    const runs: Run[] = [];
    for (let i = 0; i < n; i++) {
      if (!faulted[i] && !prefetch[i]) continue;
      if (prefetch[i]) this.stats.pagesPrefetched++;
      const last = runs[runs.length - 1];
      if (last && last.we === rs + i) {
        last.we++;
        last.write ||= write[i] === 1;
      } else runs.push({ ws: rs + i, we: rs + i + 1, write: write[i] === 1 });
    }
    const outcome = (ret: number, r: Run): void => {
      for (const g of groups) {
        const v = g.faults[0].vpn;
        if (v >= r.ws && v < r.we && ret < 0) g.outcome = 'cancel';
      }
    };
    const next = (i: number): void => {
      if (i === runs.length) return done();
      const r = runs[i];
      this.stats.pagesServiced += r.we - r.ws;
      this.migrateRun(bo, r, () =>
        this.rangeFault(bo, r, 0, (ret) => {
          outcome(ret, r);
          next(i + 1);
        }),
      );
    };
    next(0);
  }

  /** uvm_hmm_va_block_migrate_locked of a run's pages that should live in this GPU's VRAM. */
  private migrateRun(bo: Bo, r: Run, done: () => void): void {
    if (!this.vram.enabled) return done();
    const want: number[] = [];
    for (let v = r.ws; v < r.we; v++) {
      if (this.thrashing.pinnedResidency(bo.pid, v) === UVM_ID_CPU) {
        this.stats.pagesMappedRemotePinned++;
        continue;
      }
      if (!this.vram.has(bo.pid, v)) want.push(v);
    }
    if (want.length === 0) return done();
    // One migrate_vma over the span of the pages wanted; pages pinned to the CPU inside it are left
    // out by splitting at them.
    const spans: [number, number][] = [];
    for (const v of want) {
      const last = spans[spans.length - 1];
      if (last && last[1] === v) last[1]++;
      else spans.push([v, v + 1]);
    }
    const next = (i: number): void => {
      if (i === spans.length) return done();
      const [ws, we] = spans[i];
      this.vram.migrateToVram(bo, ws, we, () => {
        this.recordMigrations(bo, ws, we);
        next(i + 1);
      });
    };
    next(0);
  }

  /** A thrashing migration event (dst this GPU) for each run of pages of [ws, we) now in VRAM, per VA block. */
  private recordMigrations(bo: Bo, ws: number, we: number): void {
    const now = this.host.ctx.now();
    let v = ws;
    while (v < we) {
      if (!this.vram.has(bo.pid, v)) {
        v++;
        continue;
      }
      const start = v;
      const blockEnd = (Math.floor(v / UVM_VA_BLOCK_PAGES) + 1) * UVM_VA_BLOCK_PAGES;
      while (v < we && v < blockEnd && this.vram.has(bo.pid, v)) v++;
      this.thrashing.event(bo.pid, start, v - start, UVM_ID_GPU, 'migration', now);
    }
  }

  /** The HMM mirror loop over one run: read_begin → hmm_range_fault → lock → read_retry → map. */
  private rangeFault(bo: Bo, r: Run, restarts: number, done: (ret: number) => void): void {
    const n = bo.notifier;
    const closing = this.opts.closing;
    if (!n || closing.has(bo)) {
      this.stats.faultsOfClosingBos++;
      return done(EFAULT);
    }
    const again = (): void => {
      if (restarts + 1 > this.opts.maxBusyRetries) return done(EBUSY);
      this.rangeFault(bo, r, restarts + 1, done);
    };
    this.host.call({ type: 'mmu_interval_read_begin', sub: n.sub }, (rb) => {
      const ret = retOf(rb);
      if (ret < 0) return done(ret);
      const seq = (rb as MmuIntervalReadBeginResult).seq;
      if (!n.known) n.invalidate_seq = seq;
      this.stats.hmmRangeFaults++;
      const default_flags = HMM_PFN_REQ_FAULT | (r.write && !bo.readonly ? HMM_PFN_REQ_WRITE : 0);
      const req = {
        type: 'hmm_range_fault', sub: n.sub, notifier_seq: seq, start: r.ws * PAGE_SIZE, end: r.we * PAGE_SIZE, default_flags, pfn_flags_mask: 0,
        dev_private_owner: this.vram.enabled ? this.host.id : null,
      } as const;
      withMmapReadLock(this.host, bo.pid, (e) => done(e), (unlock) =>
        this.host.call(req, (h) => unlock(() => {
          const hret = retOf(h);
          if (hret === EBUSY) {
            this.host.stats.ebusyRetries++;
            return again();
          }
          if (hret < 0) return done(hret);
          this.mapLocked(bo, r, h, seq, done, again);
        })),
      );
    });
  }

  /** Under the lock: the notifier still ours and the BO not closing, read_retry, then the PTEs. */
  private mapLocked(bo: Bo, r: Run, h: Reply, seq: number, done: (ret: number) => void, again: () => void): void {
    const n = bo.notifier;
    const lock = this.host.notifierLock;
    lock.lock(() => {
      // A notifier remove does not bump the sequence: read_retry cannot see the BO go.
      if (this.opts.closing.has(bo) || bo.notifier !== n || !n) {
        lock.unlock();
        this.stats.faultsOfClosingBos++;
        return done(EFAULT);
      }
      if (mmu_interval_read_retry(n, seq)) {
        if (!this.opts.unsafe) {
          lock.unlock();
          this.stats.readRetries++;
          return again();
        }
        this.stats.readRetriesSkipped++; // the bug: bind pfns an acked invalidation may have replaced
      }
      const mapped = this.writePtes(bo, r, h as HmmRangeFaultResult, n.sub, seq);
      lock.unlock();
      if (mapped < 0) return done(mapped);
      this.host.sleep((r.we - r.ws) * this.host.costs.faultPerPageNs + mapped * this.host.costs.ptePerPageNs, () => done(this.writeDenied(bo, r) ? EFAULT : 0));
    });
  }

  /** A write run whose page came back read-only (an own VRAM page hmm_range_fault does not fault): the fault fails. */
  private writeDenied(bo: Bo, r: Run): boolean {
    if (!r.write) return false;
    for (let v = r.ws; v < r.we; v++) {
      const pte = this.host.vm.lookup(bo.pid, v * PAGE_SIZE);
      if (pte?.vram && !pte.writable) return true;
    }
    return false;
  }

  /** Write GPUVM from the pfns; returns the entries changed, or -EFAULT. */
  private writePtes(bo: Bo, r: Run, res: HmmRangeFaultResult, sub: number, seq: number): number {
    for (let i = 0; i < res.flags.length; i++) {
      const f = res.flags[i];
      if (f & HMM_PFN_ERROR || !(f & HMM_PFN_VALID)) {
        this.host.warn('hmm_range_fault succeeded with a page the GPU cannot map', { handle: bo.handle, vpn: r.ws + i, flags: f });
        return EFAULT;
      }
    }
    let changed = 0;
    for (let i = 0; i < res.flags.length; i++) {
      const f = res.flags[i];
      const pte: GpuPte = { pfn: res.pfns[i], writable: (f & HMM_PFN_WRITE) !== 0 && !bo.readonly, tr: { via: 'mirror', sub, seq } };
      if (f & SVMSIM_PFN_DEVICE_PRIVATE) pte.vram = true;
      const old = this.host.vm.lookup(bo.pid, (r.ws + i) * PAGE_SIZE);
      if (!old || old.pfn !== pte.pfn || old.writable !== pte.writable || old.vram !== pte.vram) changed++;
      this.host.vm.set(bo.pid, r.ws + i, pte);
    }
    return changed;
  }
}
