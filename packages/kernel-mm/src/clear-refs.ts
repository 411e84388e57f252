// /proc/PID/clear_refs and /proc/PID/pagemap: soft-dirty tracking (fs/proc/task_mmu.c
// clear_refs_write → clear_refs_pte_range → clear_soft_dirty, pagemap_read → pte_to_pagemap_entry;
// Documentation/admin-guide/mm/soft-dirty.rst). Followed as of v6.15 (clear_refs_write under
// mmap_write_lock, pte_is_pinned); the stored copies read were older (the MMU_NOTIFY_SOFT_DIRTY
// range over [0, -1) and the walk of every VMA are the same there).
//
//   echo 4 > clear_refs   mmap_write_lock; every VMA loses VM_SOFTDIRTY (vma_set_page_prot: from
//                         now on writes must fault so that they can be tracked); ONE
//                         MMU_NOTIFY_SOFT_DIRTY invalidation over the whole address space [0, -1)
//                         (sent whatever is mapped: it is not started lazily); each present PTE is
//                         write-protected and its soft-dirty bit cleared — except a writable PTE of
//                         a COW mapping whose page may be DMA-pinned (pte_is_pinned, with
//                         MMF_HAS_PINNED): write-protecting it would make the next write copy away
//                         from the device's page. Swap entries lose their soft-dirty bit too (not
//                         carried here: a swap entry holds no flags).
//   the next write        write fault: do_wp_page → wp_page_reuse for an exclusive anon page (no
//                         copy), pte_mkdirty → soft-dirty again; a shared file page: wp_page_shared.
//   pagemap bit 55        PM_SOFT_DIRTY if the PTE is soft-dirty or its VMA has VM_SOFTDIRTY (a VMA
//                         made after the last clear_refs reads all soft-dirty).
//
// A device mirroring the process sees the SOFT_DIRTY invalidation of everything it mirrors: it
// zaps and re-faults (no driver of ours, nor test_hmm.c / nouveau / amdgpu / mlx5, skips it).
import type { Envelope, Message } from '@svmsim/runtime';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './invalidate.js';
import type { Kernel } from './kernel.js';
import { mmap_write_lock, mmap_write_unlock } from './mmap-lock.js';
import {
  PTE_DEVICE_EXCLUSIVE, PTE_DEVICE_PRIVATE, PTE_KIND_MASK, PTE_MIGRATION, PTE_PRESENT, PTE_SOFT_DIRTY, PTE_SWAP, PTE_WAS_WRITE, PTE_WRITE, VPN_LIMIT,
} from './page-table.js';
import { PG_ANON } from './physmem.js';
import {
  EINVAL, EOPNOTSUPP, ESRCH, PAGE_SIZE, PM_FILE, PM_MMAP_EXCLUSIVE, PM_PRESENT, PM_SOFT_DIRTY, PM_SWAP, ZERO_PFN,
  type ClearRefs, type PagemapRead, type PagemapResult,
} from './protocol.js';
import { processTask } from './task.js';

/** enum clear_refs_types (fs/proc/task_mmu.c). */
const CLEAR_REFS_ALL = 1;
const CLEAR_REFS_SOFT_DIRTY = 4;
const CLEAR_REFS_LAST = 6;
/** Pages one pagemap read may cover: a bound on the reply. */
const PAGEMAP_PAGES_MAX = 1 << 20;

export function clear_refs_write(k: Kernel, env: Envelope<Message>, m: ClearRefs): void {
  const reply = (ret: number, error?: string) => k.ctx.reply(env, { type: 'syscall_result', ret, ...(error ? { error } : {}) });
  // kstrtoint(strstrip(buffer), 10, &itype)
  const text = String(m.value).trim();
  const type = /^[+-]?\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(type) || type < CLEAR_REFS_ALL || type >= CLEAR_REFS_LAST) return reply(EINVAL, `clear_refs: "${m.value}" is not one of 1-5`);
  if (type !== CLEAR_REFS_SOFT_DIRTY) return reply(EOPNOTSUPP, `clear_refs: ${type} is valid in the kernel but not modelled here; only 4 (CLEAR_REFS_SOFT_DIRTY) is`);
  const p = k.proc(m.pid);
  if (!p) return reply(ESRCH);
  mmap_write_lock(k, p, () => p.locks.lock(0, VPN_LIMIT, 'clear_refs', (lock) => {
    if (!p.alive || p.exiting) {
      p.locks.unlock(lock);
      mmap_write_unlock(k, p);
      return reply(ESRCH);
    }
    for (const v of p.vmas.list) v.softDirty = false;
    const range = { start: 0, end: VPN_LIMIT * PAGE_SIZE, event: 'MMU_NOTIFY_SOFT_DIRTY' as const, blockable: true, owner: null, task: processTask(p), caller: 'clear_refs_write' };
    mmu_notifier_invalidate_range_start(k, p, range, (_ret, inv) => {
      let cleared = 0;
      for (const vma of p.vmas.list) {
        p.pt.forEach(vma.start, vma.end, (vpn, f, pfn) => {
          if ((f & PTE_KIND_MASK) !== PTE_PRESENT) return;
          // pte_is_pinned: a writable PTE of a COW mapping, MMF_HAS_PINNED, the page maybe pinned.
          if (f & PTE_WRITE && !vma.shared && p.hasPinned && pfn !== ZERO_PFN && k.pm.maybeDmaPinned(pfn)) return;
          p.pt.setFlags(vpn, f & ~(PTE_WRITE | PTE_WAS_WRITE | PTE_SOFT_DIRTY));
          cleared++;
        });
      }
      k.stats.clearRefsSoftDirty++;
      if (k.ctx.tracing) k.ctx.trace('clear_refs', { pid: p.pid, type, ptes: cleared });
      mmu_notifier_invalidate_range_end(k, inv);
      p.locks.unlock(lock);
      mmap_write_unlock(k, p);
      k.replyAfter(env, { type: 'syscall_result', ret: 0 }, k.costs.syscallNs);
    });
  }));
}

/** pagemap_read → pte_to_pagemap_entry for each page of [addr, addr + nr_pages). */
export function pagemap_read(k: Kernel, env: Envelope<Message>, m: PagemapRead): void {
  const fail = (ret: number) => k.ctx.reply(env, { type: 'pagemap_result', ret, entries: new Uint8Array(0), pfns: new Float64Array(0) });
  const p = k.proc(m.pid);
  if (!p) return fail(ESRCH);
  if (m.addr % PAGE_SIZE !== 0 || m.nr_pages > PAGEMAP_PAGES_MAX) return fail(EINVAL);
  const start = m.addr / PAGE_SIZE;
  const entries = new Uint8Array(m.nr_pages);
  const pfns = new Float64Array(m.nr_pages).fill(-1);
  for (let i = 0; i < m.nr_pages; i++) {
    const vpn = start + i;
    if (vpn >= VPN_LIMIT) break;
    const vma = p.vmas.find(vpn);
    if (!vma) continue;
    const f = p.pt.flags(vpn);
    const pfn = p.pt.value(vpn);
    let e = vma.softDirty ? PM_SOFT_DIRTY : 0;
    switch (f & PTE_KIND_MASK) {
      case PTE_PRESENT:
        e |= PM_PRESENT;
        if (f & PTE_SOFT_DIRTY) e |= PM_SOFT_DIRTY;
        pfns[i] = pfn;
        if (pfn !== ZERO_PFN) {
          if (!(k.pm.flags[pfn] & PG_ANON)) e |= PM_FILE;
          if (k.pm.mapcount[pfn] === 1) e |= PM_MMAP_EXCLUSIVE;
        }
        break;
      case PTE_SWAP:
      case PTE_DEVICE_PRIVATE:
      case PTE_DEVICE_EXCLUSIVE:
      case PTE_MIGRATION:
        // Swap-type entries: PM_SWAP (device-private, migration and exclusive entries are swap entries too).
        e |= PM_SWAP;
        break;
    }
    entries[i] = e;
  }
  const r: PagemapResult = { type: 'pagemap_result', ret: 0, entries, pfns };
  k.replyAfter(env, r, k.costs.syscallNs);
}
