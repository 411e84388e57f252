// The behaviours issue-17's corrections follow, each against the kernel function and version it
// models, under LocalScheduler with the data oracle judging each run.
import { describe, expect, it } from 'vitest';
import { MADV_PAGEOUT, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE } from '@svmsim/kernel-mm';
import { formatViolation } from '@svmsim/kernel-mm/checker';
import { ECANCELED, ENODATA, ETIME } from '@svmsim/gpu-driver/gpu-protocol';
import { hmmBusyBudgetNs, KERNEL_ERA_DEFAULTS } from '@svmsim/gpu-driver/kernel-era';
import { ret, type Step } from '@svmsim/kernel-mm/testing/mm-harness';
import { A, PID, boCreate, create, gpu, mmapAt, run, store, submit, waitLast } from './gpu-steps.js';

const waits = (results: { type: string }[]) => results.filter((r) => r.type === 'gpu_wait_result').map(ret);

describe('kernel eras (kernel-era.ts)', () => {
  it('lockup_timeout defaults: none in v4.9 (amdgpu_lockup_timeout 0 → MAX_SCHEDULE_TIMEOUT), compute 60 s in v6.6/v6.15 (67387dfe0f66), 2 s latest ("reduce queue timeout to 2 seconds")', () => {
    expect(KERNEL_ERA_DEFAULTS['v4.9'].lockupTimeoutMs).toEqual({ gfx: -1, compute: -1, sdma: -1 });
    expect(KERNEL_ERA_DEFAULTS['v6.6'].lockupTimeoutMs).toEqual({ gfx: 10_000, compute: 60_000, sdma: 10_000 });
    expect(KERNEL_ERA_DEFAULTS['v6.15'].lockupTimeoutMs.compute).toBe(60_000);
    expect(KERNEL_ERA_DEFAULTS.latest.lockupTimeoutMs).toEqual({ gfx: 2_000, compute: 2_000, sdma: 2_000 });
  });

  it('amdgpu_hmm_range_get_pages (v6.6): the -EBUSY budget is 1 s per 512 MiB, at least 1 s (HMM_RANGE_DEFAULT_TIMEOUT)', () => {
    expect(hmmBusyBudgetNs(1)).toBe(1e9);
    expect(hmmBusyBudgetNs(131072)).toBe(1e9);
    expect(hmmBusyBudgetNs(4 * 131072)).toBe(4e9);
  });
});

describe('drm_sched job timeout → amdgpu_job_timedout (amdgpu_job.c, v6.6 / latest)', () => {
  const pages = 4;
  const base: Step[] = [create, mmapAt(A, pages), store(A, 1), boCreate(A, pages)];

  it('latest: a compute job past the 2 s lockup_timeout is soft-recovered (amdgpu_ring_soft_recovery): its fence signals -ENODATA, a notifier waiting on it returns', async () => {
    const steps = [...base, submit([1], 1, 3600e9, undefined, 'compute'), { msg: { type: 'madvise', pid: PID, addr: A, length: pages * PAGE_SIZE, advice: MADV_PAGEOUT } as never }, waitLast];
    const { results, check, gpu: g } = await run('userptr', steps, 1, {}, { kernel: 'latest' });
    expect(waits(results)).toEqual([ENODATA]);
    expect(g.jobTimeouts).toBe(1);
    expect(g.softRecoveries).toBe(1);
    expect(g.gpuResets).toBe(0);
    // amdgpu_hmm_invalidate_gfx waited for the fence: about the 2 s timeout, not the hour.
    expect(g.invalidateWaitMaxNs).toBeGreaterThan(1.9e9);
    expect(g.invalidateWaitMaxNs).toBeLessThan(2.1e9);
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });

  it('v4.9: no timeout on any ring: the hour-long job completes', async () => {
    const steps = [...base, submit([1], 1, 3600e9, undefined, 'compute'), waitLast];
    const { results, gpu: g } = await run('userptr', steps, 1, {}, { kernel: 'v4.9' });
    expect(waits(results)).toEqual([0]);
    expect(g.jobTimeouts).toBe(0);
  });

  it('a hung job (its fence never signals): soft recovery fails, amdgpu_device_gpu_recover resets the GPU: the guilty job -ETIME, the one queued behind it -ECANCELED', async () => {
    const steps: Step[] = [...base, gpu({ type: 'gpu_submit', bos: [1], pattern: { touch: 1, write: true }, durationNs: 1e6, queue: 'gfx', hang: true }), submit([1], 1, 1e6), waitLast,
      (results) => {
        const first = results.find((r) => r.type === 'gpu_submit_result') as { job: number };
        return gpu({ type: 'gpu_wait', job: first.job });
      }];
    const { results, check, gpu: g } = await run('userptr', steps, 1, {}, { kernel: 'latest' });
    expect(waits(results)).toEqual([ECANCELED, ETIME]);
    expect(g.gpuResets).toBe(1);
    expect(g.softRecoveries).toBe(0);
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });

  it('lockupTimeoutMs.compute -1 (the module parameter\'s infinite): no timeout under latest', async () => {
    const steps = [...base, submit([1], 1, 100e9, undefined, 'compute'), waitLast];
    const { results, gpu: g } = await run('userptr', steps, 1, {}, { kernel: 'latest', lockupTimeoutMs: { compute: -1 } });
    expect(waits(results)).toEqual([0]);
    expect(g.jobTimeouts).toBe(0);
  });

  it('KFD user queues (preempt) have no job timeout: a hung queue shows at preemption, queue_preemption_timeout_ms (9000) → HWS hang → reset', async () => {
    const steps: Step[] = [...base, gpu({ type: 'gpu_submit', bos: [1], pattern: { touch: 1, write: true }, durationNs: 1e6, queue: 'compute', hang: true }),
      { msg: { type: 'madvise', pid: PID, addr: A, length: pages * PAGE_SIZE, advice: MADV_PAGEOUT } as never }, waitLast];
    const { results, gpu: g } = await run('preempt', steps, 1, {}, { kernel: 'latest' });
    expect(waits(results)).toEqual([ETIME]);
    expect(g.jobTimeouts).toBe(0);
    expect(g.hwsHangs).toBe(1);
    expect(g.gpuResets).toBe(1);
  });
});

describe('gfx userptr flags (amdgpu_gem_userptr_ioctl, v6.6/latest; libdrm amdgpu_create_bo_from_user_mem)', () => {
  it('VALIDATE walks at GEM_USERPTR; a CS that finds any page changed revalidates the whole BO', async () => {
    const pages = 16;
    const steps: Step[] = [create, mmapAt(A, pages), store(A, 5), boCreate(A, pages), submit([1], 0.1, 1000), waitLast,
      { msg: { type: 'madvise', pid: PID, addr: A, length: PAGE_SIZE, advice: MADV_PAGEOUT } as never }, submit([1], 0.1, 1000), waitLast];
    const { gpu: g, check } = await run('userptr', steps);
    expect(g.bosRevalidated).toBeGreaterThanOrEqual(1); // at creation (and after a CS that found a page changed)
    expect(g.pagesRevalidated % pages).toBe(0);
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });

  it('amdgpu_hmm_invalidate_gfx neither clears GPUVM nor flushes the TLB (the next CS revalidates)', async () => {
    const pages = 8;
    const steps: Step[] = [create, mmapAt(A, pages), boCreate(A, pages), submit([1], 1, 1000), waitLast,
      { msg: { type: 'madvise', pid: PID, addr: A, length: pages * PAGE_SIZE, advice: MADV_PAGEOUT } as never }];
    const { gpu: g, check } = await run('userptr', steps);
    expect(g.invalidations).toBeGreaterThan(0);
    expect(g.tlbFlushes).toBe(0);
    expect(g.gpuvmEntries).toBe(pages); // still there after the invalidation
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });
});

describe('gfx userptr flags (libdrm amdgpu_create_bo_from_user_mem: ANONONLY | REGISTER | VALIDATE; amdgpu_ttm_tt_get_user_pages, v6.6/latest)', () => {
  const pages = 4;
  const mmapShared = (shared: boolean): Step => ({
    msg: { type: 'mmap', pid: PID, addr: A, length: pages * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_FIXED } as never,
  });
  const created = (results: { type: string }[]) => results.filter((r) => r.type === 'gpu_bo_create_result').map(ret);

  it('ANONONLY refuses shared anonymous memory (a shmem file: vma->vm_file is set) with -EPERM; private anonymous memory is accepted', async () => {
    const shared = await run('userptr', [create, mmapShared(true), boCreate(A, pages)], 1);
    expect(created(shared.results)).toEqual([-1]);
    const priv = await run('userptr', [create, mmapShared(false), boCreate(A, pages)], 1);
    expect(created(priv.results)).toEqual([1]); // the handle
    // KFD's userptr (preempt: flags 0, no ANONONLY) takes the shared mapping.
    const kfd = await run('preempt', [create, mmapShared(true), boCreate(A, pages)], 1);
    expect(created(kfd.results)).toEqual([1]);
  });
});

describe('kfd-svm (kfd_svm.c svm_range_restore_pages, v6.6–latest) against svm-fault (nouveau_svm.c, v6.6)', () => {
  const pages = 1024;
  const steps: Step[] = [create, mmapAt(A, pages), boCreate(A, pages), submit([1], 0.25, 100_000), waitLast];

  it('kfd-svm maps a 2 MiB range per fault; nouveau one page per fault', async () => {
    const mm = { frames: 2048 }; // the 4 MiB BO fits in RAM
    // No VRAM here: this harness's final dump reads only system memory (the harness's runs read VRAM too).
    const k = await run('kfd-svm', steps, 1, mm, { svm: { vramPages: 0 } });
    const n = await run('svm-fault', steps, 1, mm);
    // 1024 pages = 2 ranges; a walk raced by a migration is -EAGAIN, dropped and faulted again by the hardware.
    expect(k.gpu.pagesFaulted % 512).toBe(0);
    expect(k.gpu.faultsRetriedByHardware).toBeGreaterThanOrEqual(0);
    expect(n.gpu.hmmRangeFaults).toBe(256);
    expect(k.gpu.hmmRangeFaults).toBeLessThan(n.gpu.hmmRangeFaults / 10);
    expect(k.check!.violations.map(formatViolation)).toEqual([]);
    expect(n.check!.violations.map(formatViolation)).toEqual([]);
    expect(waits(k.results)).toEqual([0]);
  });

  it('svm_default_granularity (amdgpu module parameter, v6.12+): 4 makes 64 KiB ranges, 16 pages each; 9 (the default) 2 MiB; larger than 0x1B is clamped', async () => {
    const mm = { frames: 2048 };
    const d = await run('kfd-svm', steps, 1, mm, { svm: { vramPages: 0 } });
    const g4 = await run('kfd-svm', steps, 1, mm, { svm: { vramPages: 0 }, kfd: { granularity: 4 } });
    expect(d.gpu.svmRanges).toBe(2);
    expect(g4.gpu.svmRanges).toBeGreaterThan(2);
    expect(g4.gpu.svmRanges).toBeLessThanOrEqual(1024 / 16);
    expect(g4.gpu.pagesFaulted % 16).toBe(0);
    // Each fault walks one 16-page window: many more hmm_range_fault calls than with 512-page ranges.
    expect(g4.gpu.hmmRangeFaults).toBeGreaterThan(d.gpu.hmmRangeFaults);
    expect(g4.check!.violations.map(formatViolation)).toEqual([]);
    const clamped = await run('kfd-svm', steps, 1, mm, { svm: { vramPages: 0 }, kfd: { granularity: 40 } });
    expect(clamped.gpu.svmRanges).toBe(1); // min(40, 0x1B): one range clipped to the VMA
  });

  const munmap = (addr: number, pages: number): Step => ({ msg: { type: 'munmap', pid: PID, addr, length: pages * PAGE_SIZE } as never });
  const mprotect = (addr: number, pages: number, prot: number): Step => ({ msg: { type: 'mprotect', pid: PID, addr, length: pages * PAGE_SIZE, prot } as never });
  const readJob = (touch: number, durationNs: number) => gpu({ type: 'gpu_submit', bos: [1], pattern: { touch, write: false }, durationNs, queue: 'compute' });

  it('AMDGPU_SVM_RANGE_RETRY_FAULT_PENDING: faults on a range restored less than 2 ms ago wait the window out; a 0 window drops none', async () => {
    const mm = { frames: 2048 };
    // The ranges are restored, then an mprotect zaps them and the GPU faults on them again at once.
    const again: Step[] = [...steps, mprotect(A, pages, PROT_READ), readJob(1, 100_000), waitLast];
    const g4 = await run('kfd-svm', again, 1, mm, { svm: { vramPages: 0 } });
    const none = await run('kfd-svm', again, 1, mm, { svm: { vramPages: 0 }, kfd: { retryFaultPendingNs: 0 } });
    expect(g4.gpu.faultsDroppedRetryPending).toBeGreaterThan(0);
    expect(none.gpu.faultsDroppedRetryPending).toBe(0);
    expect(none.check!.violations.map(formatViolation)).toEqual([]);
  });

  it('svm_range_get_range_boundaries (latest): a range stops at its VMA; each is created under mmap_write_lock and the fault runs under mmap_read_lock; svm_fault_allowed / readonly follow vm_flags', async () => {
    // Pages [256, 1024) read-only: three VMAs-worth of ranges, [0,256) [256,512) [512,1024).
    const s: Step[] = [create, mmapAt(A, pages), boCreate(A, pages), mprotect(A + 256 * PAGE_SIZE, pages - 256, PROT_READ), readJob(0.25, 100_000), waitLast];
    const k = await run('kfd-svm', s, 1, { frames: 2048 }, { svm: { vramPages: 0 } });
    expect(waits(k.results)).toEqual([0]);
    expect(k.gpu.svmRangesCreated).toBe(3);
    expect(k.gpu.rangeCreateWriteLocks).toBe(3);
    expect(k.gpu.readonlyVmaRefaults).toBe(0); // kfd reads vm_flags; it never asks for write in the read-only VMA
    const gpuLocks = k.trace.filter((l) => l.ev === 'mmap_lock_acquire_returned' && l.write === true);
    expect(gpuLocks.length).toBeGreaterThanOrEqual(3 + 1); // the mprotect's, and one per range created
    expect(k.check!.violations.map(formatViolation)).toEqual([]);
    // A write to the read-only part: svm_fault_allowed says -EPERM, a VM fault kills the job.
    const w: Step[] = [create, mmapAt(A, pages), boCreate(A, pages), mprotect(A + 256 * PAGE_SIZE, pages - 256, PROT_READ), submit([1], 1, 100_000), waitLast];
    const kw = await run('kfd-svm', w, 1, { frames: 2048 }, { svm: { vramPages: 0 } });
    expect(waits(kw.results)).toEqual([-14]);
    expect(kw.gpu.faultsNotAllowed).toBeGreaterThanOrEqual(1);
  });

  for (const kernel of ['v6.6', 'latest'] as const) {
    it(`svm_range_unmap_from_cpu (${kernel}: ${KERNEL_ERA_DEFAULTS[kernel].kfdUnmapDrain}): the unmapped half is split off and removed by the deferred worker under mmap_write_lock; a later fault there is a VM fault, the other half stays mapped`, async () => {
      const s: Step[] = [create, mmapAt(A, pages), boCreate(A, pages), readJob(1, 100_000), waitLast, readJob(1, 1_000_000), munmap(A + 512 * PAGE_SIZE, 512), waitLast];
      const k = await run('kfd-svm', s, 1, { frames: 2048 }, { svm: { vramPages: 0 }, kernel });
      expect(waits(k.results)).toEqual([0, -14]);
      expect(k.gpu.svmRangesCreated).toBe(2);
      expect(k.gpu.rangesSplit).toBe(1);
      expect(k.gpu.rangesRemovedDeferred).toBe(1);
      expect(k.gpu.svmRanges).toBe(1);
      expect(k.check!.violations.map(formatViolation)).toEqual([]);
    });
  }
});
