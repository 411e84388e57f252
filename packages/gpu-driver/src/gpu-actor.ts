// The GPU actor: one amdgpu device as seen by one or more processes. It owns the BOs (userptr BOs,
// and VRAM BOs placed by TTM: vram-bos.ts), GPUVM, the queues (gfx and compute rings: queues.ts)
// and their jobs and fences, and follows one coherence policy for the userptr BOs:
//   pin             pin_user_pages(FOLL_LONGTERM) for the BO's life (policy-pin.ts)
//   userptr         amdgpu gfx userptr: walk every BO at each submit, wait fences on invalidate (policy-userptr.ts)
//   preempt         KFD userptr: an invalidation stops the process's queues, a restore worker
//                   revalidates and resumes them; eviction fences for VRAM BOs (policy-preempt.ts)
//   svm-fault       HMM mirror with retry faults and VRAM, as nouveau: nothing at submit, faults
//                   handled in batches, zap + TLB flush on invalidate (policy-svm-fault.ts)
//   kfd-svm         KFD SVM ranges (XNACK on: one fault at a time, 2 MiB ranges, migrate on first
//                   fault; off: queue eviction and restore) (policy-kfd-svm.ts)
//   uvm             NVIDIA UVM's HMM mode: replayable fault batches per 2 MiB VA block, density
//                   prefetch, migrate to VRAM, thrashing throttling and pinning (policy-uvm.ts)
//   unsafe-userptr  userptr that acks invalidations without waiting for fences (caught by the checker)
//   unsafe-svm      svm-fault without mmu_interval_read_retry (caught by the checker)
//   gpusvm          the DRM GPU SVM layer as xe uses it: per-fault ranges of 2 MiB / 64 KiB / 4 KiB
//                   in 512 MiB notifiers, migration to VRAM through drm_pagemap, the atomic time
//                   slice, a garbage collector of unmapped ranges (policy-gpusvm.ts)
//   unsafe-uvm      uvm without mmu_interval_read_retry (caught by the checker)
//   unsafe-gpusvm   gpusvm binding without drm_gpusvm_range_pages_valid (caught by the checker)
//   report variants (one real report each, harness scenarios/reports/):
//     kfd-svm-read-begin-outside-loop   kfd-svm with read_begin outside amdgpu_hmm_range_get_pages' retry loop
//     unsafe-lock-not-pinned            memory "locked" for a DMA engine without a pin: invalidations ignored (caught by the checker)
//     uvm-thrashing-off                 uvm with uvm_perf_thrashing_enable=0
// Its VRAM BOs can be exported as dma-bufs to another device's driver (dma-buf-export.ts).
// The app talks to it with gpu-protocol.ts; it talks to mm only through kernel-mm's protocol.ts,
// to dma-buf importers with dma-buf-protocol.ts.
import { rejectBadMessage } from '@svmsim/runtime';
import { GPU_SHAPES } from './message-shapes.js';
import { Continuations, CounterSampler, type Actor, type ActorId, type Ctx, type Envelope, type Incoming, type Message } from '@svmsim/runtime';
import {
  AckedInvalidations, EINVAL, ENOENT, ERRNO_NAMES, EFAULT, PAGE_SIZE, type DmaAccess, type Invalidate, type InvalidateAck, type InvalidateMultipass,
  type InvalidateMultipassAck, type InvalidatePass, type InvalidatePassDone, type MmRequest,
} from '@svmsim/kernel-mm';
import { TlbInvalFence } from './multipass.js';
import { newBo, type Bo } from './bo.js';
import type { GpuBoCreate, GpuBoFree, GpuReply, GpuRequest, GpuSubmit, GpuWait } from './gpu-protocol.js';
import { GpuVm } from './gpuvm.js';
import { newFence, waitFences, type Job } from './job.js';
import { GpuQueues, type QueueHost } from './queues.js';
import { DEFAULT_VRAM_BOS, VramBos, type VramBoOptions } from './vram-bos.js';
import { DmaBufExporter } from './dma-buf-export.js';
import type { DmaBufReply, DmaBufRequest } from './dma-buf-protocol.js';
import { Mutex } from './lock.js';
import { maxOf, percentile } from './percentile.js';
import { createPinPolicy } from './policy-pin.js';
import { createUserptrPolicy } from './policy-userptr.js';
import { createPreemptPolicy, type PreemptOptions } from './policy-preempt.js';
import { createSvmFaultPolicy, type SvmFaultOptions } from './policy-svm-fault.js';
import { createKfdSvmPolicy } from './policy-kfd-svm.js';
import { createLockNotPinnedPolicy } from './policy-lock-not-pinned.js';
import { createKfdSvmReadBeginOutsideLoopPolicy } from './policy-kfd-svm-read-begin-outside-loop.js';
import { createUvmPolicy, type UvmOptions } from './policy-uvm.js';
import { createGpusvmPolicy, type GpusvmOptions } from './policy-gpusvm.js';
import { DEFAULT_KERNEL_ERA, KERNEL_ERA_DEFAULTS, KERNEL_ERAS, type KernelEra, type KernelEraDefaults, type LockupTimeoutMs } from './kernel-era.js';
import { DEFAULT_RECOVERY_COSTS, GpuRecovery, type RecoveryCosts } from './job-timeout.js';
import { GPU_ERRNO_NAMES } from './gpu-protocol.js';
import { DEFAULT_GPU_COST_PROFILE, GPU_COST_PROFILE_NAMES, profileOverrides, splitCostOverrides, type GpuCostParts } from './cost-profiles.js';
import { DEFAULT_GPU_COSTS, newStats, type GpuCosts, type GpuHost, type GpuStats, type Policy, type Reply, type SubscribedBo } from './policy.js';

export type GpuPolicyName = 'pin' | 'userptr' | 'preempt' | 'svm-fault' | 'kfd-svm' | 'uvm' | 'gpusvm' | 'unsafe-userptr' | 'unsafe-svm' | 'unsafe-uvm' | 'unsafe-gpusvm' | GpuReportVariant;
/**
 * Variants that reproduce one real report each (harness scenarios/reports/): a driver as a bug or a
 * module parameter left it. Not in any default comparison; a scenario's `compare:` names them.
 */
export type GpuReportVariant = 'kfd-svm-read-begin-outside-loop' | 'unsafe-lock-not-pinned' | 'uvm-thrashing-off';
export const GPU_REPORT_VARIANTS: readonly GpuReportVariant[] = ['kfd-svm-read-begin-outside-loop', 'unsafe-lock-not-pinned', 'uvm-thrashing-off'];
export const GPU_POLICIES: readonly GpuPolicyName[] = ['pin', 'userptr', 'preempt', 'svm-fault', 'kfd-svm', 'uvm', 'gpusvm', 'unsafe-userptr', 'unsafe-svm', 'unsafe-uvm', 'unsafe-gpusvm', ...GPU_REPORT_VARIANTS];

export interface GpuConfig {
  policy: GpuPolicyName;
  /** The mm actor. Default 'mm'. */
  mm?: string;
  /** The cost profile (cost-profiles.ts) under `costs`, `preempt`, `recovery` and `vramBos`: those keys win over it. Default `default`. */
  profile?: string;
  costs?: Partial<GpuCosts>;
  /** userptr: restarts of one submission before -EAGAIN reaches the app. Default 1000. */
  maxResubmits?: number;
  /** svm-fault: -EBUSY answers to one fault's hmm_range_fault before giving up. Default 1000. (userptr and preempt walks retry within the era's time budget: user-pages.ts.) */
  maxBusyRetries?: number;
  /** The kernel era (kernel-era.ts): its lockup timeouts, soft recovery, -EBUSY handling, notifier wait. Default latest. */
  kernel?: KernelEra;
  /** The lockup_timeout module parameter per ring type, ms (negative: infinite); absent ring types keep the era's default. */
  lockupTimeoutMs?: Partial<LockupTimeoutMs>;
  /** Costs of job timeouts and resets (job-timeout.ts). */
  recovery?: Partial<RecoveryCosts>;
  /** Waves a job runs as (queues.ts): how many of its accesses can be in flight, or stalled on a fault, at once. Default 16. */
  waves?: number;
  /** preempt: its timings (policy-preempt.ts). */
  preempt?: Partial<PreemptOptions>;
  /** kfd-svm: XNACK (retry faults) on, the default; off, invalidations evict the queues (policy-kfd-svm.ts). */
  xnack?: boolean;
  /** kfd-svm: svm_default_granularity (log2 pages) and the retry-fault-pending window (policy-kfd-svm.ts). */
  kfd?: { granularity?: number; retryFaultPendingNs?: number; hangRestoreFence?: number };
  /** svm-fault: its fault handling and VRAM (policy-svm-fault.ts); `vramPages` is also uvm's VRAM. */
  svm?: Partial<SvmFaultOptions>;
  /** uvm: its module parameters (policy-uvm.ts). */
  uvm?: Partial<Omit<UvmOptions, 'unsafe' | 'maxBusyRetries'>>;
  /** gpusvm: xe's svm_notifier_size, fault chunk sizes and atomic_svm_timeslice_ms (policy-gpusvm.ts); VRAM is `svm.vramPages`. */
  gpusvm?: Partial<Omit<GpusvmOptions, 'unsafe' | 'maxBusyRetries' | 'vramPages'>>;
  /** VRAM BOs: their budget and copy cost (vram-bos.ts). */
  vramBos?: Partial<VramBoOptions>;
  /**
   * CONFIG_DMABUF_MOVE_NOTIFY (a machine setting, off by default as in the kernel's Kconfig): off,
   * an exported BO is pinned while an importer maps it; on, it may be evicted after move_notify.
   */
  dmabufMoveNotify?: boolean;
  /**
   * The driver's notifier ops have invalidate_multipass (the two-pass RFC, multipass.ts): mm calls
   * it under `notifierPasses: 2`. Only the policies whose drivers the RFC converts have one:
   * svm-fault (xe_svm / drm_gpusvm) and userptr (xe's userptr). Default false.
   */
  invalidateMultipass?: boolean;
}

/** The policies with an invalidate_multipass op (their unsafe twins too). */
export const MULTIPASS_POLICIES: readonly GpuPolicyName[] = ['userptr', 'unsafe-userptr', 'svm-fault', 'unsafe-svm'];

/** Ended jobs whose status a WAIT_CS can still get (amdgpu keeps amdgpu_sched_jobs fences per context ring; more here). */
const FINISHED_JOBS_KEPT = 4096;
/** Restarts of one CS before -EAGAIN reaches the app (libdrm's drmIoctl loops for ever: a simulation bound). */
const RESUBMITS_MAX = 1000;
/** svm-fault: -EBUSY answers to one fault's hmm_range_fault before it fails. */
const BUSY_RETRIES_MAX = 1000;
/** Policies whose jobs go through the CS ioctl onto drm_sched kernel rings, which have job timeouts; the others run on KFD user queues, which have none. */
const DRM_SCHED_POLICIES: readonly GpuPolicyName[] = ['pin', 'userptr', 'unsafe-userptr'];

/** A job's waves by default: enough that faults come in batches, as thousands of GPU threads make them. */
const DEFAULT_WAVES = 16;

export function createGpu(config: unknown, id: ActorId): Actor<Message> {
  const c = (config ?? {}) as GpuConfig;
  if (!GPU_POLICIES.includes(c.policy)) throw new Error(`gpu config: policy must be one of ${GPU_POLICIES.join(', ')}, got ${JSON.stringify(c.policy)}`);
  if (c.profile !== undefined && !GPU_COST_PROFILE_NAMES.includes(c.profile)) throw new Error(`gpu config: profile must be one of ${GPU_COST_PROFILE_NAMES.join(', ')}, got ${JSON.stringify(c.profile)}`);
  if (c.kernel !== undefined && !KERNEL_ERAS.includes(c.kernel)) throw new Error(`gpu config: kernel must be one of ${KERNEL_ERAS.join(', ')}, got ${JSON.stringify(c.kernel)}`);
  if (c.invalidateMultipass && !MULTIPASS_POLICIES.includes(c.policy)) {
    throw new Error(`gpu config: invalidateMultipass: policy ${c.policy} has no two-pass notifier (only ${MULTIPASS_POLICIES.join(', ')})`);
  }
  return new Gpu(c, id);
}

const errName = (ret: number): string => ERRNO_NAMES[ret] ?? GPU_ERRNO_NAMES[ret] ?? String(ret);

class Gpu implements Actor<Message>, GpuHost {
  ctx!: Ctx<Message>;
  readonly mm: string;
  readonly costs: GpuCosts;
  readonly stats: GpuStats = newStats();
  readonly vm = new GpuVm();
  readonly notifierLock = new Mutex('gpu notifier_lock');
  readonly bySub = new Map<number, Bo>();
  readonly multipass: boolean;
  private readonly policy: Policy;
  private readonly bos = new Map<number, Bo>();
  private nextHandle = 1;
  /** Jobs queued or running, and the last FINISHED_JOBS_KEPT that ended (a WAIT_CS may still ask for them). */
  private readonly jobs = new Map<number, Job>();
  private readonly finished: number[] = [];
  private nextJob = 1;
  readonly queues: GpuQueues;
  readonly vramBos: VramBos;
  readonly kernel: KernelEra;
  readonly era: KernelEraDefaults;
  /** The lockup timeouts in force (ms, negative infinite), null under KFD user queues. */
  private readonly lockup: LockupTimeoutMs | null;
  private readonly recovery: GpuRecovery;
  private readonly dmabuf: DmaBufExporter;
  /** Requests to mm and timers in flight, with what to do when each completes. */
  private readonly waits = new Continuations<Reply>(() => this.ctx, 'gpu_timer');
  /** VRAM in use over time, for the trace (`gpu_counters`, pages). */
  private readonly counters = new CounterSampler('gpu_counters');
  /** Unsafe policies: the invalidations acked, to count the DMAs the checker must call stale (null when safe). */
  private readonly ackedInvalidations: AckedInvalidations | null;

  /** The cost profile this GPU's figures start from (cost-profiles.ts). */
  readonly profile: string;
  /** The profile's figures, split by the table each belongs to; the config's own keys win over them. */
  private readonly profiled: GpuCostParts;

  constructor(cfg: GpuConfig, readonly id: ActorId) {
    this.mm = cfg.mm ?? 'mm';
    this.profile = cfg.profile ?? DEFAULT_GPU_COST_PROFILE;
    this.profiled = splitCostOverrides(profileOverrides(this.profile));
    this.costs = { ...DEFAULT_GPU_COSTS, ...this.profiled.costs, ...cfg.costs };
    if (!(this.costs.tlbInvalIssueNs >= 0 && this.costs.tlbInvalIssueNs <= this.costs.tlbFlushNs)) {
      throw new Error(`gpu config: costs.tlbInvalIssueNs ${this.costs.tlbInvalIssueNs} must be from 0 to tlbFlushNs (${this.costs.tlbFlushNs})`);
    }
    this.multipass = cfg.invalidateMultipass === true;
    this.kernel = cfg.kernel ?? DEFAULT_KERNEL_ERA;
    this.era = KERNEL_ERA_DEFAULTS[this.kernel];
    this.policy = this.createPolicy(cfg);
    this.ackedInvalidations = cfg.policy.startsWith('unsafe-') ? new AckedInvalidations() : null;
    this.queues = new GpuQueues(this.queueHost(), cfg.waves ?? DEFAULT_WAVES);
    this.lockup = DRM_SCHED_POLICIES.includes(cfg.policy) ? { ...this.era.lockupTimeoutMs, ...cfg.lockupTimeoutMs } : null;
    this.recovery = new GpuRecovery(
      {
        queues: this.queues,
        timer: (ns, then) => this.waits.after(ns, then),
        cancelTimer: (t) => void this.waits.cancel(t),
        trace: (ev, fields) => this.ctx.tracing && this.ctx.trace(ev, fields),
        vramLost: () => this.vramBos.loseContents(),
      },
      this.lockup,
      this.era.softRecovery,
      { ...DEFAULT_RECOVERY_COSTS, ...this.profiled.recovery, ...cfg.recovery },
    );
    // ttm_bo_evict waits on the BO's reservation: the policy says what that means (KFD: evict the
    // process); by default the fences of the jobs using it.
    const evictionFence = this.policy.evictionFence?.bind(this.policy) ?? ((bo: Bo, then: () => void) => waitFences([...bo.fences].map((j) => j.fence), then));
    this.dmabuf = new DmaBufExporter(
      {
        id,
        bo: (handle) => this.bos.get(handle),
        reply: (env, msg) => this.ctx.reply(env, msg),
        request: (to, msg, then) => void this.waits.request(to, msg, () => then()),
        trace: (ev, fields) => this.ctx.tracing && this.ctx.trace(ev, fields),
      },
      cfg.dmabufMoveNotify === true,
    );
    this.vramBos = new VramBos(this, { ...DEFAULT_VRAM_BOS, ...this.profiled.vramBos, ...cfg.vramBos }, evictionFence, this.dmabuf);
  }

  private createPolicy(cfg: GpuConfig): Policy {
    const maxBusyRetries = cfg.maxBusyRetries ?? BUSY_RETRIES_MAX;
    switch (cfg.policy) {
      case 'pin':
        return createPinPolicy(this);
      case 'userptr':
      case 'unsafe-userptr':
        return createUserptrPolicy(this, { unsafe: cfg.policy === 'unsafe-userptr', maxResubmits: cfg.maxResubmits ?? RESUBMITS_MAX });
      case 'preempt':
        return createPreemptPolicy(this, { ...this.profiled.preempt, ...cfg.preempt });
      case 'svm-fault':
      case 'unsafe-svm':
        return createSvmFaultPolicy(this, { unsafe: cfg.policy === 'unsafe-svm', maxBusyRetries, ...cfg.svm });
      case 'kfd-svm':
        return createKfdSvmPolicy(this, { xnack: cfg.xnack ?? true, vramPages: cfg.svm?.vramPages, preempt: { ...this.profiled.preempt, ...cfg.preempt }, ...cfg.kfd });
      case 'unsafe-lock-not-pinned':
        return createLockNotPinnedPolicy(this);
      case 'kfd-svm-read-begin-outside-loop':
        return createKfdSvmReadBeginOutsideLoopPolicy(this, { xnack: true, vramPages: cfg.svm?.vramPages, preempt: { ...this.profiled.preempt, ...cfg.preempt }, ...cfg.kfd });
      case 'uvm-thrashing-off':
        // uvm with uvm_perf_thrashing_enable=0 (a module parameter; uvm_perf_thrashing.c): a policy
        // name so that `compare` sets it beside uvm (uvm-oversubscription).
        return createUvmPolicy(this, { vramPages: cfg.svm?.vramPages, ...cfg.uvm, thrashing: { ...cfg.uvm?.thrashing, enable: false }, unsafe: false, maxBusyRetries, name: 'uvm-thrashing-off' });
      case 'uvm':
      case 'unsafe-uvm':
        return createUvmPolicy(this, { vramPages: cfg.svm?.vramPages, ...cfg.uvm, unsafe: cfg.policy === 'unsafe-uvm', maxBusyRetries });
      case 'gpusvm':
      case 'unsafe-gpusvm':
        return createGpusvmPolicy(this, { vramPages: cfg.svm?.vramPages, ...cfg.gpusvm, unsafe: cfg.policy === 'unsafe-gpusvm', maxBusyRetries });
    }
  }

  start(ctx: Ctx<Message>): void {
    this.ctx = ctx;
  }

  receive(env: Incoming<Message>, ctx: Ctx<Message>): void {
    this.ctx = ctx;
    // The boundary: a malformed message is answered bad_message and changes nothing (message-shapes.ts).
    if (rejectBadMessage(env as Envelope<Message>, ctx, GPU_SHAPES)) return;
    this.dispatch(env);
    this.counters.sample(ctx, () => ({ vram_bo_pages: this.vramBos.usedPages, svm_vram_pages: this.policy.vramPagesInUse?.() ?? 0 }));
  }

  private dispatch(env: Incoming<Message>): void {
    if (this.waits.resume(env)) return;
    const m = env.msg as GpuRequest | DmaBufRequest | Invalidate | InvalidateMultipass | InvalidatePass | { type: 'dma_read_result' } | { type: 'actor_died' } | { type: 'request_timeout' };
    switch (m.type) {
      case 'gpu_bo_create':
        return this.boCreate(env, m);
      case 'gpu_submit':
        return this.submit(env, m);
      case 'gpu_wait':
        return this.wait(env, m);
      case 'gpu_bo_free':
        return this.boFree(env, m);
      case 'gpu_devmem_read':
        return this.reply(env, { type: 'gpu_devmem_result', ret: 0, values: this.policy.devmemRead?.(m.dev_pfns) ?? m.dev_pfns.map(() => null) });
      case 'invalidate': {
        const bo = this.countInvalidation(m);
        if (!bo?.notifier || !this.policy.invalidate) {
          // Not one of ours (a BO already gone, or a policy that subscribes to nothing): nothing to stop.
          this.warn('invalidate for an unknown subscription', { sub: m.sub });
          return this.reply(env, { type: 'invalidate_ack', sub: m.sub, ok: true });
        }
        return this.policy.invalidate(env, m, bo as SubscribedBo);
      }
      case 'invalidate_multipass': {
        const bo = this.countInvalidation(m);
        if (!bo?.notifier || !this.policy.invalidateMultipass) {
          this.warn('invalidate_multipass for an unknown subscription', { sub: m.sub });
          return this.reply(env, { type: 'invalidate_multipass_ack', sub: m.sub, ok: true, pass: null });
        }
        return this.policy.invalidateMultipass(env, m, bo as SubscribedBo);
      }
      case 'invalidate_pass':
        if (!this.policy.invalidatePass) {
          this.warn('invalidate_pass for a policy without passes', { sub: m.sub, pass: m.pass });
          return this.reply(env, { type: 'invalidate_pass_done', sub: m.sub, next: null });
        }
        return this.policy.invalidatePass(env, m);
      case 'dma_buf_export':
        return this.dmabuf.export(env, m);
      case 'dma_buf_attach':
        return this.dmabuf.attach(env, m);
      case 'dma_buf_detach':
        return this.dmabuf.detach(env, m);
      case 'dma_buf_map_attachment':
        return this.dmabuf.map(env, m);
      case 'dma_buf_unmap_attachment':
        return this.dmabuf.unmap(m);
      case 'dma_buf_access':
        return this.dmabuf.access(env, m);
      case 'dma_read_result': // the reply to a DMA read (its value is not needed)
      case 'actor_died':
      case 'request_timeout':
        return;
      default:
        if (this.policy.receive?.(env, m as Message)) return;
        throw new Error(`${this.id}: unknown message '${(m as Message).type}' from ${env.from}`);
    }
  }

  summary(): Record<string, unknown> {
    const s = this.stats;
    const walked = s.pagesWalkedPerSubmission;
    return {
      policy: this.policy.name,
      kernel: this.kernel,
      costProfile: this.profile,
      lockupTimeoutMs: this.lockup,
      ...s,
      ...this.recovery.stats,
      ...this.policy.summary?.(),
      preemptions: this.queues.preemptions,
      queuesStoppedNs: this.queues.stoppedNs,
      processesStopped: this.queues.stoppedProcesses,
      vramBoEvictions: this.vramBos.evictions,
      vramBoPagesEvicted: this.vramBos.pagesEvicted,
      vramBoPagesRestored: this.vramBos.pagesRestored,
      vramBoCreateFailures: this.vramBos.createFailures,
      vramBoPagesFree: this.vramBos.freePages,
      dmabufMoveNotifyConfig: this.dmabuf.moveNotify,
      ...this.dmabuf.stats,
      pagesWalkedPerSubmission: undefined,
      submitLatencyNs: undefined,
      invalidateWaitNs: undefined,
      pagesWalkedTotal: walked.reduce((a, b) => a + b, 0),
      pagesWalkedPerSubmissionMean: walked.length ? walked.reduce((a, b) => a + b, 0) / walked.length : 0,
      pagesWalkedPerSubmissionMax: maxOf(walked),
      submitLatencyP50Ns: percentile(s.submitLatencyNs, 50),
      submitLatencyP99Ns: percentile(s.submitLatencyNs, 99),
      invalidateWaitTotalNs: s.invalidateWaitNs.reduce((a, b) => a + b, 0),
      invalidateWaitP50Ns: percentile(s.invalidateWaitNs, 50),
      invalidateWaitMaxNs: maxOf(s.invalidateWaitNs),
      gpuvmEntries: this.vm.size,
      gpuvmPtesWritten: this.vm.ptesWritten,
      gpuvmRebinds: this.vm.rebinds,
      tlbFlushes: this.vm.tlbFlushes,
      staleTlbHits: this.vm.staleTlbHits,
      bos: this.bos.size,
      jobsPending: [...this.jobs.values()].filter((j) => !j.fence.signalled).length,
      jobsRunning: this.queues.pending,
      pendingCalls: this.waits.pendingRequests,
    };
  }

  /** The statistics of an invalidation's first (or only) callback; its BO, if it is one of ours. */
  private countInvalidation(m: Invalidate | InvalidateMultipass): Bo | undefined {
    const bo = this.bySub.get(m.sub);
    if (bo) this.stats.pagesInvalidated += Math.max(0, Math.min(m.end, bo.addr + bo.pages * PAGE_SIZE) - Math.max(m.start, bo.addr)) / PAGE_SIZE;
    this.stats.invalidations++;
    this.stats.invalidationsByEvent[m.event] = (this.stats.invalidationsByEvent[m.event] ?? 0) + 1;
    return bo;
  }

  // ---- GpuHost ----

  call(msg: MmRequest, then: (r: Reply) => void): void {
    this.waits.request(this.mm, msg, then);
  }

  sleep(ns: number, then: () => void): void {
    this.waits.sleep(ns, then);
  }

  flushTlb(cleared: number, then: () => void): void {
    if (cleared === 0) return then();
    this.sleep(this.costs.tlbFlushNs, () => {
      this.vm.flushTlb();
      then();
    });
  }

  issueTlbFlush(cleared: number, then: (fence: TlbInvalFence | null) => void): void {
    if (cleared === 0) return then(null);
    this.sleep(this.costs.tlbInvalIssueNs, () => {
      const fence = new TlbInvalFence();
      // The hardware walks its TLBs on its own; only then are the cached translations gone.
      this.sleep(this.costs.tlbFlushNs - this.costs.tlbInvalIssueNs, () => {
        this.vm.flushTlb();
        fence.signal();
      });
      then(fence);
    });
  }

  reply(env: Envelope<Message>, msg: GpuReply | InvalidateAck | InvalidateMultipassAck | InvalidatePassDone | DmaBufReply): void {
    if (this.ackedInvalidations && msg.type === 'invalidate_ack' && msg.ok) this.ackedInvalidations.acked(env.msg as Invalidate);
    this.ctx.reply(env, msg);
  }

  send(msg: MmRequest): void {
    this.ctx.send(this.mm, msg);
  }

  warn(what: string, fields: Record<string, unknown> = {}): void {
    this.stats.warnings++;
    if (this.ctx.tracing) this.ctx.trace('warn', { what: `${this.id}: ${what}`, ...fields });
  }

  vmJobs(pid: number): Job[] {
    return this.queues.allJobs().filter((j) => j.bos[0]?.pid === pid && !j.fence.signalled);
  }

  pushJob(job: Job): void {
    for (const bo of job.bos) {
      bo.fences.add(job);
      if (bo.domain === 'vram') this.vramBos.touch(bo);
    }
    if (this.ctx.tracing) this.ctx.trace('gpu_job_queued', { job: job.id, queue: job.queue, bos: job.bos.map((b) => b.handle) });
    this.queues.push(job);
  }

  // ---- QueueHost: how jobs reach memory ----

  private queueHost(): QueueHost {
    return {
      now: () => this.ctx.now(),
      timer: (ns, then) => this.waits.after(ns, then),
      cancelTimer: (timer) => void this.waits.cancel(timer),
      lookup: (pid, addr) => this.vm.translate(pid, addr),
      dma: (job, bo, page, pte) => {
        const addr = bo.addr + page * PAGE_SIZE;
        const write = job.pattern.write;
        job.accesses++;
        const value = (job.pattern.value ?? job.id * 1e6 + 1) + page;
        if (pte.local) {
          // A VRAM BO: the GPU's own memory, wherever TTM has it (VRAM or GTT).
          if (write) bo.local!.content[pte.pfn] = value;
          this.stats.localAccesses++;
          return;
        }
        if (this.policy.access?.(job, bo, page, pte, value)) return; // served by the policy (svm-fault: VRAM)
        if (pte.tr.via === 'mirror' && this.ackedInvalidations?.stale(pte.tr.sub, addr, pte.tr.seq)) this.stats.unsafeBugPaths++;
        const dma: DmaAccess = { type: 'dma_access', dev: this.id, pid: bo.pid, addr, pfn: pte.pfn, write, tr: pte.tr };
        if (write) {
          dma.value = value;
          this.stats.dmaWrites++;
          this.ctx.send(this.mm, dma);
        } else {
          this.stats.dmaReads++;
          this.ctx.request(this.mm, dma);
        }
      },
      gpuFault: this.policy.gpuFault?.bind(this.policy),
      atomicNeedsVram: this.policy.atomicNeedsVram === true,
      vmFault: (job, pid, addr, write) => {
        job.faults++;
        this.stats.gpuPageFaults++;
        if (this.ctx.tracing) this.ctx.trace('gpu_vm_fault', { job: job.id, pid, addr, write });
      },
      trace: (ev, fields) => {
        if (this.ctx.tracing) this.ctx.trace(ev, fields);
      },
      jobStarted: (job) => this.recovery.jobStarted(job),
      preempting: (jobs) => this.recovery.preemptionHang(jobs),
      jobEnded: (job) => {
        this.recovery.jobEnded(job);
        if (job.error !== 0) this.stats.jobsLost[errName(job.error)] = (this.stats.jobsLost[errName(job.error)] ?? 0) + 1;
        for (const bo of job.bos) bo.fences.delete(job);
        this.finished.push(job.id);
        if (this.finished.length > FINISHED_JOBS_KEPT) this.jobs.delete(this.finished.shift()!);
        this.stats.jobsDone++;
        this.stats.lastJobEndAt = this.ctx.now();
        if (job.faults > 0) this.stats.jobErrors++;
        if (job.durationNs > 0) this.stats.jobStretchMax = Math.max(this.stats.jobStretchMax, (this.ctx.now() - job.startedAt) / job.durationNs);
        // A job's page accesses over its run: what a copy kernel moved, for a throughput figure.
        this.stats.jobAccessesTotal += job.accesses;
        this.stats.jobRunNsTotal += this.ctx.now() - job.startedAt;
        if (this.ctx.tracing) this.ctx.trace('gpu_job_end', { job: job.id, queue: job.queue, accesses: job.accesses, faults: job.faults, ...(job.error !== 0 && { error: errName(job.error) }) });
      },
    };
  }

  // ---- ioctls ----

  private boCreate(env: Envelope<Message>, m: GpuBoCreate): void {
    const fail = (ret: number) => {
      this.stats.boCreateErrors++;
      this.reply(env, { type: 'gpu_bo_create_result', ret, handle: 0 });
    };
    if (!Number.isInteger(m.addr) || m.addr < 0 || m.addr % PAGE_SIZE !== 0 || !Number.isInteger(m.pages) || m.pages <= 0) return fail(EINVAL);
    const bo = newBo(this.nextHandle++, m.pid, m.addr, m.pages, m.readonly === true, m.vram === true ? 'vram' : 'userptr');
    const create = (done: (ret: number) => void) => (bo.domain === 'vram' ? this.vramBos.create(bo, done) : this.policy.createBo(bo, done));
    create((ret) => {
      if (ret < 0) return fail(ret);
      this.bos.set(bo.handle, bo);
      this.stats.bosCreated++;
      this.stats.boPagesCreated += bo.pages;
      this.reply(env, { type: 'gpu_bo_create_result', ret: bo.handle, handle: bo.handle });
    });
  }

  private submit(env: Envelope<Message>, m: GpuSubmit): void {
    const t0 = this.ctx.now();
    this.stats.submissions++;
    if (this.stats.firstSubmitAt < 0) this.stats.firstSubmitAt = t0;
    const fail = (ret: number, pagesWalked = 0, resubmissions = 0) => {
      this.stats.submitErrors[errName(ret)] = (this.stats.submitErrors[errName(ret)] ?? 0) + 1;
      this.reply(env, { type: 'gpu_submit_result', ret, job: 0, pagesWalked, resubmissions });
    };
    const bos = m.bos.map((h) => this.bos.get(h));
    if (bos.length === 0 || bos.some((b) => !b || b.freeing)) return fail(ENOENT);
    if (!(m.pattern.touch > 0 && m.pattern.touch <= 1) || !((m.pattern.shift ?? 0) >= 0 && (m.pattern.shift ?? 0) < 1) || !(m.durationNs >= 0) || (m.queue !== 'gfx' && m.queue !== 'compute')) return fail(EINVAL);
    if (m.pattern.write && bos.some((b) => b!.readonly)) return fail(EFAULT);
    // One process per job: the queues preempt, and policies validate, by the job's process.
    if (bos.some((b) => b!.pid !== bos[0]!.pid)) return fail(EINVAL);
    // The CS holds a reference on each BO of its list until the job is pushed or has failed: a
    // GEM_CLOSE meanwhile waits (amdgpu_bo_list; the BO goes with its last reference).
    for (const b of bos) b!.submitting++;
    const released = (): void => {
      for (const b of bos) {
        if (--b!.submitting === 0) for (const idle of b!.submitIdle.splice(0)) idle();
      }
    };
    const job: Job = {
      id: this.nextJob++, bos: bos as Bo[], pattern: m.pattern, durationNs: m.durationNs, queue: m.queue, fence: newFence(),
      submittedAt: t0, startedAt: -1, endedAt: -1, faults: 0, accesses: 0, error: 0, hang: m.hang === true,
    };
    this.sleep(this.costs.submitNs, () =>
      this.policy.submit(job, (o) => {
        released();
        this.stats.resubmissions += o.resubmissions;
        if (o.ret < 0) return fail(o.ret, o.pagesWalked, o.resubmissions);
        this.jobs.set(job.id, job);
        this.stats.pagesWalkedPerSubmission.push(o.pagesWalked);
        this.stats.submitLatencyNs.push(this.ctx.now() - t0);
        if (this.ctx.tracing) this.ctx.trace('gpu_submit_done', { job: job.id, pagesWalked: o.pagesWalked, resubmissions: o.resubmissions, latencyNs: this.ctx.now() - t0 });
        this.reply(env, { type: 'gpu_submit_result', ret: 0, job: job.id, pagesWalked: o.pagesWalked, resubmissions: o.resubmissions });
      }),
    );
  }

  private wait(env: Envelope<Message>, m: GpuWait): void {
    const job = this.jobs.get(m.job);
    if (!job) {
      // Older than the jobs kept: signalled long ago, its status gone (amdgpu_ctx_get_fence returns
      // no fence for a sequence that left the ring). Never submitted: -EINVAL.
      const gone = Number.isInteger(m.job) && m.job > 0 && m.job < this.nextJob;
      return this.reply(env, { type: 'gpu_wait_result', ret: gone ? 0 : EINVAL, job: m.job, value: 0 });
    }
    waitFences([job.fence], () => {
      this.jobs.delete(job.id);
      this.reply(env, { type: 'gpu_wait_result', ret: job.error !== 0 ? job.error : job.faults > 0 ? EFAULT : 0, job: job.id, value: job.pattern.value ?? job.id * 1e6 + 1 });
    });
  }

  private boFree(env: Envelope<Message>, m: GpuBoFree): void {
    const bo = this.bos.get(m.handle);
    if (!bo || bo.freeing) return this.reply(env, { type: 'gpu_bo_free_result', ret: ENOENT });
    bo.freeing = true;
    // The BO is destroyed once its reservation is idle (TTM's delayed delete).
    // An exported BO's memory stays until the dma-buf's last attachment goes (the handle goes now).
    const free = (done: () => void) => (bo.domain === 'vram' ? (this.dmabuf.close(bo, () => this.vramBos.free(bo)), done()) : this.policy.freeBo(bo, done));
    const submitsDone = (then: () => void) => (bo.submitting === 0 ? then() : void bo.submitIdle.push(then));
    submitsDone(() => waitFences([...bo.fences].map((j) => j.fence), () =>
      free(() => {
        this.bos.delete(bo.handle);
        this.stats.bosFreed++;
        this.reply(env, { type: 'gpu_bo_free_result', ret: 0 });
      }),
    ));
  }
}
