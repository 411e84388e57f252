// mremap (mm/mremap.c, v6.15): SYSCALL_DEFINE5(mremap) → check_mremap_params, vma_to_resize,
// mremap_to (MREMAP_FIXED), shrink in place, expand in place, or move_vma → move_page_tables.
//
// What drivers see: move_page_tables runs one MMU_NOTIFY_UNMAP invalidation over the old range
// (mmu_notifier_range_init(&range, MMU_NOTIFY_UNMAP, 0, mm, old_addr, old_end)) and moves every
// entry as it is — present PTEs, swap entries, device-private entries (move_ptes:
// ptep_get_and_clear at the old address, set_pte_at at the new one); then, unless
// MREMAP_DONTUNMAP, do_vmi_munmap of the old range sends another MMU_NOTIFY_UNMAP (nothing is
// mapped there any more). MREMAP_FIXED first unmaps the destination (UNMAP of what was there). With
// MREMAP_DONTUNMAP the old VMA stays, empty: a private anonymous page faults in as zero again.
//
// Checked as the kernel does: flags MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP only, FIXED
// and DONTUNMAP need MAYMOVE, DONTUNMAP needs old_len == new_len (-EINVAL); an unaligned address
// or an empty new length (-EINVAL); a FIXED destination overlapping the source (-EINVAL); the old
// range inside one VMA (-EFAULT); a growth that does not fit in place without MAYMOVE (-ENOMEM).
// MREMAP_DONTUNMAP always moves (never shrinks or grows in place).
// Departure: old_len 0 (a second mapping of a shared one) is refused with -EINVAL.
import type { Envelope, Message } from '@svmsim/runtime';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './invalidate.js';
import type { Kernel } from './kernel.js';
import { mmap_write_lock, mmap_write_unlock } from './mmap-lock.js';
import { PTE_DEVICE_EXCLUSIVE, PTE_KIND_MASK, PTE_MIGRATION, PTE_NONE, PTE_PRESENT, VPN_LIMIT } from './page-table.js';
import { MMAP_BASE_VPN, type Process } from './process.js';
import { EFAULT, EINVAL, ENOMEM, ESRCH, MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE, PAGE_SIZE, ZERO_PFN, type Mremap, type SyscallResult } from './protocol.js';
import { do_munmap } from './syscalls.js';
import { processTask } from './task.js';
import type { Vma } from './vma.js';

const result = (ret: number): SyscallResult => ({ type: 'syscall_result', ret });
const pagesOf = (len: number) => Math.ceil(len / PAGE_SIZE);

export function sys_mremap(k: Kernel, env: Envelope<Message>, m: Mremap): void {
  const p = k.proc(m.pid);
  if (!p) return k.ctx.reply(env, result(ESRCH));
  const err = check_mremap_params(m);
  if (err) return k.ctx.reply(env, result(err));
  const start = m.addr / PAGE_SIZE;
  const oldPages = pagesOf(m.old_len);
  const newPages = pagesOf(m.new_len);
  const reply = (ret: number) => {
    mmap_write_unlock(k, p);
    if (ret < 0) return k.ctx.reply(env, result(ret));
    k.replyAfter(env, result(ret), k.costs.syscallNs);
  };
  mmap_write_lock(k, p, () => {
    // vma_to_resize: the old range lies in one VMA.
    const vma = p.vmas.find(start);
    if (!p.alive || p.exiting) return reply(ESRCH);
    if (!vma || start + oldPages > vma.end) return reply(EFAULT);
    if (m.flags & MREMAP_FIXED) {
      const dst = m.new_addr! / PAGE_SIZE;
      // mremap_to: unmap the destination, shrink the source to the new size, move.
      return do_munmap(k, p, dst, dst + newPages, () => {
        const moved = Math.min(oldPages, newPages);
        const shrink = (then: () => void) => (oldPages > newPages ? do_munmap(k, p, start + newPages, start + oldPages, then) : then());
        shrink(() => move_vma(k, p, start, moved, dst, newPages, (m.flags & MREMAP_DONTUNMAP) !== 0, () => reply(dst * PAGE_SIZE)));
      });
    }
    const dontunmap = (m.flags & MREMAP_DONTUNMAP) !== 0;
    if (newPages <= oldPages && !dontunmap) {
      // Shrinking (or the same size) in place: unmap the tail.
      if (newPages === oldPages) return reply(m.addr);
      return do_munmap(k, p, start + newPages, start + oldPages, () => reply(m.addr));
    }
    // Growing: in place if the range is the VMA's end and the pages after it are free.
    if (!dontunmap && start + oldPages === vma.end && start + newPages <= VPN_LIMIT && p.vmas.overlapping(vma.end, start + newPages).length === 0) {
      vma.end = start + newPages;
      k.oracle('mremap', { pid: p.pid, old_start: m.addr, old_end: m.addr + oldPages * PAGE_SIZE, new_start: m.addr, new_end: m.addr + newPages * PAGE_SIZE, dontunmap: false });
      return reply(m.addr);
    }
    if (!(m.flags & MREMAP_MAYMOVE)) return reply(ENOMEM);
    const dst = p.vmas.findGap(newPages, MMAP_BASE_VPN, VPN_LIMIT);
    if (dst < 0) return reply(ENOMEM);
    move_vma(k, p, start, oldPages, dst, newPages, dontunmap, () => reply(dst * PAGE_SIZE));
  });
}

/** check_mremap_params: what is refused before any lock. */
function check_mremap_params(m: Mremap): number {
  if (m.flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP)) return EINVAL;
  if (m.flags & MREMAP_FIXED && !(m.flags & MREMAP_MAYMOVE)) return EINVAL;
  if (m.flags & MREMAP_DONTUNMAP && (!(m.flags & MREMAP_MAYMOVE) || m.old_len !== m.new_len)) return EINVAL;
  if (m.addr % PAGE_SIZE !== 0 || m.new_len <= 0 || m.old_len <= 0) return EINVAL;
  if (pagesOf(m.addr + m.old_len) > VPN_LIMIT || pagesOf(m.new_len) > VPN_LIMIT) return EINVAL;
  if (m.flags & MREMAP_FIXED) {
    const to = m.new_addr;
    if (to === undefined || to % PAGE_SIZE !== 0 || pagesOf(to + m.new_len) > VPN_LIMIT) return EINVAL;
    // The source and the destination may not overlap.
    if (to < m.addr + m.old_len && m.addr < to + m.new_len) return EINVAL;
  }
  return 0;
}

/**
 * move_vma: a copy of the VMA at [dst, dst + newPages), the old range's entries moved into it
 * under one MMU_NOTIFY_UNMAP of the old range (move_page_tables), then the old range unmapped
 * unless DONTUNMAP. Both ranges are range-locked meanwhile.
 */
function move_vma(k: Kernel, p: Process, start: number, pages: number, dst: number, newPages: number, dontunmap: boolean, done: () => void): void {
  p.locks.lock(start, start + pages, 'mremap', (oldLock) => p.locks.lock(dst, dst + newPages, 'mremap', (newLock) => {
    const [src] = p.vmas.splitAt(start, start + pages) as [Vma];
    const copy: Vma = { ...src, start: dst, end: dst + newPages };
    const range = { start: start * PAGE_SIZE, end: (start + pages) * PAGE_SIZE, event: 'MMU_NOTIFY_UNMAP' as const, blockable: true, owner: null, task: processTask(p), caller: 'move_page_tables' };
    mmu_notifier_invalidate_range_start(k, p, range, (_ret, inv) => {
      p.vmas.insert(copy);
      for (let i = 0; i < pages; i++) move_pte(k, p, start + i, dst + i);
      k.oracle('mremap', { pid: p.pid, old_start: start * PAGE_SIZE, old_end: (start + pages) * PAGE_SIZE, new_start: dst * PAGE_SIZE, new_end: (dst + newPages) * PAGE_SIZE, dontunmap });
      mmu_notifier_invalidate_range_end(k, inv);
      p.locks.unlock(newLock);
      p.locks.unlock(oldLock);
      k.stats.mremapMoves++;
      if (dontunmap) return done();
      do_munmap(k, p, start, start + pages, done);
    });
  }));
}

/** move_ptes for one entry: whatever the old PTE holds moves to the new address, its rmap with it. */
function move_pte(k: Kernel, p: Process, from: number, to: number): void {
  const f = p.pt.flags(from);
  const kind = f & PTE_KIND_MASK;
  if (kind === PTE_NONE) return;
  if (kind === PTE_MIGRATION) throw new Error(`mremap: pid ${p.pid} vpn ${from} is under migration (the range lock is held)`);
  const v = p.pt.value(from);
  if ((kind === PTE_PRESENT && v !== ZERO_PFN) || kind === PTE_DEVICE_EXCLUSIVE) {
    k.pm.addRmap(v, p.pid, to); // first: removeRmap drops the mapping's reference
    k.pm.removeRmap(v, p.pid, from);
  }
  p.pt.clear(from);
  p.pt.set(to, f, v);
}
