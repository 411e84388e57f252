// mremap (mremap.ts): the entries move with their contents, drivers see MMU_NOTIFY_UNMAP of the old
// range, DONTUNMAP leaves the old VMA empty, and the kernel's argument checks.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  EFAULT, EINVAL, ENOMEM, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_PRIVATE, MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE, PAGE_SIZE, PROT_READ, PROT_WRITE,
} from '@svmsim/kernel-mm';
import { ret, runMm, val, type Step } from '@svmsim/kernel-mm/testing/mm-harness';

const RW = PROT_READ | PROT_WRITE;
const A = 16 * 1024 * 1024;
const create: Step = { msg: { type: 'process_create' } as never };
const anon = (pages: number): Step => ({ msg: { type: 'mmap', pid: 1, addr: 0, length: pages * PAGE_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS } as never });
const store = (addr: number, value: number): Step => ({ msg: { type: 'cpu_access', pid: 1, addr, write: true, value } as never });
const load = (addr: number): Step => ({ msg: { type: 'cpu_access', pid: 1, addr, write: false } as never });
const mremap = (addr: number, oldPages: number, newPages: number, flags: number, newAddr?: number): Step => ({
  msg: { type: 'mremap', pid: 1, addr, old_len: oldPages * PAGE_SIZE, new_len: newPages * PAGE_SIZE, flags, ...(newAddr !== undefined && { new_addr: newAddr }) } as never,
});
const subscribe: Step = { msg: { type: 'mmu_interval_notifier_insert', pid: 1, start: A, length: 64 * PAGE_SIZE } as never };
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-mremap-'));

describe('mremap', () => {
  it('MREMAP_FIXED moves present and swapped pages with their contents; the old range is gone; the checker agrees', async () => {
    const B = A + 32 * PAGE_SIZE;
    const { results, invalidations, check } = await runMm([
      create, anon(64), subscribe,
      store(A, 11), store(A + PAGE_SIZE, 12),
      { msg: { type: 'madvise', pid: 1, addr: A + PAGE_SIZE, length: PAGE_SIZE, advice: MADV_PAGEOUT } as never }, // page 1 to swap
      { msg: { type: 'munmap', pid: 1, addr: B, length: 8 * PAGE_SIZE } as never },
      mremap(A, 2, 2, MREMAP_MAYMOVE | MREMAP_FIXED, B),
      load(B), load(B + PAGE_SIZE), load(A),
    ], { traceDir: tmp() });
    expect(ret(results[7])).toBe(B);
    expect(val(results[8])).toBe(11);
    expect(val(results[9])).toBe(12);
    expect(ret(results[10])).toBe(EFAULT); // nothing mapped at the old address
    // munmap of the hole, move_page_tables' UNMAP of the old range, do_munmap's UNMAP of it.
    expect(invalidations.map((i) => [i.event, i.start - A, i.end - A])).toEqual([
      ['MMU_NOTIFY_CLEAR', PAGE_SIZE, 2 * PAGE_SIZE],
      ['MMU_NOTIFY_UNMAP', 32 * PAGE_SIZE, 40 * PAGE_SIZE],
      ['MMU_NOTIFY_UNMAP', 0, 2 * PAGE_SIZE],
      ['MMU_NOTIFY_UNMAP', 0, 2 * PAGE_SIZE],
    ]);
    expect(check!.violations).toEqual([]);
  });

  it('MREMAP_DONTUNMAP keeps the old VMA, empty: its private page reads zero again', async () => {
    const { results, check } = await runMm([
      create, anon(4), store(A, 7),
      mremap(A, 1, 1, MREMAP_MAYMOVE | MREMAP_DONTUNMAP),
      (r) => load(ret(r[3])),
      load(A),
    ], { traceDir: tmp() });
    expect(ret(results[3])).toBeGreaterThan(A);
    expect(val(results[4])).toBe(7);
    expect(ret(results[5])).toBe(0);
    expect(val(results[5])).toBe(0);
    expect(check!.violations).toEqual([]);
  });

  it('grows in place when the pages after are free, and refuses to move without MREMAP_MAYMOVE', async () => {
    const { results } = await runMm([
      create, anon(4),
      { msg: { type: 'munmap', pid: 1, addr: A + 2 * PAGE_SIZE, length: 2 * PAGE_SIZE } as never },
      mremap(A, 2, 4, 0), // grows into the hole
      store(A + 3 * PAGE_SIZE, 5),
      anon(1), // right after: A + 4 pages
      mremap(A, 4, 8, 0),
    ]);
    expect(ret(results[3])).toBe(A);
    expect(ret(results[4])).toBe(0);
    expect(ret(results[5])).toBe(A + 4 * PAGE_SIZE);
    expect(ret(results[6])).toBe(ENOMEM);
  });

  it("the kernel's argument checks", async () => {
    const { results } = await runMm([
      create, anon(8),
      mremap(A + 1, 1, 1, MREMAP_MAYMOVE), // unaligned
      mremap(A, 1, 1, MREMAP_FIXED, A + 4 * PAGE_SIZE), // FIXED without MAYMOVE
      mremap(A, 1, 2, MREMAP_MAYMOVE | MREMAP_DONTUNMAP), // DONTUNMAP changing the size
      mremap(A, 2, 2, MREMAP_MAYMOVE | MREMAP_FIXED, A + PAGE_SIZE), // overlapping destination
      mremap(A + 6 * PAGE_SIZE, 4, 4, MREMAP_MAYMOVE), // past the VMA
      mremap(A, 1, 1, 8), // unknown flag
    ]);
    expect(results.slice(2).map(ret)).toEqual([EINVAL, EINVAL, EINVAL, EINVAL, EFAULT, EINVAL]);
  });
});
