// Writeback of dirty shared file pages (mm/page-writeback.c write_cache_pages →
// folio_clear_dirty_for_io → mm/rmap.c folio_mkclean → page_vma_mkclean_one:
// MMU_NOTIFY_PROTECTION_PAGE per mapping, PTE write-protected and cleaned), then the write I/O.
// Followed: v6.6–v6.15.
//
// folio_mkclean does not look at pins: a page pinned for DMA is cleaned and written like any other,
// and a device writing through its pin afterwards dirties a page the kernel thinks is clean (the
// "gup vs writeback" problem; only FOLL_LONGTERM writable pins of such files are refused, v6.5+).
import type { Kernel } from './kernel.js';
import { blockDevOf } from './filemap.js';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './invalidate.js';
import { PTE_DIRTY, PTE_KIND_MASK, PTE_PRESENT, PTE_WRITE } from './page-table.js';
import { PG_DIRTY, PG_LOCKED, PG_USED } from './physmem.js';
import { PAGE_SIZE, type BioDone } from './protocol.js';
import { FLUSHER } from './task.js';

/** One pass over every cached page of every regular file: clean and write what is dirty. */
export function writeback_dirty(k: Kernel, then: (written: number) => void): void {
  const dirty: number[] = [];
  for (const f of k.files.values()) {
    if (f.id < 0) continue; // shmem has no backing file
    for (const pfn of f.cache) if (pfn >= 0 && isDirty(k, pfn)) dirty.push(pfn);
  }
  let written = 0;
  const next = (i: number) => {
    if (i === dirty.length) return then(written);
    writeback_page(k, dirty[i], (ok) => {
      if (ok) written++;
      k.bounce(() => next(i + 1));
    });
  };
  next(0);
}

function isDirty(k: Kernel, pfn: number): boolean {
  if (k.pm.flags[pfn] & PG_DIRTY) return true;
  return k.pm.mappings(pfn).some((m) => (k.procs.get(m.pid)!.pt.flags(m.vpn) & PTE_DIRTY) !== 0);
}

function writeback_page(k: Kernel, pfn: number, done: (ok: boolean) => void): void {
  const pm = k.pm;
  // The list is a snapshot: the page may have been dropped from the cache since.
  if (!(pm.flags[pfn] & PG_USED) || pm.fileId[pfn] === 0 || pm.flags[pfn] & PG_LOCKED) return done(false);
  pm.flags[pfn] |= PG_LOCKED;
  pm.get(pfn);
  const mappings = pm.mappings(pfn);
  // folio_mkclean: each mapping is write-protected and cleaned, devices told first.
  const clean = (i: number): void => {
    if (i === mappings.length) return write();
    const { pid, vpn } = mappings[i];
    const p = k.procs.get(pid)!;
    const range = { start: vpn * PAGE_SIZE, end: (vpn + 1) * PAGE_SIZE, event: 'MMU_NOTIFY_PROTECTION_PAGE' as const, blockable: true, owner: null, task: FLUSHER, caller: 'page_vma_mkclean_one' };
    mmu_notifier_invalidate_range_start(k, p, range, (_r, inv) => {
      const f = p.pt.flags(vpn);
      if ((f & PTE_KIND_MASK) === PTE_PRESENT && p.pt.value(vpn) === pfn) {
        if (f & PTE_DIRTY) pm.flags[pfn] |= PG_DIRTY;
        p.pt.setFlags(vpn, f & ~(PTE_WRITE | PTE_DIRTY));
      }
      mmu_notifier_invalidate_range_end(k, inv);
      k.bounce(() => clean(i + 1));
    });
  };
  const write = () => {
    // folio_clear_dirty_for_io: clean before the I/O; a write during it dirties the page again.
    pm.flags[pfn] &= ~PG_DIRTY;
    k.call(k.blockdev, { type: 'bio_submit', op: 'write', dev: blockDevOf(pm.fileId[pfn]), block: pm.fileIdx[pfn], value: pm.content[pfn] }, (r) => {
      const ok = r.type === 'bio_done' && (r as BioDone).ret >= 0;
      if (!ok) pm.flags[pfn] |= PG_DIRTY;
      else k.stats.writebacks++;
      pm.flags[pfn] &= ~PG_LOCKED;
      const waiters = k.pageWaiters.get(pfn);
      k.pageWaiters.delete(pfn);
      pm.put(pfn);
      waiters?.forEach((w) => w());
      done(ok);
    });
  };
  clean(0);
}
