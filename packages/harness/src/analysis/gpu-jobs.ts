// GPU jobs and fences as the GPU actor traces them (packages/gpu-driver: gpu_job_queued {job, queue,
// bos}, gpu_job_start {job, queue, durationNs}, gpu_job_end {job}) and what its invalidate callback
// waits for (gpu_invalidate_wait {fn, sub, jobs}). A job's fence is numbered as drm_sched numbers a
// job's finished fence: in order of submission on its ring (per device and queue).
import type { TraceLine } from '@svmsim/runtime';

export interface JobRecord {
  dev: string;
  job: number;
  queue: string;
  /** The fence's seqno on its ring. */
  fence: number;
  queuedT: number;
  startT?: number;
  durationNs?: number;
  endT?: number;
}

/** What a device's invalidate callback blocks on. */
export interface DeviceWait {
  dev: string;
  fn: string;
  sub: number;
  jobs: number[];
  t: number;
  /**
   * A callback blocked on a driver lock instead (gpu_invalidate_wait with `lock`): the lock, the
   * worker holding it, since when, and what that worker waits for (kfd-svm XNACK off: prange->lock
   * held by svm_range_restore_work across dma_fence_wait).
   */
  lock?: { name: string; holder: string; since: number; holderWaits: string };
}

export class GpuJobs {
  /** The `ev`s of the lines it reads: the model hands it only those. */
  static readonly events: readonly string[] = ['gpu_job_queued', 'gpu_job_start', 'gpu_job_end', 'gpu_invalidate_wait', 'gpu_invalidate_done'];

  private readonly jobs = new Map<string, JobRecord>();
  private readonly seqno = new Map<string, number>();
  /** The latest invalidate-callback wait per (device, subscription). */
  private readonly waits = new Map<string, DeviceWait>();
  /** Jobs that ended, with their slice, for exporters that want them (kept only if asked). */
  ended?: (j: JobRecord) => void;

  line(l: TraceLine): void {
    switch (l.ev) {
      case 'gpu_job_queued': {
        const queue = String(l.queue);
        const ring = `${l.actor}\u0000${queue}`;
        const fence = (this.seqno.get(ring) ?? 0) + 1;
        this.seqno.set(ring, fence);
        this.jobs.set(`${l.actor}\u0000${l.job}`, { dev: l.actor, job: l.job as number, queue, fence, queuedT: l.t });
        return;
      }
      case 'gpu_job_start': {
        const j = this.jobs.get(`${l.actor}\u0000${l.job}`);
        if (j) {
          j.startT = l.t;
          j.durationNs = l.durationNs as number;
        }
        return;
      }
      case 'gpu_job_end': {
        const key = `${l.actor}\u0000${l.job}`;
        const j = this.jobs.get(key);
        if (!j) return;
        j.endT = l.t;
        this.jobs.delete(key);
        this.ended?.(j);
        return;
      }
      case 'gpu_invalidate_wait':
        this.waits.set(`${l.actor}\u0000${l.sub}`, {
          dev: l.actor, fn: (l.fn as string) ?? 'invalidate', sub: l.sub as number, jobs: (l.jobs as number[]) ?? [], t: l.t,
          ...(typeof l.lock === 'string' && { lock: { name: l.lock, holder: String(l.holder ?? 'another task'), since: Number(l.holderSince ?? l.t), holderWaits: String(l.holderWaits ?? 'something the trace does not show') } }),
        });
        return;
      case 'gpu_invalidate_done':
        this.waits.delete(`${l.actor}\u0000${l.sub}`);
        return;
    }
  }

  /** A job not yet ended. */
  job(dev: string, job: number): JobRecord | undefined {
    return this.jobs.get(`${dev}\u0000${job}`);
  }

  /** What `dev`'s callback for `sub` is blocked on now, if it said. */
  waitOf(dev: string, sub: number): DeviceWait | undefined {
    return this.waits.get(`${dev}\u0000${sub}`);
  }

  openJobs(): JobRecord[] {
    return [...this.jobs.values()];
  }
}
