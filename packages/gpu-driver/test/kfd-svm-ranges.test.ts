// kfd-svm's range list (kfd-svm-ranges.ts) against svm_range_get_range_boundaries and
// svm_range_unmap_split (kfd_svm.c, torvalds/linux at 006ad514 and the 2024 checkpoint_ts tree).
import { describe, expect, it } from 'vitest';
import { SvmRangeList } from '@svmsim/gpu-driver/kfd-svm-ranges';

const G = 512; // granularity 9: 2 MiB

describe('SvmRangeList', () => {
  it('a fault range is the 2 MiB-aligned window clipped to the VMA, the BO and the ranges either side', () => {
    const l = new SvmRangeList();
    // VMA [100, 2000), BO [0, 4096): the first window [0, 512) starts at the VMA.
    expect(l.create(1, 130, G, 100, 2000, 0, 4096)).toMatchObject({ start: 100, end: 512 });
    // A window the VMA ends inside.
    expect(l.create(1, 1999, G, 100, 2000, 0, 4096)).toMatchObject({ start: 1536, end: 2000 });
    // Neighbours: a range [600, 700) exists; faults either side stop at it.
    l.create(1, 650, G, 600, 700, 0, 4096);
    expect(l.create(1, 599, G, 100, 2000, 0, 4096)).toMatchObject({ start: 512, end: 600 });
    expect(l.create(1, 800, G, 100, 2000, 0, 4096)).toMatchObject({ start: 700, end: 1024 });
    // The BO's end clips too (the model's notifier is the BO's).
    expect(l.create(2, 10, G, 0, 2000, 0, 300)).toMatchObject({ start: 0, end: 300 });
    expect(l.find(1, 650)).toMatchObject({ start: 600, end: 700 });
    expect(l.find(1, 1100)).toBeUndefined();
    expect(() => l.create(1, 650, G, 600, 700, 0, 4096)).toThrow(/already holds/);
  });

  it('an munmap splits a range: the unmapped piece waits for removal (svm_range_skip_recover), the rest stays', () => {
    const l = new SvmRangeList();
    const r = l.create(1, 0, G, 0, 4096, 0, 4096);
    r.validatedAt = 5;
    const pieces = l.unmapSplit(1, 100, 200);
    expect(pieces).toHaveLength(1);
    expect(pieces[0]).toMatchObject({ start: 100, end: 200, unmapping: true });
    expect(l.find(1, 50)).toMatchObject({ start: 0, end: 100, unmapping: false, validatedAt: 5 });
    expect(l.find(1, 150)).toBe(pieces[0]);
    expect(l.find(1, 300)).toMatchObject({ start: 200, end: 512, unmapping: false });
    // A second unmap over a piece already on the deferred list leaves it as it is.
    expect(l.unmapSplit(1, 120, 180)).toEqual([]);
    expect(l.remove(pieces[0])).toBe(true);
    expect(l.find(1, 150)).toBeUndefined();
    expect(l.count()).toBe(2);
    expect(l.removeWithin(1, 0, 4096)).toBe(2);
  });
});
