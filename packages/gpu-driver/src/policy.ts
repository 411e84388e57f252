// What a coherence policy implements, and what the GPU actor offers it.
import type { Ctx, Envelope, Message } from '@svmsim/runtime';
import type { Invalidate, InvalidateAck, InvalidateMultipass, InvalidateMultipassAck, InvalidatePass, InvalidatePassDone, MmRequest, Pid } from '@svmsim/kernel-mm';
import type { TlbInvalFence } from './multipass.js';
import type { GpuReply } from './gpu-protocol.js';
import type { Bo, UserptrNotifier } from './bo.js';
import type { GpuPte, GpuVm } from './gpuvm.js';
import type { Job } from './job.js';
import type { KernelEraDefaults } from './kernel-era.js';
import type { Mutex } from './lock.js';
import type { GpuQueues } from './queues.js';
import type { VramBos } from './vram-bos.js';

export type Reply = Message & { ret?: number };

/** A BO with its interval notifier. */
export type SubscribedBo = Bo & { notifier: UserptrNotifier };

/** Costs of the GPU and its driver, simulated ns. */
export interface GpuCosts {
  /** The driver's own work per page walked at submit (amdgpu_ttm_tt_get_user_pages: hmm pfn → page, compare with ttm->pages). mm charges its own walk too. */
  walkPerPageNs: number;
  /** Writing one GPUVM PTE (amdgpu_vm_update_range). */
  ptePerPageNs: number;
  /** userptr: revalidating one page of a BO whose pages changed, besides its PTE (TTM unbind, dma_unmap of the old sg entry, sg table and dma_map of the new page: ttm_bo_validate into GTT). */
  rebindPerPageNs: number;
  /** A TLB flush after clearing GPUVM entries (amdgpu_gmc_flush_gpu_tlb), from issuing it to its completion. */
  tlbFlushNs: number;
  /**
   * Of tlbFlushNs, the driver's part: issuing the invalidation (xe: the GuC CT request), after which
   * the hardware completes it on its own. A two-pass notifier (multipass.ts) spends only this in
   * its first pass and waits for the rest in its second. At most tlbFlushNs.
   */
  tlbInvalIssueNs: number;
  /** kfd-svm: kfd_flush_tlb(TLB_FLUSH_HEAVYWEIGHT) after unmapping from the GPU (every VMID's TLBs and the UTCL2). */
  tlbFlushHeavyweightNs: number;
  /** The rest of an AMDGPU_CS ioctl (parsing, scheduling). */
  submitNs: number;
  /** svm-fault: from a retry fault to its handler running (IH interrupt, the fault work item). */
  faultInterruptNs: number;
  /** svm-fault: the handler's own work per page it maps (fault decode, pfn → PTE), besides ptePerPageNs. */
  faultPerPageNs: number;
  /** svm-fault: one replay of a fault batch (GP100_VMM_VN_FAULT_REPLAY). */
  replayNs: number;
  /** svm-fault: copying one page between system memory and VRAM (SDMA). */
  migratePerPageNs: number;
}
/**
 * svmsim's figures (the `default` cost profile, cost-profiles.ts). None is a kernel constant and no
 * published measurement was found for these ones; each says why its order of magnitude is what it
 * is. Profiles replace some of them with cited figures.
 */
export const DEFAULT_GPU_COSTS: GpuCosts = {
  // No published figure; order-of-magnitude estimate because the driver's part of the walk is a pfn → page lookup and a compare per page: tens of ns of CPU work.
  walkPerPageNs: 20,
  // No published figure; estimate because amdgpu_vm_update_range writes 8-byte PTEs in batches (CPU or SDMA): ~10 ns per entry once batched.
  ptePerPageNs: 10,
  // No published figure; estimate because revalidating a page is a dma_unmap and a dma_map of one sg entry (an IOMMU update): tens of ns.
  rebindPerPageNs: 50,
  // No published figure; estimate because a legacy flush is one invalidate request to the VM hub and its ack over MMIO: about a µs.
  tlbFlushNs: 1_000,
  // No published figure; estimate because issuing is the driver's MMIO write of the invalidate request, a fifth of the flush;
  // the rest is the hub's walk, which runs on its own (multipass.ts).
  tlbInvalIssueNs: 200,
  // No published figure; estimate because a heavyweight flush covers every VMID and the UTCL2: taken as 10× the legacy flush.
  tlbFlushHeavyweightNs: 10_000,
  // No published figure; estimate because the rest of a CS ioctl is a syscall, chunk parsing and a scheduler push: a few µs.
  submitNs: 2_000,
  // No published figure for the interrupt alone; estimate because IH ring → interrupt → the fault work item is a few µs of CPU
  // scheduling. Published far-fault figures (GPGPU-Sim UVM Smart's 45 µs) cover the whole driver path: the uvm-pcie profile uses it.
  faultInterruptNs: 2_000,
  // No published figure; estimate because decoding a fault entry and building its PTE is a few hundred ns of driver work.
  faultPerPageNs: 200,
  // No published figure; estimate because a replay is one MMIO write and the GPU re-issuing its stalled accesses.
  replayNs: 500,
  // No published figure for an SDMA page copy with its setup; estimate because the transfer alone is 256 ns at PCIe 3.0 x16's
  // 16 GB/s (the uvm-pcie profile) and each copy adds a command submission.
  migratePerPageNs: 1_000,
};

export interface GpuStats {
  bosCreated: number;
  bosFreed: number;
  boCreateErrors: number;
  submissions: number;
  /** When the first submission arrived and the last job ended (ns; -1: none): the GPU's busy span. */
  firstSubmitAt: number;
  lastJobEndAt: number;
  /** -EAGAIN from amdgpu_cs_submit's read_retry: the ioctl restarted (libdrm's drmIoctl loop). */
  resubmissions: number;
  /** hmm_range_fault answered -EBUSY: read_begin again. */
  ebusyRetries: number;
  submitErrors: Record<string, number>;
  /** Pages walked by each successful submission (every attempt counted). */
  pagesWalkedPerSubmission: number[];
  /** Submit ioctl latency, ns, of each successful submission. */
  submitLatencyNs: number[];
  jobsDone: number;
  /** Jobs that took a GPU page fault. */
  jobErrors: number;
  gpuPageFaults: number;
  dmaWrites: number;
  dmaReads: number;
  /** Accesses to VRAM BOs (inside the GPU, never sent to mm). */
  localAccesses: number;
  invalidations: number;
  invalidationsByEvent: Record<string, number>;
  /** Pages of BOs under the invalidations received (each invalidation's overlap with its BO). */
  pagesInvalidated: number;
  /** Pages of the BOs created. */
  boPagesCreated: number;
  /** Of the jobs that ended: the largest (end - start) / duration (> 1: the job was stopped or stalled). */
  jobStretchMax: number;
  /** Page accesses of the jobs that ended, and their run times summed (start to end), ns: pages moved per second of GPU time. */
  jobAccessesTotal: number;
  jobRunNsTotal: number;
  /** Non-blockable invalidations answered false. */
  invalidationsRefused: number;
  /** Time each blockable invalidate callback spent before acking (lock + fences + TLB flush), ns. */
  invalidateWaitNs: number[];
  /** unsafe-userptr: acks sent while a job on the range was still running. */
  unsafeEarlyAcks: number;
  /** Unsafe policies: DMAs through a mirror translation whose page's invalidation was acked at a newer seq (the bug's act, what the checker catches). */
  unsafeBugPaths: number;
  pagesPinned: number;
  pagesUnpinned: number;
  warnings: number;
  /** userptr: BOs taken through TTM validation whole (at creation, VALIDATE, and at a CS that found any page changed). */
  bosRevalidated: number;
  /** userptr: pages of the BOs revalidated at CS (every page of each). */
  pagesRevalidated: number;
  /** Jobs whose fences signalled with an error, by errno name (ENODATA, ETIME, ECANCELED). */
  jobsLost: Record<string, number>;
}

export function newStats(): GpuStats {
  return {
    bosCreated: 0, bosFreed: 0, boCreateErrors: 0, submissions: 0, firstSubmitAt: -1, lastJobEndAt: -1, resubmissions: 0, ebusyRetries: 0, submitErrors: {},
    pagesWalkedPerSubmission: [], submitLatencyNs: [], jobsDone: 0, jobErrors: 0, gpuPageFaults: 0, dmaWrites: 0, dmaReads: 0, localAccesses: 0,
    invalidations: 0, invalidationsByEvent: {}, pagesInvalidated: 0, boPagesCreated: 0, jobStretchMax: 0, jobAccessesTotal: 0, jobRunNsTotal: 0, invalidationsRefused: 0, invalidateWaitNs: [], unsafeEarlyAcks: 0, unsafeBugPaths: 0,
    pagesPinned: 0, pagesUnpinned: 0, warnings: 0, bosRevalidated: 0, pagesRevalidated: 0, jobsLost: {},
  };
}

export interface GpuHost {
  readonly id: string;
  readonly mm: string;
  readonly ctx: Ctx<Message>;
  readonly vm: GpuVm;
  readonly costs: GpuCosts;
  readonly stats: GpuStats;
  /** adev->notifier_lock: device-wide. */
  readonly notifierLock: Mutex;
  /** Subscriptions → their BO. */
  readonly bySub: Map<number, Bo>;
  call(msg: MmRequest, then: (r: Reply) => void): void;
  /** Run `then` after ns of simulated time (at once, synchronously, when ns <= 0). */
  sleep(ns: number, then: () => void): void;
  /** After clearing `cleared` GPUVM entries: flush the TLB (amdgpu_gmc_flush_gpu_tlb, `tlbFlushNs`) if any were mapped, then `then`. */
  flushTlb(cleared: number, then: () => void): void;
  /**
   * The first half of flushTlb, for a two-pass notifier: issue the invalidation (`tlbInvalIssueNs`)
   * and `then(fence)`; the fence signals (and GPUVM's TLB is flushed) the rest of tlbFlushNs later.
   * Nothing cleared: `then(null)` at once.
   */
  issueTlbFlush(cleared: number, then: (fence: TlbInvalFence | null) => void): void;
  /** The device key `invalidateMultipass`: the driver's notifier ops have invalidate_multipass (mm uses it under notifierPasses 2). */
  readonly multipass: boolean;
  reply(env: Envelope<Message>, msg: GpuReply | InvalidateAck | InvalidateMultipassAck | InvalidatePassDone): void;
  /** Fire and forget to mm. */
  send(msg: MmRequest): void;
  warn(what: string, fields?: Record<string, unknown>): void;
  /** The gfx and compute queues: preempt/resume a process's queues (quiesce/resume). */
  readonly queues: GpuQueues;
  /** VRAM BOs (TTM placement): a KFD restore moves its process's BOs back. */
  readonly vramBos: VramBos;
  /** Add the job's fence to its BOs' reservations and queue it (drm_sched_entity_push_job). */
  pushJob(job: Job): void;
  /** The kernel era's behaviour (kernel-era.ts). */
  readonly era: KernelEraDefaults;
  /** The unsignalled jobs of pid's VM (what its root PD's reservation holds). */
  vmJobs(pid: Pid): Job[];
}

export interface SubmitOutcome {
  ret: number;
  pagesWalked: number;
  resubmissions: number;
}

export interface Policy {
  readonly name: string;
  /** Set the BO up (pin it, or subscribe to it). done(0) or done(-errno). */
  createBo(bo: Bo, done: (ret: number) => void): void;
  /** Validate the job's BOs and push it (host.pushJob) when its pages are current; done once pushed or failed. */
  submit(job: Job, done: (o: SubmitOutcome) => void): void;
  /**
   * The mmu_interval_notifier callback for one of the policy's BOs (the actor answers those of
   * subscriptions it does not know, with a warning). Policies that subscribe to nothing (pin) have none.
   */
  invalidate?(env: Envelope<Message>, m: Invalidate, bo: SubscribedBo): void;
  /**
   * The two-pass RFC's first pass (ops->invalidate_multipass; multipass.ts): start stopping the
   * range and answer invalidate_multipass_ack with a pass cookie (or null: all done already).
   * Policies the RFC converts have it; the device key `invalidateMultipass` subscribes with it.
   */
  invalidateMultipass?(env: Envelope<Message>, m: InvalidateMultipass, bo: SubscribedBo): void;
  /** The second pass of a cookie this policy handed out: wait, then invalidate_pass_done. */
  invalidatePass?(env: Envelope<Message>, m: InvalidatePass): void;
  /** Tear the BO down; its fences have signalled. */
  freeBo(bo: Bo, done: () => void): void;
  /**
   * A GPU page fault on an access of a running job (queues.ts). Policies whose GPU can retry faults
   * (svm-fault) implement it: the job stalls until resolve(true) replays the access, or
   * resolve(false) cancels it (a VM fault). Without it every GPU page fault is a VM fault.
   */
  gpuFault?(job: Job, pid: Pid, addr: number, write: boolean, resolve: (replay: boolean) => void): void;
  /** Messages of the policy's own (mm's migrate_to_ram and device_page_free for VRAM, its timers): true if handled. */
  receive?(env: Envelope<Message>, m: Message): boolean;
  /** The content of this GPU's VRAM pages (null for a pfn that is not one of them). Policies without VRAM: absent. */
  devmemRead?(devPfns: number[]): (number | null)[];
  /**
   * Before TTM moves a VRAM BO out (vram-bos.ts): wait on its reservation. Default (gfx): the
   * fences of the jobs using it. KFD (preempt): the process's eviction fence, i.e. evict the process.
   */
  evictionFence?(bo: Bo, then: () => void): void;
  /**
   * An atomic access through an entry that does not map this GPU's VRAM faults (xe on a discrete
   * GPU: system memory takes no device atomics by default, xe_vma_need_vram_for_atomic).
   */
  readonly atomicNeedsVram?: boolean;
  /** Figures of the policy's own, merged into the GPU's summary. */
  summary?(): Record<string, unknown>;
  /** VRAM pages holding process memory (svm-fault's device-private pages), for the trace's counters. */
  vramPagesInUse?(): number;
  /**
   * Every DMA access of a job, before it goes to mm (`value`: the word a write stores). true = the
   * policy served it itself (svm-fault: a VRAM page, which never goes through mm).
   */
  access?(job: Job, bo: Bo, page: number, pte: GpuPte, value: number): boolean;
}

/** The errno of a reply from mm: its `ret`, or EIO when mm never answered. */
export function retOf(r: Reply): number {
  return typeof r.ret === 'number' ? r.ret : -5;
}

/**
 * mmap_read_lock(pid) through mm around `body`, which ends with `unlock(then)`; `failed(ret)` instead
 * when the lock cannot be had (the process is gone: mmget_not_zero failing, for the driver).
 */
export function withMmapReadLock(host: GpuHost, pid: Pid, failed: (ret: number) => void, body: (unlock: (then: () => void) => void) => void): void {
  host.call({ type: 'mmap_read_lock', pid }, (l) => {
    const ret = retOf(l);
    if (ret < 0) return failed(ret);
    body((then) => host.call({ type: 'mmap_read_unlock', pid }, () => then()));
  });
}
