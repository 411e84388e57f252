// GPUVM: the GPU's page table (amdgpu_vm.c). A BO is mapped at the GPU virtual address equal to its
// CPU address (as ROCm maps userptr BOs), so an entry is keyed by (pid, virtual page). Each entry
// holds the frame, whether the GPU may write it, and the translation it came from (a pin, or a
// mirror pfn validated at a notifier sequence), which every DMA carries to mm for the checker.
//
// The GPU's TLB (the UTCL2 / MMU translation caches): a DMA translates through it, and an entry
// cleared from the page table stays in the TLB until a flush completes — which is why an
// invalidation callback zaps and then flushes before it returns (amdgpu_vm_update_range +
// amdgpu_gmc_flush_gpu_tlb, kfd_flush_tlb, nouveau's nvif_vmm_pfnclr + the MMU invalidate).
// Writing an entry drops its TLB copy (the update path's own flush: amdgpu_vm_flush at the next
// job, nouveau's PFNMAP); clearing one does not: the caller must flush (flushTlb), or its devices
// go on using the old frame, and the checker sees it.
import { PAGE_SIZE, type Pid, type Translation } from '@svmsim/kernel-mm';

export interface GpuPte {
  pfn: number;
  writable: boolean;
  tr: Translation;
  /** svm-fault: pfn is a device-private VRAM page of this GPU; the access stays in the GPU (never sent to mm). */
  vram?: boolean;
  /** A VRAM BO's page (pfn: its index in the BO): the GPU's own memory, not the process's; never sent to mm. */
  local?: boolean;
}

export class GpuVm {
  private readonly pts = new Map<Pid, Map<number, GpuPte>>();
  /** Entries written that were absent or pointed elsewhere (amdgpu_vm_update_range writes, in pages); a revalidation of an unchanged entry is not one. */
  ptesWritten = 0;
  ptesCleared = 0;
  /** Every (pid, page) ever mapped: a write to one of these again is a rebind (ping-pong's cost). */
  private readonly everMapped = new Set<number>();
  tlbFlushes = 0;
  /** Cached translations by (pid, page): what a DMA uses before the page table. */
  private readonly tlb = new Map<number, GpuPte>();
  /** DMAs that used a TLB entry whose page-table entry had been cleared (between a zap and its flush). */
  staleTlbHits = 0;

  /** The page table's entry (the driver's view: fault handling, revalidation). */
  lookup(pid: Pid, addr: number): GpuPte | undefined {
    return this.pts.get(pid)?.get(Math.floor(addr / PAGE_SIZE));
  }

  /** A DMA's translation: the TLB, else a walk of the page table that fills it. */
  translate(pid: Pid, addr: number): GpuPte | undefined {
    const key = tlbKey(pid, Math.floor(addr / PAGE_SIZE));
    const cached = this.tlb.get(key);
    const pte = this.lookup(pid, addr);
    if (cached) {
      if (cached !== pte) this.staleTlbHits++;
      return cached;
    }
    if (pte) this.tlb.set(key, pte);
    return pte;
  }

  /** A TLB flush has completed: no cached translation is left. `count`: it is one the driver issued (tlbFlushes). */
  flushTlb(count = true): void {
    this.tlb.clear();
    if (count) this.tlbFlushes++;
  }

  /** Map page `vpn` of pid; true if the entry changed (was absent, or had another frame or permission). */
  set(pid: Pid, vpn: number, pte: GpuPte): boolean {
    let pt = this.pts.get(pid);
    if (!pt) this.pts.set(pid, (pt = new Map()));
    const old = pt.get(vpn);
    pt.set(vpn, pte);
    this.tlb.delete(tlbKey(pid, vpn));
    if (old && old.pfn === pte.pfn && old.writable === pte.writable) return false;
    this.ptesWritten++;
    this.everMapped.add(pid * 2 ** 36 + vpn);
    return true;
  }

  /** Entries written again after their first mapping (after an invalidation cleared them, or with a new frame or permission). */
  get rebinds(): number {
    return this.ptesWritten - this.everMapped.size;
  }

  /** Clear the entries of [start, end) (byte addresses); returns how many were mapped. Their TLB copies stay until the caller's flushTlb. */
  clear(pid: Pid, start: number, end: number): number {
    const pt = this.pts.get(pid);
    if (!pt) return 0;
    const s = Math.floor(start / PAGE_SIZE);
    const e = Math.ceil(end / PAGE_SIZE);
    let n = 0;
    if (e - s <= pt.size) {
      for (let vpn = s; vpn < e; vpn++) if (pt.delete(vpn)) n++;
    } else {
      for (const vpn of [...pt.keys()]) if (vpn >= s && vpn < e && pt.delete(vpn)) n++;
    }
    this.ptesCleared += n;
    return n;
  }

  get size(): number {
    let n = 0;
    for (const pt of this.pts.values()) n += pt.size;
    return n;
  }
}

const tlbKey = (pid: Pid, vpn: number): number => pid * 2 ** 36 + vpn;
