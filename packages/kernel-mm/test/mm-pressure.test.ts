import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENOMEM, ESRCH, FOLL_WRITE, MADV_MERGEABLE, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE } from '@svmsim/kernel-mm';
import { formatViolation } from '@svmsim/kernel-mm/checker';
import { ret, runMm, val, type Step } from '@svmsim/kernel-mm/testing/mm-harness';

const RW = PROT_READ | PROT_WRITE;
const A = 16 * 1024 * 1024;
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-mm-'));
const create: Step = { msg: { type: 'process_create' } as never };
const anon = (pages: number): Step => ({ msg: { type: 'mmap', pid: 1, addr: 0, length: pages * PAGE_SIZE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS } as never });
const store = (pid: number, page: number, value: number, base = A): Step => ({ msg: { type: 'cpu_access', pid, addr: base + page * PAGE_SIZE, write: true, value } as never });
const load = (pid: number, page: number, base = A): Step => ({ msg: { type: 'cpu_access', pid, addr: base + page * PAGE_SIZE, write: false } as never });
const clean = (check: unknown) => expect((check as { violations: never[] }).violations.map(formatViolation)).toEqual([]);

describe('mm: KSM', () => {
  it('merges identical pages of a mergeable VMA and breaks the sharing with COW on write', async () => {
    const dir = tmp();
    const { results, mm, check } = await runMm(
      [create, anon(4), store(1, 0, 5), store(1, 1, 5), store(1, 2, 6), { msg: { type: 'madvise', pid: 1, addr: A, length: 4 * PAGE_SIZE, advice: MADV_MERGEABLE } as never },
        { msg: { type: 'ksm_scan' } as never }, store(1, 1, 9), load(1, 0), load(1, 1)],
      { traceDir: dir, dumpAtEnd: true },
    );
    expect(ret(results[6])).toBe(1);
    expect(mm.ksmMerged).toBe(1);
    expect(mm.cpuFaultsByKind.write_protect).toBeGreaterThanOrEqual(1);
    expect([val(results[8]), val(results[9])]).toEqual([5, 9]);
    clean(check);
  });

  it('does not merge a pinned page', async () => {
    const { results } = await runMm([
      create, anon(2), store(1, 0, 5), store(1, 1, 5),
      { msg: { type: 'get_user_pages', pid: 1, start: A, nr_pages: 1, gup_flags: FOLL_WRITE, pin: true } as never },
      { msg: { type: 'madvise', pid: 1, addr: A, length: 2 * PAGE_SIZE, advice: MADV_MERGEABLE } as never },
      { msg: { type: 'ksm_scan' } as never },
    ]);
    expect(ret(results[6])).toBe(0);
  });
});

describe('mm: writeback', () => {
  it('writes dirty shared file pages back and write-protects them, so the next store faults again', async () => {
    const dir = tmp();
    const F = 64 * 1024 * 1024;
    const map = (pid: number): Step => ({ msg: { type: 'mmap', pid, addr: F, length: 2 * PAGE_SIZE, prot: RW, flags: MAP_SHARED | MAP_FIXED, file: 1, offset: 0 } as never });
    const { results, mm, check } = await runMm(
      [create, { msg: { type: 'file_create', name: 'f', pages: 2 } as never }, map(1), store(1, 0, 3, F), store(1, 1, 4, F),
        { msg: { type: 'writeback' } as never }, store(1, 0, 5, F), { msg: { type: 'munmap', pid: 1, addr: F, length: 2 * PAGE_SIZE } as never },
        { msg: { type: 'reclaim', nr_pages: 16 } as never }, map(1), load(1, 0, F), load(1, 1, F)],
      { traceDir: dir, dumpAtEnd: true },
    );
    expect(ret(results[5])).toBe(2);
    expect(mm.cpuFaultsByKind.write_protect).toBe(1);
    // Reclaim wrote the page dirtied after writeback, then dropped both; they come back from the file.
    expect([val(results[10]), val(results[11])]).toEqual([5, 4]);
    clean(check);
  });
});

describe('mm: the OOM killer', () => {
  it('kills the process with the most memory when reclaim cannot free any, and tells its owner', async () => {
    const steps: Step[] = [create, anon(200)];
    for (let i = 0; i < 200; i++) steps.push(store(1, i, i + 1));
    const { results, mm, r } = await runMm(steps, { mm: { frames: 96, swapPages: 0 } });
    expect(mm.oomKills).toBe(1);
    const failed = results.slice(2).map(ret).filter((x) => x < 0);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((x) => x === ENOMEM || x === ESRCH || x === -14)).toBe(true);
    expect(r.summaries.mm.processes).toBe(0);
  });
});
