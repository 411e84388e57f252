// Policy preempt (KFD userptr eviction): an invalidation stops the process's queues instead of
// waiting for its jobs, and the restore worker revalidates the BOs and resumes them.
import { describe, expect, it } from 'vitest';
import { MADV_PAGEOUT, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '@svmsim/kernel-mm';
import { formatViolation } from '@svmsim/kernel-mm/checker';
import type { GpuSubmitResult } from '@svmsim/gpu-driver/gpu-protocol';
import { val, type Step } from '@svmsim/kernel-mm/testing/mm-harness';
import { A, PID, ackAndJobEnd, boCreate, create, gpu, load, mmapAt, racingScript, run, store, submit, waitLast } from './gpu-steps.js';

describe('preempt: a blockable invalidation of a BO under a long job', () => {
  const pages = 8;
  const jobNs = 10_000_000;
  const steps: Step[] = [create, mmapAt(A, pages)];
  for (let i = 0; i < pages; i++) steps.push(store(A + i * PAGE_SIZE, 1 + i));
  steps.push(
    boCreate(A, pages),
    submit([1], 1, jobNs, 7000, 'compute'),
    { sleepNs: jobNs / 4 },
    { msg: { type: 'madvise', pid: PID, addr: A, length: pages * PAGE_SIZE, advice: MADV_PAGEOUT } as never },
    waitLast,
  );
  for (let i = 0; i < pages; i++) steps.push(load(A + i * PAGE_SIZE));

  it('is acked after the preemption, long before the job ends; the job resumes after the restore and its writes land', async () => {
    const { trace, check, gpu: g, results } = await run('preempt', steps);
    const { acks, ends } = ackAndJobEnd(trace);
    expect(acks.length).toBeGreaterThan(0);
    expect(ends).toHaveLength(1);
    // Acked within the preemption (100 µs) plus a TLB flush or so, not after the 10 ms job.
    expect(g.invalidateWaitMaxNs).toBeLessThan(200_000);
    for (const t of acks) expect(t).toBeLessThan(ends[0]);
    expect(g.preemptions).toBe(1);
    expect(g.restores).toBe(1);
    expect(g.queuesStoppedNs).toBeGreaterThanOrEqual(1_000_000); // AMDGPU_USERPTR_RESTORE_DELAY_MS
    // The restore re-walked the whole BO (the pages came back from swap).
    expect(g.restorePagesWalked).toBeGreaterThanOrEqual(pages);
    // The job's GPU time stopped while its queue was off: it ends later than submit + duration + stop.
    const start = trace.find((l) => l.ev === 'gpu_job_start')!.t;
    expect(ends[0] - start).toBeGreaterThanOrEqual(jobNs + g.queuesStoppedNs - 1);
    expect(g.jobErrors).toBe(0);
    const loads = results.filter((r) => r.type === 'cpu_access_result').slice(pages);
    expect(loads.map(val)).toEqual(Array.from({ length: pages }, (_, i) => 7000 + i));
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });

  it('pages walked at submit: none (user-mode queues), against the whole BO under userptr', async () => {
    const s: Step[] = [create, mmapAt(A, 64), boCreate(A, 64), submit([1], 0.02, 50_000), waitLast, submit([1], 0.02, 50_000), waitLast];
    const { results } = await run('preempt', s);
    const subs = results.filter((r) => r.type === 'gpu_submit_result') as GpuSubmitResult[];
    expect(subs.map((x) => [x.ret, x.pagesWalked])).toEqual([
      [0, 0],
      [0, 0],
    ]);
  });
});

describe('preempt: invalidations during the restore', () => {
  it('make the worker retry (1 ms later) and the queues stay stopped until a restore succeeds; nothing is lost', async () => {
    const pages = 16;
    let retries = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const steps: Step[] = [create, mmapAt(A, pages)];
      for (let i = 0; i < pages; i++) steps.push(store(A + i * PAGE_SIZE, 1 + i));
      // Two BOs: a retried restore must still rebind the one an earlier attempt already walked.
      steps.push(boCreate(A, pages / 2), boCreate(A + (pages / 2) * PAGE_SIZE, pages / 2), submit([1, 2], 1, 4_000_000, 9000, 'compute'));
      // Page the BO out every 0.25–0.5 ms for 6 ms: some land while the restore worker walks the BO.
      for (let k = 0; k < 16; k++) steps.push({ sleepNs: 250_000 + ((seed * 7 + k * 13) % 5) * 60_000 }, { msg: { type: 'madvise', pid: PID, addr: A, length: pages * PAGE_SIZE, advice: MADV_PAGEOUT } as never });
      steps.push(waitLast, { sleepNs: 3_000_000 });
      for (let i = 0; i < pages; i++) steps.push(load(A + i * PAGE_SIZE));
      const { check, gpu: g, results } = await run('preempt', steps, seed);
      expect(check!.violations.map(formatViolation), `seed ${seed}`).toEqual([]);
      expect(g.jobErrors, `seed ${seed}`).toBe(0);
      expect(g.processesStopped, `seed ${seed}`).toBe(0);
      const loads = results.filter((r) => r.type === 'cpu_access_result').slice(pages);
      expect(loads.map(val), `seed ${seed}`).toEqual(Array.from({ length: pages }, (_, i) => 9000 + (i % (pages / 2))));
      retries += g.restoreRetries;
    }
    expect(retries).toBeGreaterThan(0);
  });
});

describe('preempt: jobs racing the CPU over 50 seeds', () => {
  it('no violation; queues are preempted and restored; writes land', async () => {
    const totals = { dmaWrites: 0, preemptions: 0, restores: 0, restoreRetries: 0, jobsDone: 0, jobErrors: 0 };
    for (let seed = 1; seed <= 50; seed++) {
      // The restore worker runs 1 ms after an eviction: leave it time before the BOs go.
      const steps = racingScript(seed);
      steps.splice(steps.length - 2, 0, { sleepNs: 3_000_000 });
      const { check, gpu: g, r } = await run('preempt', steps, seed);
      expect(r.reason, `seed ${seed}`).toBe('app: dumped');
      expect(check!.violations.map(formatViolation), `seed ${seed}`).toEqual([]);
      expect(g.jobsPending, `seed ${seed}`).toBe(0);
      expect(g.warnings, `seed ${seed}`).toBe(0);
      // Nothing is left stopped: every eviction was restored.
      expect(g.processesStopped, `seed ${seed}`).toBe(0);
      totals.dmaWrites += check!.stats.dmaWrites;
      totals.preemptions += g.preemptions;
      totals.restores += g.restores;
      totals.restoreRetries += g.restoreRetries;
      totals.jobsDone += g.jobsDone;
      totals.jobErrors += g.jobErrors;
    }
    expect(totals.dmaWrites).toBeGreaterThan(1000);
    expect(totals.jobsDone).toBeGreaterThan(200);
    expect(totals.preemptions).toBeGreaterThan(50);
    expect(totals.restores).toBe(totals.preemptions);
    console.log('preempt racing totals', totals);
  }, 300_000);
});

describe('preempt: per-process compute queues', () => {
  it("stopping one process's queues leaves another process's compute job running", async () => {
    const pages = 4;
    const jobNs = 10_000_000;
    const mmap2: Step = { msg: { type: 'mmap', pid: 2, addr: A, length: pages * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED } as never };
    const steps: Step[] = [
      create, create, mmapAt(A, pages), mmap2,
      boCreate(A, pages), gpu({ type: 'gpu_bo_create', pid: 2, addr: A, pages }),
      submit([1], 1, jobNs, 100, 'compute'), submit([2], 1, jobNs, 200, 'compute'),
      { sleepNs: jobNs / 4 },
      { msg: { type: 'madvise', pid: PID, addr: A, length: pages * PAGE_SIZE, advice: MADV_PAGEOUT } as never },
      gpu({ type: 'gpu_wait', job: 1 }), gpu({ type: 'gpu_wait', job: 2 }),
    ];
    const { trace, gpu: g, check } = await run('preempt', steps);
    const ends = new Map(trace.filter((l) => l.ev === 'gpu_job_end').map((l) => [l.job as number, l.t]));
    const starts = new Map(trace.filter((l) => l.ev === 'gpu_job_start').map((l) => [l.job as number, l.t]));
    expect(g.preemptions).toBe(1);
    // Process 2's job ran in parallel and was never stopped; process 1's took its stop on top.
    expect(ends.get(2)! - starts.get(2)!).toBeCloseTo(jobNs, -3);
    expect(ends.get(1)! - starts.get(1)!).toBeGreaterThan(jobNs + 1_000_000);
    expect(starts.get(2)!).toBeLessThan(jobNs / 4);
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });
});
