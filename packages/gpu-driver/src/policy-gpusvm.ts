// Policy `gpusvm` (and `unsafe-gpusvm`): the kernel's DRM GPU SVM layer as Intel's xe driver uses it
// for system allocations (drivers/gpu/drm/drm_gpusvm.c, drm_pagemap.c, xe/xe_svm.c; torvalds/linux
// as stored at 0542972950ef, 10dd1eaa80a5 and 0131514f9789: the v7.0 development tree). This file is
// xe's side; the parts:
//   gpusvm-ranges.ts             drm_gpusvm notifiers (svm_notifier_size) and ranges (chunk sizes)
//   gpusvm-get-pages.ts          drm_gpusvm_get_pages, check_pages, range_evict
//   gpusvm-pagemap.ts            drm_pagemap: migration to VRAM, the atomic time slice
//   gpusvm-garbage-collector.ts  xe's collector of unmapped ranges
//   svm-vram.ts                  the device-private pages themselves (shared with svm-fault, uvm)
//
// One GPU page fault (the GuC's page-fault message, handled one at a time by the pf worker under
// vm->lock; each answered on its own, no batch replay):
//
//   xe_svm_handle_pagefault(atomic)
//     need_vram = xe_vma_need_vram_for_atomic: an atomic on a discrete GPU with the default
//                 atomic attribute needs VRAM → ctx.devmem_only, ctx.timeslice_ms =
//                 atomic_svm_timeslice_ms (5), migrate_try_count 3 (else 1)
//   retry:
//     xe_svm_garbage_collector                  (gpusvm-garbage-collector.ts)
//     drm_gpusvm_range_find_or_insert           mmap_read_lock; vma_lookup (none → -ENOENT); a
//                                               writable mirror over a VMA without VM_WRITE →
//                                               -EPERM; the range holding the address, or a new
//                                               one (drm_gpusvm_range_chunk_size); migrate_devmem
//                                               = devmem possible && anonymous VMA
//     devmem_only && !migrate_devmem → -EACCES
//     xe_svm_range_is_valid → done (a "valid" fault: another fault bound it first)
//     --migrate_try_count >= 0 && needs_migrate_to_vram (default preferred location: this GPU's
//       VRAM) → xe_svm_alloc_vram (gpusvm-pagemap.ts); timeslice doubled; failure → retry
//       (which then maps system memory) unless devmem_only has no tries left
//     xe_svm_range_get_pages → drm_gpusvm_range_get_pages; -EOPNOTSUPP evicts the range first;
//       -EOPNOTSUPP / -EFAULT / -EPERM → retry (timeslice doubled) while tries are left
//     xe_vm_range_rebind: the page-table update is prepared (ptePerPageNs a page), then under the
//       notifier lock xe_pt_svm_pre_commit → drm_gpusvm_range_pages_valid: false (an invalidation
//       came after get_pages) → -EAGAIN → retry; true → commit the PTEs, tile_present.
//
// Invalidation: drm_gpusvm_notifier_invalidate (non-blockable → false; down_write(notifier_lock),
// mmu_interval_set_seq) → xe_svm_invalidate: the ranges of the notifier over the range; each bound
// one is zapped WHOLE (xe_svm_range_notifier_event_begin widens the invalidation to the range's
// bounds: ranges are never split), one TLB invalidation; then for every range
// drm_gpusvm_range_unmap_pages, and on MMU_NOTIFY_UNMAP drm_gpusvm_range_set_unmapped and the
// garbage collector. A partial munmap of a 2 MiB range thus drops the whole range
// (`partialUnmapRangeDrops`), and the CPU pages left fault in again as smaller ranges that fit the
// VMA left.
//
// CPU fault on our VRAM (migrate_to_ram): __drm_pagemap_migrate_to_ram's time-slice check
// (gpusvm-pagemap.ts), then the range is invalidated whole (its migrate_vma_setup's notifier) and
// the page goes home (svm-vram.ts).
//
// `unsafe-gpusvm` binds without drm_gpusvm_range_pages_valid: pages get_pages collected are
// committed to the GPU page table even when an invalidation has since unmapped them (the ack went
// to mm, which may have reused the frames): the checker must find stale_translation.
//
// Departures (README): the mmu_interval_notifier is the mirror BO's, one per BO, where drm_gpusvm
// inserts one per 512 MiB window (the window still bounds the ranges); an own MIGRATE keeps the
// entries of our VRAM pages (the kernel's time-slice check comes before the invalidation); a range
// whose faulting page lost its GPU entry to svm-vram.ts's page-at-a-time moves counts as invalidated.
import { EAGAIN, EBUSY, EFAULT, EINVAL, ENOENT, EOPNOTSUPP, EPERM, SVMSIM_PFN_DEVICE_PRIVATE, HMM_PFN_WRITE, PAGE_SIZE, PROT_WRITE, mmu_interval_set_seq, type DevicePageFree, type Invalidate, type MigrateToRam, type Pid, type VmaLookupResult } from '@svmsim/kernel-mm';
import { Mutex, type Envelope, type Message } from '@svmsim/runtime';
import { boEnd, boFirstVpn, type Bo, type UserptrNotifier } from './bo.js';
import { XeSvmGarbageCollector } from './gpusvm-garbage-collector.js';
import { GpusvmWalks, type DrmGpusvmCtx } from './gpusvm-get-pages.js';
import { DrmPagemap, XE_ATOMIC_SVM_TIMESLICE_MS_DEFAULT } from './gpusvm-pagemap.js';
import {
  DrmGpusvm, XE_CHECK_PAGES_THRESHOLD_PAGES, XE_FAULT_CHUNK_PAGES, XE_SVM_NOTIFIER_SIZE_MIB_DEFAULT,
  drm_gpusvm_range_pages_valid, drm_gpusvm_range_set_unmapped, drm_gpusvm_range_unmap_pages, type DrmGpusvmNotifier, type DrmGpusvmRange,
} from './gpusvm-ranges.js';
import type { GpuPte } from './gpuvm.js';
import type { Job } from './job.js';
import { maxOf, percentile } from './percentile.js';
import { retOf, withMmapReadLock, type GpuHost, type Policy, type SubmitOutcome, type SubscribedBo } from './policy.js';
import { createSvmVram } from './svm-vram.js';
import { registerUserptr, unregisterUserptr } from './user-pages.js';

/** -EACCES (not among kernel-mm's errnos): an atomic fault on memory that cannot move to VRAM. */
export const EACCES = -13;

export interface GpusvmOptions {
  unsafe: boolean;
  /** Retries of one fault (goto retry, get_pages' own) before it is cancelled: the simulation's bound. */
  maxBusyRetries: number;
  /** xe.svm_notifier_size, MiB (512). */
  notifierSizeMiB?: number;
  /** xe's fault_chunk_sizes, KiB, largest first (2048, 64, 4). */
  chunkSizesKiB?: number[];
  /** xe->atomic_svm_timeslice_ms (5; debugfs atomic_svm_timeslice_ms). */
  atomicTimesliceMs?: number;
  /** Device-private VRAM pages (svmsim's budget, default 64; 0: an integrated GPU, no migration). */
  vramPages?: number;
}

export const GPUSVM_DEFAULTS = { notifierSizeMiB: XE_SVM_NOTIFIER_SIZE_MIB_DEFAULT, chunkSizesKiB: XE_FAULT_CHUNK_PAGES.map((p) => (p * PAGE_SIZE) / 1024), atomicTimesliceMs: XE_ATOMIC_SVM_TIMESLICE_MS_DEFAULT, vramPages: 64 } as const;

/** The options, checked: a bad one is an Error naming it. */
function checkedOptions(o: GpusvmOptions) {
  const notifierSizeMiB = o.notifierSizeMiB ?? GPUSVM_DEFAULTS.notifierSizeMiB;
  const chunkSizesKiB = o.chunkSizesKiB ?? [...GPUSVM_DEFAULTS.chunkSizesKiB];
  const atomicTimesliceMs = o.atomicTimesliceMs ?? GPUSVM_DEFAULTS.atomicTimesliceMs;
  const vramPages = o.vramPages ?? GPUSVM_DEFAULTS.vramPages;
  if (!Number.isInteger(notifierSizeMiB) || notifierSizeMiB < 2) throw new Error(`gpusvm: notifierSizeMiB must be an integer >= 2, got ${JSON.stringify(notifierSizeMiB)}`);
  if (!Array.isArray(chunkSizesKiB) || chunkSizesKiB.length === 0 || chunkSizesKiB[chunkSizesKiB.length - 1] !== 4) throw new Error(`gpusvm: chunkSizesKiB must end with 4 (a page), got ${JSON.stringify(chunkSizesKiB)}`);
  if (!(atomicTimesliceMs >= 0)) throw new Error(`gpusvm: atomicTimesliceMs must be >= 0, got ${JSON.stringify(atomicTimesliceMs)}`);
  if (!Number.isInteger(vramPages) || vramPages < 0) throw new Error(`gpusvm: vramPages must be an integer >= 0, got ${JSON.stringify(vramPages)}`);
  return { notifierPages: (notifierSizeMiB * 1024 * 1024) / PAGE_SIZE, chunkPages: chunkSizesKiB.map((k) => (k * 1024) / PAGE_SIZE), timesliceNs: atomicTimesliceMs * 1e6, vramPages };
}

/** One GPU page fault, as the GuC hands it to the pf worker. */
interface XeFault {
  job: Job;
  bo: Bo | undefined;
  pid: Pid;
  vpn: number;
  write: boolean;
  atomic: boolean;
  raisedAt: number;
  resolve: (replay: boolean) => void;
}

/** A page of the range's pages is one of our device-private pages that the CPU has read-only. */
function hasReadOnlyDevicePage(r: DrmGpusvmRange): boolean {
  for (let i = 0; i < r.pfnFlags.length; i++) if (r.pfnFlags[i] & SVMSIM_PFN_DEVICE_PRIVATE && !(r.pfnFlags[i] & HMM_PFN_WRITE)) return true;
  return false;
}

export function createGpusvmPolicy(host: GpuHost, opts: GpusvmOptions): Policy {
  return new GpusvmPolicy(host, opts, checkedOptions(opts));
}

class GpusvmPolicy implements Policy {
  readonly name: string;
  /** xe on a discrete GPU: atomics need VRAM (xe_vma_need_vram_for_atomic). Without VRAM (integrated) they work on system memory. */
  get atomicNeedsVram(): boolean {
    return this.dgfx;
  }
  private readonly closing = new WeakSet<Bo>();
  private readonly vram;
  private readonly gpusvm: DrmGpusvm;
  private readonly pagemap: DrmPagemap;
  private readonly walks: GpusvmWalks;
  private readonly gc: XeSvmGarbageCollector;
  /** vm->lock: the pf worker and the collector hold it for write. */
  private readonly vmLock = new Mutex('xe vm->lock');
  private readonly queue: XeFault[] = [];
  private workerBusy = false;
  /** Per BO, faults raised and not yet answered (gpu_bo_free waits for them). */
  private readonly undecided = new Map<Bo, number>();
  private readonly drainWaiters = new Map<Bo, (() => void)[]>();
  private readonly s = {
    deviceFaults: 0, deviceFaultsResolved: 0, deviceFaultsCancelled: 0,
    /** xe_svm_range_is_valid at the fault: another fault had bound the range. */
    validFaults: 0,
    /** Faults that went back to `retry` (migration failed, get_pages -EOPNOTSUPP/-EFAULT/-EPERM, bind -EAGAIN). */
    faultRetries: 0,
    /** xe_vm_range_rebind → -EAGAIN: drm_gpusvm_range_pages_valid false under the notifier lock. */
    bindRetries: 0,
    /** unsafe-gpusvm: binds committed although drm_gpusvm_range_pages_valid said the pages were invalidated. */
    pagesValidSkipped: 0,
    /** Atomic faults on memory that cannot go to VRAM (devmem_only, !migrate_devmem): -EACCES. */
    devmemOnlyDenied: 0,
    /** xe_svm_alloc_vram calls (the range's first fault, or a devmem_only one, on a range not in VRAM). */
    vramAllocs: 0,
    rangesBound: 0, ptesWritten: 0,
    invalidationsZapped: 0, ptesZapped: 0, ownMigrateInvalidations: 0,
    /** CPU faults on our VRAM pages served (migrate_to_ram after any time slice). */
    migrateToRamRangeInvalidations: 0,
    /**
     * Write faults whose get_pages found one of our device-private pages read-only (migrated from a
     * read-only PTE; mprotect back to RW leaves the device-private entry read-only): hmm_range_fault
     * hands it back without HMM_PFN_WRITE even under REQ_WRITE, and the GPU entry follows the HMM
     * flags here, so the range is faulted home first (drm_gpusvm_range_evict) and the fault retries
     * on system pages that REQ_WRITE makes writable. Without this the GPU's write refaults forever.
     */
    readOnlyDevmemEvictions: 0,
    /** A "valid" range whose faulting page had lost its entry to svm-vram's page-at-a-time move (see the header). */
    validRangesMissingEntry: 0,
    faultsOfClosingBos: 0, freeDrainWaits: 0,
    faultLatencyNs: [] as number[],
  };
  private readonly o: ReturnType<typeof checkedOptions>;
  private readonly unsafe: boolean;
  private readonly retriesMax: number;

  constructor(
    private readonly host: GpuHost,
    opts: GpusvmOptions,
    o: ReturnType<typeof checkedOptions>,
  ) {
    this.o = o;
    this.unsafe = opts.unsafe;
    this.retriesMax = Math.max(1, opts.maxBusyRetries);
    this.name = opts.unsafe ? 'unsafe-gpusvm' : 'gpusvm';
    this.gpusvm = new DrmGpusvm(o.notifierPages, o.chunkPages);
    // No access-driven migration: xe migrates on faults (and madvise prefetch, not modelled).
    this.vram = createSvmVram(host, { vramPages: o.vramPages, hotThreshold: Infinity, window: 1, closing: this.closing, onVramPageZap: (pid, vpn) => this.invalidateRangesAt(pid, vpn) });
    this.pagemap = new DrmPagemap(host, this.vram);
    this.walks = new GpusvmWalks(host, this.pagemap, this.retriesMax);
    this.gc = new XeSvmGarbageCollector(host, this.gpusvm, this.vmLock);
  }

  /** IS_DGFX with CONFIG_DRM_XE_PAGEMAP: there is VRAM to migrate to. */
  private get dgfx(): boolean {
    return this.vram.enabled;
  }

  createBo(bo: Bo, done: (ret: number) => void): void {
    // The BO stands for xe's CPU-address-mirror VMA (DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR): the GPU
    // VA range whose faults drm_gpusvm serves; its notifier is the BO's (see the header).
    registerUserptr(this.host, bo, done);
  }

  submit(job: Job, done: (o: SubmitOutcome) => void): void {
    this.host.pushJob(job); // long-running fault-mode VM: nothing bound at exec
    done({ ret: 0, pagesWalked: 0, resubmissions: 0 });
  }

  access(job: Job, bo: Bo, page: number, pte: GpuPte, value: number): boolean {
    return this.vram.access(job, bo, page, pte, value);
  }

  // ---- the page-fault worker ----

  gpuFault(job: Job, pid: Pid, addr: number, write: boolean, resolve: (replay: boolean) => void): void {
    this.s.deviceFaults++;
    const bo = job.bos.find((b) => b.pid === pid && addr >= b.addr && addr < boEnd(b));
    const vpn = Math.floor(addr / PAGE_SIZE);
    const atomic = job.pattern.atomic === true;
    if (this.host.ctx.tracing) this.host.ctx.trace('gpu_retry_fault', { job: job.id, pid, addr: vpn * PAGE_SIZE, write, atomic });
    if (bo) this.undecided.set(bo, (this.undecided.get(bo) ?? 0) + 1);
    this.queue.push({ job, bo, pid, vpn, write: write || atomic, atomic, raisedAt: this.host.ctx.now(), resolve });
    this.kick();
  }

  /** The pf worker: one fault at a time, faultInterruptNs after it was raised (G2H interrupt, work item). */
  private kick(): void {
    if (this.workerBusy || this.queue.length === 0) return;
    this.workerBusy = true;
    const delay = Math.max(0, this.queue[0].raisedAt + this.host.costs.faultInterruptNs - this.host.ctx.now());
    this.host.sleep(delay, () => this.next());
  }

  private next(): void {
    const f = this.queue.shift();
    if (!f) {
      this.workerBusy = false;
      return;
    }
    this.vmLock.lock(() =>
      this.handlePagefault(f, (ret) => {
        this.vmLock.unlock();
        const ok = ret === 0 && f.job.endedAt < 0;
        if (ok) this.s.deviceFaultsResolved++;
        else this.s.deviceFaultsCancelled++;
        if (ret < 0 && this.host.ctx.tracing) this.host.ctx.trace('gpusvm_fault_failed', { pid: f.pid, addr: f.vpn * PAGE_SIZE, ret });
        // The reply to the GuC (send_pagefault_reply): the access retries, or the engine gets a CAT error.
        this.host.sleep(this.host.costs.replayNs, () => {
          this.s.faultLatencyNs.push(this.host.ctx.now() - f.raisedAt);
          this.decided(f);
          f.resolve(ok);
          this.next();
        });
      }),
    );
  }

  private decided(f: XeFault): void {
    if (!f.bo) return;
    const left = this.undecided.get(f.bo)! - 1;
    if (left < 0) throw new Error(`gpusvm: BO ${f.bo.handle} has more faults decided than raised`);
    if (left > 0) return void this.undecided.set(f.bo, left);
    this.undecided.delete(f.bo);
    const w = this.drainWaiters.get(f.bo);
    this.drainWaiters.delete(f.bo);
    for (const then of w ?? []) then();
  }

  /** xe_svm_handle_pagefault → __xe_svm_handle_pagefault. done(0) or done(-errno). Holds vm->lock. */
  private handlePagefault(f: XeFault, done: (ret: number) => void): void {
    const bo = f.bo;
    if (!bo || !bo.notifier) return done(EFAULT);
    if (f.job.endedAt >= 0) return done(EFAULT); // its job is gone: nothing to map for it
    if (this.closing.has(bo)) {
      this.s.faultsOfClosingBos++;
      return done(EFAULT);
    }
    // xe_gt_pagefault: a write to a read-only GPU VMA is an access violation.
    if (bo.readonly && f.write) return done(EPERM);
    const n = bo.notifier;
    const need_vram = f.atomic && this.dgfx; // xe_vma_need_vram_for_atomic, default atomic attribute
    const ctx: DrmGpusvmCtx = {
      read_only: bo.readonly,
      devmem_possible: this.dgfx,
      check_pages_threshold: this.dgfx ? XE_CHECK_PAGES_THRESHOLD_PAGES : 0,
      devmem_only: need_vram,
      timesliceNs: need_vram ? this.o.timesliceNs : 0,
    };
    let migrateTryCount = ctx.devmem_only ? 3 : 1;
    let tries = 0;
    const retry = (): void => {
      if (++tries > this.retriesMax) return done(EBUSY);
      if (tries > 1) this.s.faultRetries++;
      if (this.closing.has(bo) || bo.notifier !== n) {
        this.s.faultsOfClosingBos++;
        return done(EFAULT);
      }
      this.gc.run(); // "Always process UNMAPs first so view SVM ranges is current"
      this.findOrInsert(f, bo, n, ctx, (ret, r) => {
        if (ret < 0 || !r) return done(ret);
        if (ctx.devmem_only && !r.flags.migrate_devmem) {
          this.s.devmemOnlyDenied++;
          return done(EACCES);
        }
        if (this.isValid(r, f, ctx.devmem_only)) {
          this.s.validFaults++;
          return done(0);
        }
        const getPages = (): void => this.walks.getPages(r, n, ctx, (gret) => {
          const again = (): void => {
            ctx.timesliceNs *= 2; // "Double timeslice if we have to retry"
            if (migrateTryCount > 0 || !ctx.devmem_only) return retry();
            done(gret);
          };
          if (gret === EOPNOTSUPP) return this.walks.evict(r, n, () => again()); // xe_svm_range_get_pages
          if (gret === EFAULT || gret === EPERM) return again();
          if (gret < 0) return done(gret);
          if (f.write && hasReadOnlyDevicePage(r)) {
            // See readOnlyDevmemEvictions: bind it and the GPU's write faults on it forever.
            this.s.readOnlyDevmemEvictions++;
            return this.walks.evict(r, n, () => (migrateTryCount > 0 || !ctx.devmem_only ? retry() : done(EFAULT)));
          }
          this.bind(bo, r, n, (bret) => {
            if (bret === EAGAIN) {
              ctx.timesliceNs *= 2;
              return retry();
            }
            done(bret);
          });
        });
        // preferred location: DRM_XE_PREFERRED_LOC_DEFAULT_DEVICE, i.e. this GPU's VRAM on a dGPU.
        if (!(--migrateTryCount >= 0 && this.needsMigrateToVram(r))) return getPages();
        this.s.vramAllocs++;
        this.pagemap.migrateToDevmem(bo, r.start, r.end, ctx.timesliceNs, (mret) => {
          ctx.timesliceNs *= 2;
          if (mret < 0) {
            if (migrateTryCount > 0 || !ctx.devmem_only) return retry();
            return done(mret);
          }
          getPages();
        });
      });
    };
    retry();
  }

  /** xe_svm_range_needs_migrate_to_vram (the preferred region is VRAM whenever there is VRAM). */
  private needsMigrateToVram(r: DrmGpusvmRange): boolean {
    if (!r.flags.migrate_devmem || !this.dgfx) return false;
    // xe_svm_range_in_vram: advisory, from the pages' flags.
    return !r.flags.has_devmem_pages;
  }

  /** xe_svm_range_is_valid: a binding the notifier has not zapped (and in VRAM for devmem_only). */
  private isValid(r: DrmGpusvmRange, f: XeFault, devmem_only: boolean): boolean {
    if (!r.tile_present || r.tile_invalidated || (devmem_only && !r.flags.has_devmem_pages)) return false;
    const pte = this.host.vm.lookup(f.pid, f.vpn * PAGE_SIZE);
    if (pte && (!f.write || pte.writable) && (!f.atomic || pte.vram)) return true;
    // svm-vram.ts moved one page of the range (migrate_to_ram, eviction) and zapped its entry alone,
    // where the kernel invalidates the range: count the range as invalidated.
    this.s.validRangesMissingEntry++;
    r.tile_invalidated = true;
    drm_gpusvm_range_unmap_pages(r);
    return false;
  }

  /**
   * drm_gpusvm_range_find_or_insert under mmap_read_lock. then(0, range) or then(-errno).
   * vm->lock is held, so no other fault inserts meanwhile.
   */
  private findOrInsert(f: XeFault, bo: Bo, n: UserptrNotifier, ctx: DrmGpusvmCtx, then: (ret: number, r?: DrmGpusvmRange) => void): void {
    const host = this.host;
    withMmapReadLock(host, f.pid, (ret) => then(ret), (unlock) => {
      const out = (ret: number, r?: DrmGpusvmRange): void => unlock(() => then(ret, r));
      host.call({ type: 'vma_lookup', pid: f.pid, addr: f.vpn * PAGE_SIZE }, (v) => {
        if (retOf(v) < 0) return out(ENOENT);
        const vma = v as VmaLookupResult;
        if (!ctx.read_only && !(vma.prot & PROT_WRITE)) return out(EPERM);
        const existingNotifier = this.gpusvm.notifierFind(f.pid, f.vpn);
        const found = existingNotifier && this.gpusvm.rangeFind(existingNotifier, f.vpn, f.vpn + 1);
        if (found) return out(0, found);
        // "Short-circuiting migration based on migrate_vma_* current limitations": anonymous only.
        const migrate_devmem = ctx.devmem_possible && !vma.file;
        const np = this.gpusvm.notifierPages;
        const window: DrmGpusvmNotifier = existingNotifier ?? { pid: f.pid, start: f.vpn - (f.vpn % np), end: f.vpn - (f.vpn % np) + np, ranges: [] };
        const first = boFirstVpn(bo);
        const bounds = { vmaStart: vma.start / PAGE_SIZE, vmaEnd: vma.end / PAGE_SIZE, gpuvaStart: first, gpuvaEnd: first + bo.pages };
        this.gpusvm.chunkSize(window, f.vpn, bounds, ctx.check_pages_threshold, (s, e, cb) => this.walks.checkPages(f.pid, n, s, e, cb), (pages) => {
          if (pages < 0) return out(EINVAL);
          const notifier = this.gpusvm.notifierFind(f.pid, f.vpn) ?? this.gpusvm.notifierAlloc(f.pid, f.vpn);
          const r = this.gpusvm.rangeInsert(notifier, f.vpn, pages, migrate_devmem);
          if (host.ctx.tracing) host.ctx.trace('gpusvm_range_insert', { pid: f.pid, start: r.start * PAGE_SIZE, end: r.end * PAGE_SIZE, migrate_devmem });
          out(0, r);
        });
      });
    });
  }

  /**
   * xe_vm_range_rebind: prepare the page-table update, then under the notifier lock
   * xe_pt_svm_pre_commit checks drm_gpusvm_range_pages_valid and commits, or -EAGAIN.
   */
  private bind(bo: Bo, r: DrmGpusvmRange, n: UserptrNotifier, done: (ret: number) => void): void {
    const host = this.host;
    const npages = r.end - r.start;
    host.sleep(npages * host.costs.ptePerPageNs, () => {
      const lock = host.notifierLock;
      lock.lock(() => {
        if (r.removed || r.flags.unmapped || this.closing.has(bo) || bo.notifier !== n) {
          lock.unlock();
          return done(EAGAIN);
        }
        if (!drm_gpusvm_range_pages_valid(r)) {
          if (!this.unsafe) {
            lock.unlock();
            this.s.bindRetries++;
            if (host.ctx.tracing) host.ctx.trace('gpusvm_bind_retry', { pid: r.pid, start: r.start * PAGE_SIZE, end: r.end * PAGE_SIZE });
            return done(EAGAIN);
          }
          this.s.pagesValidSkipped++; // the bug: commit pfns an acked invalidation has unmapped
        }
        let written = 0;
        for (let i = 0; i < npages; i++) {
          const fl = r.pfnFlags[i];
          const pte: GpuPte = { pfn: r.pfns[i], writable: (fl & 2) !== 0 && !bo.readonly, tr: { via: 'mirror', sub: n.sub, seq: r.notifier_seq } };
          if (fl & 0x80) pte.vram = true; // SVMSIM_PFN_DEVICE_PRIVATE
          if (host.vm.set(r.pid, r.start + i, pte)) written++;
        }
        r.tile_present = true;
        r.tile_invalidated = false;
        this.s.rangesBound++;
        this.s.ptesWritten += written;
        lock.unlock();
        done(0);
      });
    });
  }

  // ---- invalidation ----

  invalidate(env: Envelope<Message>, m: Invalidate, bo: SubscribedBo): void {
    const ack = (ok: boolean) => this.host.reply(env, { type: 'invalidate_ack', sub: m.sub, ok });
    if (!m.blockable) {
      // drm_gpusvm_notifier_invalidate: !mmu_notifier_range_blockable → false.
      this.host.stats.invalidationsRefused++;
      return ack(false);
    }
    const own = m.event === 'MMU_NOTIFY_MIGRATE' && m.owner === this.host.id;
    if (own) this.s.ownMigrateInvalidations++;
    const t0 = this.host.ctx.now();
    const lock = this.host.notifierLock;
    lock.lock(() => {
      mmu_interval_set_seq(this.host.ctx, env.from, bo.notifier, m.cur_seq);
      bo.notifier.known = true;
      const start = Math.floor(Math.max(m.start, bo.addr) / PAGE_SIZE);
      const end = Math.ceil(Math.min(m.end, boEnd(bo)) / PAGE_SIZE);
      const zapped = start < end ? this.xeSvmInvalidate(bo.pid, start, end, m.event === 'MMU_NOTIFY_UNMAP', own) : 0;
      this.host.flushTlb(zapped, () => {
        lock.unlock();
        this.host.stats.invalidateWaitNs.push(this.host.ctx.now() - t0);
        if (this.host.ctx.tracing) this.host.ctx.trace('gpu_invalidate_done', { sub: m.sub, handle: bo.handle, zapped, own });
        ack(true);
      });
    });
  }

  /** xe_svm_invalidate over [start, end) pages, the notifier lock held. Returns the entries zapped. */
  private xeSvmInvalidate(pid: Pid, start: number, end: number, unmap: boolean, own: boolean): number {
    const ranges = this.gpusvm.rangesOf(pid, start, end);
    const kept = new Set<DrmGpusvmRange>();
    let zapped = 0;
    for (const r of ranges) {
      // xe_svm_range_notifier_event_begin: skip if already unmapped or never bound; else zap the
      // whole range (the invalidation widened to its bounds).
      if (r.flags.unmapped || !r.tile_present) continue;
      // Our own MIGRATE of pages still inside an atomic time slice: the CPU fault that mm began
      // with it will be refused (gpusvm-pagemap.ts), and the kernel refuses before invalidating
      // anything, so the range stays bound. Any other invalidation zaps it.
      if (own && !unmap && this.inTimeslice(pid, start, end)) {
        kept.add(r);
        continue;
      }
      zapped += this.zapRange(r);
      r.tile_invalidated = true;
    }
    for (const r of ranges) {
      // xe_svm_range_notifier_event_end: unmap the pages, and queue unmapped ranges to the collector.
      if (!kept.has(r)) drm_gpusvm_range_unmap_pages(r);
      if (unmap) {
        drm_gpusvm_range_set_unmapped(r, start, end);
        this.gc.add(r);
      }
    }
    if (zapped > 0) {
      this.s.invalidationsZapped++;
      this.s.ptesZapped += zapped;
    }
    return zapped;
  }

  /** Clear the range's GPU entries (xe_pt_zap_ptes_range). Returns entries cleared. */
  private zapRange(r: DrmGpusvmRange): number {
    return this.host.vm.clear(r.pid, r.start * PAGE_SIZE, r.end * PAGE_SIZE);
  }

  /** Every page of [start, end) is ours in VRAM, from an allocation whose time slice has not expired. */
  private inTimeslice(pid: Pid, start: number, end: number): boolean {
    const now = this.host.ctx.now();
    for (let v = start; v < end; v++) {
      const a = this.pagemap.allocationOf(pid, v);
      if (!a || a.timeslice_expiration <= now) return false;
    }
    return true;
  }

  /**
   * A VRAM page of (pid, vpn) leaves VRAM (svm-vram.ts, the notifier lock held): the kernel moves
   * and invalidates the whole allocation, so the range holding the page is zapped and unmapped whole.
   */
  private invalidateRangesAt(pid: Pid, vpn: number): number {
    let zapped = 0;
    for (const r of this.gpusvm.rangesOf(pid, vpn, vpn + 1)) {
      zapped += this.zapRange(r);
      if (r.tile_present) r.tile_invalidated = true;
      drm_gpusvm_range_unmap_pages(r);
    }
    this.pagemap.forgetPage(pid, vpn);
    return zapped;
  }

  // ---- CPU faults on our VRAM, teardown ----

  receive(env: Envelope<Message>, m: Message): boolean {
    switch (m.type) {
      case 'migrate_to_ram': {
        const mr = m as unknown as MigrateToRam;
        const vpn = Math.floor(mr.addr / PAGE_SIZE);
        this.pagemap.waitTimeslice(mr.pid, vpn, () => this.migrateToRam(env, mr));
        return true;
      }
      case 'device_page_free': {
        this.vram.pageFree(m as unknown as DevicePageFree);
        return true;
      }
      default:
        return false;
    }
  }

  /**
   * After the time slice: the page goes home (svm-vram.ts), its range invalidated whole under the
   * notifier lock there (invalidateRangesAt), as the kernel's migrate_vma_setup of the allocation would.
   */
  private migrateToRam(env: Envelope<Message>, m: MigrateToRam): void {
    this.s.migrateToRamRangeInvalidations++;
    this.vram.migrateToRam(env, m);
  }

  freeBo(bo: Bo, done: () => void): void {
    this.closing.add(bo);
    const teardown = (): void =>
      this.vmLock.lock(() =>
        this.vram.lockMigrate((unlock) => {
          // xe_vm_close → drm_gpusvm_fini for the mirror VMA's part: every range of the BO goes.
          const first = boFirstVpn(bo);
          for (const r of this.gpusvm.rangesOf(bo.pid, first, first + bo.pages)) if (!r.removed) this.gpusvm.rangeRemove(r);
          this.pagemap.forget(bo.pid, first, first + bo.pages);
          unregisterUserptr(this.host, bo, () => {
            unlock();
            this.vmLock.unlock();
            done();
          });
        }),
      );
    if (!this.undecided.has(bo)) return teardown();
    this.s.freeDrainWaits++;
    const w = this.drainWaiters.get(bo);
    if (w) w.push(teardown);
    else this.drainWaiters.set(bo, [teardown]);
  }

  devmemRead(devPfns: number[]): (number | null)[] {
    return this.vram.devmemRead(devPfns);
  }

  vramPagesInUse(): number {
    return this.vram.pagesInUse();
  }

  summary(): Record<string, unknown> {
    return {
      ...this.s,
      ...this.gpusvm.stats,
      rangesByChunk: { ...this.gpusvm.stats.rangesByChunk },
      svmRanges: this.gpusvm.rangeCount(),
      svmNotifiers: this.gpusvm.notifierCount(),
      ...this.gc.stats,
      gcPending: this.gc.pending(),
      ...this.walks.stats,
      ...this.pagemap.stats,
      ...this.vram.summary(),
      faultLatencyNs: undefined,
      faultLatencyP50Ns: percentile(this.s.faultLatencyNs, 50),
      faultLatencyP99Ns: percentile(this.s.faultLatencyNs, 99),
      faultLatencyMaxNs: maxOf(this.s.faultLatencyNs),
      faultsPending: this.queue.length,
    };
  }
}
