import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  EFAULT, FOLL_LONGTERM, FOLL_WRITE, MADV_DONTNEED, MADV_PAGEOUT, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, MIGRATE_VMA_SELECT_SYSTEM, PAGE_SIZE, PROT_READ, PROT_WRITE,
  type DumpResult,
} from '@svmsim/kernel-mm';
import { formatViolation } from '@svmsim/kernel-mm/checker';
import { ret, runMm, val, type Step } from '@svmsim/kernel-mm/testing/mm-harness';

const RW = PROT_READ | PROT_WRITE;
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-mm-'));
const A = 16 * 1024 * 1024; // the first mmap lands at MMAP_BASE (16 MiB)

const create: Step = { msg: { type: 'process_create' } as never };
const anon = (pages: number, prot = RW): Step => ({ msg: { type: 'mmap', pid: 1, addr: 0, length: pages * PAGE_SIZE, prot, flags: MAP_PRIVATE | MAP_ANONYMOUS } as never });
const store = (pid: number, page: number, value: number, base = A): Step => ({ msg: { type: 'cpu_access', pid, addr: base + page * PAGE_SIZE, write: true, value } as never });
const load = (pid: number, page: number, base = A): Step => ({ msg: { type: 'cpu_access', pid, addr: base + page * PAGE_SIZE, write: false } as never });

function clean(check: ReturnType<typeof Object> | undefined) {
  const c = check as { violations: unknown[]; ok: boolean } | undefined;
  expect(c, 'the checker ran').toBeDefined();
  expect(c!.violations.map((v) => formatViolation(v as never))).toEqual([]);
}

describe('mm: anonymous memory and faults', () => {
  it('maps anonymous memory: a load reads the zero page, a store faults in a page, a load reads it back', async () => {
    const dir = tmp();
    const { results, mm, check } = await runMm([create, anon(4), load(1, 0), store(1, 0, 42), load(1, 0), load(1, 3)], { traceDir: dir, dumpAtEnd: true });
    expect(ret(results[1])).toBe(A);
    expect(val(results[2])).toBe(0);
    expect(val(results[4])).toBe(42);
    expect(val(results[5])).toBe(0);
    expect(mm.cpuFaultsByKind).toMatchObject({ anonymous: 2, write_protect: 1 }); // zero page read, then write over it
    clean(check);
  });

  it('refuses an access outside every VMA and a store to a read-only mapping with -EFAULT', async () => {
    const { results } = await runMm([create, anon(1, PROT_READ), store(1, 0, 1), load(1, 5)]);
    expect(ret(results[2])).toBe(EFAULT);
    expect(ret(results[3])).toBe(EFAULT);
  });

  it('copies on write after fork: parent and child each see their own value', async () => {
    const dir = tmp();
    const { results, mm, check } = await runMm(
      [create, anon(2), store(1, 0, 7), { msg: { type: 'fork', pid: 1 } as never }, store(2, 0, 8), load(1, 0), load(2, 0), store(1, 1, 9), load(2, 1)],
      { traceDir: dir, dumpAtEnd: true },
    );
    expect(ret(results[3])).toBe(2);
    expect(val(results[5])).toBe(7);
    expect(val(results[6])).toBe(8);
    expect(val(results[8])).toBe(0);
    expect(mm.cowCopies).toBeGreaterThanOrEqual(1);
    clean(check);
  });

  it('munmap drops the pages and MADV_DONTNEED makes them read zero', async () => {
    const dir = tmp();
    const { results, check } = await runMm(
      [create, anon(4), store(1, 0, 5), store(1, 1, 6), { msg: { type: 'madvise', pid: 1, addr: A, length: PAGE_SIZE, advice: MADV_DONTNEED } as never }, load(1, 0), load(1, 1),
        { msg: { type: 'munmap', pid: 1, addr: A + PAGE_SIZE, length: PAGE_SIZE } as never }, load(1, 1)],
      { traceDir: dir, dumpAtEnd: true },
    );
    expect(val(results[5])).toBe(0);
    expect(val(results[6])).toBe(6);
    expect(ret(results[8])).toBe(EFAULT);
    clean(check);
  });
});

describe('mm: dump', () => {
  it('marks a page under an open migration (migrate_vma_setup, no finalize yet) as migrating, not as a RAM page', async () => {
    const steps: Step[] = [
      create, anon(2), store(1, 0, 7), store(1, 1, 8),
      { msg: { type: 'mmap_read_lock', pid: 1 } as never }, // a driver's migrate_vma_setup holds it
      { msg: { type: 'migrate_vma_setup', pid: 1, start: A, end: A + PAGE_SIZE, flags: MIGRATE_VMA_SELECT_SYSTEM, pgmap_owner: 'app' } as never },
      { msg: { type: 'dump' } as never },
    ];
    const { dumped, r } = await runMm(steps);
    expect(r.reason).toBe('app: dumped');
    expect(dumped!.map((p) => [p.addr - A, p.where, p.value])).toEqual([
      [0, 'migrating', 0],
      [PAGE_SIZE, 'ram', 8],
    ]);
  });
});

describe('mm: files, swap and reclaim', () => {
  it('shares a MAP_SHARED file page between processes and keeps MAP_PRIVATE copies private', async () => {
    const dir = tmp();
    const F = 64 * 1024 * 1024;
    const { results, check } = await runMm(
      [
        create, create,
        { msg: { type: 'file_create', name: 'data', pages: 4 } as never },
        { msg: { type: 'mmap', pid: 1, addr: F, length: 4 * PAGE_SIZE, prot: RW, flags: MAP_SHARED | 0x10, file: 1, offset: 0 } as never },
        { msg: { type: 'mmap', pid: 2, addr: F, length: 4 * PAGE_SIZE, prot: RW, flags: MAP_SHARED | 0x10, file: 1, offset: 0 } as never },
        { msg: { type: 'mmap', pid: 2, addr: 2 * F, length: 4 * PAGE_SIZE, prot: RW, flags: MAP_PRIVATE | 0x10, file: 1, offset: 0 } as never },
        store(1, 0, 11, F), load(2, 0, F), load(2, 0, 2 * F), store(2, 0, 12, 2 * F), load(1, 0, F), load(2, 0, 2 * F),
      ],
      { traceDir: dir, dumpAtEnd: true },
    );
    expect(val(results[7])).toBe(11);
    expect(val(results[8])).toBe(11);
    expect(val(results[10])).toBe(11);
    expect(val(results[11])).toBe(12);
    clean(check);
  });

  it('swaps anonymous pages out under MADV_PAGEOUT and back in on the next touch, contents intact', async () => {
    const dir = tmp();
    const steps: Step[] = [create, anon(8)];
    for (let i = 0; i < 8; i++) steps.push(store(1, i, 100 + i));
    steps.push({ msg: { type: 'madvise', pid: 1, addr: A, length: 8 * PAGE_SIZE, advice: MADV_PAGEOUT } as never });
    for (let i = 0; i < 8; i++) steps.push(load(1, i));
    const { results, mm, check } = await runMm(steps, { traceDir: dir, dumpAtEnd: true });
    expect(mm.swapOuts).toBe(8);
    expect(mm.swapIns).toBe(8);
    expect(results.slice(11).map(val)).toEqual([100, 101, 102, 103, 104, 105, 106, 107]);
    clean(check);
  });

  it('keeps pinned anonymous pages out of reclaim and frees them for reclaim after unpin', async () => {
    const steps: Step[] = [create, anon(4), store(1, 0, 1), store(1, 1, 2),
      { msg: { type: 'get_user_pages', pid: 1, start: A, nr_pages: 1, gup_flags: FOLL_WRITE | FOLL_LONGTERM, pin: true } as never },
      { msg: { type: 'madvise', pid: 1, addr: A, length: 2 * PAGE_SIZE, advice: MADV_PAGEOUT } as never },
    ];
    const { results, mm } = await runMm(steps);
    expect(ret(results[4])).toBe(1);
    expect(mm.swapOuts).toBe(1); // page 1 only: page 0 is pinned
  });

  it('reclaims under memory pressure with kswapd and keeps every word', async () => {
    const dir = tmp();
    const steps: Step[] = [create, anon(200)];
    for (let i = 0; i < 200; i++) steps.push(store(1, i, 1000 + i));
    for (let i = 0; i < 200; i += 7) steps.push(load(1, i));
    const { mm, check, results } = await runMm(steps, { mm: { frames: 128, swapPages: 256 }, traceDir: dir, dumpAtEnd: true });
    expect(mm.swapOuts).toBeGreaterThan(60);
    expect(mm.kswapdRuns).toBeGreaterThan(0);
    expect(results.slice(202).map(val)).toEqual(Array.from({ length: 29 }, (_, j) => 1000 + j * 7));
    clean(check);
  });
});
