// A pinned user MR over a mapping of another device's p2pmem (research/errata.md §11): ib_umem_get
// (drivers/infiniband/core/umem.c v6.0–v6.6) pins with FOLL_LONGTERM | FOLL_WRITE and no
// FOLL_PCI_P2PDMA, so mm's gup meets a MEMORY_DEVICE_PCI_P2PDMA page without the flag and fails
// with -EREMOTEIO (mm/gup.c try_grab_page, v6.2–v6.15); the registration fails whole, nothing
// stays pinned and the pinned_vm charge is given back.
import { describe, expect, it } from 'vitest';
import { EREMOTEIO, MAP_FIXED, MAP_SHARED, PAGE_SIZE } from '@svmsim/kernel-mm';
import { formatViolation } from '@svmsim/kernel-mm/checker';
import type { Step } from '@svmsim/kernel-mm/testing/mm-harness';
import { p2pmemProvider } from '@svmsim/kernel-mm/testing/p2pmem-provider';
import { A, PID, RW, create, mmapAt, of, regMr, run, store } from './rdma-steps.js';

const p2pmemAt = (addr: number, pages: number): Step => ({ msg: { type: 'mmap', pid: PID, addr, length: pages * PAGE_SIZE, prot: RW, flags: MAP_SHARED | MAP_FIXED, p2pmem: 'cmb0' } as never });
const regs = (results: { type: string }[]) => of<{ ret: number }>(results as never, 'ibv_reg_mr_result').map((r) => r.ret);
const B = A + 64 * PAGE_SIZE;

describe('ibv_reg_mr over p2pmem (ib_umem_get, FOLL_LONGTERM)', () => {
  it('a pinned MR over a p2pmem mapping fails with -EREMOTEIO through mm\'s gup; one over host memory beside it still registers', async () => {
    const cmb = p2pmemProvider(16);
    const { results, nic, mm, check } = await run([
      create, p2pmemAt(B, 8), mmapAt(A, 4), store(A, 1),
      regMr('pinned', B, 8),
      regMr('pinned', A, 4),
    ], { extra: [{ id: 'cmb0', actor: cmb }] });
    expect(regs(results)).toEqual([EREMOTEIO, 0]);
    expect(mm.gupEremoteio).toBe(1);
    expect(nic.regErrors).toEqual({ EREMOTEIO: 1 });
    expect(nic.pagesPinned).toBe(4); // nothing of the refused MR stays pinned
    expect(check!.violations.map(formatViolation)).toEqual([]);
  });
});
