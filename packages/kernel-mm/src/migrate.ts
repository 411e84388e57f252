// Migrating a page to another frame (mm/migrate.c migrate_pages → migrate_folio_unmap →
// try_to_migrate, then folio_migrate_mapping / move_to_new_folio / remove_migration_ptes), used by
// NUMA balancing and compaction (the `migrate_pages` trigger) and by FOLL_LONGTERM pins of pages in
// ZONE_MOVABLE (check_and_migrate_movable_pages). Followed: v6.6–v6.15.
//
//   trylock the page and its PTEs (skip if busy, as migration does); pinned pages are skipped
//   before any unmap (the kernel unmaps them with CLEAR first, then fails: a known simplification)
//   for each mapping: MMU_NOTIFY_CLEAR on the page (try_to_migrate_one), the PTE becomes a migration
//     entry (faults on it wait: here, on the range lock)
//   extra references (gup, pins, I/O) → give up: restore the PTEs (folio_migrate_mapping -EAGAIN)
//   else copy the content, point every migration entry at the new frame, move the page-cache or
//   swap-cache slot, free the old frame.
import { PAGE_SIZE } from './protocol.js';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './invalidate.js';
import type { Kernel } from './kernel.js';
import { PTE_KIND_MASK, PTE_MIGRATION, PTE_PRESENT, PTE_WAS_WRITE, PTE_WRITE } from './page-table.js';
import { PG_ANON, PG_DIRTY, PG_KSM, PG_LOCKED, PG_LRU, PG_REFERENCED } from './physmem.js';

/** folio_migrate_flags: what the new frame inherits. */
const MIGRATED_FLAGS = PG_ANON | PG_DIRTY | PG_REFERENCED;
import type { Process } from './process.js';

/** Move `pfn` to a new frame (in ZONE_MOVABLE if `movable`) for `task`; `then(newPfn)` or `then(-1)`. */
export function migrate_page(k: Kernel, pfn: number, movable: boolean, task: string, then: (newPfn: number) => void): void {
  const pm = k.pm;
  // isolate_lru_folio: only a page in use and on an LRU can be taken (it may have been freed since
  // the caller chose it: the caller's list is a snapshot).
  // KSM pages are left alone here (the kernel migrates them through the stable tree).
  if (!(pm.flags[pfn] & PG_LRU) || pm.flags[pfn] & (PG_LOCKED | PG_KSM) || pm.maybeDmaPinned(pfn)) return then(-1);
  const mappings = pm.mappings(pfn);
  const locks: { p: Process; id: number; vpn: number; flags: number }[] = [];
  for (const m of mappings) {
    const p = k.procs.get(m.pid)!;
    const id = p.locks.tryLock(m.vpn, m.vpn + 1, 'migrate');
    if (id < 0) {
      locks.forEach((l) => l.p.locks.unlock(l.id));
      return then(-1);
    }
    locks.push({ p, id, vpn: m.vpn, flags: 0 });
  }
  const dst = pm.alloc(movable);
  if (dst < 0) {
    locks.forEach((l) => l.p.locks.unlock(l.id));
    return then(-1);
  }
  pm.flags[pfn] |= PG_LOCKED;
  pm.get(pfn);
  const unmapOne = (i: number) => {
    if (i === locks.length) return commit();
    const l = locks[i];
    const range = { start: l.vpn * PAGE_SIZE, end: (l.vpn + 1) * PAGE_SIZE, event: 'MMU_NOTIFY_CLEAR' as const, blockable: true, owner: null, task, caller: 'try_to_migrate_one' };
    mmu_notifier_invalidate_range_start(k, l.p, range, (_ret, inv) => {
      const f = l.p.pt.flags(l.vpn);
      if ((f & PTE_KIND_MASK) === PTE_PRESENT && l.p.pt.value(l.vpn) === pfn) {
        l.flags = f;
        l.p.pt.setFlags(l.vpn, PTE_MIGRATION | (f & PTE_WRITE ? PTE_WAS_WRITE : 0));
      }
      mmu_notifier_invalidate_range_end(k, inv);
      k.bounce(() => unmapOne(i + 1));
    });
  };
  const commit = () => {
    // Every mapping must now be a migration entry, and nothing but our isolation may hold the page.
    const converted = locks.filter((l) => (l.p.pt.flags(l.vpn) & PTE_KIND_MASK) === PTE_MIGRATION).length;
    const ok = converted === pm.mapcount[pfn] && pm.extraRefs(pfn) <= 1 && !pm.maybeDmaPinned(pfn);
    for (const l of locks) {
      if ((l.p.pt.flags(l.vpn) & PTE_KIND_MASK) !== PTE_MIGRATION) continue;
      if (ok) {
        pm.content[dst] = pm.content[pfn];
        // remove_migration_ptes: the new frame takes the mapping, with the old PTE's bits.
        l.p.pt.setFlags(l.vpn, PTE_PRESENT);
        k.zapPte(l.p, l.vpn);
        pm.flags[dst] |= pm.flags[pfn] & MIGRATED_FLAGS;
        pm.anonExclusive[dst] = pm.anonExclusive[pfn]; // the migration entry keeps PageAnonExclusive
        k.mapPresent(l.p, l.vpn, dst, (l.flags & PTE_WRITE) !== 0, false);
        l.p.pt.setFlags(l.vpn, l.flags);
      } else {
        l.p.pt.setFlags(l.vpn, l.flags);
      }
    }
    if (ok) {
      pm.content[dst] = pm.content[pfn];
      // folio_migrate_flags: the page's state goes with it (a dirty file page must stay dirty).
      pm.flags[dst] |= pm.flags[pfn] & MIGRATED_FLAGS;
      moveCacheSlot(k, pfn, dst);
      k.stats.migrations++;
    }
    locks.forEach((l) => l.p.locks.unlock(l.id));
    pm.flags[pfn] &= ~PG_LOCKED;
    const waiters = k.pageWaiters.get(pfn);
    k.pageWaiters.delete(pfn);
    if (ok && pm.flags[pfn] & PG_LRU && pm.mapcount[pfn] === 0) pm.lruDel(pfn);
    pm.put(pfn);
    pm.put(dst); // the new mappings hold it
    waiters?.forEach((w) => w());
    then(ok ? dst : -1);
  };
  unmapOne(0);
}

/** folio_migrate_mapping: the page-cache slot (or swap-cache slot) now names the new frame. */
function moveCacheSlot(k: Kernel, from: number, to: number): void {
  const pm = k.pm;
  const fileId = pm.fileId[from];
  if (fileId !== 0) {
    const f = k.files.get(fileId)!;
    f.cache[pm.fileIdx[from]] = to;
    pm.fileId[to] = fileId;
    pm.fileIdx[to] = pm.fileIdx[from];
    pm.fileId[from] = 0;
    pm.get(to);
    pm.put(from);
    if (!(pm.flags[to] & PG_LRU)) pm.lruAdd(to);
  }
  for (const [slot, pfn] of k.swapCache) {
    if (pfn !== from) continue;
    k.swapCacheDel(slot);
    k.swapCacheAdd(slot, to);
  }
}
