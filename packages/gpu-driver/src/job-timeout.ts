// drm_sched's job timeout and amdgpu's recovery, for jobs submitted through the CS ioctl (the
// kernel rings: policies pin and userptr). Read in the newest amdgpu_job.c / sched_main.c copies
// (v6.x shape, unchanged in the latest tree) and v4.9's:
//
//   drm_sched_job_begin / drm_sched_start_timeout: a ring's timer runs while a job is on the
//   hardware; it is re-armed for the next job when one finishes (here: per job at the head of its
//   queue, which is the same thing for one job at a time per queue). lockup_timeout per ring type
//   (kernel-era.ts); negative: MAX_SCHEDULE_TIMEOUT, never armed.
//   drm_sched_job_timedout → amdgpu_job_timedout:
//     1. soft recovery (amdgpu_ring_soft_recovery, v4.19+, if the ring has it: gfx and compute):
//        dma_fence_set_error(hw fence, -ENODATA), then SQ_CMD kills the waves of the job's VMID
//        until the fence signals or 10 ms pass. A job still doing work dies at once ("ring %s
//        timeout, but soft recovered"): the job is lost, nothing else is touched.
//     2. else (no soft recovery in the era, or the fence still unsignalled: a hung job):
//        dma_fence_set_error(finished, -ETIME); amdgpu_device_gpu_recover: every scheduler stopped,
//        the ASIC reset; a full reset loses VRAM, so every other job of every context is cancelled
//        (amdgpu_ctx's vram_lost_counter: their fences -ECANCELED) and VRAM BO contents are gone.
//   Either way the fence signals, so an MMU notifier waiting on it (amdgpu_hmm_invalidate_gfx's
//   dma_resv_wait_timeout(MAX_SCHEDULE_TIMEOUT)) returns and reclaim goes on.
//
// KFD user queues (preempt, svm-fault, kfd-svm) have no job timeout. A hung queue shows when the HWS
// must unmap it: after queue_preemption_timeout_ms (9000) the unmap fails, dqm->is_hws_hang is set
// and kfd_hws_hang → amdgpu_amdkfd_gpu_reset: the same GPU reset (preemptionHang below).
import { ECANCELED, ENODATA, ETIME } from './gpu-protocol.js';
import type { Job } from './job.js';
import { lockupTimeoutNs, QUEUE_PREEMPTION_TIMEOUT_MS, type LockupTimeoutMs } from './kernel-era.js';
import type { GpuQueues } from './queues.js';

/** What recovery needs from the GPU actor. */
export interface RecoveryHost {
  readonly queues: GpuQueues;
  timer(ns: number, then: () => void): number;
  cancelTimer(timer: number): void;
  trace(ev: string, fields: Record<string, unknown>): void;
  /** A full reset lost VRAM: the VRAM BOs' contents are gone. Returns the pages lost. */
  vramLost(): number;
}

export interface RecoveryCosts {
  /** amdgpu_ring_soft_recovery until the fence signals (bounded by the kernel's 10 ms deadline). */
  softRecoveryNs: number;
  /** A full GPU reset (amdgpu_device_gpu_recover: stop schedulers, ASIC reset, resume). */
  gpuResetNs: number;
}
export const DEFAULT_RECOVERY_COSTS: RecoveryCosts = {
  // No published figure; estimate because soft recovery kills the ring's waves (SQ_CMD) and waits for the fence: µs, well inside
  // amdgpu_ring_soft_recovery's 10 ms deadline (the bound checked below).
  softRecoveryNs: 10_000,
  // No kernel constant and no published figure; order-of-magnitude estimate because a reset stops every scheduler, resets the ASIC
  // and re-initialises its firmware and rings before resuming: hundreds of ms.
  gpuResetNs: 500e6,
};
/** amdgpu_ring_soft_recovery's deadline: ktime_add_us(ktime_get(), 10000). */
const SOFT_RECOVERY_DEADLINE_NS = 10e6;

export interface RecoveryStats {
  jobTimeouts: number;
  softRecoveries: number;
  gpuResets: number;
  /** Jobs whose fences a reset signalled with -ECANCELED (innocent victims). */
  jobsCancelledByReset: number;
  vramBoPagesLost: number;
  /** KFD: preemptions that did not finish within queue_preemption_timeout_ms (an HWS hang). */
  hwsHangs: number;
}

export class GpuRecovery {
  readonly stats: RecoveryStats = { jobTimeouts: 0, softRecoveries: 0, gpuResets: 0, jobsCancelledByReset: 0, vramBoPagesLost: 0, hwsHangs: 0 };
  private readonly timers = new Map<Job, number>();
  private resetting = false;

  /** lockup: per ring type, ms (negative: infinite); null: the GPU's jobs have no job timeout (KFD user queues). */
  constructor(
    private readonly host: RecoveryHost,
    private readonly lockup: LockupTimeoutMs | null,
    private readonly softRecovery: boolean,
    private readonly costs: RecoveryCosts,
  ) {
    if (costs.softRecoveryNs > SOFT_RECOVERY_DEADLINE_NS) throw new Error(`gpu recovery: softRecoveryNs ${costs.softRecoveryNs} exceeds amdgpu_ring_soft_recovery's 10 ms deadline`);
  }

  /** The ring's timeout in ns (Infinity: none). */
  timeoutNs(job: Job): number {
    if (!this.lockup) return Infinity;
    return lockupTimeoutNs(job.queue === 'gfx' ? this.lockup.gfx : this.lockup.compute);
  }

  /** drm_sched_start_timeout: the job is on the hardware. */
  jobStarted(job: Job): void {
    const ns = this.timeoutNs(job);
    if (!Number.isFinite(ns)) return;
    this.timers.set(job, this.host.timer(ns, () => this.timedOut(job)));
  }

  /** The job's fence signalled: its timer goes. */
  jobEnded(job: Job): void {
    const t = this.timers.get(job);
    if (t === undefined) return;
    this.host.cancelTimer(t);
    this.timers.delete(job);
  }

  /** amdgpu_job_timedout. */
  private timedOut(job: Job): void {
    this.timers.delete(job);
    if (job.fence.signalled || this.resetting) return;
    this.stats.jobTimeouts++;
    this.host.trace('gpu_job_timedout', { fn: 'amdgpu_job_timedout', job: job.id, queue: job.queue, timeoutNs: this.timeoutNs(job) });
    // A hung job's fence does not signal when its waves are killed: soft recovery fails.
    if (this.softRecovery && !job.hang) {
      this.host.timer(this.costs.softRecoveryNs, () => {
        if (job.fence.signalled) return;
        this.stats.softRecoveries++;
        this.host.trace('gpu_soft_recovery', { fn: 'amdgpu_ring_soft_recovery', job: job.id, error: 'ENODATA' });
        this.host.queues.abort(job, ENODATA);
      });
      return;
    }
    const deadline = this.softRecovery ? SOFT_RECOVERY_DEADLINE_NS : 0;
    this.host.timer(deadline, () => this.gpuReset(job, 'amdgpu_job_timedout'));
  }

  /**
   * KFD: the HWS was asked to unmap pid's queues (kgd2kfd_quiesce_mm). If one of them runs a hung
   * job the unmap never completes: after queue_preemption_timeout_ms the driver declares an HWS
   * hang and resets the GPU. Returns whether the preemption hangs.
   */
  preemptionHang(running: Job[]): boolean {
    const hung = running.find((j) => j.hang && !j.fence.signalled);
    if (!hung) return false;
    this.host.timer(QUEUE_PREEMPTION_TIMEOUT_MS * 1e6, () => {
      if (hung.fence.signalled) return;
      this.stats.hwsHangs++;
      this.host.trace('gpu_hws_hang', { fn: 'unmap_queues_cpsch', job: hung.id, timeoutMs: QUEUE_PREEMPTION_TIMEOUT_MS });
      this.gpuReset(hung, 'kfd_hws_hang');
    });
    return true;
  }

  /** amdgpu_device_gpu_recover with a full ASIC reset: the guilty job -ETIME, every other -ECANCELED, VRAM lost. */
  private gpuReset(guilty: Job, by: string): void {
    if (this.resetting || guilty.fence.signalled) return;
    this.resetting = true;
    this.stats.gpuResets++;
    this.host.trace('gpu_reset_start', { fn: 'amdgpu_device_gpu_recover', by, guilty: guilty.id });
    this.host.timer(this.costs.gpuResetNs, () => {
      const victims = this.host.queues.allJobs().filter((j) => j !== guilty);
      this.host.queues.abort(guilty, ETIME);
      for (const j of victims) {
        if (j.fence.signalled) continue;
        this.stats.jobsCancelledByReset++;
        this.host.queues.abort(j, ECANCELED);
      }
      this.stats.vramBoPagesLost += this.host.vramLost();
      this.resetting = false;
      this.host.trace('gpu_reset_done', { guilty: guilty.id, cancelled: victims.length });
    });
  }
}
