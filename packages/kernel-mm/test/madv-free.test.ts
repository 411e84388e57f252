// MADV_FREE (syscalls.ts madvise_free, reclaim.ts discard_lazyfree): a clean lazyfree page is
// discarded by reclaim and reads zero; one written again is kept; swap entries are freed at once;
// device-private entries are left; only private anonymous VMAs take it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EINVAL, MADV_FREE, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE } from '@svmsim/kernel-mm';
import { ret, runMm, val, type Step } from '@svmsim/kernel-mm/testing/mm-harness';

const RW = PROT_READ | PROT_WRITE;
const A = 16 * 1024 * 1024;
const create: Step = { msg: { type: 'process_create' } as never };
const anon = (pages: number, flags = MAP_PRIVATE | MAP_ANONYMOUS): Step => ({ msg: { type: 'mmap', pid: 1, addr: 0, length: pages * PAGE_SIZE, prot: RW, flags } as never });
const store = (page: number, value: number): Step => ({ msg: { type: 'cpu_access', pid: 1, addr: A + page * PAGE_SIZE, write: true, value } as never });
const load = (page: number): Step => ({ msg: { type: 'cpu_access', pid: 1, addr: A + page * PAGE_SIZE, write: false } as never });
const madvise = (page: number, pages: number, advice: number, base = A): Step => ({ msg: { type: 'madvise', pid: 1, addr: base + page * PAGE_SIZE, length: pages * PAGE_SIZE, advice } as never });
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-free-'));

describe('MADV_FREE', () => {
  it('reclaim discards a clean lazyfree page (it reads zero again) and keeps one written since; a swapped page is freed at once', async () => {
    const { results, mm, check, invalidations } = await runMm([
      create, anon(4), { msg: { type: 'mmu_interval_notifier_insert', pid: 1, start: A, length: 64 * PAGE_SIZE } as never },
      store(0, 10), store(1, 11), store(2, 12),
      madvise(2, 1, MADV_PAGEOUT), // page 2 to swap
      madvise(0, 3, MADV_FREE),
      store(1, 21), // written again: no longer free to discard
      madvise(0, 2, MADV_PAGEOUT),
      load(0), load(1), load(2),
    ], { traceDir: tmp() });
    expect(results.slice(6, 9).map(ret)).toEqual([0, 0, 0]);
    expect(val(results[10])).toBe(0); // discarded
    expect(val(results[11])).toBe(21); // swapped out and back
    expect(val(results[12])).toBe(0); // its swap entry was freed by MADV_FREE
    expect(mm.lazyfreePages).toBe(2);
    expect(mm.lazyfreeDiscarded).toBe(1);
    expect(invalidations.some((i) => i.event === 'MMU_NOTIFY_CLEAR' && i.start === A && i.end === A + 3 * PAGE_SIZE)).toBe(true);
    expect(check!.violations).toEqual([]);
  });

  it('refuses shared anonymous memory (not vma_is_anonymous) with -EINVAL', async () => {
    const { results } = await runMm([create, anon(2, MAP_SHARED | MAP_ANONYMOUS), madvise(0, 2, MADV_FREE)]);
    expect(ret(results[2])).toBe(EINVAL);
  });
});
