// checkInvariants walks only the PTEs inside VMAs and compares their number with the page table's
// own count (PageTable.nrEntries): a stray PTE in a gap must still be caught, and named.
import { describe, expect, it } from 'vitest';
import { checkInvariants } from '@svmsim/kernel-mm/invariants';
import { Kernel } from '@svmsim/kernel-mm/kernel';
import { PTE_PRESENT, PTE_SWAP, PTE_WRITE, PageTable } from '@svmsim/kernel-mm/page-table';
import { MMAP_BASE_VPN, Process } from '@svmsim/kernel-mm/process';
import { PROT_READ, PROT_WRITE, ZERO_PFN } from '@svmsim/kernel-mm';

/** A process with two VMAs of 4 pages, [BASE, BASE + 4) and [BASE + 8, BASE + 12), and a gap between. */
function kernelWithTwoVmas(): { k: Kernel; p: Process } {
  const k = new Kernel({ frames: 64, swapPages: 8 } as never);
  const p = new Process(1, null, 'app');
  for (const start of [MMAP_BASE_VPN, MMAP_BASE_VPN + 8]) {
    p.vmas.insert({ start, end: start + 4, prot: PROT_READ | PROT_WRITE, shared: false, file: null, pgoff: 0, mergeable: false });
  }
  k.procs.set(p.pid, p);
  return { k, p };
}

describe('PageTable.nrEntries', () => {
  it('counts the entries that are not none through set, setFlags and clear', () => {
    const pt = new PageTable();
    pt.set(10, PTE_PRESENT, 3);
    pt.set(10, PTE_PRESENT | PTE_WRITE, 3);
    pt.set(700, PTE_SWAP, 1);
    expect(pt.nrEntries).toBe(2);
    pt.setFlags(700, 0);
    expect(pt.nrEntries).toBe(1);
    pt.clear(10);
    pt.clear(10);
    pt.set(11, 0, 0);
    expect(pt.nrEntries).toBe(0);
  });
});

describe('checkInvariants', () => {
  it('passes a page table whose entries all lie inside the VMAs', () => {
    const { k, p } = kernelWithTwoVmas();
    p.pt.set(MMAP_BASE_VPN + 1, PTE_PRESENT, ZERO_PFN);
    p.pt.set(MMAP_BASE_VPN + 11, PTE_PRESENT, ZERO_PFN);
    expect(() => checkInvariants(k, 'test')).not.toThrow();
  });

  it.each([
    ['below the first VMA', MMAP_BASE_VPN - 1],
    ['in the gap between two VMAs', MMAP_BASE_VPN + 5],
    ['just past the last VMA', MMAP_BASE_VPN + 12],
    ['far above every VMA', (1 << 20) - 1],
  ])('names a PTE %s', (_, vpn) => {
    const { k, p } = kernelWithTwoVmas();
    p.pt.set(MMAP_BASE_VPN + 1, PTE_PRESENT, ZERO_PFN);
    p.pt.set(MMAP_BASE_VPN + 9, PTE_PRESENT, ZERO_PFN);
    p.pt.set(vpn, PTE_PRESENT, ZERO_PFN);
    expect(() => checkInvariants(k, 'test')).toThrow(`pid 1 has a PTE at vpn ${vpn} outside every VMA`);
  });

  it('counts swap entries per slot against swap_map, a slot outside the swap area included, check after check', () => {
    const { k, p } = kernelWithTwoVmas();
    p.pt.set(MMAP_BASE_VPN, PTE_SWAP, 3);
    p.pt.set(MMAP_BASE_VPN + 1, PTE_SWAP, 3);
    expect(() => checkInvariants(k, 'test')).toThrow('swap slot 3 count 0 below its 2 PTEs');
    k.swap.swapMap[3] = 2;
    expect(() => checkInvariants(k, 'test')).not.toThrow(); // the failed check's counts do not linger
    p.pt.set(MMAP_BASE_VPN + 2, PTE_SWAP, 8);
    expect(() => checkInvariants(k, 'test')).toThrow('swap slot 8 count undefined below its 1 PTEs');
  });
});
