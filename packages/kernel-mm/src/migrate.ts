// Migrating a page to another frame (mm/migrate.c migrate_pages → migrate_pages_batch →
// migrate_folio_unmap → try_to_migrate, then migrate_folio_move: folio_migrate_mapping /
// move_to_new_folio / remove_migration_ptes), used by NUMA balancing and compaction (the
// `migrate_pages` trigger) and by FOLL_LONGTERM pins of pages in ZONE_MOVABLE
// (check_and_migrate_movable_pages). Followed: v6.6–v6.15 (migrate_pages_batch, migrate_pages_sync,
// NR_MAX_MIGRATE_PAGES_RETRY as in v6.15).
//
// One attempt (migrate_page below) answers like migrate_folio_unmap / migrate_folio_move:
//   -EBUSY   the page is not on an LRU (freed since it was chosen) or is a KSM page: permanent
//   -EAGAIN  the page is locked (folio_trylock), its PTEs are busy, an exclusive anon page is
//            maybe DMA-pinned (try_to_migrate_one: folio_try_share_anon_rmap_pte refuses, after the
//            invalidation was sent), or extra references remain once every mapping is a migration
//            entry (folio_migrate_mapping's refcount check: a pin, a gup reference, I/O): retried
//   -ENOMEM  no frame to migrate to
//   ≥ 0      the new frame
// for each mapping: MMU_NOTIFY_CLEAR on the page (try_to_migrate_one), the PTE becomes a migration
//   entry (faults on it wait: here, on the range lock); a failed attempt restores the PTEs, so every
//   retry invalidates again.
//
// migrate_pages retries: the passes of migrate_pages_batch, while some page answered -EAGAIN, up to
// NR_MAX_MIGRATE_PAGES_RETRY (10) in all (MIGRATE_ASYNC: 10 passes; MIGRATE_SYNC: 3 async passes,
// then NR_MAX_MIGRATE_SYNC_RETRY = 7 sync ones in migrate_pages_sync). A short pin (an O_DIRECT
// FOLL_PIN) that ends during the passes lets the page migrate; one that outlasts them leaves it.
// A pass over a page costs `migratePassNs` of mm's time before the next (the kernel's passes follow
// each other at once: the cost stands for the unmap, TLB flush and restore of the failed attempt).
//
//   migrate_pages (one page)          the pin's holder (an O_DIRECT bio)
//   pass 1: unmap, refcount ≠ expected
//           → -EAGAIN, PTEs restored
//   pass 2: unmap … -EAGAIN             I/O completes: unpin
//   pass 3: unmap, refcount ok → copy, remap: migrated
import { EAGAIN, EBUSY, ENOMEM, PAGE_SIZE } from './protocol.js';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './invalidate.js';
import type { Kernel } from './kernel.js';
import { PTE_KIND_MASK, PTE_MIGRATION, PTE_PRESENT, PTE_WAS_WRITE, PTE_WRITE } from './page-table.js';
import { PG_ANON, PG_DIRTY, PG_KSM, PG_LOCKED, PG_LRU, PG_REFERENCED } from './physmem.js';

/** folio_migrate_flags: what the new frame inherits. */
const MIGRATED_FLAGS = PG_ANON | PG_DIRTY | PG_REFERENCED;
import type { Process } from './process.js';

/** NR_MAX_MIGRATE_PAGES_RETRY (mm/migrate.c, v6.3–v6.15): the passes migrate_pages makes over a page that answers -EAGAIN. */
export const NR_MAX_MIGRATE_PAGES_RETRY = 10;
/** NR_MAX_MIGRATE_ASYNC_RETRY: the MIGRATE_ASYNC passes migrate_pages_sync makes before the sync ones. */
export const NR_MAX_MIGRATE_ASYNC_RETRY = 3;
/** NR_MAX_MIGRATE_SYNC_RETRY: what is left of the ten for migrate_pages_sync's one-by-one sync passes. */
export const NR_MAX_MIGRATE_SYNC_RETRY = NR_MAX_MIGRATE_PAGES_RETRY - NR_MAX_MIGRATE_ASYNC_RETRY;

/** What migrate_pages did with one page. */
export interface MigrateOutcome {
  /** The new frame, or the last attempt's -errno (-EAGAIN: still busy after the last pass). */
  ret: number;
  /** Passes after the first (each one a retry after -EAGAIN). */
  retries: number;
}

/**
 * migrate_pages over a list of one folio (migrate_misplaced_folio's, or one of
 * migrate_longterm_unpinnable_folios' after migrate_pages_sync's split into single folios): an
 * attempt per pass while it answers -EAGAIN, NR_MAX_MIGRATE_PAGES_RETRY passes at most; -EBUSY and
 * -ENOMEM end it at once. `pfnNow()` names the page at each pass (-1: it is gone, e.g. unmapped:
 * nothing left to migrate). Counted in mm's stats: migrationRetries, migrationsFailed.
 */
export function migrate_pages(k: Kernel, pfnNow: () => number, movable: boolean, task: string, then: (o: MigrateOutcome) => void): void {
  let retries = 0;
  const pass = (n: number): void => {
    const pfn = pfnNow();
    if (pfn < 0) {
      k.stats.migrationsFailed++;
      return then({ ret: EAGAIN, retries });
    }
    migrate_page(k, pfn, movable, task, (ret) => {
      if (ret !== EAGAIN || n + 1 >= NR_MAX_MIGRATE_PAGES_RETRY) {
        if (ret < 0) k.stats.migrationsFailed++;
        else if (retries > 0) k.stats.migratedAfterRetry++;
        if (k.ctx.tracing && (retries > 0 || ret < 0)) k.ctx.trace('migrate_pages', { pfn, ret, retries, task });
        return then({ ret, retries });
      }
      retries++;
      k.stats.migrationRetries++;
      k.afterNs(k.costs.migratePassNs, () => pass(n + 1));
    });
  };
  pass(0);
}

/** One attempt to move `pfn` to a new frame (in ZONE_MOVABLE if `movable`) for `task`; `then(newPfn)` or `then(-errno)` (the header above). */
export function migrate_page(k: Kernel, pfn: number, movable: boolean, task: string, then: (ret: number) => void): void {
  const pm = k.pm;
  // isolate_lru_folio: only a page in use and on an LRU can be taken (it may have been freed since
  // the caller chose it: the caller's list is a snapshot).
  // KSM pages are left alone here (the kernel migrates them through the stable tree).
  if (!(pm.flags[pfn] & PG_LRU) || pm.flags[pfn] & PG_KSM) return then(EBUSY);
  if (pm.flags[pfn] & PG_LOCKED) return then(EAGAIN); // folio_trylock fails (MIGRATE_ASYNC)
  const mappings = pm.mappings(pfn);
  const locks: { p: Process; id: number; vpn: number; flags: number }[] = [];
  for (const m of mappings) {
    const p = k.procs.get(m.pid)!;
    const id = p.locks.tryLock(m.vpn, m.vpn + 1, 'migrate');
    if (id < 0) {
      locks.forEach((l) => l.p.locks.unlock(l.id));
      return then(EAGAIN);
    }
    locks.push({ p, id, vpn: m.vpn, flags: 0 });
  }
  const dst = pm.alloc(movable);
  if (dst < 0) {
    locks.forEach((l) => l.p.locks.unlock(l.id));
    return then(ENOMEM);
  }
  pm.flags[pfn] |= PG_LOCKED;
  pm.get(pfn);
  // try_to_migrate_one on an exclusive anon page that may be DMA-pinned: folio_try_share_anon_rmap_pte
  // refuses (-EBUSY) after the invalidation has gone out; the PTE stays, the walk stops.
  let refused = false;
  const unmapOne = (i: number) => {
    if (i === locks.length || refused) return commit();
    const l = locks[i];
    const range = { start: l.vpn * PAGE_SIZE, end: (l.vpn + 1) * PAGE_SIZE, event: 'MMU_NOTIFY_CLEAR' as const, blockable: true, owner: null, task, caller: 'try_to_migrate_one' };
    mmu_notifier_invalidate_range_start(k, l.p, range, (_ret, inv) => {
      const f = l.p.pt.flags(l.vpn);
      if ((f & PTE_KIND_MASK) === PTE_PRESENT && l.p.pt.value(l.vpn) === pfn) {
        if (pm.flags[pfn] & PG_ANON && pm.anonExclusive[pfn] && pm.maybeDmaPinned(pfn)) refused = true;
        else {
          l.flags = f;
          l.p.pt.setFlags(l.vpn, PTE_MIGRATION | (f & PTE_WRITE ? PTE_WAS_WRITE : 0));
        }
      }
      mmu_notifier_invalidate_range_end(k, inv);
      k.bounce(() => unmapOne(i + 1));
    });
  };
  const commit = () => {
    // Every mapping must now be a migration entry, and nothing but our isolation may hold the page
    // (folio_migrate_mapping: folio_ref_count against the expected count, else -EAGAIN).
    const converted = locks.filter((l) => (l.p.pt.flags(l.vpn) & PTE_KIND_MASK) === PTE_MIGRATION).length;
    const ok = !refused && converted === pm.mapcount[pfn] && pm.extraRefs(pfn) <= 1 && !pm.maybeDmaPinned(pfn);
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
    then(ok ? dst : EAGAIN);
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
