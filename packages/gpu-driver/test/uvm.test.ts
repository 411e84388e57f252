// Policy uvm (NVIDIA UVM's HMM mode) and its unsafe twin against mm under LocalScheduler: fault
// batches and coalescing, the density prefetch, thrashing detection → throttle → pin, the checker's
// verdict over many seeds; and the prefetch and thrashing parts on their own.
import { describe, expect, it } from 'vitest';
import type { Message } from '@svmsim/runtime';
import { PAGE_SIZE } from '@svmsim/kernel-mm';
import { formatViolation } from '@svmsim/kernel-mm/checker';
import { createGpu, type GpuConfig, type GpuPolicyName } from '@svmsim/gpu-driver';
import { uvmPrefetchMask } from '@svmsim/gpu-driver/uvm-prefetch';
import { UVM_ID_CPU, UVM_ID_GPU, UVM_THRASHING_DEFAULTS, UvmThrashing } from '@svmsim/gpu-driver/uvm-thrashing';
import type { Step } from '@svmsim/kernel-mm/testing/mm-harness';
import { A, boCreate, create, gpu, load, mmapAt, racingScript, readRetryRace, run, store, submit, waitLast } from './gpu-steps.js';

const runUvm = (policy: GpuPolicyName, steps: Step[], cfg: Partial<GpuConfig> = {}, seed = 1, mm: { frames?: number; swapPages?: number } = {}) =>
  run(policy, steps, seed, mm, cfg);
const ones = (n: number, on: number[]) => {
  const m = new Uint8Array(n);
  for (const i of on) m[i] = 1;
  return m;
};
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
const set = (m: Uint8Array) => [...m.keys()].filter((i) => m[i]);

describe('uvm prefetch (uvm_perf_prefetch.c compute_prefetch_region)', () => {
  const base = { pages: 512, firstInBlock: 0, thrashing: new Uint8Array(512), threshold: 51 };

  it('a subregion is prefetched only when more than 51% of it is resident or faulted', () => {
    // 1 fault + 15 resident = 16 of the first 32 pages: 50%, not more; the 16-page node is full.
    const at50 = uvmPrefetchMask({ ...base, bigPagePages: 1, faulted: ones(512, [0]), resident: ones(512, range(1, 16)) });
    expect(set(at50)).toEqual(range(1, 16)); // the full 16-page node (already resident: nothing to move)
    // 1 fault + 16 resident = 17 of 32: 53% > 51%: [0, 32) minus the faulted page; 17 of 64 is not.
    const at53 = uvmPrefetchMask({ ...base, bigPagePages: 1, faulted: ones(512, [0]), resident: ones(512, range(1, 17)) });
    expect(set(at53)).toEqual(range(1, 32));
    // The threshold is the parameter: at 60, 17 of 32 is too few.
    const at60 = uvmPrefetchMask({ ...base, threshold: 60, bigPagePages: 1, faulted: ones(512, [0]), resident: ones(512, range(1, 17)) });
    expect(set(at60)).toEqual(range(1, 16));
  });

  it('a fault fills its 64 KiB big page unless a page of it is thrashing', () => {
    const faulted = ones(512, [20]);
    const resident = new Uint8Array(512);
    expect(set(uvmPrefetchMask({ ...base, bigPagePages: 16, faulted, resident }))).toEqual(range(16, 32).filter((i) => i !== 20));
    const thrashing = ones(512, [25]);
    expect(set(uvmPrefetchMask({ ...base, bigPagePages: 16, faulted, resident, thrashing }))).toEqual([]);
  });
});

describe('uvm thrashing (uvm_perf_thrashing.c)', () => {
  const LAPSE = UVM_THRASHING_DEFAULTS.lapseNs;

  /** A page migrating to the GPU and back to the CPU every 20 µs, the GPU asking for a hint at each fault. */
  function pingPong(params = UVM_THRASHING_DEFAULTS, rounds = 2000) {
    const t = new UvmThrashing(params);
    const hints: string[] = [];
    let firstThrottleAt = -1;
    let throttlesAtFirstPin = -1;
    let now = 1_000;
    for (let r = 0; r < rounds; r++) {
      const h = t.getHint(1, 7, now);
      hints.push(h.type === 'pin' ? `pin:${h.residency}` : h.type);
      if (h.type === 'throttle' && firstThrottleAt < 0) firstThrottleAt = r;
      if (h.type === 'pin' && throttlesAtFirstPin < 0) throttlesAtFirstPin = t.stats.throttle;
      if (h.type === 'throttle') now = Math.max(now, h.endNs); // the fault waits out its nap
      else if (!(h.type === 'pin' && h.residency === UVM_ID_CPU)) t.event(1, 7, 1, UVM_ID_GPU, 'migration', now); // migrated to VRAM
      now += 10_000;
      t.event(1, 7, 1, UVM_ID_CPU, 'migration', now); // the CPU's store brings it home
      now += 10_000;
    }
    return { t, hints, firstThrottleAt, throttlesAtFirstPin };
  }

  it('threshold events within the lapse → thrashing; the GPU is throttled; after pinThreshold throttles the page is pinned', () => {
    const { t, hints, firstThrottleAt, throttlesAtFirstPin } = pingPong();
    expect(t.stats.thrashing).toBeGreaterThanOrEqual(1);
    // No hint before `threshold` consecutive events (two per round, the first makes the per-page state).
    expect(hints.slice(0, 2).every((h) => h === 'none')).toBe(true);
    expect(firstThrottleAt).toBeGreaterThan(0);
    // Pinned once the page was throttled pinThreshold times (one count per throttling period).
    expect(throttlesAtFirstPin).toBeGreaterThanOrEqual(UVM_THRASHING_DEFAULTS.pinThreshold);
    expect(t.stats.pin_local + t.stats.pin_remote).toBeGreaterThan(0);
    // First pinned on the requester (pin_local), then, the CPU being one of the thrashing
    // processors and unable to reach VRAM, in system memory (pin_remote): mapped remotely.
    const firstPin = hints.findIndex((h) => h.startsWith('pin'));
    expect(hints[firstPin]).toBe(`pin:${UVM_ID_GPU}`);
    expect(hints).toContain(`pin:${UVM_ID_CPU}`);
    expect(t.stats.pin_local).toBeGreaterThanOrEqual(1);
    expect(t.stats.pin_remote).toBeGreaterThanOrEqual(1);
  });

  it('a pin lasts `pin` lapses (150 ms), then the page is unpinned', () => {
    const { t } = pingPong(UVM_THRASHING_DEFAULTS, 10_000); // 200 ms of ping-pong
    expect(t.stats.thrashingUnpins).toBeGreaterThanOrEqual(1);
    const short = pingPong({ ...UVM_THRASHING_DEFAULTS, pin: 10 }, 10_000); // 5 ms pins
    expect(short.t.stats.thrashingUnpins).toBeGreaterThan(t.stats.thrashingUnpins);
  });

  it('events further apart than the lapse never thrash; enable false gives no hint at all', () => {
    const slow = new UvmThrashing(UVM_THRASHING_DEFAULTS);
    for (let r = 0; r < 100; r++) {
      slow.event(1, 7, 1, r % 2 ? UVM_ID_CPU : UVM_ID_GPU, 'migration', 1_000 + r * (LAPSE + 1));
      expect(slow.getHint(1, 7, 1_000 + r * (LAPSE + 1) + 1).type).toBe('none');
    }
    expect(slow.stats.thrashing).toBe(0);
    const off = pingPong({ ...UVM_THRASHING_DEFAULTS, enable: false });
    expect(new Set(off.hints)).toEqual(new Set(['none']));
    expect(off.t.stats).toEqual({ thrashing: 0, throttle: 0, pin_local: 0, pin_remote: 0, thrashingUnpins: 0, thrashingBlockResets: 0 });
  });

  it('out-of-range parameters are refused, naming the parameter', () => {
    expect(() => new UvmThrashing({ ...UVM_THRASHING_DEFAULTS, threshold: 8 })).toThrow(/threshold must be an integer from 1 to 7/);
    expect(() => createGpu({ policy: 'uvm', uvm: { batchCount: 0 } }, 'gpu0')).toThrow(/batchCount/);
    expect(() => createGpu({ policy: 'uvm', uvm: { prefetchThreshold: 101 } }, 'gpu0')).toThrow(/prefetchThreshold/);
    expect(() => createGpu({ policy: 'uvm', uvm: { thrashing: { napp: 2 } as never } }, 'gpu0')).toThrow(/unknown thrashing option "napp"/);
  });
});

describe('uvm: fault batches', () => {
  /** Two jobs on two queues writing every page of one BO at once: duplicate faults in one batch. */
  const twoJobs = (pages: number): Step[] => [
    create, mmapAt(A, pages), boCreate(A, pages),
    { group: [submit([1], 1, 40_000, 1000, 'gfx') as { to: string; msg: Message }, submit([1], 1, 40_000, 2000, 'compute') as { to: string; msg: Message }] },
    gpu({ type: 'gpu_wait', job: 1 }), gpu({ type: 'gpu_wait', job: 2 }), gpu({ type: 'gpu_bo_free', handle: 1 }),
  ];

  it('duplicates are coalesced; no batch exceeds batchCount; one replay per batch resolves every fault', async () => {
    for (const batchCount of [256, 4]) {
      const { check, gpu: g } = await runUvm('uvm', twoJobs(64), { uvm: { batchCount, prefetch: false }, svm: { vramPages: 0 } });
      expect(check!.violations.map(formatViolation)).toEqual([]);
      expect(g.faultsFetched).toBe(g.deviceFaults);
      expect(g.deviceFaultsResolved + g.deviceFaultsCancelled).toBe(g.deviceFaults);
      expect(g.deviceFaultsCancelled).toBe(0);
      expect(g.faultBatchSizeMax).toBeLessThanOrEqual(batchCount);
      expect(g.faultBatchSizeMax).toBeGreaterThan(1);
      expect(g.faultsCoalesced).toBeGreaterThan(0); // both jobs fault the same pages in one batch
      expect(g.jobErrors).toBe(0);
    }
  });

  it('prefetch: the first fault of a block brings its 64 KiB big page, so a 64-page BO faults far fewer times', async () => {
    const pages = 64;
    const steps: Step[] = [create, mmapAt(A, pages), boCreate(A, pages), submit([1], 1, 100_000, 7), waitLast];
    for (let i = 0; i < pages; i++) steps.push(load(A + i * PAGE_SIZE));
    steps.push(gpu({ type: 'gpu_bo_free', handle: 1 }));
    const without = await runUvm('uvm', steps, { uvm: { prefetch: false }, svm: { vramPages: 0 } });
    const withPrefetch = await runUvm('uvm', steps, { svm: { vramPages: 0 } });
    expect(without.gpu.deviceFaults).toBe(pages);
    expect(without.gpu.pagesPrefetched).toBe(0);
    expect(withPrefetch.gpu.pagesPrefetched).toBeGreaterThan(0);
    expect(withPrefetch.gpu.deviceFaults).toBeLessThan(without.gpu.deviceFaults / 2); // 30 of 64 at the time of writing: waves fault before the first batch maps
    for (const r of [without, withPrefetch]) {
      expect(r.check!.violations.map(formatViolation)).toEqual([]);
      expect(r.check!.stats.dmaWrites).toBe(pages);
    }
  });
});

describe('uvm: thrashing between CPU stores and GPU jobs', () => {
  /** Rounds of a GPU job writing 4 pages (they migrate to VRAM) and CPU stores to them (they come home). */
  const pingPong = (rounds: number): Step[] => {
    const pages = 4;
    const steps: Step[] = [create, mmapAt(A, pages)];
    for (let i = 0; i < pages; i++) steps.push(store(A + i * PAGE_SIZE, i));
    steps.push(boCreate(A, pages));
    for (let r = 0; r < rounds; r++) {
      steps.push(submit([1], 1, 5_000, 1000 * r), waitLast);
      for (let i = 0; i < pages; i++) steps.push(store(A + i * PAGE_SIZE, 1000 * r + 500 + i));
    }
    steps.push(gpu({ type: 'gpu_bo_free', handle: 1 }));
    for (let i = 0; i < pages; i++) steps.push(load(A + i * PAGE_SIZE));
    return steps;
  };

  // A serial script never gets to the pin: while the GPU naps (one lapse) nothing else touches the
  // page, so when the nap ends its last event is a lapse old and the page is no longer thrashing
  // (uvm_perf_thrashing_get_hint's lapse check). Pinning needs the CPU to keep at it during the nap:
  // the harness's uvm-thrash scenario (two threads) and the unit test above show it.
  it('the pages are detected thrashing and the GPU is throttled (its fault waits out the nap)', async () => {
    const on = await runUvm('uvm', pingPong(150));
    const off = await runUvm('uvm', pingPong(150), { uvm: { thrashing: { enable: false } } });
    console.log(`uvm serial ping-pong: migrations to VRAM ${off.gpu.migratedToVram} without thrashing control, ${on.gpu.migratedToVram} with (thrashing ${on.gpu.thrashing}, throttle ${on.gpu.throttle}); fault p99 ${off.gpu.faultLatencyP99Ns} vs ${on.gpu.faultLatencyP99Ns} ns`);
    for (const r of [on, off]) {
      expect(r.check!.violations.map(formatViolation)).toEqual([]);
      expect(r.gpu.jobErrors).toBe(0);
    }
    expect(off.gpu.thrashing).toBe(0);
    expect(off.gpu.throttle).toBe(0);
    expect(on.gpu.thrashing).toBeGreaterThan(0);
    expect(on.gpu.throttle).toBeGreaterThan(0);
    expect(on.gpu.faultsThrottled).toBeGreaterThan(0);
    // A throttled fault is replayed at the end of its nap: uvm_perf_thrashing_nap × lapse = 500 µs.
    expect(on.gpu.faultLatencyMaxNs).toBeGreaterThanOrEqual(UVM_THRASHING_DEFAULTS.lapseNs * UVM_THRASHING_DEFAULTS.nap - 20_000);
  });
});

describe('uvm: the checker over many seeds', () => {
  it('invalidations racing faulting jobs, with VRAM, 30 seeds: no violation, nothing left pending', async () => {
    let faults = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const { check, gpu: g, r } = await runUvm('uvm', racingScript(seed, { pressure: true }), { svm: { vramPages: 8 } }, seed, { frames: 40, swapPages: 128 });
      expect(r.reason, `seed ${seed}`).toBe('app: dumped');
      expect(check!.violations.map(formatViolation), `seed ${seed}`).toEqual([]);
      expect(g.faultsPending, `seed ${seed}`).toBe(0);
      expect(g.pendingCalls, `seed ${seed}`).toBe(0);
      expect(g.warnings, `seed ${seed}`).toBe(0);
      expect(g.deviceFaultsResolved + g.deviceFaultsCancelled, `seed ${seed}`).toBe(g.deviceFaults);
      faults += g.deviceFaults;
    }
    expect(faults).toBeGreaterThan(100);
  }, 600_000);

  it('the read_retry race: uvm retries and stays clean; unsafe-uvm maps stale pfns and the checker says stale_translation', async () => {
    let retries = 0;
    let caught = 0;
    let skipped = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const safe = await runUvm('uvm', readRetryRace(seed), { svm: { vramPages: 0 } }, seed);
      expect(safe.check!.violations.map(formatViolation), `seed ${seed}`).toEqual([]);
      retries += safe.gpu.readRetries;
      const unsafe = await runUvm('unsafe-uvm', readRetryRace(seed), { svm: { vramPages: 0 } }, seed);
      expect(unsafe.gpu.readRetries, `seed ${seed}`).toBe(0);
      skipped += unsafe.gpu.readRetriesSkipped;
      if (unsafe.check!.violations.some((v) => v.kind === 'stale_translation')) caught++;
    }
    console.log(`uvm read_retry race: ${retries} read retries; unsafe-uvm caught in ${caught}/30 seeds, read_retry skipped ${skipped} times`);
    expect(retries).toBeGreaterThan(5);
    expect(skipped).toBeGreaterThan(5);
    expect(caught).toBeGreaterThanOrEqual(2);
  }, 600_000);
});
