// Page reclaim (mm/vmscan.c shrink_folio_list, mm/rmap.c try_to_unmap, mm/page_io.c swap_writepage)
// with kswapd and direct reclaim, and MADV_PAGEOUT (reclaim_pages). Followed: v6.4+ (commit d824ec2a:
// pinned file folios are unmapped, then kept).
//
// For each candidate page from the LRU tail:
//   referenced (PTE young bits, PG_REFERENCED) → clear and rotate (second chance)
//   locked, or any of its PTEs range-locked    → skip (folio_trylock fails)
//   anon, not yet in swap, maybe DMA-pinned    → keep, before any unmap (no notifier); a plain gup
//                                                reference does not keep it here (only at the end)
//   anon: allocate a swap slot, then try_to_unmap: for each mapping MMU_NOTIFY_CLEAR on the page,
//     then the PTE becomes the swap entry — unless the page is maybe pinned (the anon-exclusive
//     share check fails: the PTE is restored; the invalidation was sent all the same)
//   file: try_to_unmap (MMU_NOTIFY_CLEAR per mapping, pins or not); then a pinned page is kept
//     (activate_locked); a dirty one is written back first (pageout); a clean one is freed.
//   anon after unmap: write the slot (swap_writepage), free the page.
//
// Waiting for drivers' acks is where reclaim stalls behind a device: the time kswapd spends between
// an invalidation's start and its last ack is counted as kswapd blocked time.
import type { BioDone } from './protocol.js';
import { PAGE_SIZE, ZERO_PFN } from './protocol.js';
import { blockDevOf, removeFromPageCache } from './filemap.js';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start, type Invalidation } from './invalidate.js';
import type { Kernel } from './kernel.js';
import { reclaimHooks } from './page-alloc.js';
import { PTE_DIRTY, PTE_KIND_MASK, PTE_PRESENT, PTE_SWAP, PTE_YOUNG } from './page-table.js';
import { LRU_ANON, LRU_FILE, PG_ANON, PG_DIRTY, PG_LOCKED, PG_LRU, PG_REFERENCED, PG_SWAPCACHE, assert, type RmapEntry } from './physmem.js';
import type { Process } from './process.js';
import { KSWAPD, processTask } from './task.js';
import { mmu_notifier_clear_flush_young } from './mmu-notifier-young.js';

/** Pages looked at per LRU per reclaim round before giving up on the round (a bound on the scan). */
const SCAN_BATCH = 64;

type Who = 'kswapd' | 'direct' | 'pageout';

/** Reclaim up to `nr` pages from the LRU tails for `task` (task.ts); `then(reclaimed)`. */
export function shrink_lruvec(k: Kernel, nr: number, who: Who, task: string, then: (reclaimed: number) => void): void {
  const candidates: number[] = [];
  for (const lru of [LRU_FILE, LRU_ANON]) {
    let pfn = k.pm.lruTail[lru];
    for (let scanned = 0; pfn >= 0 && scanned < SCAN_BATCH && candidates.length < nr * 2; scanned++) {
      const prev = k.pm.lruPrev[pfn];
      if (referenced(k, pfn)) {
        // Second chance: rotate to the head.
        k.pm.lruDel(pfn);
        k.pm.lruAdd(pfn);
      } else {
        candidates.push(pfn);
      }
      pfn = prev;
    }
  }
  let reclaimed = 0;
  let list = candidates;
  const step = (i: number) => {
    if (i >= list.length || reclaimed >= nr) return then(reclaimed);
    shrink_folio(k, list[i], who, task, (freed) => {
      if (freed) reclaimed++;
      k.bounce(() => step(i + 1));
    });
  };
  // folio_referenced's ptep_clear_flush_young_notify: secondary MMUs registered with a full
  // mmu_notifier say which of the pages the CPU calls old they have used (mmu-notifier-young.ts).
  mmu_notifier_clear_flush_young(k, candidates, (young) => {
    if (young.size === 0) return step(0);
    for (const pfn of young) {
      if (!(k.pm.flags[pfn] & PG_LRU)) continue;
      k.pm.lruDel(pfn);
      k.pm.lruAdd(pfn);
    }
    list = candidates.filter((pfn) => !young.has(pfn));
    step(0);
  });
}

/** folio_referenced: test and clear the young bits of every mapping, and PG_REFERENCED. */
function referenced(k: Kernel, pfn: number): boolean {
  let young = (k.pm.flags[pfn] & PG_REFERENCED) !== 0;
  k.pm.flags[pfn] &= ~PG_REFERENCED;
  for (const m of k.pm.mappings(pfn)) {
    const p = k.procs.get(m.pid)!;
    const f = p.pt.flags(m.vpn);
    if (f & PTE_YOUNG) {
      young = true;
      p.pt.setFlags(m.vpn, f & ~PTE_YOUNG);
    }
  }
  return young;
}

/** shrink_folio_list for one page. */
export function shrink_folio(k: Kernel, pfn: number, who: Who, task: string, then: (freed: boolean) => void): void {
  const pm = k.pm;
  if (!(pm.flags[pfn] & PG_LRU) || pm.flags[pfn] & PG_LOCKED) return then(false);
  const anon = (pm.flags[pfn] & PG_ANON) !== 0;
  if (pm.flags[pfn] & PG_SWAPCACHE) return shrink_swap_cache_folio(k, pfn, then);
  if (anon && pm.maybeDmaPinned(pfn)) return then(false); // not in swap cache yet: keep before unmap
  // Unmapped anon pages are left to whoever holds them (simplification). A page held by a plain
  // gup reference is NOT skipped: shrink_folio_list (mm/vmscan.c v6.15) checks only
  // folio_maybe_dma_pinned here; it adds the page to swap, try_to_unmap sends CLEAR to every
  // mapping, pageout writes the slot, and only __remove_mapping's refcount freeze fails — the page
  // stays in the swap cache, its PTEs are swap entries (a fault maps the same page back).
  if (anon && pm.mapcount[pfn] === 0) return then(false);
  const mappings = pm.mappings(pfn);
  if (anon && pm.lazyfree[pfn]) return discard_lazyfree(k, pfn, mappings, who, task, then);
  // folio_trylock and the PTE locks: skip a page someone is working on.
  const locks: { p: Process; id: number }[] = [];
  for (const m of mappings) {
    const p = k.procs.get(m.pid)!;
    const id = p.locks.tryLock(m.vpn, m.vpn + 1, 'reclaim');
    if (id < 0) {
      for (const l of locks) l.p.locks.unlock(l.id);
      return then(false);
    }
    locks.push({ p, id });
  }
  const unlockAll = () => locks.forEach((l) => l.p.locks.unlock(l.id));
  let slot = -1;
  if (anon) {
    slot = k.swap.alloc(mappings.length);
    if (slot < 0) {
      unlockAll();
      return then(false); // no swap space: anon pages cannot be reclaimed
    }
    // add_to_swap: the page stands in the swap cache from now on, so a fault on a PTE that already
    // holds the swap entry finds the page there instead of reading a slot not written yet.
    k.swapCacheAdd(slot, pfn);
  }
  pm.flags[pfn] |= PG_LOCKED;
  pm.get(pfn); // isolate_lru_folio's reference
  try_to_unmap(k, pfn, mappings, slot, who, task, (unmapped) => {
    unlockAll();
    const finish = (freed: boolean) => endReclaimOf(k, pfn, freed, then);
    if (!unmapped) {
      if (slot >= 0) {
        // The slot was counted for every mapping; those that kept their PTE give their count back.
        // PTEs that already hold the swap entry keep the page in the swap cache.
        const entries = countSwapEntries(k, mappings, slot);
        for (let i = 0; i < mappings.length - entries; i++) k.swapFree(slot);
      }
      return finish(false);
    }
    if (anon) {
      // swap_writepage: the slot gets the content the page has now (after the last PTE went).
      k.call(k.blockdev, { type: 'bio_submit', op: 'write', dev: 'swap', block: slot, value: pm.content[pfn] }, (r) => {
        if (r.type !== 'bio_done' || (r as BioDone).ret < 0) return finish(false);
        k.stats.swapOuts++;
        // __remove_mapping: unless a fault mapped the page again meanwhile, it leaves the swap cache
        // (the slot keeps the content) and is freed.
        // (__remove_mapping's refcount freeze: a gup reference taken meanwhile keeps it too).
        if (pm.mapcount[pfn] > 0 || pm.extraRefs(pfn) > 2) return finish(false);
        if (k.swapCache.get(slot) === pfn) k.swapCacheDel(slot);
        finish(true);
      });
      return;
    }
    // File page: unmapped even if pinned (devices saw CLEAR); only now is the pin honoured.
    if (pm.maybeDmaPinned(pfn) || pm.extraRefs(pfn) > 1) return finish(false);
    if (pm.flags[pfn] & PG_DIRTY) {
      pm.flags[pfn] &= ~PG_DIRTY;
      k.call(k.blockdev, { type: 'bio_submit', op: 'write', dev: blockDevOf(pm.fileId[pfn]), block: pm.fileIdx[pfn], value: pm.content[pfn] }, (r) => {
        if (r.type !== 'bio_done' || (r as BioDone).ret < 0 || pm.flags[pfn] & PG_DIRTY || pm.mapcount[pfn] > 0) return finish(false);
        k.stats.writebacks++;
        removeFromPageCache(k, pfn);
        finish(true);
      });
      return;
    }
    removeFromPageCache(k, pfn);
    finish(true);
  });
}

/**
 * A lazyfree (MADV_FREE'd) anonymous page: no swap slot (shrink_folio_list skips add_to_swap for
 * !swapbacked folios); try_to_unmap_one's MADV_FREE check after the CLEAR: only the isolation and
 * the mapping hold it and it is clean (PTE and page) → discard (the PTE is cleared: the next fault
 * maps a zero page); else written since (or held by gup): the PTE stays, the page is swapbacked
 * again and is kept this time.
 */
function discard_lazyfree(k: Kernel, pfn: number, mappings: RmapEntry[], who: Who, task: string, then: (freed: boolean) => void): void {
  const pm = k.pm;
  if (mappings.length !== 1) {
    pm.lazyfree[pfn] = 0;
    return then(false);
  }
  const { pid, vpn } = mappings[0];
  const p = k.procs.get(pid)!;
  const lock = p.locks.tryLock(vpn, vpn + 1, 'reclaim');
  if (lock < 0) return then(false);
  pm.flags[pfn] |= PG_LOCKED;
  pm.get(pfn); // isolate_lru_folio's reference
  unmap_one_start(k, p, pfn, vpn, who, task, (inv, f, stillOurs) => {
    const clean = !(f & PTE_DIRTY) && !(pm.flags[pfn] & PG_DIRTY);
    let freed = false;
    if (stillOurs && clean && pm.extraRefs(pfn) <= 1 && !pm.maybeDmaPinned(pfn)) {
      k.zapPte(p, vpn);
      k.oracle('zap', { pid, start: vpn * PAGE_SIZE, end: (vpn + 1) * PAGE_SIZE });
      k.stats.lazyfreeDiscarded++;
      freed = true;
    } else pm.lazyfree[pfn] = 0; // folio_set_swapbacked: redirtied
    mmu_notifier_invalidate_range_end(k, inv);
    p.locks.unlock(lock);
    endReclaimOf(k, pfn, freed, then);
  });
}

/** The end of one folio's reclaim: folio_unlock (waking who waits on it), the LRU if it was freed, and the isolation reference dropped (which frees the page if nothing else holds it). */
function endReclaimOf(k: Kernel, pfn: number, freed: boolean, then: (freed: boolean) => void): void {
  const pm = k.pm;
  pm.flags[pfn] &= ~PG_LOCKED;
  const waiters = k.pageWaiters.get(pfn);
  k.pageWaiters.delete(pfn);
  if (freed) {
    k.stats.reclaimed++;
    if (pm.flags[pfn] & PG_LRU) pm.lruDel(pfn);
  }
  pm.put(pfn);
  waiters?.forEach((w) => w());
  then(freed);
}

/**
 * A page already in the swap cache (its slot written; some PTEs hold the slot): if no PTE maps it
 * and nothing but the swap cache holds it, __remove_mapping deletes it from the swap cache and frees
 * it (mm/vmscan.c v6.15), after writing the slot again if it was dirtied since (a device writing
 * through a gup reference, set_page_dirty at unpin). Departure: a swap-cache page that some PTEs
 * mapped back is left (the kernel would try_to_unmap those PTEs to the same slot).
 */
function shrink_swap_cache_folio(k: Kernel, pfn: number, then: (freed: boolean) => void): void {
  const pm = k.pm;
  const slot = pm.swapSlot[pfn];
  assert(slot >= 0 && k.swapCache.get(slot) === pfn, `swap-cache frame ${pfn} without its slot`);
  if (pm.mapcount[pfn] > 0 || pm.extraRefs(pfn) > 1) return then(false);
  pm.flags[pfn] |= PG_LOCKED;
  pm.get(pfn); // isolate_lru_folio's reference
  const finish = (freed: boolean) => endReclaimOf(k, pfn, freed, then);
  // __remove_mapping: isolation + swap cache references only, and still the slot's page.
  const remove = () => {
    if (pm.mapcount[pfn] > 0 || pm.extraRefs(pfn) > 2 || k.swapCache.get(slot) !== pfn) return finish(false);
    k.swapCacheDel(slot);
    finish(true);
  };
  if (!(pm.flags[pfn] & PG_DIRTY)) return remove();
  pm.flags[pfn] &= ~PG_DIRTY;
  k.call(k.blockdev, { type: 'bio_submit', op: 'write', dev: 'swap', block: slot, value: pm.content[pfn] }, (r) => {
    if (r.type !== 'bio_done' || (r as BioDone).ret < 0) {
      pm.flags[pfn] |= PG_DIRTY; // a failed swap write re-dirties the folio
      return finish(false);
    }
    k.stats.swapOuts++;
    remove();
  });
}

function countSwapEntries(k: Kernel, mappings: RmapEntry[], slot: number): number {
  let n = 0;
  for (const m of mappings) {
    const p = k.procs.get(m.pid)!;
    if ((p.pt.flags(m.vpn) & PTE_KIND_MASK) === PTE_SWAP && p.pt.value(m.vpn) === slot) n++;
  }
  return n;
}

/**
 * try_to_unmap: for each mapping, MMU_NOTIFY_CLEAR on the page then the PTE change. `then(true)`
 * when no mapping is left. An anon page that turns out maybe-pinned keeps its PTEs.
 */
function try_to_unmap(k: Kernel, pfn: number, mappings: RmapEntry[], slot: number, who: Who, task: string, then: (ok: boolean) => void): void {
  const pm = k.pm;
  const anon = (pm.flags[pfn] & PG_ANON) !== 0;
  const step = (i: number) => {
    if (i === mappings.length) return then(pm.mapcount[pfn] === 0);
    const { pid, vpn } = mappings[i];
    const p = k.procs.get(pid)!;
    unmap_one_start(k, p, pfn, vpn, who, task, (inv, f, stillOurs) => {
      if (stillOurs && anon && pm.maybeDmaPinned(pfn)) {
        // folio_try_share_anon_rmap_pte fails: the PTE stays; the notifier pair was sent anyway.
        mmu_notifier_invalidate_range_end(k, inv);
        return then(false);
      }
      if (stillOurs) {
        if (f & PTE_DIRTY) pm.flags[pfn] |= PG_DIRTY;
        k.zapPte(p, vpn);
        if (anon) p.pt.set(vpn, PTE_SWAP, slot);
      }
      mmu_notifier_invalidate_range_end(k, inv);
      k.bounce(() => step(i + 1));
    });
  };
  step(0);
}

/**
 * try_to_unmap_one's MMU_NOTIFY_CLEAR of one mapping (pid's vpn) of `pfn`, the wait for the acks
 * counted as reclaim's; then `then` with the invalidation to end, the PTE's flags and whether it
 * still maps the page.
 */
function unmap_one_start(k: Kernel, p: Process, pfn: number, vpn: number, who: Who, task: string, then: (inv: Invalidation, f: number, stillOurs: boolean) => void): void {
  const range = { start: vpn * PAGE_SIZE, end: (vpn + 1) * PAGE_SIZE, event: 'MMU_NOTIFY_CLEAR' as const, blockable: true, owner: null, task, caller: 'try_to_unmap_one' };
  const wait = who === 'pageout' ? undefined : k.reclaimWaits.begin(who, k.ctx.now());
  mmu_notifier_invalidate_range_start(k, p, range, (_ret, inv) => {
    if (wait !== undefined) k.reclaimWaits.end(wait, k.ctx.now());
    const f = p.pt.flags(vpn);
    then(inv, f, (f & PTE_KIND_MASK) === PTE_PRESENT && p.pt.value(vpn) === pfn);
  });
}

// ---- kswapd (balance_pgdat) and direct reclaim (try_to_free_pages) ----

export function wakeupKswapd(k: Kernel): void {
  if (k.cfg.kswapd === false || k.kswapdRunning) return;
  k.kswapdRunning = true;
  k.stats.kswapdRuns++;
  // The kernel's tracepoints mm_vmscan_kswapd_wake / mm_vmscan_kswapd_sleep, with the pages freed between.
  k.ctx.trace('mm_vmscan_kswapd_wake', { free: k.pm.nrFree, low: k.pm.wmarkLow });
  let reclaimed = 0;
  const round = (failures: number) => {
    // pgdat_balanced: stop at the high watermark; give up after MAX_RECLAIM_RETRIES fruitless rounds.
    if (k.pm.nrFree >= k.pm.wmarkHigh || failures >= 16) {
      k.kswapdRunning = false;
      k.ctx.trace('mm_vmscan_kswapd_sleep', { free: k.pm.nrFree, failures, nr_reclaimed: reclaimed });
      return;
    }
    shrink_lruvec(k, 32, 'kswapd', KSWAPD, (n) => {
      reclaimed += n;
      k.later(() => round(n > 0 ? 0 : failures + 1));
    });
  };
  k.later(() => round(0));
}

export function installReclaim(): void {
  reclaimHooks.wakeKswapd = wakeupKswapd;
  reclaimHooks.directReclaim = (k, nr, task, then) => shrink_lruvec(k, nr, 'direct', task, then);
}

/** MADV_PAGEOUT over [start, end) of p: reclaim each mapped page; `then(pagesReclaimed)`. */
export function reclaimPagesOf(k: Kernel, p: Process, start: number, end: number, then: (n: number) => void): void {
  const pfns: number[] = [];
  p.pt.forEach(start, end, (_vpn, f, v) => {
    if ((f & PTE_KIND_MASK) === PTE_PRESENT && v !== ZERO_PFN) pfns.push(v);
  });
  let n = 0;
  const step = (i: number) => {
    if (i === pfns.length) return then(n);
    shrink_folio(k, pfns[i], 'pageout', processTask(p), (freed) => {
      if (freed) n++;
      k.bounce(() => step(i + 1));
    });
  };
  step(0);
}
