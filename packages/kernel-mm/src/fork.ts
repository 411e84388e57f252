// fork (kernel/fork.c dup_mmap → mm/memory.c copy_page_range / copy_pte_range / copy_present_pte,
// copy_nonpresent_pte). Followed: v6.6–v6.15.
//
//   The parent's address space is locked for the whole copy (mmap write lock). VMA by VMA:
//   for a COW mapping (private) with populated PTEs, MMU_NOTIFY_PROTECTION_PAGE over the VMA in
//   the parent — its writable PTEs are about to become read-only — and only after the acks the
//   VMA's PTEs are copied and its invalidation ends, before the next VMA's starts:
//     anon page, mm has MMF_HAS_PINNED and the page is maybe DMA-pinned → the child gets a copy now
//       (folio_try_dup_anon_rmap fails → copy_present_page); the parent keeps its writable PTE
//     other anon page → both PTEs read-only, the page shared (COW on the next write)
//     file page in a private mapping → shared read-only, as it was
//   Shared mappings are shared as they are. Swap entries are duplicated (swap_duplicate).
//   Device-private entries are shared, read-only in both for COW mappings.
//   Device-exclusive entries (simplified): the child maps the frame read-only; the parent keeps
//   its exclusive entry. The kernel restores the parent's PTE first (try_restore_exclusive_pte).
import type { Envelope, Message } from '@svmsim/runtime';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './invalidate.js';
import type { Kernel } from './kernel.js';
import { PTE_DEVICE_EXCLUSIVE, PTE_DEVICE_PRIVATE, PTE_DIRTY, PTE_KIND_MASK, PTE_PRESENT, PTE_SWAP, PTE_WAS_WRITE, PTE_WRITE, VPN_LIMIT } from './page-table.js';
import { PG_ANON, assert } from './physmem.js';
import { Process } from './process.js';
import { p2pdmaVmaRefs } from './device-memory.js';
import { vmaWritable, type Vma } from './vma.js';
import { ENOMEM, ESRCH, PAGE_SIZE, ZERO_PFN, type Fork } from './protocol.js';
import { processTask } from './task.js';
import { mmap_write_lock, mmap_write_unlock } from './mmap-lock.js';

export function sys_fork(k: Kernel, env: Envelope<Message>, m: Fork): void {
  const p = k.proc(m.pid);
  if (!p || p.exiting) return k.ctx.reply(env, { type: 'syscall_result', ret: ESRCH });
  // dup_mmap: mmap_write_lock_killable(oldmm), then (here) the range lock over everything.
  mmap_write_lock(k, p, () => p.locks.lock(0, VPN_LIMIT, 'fork', (lock) => {
    if (p.exiting || !p.alive) {
      p.locks.unlock(lock);
      mmap_write_unlock(k, p);
      return k.ctx.reply(env, { type: 'syscall_result', ret: ESRCH });
    }
    const c = new Process(k.nextPid++, p.pid, p.comm);
    c.owner = p.owner;
    for (const v of p.vmas.list) c.vmas.list.push({ ...v });
    const vmas = [...p.vmas.list];
    // The child's mm exists while its VMAs are copied (the rmap finds its PTEs: reclaim, the
    // invariant check), but it is not a task yet: not alive (no OOM pick, no NUMA scan, no
    // syscalls) and locked whole (dup_mmap holds the new mm's mmap_write_lock too), so rmap
    // walkers' trylocks fail on it.
    c.alive = false;
    c.forking = true;
    const childLock = c.locks.tryLock(0, VPN_LIMIT, 'fork');
    assert(childLock >= 0, `fork: the new pid ${c.pid} is already locked`);
    k.procs.set(c.pid, c);
    // dup_mmap calls copy_page_range once per VMA, in order; for a COW mapping it is
    // invalidate_range_start(PROTECTION_PAGE over the VMA), the copy, invalidate_range_end, so
    // each VMA is its own notifier epoch (mm/memory.c copy_page_range, v6.15). No device can map
    // a copied VMA again before the fork returns (that needs mmap_read_lock).
    const next = (i: number): void => {
      if (i === vmas.length) return finish(0);
      const v = vmas[i];
      if (v.shared || !populated(p, v)) {
        const ret = copyVma(v);
        return ret === 0 ? next(i + 1) : finish(ret);
      }
      const range = { start: v.start * PAGE_SIZE, end: v.end * PAGE_SIZE, event: 'MMU_NOTIFY_PROTECTION_PAGE' as const, blockable: true, owner: null, task: processTask(p), caller: 'copy_page_range' };
      mmu_notifier_invalidate_range_start(k, p, range, (_ret, inv) => {
        const ret = copyVma(v);
        mmu_notifier_invalidate_range_end(k, inv);
        if (ret !== 0) return finish(ret);
        k.bounce(() => next(i + 1));
      });
    };
    // The oracle's fork instant is per VMA, when its PTEs are copied: a write after it (a DMA
    // through a pin into a page copied eagerly, say) is the parent's alone.
    let ranVma = false;
    const copyVma = (v: Vma): number => {
      const ret = copy_page_range(k, p, c, v);
      if (ret !== 0) return ret;
      k.oracle('fork', { pid: p.pid, child: c.pid, start: v.start * PAGE_SIZE, end: v.end * PAGE_SIZE });
      ranVma = true;
      return 0;
    };
    const finish = (ret: number) => {
      if (ret === 0) {
        if (vmas.length === 0) k.oracle('fork', { pid: p.pid, child: c.pid });
        for (const v of c.vmas.list) p2pdmaVmaRefs(k, v, true);
        c.alive = true;
        c.forking = false;
      } else {
        // Undo the child's half-made copy; the parent's PTEs stay write-protected (harmless: COW faults).
        c.pt.forEach(0, VPN_LIMIT, (vpn) => k.zapPte(c, vpn));
        c.forking = false;
        k.procs.delete(c.pid);
        if (ranVma) k.oracle('process_exit', { pid: c.pid });
      }
      c.locks.unlock(childLock);
      p.locks.unlock(lock);
      mmap_write_unlock(k, p);
      k.replyAfter(env, { type: 'syscall_result', ret: ret === 0 ? c.pid : ret }, k.costs.syscallNs);
    };
    next(0);
  }));
}

/** A VMA with some PTE (the stand-in for vma_needs_copy's anon_vma: nothing to copy otherwise). */
function populated(p: Process, v: Vma): boolean {
  let any = false;
  p.pt.forEach(v.start, v.end, () => (any = true));
  return any;
}

/** copy_page_range of one VMA into the child: 0, or -ENOMEM (an eager copy found no page). */
function copy_page_range(k: Kernel, p: Process, c: Process, v: Vma): number {
  const pm = k.pm;
  let failed = 0;
  const isCow = !v.shared;
  p.pt.forEach(v.start, v.end, (vpn, f, val) => {
    if (failed) return;
    switch (f & PTE_KIND_MASK) {
      case PTE_PRESENT: {
        if (val === ZERO_PFN) return c.pt.set(vpn, f & ~PTE_WRITE, ZERO_PFN);
        const anon = (pm.flags[val] & PG_ANON) !== 0;
        if (isCow && anon && p.hasPinned && pm.maybeDmaPinned(val)) {
          const copy = pm.alloc(true);
          if (copy < 0) {
            failed = ENOMEM;
            return;
          }
          pm.flags[copy] |= PG_ANON;
          pm.anonExclusive[copy] = 1; // the child's own copy; the parent's page stays exclusive
          pm.content[copy] = pm.content[val];
          k.mapPresent(c, vpn, copy, vmaWritable(v), true);
          pm.put(copy);
          k.stats.cowCopies++;
          return;
        }
        const write = isCow ? false : (f & PTE_WRITE) !== 0;
        if (isCow) p.pt.setFlags(vpn, f & ~PTE_WRITE);
        // folio_try_dup_anon_rmap_pte: the page is shared with the child now, no longer exclusive.
        if (anon) pm.anonExclusive[val] = 0;
        k.mapPresent(c, vpn, val, write, (f & PTE_DIRTY) !== 0);
        return;
      }
      case PTE_SWAP:
        k.swap.dup(val);
        c.pt.set(vpn, f, val);
        return;
      case PTE_DEVICE_PRIVATE:
        k.devicePages.get(val);
        if (isCow) p.pt.setFlags(vpn, f & ~PTE_WRITE);
        c.pt.set(vpn, isCow ? f & ~PTE_WRITE : f, val);
        return;
      case PTE_DEVICE_EXCLUSIVE:
        // The page is now shared with the child: the parent's entry must not restore to writable.
        if (isCow) p.pt.setFlags(vpn, f & ~PTE_WAS_WRITE);
        pm.anonExclusive[val] = 0;
        k.mapPresent(c, vpn, val, false, false);
        return;
    }
  });
  return failed;
}
