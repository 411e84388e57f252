// Policy gpusvm (the DRM GPU SVM layer as xe uses it) and its unsafe twin against mm under
// LocalScheduler: range sizing (drm_gpusvm_range_chunk_size), a partial munmap dropping a whole
// range for the garbage collector, the atomic time slice on migrate_to_ram, the checker's verdict
// over many seeds, and unsafe-gpusvm (no drm_gpusvm_range_pages_valid before binding) caught.
import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '@svmsim/kernel-mm';
import { formatViolation } from '@svmsim/kernel-mm/checker';
import type { GpuConfig, GpuPolicyName } from '@svmsim/gpu-driver';
import { DrmGpusvm, XE_FAULT_CHUNK_PAGES } from '@svmsim/gpu-driver/gpusvm-ranges';
import type { Step } from '@svmsim/kernel-mm/testing/mm-harness';
import { A, PID, boCreate, create, gpu, load, mmapAt, racingScript, readRetryRace, run, store, submit, waitLast } from './gpu-steps.js';

const runGpusvm = (policy: GpuPolicyName, steps: Step[], cfg: Partial<GpuConfig> = {}, seed = 1, mm: { frames?: number; swapPages?: number } = {}) =>
  run(policy, steps, seed, mm, cfg);

describe('drm_gpusvm_range_chunk_size (xe: 2 MiB, 64 KiB, 4 KiB in 512 MiB notifiers)', () => {
  const always = (_s: number, _e: number, then: (ok: boolean) => void) => then(true);
  const sizeAt = (g: DrmGpusvm, vpn: number, b: { vmaStart: number; vmaEnd: number; gpuvaStart: number; gpuvaEnd: number }, check = always, threshold = 16) => {
    let got = NaN;
    const n = g.notifierFind(1, vpn) ?? g.notifierAlloc(1, vpn);
    g.chunkSize(n, vpn, b, threshold, check, (p) => (got = p));
    return got;
  };
  const wide = { vmaStart: 0, vmaEnd: 1 << 20, gpuvaStart: 0, gpuvaEnd: 1 << 20 };

  it('the largest aligned chunk that fits the VMA, the GPU VA and the notifier', () => {
    const g = new DrmGpusvm(131072, XE_FAULT_CHUNK_PAGES);
    expect(sizeAt(g, 4100, wide)).toBe(512);
    // The VMA ends 100 pages into the 2 MiB chunk: 64 KiB.
    expect(sizeAt(g, 4100, { ...wide, vmaEnd: 4196 })).toBe(16);
    // A VMA of 8 pages: 4 KiB.
    expect(sizeAt(g, 4100, { ...wide, vmaStart: 4096, vmaEnd: 4104 })).toBe(1);
    // The GPU VA (the mirror BO) bounds it too: ending inside the 2 MiB chunk, 64 KiB; starting
    // inside the 64 KiB one, 4 KiB.
    expect(sizeAt(g, 4100, { ...wide, gpuvaEnd: 4200 })).toBe(16);
    expect(sizeAt(g, 4100, { ...wide, gpuvaStart: 4098 })).toBe(1);
    // A notifier of 1024 pages: a 2 MiB chunk never crosses it.
    const small = new DrmGpusvm(1024, XE_FAULT_CHUNK_PAGES);
    expect(sizeAt(small, 1000, wide)).toBe(512);
    expect(() => new DrmGpusvm(256, XE_FAULT_CHUNK_PAGES)).toThrow(/larger than the notifier/);
  });

  it('a chunk that would overlap an existing range is skipped; a chunk up to the threshold needs its pages faulted in', () => {
    const g = new DrmGpusvm(131072, XE_FAULT_CHUNK_PAGES);
    const n = g.notifierAlloc(1, 4096);
    g.rangeInsert(n, 4096 + 20, 16, true); // [4112, 4128)
    expect(sizeAt(g, 4100, wide)).toBe(16); // the 2 MiB chunk holds the range
    expect(sizeAt(g, 4120, wide)).toBe(1); // inside it: neither 2 MiB nor 64 KiB fits; 4 KiB is never checked
    // drm_gpusvm_check_pages says a page is missing: 64 KiB is not taken.
    expect(sizeAt(g, 4100, wide, (_s, _e, then) => then(false))).toBe(1);
    // Without a threshold (an integrated GPU) nothing is checked.
    expect(sizeAt(g, 4100, wide, (_s, _e, then) => then(false), 0)).toBe(16);
    expect(() => g.rangeInsert(n, 4120, 1, false)).toThrow(/overlaps/);
  });
});

/** A 1024-page (two 2 MiB chunks, 2 MiB aligned at A) VMA with its pages written, and its mirror BO. */
const twoChunks = (): Step[] => {
  const steps: Step[] = [create, mmapAt(A, 1024)];
  for (let i = 0; i < 1024; i += 1) steps.push(store(A + i * PAGE_SIZE, 7000 + i));
  steps.push(boCreate(A, 1024));
  return steps;
};
/**
 * Loads of the pages [0, pages) of A except those in `skip`: the CPU faults every VRAM page home
 * before mm's dump (the dump of this harness cannot read device memory; a page left in VRAM would
 * read as its device pfn).
 */
const home = (pages: number, skip: (i: number) => boolean = () => false): Step[] => {
  const steps: Step[] = [];
  for (let i = 0; i < pages; i++) if (!skip(i)) steps.push(load(A + i * PAGE_SIZE));
  return steps;
};
const munmap = (page: number, pages: number): Step => ({ msg: { type: 'munmap', pid: PID, addr: A + page * PAGE_SIZE, length: pages * PAGE_SIZE } as never });
const atomicSubmit = (touch: number, durationNs: number) => gpu({ type: 'gpu_submit', bos: [1], pattern: { touch, write: true, atomic: true }, durationNs, queue: 'compute' });

describe('gpusvm: ranges are never split', () => {
  it('a partial munmap of a 2 MiB range drops the whole range; what is left faults in again as ranges that fit', async () => {
    const steps = [
      ...twoChunks(),
      submit([1], 0.01, 50_000), waitLast, // faults in both 2 MiB ranges (migrated to VRAM)
      munmap(496, 16),
      { sleepNs: 100_000 }, // the collector's work runs
      submit([1], 0.01, 50_000), waitLast, // page 0 and the others again
      ...home(1024, (i) => i >= 496 && i < 512),
      gpu({ type: 'gpu_bo_free', handle: 1 }),
    ];
    const { check, gpu: g } = await runGpusvm('gpusvm', steps, { svm: { vramPages: 1024 } }, 1, { frames: 2048 });
    expect(check!.violations.map(formatViolation)).toEqual([]);
    expect(g.jobErrors).toBe(0);
    expect(g.partialUnmapRangeDrops).toBe(1);
    expect(g.rangesGarbageCollected).toBe(1);
    // Both 2 MiB ranges first; after the munmap the first one's pages fault in as 64 KiB ranges
    // (the 2 MiB chunk no longer fits the VMA [0, 496)), the second range is still there.
    expect(g.rangesByChunk['2M']).toBe(2);
    expect(g.rangesByChunk['64K']).toBeGreaterThanOrEqual(1);
    expect(g.migrationsToVram).toBe(2);
    // The 64 KiB ranges' pages are already ours in VRAM: their migration finds nothing to collect
    // (-EBUSY) and they bind the VRAM pages where they are.
    expect(g.migrationsBusy).toBeGreaterThanOrEqual(1);
    expect(g.faultsPending).toBe(0);
  });

  it('without the partial munmap nothing is collected (the figures can tell the two apart)', async () => {
    const steps = [...twoChunks(), submit([1], 0.01, 50_000), waitLast, { sleepNs: 100_000 }, submit([1], 0.01, 50_000), waitLast, ...home(1024)];
    const { gpu: g } = await runGpusvm('gpusvm', steps, { svm: { vramPages: 1024 } }, 1, { frames: 2048 });
    expect(g.partialUnmapRangeDrops).toBe(0);
    expect(g.rangesGarbageCollected).toBe(0);
    expect(g.rangesCreated).toBe(2);
    expect(g.validFaults).toBeGreaterThan(0);
  });
});

describe('gpusvm: the devmem_only time slice (atomic_svm_timeslice_ms)', () => {
  const scenario = (): Step[] => [
    create, mmapAt(A, 512), ...Array.from({ length: 512 }, (_, i) => store(A + i * PAGE_SIZE, i)), boCreate(A, 512),
    atomicSubmit(0.02, 20_000), waitLast,
    store(A + 5 * PAGE_SIZE, 99), // inside the slice: refused until it expires
    { sleepNs: 10_000_000 },
    store(A + 300 * PAGE_SIZE, 98), // after the slice: at once
    load(A + 5 * PAGE_SIZE),
    ...home(512),
  ];

  it('a CPU fault on VRAM an atomic fault migrated waits out the 5 ms slice; with a 0 ms slice it does not', async () => {
    const on = await runGpusvm('gpusvm', scenario(), { svm: { vramPages: 512 } }, 1, { frames: 1024 });
    const off = await runGpusvm('gpusvm', scenario(), { svm: { vramPages: 512 }, gpusvm: { atomicTimesliceMs: 0 } }, 1, { frames: 1024 });
    for (const r of [on, off]) {
      expect(r.check!.violations.map(formatViolation)).toEqual([]);
      expect(r.gpu.jobErrors).toBe(0);
      expect(r.gpu.migrationsToVram).toBe(1);
    }
    expect(on.gpu.timesliceRefusals).toBe(1);
    // The store came within microseconds of the migration: it waited nearly all of the 5 ms.
    expect(on.gpu.timesliceWaitNs).toBeGreaterThan(4_000_000);
    expect(on.gpu.timesliceWaitNs).toBeLessThanOrEqual(5_000_000);
    expect(off.gpu.timesliceRefusals).toBe(0);
  });

  it('a plain (non-atomic) fault migrates with no slice: the CPU takes the page back at once', async () => {
    const steps = scenario();
    const i = steps.findIndex((s) => typeof s === 'object' && s !== null && 'to' in s && (s as { msg: { type: string } }).msg.type === 'gpu_submit');
    steps[i] = submit([1], 0.02, 20_000);
    const r = await runGpusvm('gpusvm', steps, { svm: { vramPages: 512 } }, 1, { frames: 1024 });
    expect(r.check!.violations.map(formatViolation)).toEqual([]);
    expect(r.gpu.migrationsToVram).toBe(1);
    expect(r.gpu.timesliceRefusals).toBe(0);
  });

  it('an atomic on memory that cannot move to VRAM (no VRAM page for it) is not mapped from system memory', async () => {
    // VRAM of 16 pages: the 2 MiB range's migration cannot be placed (all or nothing), and
    // devmem_only refuses system pages (get_pages -EFAULT) until the tries run out: a VM fault.
    const r = await runGpusvm('gpusvm', [create, mmapAt(A, 512), store(A, 1), boCreate(A, 512), atomicSubmit(0.002, 20_000), waitLast], { svm: { vramPages: 16 } }, 1, { frames: 1024 });
    expect(r.check!.violations.map(formatViolation)).toEqual([]);
    expect(r.gpu.migrationsBusy).toBeGreaterThanOrEqual(1);
    expect(r.gpu.jobErrors).toBe(1);
  });
});

describe('gpusvm: the checker over many seeds', () => {
  it('invalidations racing faulting jobs (munmap, mprotect, pageout, reclaim), with and without VRAM, 20 seeds each: no violation, nothing pending', async () => {
    let faults = 0;
    let collected = 0;
    let roDevmem = 0;
    for (const vramPages of [0, 8]) {
      for (let seed = 1; seed <= 20; seed++) {
        const { check, gpu: g, r } = await runGpusvm('gpusvm', racingScript(seed, { pressure: true }), { svm: { vramPages } }, seed, { frames: 40, swapPages: 128 });
        const k = `vram ${vramPages} seed ${seed}`;
        expect(r.reason, k).toBe('app: dumped');
        expect(check!.violations.map(formatViolation), k).toEqual([]);
        expect(g.faultsPending, k).toBe(0);
        expect(g.pendingCalls, k).toBe(0);
        expect(g.warnings, k).toBe(0);
        expect(g.deviceFaultsResolved + g.deviceFaultsCancelled, k).toBe(g.deviceFaults);
        faults += g.deviceFaults;
        collected += g.rangesGarbageCollected;
        roDevmem += g.readOnlyDevmemEvictions;
      }
    }
    // A page mprotect made read-only migrates to VRAM as a read-only device-private entry; the GPU's
    // write fault on it once refaulted forever (vram 8, seed 2): now the range is faulted home first.
    expect(roDevmem).toBeGreaterThan(0);
    expect(faults).toBeGreaterThan(100);
    expect(collected).toBeGreaterThan(0); // the munmaps of the script reached ranges
  }, 600_000);

  it('the read_retry race: gpusvm retries (get_pages, bind) and stays clean; unsafe-gpusvm binds invalidated pages and the checker says stale_translation', async () => {
    let retries = 0;
    let caught = 0;
    let skipped = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const safe = await runGpusvm('gpusvm', readRetryRace(seed), { svm: { vramPages: 0 } }, seed);
      expect(safe.check!.violations.map(formatViolation), `seed ${seed}`).toEqual([]);
      expect(safe.gpu.pagesValidSkipped).toBe(0);
      retries += safe.gpu.getPagesRetries + safe.gpu.bindRetries;
      const unsafe = await runGpusvm('unsafe-gpusvm', readRetryRace(seed), { svm: { vramPages: 0 } }, seed);
      skipped += unsafe.gpu.pagesValidSkipped;
      if (unsafe.check!.violations.some((v) => v.kind === 'stale_translation')) caught++;
    }
    console.log(`gpusvm read_retry race: ${retries} get_pages/bind retries; unsafe-gpusvm caught in ${caught}/30 seeds, pages_valid skipped ${skipped} times`);
    expect(retries).toBeGreaterThan(5);
    expect(skipped).toBeGreaterThan(0);
    expect(caught).toBeGreaterThanOrEqual(1);
  }, 600_000);
});
