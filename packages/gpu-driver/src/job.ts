// Jobs and fences (drm_sched_job / dma_fence), and which pages a job touches when. A job runs on one
// queue (amdgpu's gfx ring or a compute ring); how it runs there (waves, preemption, faults, the
// fence signalling at its end) is queues.ts. Its accesses are planned here: the pages it touches,
// evenly spread over each BO, at evenly spread points of its duration.
import type { Bo } from './bo.js';
import type { AccessPattern, GpuQueue } from './gpu-protocol.js';

export interface Fence {
  signalled: boolean;
  /** Called once when it signals (dma_fence_add_callback). */
  callbacks: (() => void)[];
}

export interface Job {
  id: number;
  bos: Bo[];
  pattern: AccessPattern;
  durationNs: number;
  queue: GpuQueue;
  fence: Fence;
  submittedAt: number;
  startedAt: number;
  endedAt: number;
  /** GPU page faults taken. */
  faults: number;
  /** DMA accesses sent. */
  accesses: number;
  /**
   * The error its fence signalled with (dma_fence_set_error): 0, or -ENODATA (soft recovery),
   * -ETIME (the guilty job of a GPU reset), -ECANCELED (lost to a reset), -EFAULT (a VM fault).
   */
  error: number;
  /** Injected: the job's work ends but its fence never signals (a hung shader), so only a timeout or reset ends it. */
  hang: boolean;
}

export function newFence(): Fence {
  return { signalled: false, callbacks: [] };
}

export function signalFence(f: Fence): void {
  if (f.signalled) return;
  f.signalled = true;
  for (const cb of f.callbacks.splice(0)) cb();
}

/** Run `then` once every fence has signalled (at once if all have). */
export function waitFences(fences: Fence[], then: () => void): void {
  let left = fences.filter((f) => !f.signalled).length;
  if (left === 0) return then();
  for (const f of fences) {
    if (f.signalled) continue;
    f.callbacks.push(() => {
      if (--left === 0) then();
    });
  }
}

/** The page indexes of a BO of `pages` pages that a job touching `fraction` of it accesses: evenly spread, at least one, starting `shift` (a fraction of the spacing) in. */
export function touchedPages(pages: number, fraction: number, shift = 0): number[] {
  const n = Math.max(1, Math.min(pages, Math.round(pages * fraction)));
  const first = Math.floor((shift * pages) / n);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((first + Math.floor((i * pages) / n)) % pages);
  return out;
}

/** One DMA access of a job: BO and page index, at offset `atNs` from the job's start. */
export interface PlannedAccess {
  bo: Bo;
  page: number;
  atNs: number;
}

/** The job's accesses in order, spread over (0, durationNs): access k of n at (k + 0.5) / n of the duration. */
export function planAccesses(job: Job): PlannedAccess[] {
  const list: { bo: Bo; page: number }[] = [];
  for (const bo of job.bos) for (const page of touchedPages(bo.pages, job.pattern.touch, job.pattern.shift ?? 0)) list.push({ bo, page });
  const n = list.length;
  return list.map((a, k) => ({ ...a, atNs: (job.durationNs * (k + 0.5)) / n }));
}
