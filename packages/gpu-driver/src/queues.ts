// The GPU's queues and how a job runs on them. Jobs of one queue run one after the other; queues
// run concurrently. There is one gfx ring for everyone (amdgpu's CS jobs share it) and a compute
// queue per process (KFD's user-mode queues are per process; amdgpu's several compute rings are
// close enough), so preempting one process never holds another's compute jobs. A running job is split into `waves` (groups of GPU
// threads, each its own instruction stream): wave w issues accesses w, w + W, w + 2W… of the job's
// plan (job.ts planAccesses) one at a time at fixed points of the job's GPU time, then waits for
// the job's duration to pass. Each wave holds exactly one timer: its next access, or its end. The
// job ends when every wave has.
//
// GPU time only advances while a wave runs. Two things stop it:
//   preemption   quiesce(pid) (kgd2kfd_quiesce_mm: the HWS unmaps the process's queues) pauses every
//                wave of pid's running jobs and keeps its queued ones from starting, until resume(pid).
//   a retry fault an access that finds no GPUVM entry (or a read-only one for a write) raises a GPU
//                page fault. A policy with a fault handler (svm-fault: XNACK on, nouveau's
//                replayable faults) stalls that wave, and only that wave, until the handler replays
//                the fault; the access is then tried again. So W waves put up to W faults in the
//                fault buffer at once, which the handler takes as one batch. Without a handler
//                (gfx under pin/userptr, XNACK off), or when the handler cancels the fault, it is a
//                VM fault: the access is dropped and the job is killed, every wave stops and its
//                fence signals with the error (amdgpu_job_timedout / the context marked guilty;
//                nouveau's FAULT_CANCEL kills the channel).
import { PAGE_SIZE, type Pid } from '@svmsim/kernel-mm';
import type { Bo } from './bo.js';
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
  /** The policy's atomics need VRAM: an atomic access through a system-memory entry faults (Policy.atomicNeedsVram). */
  atomicNeedsVram?: boolean;
  /** A VM fault (an access dropped). */
  vmFault(job: Job, pid: Pid, addr: number, write: boolean): void;
  trace(ev: string, fields: Record<string, unknown>): void;
  /** KFD: the HWS is asked to unmap a process's queues running these jobs (a hung one never unmaps). */
  preempting?(running: Job[]): void;
  /** The job reached the hardware (drm_sched's run_job: where its timeout starts). */
  jobStarted?(job: Job): void;
  jobEnded(job: Job): void;
}

/** One wave of a running job. */
interface Wave {
  run: Running;
  /** Its accesses, in order. */
  plan: PlannedAccess[];
  /** The next access to issue. */
  next: number;
  /** GPU time consumed, ns, up to `since`. */
  progressNs: number;
  /** When the wave last (re)started running; -1 while paused or stalled. */
  since: number;
  timer: number;
  stalled: boolean;
  done: boolean;
}

/** The execution state of a job on its queue. */
interface Running {
  job: Job;
  waves: Wave[];
  wavesLeft: number;
}

export class GpuQueues {
  /** 'gfx', or 'compute/<pid>': the jobs of each queue, the running one first. */
  private readonly queues = new Map<string, Job[]>();
  private readonly running = new Map<Job, Running>();
  /** Processes whose queues are preempted, with how many quiesce() calls hold them. */
  private readonly quiesced = new Map<Pid, number>();
  /** When each preempted process's queues stopped. */
  private readonly stoppedSince = new Map<Pid, number>();
  preemptions = 0;
  /** Time processes' queues spent stopped, ns, over the stops that have ended (overlapping holds counted once). */
  stoppedNs = 0;

  /** waves: how many waves a job runs as (>= 1). */
  constructor(
    private readonly host: QueueHost,
    private readonly waves: number,
  ) {
    if (!Number.isInteger(waves) || waves < 1) throw new Error(`gpu queues: waves must be a whole number >= 1, got ${waves}`);
  }

  push(job: Job): void {
    const key = queueOf(job);
    let q = this.queues.get(key);
    if (!q) this.queues.set(key, (q = []));
    q.push(job);
    if (q.length === 1) this.start(job);
  }

  /** Jobs queued or running. */
  get pending(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  /** Processes whose queues are stopped now. */
  get stoppedProcesses(): number {
    return this.quiesced.size;
  }

  isQuiesced(pid: Pid): boolean {
    return (this.quiesced.get(pid) ?? 0) > 0;
  }

  /** Preempt pid's queues: its running jobs stop issuing accesses until resume(pid). */
  quiesce(pid: Pid): void {
    const n = this.quiesced.get(pid) ?? 0;
    this.quiesced.set(pid, n + 1);
    if (n > 0) return;
    this.preemptions++;
    this.stoppedSince.set(pid, this.host.now());
    let paused = 0;
    const jobs: Job[] = [];
    for (const r of this.running.values()) {
      if (pidOf(r.job) !== pid) continue;
      for (const w of r.waves) this.pause(w);
      jobs.push(r.job);
      paused++;
    }
    this.host.preempting?.(jobs);
    this.host.trace('gpu_queues_preempted', { pid, jobs: paused });
  }

  resume(pid: Pid): void {
    const n = this.quiesced.get(pid) ?? 0;
    if (n === 0) throw new Error(`gpu queues: resume(${pid}) without quiesce`);
    if (n > 1) return void this.quiesced.set(pid, n - 1);
    this.quiesced.delete(pid);
    this.stoppedNs += this.host.now() - this.stoppedSince.get(pid)!;
    this.stoppedSince.delete(pid);
    this.host.trace('gpu_queues_resumed', { pid });
    for (const q of this.queues.values()) {
      const head = q[0];
      if (!head || pidOf(head) !== pid) continue;
      const r = this.running.get(head);
      if (!r) this.start(head);
      else for (const w of r.waves) if (!w.stalled && !w.done) this.proceed(w);
    }
  }

  private start(job: Job): void {
    if (this.isQuiesced(pidOf(job))) return; // resume() starts it
    const plan = planAccesses(job);
    const n = Math.max(1, Math.min(this.waves, plan.length));
    const r: Running = { job, waves: [], wavesLeft: n };
    for (let i = 0; i < n; i++) {
      r.waves.push({ run: r, plan: plan.filter((_, k) => k % n === i), next: 0, progressNs: 0, since: -1, timer: -1, stalled: false, done: false });
    }
    this.running.set(job, r);
    job.startedAt = this.host.now();
    this.host.trace('gpu_job_start', { job: job.id, queue: job.queue, durationNs: job.durationNs, waves: n });
    this.host.jobStarted?.(job);
    for (const w of r.waves) this.proceed(w);
  }

  /** Whether the job runs now (at the head of its queue, started). */
  isRunning(job: Job): boolean {
    return this.running.has(job);
  }

  /** Every job queued or running, running ones first (a GPU reset's victims). */
  allJobs(): Job[] {
    const out: Job[] = [];
    for (const q of this.queues.values()) out.push(...q);
    return out.sort((a, b) => Number(this.running.has(b)) - Number(this.running.has(a)));
  }

  /**
   * End a job with `error` (its fence signals with it): a timeout's soft recovery or a reset. A
   * running job's waves stop; a queued one leaves its queue without running.
   */
  abort(job: Job, error: number): void {
    if (job.fence.signalled) return;
    job.error = error;
    const r = this.running.get(job);
    if (r) {
      for (const w of r.waves) {
        this.pause(w);
        w.done = true;
      }
      return this.end(r);
    }
    const key = queueOf(job);
    const q = this.queues.get(key);
    const i = q ? q.indexOf(job) : -1;
    if (!q || i < 0) throw new Error(`gpu queues: abort of job ${job.id}, which is neither queued nor running`);
    q.splice(i, 1);
    if (q.length === 0) this.queues.delete(key);
    job.endedAt = this.host.now();
    this.host.jobEnded(job);
    signalFence(job.fence);
  }

  /** Set the wave's timer for its next event (access or end), from its current progress. */
  private proceed(w: Wave): void {
    w.since = this.host.now();
    const at = w.next < w.plan.length ? w.plan[w.next].atNs : Math.max(w.run.job.durationNs, 1);
    w.timer = this.host.timer(at - w.progressNs, () => this.event(w, at));
  }

  private pause(w: Wave): void {
    if (w.since < 0) return;
    w.progressNs += this.host.now() - w.since;
    w.since = -1;
    if (w.timer >= 0) this.host.cancelTimer(w.timer);
    w.timer = -1;
  }

  private event(w: Wave, at: number): void {
    w.timer = -1;
    w.progressNs = at;
    w.since = this.host.now();
    if (w.next >= w.plan.length) return this.waveDone(w);
    this.access(w);
  }

  private access(w: Wave): void {
    const { job } = w.run;
    const a = w.plan[w.next];
    const addr = a.bo.addr + a.page * PAGE_SIZE;
    const write = job.pattern.write || job.pattern.atomic === true;
    const pte = this.host.lookup(a.bo.pid, addr);
    const atomicFault = job.pattern.atomic === true && this.host.atomicNeedsVram === true && pte?.vram !== true;
    if (pte && (!write || pte.writable) && !atomicFault) {
      this.host.dma(job, a.bo, a.page, pte);
      w.next++;
      return this.proceed(w);
    }
    const handler = this.host.gpuFault;
    if (!handler) return this.kill(w.run, a.bo.pid, addr, write);
    // A retry fault: the wave stalls (no GPU time passes for it) until the handler replays or cancels it.
    this.pause(w);
    w.stalled = true;
    handler(job, a.bo.pid, addr, write, (replay) => {
      w.stalled = false;
      if (!this.running.has(job)) return; // killed by another wave's VM fault meanwhile
      if (!replay) return this.kill(w.run, a.bo.pid, addr, write);
      if (this.isQuiesced(a.bo.pid)) return; // resume() goes on
      w.since = this.host.now();
      this.access(w);
    });
  }

  /** A VM fault: the access is dropped, every wave stops, the job ends in error. */
  private kill(r: Running, pid: Pid, addr: number, write: boolean): void {
    this.host.vmFault(r.job, pid, addr, write);
    for (const w of r.waves) {
      this.pause(w);
      w.done = true;
    }
    this.end(r);
  }

  private waveDone(w: Wave): void {
    w.done = true;
    w.since = -1;
    // A hung job's work is over but its fence never signals: it stays at the head of its queue
    // until a timeout or a reset aborts it.
    if (--w.run.wavesLeft === 0 && !w.run.job.hang) this.end(w.run);
  }

  private end(r: Running): void {
    const { job } = r;
    this.running.delete(job);
    job.endedAt = this.host.now();
    const q = this.queues.get(queueOf(job))!;
    if (q[0] !== job) throw new Error(`gpu queues: job ${job.id} ended but is not the head of its ${job.queue} queue`);
    q.shift();
    this.host.jobEnded(job); // drops the job from its BOs' reservations
    signalFence(job.fence);
    if (q.length > 0) this.start(q[0]);
    else if (q === this.queues.get(queueOf(job))) this.queues.delete(queueOf(job));
  }
}

/** The process a job runs for: that of its BOs (a job's BOs belong to one process: gpu-actor checks). */
const pidOf = (job: Job): Pid => job.bos[0]?.pid;

/** The queue a job goes to: the shared gfx ring, or its process's compute queue. */
const queueOf = (job: Job): string => (job.queue === 'gfx' ? 'gfx' : `compute/${pidOf(job)}`);
