// Policy `svm-fault` (and `unsafe-svm`): the GPU mirrors the process with HMM and retry faults, as
// amdgpu with XNACK on (drivers/gpu/drm/amd/amdkfd/kfd_svm.c, kfd_migrate.c; research/drivers.md
// §2b, §2c) and nouveau (drivers/gpu/drm/nouveau/nouveau_svm.c, nouveau_dmem.c; §3). Followed:
// nouveau_svm.c of v6.6 for the fault buffer and the per-fault loop, kfd_svm.c / kfd_migrate.c of
// v6.6–v6.8 for VRAM and migrate-on-fault. This file wires the policy's hooks to its two parts:
//   svm-fault-handler.ts  the fault buffer, the batch handler, the per-fault hmm_range_fault loop
//   svm-vram.ts           VRAM (device-private pages): migrations in and out, migrate_to_ram, page_free
//
// Kernel functions each step models:
//   create      mmu_interval_notifier_insert over the BO (kfd: one notifier per svm_range). Nothing
//               bound, nothing walked.
//   submit      nothing to validate: the job is pushed at once (pagesWalked 0).
//   GPU fault   into the fault buffer, handled in batches (svm-fault-handler.ts). `faultPermission`
//               chooses whose write permission a fault asks hmm_range_fault for: the GPU access's
//               ('access', nouveau, the default) or the VMA's ('vma', kfd: every fault in a writable
//               VMA is a write fault, so GPU reads break COW / KSM sharing and dirty file pages).
//   access      a GPU access through a VRAM entry stays in the GPU; accesses make pages hot
//               (svm-vram.ts).
//   invalidate  the BO's interval notifier: lock; mmu_interval_set_seq; zap the overlap from GPUVM
//               (nouveau_svmm_invalidate → PFNCLR; kfd: svm_range_cpu_invalidate_pagetables →
//               svm_range_unmap_from_gpus); TLB flush if anything was zapped; unlock; ack.
//               Non-blockable: trylock (held: return false), then the same zap. That is
//               lib/test_hmm.c's dmirror_interval_invalidate, which the model follows here; neither
//               GPU driver does it: nouveau zaps from its mmu_notifier,
//               nouveau_svmm_invalidate_range_start, which returns -EAGAIN for every non-blockable
//               range (its interval notifier, nouveau_svm_range_invalidate, only trylocks and sets
//               the seq), and kfd's svm_range_cpu_invalidate_pagetables never checks blockable.
//               It does NOT wait for job fences (contrast userptr): a job that finds its entry gone
//               faults again. Accesses the GPU issued before the zap are `dma_access` messages
//               already on their way to mm, and messages between a pair of actors are FIFO, so mm
//               applies every one of them before it reads our ack: nothing is in flight after it.
//   own MIGRATE An MMU_NOTIFY_MIGRATE whose owner is this GPU (our migrate_vma_setup, or mm's
//               migrate_to_ram path) sets the seq under the lock like every invalidation (so a fault
//               loop in flight retries) but zaps only GPUVM entries of system pages: their frames
//               are about to be replaced, and a DMA through one after the ack would be lost. Entries
//               of our own VRAM pages stay: the migration itself moves them (migrate_to_ram and the
//               eviction zap them under the lock when they copy the page out). This is svmsim's own
//               choice, for safety, not a driver's: nouveau (nouveau_svmm_invalidate_range_start)
//               and dmirror (dmirror_interval_invalidate) return at once for their own MIGRATE, no
//               set_seq and no zap (the migration maps the new pfns itself); kfd zaps everything
//               whoever the owner (svm_range_evict → svm_range_unmap_from_gpus).
//   free        after the BO's fences. The BO is marked closing, then its retry faults are drained
//               (svm_range_drain_retry_fault, which kfd's svm_range_list_fini and
//               svm_range_unmap_from_cpu call before a range goes): gpu_bo_free waits until every
//               fault of the BO raised so far is decided. A job's fences signal when a VM fault kills
//               it, with faults of its other waves still in the buffer; those are cancelled without
//               touching mm, as is any fault of a closing BO, and a fault loop in flight maps nothing
//               once the BO is closing or its notifier changed (checked under the lock: a notifier
//               remove does not bump the sequence, so read_retry alone would pass). Then, under
//               migrate_mutex (the migration in flight ends first, and those queued for the BO are
//               dropped: svm_range_list_fini flushes its deferred work), GPUVM cleared,
//               mmu_interval_notifier_remove. Pages in VRAM stay there (they are the process's
//               memory; a CPU access brings them back).
//
// `unsafe-svm` skips mmu_interval_read_retry: it binds whatever hmm_range_fault returned even if an
// invalidation of those pages was acked meanwhile. The checker must flag stale_translation.
import {
  PAGE_SIZE, mmu_interval_set_seq, type DevicePageFree, type Invalidate, type InvalidateMultipass, type InvalidatePass, type MigrateToRam, type Pid,
} from '@svmsim/kernel-mm';
import { PassTable, takeSecondPass, type TlbInvalFence } from './multipass.js';
import type { Envelope, Message } from '@svmsim/runtime';
import { boEnd, type Bo } from './bo.js';
import type { GpuPte } from './gpuvm.js';
import type { Job } from './job.js';
import type { GpuHost, Policy, SubmitOutcome, SubscribedBo } from './policy.js';
import { createSvmFaultHandler, type FaultPermission, type SvmFlavour } from './svm-fault-handler.js';
import { createSvmVram } from './svm-vram.js';
import { registerUserptr, unregisterUserptr } from './user-pages.js';

export interface SvmFaultOptions {
  unsafe: boolean;
  /** Whose driver the policy follows: nouveau (`svm-fault`, the default) or KFD with XNACK on (`kfd-svm`: policy-kfd-svm.ts). */
  flavour?: SvmFlavour;
  /** The policy's name in reports. */
  name?: string;
  /** -EBUSY answers plus read_retry restarts of one fault before it is cancelled (nouveau: a 1 s budget). */
  maxBusyRetries: number;
  /** Pages mapped per fault, an aligned window clipped to the BO. Default 1 (nouveau v6.6). */
  faultWindowPages?: number;
  /** kfd: AMDGPU_SVM_RANGE_RETRY_FAULT_PENDING, ns (kfd-restore-pages.ts). */
  retryFaultPendingNs?: number;
  /** kfd read-begin-outside-loop: -EBUSY retried with a stale sequence for this long (svm-fault-handler.ts). */
  staleSeqRetryNs?: number;
  /** Device-private VRAM pages registered with memremap_pages at first use; 0 disables VRAM. Default 64. */
  vramPages?: number;
  /** GPU faults + accesses of a page after which it is migrated to VRAM. Default 4. */
  hotThreshold?: number;
  /**
   * Whether a fault asks for write access: 'access' (default, nouveau) for GPU writes only; 'vma'
   * (kfd) whenever the VMA is writable, so GPU reads break COW / KSM sharing and dirty file pages.
   */
  faultPermission?: FaultPermission;
}

export const SVM_DEFAULTS = { faultWindowPages: 1, vramPages: 64, hotThreshold: 4, faultPermission: 'access' } as const;
const FAULT_PERMISSIONS: readonly FaultPermission[] = ['access', 'vma'];

export function createSvmFaultPolicy(host: GpuHost, opts: SvmFaultOptions): Policy {
  const window = opts.faultWindowPages ?? SVM_DEFAULTS.faultWindowPages;
  const vramPages = opts.vramPages ?? SVM_DEFAULTS.vramPages;
  const hotThreshold = opts.hotThreshold ?? SVM_DEFAULTS.hotThreshold;
  if (!Number.isInteger(window) || window < 1) throw new Error(`svm-fault: faultWindowPages must be an integer >= 1, got ${window}`);
  if (!Number.isInteger(vramPages) || vramPages < 0) throw new Error(`svm-fault: vramPages must be an integer >= 0, got ${vramPages}`);
  if (!(hotThreshold >= 1)) throw new Error(`svm-fault: hotThreshold must be >= 1, got ${hotThreshold}`);
  const faultPermission = opts.faultPermission ?? SVM_DEFAULTS.faultPermission;
  if (!FAULT_PERMISSIONS.includes(faultPermission)) throw new Error(`svm-fault: faultPermission must be one of ${FAULT_PERMISSIONS.join(', ')}, got ${JSON.stringify(faultPermission)}`);
  const lock = host.notifierLock;
  const tracing = () => host.ctx.tracing;

  const s = {
    invalidationsZapped: 0,
    ptesZapped: 0,
    ownMigrateInvalidations: 0,
    /** Time second passes waited for their TLB invalidation (multipass.ts), ns. */
    secondPassWaitNs: 0,
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

  /** BOs in freeBo or freed: their faults are cancelled and their queued migrations to VRAM dropped. */
  const closing = new WeakSet<Bo>();
  const vram = createSvmVram(host, { vramPages, hotThreshold, window, closing, migrateToRamUnderMutex: opts.flavour === 'kfd' });
  const flavour = opts.flavour ?? 'nouveau';
  const kfd = flavour === 'kfd';
  const faults = createSvmFaultHandler(host, { flavour, unsafe: opts.unsafe, maxBusyRetries: opts.maxBusyRetries, window, hotThreshold, closing, faultPermission,
    ...(opts.retryFaultPendingNs !== undefined && { retryFaultPendingNs: opts.retryFaultPendingNs }),
    ...(opts.staleSeqRetryNs !== undefined && { staleSeqRetryNs: opts.staleSeqRetryNs }) }, vram);

  /** Second passes handed out (multipass.ts): the TLB invalidation each waits for. */
  const passes = new PassTable<{ sub: number; handle: number; fence: TlbInvalFence; firstNs: number; zapped: number }>();

  /**
   * Under the notifier lock, the part of every invalidate callback before the TLB flush:
   * mmu_interval_set_seq, zap the overlap from GPUVM, kfd's unmap_from_cpu bookkeeping. Returns
   * the entries zapped, and whether the invalidation is our own MIGRATE.
   */
  const stopUsing = (env: Envelope<Message>, m: Invalidate | InvalidateMultipass, bo: SubscribedBo): { zapped: number; own: boolean } => {
    const n = bo.notifier;
    const start = Math.max(m.start, bo.addr);
    const end = Math.min(m.end, boEnd(bo));
    // kfd zaps whoever migrates (svm_range_evict → svm_range_unmap_from_gpus); nouveau-style
    // keeps the entries of our own VRAM pages under our own MIGRATE (see the header).
    const own = !kfd && m.event === 'MMU_NOTIFY_MIGRATE' && m.owner === host.id;
    if (own) s.ownMigrateInvalidations++;
    mmu_interval_set_seq(host.ctx, env.from, n, m.cur_seq);
    n.known = true;
    const zapped = start < end ? zap(bo.pid, start, end, own) : 0;
    if (zapped > 0) {
      s.invalidationsZapped++;
      s.ptesZapped += zapped;
    }
    if (kfd && m.event === 'MMU_NOTIFY_UNMAP' && start < end) {
      // svm_range_unmap_from_cpu: unmap from the GPUs (above), split the ranges at the unmapped
      // part, put the pieces on the deferred list, and mark the faults now pending as stale.
      faults.unmapFromCpu(bo.pid, Math.floor(start / PAGE_SIZE), Math.ceil(end / PAGE_SIZE));
    }
    return { zapped, own };
  };

  /**
   * nouveau_svmm_invalidate_range_start (v6.6): a non-blockable range is refused (-EAGAIN),
   * whatever the lock: the OOM reaper skips the VMA and tries again.
   */
  const refuseNonblockable = (refuse: () => void): void => {
    host.stats.invalidationsRefused++;
    refuse();
  };

  return {
    name: opts.name ?? (opts.unsafe ? 'unsafe-svm' : 'svm-fault'),

    createBo(bo: Bo, done: (ret: number) => void): void {
      registerUserptr(host, bo, done);
    },

    submit(job: Job, done: (o: SubmitOutcome) => void): void {
      host.pushJob(job);
      done({ ret: 0, pagesWalked: 0, resubmissions: 0 });
    },

    gpuFault(job: Job, pid: Pid, addr: number, write: boolean, resolve: (replay: boolean) => void): void {
      const bo = job.bos.find((b) => b.pid === pid && addr >= b.addr && addr < boEnd(b));
      faults.raise(job, bo, pid, Math.floor(addr / PAGE_SIZE), write, resolve);
    },

    access(job: Job, bo: Bo, page: number, pte: GpuPte, value: number): boolean {
      return vram.access(job, bo, page, pte, value);
    },

    invalidate(env: Envelope<Message>, m: Invalidate, bo: SubscribedBo): void {
      const ack = (ok: boolean) => host.reply(env, { type: 'invalidate_ack', sub: m.sub, ok });
      const t0 = host.ctx.now();
      const run = (): void => {
        const { zapped, own } = stopUsing(env, m, bo);
        const finish = (): void => {
          lock.unlock();
          if (m.blockable) host.stats.invalidateWaitNs.push(host.ctx.now() - t0);
          if (tracing()) host.ctx.trace('gpu_invalidate_done', { sub: m.sub, handle: bo.handle, zapped, own });
          ack(true);
        };
        if (!kfd) return host.flushTlb(zapped, finish);
        // kfd XNACK on (svm_range_unmap_from_gpus): the page-table update (amdgpu_vm_update_range
        // writing zero PTEs), waiting for its fence, and kfd_flush_tlb(TLB_FLUSH_HEAVYWEIGHT), all
        // inside the notifier.
        if (zapped === 0) return finish();
        host.sleep(zapped * host.costs.ptePerPageNs + host.costs.tlbFlushHeavyweightNs, () => {
          host.vm.flushTlb();
          finish();
        });
      };
      if (m.blockable || kfd) return lock.lock(run); // svm_range_cpu_invalidate_pagetables never looks at blockable
      refuseNonblockable(() => ack(false));
    },

    // The two-pass RFC (multipass.ts), for the nouveau-style flavour only: kfd-svm's notifier has
    // no invalidate_multipass (amdgpu is not converted), so mm never calls these for it.
    ...(!kfd && {
      invalidateMultipass(env: Envelope<Message>, m: InvalidateMultipass, bo: SubscribedBo): void {
        const ack = (ok: boolean, pass: number | null) => host.reply(env, { type: 'invalidate_multipass_ack', sub: m.sub, ok, pass });
        const t0 = host.ctx.now();
        if (!m.blockable) return refuseNonblockable(() => ack(false, null));
        // xe_svm_invalidate_twopass: under the notifier lock, set_seq, zap, issue the TLB
        // invalidation with fences; unlock and hand the fences to the second pass.
        lock.lock(() => {
          const { zapped } = stopUsing(env, m, bo);
          host.issueTlbFlush(zapped, (fence) => {
            lock.unlock();
            const firstNs = host.ctx.now() - t0;
            if (fence === null) {
              // Nothing was mapped: nothing to wait for, no second pass (xe: tile_mask 0).
              host.stats.invalidateWaitNs.push(firstNs);
              if (tracing()) host.ctx.trace('gpu_invalidate_done', { sub: m.sub, handle: bo.handle, zapped, pass: null });
              return ack(true, null);
            }
            const pass = passes.add({ sub: m.sub, handle: bo.handle, fence, firstNs, zapped });
            if (tracing()) host.ctx.trace('gpu_invalidate_first_pass', { sub: m.sub, handle: bo.handle, zapped, pass });
            ack(true, pass);
          });
        });
      },

      invalidatePass(env: Envelope<Message>, m: InvalidatePass): void {
        const done = () => host.reply(env, { type: 'invalidate_pass_done', sub: m.sub, next: null });
        const p = takeSecondPass(host, passes, env, m);
        if (!p) return;
        const t0 = host.ctx.now();
        // xe_svm_invalidate_second: xe_gt_tlb_invalidation_fence_wait on each fence; then the
        // range's event_end (nothing left to do here: GPUVM was zapped in the first pass).
        p.fence.wait(() => {
          const waitedNs = host.ctx.now() - t0;
          s.secondPassWaitNs += waitedNs;
          // The callbacks' own time: the first pass plus this wait (not the other devices' passes in between).
          host.stats.invalidateWaitNs.push(p.firstNs + waitedNs);
          if (tracing()) host.ctx.trace('gpu_invalidate_done', { sub: m.sub, handle: p.handle, zapped: p.zapped, pass: m.pass, waitedNs });
          done();
        });
      },
    }),

    freeBo(bo: Bo, done: () => void): void {
      // The jobs are done, but not necessarily the faults they raised (a job a VM fault killed
      // leaves the faults of its other waves in the buffer) nor the migrations their accesses and
      // faults queued (a hot page migrates in the background, and each migration may first
      // evict). As kfd's svm_range_list_fini, drain the BO's retry faults first
      // (svm_range_drain_retry_fault): from here on the handler maps nothing for the BO, and once
      // its faults are decided nothing it started for them is in flight. Then tear down under
      // migrate_mutex, as svm_range_list_fini flushes its deferred work before it removes the
      // notifiers: the migration holding it (between migrate_vma_setup and finalize, its pages
      // under migration entries) ends first; those queued see `closing` and do nothing. So when
      // GEM_CLOSE returns, no GPUVM entry of the BO is left or on its way, and whatever reads the
      // memory next (the end-of-run dump) finds pages, not migration entries.
      closing.add(bo);
      faults.drain(bo, () => vram.lockMigrate((unlock) => {
        const finish = (): void => {
          unlock();
          done();
        };
        faults.forgetBo(bo);
        unregisterUserptr(host, bo, finish);
      }));
    },

    receive(env: Envelope<Message>, m: Message): boolean {
      switch (m.type) {
        case 'migrate_to_ram':
          vram.migrateToRam(env, m as unknown as MigrateToRam);
          return true;
        case 'device_page_free':
          vram.pageFree(m as unknown as DevicePageFree);
          return true;
        default:
          return false;
      }
    },

    devmemRead(devPfns: number[]): (number | null)[] {
      return vram.devmemRead(devPfns);
    },

    summary(): Record<string, unknown> {
      return { ...faults.summary(), ...s, ...vram.summary(), ...(host.multipass && { secondPasses: passes.issued, secondPassesPendingMax: passes.pendingMax }) };
    },
    vramPagesInUse: () => vram.pagesInUse(),
  };
}
