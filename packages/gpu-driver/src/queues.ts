// The GPU's queues and how a job runs on them. Jobs of one queue run one after the other; the gfx
// ring and the compute ring run concurrently. A running job issues its DMA accesses one at a time at
// fixed points of its own GPU time (job.ts planAccesses), so a job holds exactly one timer: the
// next access, or its end.
//
// GPU time only advances while the job runs. Two things stop it:
//   preemption   quiesce(pid) (kgd2kfd_quiesce_mm: the HWS unmaps the process's queues) pauses the
//                running jobs of pid and keeps its queued ones from starting, until resume(pid).
//   a retry fault an access that finds no GPUVM entry (or a read-only one for a write) raises a GPU
//                page fault. A policy with a fault handler (svm-fault: XNACK on, nouveau's
//                replayable faults) stalls the wave until the handler replays the fault; the access
//                is then tried again. Without one (gfx under pin/userptr, XNACK off), or when the
//                handler cancels the fault, it is a VM fault: the access is dropped and the job
//                ends in error (amdgpu marks the context guilty).
import { PAGE_SIZE, type Pid } from '@svmsim/kernel-mm';
import type { Bo } from './bo.js';
import type { GpuQueue } from './gpu-protocol.js';
import { planAccesses, signalFence, type Job, type PlannedAccess } from './job.js';
import type { GpuPte } from './gpuvm.js';

/** What the queues need from the GPU actor. */
export interface QueueHost {
  now(): number;
  /** A timer (always asynchronous, also for 0 ns); returns its id. */
  timer(ns: number, then: () => void): number;
  cancelTimer(timer: number): void;
  lookup(pid: Pid, addr: number): GpuPte | undefined;
  /** The access goes to mm through the entry. */
  dma(job: Job, bo: Bo, page: number, pte: GpuPte): void;
  /** A fault handler, if the policy can resolve GPU page faults: resolve(true) replays, resolve(false) cancels. */
  gpuFault?: (job: Job, pid: Pid, addr: number, write: boolean, resolve: (replay: boolean) => void) => void;
  /** A VM fault (an access dropped). */
  vmFault(job: Job, pid: Pid, addr: number, write: boolean): void;
  trace(ev: string, fields: Record<string, unknown>): void;
  jobEnded(job: Job): void;
}

/** The execution state of a job on its queue. */
interface Running {
  job: Job;
  plan: PlannedAccess[];
  /** The next access to issue. */
  next: number;
  /** GPU time consumed, ns, up to `since`. */
  progressNs: number;
  /** When the job last (re)started running; -1 while paused or stalled. */
  since: number;
  timer: number;
  stalled: boolean;
}

export class GpuQueues {
  private readonly queues: Record<GpuQueue, Job[]> = { gfx: [], compute: [] };
  private readonly running = new Map<Job, Running>();
  /** Processes whose queues are preempted, with how many quiesce() calls hold them. */
  private readonly quiesced = new Map<Pid, number>();
  preemptions = 0;

  constructor(private readonly host: QueueHost) {}

  push(job: Job): void {
    const q = this.queues[job.queue];
    q.push(job);
    if (q.length === 1) this.start(job);
  }

  /** Jobs queued or running. */
  get pending(): number {
    return this.queues.gfx.length + this.queues.compute.length;
  }

  /** The running or queued jobs of pid. */
  jobsOf(pid: Pid): Job[] {
    return [...this.queues.gfx, ...this.queues.compute].filter((j) => j.bos[0]?.pid === pid);
  }

  isQuiesced(pid: Pid): boolean {
    return (this.quiesced.get(pid) ?? 0) > 0;
  }

  /** Preempt pid's queues: its running jobs stop issuing accesses until resume(pid). Returns the jobs paused. */
  quiesce(pid: Pid): number {
    const n = this.quiesced.get(pid) ?? 0;
    this.quiesced.set(pid, n + 1);
    if (n > 0) return 0;
    this.preemptions++;
    let paused = 0;
    for (const r of this.running.values()) {
      if (r.job.bos[0]?.pid !== pid) continue;
      this.pause(r);
      paused++;
    }
    this.host.trace('gpu_queues_preempted', { pid, jobs: paused });
    return paused;
  }

  resume(pid: Pid): void {
    const n = this.quiesced.get(pid) ?? 0;
    if (n === 0) throw new Error(`gpu queues: resume(${pid}) without quiesce`);
    if (n > 1) return void this.quiesced.set(pid, n - 1);
    this.quiesced.delete(pid);
    this.host.trace('gpu_queues_resumed', { pid });
    for (const q of Object.values(this.queues)) {
      const head = q[0];
      if (!head || head.bos[0]?.pid !== pid) continue;
      const r = this.running.get(head);
      if (!r) this.start(head);
      else if (!r.stalled) this.proceed(r);
    }
  }

  private start(job: Job): void {
    if (this.isQuiesced(job.bos[0]?.pid)) return; // resume() starts it
    const r: Running = { job, plan: planAccesses(job), next: 0, progressNs: 0, since: -1, timer: -1, stalled: false };
    this.running.set(job, r);
    job.startedAt = this.host.now();
    this.host.trace('gpu_job_start', { job: job.id, queue: job.queue, durationNs: job.durationNs });
    this.proceed(r);
  }

  /** Set the timer for the job's next event (access or end), from its current progress. */
  private proceed(r: Running): void {
    r.since = this.host.now();
    const at = r.next < r.plan.length ? r.plan[r.next].atNs : Math.max(r.job.durationNs, 1);
    r.timer = this.host.timer(at - r.progressNs, () => this.event(r, at));
  }

  private pause(r: Running): void {
    if (r.since < 0) return;
    r.progressNs += this.host.now() - r.since;
    r.since = -1;
    if (r.timer >= 0) this.host.cancelTimer(r.timer);
    r.timer = -1;
  }

  private event(r: Running, at: number): void {
    r.timer = -1;
    r.progressNs = at;
    r.since = this.host.now();
    if (r.next >= r.plan.length) return this.end(r);
    this.access(r);
  }

  private access(r: Running): void {
    const { job } = r;
    const a = r.plan[r.next];
    const addr = a.bo.addr + a.page * PAGE_SIZE;
    const write = job.pattern.write;
    const pte = this.host.lookup(a.bo.pid, addr);
    if (pte && (!write || pte.writable)) {
      this.host.dma(job, a.bo, a.page, pte);
      r.next++;
      return this.proceed(r);
    }
    const handler = this.host.gpuFault;
    if (!handler) {
      this.host.vmFault(job, a.bo.pid, addr, write);
      r.next++;
      return this.proceed(r);
    }
    // A retry fault: the wave stalls (no GPU time passes) until the handler replays or cancels it.
    this.pause(r);
    r.stalled = true;
    handler(job, a.bo.pid, addr, write, (replay) => {
      r.stalled = false;
      if (!replay) {
        this.host.vmFault(job, a.bo.pid, addr, write);
        r.next++;
      }
      if (this.isQuiesced(a.bo.pid)) return; // resume() goes on
      r.since = this.host.now();
      if (replay) this.access(r);
      else this.proceed(r);
    });
  }

  private end(r: Running): void {
    const { job } = r;
    this.running.delete(job);
    job.endedAt = this.host.now();
    const q = this.queues[job.queue];
    q.shift();
    this.host.jobEnded(job); // drops the job from its BOs' reservations
    signalFence(job.fence);
    if (q.length > 0) this.start(q[0]);
  }
}
