// Automatic NUMA balancing: the scanner that turns present PTEs into NUMA hinting entries and the
// hinting fault that restores them. Read: mm/mprotect.c change_protection / change_pte_range
// (MM_CP_PROT_NUMA) / can_change_pte_writable at torvalds/linux 003fde44 (v6.15-era:
// folio_maybe_mapped_shared, the notifier started in change_pud_range). Followed without re-reading
// them here: kernel/sched/fair.c task_numa_work and its sysctl defaults, mm/memory.c do_numa_page,
// mm/mempolicy.c change_prot_numa (v6.15).
//
//   task_numa_work      every scan period, for each process: mmap_read_trylock (busy: skip this
//                       period); from mm->numa_scan_offset on, VMA by VMA, change_prot_numa over
//                       HPAGE-aligned chunks until scan size pages were updated (or 8× that walked);
//                       past the last VMA the offset wraps to 0 (reset_ptenuma_scan, numa_scan_seq++).
//                       VMAs skipped (trace sched_skip_vma_numa): read-only file mappings
//                       (NUMAB_SKIP_SHARED_RO: "shared library pages … cache replicated"), and
//                       inaccessible (PROT_NONE) VMAs (NUMAB_SKIP_INACCESSIBLE). Nothing here is
//                       VM_IO / VM_PFNMAP / hugetlb / VM_MIXEDMAP (NUMAB_SKIP_UNSUITABLE).
//   change_prot_numa    under the range lock; if any entry of [start, end) is populated, ONE
//                       MMU_NOTIFY_PROTECTION_VMA invalidation over [start, end) (change_pud_range
//                       starts it at the first populated PUD, before looking at any PTE: devices
//                       are invalidated even when every PTE is then skipped). Per present PTE
//                       (change_pte_range, prot_numa), skipped: already protnone; the zero page (no
//                       folio); KSM pages; in a COW (private) mapping a page maybe DMA-pinned or
//                       maybe mapped shared (mapcount > 1: after fork); a dirty page-cache page
//                       (MIGRATE_ASYNC cannot move it). Device-private entries are not present.
//                       Others become protnone: WRITE cleared (pte_modify(PAGE_NONE)), DIRTY, YOUNG
//                       and SOFT_DIRTY kept. Counted as numa_pte_updates.
//   do_numa_page        a CPU (or a device's hmm_range_fault / gup write fault) touching a
//                       protnone PTE: the PTE gets vma->vm_page_prot back, writable if vm_page_prot
//                       is or can_change_pte_writable says so (exclusive anon; dirty shared; not
//                       while soft-dirty tracking wants a write fault); young. numa_hint_faults.
//
// One node: numa_migrate_check never finds a better node, so no page migrates (every hint fault
// is numa_hint_faults_local) and the cost is the invalidation, the TLB shootdown the PTE change
// stands for, the hint faults of the CPU, and the devices' re-faults. Not modelled: the
// single-threaded-task skip (target_node == folio_nid when mm_users == 1: the processes here are
// taken as multi-threaded), the per-VMA numab_state (scan delay per VMA, skipping VMAs the task
// has not touched: NUMAB_SKIP_PID_INACTIVE), the adaptive scan period (update_task_scan_period
// between scan_period_min and _max): the period stays the configured one.
//
// The interleaving a mirroring device sees (no driver filters PROTECTION_VMA: test_hmm.c, nouveau,
// amdgpu_hmm, kfd_svm and mlx5 each zap or evict for it):
//   mm (task_numa_work)                       device
//   invalidate_range_start(PROTECTION_VMA) →  lock; set_seq; zap its entries; ack
//   PTEs → protnone; range_end
//                                             next access: device fault → hmm_range_fault →
//                                             handle_mm_fault → do_numa_page (PTE restored) → map
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './invalidate.js';
import type { Kernel } from './kernel.js';
import { isExclusiveAnon, type FaultDone } from './fault.js';
import { mmap_read_trylock, mmap_read_unlock } from './mmap-lock.js';
import { PTE_DIRTY, PTE_KIND_MASK, PTE_PRESENT, PTE_PROTNONE, PTE_SOFT_DIRTY, PTE_WAS_WRITE, PTE_WRITE, PTE_YOUNG } from './page-table.js';
import { PG_ANON, PG_DIRTY, PG_KSM } from './physmem.js';
import type { Process } from './process.js';
import { PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE, ZERO_PFN } from './protocol.js';
import { processTask } from './task.js';
import { vmaNeedsDirtyTracking, vmaWritable, type Vma } from './vma.js';

/** sysctl_numa_balancing_scan_delay (kernel/sched/fair.c): 1000 ms before a task's first scan. */
export const NUMA_BALANCING_SCAN_DELAY_NS = 1000e6;
/** sysctl_numa_balancing_scan_period_min: 1000 ms between scans (the period adapts up to 60 s in the kernel). */
export const NUMA_BALANCING_SCAN_PERIOD_NS = 1000e6;
/** sysctl_numa_balancing_scan_size: 256 MB a scan, in 4 KiB pages. */
export const NUMA_BALANCING_SCAN_SIZE_PAGES = (256 << 20) / PAGE_SIZE;
/** HPAGE_SIZE in pages: task_numa_work rounds each chunk's end up to it. */
const HPAGE_PAGES = 512;

export interface NumaBalancingConfig {
  /** Before the first scan (ns). Default NUMA_BALANCING_SCAN_DELAY_NS. */
  scanDelayNs?: number;
  /** Between scans (ns). Default NUMA_BALANCING_SCAN_PERIOD_NS. */
  scanPeriodNs?: number;
  /** PTE pages a scan updates at most (pages). Default NUMA_BALANCING_SCAN_SIZE_PAGES. */
  scanSizePages?: number;
}

function bump(r: Record<string, number>, key: string): void {
  r[key] = (r[key] ?? 0) + 1;
}

/** The periodic tick (task_tick_numa → task_numa_work for every process), then the next tick. */
export function numa_balancing_tick(k: Kernel): void {
  const cfg = k.cfg.numaBalancing!;
  const pids = [...k.procs.values()].filter((p) => p.alive && !p.exiting).map((p) => p.pid);
  const next = (i: number): void => {
    if (i >= pids.length) {
      k.ctx.after(cfg.scanPeriodNs ?? NUMA_BALANCING_SCAN_PERIOD_NS, { type: 'mm_numa_tick' });
      return;
    }
    const p = k.proc(pids[i]);
    if (!p) return k.bounce(() => next(i + 1));
    task_numa_work(k, p, () => k.bounce(() => next(i + 1)));
  };
  next(0);
}

/** task_numa_work for one process: done(PTEs updated). */
export function task_numa_work(k: Kernel, p: Process, done: (updated: number) => void): void {
  const cfg = k.cfg.numaBalancing ?? {};
  if (p.exiting || !mmap_read_trylock(k, p, '')) {
    k.stats.numaScansSkippedLocked++;
    return done(0);
  }
  k.stats.numaScans++;
  let pages = cfg.scanSizePages ?? NUMA_BALANCING_SCAN_SIZE_PAGES;
  let virtpages = pages * 8;
  let start = p.numaScanOffset;
  let updatedTotal = 0;
  let vmas = p.vmas.list.filter((v) => v.end > start);
  if (vmas.length === 0) {
    // reset_ptenuma_scan: from the start again, the next sequence.
    p.numaScanSeq++;
    start = 0;
    vmas = p.vmas.list.slice();
  }
  const out = (offset: number): void => {
    p.numaScanOffset = offset;
    mmap_read_unlock(k, p, '');
    if (k.ctx.tracing) k.ctx.trace('task_numa_work', { pid: p.pid, updated: updatedTotal, offset: offset * PAGE_SIZE, seq: p.numaScanSeq });
    done(updatedTotal);
  };
  const vmaStep = (vi: number): void => {
    if (vi >= vmas.length) {
      p.numaScanSeq++;
      return out(0); // walked past the last VMA: reset_ptenuma_scan
    }
    const vma = vmas[vi];
    const skip = vma_skip_reason(vma);
    if (skip !== null) {
      bump(k.stats.numaVmaSkips, skip);
      if (k.ctx.tracing) k.ctx.trace('sched_skip_vma_numa', { pid: p.pid, start: vma.start * PAGE_SIZE, end: vma.end * PAGE_SIZE, reason: skip });
      return k.bounce(() => vmaStep(vi + 1));
    }
    const chunk = (): void => {
      start = Math.max(start, vma.start);
      const end = Math.min(Math.ceil((start + pages) / HPAGE_PAGES) * HPAGE_PAGES, vma.end);
      change_prot_numa(k, p, vma, start, end, (updated) => {
        updatedTotal += updated;
        if (updated > 0) pages -= end - start;
        virtpages -= end - start;
        start = end;
        if (pages <= 0 || virtpages <= 0) return out(start);
        if (end !== vma.end) return k.bounce(chunk);
        k.bounce(() => vmaStep(vi + 1));
      });
    };
    chunk();
  };
  vmaStep(0);
}

/** The VMA skips of task_numa_work that apply here, or null. */
function vma_skip_reason(vma: Vma): string | null {
  if (vma.file !== null && (vma.prot & (PROT_READ | PROT_WRITE)) === PROT_READ) return 'NUMAB_SKIP_SHARED_RO';
  if ((vma.prot & (PROT_READ | PROT_WRITE | PROT_EXEC)) === 0) return 'NUMAB_SKIP_INACCESSIBLE';
  return null;
}

/** change_prot_numa → change_protection(MM_CP_PROT_NUMA) over [start, end) of vma: done(PTEs updated). */
export function change_prot_numa(k: Kernel, p: Process, vma: Vma, start: number, end: number, done: (updated: number) => void): void {
  p.locks.lock(start, end, 'change_prot_numa', (lock) => {
    let populated = false;
    p.pt.forEach(start, end, () => (populated = true));
    if (!populated || p.exiting) {
      p.locks.unlock(lock);
      return done(0);
    }
    const range = { start: start * PAGE_SIZE, end: end * PAGE_SIZE, event: 'MMU_NOTIFY_PROTECTION_VMA' as const, blockable: true, owner: null, task: processTask(p), caller: 'change_prot_numa' };
    mmu_notifier_invalidate_range_start(k, p, range, (_ret, inv) => {
      let updated = 0;
      p.pt.forEach(start, end, (vpn, f, pfn) => {
        if ((f & PTE_KIND_MASK) !== PTE_PRESENT) return;
        const skip = prot_numa_skip(k, vma, f, pfn);
        if (skip !== null) return bump(k.stats.numaPteSkips, skip);
        p.pt.setFlags(vpn, (f & ~PTE_WRITE) | PTE_PROTNONE | (f & PTE_WRITE ? PTE_WAS_WRITE : 0));
        updated++;
      });
      k.stats.numaPteUpdates += updated;
      mmu_notifier_invalidate_range_end(k, inv);
      p.locks.unlock(lock);
      done(updated);
    });
  });
}

/** change_pte_range's prot_numa skips (v6.15), or null when the PTE becomes protnone. */
function prot_numa_skip(k: Kernel, vma: Vma, f: number, pfn: number): string | null {
  if (f & PTE_PROTNONE) return 'protnone';
  if (pfn === ZERO_PFN) return 'zero_page';
  const pf = k.pm.flags[pfn];
  if (pf & PG_KSM) return 'ksm';
  if (!vma.shared && (k.pm.maybeDmaPinned(pfn) || k.pm.mapcount[pfn] > 1)) return 'shared_cow';
  if (!(pf & PG_ANON) && pf & PG_DIRTY) return 'dirty_file';
  return null;
}

/** vma_soft_dirty_enabled: soft-dirty tracking is on once clear_refs has cleared VM_SOFTDIRTY. */
export const vma_soft_dirty_enabled = (vma: Vma): boolean => !vma.softDirty;

/**
 * can_change_pte_writable (mm/mprotect.c, v6.15) for a present, not protnone PTE `f` mapping pfn:
 * not while soft-dirty tracking wants the write fault; private: an exclusive anon page; shared:
 * the PTE is dirty (the filesystem has been told).
 */
export function can_change_pte_writable(k: Kernel, vma: Vma, f: number, pfn: number): boolean {
  if (!vmaWritable(vma)) return false;
  if (vma_soft_dirty_enabled(vma) && !(f & PTE_SOFT_DIRTY)) return false;
  if (!vma.shared) return isExclusiveAnon(k, pfn);
  return (f & PTE_DIRTY) !== 0;
}

/** vma->vm_page_prot has write: a writable shared mapping that needs no write notify (no dirty tracking, no soft-dirty tracking). */
const vm_page_prot_writable = (vma: Vma): boolean => vmaWritable(vma) && vma.shared && !vmaNeedsDirtyTracking(vma) && !vma_soft_dirty_enabled(vma);

/**
 * do_numa_page, the caller holding the page's range lock: restore the PTE (one node: no
 * migration). A write that finds it still read-only takes the write fault next (the access retries).
 */
export function do_numa_page(k: Kernel, p: Process, vma: Vma, vpn: number, _flags: number, done: FaultDone): void {
  const f = p.pt.flags(vpn);
  const pfn = p.pt.value(vpn);
  const base = f & ~(PTE_PROTNONE | PTE_WAS_WRITE | PTE_WRITE);
  const writable = vm_page_prot_writable(vma) || can_change_pte_writable(k, vma, base, pfn);
  p.pt.setFlags(vpn, base | PTE_YOUNG | (writable ? PTE_WRITE : 0));
  k.stats.numaHintFaults++;
  k.stats.numaHintFaultsLocal++;
  done(0);
}
