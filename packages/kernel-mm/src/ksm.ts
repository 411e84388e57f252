// Kernel samepage merging (mm/ksm.c ksm_do_scan → cmp_and_merge_page → try_to_merge_one_page:
// write_protect_page, replace_page). Followed: v6.6–v6.15.
//
// One `ksm_scan` pass walks every anonymous page mapped once in a VM_MERGEABLE VMA:
//   write_protect_page: MMU_NOTIFY_CLEAR on the page (devices drop it), then the PTE is made
//     read-only — unless the page is maybe DMA-pinned (the share check fails): PTE restored, no merge;
//   then the content is compared (it may have changed while devices were told) with the stable tree
//   (content → KSM page): equal → replace_page maps the KSM page instead and frees this one;
//   no match → this page becomes a KSM page in the stable tree.
// A write to a KSM page takes a COW fault (fault.ts: a KSM page is never exclusive).
// The kernel sends a second CLEAR for replace_page; one invalidation spanning both steps tells the
// devices the same thing (drop the page) before either PTE change.
import type { Kernel } from './kernel.js';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './invalidate.js';
import { PTE_KIND_MASK, PTE_PRESENT, PTE_WRITE } from './page-table.js';
import { PG_ANON, PG_KSM, PG_USED } from './physmem.js';
import type { Process } from './process.js';
import { PAGE_SIZE, ZERO_PFN } from './protocol.js';
import { KSMD } from './task.js';

export function ksm_scan(k: Kernel, then: (merged: number) => void): void {
  const candidates: { p: Process; vpn: number }[] = [];
  for (const p of k.procs.values()) {
    if (!p.alive || p.exiting) continue;
    for (const v of p.vmas.list) {
      if (!v.mergeable || v.file !== null || v.shared) continue;
      p.pt.forEach(v.start, v.end, (vpn, f, pfn) => {
        if ((f & PTE_KIND_MASK) === PTE_PRESENT && pfn !== ZERO_PFN && k.pm.flags[pfn] & PG_ANON && !(k.pm.flags[pfn] & PG_KSM) && k.pm.mapcount[pfn] === 1) {
          candidates.push({ p, vpn });
        }
      });
    }
  }
  let merged = 0;
  const next = (i: number) => {
    if (i === candidates.length) return then(merged);
    try_to_merge_one_page(k, candidates[i].p, candidates[i].vpn, (ok) => {
      if (ok) merged++;
      k.bounce(() => next(i + 1));
    });
  };
  next(0);
}

function try_to_merge_one_page(k: Kernel, p: Process, vpn: number, done: (merged: boolean) => void): void {
  const id = p.locks.tryLock(vpn, vpn + 1, 'ksm');
  if (id < 0) return done(false);
  const range = { start: vpn * PAGE_SIZE, end: (vpn + 1) * PAGE_SIZE, event: 'MMU_NOTIFY_CLEAR' as const, blockable: true, owner: null, task: KSMD, caller: 'write_protect_page' };
  mmu_notifier_invalidate_range_start(k, p, range, (_r, inv) => {
    const finish = (ok: boolean) => {
      mmu_notifier_invalidate_range_end(k, inv);
      p.locks.unlock(id);
      done(ok);
    };
    const f = p.pt.flags(vpn);
    const pfn = p.pt.value(vpn);
    const pm = k.pm;
    if ((f & PTE_KIND_MASK) !== PTE_PRESENT || pfn === ZERO_PFN || pm.mapcount[pfn] !== 1 || pm.flags[pfn] & PG_KSM) return finish(false);
    if (pm.maybeDmaPinned(pfn) || pm.extraRefs(pfn) > 0) return finish(false); // write_protect_page: the share check fails
    p.pt.setFlags(vpn, f & ~PTE_WRITE);
    const content = pm.content[pfn];
    const stable = k.ksmStable.get(content);
    if (stable !== undefined && stable !== pfn && pm.flags[stable] & PG_USED && pm.flags[stable] & PG_KSM && pm.content[stable] === content) {
      // replace_page: map the KSM page, drop ours.
      k.zapPte(p, vpn);
      k.mapPresent(p, vpn, stable, false, false);
      k.stats.ksmMerged++;
      return finish(true);
    }
    pm.flags[pfn] |= PG_KSM;
    pm.anonExclusive[pfn] = 0; // KSM pages are never exclusive
    k.ksmStable.set(content, pfn);
    finish(false);
  });
}
