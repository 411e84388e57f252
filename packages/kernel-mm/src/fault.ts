// The page fault handler (mm/memory.c handle_mm_fault → __handle_mm_fault → handle_pte_fault),
// used alike by CPU accesses, get_user_pages (faultin_page) and hmm_range_fault (hmm_vma_fault).
// Followed: mm/memory.c v6.6–v6.15.
//
//   pte_none, anonymous      do_anonymous_page: read → the shared zero page, read-only;
//                            write → a new zeroed page, writable and dirty
//   pte_none, file or shmem  do_fault: read → the page-cache page, read-only (do_read_fault);
//                            write to MAP_PRIVATE → a private copy (do_cow_fault);
//                            write to MAP_SHARED → page_mkwrite, writable and dirty (do_shared_fault)
//   swap entry               do_swap_page: read the slot (through the swap cache), map it
//   device-private entry     do_swap_page → pgmap->ops->migrate_to_ram (migrate-device.ts)
//   device-exclusive entry   remove_device_exclusive_entry (migrate-device.ts)
//   present, write, !write   do_wp_page: zero page or shared anon (after fork, KSM) or private file
//                            page → wp_page_copy (MMU_NOTIFY_CLEAR on the page); exclusive anon →
//                            reuse; MAP_SHARED → wp_page_shared (page_mkwrite, mark dirty)
//
// A fault holds the page's range lock from its first look at the PTE until the PTE is set, so two
// faults on one page, or a fault and an unmap, never interleave their PTE changes.
import { EFAULT, ENOMEM, PAGE_SIZE, ZERO_PFN, type BioDone } from './protocol.js';
import { blockDevOf, filemap_get_page } from './filemap.js';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './invalidate.js';
import { EIO_RET, type Kernel } from './kernel.js';
import { alloc_page } from './page-alloc.js';
import { PTE_DEVICE_EXCLUSIVE, PTE_DEVICE_PRIVATE, PTE_MKDIRTY, PTE_PROTNONE, PTE_KIND_MASK, PTE_MIGRATION, PTE_NONE, PTE_PRESENT, PTE_SWAP, PTE_WRITE, PTE_YOUNG } from './page-table.js';
import { PG_ANON, PG_DIRTY, PG_KSM, PG_SWAPCACHE } from './physmem.js';
import type { Process } from './process.js';
import { fileIndex, vmaIsAnon, vmaReadable, vmaWritable, type Vma } from './vma.js';
import { processTask } from './task.js';
import { do_numa_page } from './numa-balancing.js';

export const FAULT_FLAG_WRITE = 1 << 0;
export const FAULT_FLAG_REMOTE = 1 << 7;
/** Break COW for a read pin of a shared anon page (gup FOLL_PIN without FOLL_WRITE). */
export const FAULT_FLAG_UNSHARE = 1 << 10;

/** 0, or -EFAULT (SIGSEGV / no VMA / no permission), -ENOMEM, -EIO. */
export type FaultDone = (ret: number) => void;

/** Hooks for entries owned by device memory support (device-memory.ts installs them). */
export const deviceFaultHooks = {
  migrateToRam: (_k: Kernel, _p: Process, _vpn: number, done: FaultDone) => done(EFAULT),
  restoreExclusive: (_k: Kernel, _p: Process, _vpn: number, done: FaultDone) => done(EFAULT),
};

/**
 * handle_mm_fault for one page. `flags`: FAULT_FLAG_*. Traced once done as `page_fault` {pid,
 * addr, write, remote (a device's fault through gup or hmm_range_fault), kind, ret, ns (from the
 * call, the wait for the page's lock included)}.
 */
export function handle_mm_fault(k: Kernel, p: Process, vpn: number, flags: number, done: FaultDone): void {
  if (p.exiting) return done(EFAULT);
  const t0 = k.ctx.now();
  const fault: FaultRecord = { kind: 'none' };
  p.locks.lock(vpn, vpn + 1, 'fault', (lockId) => {
    const finish = (ret: number) => {
      p.locks.unlock(lockId);
      if (k.ctx.tracing) {
        k.ctx.trace('page_fault', {
          pid: p.pid, addr: vpn * PAGE_SIZE, write: (flags & FAULT_FLAG_WRITE) !== 0, remote: (flags & FAULT_FLAG_REMOTE) !== 0,
          kind: fault.kind, ret, ns: k.ctx.now() - t0,
        });
      }
      done(ret);
    };
    const vma = p.vmas.find(vpn);
    const write = (flags & FAULT_FLAG_WRITE) !== 0;
    if (!vma || p.exiting || (write && !vmaWritable(vma)) || (!write && !vmaReadable(vma))) return finish(EFAULT);
    // A p2pmem VMA's pages were all inserted at mmap (vm_insert_page): nothing to fault in. The
    // CPU's loads and stores to it (MMIO to the provider's BAR) are not modelled: -EFAULT.
    if (vma.p2pdma !== undefined) return finish(EFAULT);
    handle_pte_fault(k, p, vma, vpn, flags, fault, finish);
  });
}

/** What a fault found: its kind, for the statistics and the trace. */
interface FaultRecord {
  kind: string;
}

function counted(k: Kernel, fault: FaultRecord, kind: string): void {
  fault.kind = kind;
  k.stats.countFault(kind);
}

function handle_pte_fault(k: Kernel, p: Process, vma: Vma, vpn: number, flags: number, fault: FaultRecord, done: FaultDone): void {
  const write = (flags & FAULT_FLAG_WRITE) !== 0;
  const pteFlags = p.pt.flags(vpn);
  switch (pteFlags & PTE_KIND_MASK) {
    case PTE_NONE:
      counted(k, fault, vmaIsAnon(vma) ? 'anonymous' : 'file');
      return vmaIsAnon(vma) ? do_anonymous_page(k, p, vpn, write, done) : do_fault(k, p, vma, vpn, write, done);
    case PTE_SWAP:
      counted(k, fault, 'swap');
      return do_swap_page(k, p, vma, vpn, write, done);
    case PTE_DEVICE_PRIVATE:
      counted(k, fault, 'device_private');
      return deviceFaultHooks.migrateToRam(k, p, vpn, done);
    case PTE_DEVICE_EXCLUSIVE:
      counted(k, fault, 'device_exclusive');
      return deviceFaultHooks.restoreExclusive(k, p, vpn, done);
    case PTE_MIGRATION:
      // Migrations hold the range lock while the entry exists: unreachable.
      throw new Error(`fault on a migration entry at pid ${p.pid} vpn ${vpn} without the migration's lock`);
    case PTE_PRESENT: {
      // handle_pte_fault: a NUMA hinting entry in an accessible VMA → do_numa_page first.
      if (pteFlags & PTE_PROTNONE) {
        counted(k, fault, 'numa');
        return do_numa_page(k, p, vma, vpn, flags, done);
      }
      if (write && !(pteFlags & PTE_WRITE)) {
        counted(k, fault, 'write_protect');
        return do_wp_page(k, p, vma, vpn, done);
      }
      const unshare = (flags & FAULT_FLAG_UNSHARE) !== 0 && !vma.shared && !isExclusiveAnon(k, p.pt.value(vpn));
      if (unshare) {
        counted(k, fault, 'unshare');
        // do_wp_page with FAULT_FLAG_UNSHARE: a reusable anon page is only marked exclusive.
        const pfn = p.pt.value(vpn);
        if (wp_can_reuse_anon_folio(k, pfn)) {
          k.pm.anonExclusive[pfn] = 1;
          return done(0);
        }
        return wp_page_copy(k, p, vma, vpn, false, done);
      }
      // Spurious (another fault got there first): mark accessed / dirty.
      fault.kind = 'spurious';
      p.pt.setFlags(vpn, pteFlags | PTE_YOUNG | (write ? PTE_MKDIRTY : 0));
      return done(0);
    }
  }
}

function do_anonymous_page(k: Kernel, p: Process, vpn: number, write: boolean, done: FaultDone): void {
  if (!write) {
    k.mapPresent(p, vpn, ZERO_PFN, false, false);
    return done(0);
  }
  alloc_page(k, true, processTask(p), (pfn) => {
    if (pfn < 0) return done(ENOMEM);
    k.pm.flags[pfn] |= PG_ANON;
    k.pm.anonExclusive[pfn] = 1;
    k.mapPresent(p, vpn, pfn, true, true);
    k.pm.put(pfn); // the mapping holds the page now
    done(0);
  });
}

function do_fault(k: Kernel, p: Process, vma: Vma, vpn: number, write: boolean, done: FaultDone): void {
  const f = k.files.get(vma.file!)!;
  const idx = fileIndex(vma, vpn);
  if (idx >= f.pages) return done(EFAULT); // beyond EOF: SIGBUS
  filemap_get_page(k, f, idx, processTask(p), (pfn) => {
    if (pfn < 0) return done(pfn === EIO_RET ? EIO_RET : ENOMEM);
    if (p.pt.kind(vpn) !== PTE_NONE) return done(0); // cannot happen under the range lock, but harmless
    if (!write) {
      k.mapPresent(p, vpn, pfn, false, false);
      return done(0);
    }
    if (vma.shared) {
      // do_shared_fault → do_page_mkwrite: the page is dirtied before it is mapped writable.
      k.pm.flags[pfn] |= PG_DIRTY;
      k.mapPresent(p, vpn, pfn, true, true);
      return done(0);
    }
    // do_cow_fault: a private copy of the file page, held across the allocation (which may reclaim).
    k.pm.get(pfn);
    alloc_page(k, true, processTask(p), (copy) => {
      k.pm.put(pfn);
      if (copy < 0) return done(ENOMEM);
      k.pm.flags[copy] |= PG_ANON;
      k.pm.anonExclusive[copy] = 1;
      k.pm.content[copy] = k.pm.content[pfn];
      k.stats.cowCopies++;
      k.mapPresent(p, vpn, copy, true, true);
      k.pm.put(copy);
      k.oracle('cow', { pid: p.pid, addr: vpn * PAGE_SIZE });
      done(0);
    });
  });
}

/** do_swap_page: bring the slot's content back, through the swap cache when the slot is shared. */
function do_swap_page(k: Kernel, p: Process, vma: Vma, vpn: number, write: boolean, done: FaultDone): void {
  const slot = p.pt.value(vpn);
  /** The caller holds a reference on pfn. The PTE still holds the entry: swap_free it and map the page. */
  const install = (pfn: number) => {
    const lastUser = k.swap.swapMap[slot] === 1;
    p.pt.clear(vpn);
    k.swapFree(slot);
    // Ours alone: no other PTE maps it or holds its swap entry, and it is not a KSM page.
    const exclusive = lastUser && k.pm.mapcount[pfn] === 0 && !(k.pm.flags[pfn] & PG_KSM);
    k.pm.anonExclusive[pfn] = exclusive ? 1 : 0; // RMAP_EXCLUSIVE
    k.mapPresent(p, vpn, pfn, write && exclusive, write && exclusive);
    k.stats.swapIns++;
    if (write && !exclusive) return wp_page_copy(k, p, vma, vpn, false, done);
    done(0);
  };
  const cached = k.swapCache.get(slot);
  if (cached !== undefined) {
    // Hold the page across install: freeing the slot drops the swap cache's own reference.
    k.pm.get(cached);
    install(cached);
    k.pm.put(cached);
    return;
  }
  alloc_page(k, true, processTask(p), (pfn) => {
    if (pfn < 0) return done(ENOMEM);
    k.pm.flags[pfn] |= PG_ANON;
    k.call(k.blockdev, { type: 'bio_submit', op: 'read', dev: 'swap', block: slot }, (reply) => {
      const bio = reply as BioDone;
      if (reply.type !== 'bio_done' || bio.ret < 0) {
        k.pm.put(pfn);
        return done(EIO_RET);
      }
      k.pm.content[pfn] = bio.value;
      // Another PTE of the slot swapped it in while this read was in flight (SWAP_HAS_CACHE in the
      // kernel keeps a second reader out): use that page, drop ours.
      const raced = k.swapCache.get(slot);
      if (raced !== undefined) {
        k.pm.put(pfn);
        k.pm.get(raced);
        install(raced);
        k.pm.put(raced);
        return;
      }
      // Shared slot (fork): keep the page in the swap cache for the other PTEs.
      if (k.swap.swapMap[slot] > 1) k.swapCacheAdd(slot, pfn);
      install(pfn);
      k.pm.put(pfn);
    });
  });
}

/** PageAnonExclusive (physmem.ts anonExclusive): set on new and reused anon pages, cleared by fork and KSM. */
export function isExclusiveAnon(k: Kernel, pfn: number): boolean {
  const f = k.pm.flags[pfn];
  return pfn !== ZERO_PFN && (f & PG_ANON) !== 0 && (f & PG_KSM) === 0 && k.pm.anonExclusive[pfn] === 1;
}

/**
 * wp_can_reuse_anon_folio (mm/memory.c v6.5–v6.15, small folios): a page that is not (or no longer
 * known to be) exclusive is reused only if it is not KSM and its one reference is its mapping's —
 * a gup reference (or any other) makes the write fault copy, and the holder keeps the old page.
 * A swap-cache page whose slot other PTEs still hold cannot be freed from the cache: no reuse.
 */
export function wp_can_reuse_anon_folio(k: Kernel, pfn: number): boolean {
  const f = k.pm.flags[pfn];
  if (pfn === ZERO_PFN || (f & PG_ANON) === 0 || (f & (PG_KSM | PG_SWAPCACHE)) !== 0) return false;
  return k.pm.refcount[pfn] === 1 && k.pm.mapcount[pfn] === 1;
}

function do_wp_page(k: Kernel, p: Process, vma: Vma, vpn: number, done: FaultDone): void {
  const pfn = p.pt.value(vpn);
  const f = p.pt.flags(vpn);
  if (vma.shared) {
    // wp_page_shared: page_mkwrite (the filesystem learns the page is dirty), then write.
    if (pfn !== ZERO_PFN) k.pm.flags[pfn] |= PG_DIRTY;
    p.pt.setFlags(vpn, f | PTE_WRITE | PTE_MKDIRTY | PTE_YOUNG);
    return done(0);
  }
  if (isExclusiveAnon(k, pfn) || wp_can_reuse_anon_folio(k, pfn)) {
    // wp_page_reuse: ours alone (PageAnonExclusive, or only our mapping holds it): mark it
    // exclusive and make it writable. PageAnonExclusive alone is enough, whatever holds a reference.
    k.pm.anonExclusive[pfn] = 1;
    p.pt.setFlags(vpn, f | PTE_WRITE | PTE_MKDIRTY | PTE_YOUNG);
    return done(0);
  }
  wp_page_copy(k, p, vma, vpn, true, done);
}

/**
 * wp_page_copy: replace the mapped page (zero page, a page shared after fork or by KSM, a file
 * page in a private mapping) by a private copy. Devices mirroring the page are told first
 * (MMU_NOTIFY_CLEAR on the page), as the kernel does.
 */
export function wp_page_copy(k: Kernel, p: Process, vma: Vma, vpn: number, write: boolean, done: FaultDone): void {
  alloc_page(k, true, processTask(p), (copy) => {
    if (copy < 0) return done(ENOMEM);
    // __wp_page_copy_user copies BEFORE mmu_notifier_invalidate_range_start (mm/memory.c v6.15):
    // a device that writes the old page through a gup reference while the invalidation is being
    // sent writes a page the process no longer maps — lost, as in the kernel. (Mirrors cannot
    // write it: the PTE is read-only, so hmm_range_fault gave them a read-only pfn.)
    const old = p.pt.value(vpn);
    k.pm.flags[copy] |= PG_ANON;
    k.pm.anonExclusive[copy] = 1;
    k.pm.content[copy] = old === ZERO_PFN ? 0 : k.pm.content[old];
    const range = { start: vpn * PAGE_SIZE, end: (vpn + 1) * PAGE_SIZE, event: 'MMU_NOTIFY_CLEAR' as const, blockable: true, owner: null, task: processTask(p), caller: 'wp_page_copy' };
    mmu_notifier_invalidate_range_start(k, p, range, (_ret, inv) => {
      k.zapPte(p, vpn);
      // FAULT_FLAG_UNSHARE maps the copy read-only; it is exclusive, so a later write reuses it.
      k.mapPresent(p, vpn, copy, write, write);
      k.pm.put(copy);
      k.stats.cowCopies++;
      if (vma.file !== null && !vma.shared) k.oracle('cow', { pid: p.pid, addr: vpn * PAGE_SIZE });
      mmu_notifier_invalidate_range_end(k, inv);
      done(0);
    });
  });
}

/** Swap-in, file read and COW are one fault each; the caller charges their cost. */
export const faultCostNs = (k: Kernel) => k.costs.faultNs;
