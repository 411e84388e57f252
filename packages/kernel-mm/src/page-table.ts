// A process's CPU page table: one entry per virtual page, allocated lazily in tables of 512
// entries (one PTE page covering 2 MiB, as on x86-64), so a sparse 2^20-page address space costs
// only the tables it touches.
//
// An entry is a value (Int32) and a kind-and-flags byte:
//   kind NONE              — pte_none
//   kind PRESENT           — value = pfn (ZERO_PFN for the shared zero page); WRITE/DIRTY/YOUNG bits
//   kind SWAP              — value = swap slot (a swap entry)
//   kind DEVICE_PRIVATE    — value = device-private pfn (a device-private swap entry)
//   kind DEVICE_EXCLUSIVE  — value = pfn of the page made exclusive to a device
//   kind MIGRATION         — value = pfn (or device pfn) being migrated (a migration entry); faults wait
// A PRESENT entry may be a NUMA hinting entry (PTE_PROTNONE: pte_protnone, present to the kernel,
// inaccessible to the CPU until do_numa_page restores it) and carries the soft-dirty bit
// (PTE_SOFT_DIRTY: x86 _PAGE_SOFT_DIRTY, set by pte_mkdirty, cleared by clear_refs).
import { assert } from './physmem.js';

export const PTE_NONE = 0;
export const PTE_PRESENT = 1;
export const PTE_SWAP = 2;
export const PTE_DEVICE_PRIVATE = 3;
export const PTE_DEVICE_EXCLUSIVE = 4;
export const PTE_MIGRATION = 5;
export const PTE_KIND_MASK = 7;
export const PTE_WRITE = 1 << 3;
export const PTE_DIRTY = 1 << 4;
export const PTE_YOUNG = 1 << 5;
/** On a DEVICE_EXCLUSIVE or MIGRATION entry: the PTE was writable before (restore it so). */
export const PTE_WAS_WRITE = 1 << 6;
/** On a MIGRATION entry: the page being migrated is device-private (value = its device pfn). */
export const PTE_MIGRATION_DEVICE = 1 << 7;
/**
 * On a PRESENT entry: a NUMA hinting entry (change_prot_numa: pte_modify(PAGE_NONE)); WRITE is
 * cleared with it and PTE_WAS_WRITE keeps whether it was writable (for the oracle's view of a
 * pinned page's DMA; do_numa_page decides writability afresh, by can_change_pte_writable).
 */
export const PTE_PROTNONE = 1 << 8;
/** On a PRESENT entry: the soft-dirty bit (pagemap bit 55). */
export const PTE_SOFT_DIRTY = 1 << 9;
/** pte_mkdirty on x86: the dirty bit and the soft-dirty bit together. */
export const PTE_MKDIRTY = PTE_DIRTY | PTE_SOFT_DIRTY;

const TABLE_SHIFT = 9;
const TABLE_SIZE = 1 << TABLE_SHIFT;
const TABLE_MASK = TABLE_SIZE - 1;

/** Virtual pages per address space: 2^20 pages = 4 GiB. */
export const VPN_LIMIT = 1 << 20;

export class PageTable {
  private readonly values: (Int32Array | undefined)[] = new Array(VPN_LIMIT >> TABLE_SHIFT);
  private readonly bits: (Uint16Array | undefined)[] = new Array(VPN_LIMIT >> TABLE_SHIFT);
  tablesAllocated = 0;
  /**
   * Entries whose byte is not PTE_NONE, kept by set/setFlags/clear: the invariant check compares it
   * with the entries it finds inside the VMAs, so it need not scan the gaps between them for strays.
   */
  nrEntries = 0;

  kind(vpn: number): number {
    const b = this.bits[vpn >> TABLE_SHIFT];
    return b === undefined ? PTE_NONE : b[vpn & TABLE_MASK] & PTE_KIND_MASK;
  }

  flags(vpn: number): number {
    const b = this.bits[vpn >> TABLE_SHIFT];
    return b === undefined ? 0 : b[vpn & TABLE_MASK];
  }

  value(vpn: number): number {
    const v = this.values[vpn >> TABLE_SHIFT];
    return v === undefined ? 0 : v[vpn & TABLE_MASK];
  }

  set(vpn: number, kindAndFlags: number, value: number): void {
    assert(vpn >= 0 && vpn < VPN_LIMIT, `pte set: vpn ${vpn} out of range`);
    const t = vpn >> TABLE_SHIFT;
    let b = this.bits[t];
    let v = this.values[t];
    if (b === undefined || v === undefined) {
      if (kindAndFlags === PTE_NONE) return;
      b = this.bits[t] = new Uint16Array(TABLE_SIZE);
      v = this.values[t] = new Int32Array(TABLE_SIZE);
      this.tablesAllocated++;
    }
    this.nrEntries += (kindAndFlags !== PTE_NONE ? 1 : 0) - (b[vpn & TABLE_MASK] !== PTE_NONE ? 1 : 0);
    b[vpn & TABLE_MASK] = kindAndFlags;
    v[vpn & TABLE_MASK] = value;
  }

  setFlags(vpn: number, kindAndFlags: number): void {
    const b = this.bits[vpn >> TABLE_SHIFT];
    assert(b !== undefined, `pte setFlags: no table for vpn ${vpn}`);
    this.nrEntries += (kindAndFlags !== PTE_NONE ? 1 : 0) - (b[vpn & TABLE_MASK] !== PTE_NONE ? 1 : 0);
    b[vpn & TABLE_MASK] = kindAndFlags;
  }

  clear(vpn: number): void {
    const b = this.bits[vpn >> TABLE_SHIFT];
    if (b === undefined) return;
    if (b[vpn & TABLE_MASK] !== PTE_NONE) this.nrEntries--;
    b[vpn & TABLE_MASK] = PTE_NONE;
    this.values[vpn >> TABLE_SHIFT]![vpn & TABLE_MASK] = 0;
  }

  /** Calls fn for every non-none entry in [startVpn, endVpn), skipping unallocated tables. */
  forEach(startVpn: number, endVpn: number, fn: (vpn: number, flags: number, value: number) => void): void {
    let vpn = startVpn;
    while (vpn < endVpn) {
      const t = vpn >> TABLE_SHIFT;
      const b = this.bits[t];
      const tableEnd = Math.min(endVpn, (t + 1) << TABLE_SHIFT);
      if (b === undefined) {
        vpn = tableEnd;
        continue;
      }
      const v = this.values[t]!;
      for (; vpn < tableEnd; vpn++) {
        const f = b[vpn & TABLE_MASK];
        if (f !== PTE_NONE) fn(vpn, f, v[vpn & TABLE_MASK]);
      }
    }
  }

  bytes(): number {
    return this.tablesAllocated * TABLE_SIZE * 6;
  }
}
