// The process's memory syscalls: mmap (mm/mmap.c do_mmap), munmap (mm/vma.c do_vmi_munmap →
// unmap_region → unmap_vmas: MMU_NOTIFY_UNMAP), mprotect (mm/mprotect.c change_protection:
// MMU_NOTIFY_PROTECTION_VMA, started only if a populated entry exists), madvise (mm/madvise.c:
// MADV_DONTNEED → zap_page_range_single: MMU_NOTIFY_CLEAR; MADV_MERGEABLE → ksm_madvise;
// MADV_PAGEOUT → reclaim_pages), and process creation. fork and exit are in fork.ts and exit.ts.
//
// mmap, munmap, mprotect and madvise take mmap_lock (mmap-lock.ts) first: for write, except the
// advices for which mm/madvise.c madvise_need_mmap_write() is false (MADV_DONTNEED, MADV_PAGEOUT:
// read). So a driver holding the read lock over a long walk holds them all off. Inside it, each
// syscall that changes PTEs holds the range lock over its whole range from before its
// invalidation until its PTE changes are done (faults and reclaim serialise on that).
import type { Envelope, Message } from '@svmsim/runtime';
import { p2pdmaVmaRefs } from './device-memory.js';
import { createFile } from './filemap.js';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './invalidate.js';
import type { Kernel } from './kernel.js';
import { VPN_LIMIT, PTE_DEVICE_EXCLUSIVE, PTE_DEVICE_PRIVATE, PTE_DIRTY, PTE_KIND_MASK, PTE_PRESENT, PTE_SWAP, PTE_WAS_WRITE, PTE_WRITE, PTE_YOUNG } from './page-table.js';
import { PG_ANON, PG_DIRTY, PG_SWAPCACHE } from './physmem.js';
import { MMAP_BASE_VPN, Process } from './process.js';
import {
  EINVAL, ENOMEM, ESRCH, MADV_DONTNEED, MADV_FREE, MADV_MERGEABLE, MADV_PAGEOUT, MADV_UNMERGEABLE, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED,
  PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE, EBADF, ZERO_PFN,
  type Madvise, type Mmap, type P2pmemAllocResult, type Mprotect, type Munmap, type ProcessCreate, type SyscallResult,
} from './protocol.js';
import { mmap_read_lock, mmap_read_unlock, mmap_write_lock, mmap_write_unlock } from './mmap-lock.js';
import { reclaimPagesOf } from './reclaim.js';
import type { Vma } from './vma.js';
import { commOf, processTask } from './task.js';

/** include/uapi/asm-generic/errno-base.h */
const ENODEV = -19;
const result = (ret: number): SyscallResult => ({ type: 'syscall_result', ret });

export function sys_process_create(k: Kernel, env: Envelope<Message>, m: ProcessCreate): void {
  const pid = k.nextPid++;
  const p = new Process(pid, null, commOf(m.comm, pid));
  p.owner = env.from;
  k.procs.set(p.pid, p);
  k.replyAfter(env, result(p.pid), k.costs.syscallNs);
}

/** Checks shared by the range syscalls: page-aligned start, length > 0, inside the address space. */
function rangeOf(addr: number, length: number): { start: number; end: number } | number {
  if (!Number.isInteger(addr) || !Number.isInteger(length) || addr % PAGE_SIZE !== 0 || length <= 0) return EINVAL;
  const start = addr / PAGE_SIZE;
  const end = start + Math.ceil(length / PAGE_SIZE);
  if (end > VPN_LIMIT) return EINVAL;
  return { start, end };
}

export function sys_mmap(k: Kernel, env: Envelope<Message>, m: Mmap): void {
  const p = k.proc(m.pid);
  if (!p) return k.ctx.reply(env, result(ESRCH));
  const shared = (m.flags & MAP_SHARED) !== 0;
  const anon = (m.flags & MAP_ANONYMOUS) !== 0;
  if (shared === ((m.flags & MAP_PRIVATE) !== 0)) return k.ctx.reply(env, result(EINVAL));
  if (!Number.isInteger(m.length) || m.length <= 0 || (m.prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) !== 0) return k.ctx.reply(env, result(EINVAL));
  const pages = Math.ceil(m.length / PAGE_SIZE);
  let file: number | null = null;
  let pgoff = 0;
  // p2pmem_alloc_mmap (drivers/pci/p2pdma.c, v6.2–v6.15): a shared mapping from offset 0 only.
  if (m.p2pmem !== undefined && (anon || !shared || (m.offset ?? 0) !== 0)) return k.ctx.reply(env, result(EINVAL));
  if (m.p2pmem !== undefined) {
    // The sysfs file, not one of mm's files: no page cache behind it.
  } else if (!anon) {
    const f = m.file === undefined ? undefined : k.files.get(m.file);
    if (!f || m.file! < 0) return k.ctx.reply(env, result(EBADF));
    if ((m.offset ?? 0) % PAGE_SIZE !== 0) return k.ctx.reply(env, result(EINVAL));
    file = f.id;
    pgoff = (m.offset ?? 0) / PAGE_SIZE;
  } else if (shared) {
    file = createFile(k, `shm:${p.pid}:${m.addr}`, pages, true).id;
  }
  let start: number;
  if (m.flags & MAP_FIXED) {
    const r = rangeOf(m.addr, m.length);
    if (typeof r === 'number') return k.ctx.reply(env, result(r));
    start = r.start;
  } else {
    const hint = m.addr > 0 && m.addr % PAGE_SIZE === 0 ? m.addr / PAGE_SIZE : MMAP_BASE_VPN;
    start = p.vmas.findGap(pages, hint, VPN_LIMIT);
    if (start < 0) start = p.vmas.findGap(pages, MMAP_BASE_VPN, VPN_LIMIT);
    if (start < 0) return k.ctx.reply(env, result(ENOMEM));
  }
  const end = start + pages;
  // __mmap_region: a new VMA is VM_SOFTDIRTY (every page of it reads soft-dirty in pagemap).
  const vma: Vma = { start, end, prot: m.prot, shared, file, pgoff, mergeable: false, softDirty: true };
  // vm_mmap_pgoff: mmap_write_lock_killable; the range stays locked from the unmapping of what was
  // there (MAP_FIXED) to the new VMA's insertion.
  mmap_write_lock(k, p, () => p.locks.lock(start, end, 'mmap', (lock) => {
    const release = () => {
      p.locks.unlock(lock);
      mmap_write_unlock(k, p);
    };
    if (!p.alive || p.exiting) {
      release();
      return k.ctx.reply(env, result(ESRCH));
    }
    const install = (): void => {
      if (m.p2pmem !== undefined && vma.p2pdma === undefined) return p2pmem_alloc_mmap(k, m.p2pmem, vma, (ret) => {
        if (ret === 0) return install();
        release();
        k.replyAfter(env, result(ret), k.costs.syscallNs);
      });
      p.vmas.insert(vma);
      k.oracle('mmap', { pid: p.pid, start: start * PAGE_SIZE, end: end * PAGE_SIZE, prot: m.prot, shared, file, pgoff });
      release();
      k.replyAfter(env, result(start * PAGE_SIZE), k.costs.syscallNs);
    };
    if (p.vmas.overlapping(start, end).length === 0) return install();
    if (!(m.flags & MAP_FIXED)) {
      // The gap was taken while we waited for the lock: look again.
      release();
      return sys_mmap(k, env, m);
    }
    unmap_region(k, p, start, end, install);
  }));
}

/**
 * p2pmem_alloc_mmap (drivers/pci/p2pdma.c v6.2–v6.15), the file's mmap op under the mmap write
 * lock: gen_pool_alloc_owner of the whole length from the provider's pool (-ENOMEM if it has no
 * such run; -ENODEV if the device has no p2pdma), then vm_insert_page of every page, each page
 * holding one reference for the mapping. The pages are MEMORY_DEVICE_PCI_P2PDMA (is_pci_p2pdma_page).
 */
function p2pmem_alloc_mmap(k: Kernel, provider: string, vma: Vma, done: (ret: number) => void): void {
  const pages = vma.end - vma.start;
  k.call(provider, { type: 'p2pmem_alloc', nr_pages: pages }, (r) => {
    if (r.type !== 'p2pmem_alloc_result') return done(ENODEV);
    const a = r as P2pmemAllocResult;
    if (a.ret < 0) return done(a.ret);
    vma.pgoff = k.devicePages.memremap(provider, pages, 'MEMORY_DEVICE_PCI_P2PDMA', a.page);
    vma.p2pdma = provider;
    p2pdmaVmaRefs(k, vma, true);
    done(0);
  });
}

export function sys_munmap(k: Kernel, env: Envelope<Message>, m: Munmap): void {
  const p = k.proc(m.pid);
  if (!p) return k.ctx.reply(env, result(ESRCH));
  const r = rangeOf(m.addr, m.length);
  if (typeof r === 'number') return k.ctx.reply(env, result(r));
  // __vm_munmap: mmap_write_lock_killable around do_vmi_munmap.
  const t0 = k.ctx.now();
  mmap_write_lock(k, p, () =>
    do_munmap(k, p, r.start, r.end, () => {
      mmap_write_unlock(k, p);
      k.stats.munmapNs.push(k.ctx.now() - t0 + k.costs.syscallNs);
      k.replyAfter(env, result(0), k.costs.syscallNs);
    }),
  );
}

/** do_vmi_munmap: take the range lock, unmap_region, release. */
export function do_munmap(k: Kernel, p: Process, start: number, end: number, done: () => void): void {
  p.locks.lock(start, end, 'munmap', (lock) => {
    const finish = () => {
      p.locks.unlock(lock);
      done();
    };
    if (p.vmas.overlapping(start, end).length === 0) return finish();
    unmap_region(k, p, start, end, finish);
  });
}

/** unmap_region, the caller holding the range lock: UNMAP invalidation, zap every PTE, drop the VMAs. */
function unmap_region(k: Kernel, p: Process, start: number, end: number, done: () => void): void {
  const range = { start: start * PAGE_SIZE, end: end * PAGE_SIZE, event: 'MMU_NOTIFY_UNMAP' as const, blockable: true, owner: null, task: processTask(p), caller: 'unmap_vmas' };
  mmu_notifier_invalidate_range_start(k, p, range, (_ret, inv) => {
    p.pt.forEach(start, end, (vpn) => k.zapPte(p, vpn));
    for (const v of p.vmas.remove(start, end)) p2pdmaVmaRefs(k, v, false);
    k.oracle('munmap', { pid: p.pid, start: start * PAGE_SIZE, end: end * PAGE_SIZE });
    mmu_notifier_invalidate_range_end(k, inv);
    done();
  });
}

export function sys_mprotect(k: Kernel, env: Envelope<Message>, m: Mprotect): void {
  const p = k.proc(m.pid);
  if (!p) return k.ctx.reply(env, result(ESRCH));
  const r = rangeOf(m.addr, m.length);
  if (typeof r === 'number') return k.ctx.reply(env, result(r));
  if ((m.prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) !== 0) return k.ctx.reply(env, result(EINVAL));
  const { start, end } = r;
  // do_mprotect_pkey: mmap_write_lock_killable, then the range lock.
  mmap_write_lock(k, p, () => p.locks.lock(start, end, 'mprotect', (lock) => {
    const release = () => {
      p.locks.unlock(lock);
      mmap_write_unlock(k, p);
    };
    if (!p.alive || p.exiting || !p.vmas.covers(start, end)) {
      release();
      return k.ctx.reply(env, result(ENOMEM));
    }
    const apply = () => {
      for (const v of p.vmas.splitAt(start, end)) v.prot = m.prot;
      // Write permission is removed from PTEs now; it is granted again by write faults.
      // change_pte_range does it for non-present entries too: a writable device-private entry
      // becomes readable, and a device-exclusive entry no longer restores to writable.
      if (!(m.prot & PROT_WRITE)) {
        p.pt.forEach(start, end, (vpn, f) => {
          const kind = f & PTE_KIND_MASK;
          if ((kind === PTE_PRESENT || kind === PTE_DEVICE_PRIVATE) && f & (PTE_WRITE | PTE_WAS_WRITE)) p.pt.setFlags(vpn, f & ~(PTE_WRITE | PTE_WAS_WRITE));
          else if (kind === PTE_DEVICE_EXCLUSIVE && f & PTE_WAS_WRITE) p.pt.setFlags(vpn, f & ~PTE_WAS_WRITE);
        });
      }
      k.oracle('mprotect', { pid: p.pid, start: start * PAGE_SIZE, end: end * PAGE_SIZE, prot: m.prot });
    };
    // change_pmd_range starts the invalidation lazily, at the first populated entry.
    let populated = false;
    p.pt.forEach(start, end, () => (populated = true));
    if (!populated) {
      apply();
      release();
      return k.replyAfter(env, result(0), k.costs.syscallNs);
    }
    const range = { start: start * PAGE_SIZE, end: end * PAGE_SIZE, event: 'MMU_NOTIFY_PROTECTION_VMA' as const, blockable: true, owner: null, task: processTask(p), caller: 'change_pmd_range' };
    mmu_notifier_invalidate_range_start(k, p, range, (_ret, inv) => {
      apply();
      mmu_notifier_invalidate_range_end(k, inv);
      release();
      k.replyAfter(env, result(0), k.costs.syscallNs);
    });
  }));
}

export function sys_madvise(k: Kernel, env: Envelope<Message>, m: Madvise): void {
  const p = k.proc(m.pid);
  if (!p) return k.ctx.reply(env, result(ESRCH));
  const r = rangeOf(m.addr, m.length);
  if (typeof r === 'number') return k.ctx.reply(env, result(r));
  const { start, end } = r;
  if (m.advice !== MADV_MERGEABLE && m.advice !== MADV_UNMERGEABLE && m.advice !== MADV_DONTNEED && m.advice !== MADV_PAGEOUT && m.advice !== MADV_FREE) return k.ctx.reply(env, result(EINVAL));
  const write = madvise_need_mmap_write(m.advice);
  const unlock = () => (write ? mmap_write_unlock(k, p) : mmap_read_unlock(k, p, ''));
  const granted = () => {
    if (!p.vmas.covers(start, end)) {
      unlock();
      return k.ctx.reply(env, result(ENOMEM));
    }
    switch (m.advice) {
      case MADV_MERGEABLE:
      case MADV_UNMERGEABLE:
        for (const v of p.vmas.splitAt(start, end)) v.mergeable = m.advice === MADV_MERGEABLE;
        unlock();
        return k.replyAfter(env, result(0), k.costs.syscallNs);
      case MADV_DONTNEED:
        return madvise_dontneed(k, p, start, end, () => {
          unlock();
          k.replyAfter(env, result(0), k.costs.syscallNs);
        });
      case MADV_FREE:
        // madvise_free_single_vma: private anonymous VMAs only.
        if (p.vmas.overlapping(start, end).some((v) => v.file !== null || v.shared)) {
          unlock();
          return k.ctx.reply(env, result(EINVAL));
        }
        return madvise_free(k, p, start, end, () => {
          unlock();
          k.replyAfter(env, result(0), k.costs.syscallNs);
        });
      default:
        return reclaimPagesOf(k, p, start, end, (n) => {
          unlock();
          k.replyAfter(env, result(0), k.costs.syscallNs + n * k.costs.reclaimScanNs);
        });
    }
  };
  if (write) mmap_write_lock(k, p, granted);
  else mmap_read_lock(k, p, '', granted);
}

/**
 * mm/madvise.c madvise_need_mmap_write (v6.6; the latest tree's madvise_lock_mode says the same
 * for these, and takes only the VMA's lock for MADV_DONTNEED where it can; here the mmap read
 * lock): the advices that only zap or reclaim take the read lock, the ones that change VMAs
 * (MADV_MERGEABLE / MADV_UNMERGEABLE: ksm_madvise sets vm_flags) the write lock.
 */
function madvise_need_mmap_write(advice: number): boolean {
  return advice !== MADV_DONTNEED && advice !== MADV_PAGEOUT && advice !== MADV_FREE;
}

/**
 * MADV_FREE (mm/madvise.c v6.15 madvise_free_single_vma → madvise_free_pte_range) under
 * MMU_NOTIFY_CLEAR: a swap entry is freed (the page reads zero again); a present anonymous page
 * mapped once is cleaned (PG_dirty and the PTE's dirty and young bits cleared) and marked lazyfree,
 * so reclaim may discard it instead of swapping it, unless it is written again first; pages mapped
 * more than once, the zero page and non-present entries (device-private, migration) are left.
 * Departure: a page in the swap cache is left (the kernel frees its swap first, folio_free_swap).
 */
function madvise_free(k: Kernel, p: Process, start: number, end: number, done: () => void): void {
  p.locks.lock(start, end, 'madvise', (lock) => {
    const range = { start: start * PAGE_SIZE, end: end * PAGE_SIZE, event: 'MMU_NOTIFY_CLEAR' as const, blockable: true, owner: null, task: processTask(p), caller: 'madvise_free_single_vma' };
    mmu_notifier_invalidate_range_start(k, p, range, (_ret, inv) => {
      const pm = k.pm;
      p.pt.forEach(start, end, (vpn, f, v) => {
        const kind = f & PTE_KIND_MASK;
        if (kind === PTE_SWAP) {
          k.zapPte(p, vpn); // free_swap_and_cache_nr, pte_clear
          k.oracle('zap', { pid: p.pid, start: vpn * PAGE_SIZE, end: (vpn + 1) * PAGE_SIZE });
          return;
        }
        if (kind !== PTE_PRESENT || v === ZERO_PFN || !(pm.flags[v] & PG_ANON) || pm.mapcount[v] !== 1 || pm.flags[v] & PG_SWAPCACHE) return;
        pm.flags[v] &= ~PG_DIRTY;
        p.pt.setFlags(vpn, f & ~(PTE_DIRTY | PTE_YOUNG));
        pm.lazyfree[v] = 1;
        k.stats.lazyfreePages++;
      });
      mmu_notifier_invalidate_range_end(k, inv);
      p.locks.unlock(lock);
      done();
    });
  });
}

/** zap_page_range_single with MMU_NOTIFY_CLEAR: private pages read as zero (or the file) again. */
function madvise_dontneed(k: Kernel, p: Process, start: number, end: number, done: () => void): void {
  p.locks.lock(start, end, 'madvise', (lock) => {
    const range = { start: start * PAGE_SIZE, end: end * PAGE_SIZE, event: 'MMU_NOTIFY_CLEAR' as const, blockable: true, owner: null, task: processTask(p), caller: 'zap_page_range_single' };
    mmu_notifier_invalidate_range_start(k, p, range, (_ret, inv) => {
      p.pt.forEach(start, end, (vpn) => k.zapPte(p, vpn));
      k.oracle('zap', { pid: p.pid, start: start * PAGE_SIZE, end: end * PAGE_SIZE });
      mmu_notifier_invalidate_range_end(k, inv);
      p.locks.unlock(lock);
      done();
    });
  });
}
