// Policy svm-fault (HMM mirror with retry faults, amdgpu XNACK on / nouveau) and its unsafe twin,
// with and without VRAM, against mm under LocalScheduler; the checker judges every run from its trace.
import { describe, expect, it } from 'vitest';
import type { Message } from '@svmsim/runtime';
import { EFAULT, MADV_MERGEABLE, MADV_PAGEOUT, PAGE_SIZE, PROT_READ } from '@svmsim/kernel-mm';
import { checkTrace, formatViolation } from '@svmsim/kernel-mm/checker';
import { DEVICE_PFN_BASE } from '@svmsim/kernel-mm/device-memory';
import { createGpu, type GpuPolicyName } from '@svmsim/gpu-driver';
import type { GpuSubmitResult, GpuWaitResult } from '@svmsim/gpu-driver/gpu-protocol';
import { ret, val, type Step } from '@svmsim/kernel-mm/testing/mm-harness';
import { A, B, PID, RW, boCreate, create, gpu, load, mmapAt, prng, racingScript, readRetryRace, run, store, submit, waitLast } from './gpu-steps.js';

type Svm = { faultWindowPages?: number; vramPages?: number; hotThreshold?: number; faultPermission?: 'access' | 'vma' };
const NO_VRAM: Svm = { vramPages: 0 };

const runSvm = (policy: GpuPolicyName, steps: Step[], svm: Svm, seed = 1, mm: { frames?: number; swapPages?: number } = {}) =>
  run(policy, steps, seed, mm, { svm });

const munmap = (addr: number, pages: number): Step => ({ msg: { type: 'munmap', pid: PID, addr, length: pages * PAGE_SIZE } as never });
const loadsOf = (results: Message[]) => results.filter((r) => r.type === 'cpu_access_result');

describe('svm-fault: a job writes a BO', () => {
  it('every write lands, nothing is walked at submit, one device fault per page touched', async () => {
    const pages = 8;
    const steps: Step[] = [create, mmapAt(A, pages)];
    for (let i = 0; i < pages; i++) steps.push(store(A + i * PAGE_SIZE, 100 + i));
    steps.push(boCreate(A, pages), submit([1], 1, 100_000, 5000), waitLast);
    for (let i = 0; i < pages; i++) steps.push(load(A + i * PAGE_SIZE));
    steps.push(gpu({ type: 'gpu_bo_free', handle: 1 }));
    const { results, check, gpu: g } = await runSvm('svm-fault', steps, NO_VRAM);
    const subs = results.filter((r) => r.type === 'gpu_submit_result') as GpuSubmitResult[];
    expect(subs.map((s) => [s.ret, s.pagesWalked])).toEqual([[0, 0]]);
    expect(results.filter((r) => r.type === 'gpu_wait_result').map(ret)).toEqual([0]);
    expect(loadsOf(results).slice(pages).map(val)).toEqual(Array.from({ length: pages }, (_, i) => 5000 + i));
    expect(check!.violations.map(formatViolation)).toEqual([]);
    expect(check!.stats.dmaWrites).toBe(pages);
    expect(g.deviceFaults).toBe(pages);
    expect(g.deviceFaultsResolved).toBe(pages);
    expect(g.deviceFaultsCancelled).toBe(0);
    expect(g.pagesFaulted).toBe(pages);
    expect(g.hmmRangeFaults).toBe(pages);
    expect(g.faultBatches).toBe(pages); // one job, one wave: one fault at a time
    expect(g.faultLatencyP50Ns).toBeGreaterThanOrEqual(2_000); // at least the interrupt latency
    expect(g.jobErrors).toBe(0);
    expect(g.gpuPageFaults).toBe(0);
    expect(g.warnings).toBe(0);
    expect(g.pagesWalkedTotal).toBe(0);
  });

  it('nouveau_range_fault holds mmap_read_lock around each hmm_range_fault (nouveau_svm.c, v6.6/latest)', async () => {
    const pages = 8;
    const steps: Step[] = [create, mmapAt(A, pages), boCreate(A, pages), submit([1], 1, 100_000), waitLast];
    const { trace, gpu: g } = await runSvm('svm-fault', steps, NO_VRAM);
    const gpuReadLocks = trace.filter((l) => l.ev === 'mmap_lock_acquire_returned' && l.write === false);
    expect(g.hmmRangeFaults).toBe(pages);
    expect(gpuReadLocks).toHaveLength(pages);
    expect(trace.filter((l) => l.ev === 'mmap_lock_released' && l.write === false)).toHaveLength(pages);
  });

  it('a second job on the same pages takes no fault; a wider window maps neighbours with one fault', async () => {
    const pages = 16;
    const steps: Step[] = [create, mmapAt(A, pages), boCreate(A, pages), submit([1], 1, 100_000), waitLast, submit([1], 1, 100_000), waitLast];
    const one = await runSvm('svm-fault', steps, NO_VRAM);
    expect(one.gpu.deviceFaults).toBe(pages);
    expect(one.check!.stats.dmaWrites).toBe(2 * pages);
    const wide = await runSvm('svm-fault', steps, { ...NO_VRAM, faultWindowPages: 4 });
    expect(wide.gpu.deviceFaults).toBe(pages / 4);
    expect(wide.gpu.pagesFaulted).toBe(pages);
    for (const r of [one, wide]) {
      expect(r.check!.violations.map(formatViolation)).toEqual([]);
      expect(r.gpu.jobErrors).toBe(0);
    }
  });

  it('two jobs on two queues fault concurrently: batches hold several faults', async () => {
    const pages = 32;
    const steps: Step[] = [
      create, mmapAt(A, pages), mmapAt(B, pages), boCreate(A, pages), boCreate(B, pages),
      { group: [submit([1], 1, 40_000, 1000, 'gfx') as { to: string; msg: Message }, submit([2], 1, 40_000, 2000, 'compute') as { to: string; msg: Message }] },
      gpu({ type: 'gpu_wait', job: 1 }), gpu({ type: 'gpu_wait', job: 2 }),
    ];
    const { check, gpu: g, results } = await runSvm('svm-fault', steps, NO_VRAM);
    expect(results.filter((r) => r.type === 'gpu_wait_result').map(ret)).toEqual([0, 0]);
    expect(g.deviceFaults).toBe(2 * pages);
    // Each job runs as 16 waves, each stalled on its own fault: a batch holds up to 2 × 16 faults.
    expect(g.faultBatchSizeMax).toBeGreaterThan(2);
    expect(g.faultBatchSizeMax).toBeLessThanOrEqual(32);
    expect(g.faultBatches).toBeLessThan(pages); // 2 × pages faults
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });
});

describe('svm-fault: work grows with the pages touched, not the BO size', () => {
  it('faults and hmm_range_fault calls follow the touched pages; userptr walks the whole BO', async () => {
    const figures = async (policy: GpuPolicyName, pages: number, touch: number) => {
      const steps: Step[] = [create, mmapAt(A, pages), boCreate(A, pages), submit([1], touch, 100_000), waitLast];
      const { gpu: g, check, results } = await runSvm(policy, steps, NO_VRAM, 1, { frames: 1200 });
      expect(check!.violations.map(formatViolation)).toEqual([]);
      expect(results.filter((r) => r.type === 'gpu_wait_result').map(ret)).toEqual([0]);
      return { faults: g.deviceFaults as number, hmm: g.hmmRangeFaults as number, walked: g.pagesWalkedTotal as number, dma: check!.stats.dmaWrites };
    };
    // Same BO, two fractions.
    const few = await figures('svm-fault', 256, 8 / 256);
    const many = await figures('svm-fault', 256, 64 / 256);
    expect(few).toEqual({ faults: 8, hmm: 8, walked: 0, dma: 8 });
    expect(many).toEqual({ faults: 64, hmm: 64, walked: 0, dma: 64 });
    // Same pages touched, BOs 16× apart.
    const small = await figures('svm-fault', 64, 8 / 64);
    const big = await figures('svm-fault', 1024, 8 / 1024);
    expect(big).toEqual(small);
    // userptr walks what the BO holds, whatever is touched.
    const up = await figures('userptr', 1024, 8 / 1024);
    expect(up.walked).toBe(1024);
    expect(up.faults).toBeUndefined();
  });
});

describe('svm-fault: faults that cannot be resolved', () => {
  it('a munmapped page gives a cancelled fault that kills the job with -EFAULT, not a hang; what it wrote before lands', async () => {
    const pages = 8;
    const steps: Step[] = [create, mmapAt(A, pages), boCreate(A, pages), munmap(A + 2 * PAGE_SIZE, 2), submit([1], 1, 100_000, 7000), waitLast];
    for (const i of [0, 1, 4, 5, 6, 7]) steps.push(load(A + i * PAGE_SIZE));
    const { results, check, gpu: g, r } = await runSvm('svm-fault', steps, NO_VRAM);
    expect(r.reason).toBe('app: dumped');
    expect(results.filter((x) => x.type === 'gpu_wait_result').map(ret)).toEqual([EFAULT]);
    expect(g.jobsDone).toBe(1);
    expect(g.jobErrors).toBe(1);
    expect(g.deviceFaultsCancelled).toBeGreaterThanOrEqual(1);
    // One VM fault kills the job: its other waves stop where they are.
    expect(g.gpuPageFaults).toBe(1);
    expect(g.deviceFaultsResolved).toBeLessThanOrEqual(6);
    // A page holds the job's write if its wave got there before the kill, else what it had (nothing).
    loadsOf(results).forEach((x, k) => expect([0, 7000 + [0, 1, 4, 5, 6, 7][k]]).toContain(val(x)));
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });

  it('a write to a read-only VMA is cancelled (-EPERM from hmm_range_fault)', async () => {
    const pages = 4;
    const steps: Step[] = [
      create, mmapAt(A, pages), boCreate(A, pages),
      { msg: { type: 'mprotect', pid: PID, addr: A, length: pages * PAGE_SIZE, prot: PROT_READ } as never },
      submit([1], 1, 50_000), waitLast,
    ];
    const { results, gpu: g, check } = await runSvm('svm-fault', steps, NO_VRAM);
    expect(results.filter((x) => x.type === 'gpu_wait_result').map(ret)).toEqual([EFAULT]);
    expect(g.deviceFaultsCancelled).toBeGreaterThanOrEqual(1);
    expect(g.gpuPageFaults).toBe(1);
    expect(check!.stats.dmaWrites).toBe(0);
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });
});

/**
 * faultPermission: a read-only job over KSM-merged pages. nouveau asks hmm_range_fault for write
 * access only for a GPU write ('access'); kfd whenever the VMA is writable ('vma':
 * svm_range_validate_and_map's readonly = !(vma->vm_flags & VM_WRITE)), so its GPU reads break the
 * COW sharing KSM set up: mm copies every page, and each copy invalidates the GPU's range.
 */
describe('svm-fault: faultPermission', () => {
  const pages = 8;
  const readJob = gpu({ type: 'gpu_submit', bos: [1], pattern: { touch: 1, write: false }, durationNs: 100_000, queue: 'compute' });
  const script = (): Step[] => {
    const steps: Step[] = [create, mmapAt(A, pages)];
    for (let i = 0; i < pages; i++) steps.push(store(A + i * PAGE_SIZE, 77)); // equal content: one KSM page
    steps.push({ msg: { type: 'madvise', pid: PID, addr: A, length: pages * PAGE_SIZE, advice: MADV_MERGEABLE } as never }, { msg: { type: 'ksm_scan' } as never });
    steps.push(boCreate(A, pages), readJob, waitLast);
    for (let i = 0; i < pages; i++) steps.push(load(A + i * PAGE_SIZE));
    return steps;
  };

  it("'access' maps KSM pages read-only for reads; 'vma' write-faults them and breaks the sharing", async () => {
    const access = await runSvm('svm-fault', script(), { ...NO_VRAM, faultPermission: 'access' });
    const vma = await runSvm('svm-fault', script(), { ...NO_VRAM, faultPermission: 'vma' });
    for (const r of [access, vma]) {
      expect(r.results.filter((x) => x.type === 'op_result').map(ret)).toEqual([pages - 1]); // ksm_scan merged 7 into the first
      expect(r.results.filter((x) => x.type === 'gpu_wait_result').map(ret)).toEqual([0]);
      expect(loadsOf(r.results).slice(pages).map(val)).toEqual(Array(pages).fill(77));
      expect(r.check!.violations.map(formatViolation)).toEqual([]);
      expect(r.gpu.jobErrors).toBe(0);
      expect(r.gpu.warnings).toBe(0);
    }
    console.log('faultPermission', Object.fromEntries([['access', access], ['vma', vma]].map(([k, r]: any) => [k, { cow: r.mm.cowCopies, invalidations: r.gpu.invalidations, faults: r.gpu.deviceFaults, hmm: r.gpu.hmmRangeFaults, ebusy: r.gpu.ebusyRetries }])));
    // 'access': the job only reads: nothing is copied, nothing invalidated after the BO exists.
    expect(access.mm.cowCopies).toBe(0);
    expect(access.gpu.invalidations).toBe(0);
    // 'vma': every page's COW is broken by the GPU's read fault, and the copy invalidates the GPU.
    expect(vma.mm.cowCopies).toBe(pages);
    expect(vma.gpu.invalidationsByEvent.MMU_NOTIFY_CLEAR).toBeGreaterThanOrEqual(pages);
    expect(vma.gpu.readonlyVmaRefaults).toBe(0); // the VMA is writable
  });

  it("'vma' on a read-only VMA: the read fault asks again without REQ_WRITE and maps the page read-only", async () => {
    const steps: Step[] = [create, mmapAt(A, pages)];
    for (let i = 0; i < pages; i++) steps.push(store(A + i * PAGE_SIZE, 100 + i));
    steps.push({ msg: { type: 'mprotect', pid: PID, addr: A, length: pages * PAGE_SIZE, prot: PROT_READ } as never }, boCreate(A, pages), readJob, waitLast);
    const { results, gpu: g, check, mm } = await runSvm('svm-fault', steps, { ...NO_VRAM, faultPermission: 'vma' });
    expect(results.filter((x) => x.type === 'gpu_wait_result').map(ret)).toEqual([0]);
    expect(g.readonlyVmaRefaults).toBe(pages);
    expect(g.hmmRangeFaults).toBe(2 * pages);
    expect(g.jobErrors).toBe(0);
    expect(mm.cowCopies).toBe(0);
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });

  it('an unknown faultPermission is refused at creation', () => {
    expect(() => createGpu({ policy: 'svm-fault', svm: { faultPermission: 'write' } }, 'gpu0')).toThrow(/faultPermission must be one of access, vma/);
  });
});

describe('svm-fault: invalidations race faulting jobs over 50 seeds', () => {
  for (const [name, svm] of [['without VRAM', NO_VRAM], ['with VRAM (hot pages migrate)', { vramPages: 8, hotThreshold: 2 }]] as const) {
    it(`${name}: no violation, no hang, every kind of invalidation seen`, async () => {
      const totals = { dmaWrites: 0, devWrites: 0, invalidations: 0, faults: 0, cancelled: 0, readRetries: 0, jobsDone: 0, jobErrors: 0, toVram: 0, toRam: 0 };
      const events = new Set<string>();
      for (let seed = 1; seed <= 50; seed++) {
        const { check, gpu: g, r } = await runSvm('svm-fault', racingScript(seed, { pressure: true }), svm, seed, { frames: 40, swapPages: 128 });
        expect(r.reason, `seed ${seed}`).toBe('app: dumped');
        expect(check!.violations.map(formatViolation), `seed ${seed}`).toEqual([]);
        expect(g.jobsPending, `seed ${seed}`).toBe(0);
        expect(g.faultsPending, `seed ${seed}`).toBe(0);
        expect(g.pendingCalls, `seed ${seed}`).toBe(0);
        expect(g.warnings, `seed ${seed}`).toBe(0);
        expect(g.pagesWalkedTotal, `seed ${seed}`).toBe(0);
        expect(g.deviceFaultsResolved + g.deviceFaultsCancelled, `seed ${seed}`).toBe(g.deviceFaults);
        totals.dmaWrites += check!.stats.dmaWrites;
        totals.devWrites += check!.stats.devWrites;
        totals.invalidations += g.invalidations;
        totals.faults += g.deviceFaults;
        totals.cancelled += g.deviceFaultsCancelled;
        totals.readRetries += g.readRetries;
        totals.jobsDone += g.jobsDone;
        totals.jobErrors += g.jobErrors;
        totals.toVram += g.migratedToVram;
        totals.toRam += g.migratedToRam;
        for (const e of Object.keys(g.invalidationsByEvent)) events.add(e);
      }
      console.log(`svm-fault racing ${name}`, totals, [...events]);
      expect(totals.jobsDone).toBe(400);
      expect(totals.dmaWrites + totals.devWrites).toBeGreaterThan(1000);
      expect(totals.invalidations).toBeGreaterThan(100);
      expect(totals.cancelled).toBeGreaterThan(0); // munmapped / read-only pages
      expect([...events]).toEqual(expect.arrayContaining(['MMU_NOTIFY_CLEAR', 'MMU_NOTIFY_PROTECTION_VMA', 'MMU_NOTIFY_UNMAP']));
      if (svm.vramPages) {
        expect(totals.toVram).toBeGreaterThan(50);
        expect(totals.toRam).toBeGreaterThan(50);
        expect(totals.devWrites).toBeGreaterThan(50);
      }
    }, 600_000);
  }
});


describe('the read_retry race over 50 seeds (16-page fault windows)', () => {
  const svm: Svm = { ...NO_VRAM, faultWindowPages: 16 };

  it('svm-fault: read_retry catches the race (retries happen) and the checker finds nothing', async () => {
    let retries = 0;
    for (let seed = 1; seed <= 50; seed++) {
      const { check, gpu: g, r } = await runSvm('svm-fault', readRetryRace(seed), svm, seed);
      expect(r.reason, `seed ${seed}`).toBe('app: dumped');
      expect(check!.violations.map(formatViolation), `seed ${seed}`).toEqual([]);
      expect(g.faultsPending, `seed ${seed}`).toBe(0);
      retries += g.readRetries;
    }
    console.log(`svm-fault read_retry race: ${retries} read retries in 50 seeds`);
    // 20 at the time of writing (32 before faults of jobs a VM fault had killed stopped being walked).
    expect(retries).toBeGreaterThan(10);
  }, 600_000);

  it('unsafe-svm: binds the stale pfns, and the checker says stale_translation', async () => {
    let caught = 0;
    let skipped = 0;
    for (let seed = 1; seed <= 50; seed++) {
      const { check, gpu: g } = await runSvm('unsafe-svm', readRetryRace(seed), svm, seed);
      expect(g.readRetries, `seed ${seed}`).toBe(0);
      skipped += g.readRetriesSkipped;
      if (check!.violations.some((v) => v.kind === 'stale_translation')) caught++;
    }
    console.log(`unsafe-svm caught in ${caught}/50 seeds, read_retry skipped ${skipped} times`);
    expect(skipped).toBeGreaterThan(10); // 22 at the time of writing
    expect(caught).toBeGreaterThanOrEqual(3);
  }, 600_000);
});

describe('svm-fault with VRAM', () => {
  const waitResults = (results: Message[]) => results.filter((r) => r.type === 'gpu_wait_result') as GpuWaitResult[];

  it('hot pages migrate to VRAM, the GPU writes them there, a CPU load brings each back with its value', async () => {
    const pages = 8;
    const steps: Step[] = [create, mmapAt(A, pages)];
    for (let i = 0; i < pages; i++) steps.push(store(A + i * PAGE_SIZE, 100 + i));
    steps.push(boCreate(A, pages), submit([1], 1, 100_000, 1000), waitLast, submit([1], 1, 100_000, 2000), waitLast);
    // What the end of a run asks for pages mm's dump finds in VRAM: the GPU's copy. The GPU is the
    // only device here, so its VRAM starts at mm's first device pfn (kernel-mm DEVICE_PFN_BASE, 2^28).
    steps.push(gpu({ type: 'gpu_devmem_read', dev_pfns: Array.from({ length: 64 }, (_, i) => 2 ** 28 + i) }));
    for (let i = 0; i < pages; i++) steps.push(load(A + i * PAGE_SIZE));
    const { results, check, gpu: g, trace } = await runSvm('svm-fault', steps, { vramPages: 64, hotThreshold: 2 });
    const devmem = results.find((r) => r.type === 'gpu_devmem_result') as unknown as { values: (number | null)[] };
    expect(devmem.values.filter((v) => v !== null).sort((a, b) => a! - b!)).toEqual(Array.from({ length: pages }, (_, i) => 2000 + i));
    expect(waitResults(results).map((w) => w.ret)).toEqual([0, 0]);
    expect(loadsOf(results).slice(pages).map(val)).toEqual(Array.from({ length: pages }, (_, i) => 2000 + i));
    expect(check!.violations.map(formatViolation)).toEqual([]);
    console.log('vram: hot pages', { toVram: g.migratedToVram, toRam: g.migratedToRam, vramWrites: g.vramWrites, dmaWrites: check!.stats.dmaWrites, faults: g.deviceFaults, p50: g.faultLatencyP50Ns, p99: g.faultLatencyP99Ns });
    expect(g.vramRegistered).toBe(64);
    expect(g.migratedToVram).toBe(pages); // each page once: hot after one fault + one access
    expect(g.migratedToRam).toBe(pages); // each CPU load
    // The second job wrote VRAM (dev_write), never mm; the first wrote system memory.
    expect(g.vramWrites).toBe(pages);
    expect(check!.stats.devWrites).toBe(pages);
    expect(check!.stats.dmaWrites).toBe(pages);
    expect(trace.filter((l) => l.ev === 'dev_write').map((l) => l.value)).toEqual(Array.from({ length: pages }, (_, i) => 2000 + i));
    // Our own MIGRATE invalidations came with our owner.
    expect(g.ownMigrateInvalidations).toBeGreaterThan(0);
    expect(g.invalidationsByEvent.MMU_NOTIFY_MIGRATE).toBeGreaterThanOrEqual(2 * pages);
    // Every page is home again: VRAM pages were freed by mm (device_page_free).
    expect(g.vramPagesInUse).toBe(0);
    expect(g.vramPagesFree).toBe(64);
    expect(g.jobErrors).toBe(0);
    expect(g.warnings).toBe(0);
  });

  it('below the threshold nothing migrates; munmap of VRAM pages frees them', async () => {
    const pages = 4;
    const cold = await runSvm('svm-fault', [create, mmapAt(A, pages), boCreate(A, pages), submit([1], 1, 50_000), waitLast], { vramPages: 64, hotThreshold: 3 });
    expect(cold.gpu.migratedToVram).toBe(0);
    expect(cold.gpu.vramRegistered).toBe(0); // registered at the first migration only
    const steps: Step[] = [create, mmapAt(A, pages), boCreate(A, pages), submit([1], 1, 50_000), waitLast, submit([1], 1, 50_000), waitLast, gpu({ type: 'gpu_bo_free', handle: 1 }), munmap(A, pages)];
    const { gpu: g, check } = await runSvm('svm-fault', steps, { vramPages: 64, hotThreshold: 2 });
    expect(g.migratedToVram).toBe(pages);
    expect(g.vramPagesInUse).toBe(0);
    expect(g.vramPagesFree).toBe(64);
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });

  it('a page skipped at the background-migration limit migrates at a later access', async () => {
    // 96 pages get hot (one fault + one access each) within a 20 µs job: more than
    // BACKGROUND_MIGRATIONS_MAX (32) migrations wait for migrate_mutex at once, so some pages are
    // skipped. The next jobs access them again (their system-page entries are still mapped, so
    // without a fault): each such access of a hot page tries again, until every page is in VRAM.
    const pages = 96;
    const steps: Step[] = [create, mmapAt(A, pages), boCreate(A, pages)];
    steps.push(submit([1], 1, 20_000, 1000), waitLast, submit([1], 1, 200_000, 2000), waitLast, submit([1], 1, 200_000, 3000), waitLast);
    for (let i = 0; i < pages; i++) steps.push(load(A + i * PAGE_SIZE));
    const { results, check, gpu: g } = await runSvm('svm-fault', steps, { vramPages: 128, hotThreshold: 2 }, 1, { frames: 256 });
    expect(waitResults(results).map((w) => w.ret)).toEqual([0, 0, 0]);
    expect(g.migrateWaitersMax).toBe(32);
    expect(g.migrationsSkipped).toBeGreaterThan(0);
    // Before the fix a skipped page never migrated through accesses again (62 of 96 here).
    expect(g.migratedToVram).toBe(pages);
    expect(loadsOf(results).map(val)).toEqual(Array.from({ length: pages }, (_, i) => 3000 + i));
    expect(check!.violations.map(formatViolation)).toEqual([]);
    expect(g.warnings).toBe(0);
  });

  it('eviction under VRAM pressure (8 VRAM pages, BOs of 4 and 8 hot pages) keeps every write', async () => {
    // BO 1 (4 pages) and BO 2 (8 pages) take turns: each migration of one evicts the
    // least-recently-migrated pages of the other; a job on a BO still in VRAM writes VRAM.
    const small = 4;
    const big = 8;
    const steps: Step[] = [create, mmapAt(A, small), mmapAt(B, big), boCreate(A, small), boCreate(B, big)];
    const order = [1, 1, 2, 2, 1, 1, 2];
    order.forEach((bo, j) => steps.push(submit([bo], 1, 100_000, (j + 1) * 1000), waitLast));
    for (let i = 0; i < small; i++) steps.push(load(A + i * PAGE_SIZE));
    for (let i = 0; i < big; i++) steps.push(load(B + i * PAGE_SIZE));
    const { results, check, gpu: g } = await runSvm('svm-fault', steps, { vramPages: 8, hotThreshold: 2 });
    expect(waitResults(results).map((w) => w.ret)).toEqual(order.map(() => 0));
    const lastOn = (bo: number) => (order.lastIndexOf(bo) + 1) * 1000;
    expect(loadsOf(results).map(val)).toEqual([
      ...Array.from({ length: small }, (_, i) => lastOn(1) + i),
      ...Array.from({ length: big }, (_, i) => lastOn(2) + i),
    ]);
    expect(check!.violations.map(formatViolation)).toEqual([]);
    console.log('vram: eviction', { toVram: g.migratedToVram, evictions: g.vramEvictions, evicted: g.vramPagesEvicted, toRam: g.migratedToRam, vramWrites: g.vramWrites, devWrites: check!.stats.devWrites, dmaWrites: check!.stats.dmaWrites });
    expect(g.migratedToVram).toBeGreaterThan(8);
    expect(g.vramEvictions).toBeGreaterThan(0);
    expect(g.vramPagesEvicted).toBeGreaterThan(0);
    expect(g.migratedToVram).toBe(g.vramPagesEvicted + g.migratedToRam); // every page in VRAM left it one way or the other
    expect(check!.stats.devWrites).toBeGreaterThanOrEqual(small + big); // the second job on each BO at least
    expect(check!.stats.devWrites + check!.stats.dmaWrites).toBe(order.reduce((n, bo) => n + (bo === 1 ? small : big), 0));
    expect(g.vramPagesInUse).toBe(0);
    expect(g.jobErrors).toBe(0);
    expect(g.warnings).toBe(0);
  });
});

/**
 * GEM_CLOSE racing the GPU's own migrations. A short job over 16 pages with hotThreshold 2: each
 * page faults once, then its first access makes it hot and queues a background migrate_to_vram
 * (with 8 VRAM pages, each one also evicts an older range first). The job ends while those
 * migrations are still queued on migrate_mutex or between migrate_vma_setup and finalize; the
 * script then frees the BO, reads VRAM (gpu_devmem_read, as the end of a harness run does) and
 * dumps. gpu_bo_free must not return before the GPU's migrations of the BO are done: a dump taken
 * between setup and finalize reads a migration entry, not the page.
 */
describe('svm-fault: gpu_bo_free waits for the migrations in flight', () => {
  const pages = 16;
  const freeThenDump = (vramPages: number, durationNs: number, value: number): Step[] => [
    create, mmapAt(A, pages),
    ...Array.from({ length: pages }, (_, i) => store(A + i * PAGE_SIZE, 10 + i)),
    boCreate(A, pages), submit([1], 1, durationNs, value), waitLast,
    gpu({ type: 'gpu_bo_free', handle: 1 }),
    gpu({ type: 'gpu_devmem_read', dev_pfns: Array.from({ length: vramPages }, (_, i) => DEVICE_PFN_BASE + i) }),
  ];

  for (const vramPages of [64, 8]) {
    it(`${vramPages} VRAM pages: the dump after gpu_bo_free finds every write, no migration open at the free`, async () => {
      const totals = { migrated: 0, dropped: 0, evictions: 0 };
      for (let seed = 1; seed <= 6; seed++) {
        const durationNs = 8_000 + 4_000 * seed;
        const value = 1000 * seed;
        const { results, trace, dump, gpu: g, r } = await runSvm('svm-fault', freeThenDump(vramPages, durationNs, value), { vramPages, hotThreshold: 2 }, seed);
        const at = `${vramPages} VRAM pages, seed ${seed}`;
        expect(r.reason, at).toBe('app: dumped');
        expect(results.filter((x) => x.type === 'gpu_wait_result').map(ret), at).toEqual([0]);
        // The dump with VRAM pages resolved by the GPU's copy: every page holds the job's write.
        const devmem = (results.find((x) => x.type === 'gpu_devmem_result') as unknown as { values: (number | null)[] }).values;
        const final = dump!.map((p) => {
          const i = p.value - DEVICE_PFN_BASE;
          return i >= 0 && i < vramPages ? { ...p, value: devmem[i] ?? NaN } : p;
        });
        expect(final.map((p) => p.value), at).toEqual(Array.from({ length: pages }, (_, i) => value + i));
        expect(checkTrace(trace, final).violations.map(formatViolation), at).toEqual([]);
        // No migrate_vma of ours is open (set up, not finalized) when gpu_bo_free answers.
        const freedAt = trace.findIndex((l) => l.ev === 'send' && (l.msg as Message | undefined)?.type === 'gpu_bo_free_result');
        expect(freedAt, at).toBeGreaterThan(0);
        const open = new Set<number>();
        for (const l of trace.slice(0, freedAt)) {
          if (l.actor !== 'mm') continue;
          if (l.ev === 'migrate_vma_setup' && l.owner === 'gpu0') open.add(l.migration as number);
          if (l.ev === 'migrate_vma_finalize') open.delete(l.migration as number);
        }
        expect([...open], at).toEqual([]);
        expect(g.warnings, at).toBe(0);
        // Each page got hot once: it moved to VRAM, or its migration was still queued at the free.
        expect(g.migratedToVram + g.migrationsDropped, at).toBe(pages);
        totals.migrated += g.migratedToVram;
        totals.dropped += g.migrationsDropped;
        totals.evictions += g.vramEvictions;
      }
      expect(totals.migrated).toBeGreaterThan(6 * pages / 2);
      expect(totals.dropped).toBeGreaterThan(0);
      if (vramPages < pages) expect(totals.evictions).toBeGreaterThan(0);
    }, 120_000);
  }
});

/**
 * Faults of a job a VM fault killed, racing GEM_CLOSE. Job 1 (compute, 16 waves over a 32-page BO
 * whose pages are swapped out) hits munmapped page 0 first; the fault of its wave 1 arrives while
 * that batch is being handled, so it waits for the next batch, which runs after the kill. Job 2
 * (gfx, one page of the same BO) ends a few µs later, while that next batch would be swapping the
 * page in for the dead job; gpu_bo_free, sent at once and waiting on both fences, then tears the BO
 * down. Then the CPU unmaps, remaps and rewrites those pages: no notifier tells the GPU any more.
 * Before the fix the dead job's hmm_range_fault answer arrived after the free, read_retry passed (a
 * notifier remove does not bump the sequence) and the handler mapped a page of a BO that no longer
 * existed: a GPUVM entry nothing would ever invalidate. A new BO over the same pages then wrote
 * through it (stale_translation).
 */
describe('svm-fault: faults of a killed job are not mapped after gpu_bo_free', () => {
  const pages = 32;
  const job = (touch: number, durationNs: number, value: number, queue: 'gfx' | 'compute', shift = 0) =>
    ({ to: 'gpu0', msg: { type: 'gpu_submit', bos: [1], pattern: { touch, write: true, value, shift }, durationNs, queue } as unknown as Message });
  const script = (job2Ns: number, reuse: boolean): Step[] => {
    const steps: Step[] = [create, mmapAt(A, pages)];
    for (let i = 0; i < pages; i++) steps.push(store(A + i * PAGE_SIZE, 100 + i));
    steps.push(boCreate(A, pages), { msg: { type: 'madvise', pid: PID, addr: A, length: pages * PAGE_SIZE, advice: MADV_PAGEOUT } as never }, munmap(A, 1));
    steps.push({ group: [job(1, 320_000, 5000, 'compute'), job(1 / pages, job2Ns, 7000, 'gfx', 0.5)] }, gpu({ type: 'gpu_bo_free', handle: 1 }), { sleepNs: 100_000 });
    steps.push(munmap(A + PAGE_SIZE, pages - 1), mmapAt(A + PAGE_SIZE, pages - 1));
    for (let i = 1; i < pages; i++) steps.push(store(A + i * PAGE_SIZE, 900 + i));
    if (reuse) {
      // A new BO over the same pages: its job must fault every page, not write through a leftover entry.
      steps.push(boCreate(A + PAGE_SIZE, pages - 1), submit([2], 1, 100_000, 3000), waitLast);
      for (let i = 1; i < pages; i++) steps.push(load(A + i * PAGE_SIZE));
    }
    return steps;
  };

  for (const [name, svm] of [['without VRAM', NO_VRAM], ['with VRAM', { vramPages: 8, hotThreshold: 2 }]] as const) {
    it(`${name}: no GPUVM entry of the BO survives the free; a new BO over the pages is clean`, async () => {
      let ofEndedJobs = 0;
      for (let seed = 1; seed <= 4; seed++) {
        for (const job2Ns of [10_000, 12_000, 14_000]) {
          const at = `seed ${seed}, job 2 ${job2Ns} ns`;
          const freed = await runSvm('svm-fault', script(job2Ns, false), svm, seed);
          expect(freed.r.reason, at).toBe('app: dumped');
          expect(freed.results.filter((x) => x.type === 'gpu_bo_free_result').map(ret), at).toEqual([0]);
          expect(freed.gpu.jobErrors, at).toBe(1);
          expect(freed.gpu.gpuvmEntries, at).toBe(0);
          expect(freed.check!.violations.map(formatViolation), at).toEqual([]);
          expect(freed.gpu.faultsPending, at).toBe(0);
          expect(freed.gpu.pendingCalls, at).toBe(0);
          expect(freed.gpu.warnings, at).toBe(0);
          expect(freed.gpu.deviceFaultsResolved + freed.gpu.deviceFaultsCancelled, at).toBe(freed.gpu.deviceFaults);
          ofEndedJobs += freed.gpu.deviceFaultsOfEndedJobs;

          const reused = await runSvm('svm-fault', script(job2Ns, true), svm, seed);
          expect(reused.check!.violations.map(formatViolation), at).toEqual([]);
          expect(reused.results.filter((x) => x.type === 'gpu_wait_result').map(ret), at).toEqual([0]);
          expect(loadsOf(reused.results).slice(-(pages - 1)).map(val), at).toEqual(Array.from({ length: pages - 1 }, (_, i) => 3000 + i));
        }
      }
      // The race happened: faults of the dead job reached a batch, and were cancelled there without mm.
      expect(ofEndedJobs).toBeGreaterThan(0);
    }, 120_000);
  }
});
