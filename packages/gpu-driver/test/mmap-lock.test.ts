// mmap_lock (kernel-mm/src/mmap-lock.ts) against the gfx userptr walk: amdgpu_ttm_tt_get_user_pages
// (amdgpu_ttm.c) holds mmap_read_lock across amdgpu_hmm_range_get_pages (amdgpu_hmm.c, latest tree
// read at 0eaed89c; v6.6 the same) → hmm_range_fault of the whole BO, so __vm_munmap's
// mmap_write_lock_killable waits for the walk's end.
import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '@svmsim/kernel-mm';
import { formatViolation } from '@svmsim/kernel-mm/checker';
import { A, PID, boCreate, create, mmapAt, run, submit } from './gpu-steps.js';

describe('mmap_lock vs the userptr walk', () => {
  it('an munmap during a 65536-page walk (amdgpu_ttm_tt_get_user_pages → hmm_range_fault under mmap_read_lock, latest) waits for the walk to end', async () => {
    const pages = 65536;
    // 1 ms into the submit: the CS walk (65536 × hmmPerPageNs 40 ns ≈ 2.6 ms) holds the read lock.
    const munmap = { to: 'mm', msg: { type: 'munmap', pid: PID, addr: A, length: pages * PAGE_SIZE } as never, afterNs: 1e6 };
    const steps = [create, mmapAt(A, pages), boCreate(A, pages), { group: [submit([1], 1, 1e6) as { to: string; msg: never }, munmap] }];
    const { trace, mm, check } = await run('userptr', steps, 1, { frames: pages + 1024 }, { kernel: 'latest' });
    const lockEv = trace.filter((l) => l.ev.startsWith('mmap_lock_'));
    // The munmap: mmap_lock_start_locking (write) while the CS walk holds the read lock…
    const start = lockEv.findLast((l) => l.ev === 'mmap_lock_start_locking' && l.write === true)!;
    const acquired = lockEv.findLast((l) => l.ev === 'mmap_lock_acquire_returned' && l.write === true)!;
    const walkEnd = lockEv.findLast((l) => l.ev === 'mmap_lock_released' && l.write === false && l.t <= acquired.t)!;
    const walkBegin = lockEv.findLast((l) => l.ev === 'mmap_lock_acquire_returned' && l.write === false && l.t <= start.t)!;
    expect(walkBegin.t).toBeLessThan(start.t);
    // …and mmap_lock_acquire_returned only at the walk's mmap_read_unlock.
    expect(acquired.t).toBe(walkEnd.t);
    expect(acquired.waitedNs).toBe(acquired.t - start.t);
    expect(acquired.waitedNs as number).toBeGreaterThan(1e6);
    // mm's summary: one write lock waited (the munmap), for the rest of the walk.
    expect(mm.mmapWriteLockWaits).toBe(1);
    expect(mm.mmapWriteLockWaitNsMax).toBe(acquired.waitedNs);
    // The UNMAP invalidation comes after the walk, not in the middle of it.
    const unmap = trace.find((l) => l.ev === 'munmap')!;
    expect(unmap.t).toBeGreaterThanOrEqual(walkEnd.t);
    expect(check!.violations.map(formatViolation)).toEqual([]);
  }, 60_000);
});
