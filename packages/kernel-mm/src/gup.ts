// get_user_pages / pin_user_pages (mm/gup.c __get_user_pages → follow_page_pte / faultin_page,
// __gup_longterm_locked → check_and_migrate_movable_pages; unpin_user_pages_dirty_lock). v6.6–v6.15.
//
//   FOLL_GET  +1 reference per page (put_page to release)
//   FOLL_PIN  +GUP_PIN_COUNTING_BIAS and an exact pin count (unpin_user_page to release); sets
//             MMF_HAS_PINNED on the mm (fork then copies pinned anon pages eagerly)
//   FOLL_WRITE  the page must be writable: a read-only PTE takes a write fault (COW break) first
//   a read pin of an anon page shared with another mm is unshared first (FAULT_FLAG_UNSHARE), so a
//             pinned anon page is always exclusive; a read-only FOLL_LONGTERM pin of a private
//             mapping also unshares the zero page and page-cache pages (gup_must_unshare, v6.2+)
//   FOLL_LONGTERM  needs FOLL_PIN; a writable long-term pin of a file mapping that needs dirty
//             tracking is refused (-EFAULT, v6.5+ writable_file_mapping_allowed); pages in
//             ZONE_MOVABLE are migrated out first: unpin all, migrate, pin again
//   _fast     get_user_pages_fast / pin_user_pages_fast: gup_fast takes what a lockless walk of
//             present PTEs allows, without faulting; from the first page it refuses (not present,
//             not writable for FOLL_WRITE, must be unshared, a long-term writable pin of a file
//             page, a page a long-term pin must migrate) the usual walk does the rest (mm/gup.c
//             v6.15 gup_fast_pte_range, gup_fast_folio_allowed; counted as gupFastPages)
// Returns the number of pages pinned from the start (fewer than asked if a page fails after the
// first), or -errno if the first page fails.
import type { Envelope, Message } from '@svmsim/runtime';
import { FAULT_FLAG_UNSHARE, FAULT_FLAG_WRITE, handle_mm_fault, isExclusiveAnon } from './fault.js';
import type { Kernel } from './kernel.js';
import { migrate_pages } from './migrate.js';
import { PTE_KIND_MASK, PTE_PRESENT, PTE_WRITE } from './page-table.js';
import { PG_ANON, PG_DIRTY } from './physmem.js';
import {
  EFAULT, EINVAL, ENOMEM, EREMOTEIO, ESRCH, FOLL_FORCE, FOLL_LONGTERM, FOLL_PCI_P2PDMA, FOLL_PIN, FOLL_WRITE, PAGE_SIZE, ZERO_PFN,
  type GetUserPages, type GetUserPagesResult, type GupP2pdma, type UnpinUserPages,
} from './protocol.js';
import { p2pdmaPfn, vmaIsCow, vmaNeedsDirtyTracking, vmaReadable, vmaWritable, type Vma } from './vma.js';
import { processTask } from './task.js';
import type { Process } from './process.js';

/** Rounds of unpin–migrate–repin before a FOLL_LONGTERM pin gives up (the kernel loops while -EAGAIN). */
const LONGTERM_MIGRATE_ROUNDS_MAX = 8;
/** Faults one page may take before gup gives up on it (a page unmapped again as fast as it is faulted); MmConfig.gupFaultsPerPageMax. */
const FAULTS_PER_PAGE_MAX = 16;

export function get_user_pages(k: Kernel, env: Envelope<Message>, m: GetUserPages): void {
  const p = k.proc(m.pid);
  const pfns = new Float64Array(Math.max(0, m.nr_pages | 0));
  /** The pages are p2pdma pages of this provider (the first one's offset). */
  let p2p: GupP2pdma | undefined;
  const reply = (ret: number, walked: number) => {
    const r: GetUserPagesResult = { type: 'get_user_pages_result', ret, pfns, ...(p2p && ret > 0 ? { p2pdma: p2p } : {}) };
    k.replyAfter(env, r, walked * k.costs.gupPerPageNs);
  };
  if (!p) return reply(ESRCH, 0);
  const flags = m.pin ? m.gup_flags | FOLL_PIN : m.gup_flags;
  if (m.start % PAGE_SIZE !== 0 || !Number.isInteger(m.nr_pages) || m.nr_pages <= 0) return reply(EINVAL, 0);
  if (flags & FOLL_LONGTERM && !(flags & FOLL_PIN)) return reply(EINVAL, 0); // WARN in __gup_longterm_locked
  // is_valid_gup_args (mm/gup.c v6.2–v6.15): "We want to allow the pgmap to be hot-unplugged at
  // all times": a long-term pin of P2P memory is refused before any page is looked at.
  if (flags & FOLL_LONGTERM && flags & FOLL_PCI_P2PDMA) return reply(EINVAL, 0);
  const write = (flags & FOLL_WRITE) !== 0;
  const startVpn = m.start / PAGE_SIZE;
  // mm_set_has_pinned_flag at the start of __get_user_pages_locked: a fork racing this pin must
  // already copy the pages pinned so far.
  if (flags & FOLL_PIN) p.hasPinned = true;
  let walked = 0;
  let faults = 0;

  const release = (n: number) => {
    for (let i = 0; i < n; i++) ungrab(k, pfns[i], flags);
  };
  // Pages are taken in a loop; only a fault (which waits) leaves it and comes back through page(i).
  const page = (from: number): void => {
    for (let i = from; i < m.nr_pages; i++) {
      walked++;
      const vpn = startVpn + i;
      const vma = p.vmas.find(vpn);
      const err = vma ? check_vma_flags(vma, flags) : EFAULT;
      if (err) return reply(i > 0 ? i : err, walked);
      if (vma!.p2pdma !== undefined || p2p !== undefined) {
        // try_grab_folio / try_grab_page (mm/gup.c v6.2–v6.15): a MEMORY_DEVICE_PCI_P2PDMA page
        // without FOLL_PCI_P2PDMA → -EREMOTEIO. FOLL_LONGTERM (ib_umem_get) never carries it.
        if (vma!.p2pdma !== undefined && !(flags & FOLL_PCI_P2PDMA)) {
          k.stats.gupEremoteio++;
          return reply(i > 0 ? i : EREMOTEIO, walked);
        }
        // A bio never mixes pgmaps (the model's result names one provider and a run of its pages):
        // the pages so far end the call where P2P and other memory, or two pgmaps, meet.
        const pfn = vma!.p2pdma !== undefined ? p2pdmaPfn(vma!, vpn) : -1;
        const at = pfn >= 0 ? k.devicePages.p2pdmaPage(pfn) : undefined;
        if (i > 0 && (at === undefined || p2p === undefined || at.provider !== p2p.provider || at.page !== p2p.page + i)) return reply(i, walked);
        if (i === 0) p2p = at;
        k.devicePages.get(pfn);
        pfns[i] = pfn;
        continue;
      }
      const f = p.pt.flags(vpn);
      const pfn = p.pt.value(vpn);
      const present = (f & PTE_KIND_MASK) === PTE_PRESENT;
      // follow_page_pte: a read-only PTE whose page gup_must_unshare → -EMLINK → faultin_page(unshare).
      const needUnshare = present && !(f & PTE_WRITE) && gup_must_unshare(k, vma!, flags, pfn);
      if (present && (!write || f & PTE_WRITE) && !needUnshare) {
        grab(k, pfn, flags);
        pfns[i] = pfn;
        continue;
      }
      // faultin_page, then this page again. At the bound, as at any error after the first page,
      // __get_user_pages returns the count so far and the caller keeps (and later drops) those
      // pins (mm/gup.c v6.15: `return i ? i : ret`).
      if (++faults > (k.cfg.gupFaultsPerPageMax ?? FAULTS_PER_PAGE_MAX) * m.nr_pages) return reply(i > 0 ? i : EFAULT, walked);
      handle_mm_fault(k, p, vpn, (write ? FAULT_FLAG_WRITE : 0) | (needUnshare ? FAULT_FLAG_UNSHARE : 0), (ret) => {
        if (ret < 0) return reply(i > 0 ? i : ret === ENOMEM ? ENOMEM : EFAULT, walked);
        k.bounce(() => page(i));
      });
      return;
    }
    longterm();
  };
  // check_and_migrate_movable_pages: every page must be long-term pinnable. If some are not, all
  // pins are dropped, those pages migrated, and the pin starts over (-EAGAIN inside the kernel);
  // a page that cannot be migrated fails the whole call.
  let round = 0;
  const longterm = (): void => {
    if (!(flags & FOLL_LONGTERM)) return done();
    const movable: number[] = [];
    for (let i = 0; i < m.nr_pages; i++) if (pfns[i] !== ZERO_PFN && k.pm.isMovable(pfns[i])) movable.push(pfns[i]);
    if (movable.length === 0) return done();
    release(m.nr_pages);
    if (++round > LONGTERM_MIGRATE_ROUNDS_MAX) return reply(ENOMEM, walked);
    let failed = false;
    const next = (j: number): void => {
      if (j === movable.length) return failed ? reply(ENOMEM, walked) : k.bounce(() => page(0));
      // migrate_longterm_unpinnable_folios → migrate_pages(MIGRATE_SYNC, MR_LONGTERM_PIN): its passes.
      const pfn = movable[j];
      migrate_pages(k, () => pfn, false, processTask(p), ({ ret }) => {
        if (ret < 0) failed = true;
        k.bounce(() => next(j + 1));
      });
    };
    next(0);
  };
  const done = () => {
    if (flags & FOLL_PIN) {
      p.hasPinned = true;
      k.stats.pinPages += m.nr_pages;
    } else k.stats.gupPages += m.nr_pages;
    if (k.ctx.tracing) {
      k.ctx.trace(flags & FOLL_PIN ? 'pin_user_pages' : 'get_user_pages', {
        pid: p.pid, start: m.start, nr_pages: m.nr_pages, gup_flags: flags, longtermRounds: round, by: env.from, pfns,
      });
    }
    reply(m.nr_pages, walked);
  };
  page(m.fast ? gup_fast(k, p, startVpn, m.nr_pages, flags, pfns) : 0);
}

/**
 * gup_fast (mm/gup.c v6.15): pages from the first, with no fault and no lock, while each is a
 * present PTE the access allows and its folio may be taken this way; the count taken (grabbed,
 * their pfns in `pfns`).
 */
function gup_fast(k: Kernel, p: Process, startVpn: number, nr: number, flags: number, pfns: Float64Array): number {
  const write = (flags & FOLL_WRITE) !== 0;
  let i = 0;
  for (; i < nr; i++) {
    const vpn = startVpn + i;
    const vma = p.vmas.find(vpn);
    const f = p.pt.flags(vpn);
    if (!vma || (f & PTE_KIND_MASK) !== PTE_PRESENT || (write && !(f & PTE_WRITE))) break; // pte_access_permitted
    const pfn = p.pt.value(vpn);
    if (!(f & PTE_WRITE) && gup_must_unshare(k, vma, flags, pfn)) break;
    if (!gup_fast_folio_allowed(k, vma, pfn, flags)) break;
    if (flags & FOLL_LONGTERM && pfn !== ZERO_PFN && k.pm.isMovable(pfn)) break; // folio_is_longterm_pinnable
    grab(k, pfn, flags);
    pfns[i] = pfn;
  }
  k.stats.gupFastPages += i;
  return i;
}

/** gup_fast_folio_allowed: a long-term writable pin takes anon and shmem folios only (file pages need the VMA). */
function gup_fast_folio_allowed(k: Kernel, vma: Vma, pfn: number, flags: number): boolean {
  if ((flags & (FOLL_PIN | FOLL_LONGTERM | FOLL_WRITE)) !== (FOLL_PIN | FOLL_LONGTERM | FOLL_WRITE)) return true;
  if (pfn !== ZERO_PFN && k.pm.flags[pfn] & PG_ANON) return true;
  return !vmaNeedsDirtyTracking(vma);
}

/**
 * check_vma_flags (mm/gup.c v6.15), the checks modelled: a write needs VM_WRITE, or FOLL_FORCE on a
 * COW (private) mapping — a FOLL_FORCE write to a shared mapping is refused ("anon pages in shared
 * mappings are surprising"); a writable long-term pin of a file mapping that needs dirty tracking
 * is refused (writable_file_mapping_allowed, v6.5+). Departure: a read needs VM_READ even with
 * FOLL_FORCE (the kernel lets it through; the fault handler here checks VM_READ itself), and a
 * FOLL_FORCE write to a private read-only mapping passes here but then fails in the fault (the
 * kernel breaks COW and keeps the PTE read-only).
 */
export function check_vma_flags(vma: Vma, flags: number): number {
  if (flags & FOLL_WRITE) {
    if (flags & FOLL_LONGTERM && vmaNeedsDirtyTracking(vma)) return EFAULT;
    if (!vmaWritable(vma) && (!(flags & FOLL_FORCE) || !vmaIsCow(vma))) return EFAULT;
  }
  if (!vmaReadable(vma)) return EFAULT;
  return 0;
}

/**
 * gup_must_unshare (mm/internal.h v6.8–v6.15): only a read-only FOLL_PIN. An anonymous page must be
 * PageAnonExclusive; any other page — the shared zero page, a page-cache page — must be unshared for
 * a FOLL_LONGTERM pin of a COW (private) mapping, so that the pinned page is the one later CPU writes
 * land in (the write then reuses the exclusive copy instead of copying away from the pin).
 */
export function gup_must_unshare(k: Kernel, vma: Vma, flags: number, pfn: number): boolean {
  if ((flags & (FOLL_WRITE | FOLL_PIN)) !== FOLL_PIN) return false;
  if (pfn === ZERO_PFN || (k.pm.flags[pfn] & PG_ANON) === 0) return (flags & FOLL_LONGTERM) !== 0 && vmaIsCow(vma);
  return !isExclusiveAnon(k, pfn);
}

function grab(k: Kernel, pfn: number, flags: number): void {
  if (pfn === ZERO_PFN) return; // the zero page is not refcounted here
  if (flags & FOLL_PIN) k.pm.pin(pfn);
  else k.pm.get(pfn);
}

function ungrab(k: Kernel, pfn: number, flags: number): void {
  if (pfn === ZERO_PFN) return;
  if (flags & FOLL_PIN) k.pm.unpin(pfn);
  else k.pm.put(pfn);
}

/** unpin_user_pages_dirty_lock / put_page on each; traced (`by` the requester) for pin hold times. */
export function unpin_user_pages(k: Kernel, env: Envelope<Message>, m: UnpinUserPages): void {
  if (k.ctx.tracing) k.ctx.trace(m.pin ? 'unpin_user_pages' : 'put_user_pages', { by: env.from, pfns: m.pfns, make_dirty: m.make_dirty });
  for (const pfn of m.pfns) {
    if (pfn === ZERO_PFN) continue;
    if (k.devicePages.isPciP2pdma(pfn)) {
      // unpin_user_page of a p2pdma page: its reference goes; the last one frees it (p2pdma_page_free).
      // Not dirtied: ZONE_DEVICE pages have no writeback.
      if (k.devicePages.refs(pfn) <= 0) throw new Error(`unpin_user_pages of p2pdma page ${pfn}, which holds no reference`);
      k.devicePages.put(k, pfn);
      continue;
    }
    if (!(pfn >= 0 && pfn < k.pm.nrFrames) || (m.pin ? k.pm.pincount[pfn] <= 0 : k.pm.refcount[pfn] <= k.pm.mapcount[pfn])) {
      throw new Error(`${m.pin ? 'unpin_user_pages' : 'put_page'} of frame ${pfn}, which holds no ${m.pin ? 'pin' : 'gup reference'}`);
    }
    if (m.make_dirty) k.pm.flags[pfn] |= PG_DIRTY; // set_page_dirty_lock
    if (m.pin) k.pm.unpin(pfn);
    else k.pm.put(pfn);
  }
}
