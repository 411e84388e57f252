// checkInvariants walks only the PTEs inside VMAs and compares their number with the page table's
// own count (PageTable.nrEntries): a stray PTE in a gap must still be caught, and named.
import { describe, expect, it } from 'vitest';
import { checkInvariants } from '@svmsim/kernel-mm/invariants';
import { Kernel } from '@svmsim/kernel-mm/kernel';
import { PTE_PRESENT, PTE_SWAP, PTE_WRITE, PageTable } from '@svmsim/kernel-mm/page-table';
import { MMAP_BASE_VPN, Process } from '@svmsim/kernel-mm/process';
import { PROT_READ, PROT_WRITE, ZERO_PFN } from '@svmsim/kernel-mm';

function kernelWithOneVma(pages: number): { k: Kernel; p: Process } {
  const k = new Kernel({ frames: 64, swapPages: 0 } as never);
  const p = new Process(1, null, 'app');
  p.vmas.insert({ start: MMAP_BASE_VPN, end: MMAP_BASE_VPN + pages, prot: PROT_READ | PROT_WRITE, shared: false, file: null, pgoff: 0, mergeable: false });
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
    const { k, p } = kernelWithOneVma(4);
    p.pt.set(MMAP_BASE_VPN + 1, PTE_PRESENT, ZERO_PFN);
    expect(() => checkInvariants(k, 'test')).not.toThrow();
  });

  it.each([
    ['below the first VMA', MMAP_BASE_VPN - 1],
    ['just past the VMA', MMAP_BASE_VPN + 4],
    ['far above every VMA', (1 << 20) - 1],
  ])('names a PTE %s', (_, vpn) => {
    const { k, p } = kernelWithOneVma(4);
    p.pt.set(MMAP_BASE_VPN + 1, PTE_PRESENT, ZERO_PFN);
    p.pt.set(vpn, PTE_PRESENT, ZERO_PFN);
    expect(() => checkInvariants(k, 'test')).toThrow(`pid 1 has a PTE at vpn ${vpn} outside every VMA`);
  });
});
