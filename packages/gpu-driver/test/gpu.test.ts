// The GPU actor against mm under LocalScheduler: a script actor plays the app (mmap, CPU stores,
// GEM_USERPTR, CS, WAIT_CS, GEM_CLOSE) and races munmap / mprotect / MADV_PAGEOUT / reclaim with
// the jobs; the data oracle (kernel-mm's checker) judges every run from its trace.
import { describe, expect, it } from 'vitest';
import { EINVAL, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '@svmsim/kernel-mm';
import { formatViolation } from '@svmsim/kernel-mm/checker';
import type { GpuSubmitResult } from '@svmsim/gpu-driver/gpu-protocol';
import { ret, val, type Step } from '@svmsim/kernel-mm/testing/mm-harness';
import { A, B, PID, ackAndJobEnd, boCreate, create, gpu, load, mmapAt, prng, racingScript, run, store, submit, waitLast } from './gpu-steps.js';

describe('a job writes a userptr BO', () => {
  for (const policy of ['pin', 'userptr'] as const) {
    it(`${policy}: the DMA writes land and the checker finds nothing`, async () => {
      const pages = 8;
      const steps: Step[] = [create, mmapAt(A, pages)];
      for (let i = 0; i < pages; i++) steps.push(store(A + i * PAGE_SIZE, 100 + i));
      steps.push(boCreate(A, pages), submit([1], 1, 100_000, 5000), waitLast);
      for (let i = 0; i < pages; i++) steps.push(load(A + i * PAGE_SIZE));
      steps.push(gpu({ type: 'gpu_bo_free', handle: 1 }));
      const { results, check, gpu: g } = await run(policy, steps);
      const creates = results.filter((r) => r.type === 'gpu_bo_create_result');
      expect(creates.map(ret)).toEqual([1]);
      const waits = results.filter((r) => r.type === 'gpu_wait_result');
      expect(waits.map(ret)).toEqual([0]);
      const loads = results.filter((r) => r.type === 'cpu_access_result').slice(pages); // after the stores
      expect(loads.map(val)).toEqual(Array.from({ length: pages }, (_, i) => 5000 + i));
      expect(check!.violations.map(formatViolation)).toEqual([]);
      expect(check!.stats.dmaWrites).toBe(pages);
      expect(g.jobsDone).toBe(1);
      expect(g.jobErrors).toBe(0);
      if (policy === 'pin') expect(g.pagesPinned).toBe(pages), expect(g.pagesUnpinned).toBe(pages);
    });
  }
});

describe('userptr walks every page at every submit', () => {
  it('pages walked per submission = BO size whatever the fraction touched; pin walks nothing', async () => {
    const pages = 64;
    const fractions = [0.02, 0.25, 1];
    const steps: Step[] = [create, mmapAt(A, pages), boCreate(A, pages)];
    for (const f of fractions) steps.push(submit([1], f, 50_000), waitLast);
    for (const policy of ['userptr', 'pin'] as const) {
      const { results, check, gpu: g } = await run(policy, steps);
      const subs = results.filter((r) => r.type === 'gpu_submit_result') as GpuSubmitResult[];
      expect(subs.map((s) => s.ret)).toEqual([0, 0, 0]);
      expect(subs.map((s) => s.pagesWalked)).toEqual(policy === 'userptr' ? [pages, pages, pages] : [0, 0, 0]);
      expect(g.pagesWalkedPerSubmissionMean).toBe(policy === 'userptr' ? pages : 0);
      // …while the jobs touched only their fraction.
      expect(check!.stats.dmaWrites).toBe(1 + 16 + 64);
      expect(check!.violations.map(formatViolation)).toEqual([]);
    }
  });
});

describe('a blockable invalidation of a BO under a running job', () => {
  const pages = 8;
  const jobNs = 10_000_000;
  const steps: Step[] = [create, mmapAt(A, pages)];
  for (let i = 0; i < pages; i++) steps.push(store(A + i * PAGE_SIZE, 1 + i));
  steps.push(boCreate(A, pages), submit([1], 1, jobNs), { msg: { type: 'madvise', pid: PID, addr: A, length: pages * PAGE_SIZE, advice: MADV_PAGEOUT } as never }, waitLast);

  it('userptr: is acked only after the job fence signals', async () => {
    const { trace, check, gpu: g } = await run('userptr', steps);
    const { acks, ends } = ackAndJobEnd(trace);
    expect(acks.length).toBeGreaterThan(0);
    expect(ends).toHaveLength(1);
    for (const t of acks) expect(t).toBeGreaterThanOrEqual(ends[0]);
    expect(g.invalidationsByEvent.MMU_NOTIFY_CLEAR ?? 0).toBeGreaterThan(0);
    expect(g.invalidateWaitMaxNs).toBeGreaterThan(jobNs / 2);
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });

  it('unsafe-userptr: is acked before the job ends, and the checker says stale_translation', async () => {
    const { trace, check, gpu: g } = await run('unsafe-userptr', steps);
    const { acks, ends } = ackAndJobEnd(trace);
    expect(acks.length).toBeGreaterThan(0);
    expect(Math.min(...acks)).toBeLessThan(ends[0]);
    expect(g.unsafeEarlyAcks).toBeGreaterThan(0);
    expect(check!.violations.some((v) => v.kind === 'stale_translation')).toBe(true);
  });
});

describe('jobs racing the CPU over 50 seeds', () => {
  it('userptr: no violation; invalidations of every kind happen and writes land', async () => {
    const totals = { dmaWrites: 0, invalidations: 0, resubmissions: 0, submitErrors: 0, jobsDone: 0, waited: 0 };
    const events = new Set<string>();
    for (let seed = 1; seed <= 50; seed++) {
      const { check, gpu: g, r } = await run('userptr', racingScript(seed), seed);
      expect(r.reason, `seed ${seed}`).toBe('app: dumped');
      expect(check!.violations.map(formatViolation), `seed ${seed}`).toEqual([]);
      expect(g.jobsPending, `seed ${seed}`).toBe(0);
      expect(g.warnings, `seed ${seed}`).toBe(0);
      totals.dmaWrites += check!.stats.dmaWrites;
      totals.invalidations += g.invalidations;
      totals.resubmissions += g.resubmissions;
      totals.jobsDone += g.jobsDone;
      totals.submitErrors += Object.values(g.submitErrors as Record<string, number>).reduce((a, b) => a + b, 0);
      totals.waited += g.invalidateWaitMaxNs > 0 ? 1 : 0;
      for (const e of Object.keys(g.invalidationsByEvent)) events.add(e);
    }
    expect(totals.dmaWrites).toBeGreaterThan(1000);
    expect(totals.jobsDone).toBeGreaterThan(200);
    expect(totals.invalidations).toBeGreaterThan(100);
    expect(totals.waited).toBeGreaterThan(10);
    expect([...events].sort()).toEqual(expect.arrayContaining(['MMU_NOTIFY_CLEAR', 'MMU_NOTIFY_PROTECTION_VMA', 'MMU_NOTIFY_UNMAP']));
    console.log('userptr racing totals', totals, [...events]);
  }, 300_000);

  it('unsafe-userptr: the checker catches stale translations', async () => {
    let caught = 0;
    for (let seed = 1; seed <= 50; seed++) {
      const { check } = await run('unsafe-userptr', racingScript(seed), seed);
      if (check!.violations.some((v) => v.kind === 'stale_translation')) caught++;
    }
    console.log(`unsafe-userptr caught in ${caught}/50 seeds`);
    expect(caught).toBeGreaterThan(0);
  }, 300_000);

  it('pin under reclaim pressure: no violation, pinned pages are never reclaimed', async () => {
    let swapOuts = 0;
    let dmaWrites = 0;
    for (let seed = 1; seed <= 50; seed++) {
      const rnd = prng(seed);
      const pages = 16;
      const other = 48;
      const steps: Step[] = [create, mmapAt(A, pages), mmapAt(B, other)];
      for (let i = 0; i < pages; i++) steps.push(store(A + i * PAGE_SIZE, seed * 1000 + i));
      steps.push(boCreate(A, pages));
      for (let round = 0; round < 6; round++) {
        const dur = 20_000 + Math.floor(rnd() * 200_000);
        steps.push(submit([1], [0.25, 0.5, 1][Math.floor(rnd() * 3)], dur));
        // Pressure: touch the other region (more than memory holds), ask reclaim, page out the BO itself.
        const pressure: Step[] = [];
        for (let i = 0; i < 12; i++) pressure.push(store(B + Math.floor(rnd() * other) * PAGE_SIZE, round * 100 + i));
        pressure.push({ msg: { type: 'reclaim', nr_pages: 16 } as never });
        if (rnd() < 0.5) pressure.push({ msg: { type: 'madvise', pid: PID, addr: A, length: pages * PAGE_SIZE, advice: MADV_PAGEOUT } as never });
        steps.push({ sleepNs: Math.floor(rnd() * dur) }, ...pressure, waitLast);
      }
      steps.push(gpu({ type: 'gpu_bo_free', handle: 1 }));
      const { check, gpu: g, trace, mm, r } = await run('pin', steps, seed, { frames: 40, swapPages: 128 });
      expect(r.reason, `seed ${seed}`).toBe('app: dumped');
      expect(check!.violations.map(formatViolation), `seed ${seed}`).toEqual([]);
      expect(g.invalidations, `seed ${seed}`).toBe(0);
      expect(g.jobErrors, `seed ${seed}`).toBe(0);
      // Every DMA went to a frame the process still maps at that address: reclaim skipped the pins.
      const dma = trace.filter((l) => l.ev === 'dma_write' && l.dev === 'gpu0');
      expect(dma.every((l) => l.pte_ok === true && l.pinned === true), `seed ${seed}`).toBe(true);
      dmaWrites += dma.length;
      swapOuts += (mm.swapOuts as number) ?? 0;
    }
    expect(dmaWrites).toBeGreaterThan(500);
    expect(swapOuts).toBeGreaterThan(100); // there was pressure: other pages went to swap
  }, 300_000);
});

describe('ioctl edges', () => {
  it('GEM_CLOSE during a submission\'s walk waits for the submission, then for its job', async () => {
    const pages = 64;
    const steps: Step[] = [create, mmapAt(A, pages), boCreate(A, pages), { group: [submit([1], 1, 50_000, 3000) as never, gpu({ type: 'gpu_bo_free', handle: 1 }) as never] }];
    for (let i = 0; i < 4; i++) steps.push(load(A + i * PAGE_SIZE));
    const { results, check, gpu: g } = await run('userptr', steps);
    const sub = results.find((r) => r.type === 'gpu_submit_result') as GpuSubmitResult;
    expect(sub.ret).toBe(0);
    expect(results.find((r) => r.type === 'gpu_bo_free_result')).toMatchObject({ ret: 0 });
    // The job ran on pages that were still subscribed: every write landed, nothing stale.
    expect(g.jobsDone).toBe(1);
    expect(g.bos).toBe(0);
    expect(results.filter((r) => r.type === 'cpu_access_result').map(val)).toEqual([3000, 3001, 3002, 3003]);
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });

  it('a job over BOs of two processes is refused (-EINVAL); WAIT_CS of a job never submitted: -EINVAL', async () => {
    const steps: Step[] = [
      create, create, mmapAt(A, 4),
      { msg: { type: 'mmap', pid: 2, addr: A, length: 4 * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED } as never },
      boCreate(A, 4), gpu({ type: 'gpu_bo_create', pid: 2, addr: A, pages: 4 }),
      submit([1, 2], 1, 10_000), gpu({ type: 'gpu_wait', job: 99 }),
    ];
    const { results } = await run('userptr', steps);
    expect(results.filter((r) => r.type === 'gpu_bo_create_result').map(ret)).toEqual([1, 2]);
    expect(results.filter((r) => r.type === 'gpu_submit_result').map(ret)).toEqual([EINVAL]);
    expect(results.filter((r) => r.type === 'gpu_wait_result').map(ret)).toEqual([EINVAL]);
  });
});
