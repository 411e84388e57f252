// Migration to and from device-private memory, and device-exclusive entries
// (mm/migrate_device.c migrate_vma_setup / migrate_vma_pages / migrate_vma_finalize,
// include/linux/migrate.h; mm/memory.c do_swap_page → pgmap->ops->migrate_to_ram and
// remove_device_exclusive_entry; mm/rmap.c make_device_exclusive). Followed: v6.6–v6.15, with
// Documentation/mm/hmm.rst.
//
// migrate_vma_setup (collect + unmap):
//   the range is locked for the walk (the PTLs of migrate_vma_collect_pmd) under MMU_NOTIFY_MIGRATE
//   over the range with owner = pgmap_owner (the caller's own mirror may skip the work but still
//   sets its seq); after it only the pages left under migration entries stay locked until
//   finalize (their folio locks): a fault on one waits (migration_entry_wait), a fault on a hole
//   or on the zero page proceeds. Per page:
//     pte_none in an anonymous VMA → offered with no source (MIGRATE_PFN_MIGRATE), whatever the
//       flags; the zero page likewise, with SELECT_SYSTEM only
//     a present anonymous page, SELECT_SYSTEM, not pinned → migration entry,
//       VALID|MIGRATE(|WRITE), its content handed to the driver to copy; a page shared after fork
//       also has its other mappings unmapped (try_to_migrate: MMU_NOTIFY_CLEAR each) and all of
//       them take the device page in finalize (remove_migration_ptes)
//     a device-private page of pgmap_owner, SELECT_DEVICE_PRIVATE → VALID|MIGRATE(|WRITE); the driver
//       supplies the content in finalize (it lives in device memory)
//     anything else (a locked page, pinned pages: migrate_vma_check_page) → 0
// migrate_vma_pages + migrate_vma_finalize (one message here): pages with a destination take it
//   (a device-private entry, or a new RAM page with the driver's content); the others get their
//   PTE back; the locks are released. A hole or zero page offered with no source gets its device
//   page only if its PTE is still none or the zero page (migrate_vma_insert_page): a CPU fault
//   since setup wins, and the page is reported not migrated.
//
// A CPU fault on a device-private entry (do_swap_page → migrate_to_ram): MMU_NOTIFY_MIGRATE on the
// page with the owner's pgmap owner (as the owner's migrate_to_ram → migrate_vma_setup does), then
// `migrate_to_ram` to the owner, which copies the page out and forgets it; mm installs a RAM page
// in every PTE that held the device page (after fork: try_to_migrate's rmap walk, each of those
// mappings told by its own MMU_NOTIFY_MIGRATE, owner NULL).
// A driver that cannot copy fails the fault (VM_FAULT_SIGBUS → -EFAULT).
//
// make_device_exclusive: fault each page in for write, MMU_NOTIFY_EXCLUSIVE with owner = the
// caller, PTE → device-exclusive entry. A CPU fault on it restores the PTE after
// MMU_NOTIFY_EXCLUSIVE with owner NULL (so the owner's mirror drops its entry).
import type { Envelope, Message } from '@svmsim/runtime';
import { FAULT_FLAG_WRITE, deviceFaultHooks, handle_mm_fault, type FaultDone } from './fault.js';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start, type Invalidation } from './invalidate.js';
import type { Kernel } from './kernel.js';
import { mmap_lock_contract } from './mmap-lock.js';
import { PTE_DEVICE_EXCLUSIVE, PTE_DEVICE_PRIVATE, PTE_KIND_MASK, PTE_MIGRATION, PTE_MIGRATION_DEVICE, PTE_NONE, PTE_PRESENT, PTE_WAS_WRITE, PTE_WRITE } from './page-table.js';
import { PG_ANON, PG_LOCKED, assert } from './physmem.js';
import type { Process } from './process.js';
import {
  EFAULT, EINVAL, ENOMEM, ESRCH, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_VALID, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM, PAGE_SIZE, ZERO_PFN,
  type MakeDeviceExclusive, type MigrateToRamResult, type MigrateVmaFinalize, type MigrateVmaSetup,
} from './protocol.js';
import { vmaIsAnon, vmaWritable } from './vma.js';
import { processTask } from './task.js';

interface Migration {
  id: number;
  p: Process;
  start: number;
  npages: number;
  /** The runs of pages under migration entries, each a range lock until finalize (the folio locks). */
  locks: LockedRun[];
  /** Per page: MIGRATE_PFN_* of the source, and what the PTE was (to restore or to know the source). */
  srcFlags: Uint8Array;
  /** Collected, but migrate_vma_pages will clear MIGRATE_PFN_MIGRATE: a page-cache page, or a new page outside an anonymous VMA. */
  refused: Uint8Array;
  pteFlags: Uint16Array;
  pteValue: Float64Array;
  owner: string;
  /**
   * The other mappings of collected pages shared after fork, each a migration entry under a
   * one-page lock of its process until finalize (try_to_migrate, migrate_device_unmap).
   */
  others: OtherMapping[];
  /** The driver that set it up: if it dies, the migration is undone (its range must not stay locked). */
  driver: string;
}

/** Pages [start, end) of the migration's process, under lock `id`. */
interface LockedRun {
  start: number;
  end: number;
  id: number;
}

/** A mapping of a collected page in another process (or at another address): what try_to_migrate unmapped. */
interface OtherMapping {
  /** The page's index in the migration. */
  i: number;
  p: Process;
  vpn: number;
  lock: number;
  /** The PTE before its migration entry. */
  flags: number;
}

/** Migrations between setup and finalize, by handle (kept on the kernel, like every mm state). */
const migrationsOf = (k: Kernel) => k.migrations as Map<number, Migration>;

export function migrate_vma_setup(k: Kernel, env: Envelope<Message>, m: MigrateVmaSetup): void {
  const p = k.proc(m.pid);
  const npages = (m.end - m.start) / PAGE_SIZE;
  const fail = (ret: number) =>
    k.ctx.reply(env, { type: 'migrate_vma_setup_result', ret, migration: 0, src_flags: new Uint8Array(0), src_data: new Float64Array(0), cpages: 0 });
  if (!p) return fail(ESRCH);
  if (m.start % PAGE_SIZE !== 0 || m.end % PAGE_SIZE !== 0 || npages <= 0 || !Number.isInteger(npages)) return fail(EINVAL);
  // migrate_vma_setup's kernel-doc: "the caller must hold mmap_read_lock"; its walk asserts it.
  const unlocked = mmap_lock_contract(k, p, env.from, 'migrate_vma_setup');
  if (unlocked !== null) {
    return k.ctx.reply(env, { type: 'migrate_vma_setup_result', ret: EINVAL, migration: 0, src_flags: new Uint8Array(0), src_data: new Float64Array(0), cpages: 0, error: unlocked });
  }
  const start = m.start / PAGE_SIZE;
  if (!p.vmas.covers(start, start + npages)) return fail(EINVAL);
  p.locks.lock(start, start + npages, 'migrate_vma', (lock) => {
    const range = { start: m.start, end: m.end, event: 'MMU_NOTIFY_MIGRATE' as const, blockable: true, owner: m.pgmap_owner, task: processTask(p), caller: 'migrate_vma_collect' };
    mmu_notifier_invalidate_range_start(k, p, range, (_ret, inv) => {
      const mig: Migration = {
        id: k.nextMigrationId++, p, start, npages, locks: [], owner: m.pgmap_owner, driver: env.from, others: [],
        srcFlags: new Uint8Array(npages), refused: new Uint8Array(npages), pteFlags: new Uint16Array(npages), pteValue: new Float64Array(npages),
      };
      const data = new Float64Array(npages);
      const shared: number[] = [];
      let cpages = 0;
      for (let i = 0; i < npages; i++) {
        const vpn = start + i;
        const vma = p.vmas.find(vpn);
        const f = p.pt.flags(vpn);
        const v = p.pt.value(vpn);
        mig.pteFlags[i] = f;
        mig.pteValue[i] = v;
        if (!vma) continue;
        const anonVma = vmaIsAnon(vma);
        const kind = f & PTE_KIND_MASK;
        const writable = vmaWritable(vma);
        if ((kind === PTE_NONE && anonVma) || (kind === PTE_PRESENT && v === ZERO_PFN)) {
          // migrate_vma_collect_pmd (mm/migrate_device.c v6.15): pte_none in an anonymous VMA is
          // offered whatever the flags; the zero page only with MIGRATE_VMA_SELECT_SYSTEM, in any
          // VMA (migrate_vma_insert_page then backs off outside anonymous ones).
          if (kind === PTE_PRESENT && !(m.flags & MIGRATE_VMA_SELECT_SYSTEM)) continue;
          mig.srcFlags[i] = MIGRATE_PFN_MIGRATE | (writable ? MIGRATE_PFN_WRITE : 0);
          if (!anonVma) mig.refused[i] = 1;
        } else if (kind === PTE_PRESENT && m.flags & MIGRATE_VMA_SELECT_SYSTEM) {
          const pm = k.pm;
          // Anonymous pages (also the COW copies in a private file mapping), and page-cache pages:
          // both are collected and unmapped; migrate_vma_pages then refuses a page with a mapping
          // ("For now only support anonymous memory migrating to device private").
          // migrate_vma_collect_pmd (v6.15): folio_trylock, else skipped; an anon-exclusive page
          // that may be DMA-pinned fails folio_try_share_anon_rmap_pte. A page mapped more than
          // once (shared after fork) is collected too: try_to_migrate unmaps its other mappings
          // (tryToMigrateShared below) and migrate_vma_check_page then compares refcount with
          // mapcount. Mapped once, that check gives the same answer now.
          if (pm.flags[v] & PG_LOCKED) continue;
          if (pm.flags[v] & PG_ANON && pm.anonExclusive[v] && pm.maybeDmaPinned(v)) continue;
          if (pm.mapcount[v] === 1 && !migrateVmaCheckPage(k, v)) continue;
          if (pm.mapcount[v] > 1) shared.push(i);
          if (!(pm.flags[v] & PG_ANON)) mig.refused[i] = 1;
          mig.srcFlags[i] = MIGRATE_PFN_VALID | MIGRATE_PFN_MIGRATE | (f & PTE_WRITE ? MIGRATE_PFN_WRITE : 0);
          data[i] = pm.content[v];
          p.pt.setFlags(vpn, PTE_MIGRATION | (f & PTE_WRITE ? PTE_WAS_WRITE : 0));
        } else if (kind === PTE_DEVICE_PRIVATE && m.flags & MIGRATE_VMA_SELECT_DEVICE_PRIVATE && k.devicePages.owner(v) === m.pgmap_owner) {
          mig.srcFlags[i] = MIGRATE_PFN_VALID | MIGRATE_PFN_MIGRATE | (f & PTE_WRITE ? MIGRATE_PFN_WRITE : 0);
          // A migration entry for the device page too: a device faulting it waits for the move.
          p.pt.setFlags(vpn, PTE_MIGRATION | PTE_MIGRATION_DEVICE | (f & PTE_WRITE ? PTE_WAS_WRITE : 0));
        } else continue;
        cpages++;
      }
      mmu_notifier_invalidate_range_end(k, inv);
      holdMigrationEntries(k, mig, lock);
      migrationsOf(k).set(mig.id, mig);
      tryToMigrateShared(k, mig, shared, (dropped) => {
        cpages -= dropped;
        k.ctx.trace('migrate_vma_setup', { pid: p.pid, start: m.start, end: m.end, flags: m.flags, owner: m.pgmap_owner, cpages, migration: mig.id });
        k.ctx.reply(env, { type: 'migrate_vma_setup_result', ret: 0, migration: mig.id, src_flags: mig.srcFlags, src_data: data, cpages });
      });
    });
  });
}

/**
 * The end of migrate_vma_collect (mm/migrate_device.c, torvalds/linux 022a12de, after v6.15; the
 * same in v6.15): the walk's PTLs are dropped, and what stays locked is the folio of each page that
 * got a migration entry. Here: the walk's lock over the whole range becomes one lock per run of
 * migration entries; holes, the zero page and the pages not collected are free again.
 */
function holdMigrationEntries(k: Kernel, mig: Migration, walkLock: number): void {
  const { p } = mig;
  const runs: [number, number][] = [];
  for (let i = 0; i < mig.npages; i++) {
    const vpn = mig.start + i;
    if ((p.pt.flags(vpn) & PTE_KIND_MASK) !== PTE_MIGRATION) continue;
    const last = runs.at(-1);
    if (last !== undefined && last[1] === vpn) last[1] = vpn + 1;
    else runs.push([vpn, vpn + 1]);
  }
  const ids = p.locks.narrow(walkLock, runs, 'migrate_vma');
  mig.locks = runs.map(([start, end], j) => ({ start, end, id: ids[j] }));
}

/** A page left the migration before finalize (its PTE restored): its lock goes, the rest of its run stays. */
function releaseMigrationPage(mig: Migration, vpn: number): void {
  const j = mig.locks.findIndex((r) => vpn >= r.start && vpn < r.end);
  if (j < 0) return;
  const r = mig.locks[j];
  const parts = ([[r.start, vpn], [vpn + 1, r.end]] as [number, number][]).filter(([a, b]) => a < b);
  const ids = mig.p.locks.narrow(r.id, parts, 'migrate_vma');
  mig.locks.splice(j, 1, ...parts.map(([start, end], n) => ({ start, end, id: ids[n] })));
}

function releaseMigrationLocks(mig: Migration): void {
  for (const r of mig.locks) mig.p.locks.unlock(r.id);
  mig.locks = [];
}

/**
 * migrate_vma_check_page (mm/migrate_device.c v6.15): no reference beyond the mappings (and the
 * page cache's own), so no gup reference or pin. The kernel's `refcount - extra > mapcount` with
 * its isolation reference as the extra; here migration entries keep their mapping reference.
 */
function migrateVmaCheckPage(k: Kernel, pfn: number): boolean {
  return k.pm.extraRefs(pfn) <= (k.pm.flags[pfn] & PG_ANON ? 0 : 1) && !k.pm.maybeDmaPinned(pfn);
}

/**
 * migrate_device_unmap → try_to_migrate (mm/migrate_device.c, mm/rmap.c v6.15) for the collected
 * pages still mapped elsewhere (shared after fork): each other mapping is told by MMU_NOTIFY_CLEAR
 * (try_to_migrate_one) and becomes a migration entry. A page still mapped after it (a mapping busy:
 * its lock not had at once, where the kernel would wait on the PTL) or failing
 * migrate_vma_check_page gets every PTE back and leaves the migration: done(pages dropped).
 */
function tryToMigrateShared(k: Kernel, mig: Migration, shared: number[], done: (dropped: number) => void): void {
  const { p } = mig;
  const pm = k.pm;
  let dropped = 0;
  const page = (j: number): void => {
    if (j === shared.length) return done(dropped);
    const i = shared[j];
    const vpn = mig.start + i;
    const pfn = p.pt.value(vpn);
    const mine: OtherMapping[] = [];
    for (const r of pm.mappings(pfn)) {
      if (r.pid === p.pid && r.vpn === vpn) continue;
      const q = k.procs.get(r.pid)!;
      const lock = q.locks.tryLock(r.vpn, r.vpn + 1, 'try_to_migrate');
      if (lock < 0) {
        mine.forEach((o) => o.p.locks.unlock(o.lock));
        return drop(i, []);
      }
      mine.push({ i, p: q, vpn: r.vpn, lock, flags: q.pt.flags(r.vpn) });
    }
    const unmapOne = (n: number): void => {
      if (n === mine.length) {
        const unmapped = mine.every((o) => (o.p.pt.flags(o.vpn) & PTE_KIND_MASK) === PTE_MIGRATION);
        if (!unmapped || !migrateVmaCheckPage(k, pfn)) return drop(i, mine);
        mig.others.push(...mine);
        return page(j + 1);
      }
      const o = mine[n];
      const range = { start: o.vpn * PAGE_SIZE, end: (o.vpn + 1) * PAGE_SIZE, event: 'MMU_NOTIFY_CLEAR' as const, blockable: true, owner: null, task: processTask(p), caller: 'try_to_migrate_one' };
      mmu_notifier_invalidate_range_start(k, o.p, range, (_r, inv) => {
        const f = o.p.pt.flags(o.vpn);
        if ((f & PTE_KIND_MASK) === PTE_PRESENT && o.p.pt.value(o.vpn) === pfn) {
          o.flags = f;
          o.p.pt.setFlags(o.vpn, PTE_MIGRATION | (f & PTE_WRITE ? PTE_WAS_WRITE : 0));
        }
        mmu_notifier_invalidate_range_end(k, inv);
        unmapOne(n + 1);
      });
    };
    unmapOne(0);
  };
  // The restore loop of migrate_device_unmap: remove_migration_ptes, src_pfns[i] = 0.
  const drop = (i: number, mine: OtherMapping[]): void => {
    const vpn = mig.start + i;
    if ((p.pt.flags(vpn) & PTE_KIND_MASK) === PTE_MIGRATION) p.pt.setFlags(vpn, mig.pteFlags[i]);
    releaseMigrationPage(mig, vpn);
    for (const o of mine) {
      if ((o.p.pt.flags(o.vpn) & PTE_KIND_MASK) === PTE_MIGRATION) o.p.pt.setFlags(o.vpn, o.flags);
      o.p.locks.unlock(o.lock);
    }
    mig.srcFlags[i] = 0;
    dropped++;
    page(shared.indexOf(i) + 1);
  };
  page(0);
}

export function migrate_vma_finalize(k: Kernel, env: Envelope<Message>, m: MigrateVmaFinalize): void {
  const mig = migrationsOf(k).get(m.migration);
  if (!mig || m.dst_pfns.length !== mig.npages || (m.dst_data !== undefined && m.dst_data.length !== mig.npages)) {
    return k.ctx.reply(env, { type: 'migrate_vma_finalize_result', ret: EINVAL, migrated: 0 });
  }
  migrationsOf(k).delete(mig.id);
  // __migrate_device_pages: a page with no source (pte_none or the zero page had no migration
  // entry) gets its new PTE under an invalidation of its own (MMU_NOTIFY_MIGRATE, owner =
  // pgmap_owner), from the first such page to the end of the range, since the CPU or a mirror may
  // have mapped something there since setup.
  const first = m.dst_pfns.findIndex((d, i) => d >= 0 && (mig.srcFlags[i] & MIGRATE_PFN_MIGRATE) !== 0 && !(mig.srcFlags[i] & MIGRATE_PFN_VALID));
  if (first < 0) return finalizePages(k, env, m, mig);
  const range = { start: (mig.start + first) * PAGE_SIZE, end: (mig.start + mig.npages) * PAGE_SIZE, event: 'MMU_NOTIFY_MIGRATE' as const, blockable: true, owner: mig.owner, task: processTask(mig.p), caller: 'migrate_vma_pages' };
  mmu_notifier_invalidate_range_start(k, mig.p, range, (_r, inv) => {
    finalizePages(k, env, m, mig);
    mmu_notifier_invalidate_range_end(k, inv);
  });
}

function finalizePages(k: Kernel, env: Envelope<Message>, m: MigrateVmaFinalize, mig: Migration): void {
  const { p, start } = mig;
  const pm = k.pm;
  let migrated = 0;
  // args.src after migrate_vma_pages, for the driver: a copy (the setup's reply holds the original).
  const after = Uint8Array.from(mig.srcFlags);
  for (let i = 0; i < mig.npages; i++) {
    const vpn = start + i;
    const src = mig.srcFlags[i];
    const oldF = mig.pteFlags[i];
    const oldV = mig.pteValue[i];
    const oldKind = oldF & PTE_KIND_MASK;
    const dst = m.dst_pfns[i];
    const wasWrite = (src & MIGRATE_PFN_WRITE) !== 0;
    const others = mig.others.filter((o) => o.i === i);
    const restore = () => {
      if ((p.pt.flags(vpn) & PTE_KIND_MASK) === PTE_MIGRATION) p.pt.setFlags(vpn, oldF);
      for (const o of others) if ((o.p.pt.flags(o.vpn) & PTE_KIND_MASK) === PTE_MIGRATION) o.p.pt.setFlags(o.vpn, o.flags);
    };
    if (!(src & MIGRATE_PFN_MIGRATE) || dst < 0 || mig.refused[i]) {
      after[i] &= ~MIGRATE_PFN_MIGRATE;
      restore();
      continue;
    }
    if (oldKind === PTE_DEVICE_PRIVATE) {
      // Device → system: a new RAM page with the driver's copy.
      const pfn = pm.alloc(true);
      if (pfn < 0 || m.dst_data === undefined) {
        if (pfn >= 0) pm.put(pfn);
        restore();
        continue;
      }
      pm.flags[pfn] |= PG_ANON;
      pm.anonExclusive[pfn] = 1; // a new page for this one PTE
      pm.content[pfn] = m.dst_data[i];
      p.pt.setFlags(vpn, oldF); // the device-private entry again, so that zapPte drops its page
      k.zapPte(p, vpn);
      k.mapPresent(p, vpn, pfn, wasWrite, wasWrite);
      pm.put(pfn);
    } else {
      // System (or nothing) → device: the PTE becomes a device-private entry.
      if (k.devicePages.owner(dst) !== mig.owner) {
        after[i] &= ~MIGRATE_PFN_MIGRATE;
        restore();
        continue;
      }
      if (!(src & MIGRATE_PFN_VALID)) {
        // No source: a hole or the zero page, not locked since setup.
        if (!migrateVmaInsertable(k, p, vpn)) {
          after[i] &= ~MIGRATE_PFN_MIGRATE;
          continue;
        }
        if (p.pt.kind(vpn) === PTE_PRESENT) k.zapPte(p, vpn);
      } else if (oldKind === PTE_PRESENT) {
        p.pt.setFlags(vpn, oldF); // back to present so zapPte can drop the page normally
        k.zapPte(p, vpn);
      } else {
        after[i] &= ~MIGRATE_PFN_MIGRATE;
        continue;
      }
      k.devicePages.get(dst);
      p.pt.set(vpn, PTE_DEVICE_PRIVATE | (wasWrite ? PTE_WRITE : 0), dst);
      // remove_migration_ptes: every other mapping try_to_migrate unmapped takes the device page
      // too, writable only if its migration entry was (after fork: read-only, COW from here).
      for (const o of others) {
        o.p.pt.setFlags(o.vpn, o.flags);
        k.zapPte(o.p, o.vpn);
        k.devicePages.get(dst);
        o.p.pt.set(o.vpn, PTE_DEVICE_PRIVATE | (o.flags & PTE_WRITE ? PTE_WRITE : 0), dst);
      }
    }
    void oldV;
    migrated++;
    k.stats.migrations++;
  }
  k.ctx.trace('migrate_vma_finalize', { pid: p.pid, migration: mig.id, migrated });
  // Reply, then unlock: an operation waiting for the range (a munmap, a MADV_DONTNEED) starts its
  // invalidation only after this reply is on its way, so the driver maps the new device pages
  // before it is told to drop them, never after.
  k.ctx.reply(env, { type: 'migrate_vma_finalize_result', ret: 0, migrated, src_flags: after });
  for (const o of mig.others) o.p.locks.unlock(o.lock);
  releaseMigrationLocks(mig);
}

/**
 * migrate_vma_insert_page's checks (mm/migrate_device.c, torvalds/linux 022a12de; v6.15 the same):
 * only an anonymous VMA is populated, and only where the PTE is still none or the zero page; any
 * other PTE means a fault got there after setup, and the page backs off (MIGRATE_PFN_MIGRATE
 * cleared). A page whose lock is held has a fault (or another PTE change) under way, which takes
 * the PTL before this would: it backs off too.
 */
function migrateVmaInsertable(k: Kernel, p: Process, vpn: number): boolean {
  const vma = p.vmas.find(vpn);
  if (!vma || !vmaIsAnon(vma) || p.locks.isLocked(vpn)) return false;
  const kind = p.pt.kind(vpn);
  return kind === PTE_NONE || (kind === PTE_PRESENT && p.pt.value(vpn) === ZERO_PFN);
}

/**
 * The driver of a migration between setup and finalize died: put every PTE back as it was and
 * release the range, as if it had finalized with no destination.
 */
export function abortMigrationsOf(k: Kernel, driver: string): void {
  for (const mig of [...migrationsOf(k).values()]) {
    if (mig.driver !== driver) continue;
    migrationsOf(k).delete(mig.id);
    for (let i = 0; i < mig.npages; i++) {
      const vpn = mig.start + i;
      if ((mig.p.pt.flags(vpn) & PTE_KIND_MASK) === PTE_MIGRATION) mig.p.pt.setFlags(vpn, mig.pteFlags[i]);
    }
    for (const o of mig.others) {
      if ((o.p.pt.flags(o.vpn) & PTE_KIND_MASK) === PTE_MIGRATION) o.p.pt.setFlags(o.vpn, o.flags);
      o.p.locks.unlock(o.lock);
    }
    releaseMigrationLocks(mig);
    k.ctx.trace('migrate_vma_abort', { pid: mig.p.pid, migration: mig.id, driver });
  }
}

/**
 * The other PTEs holding device-private entry `devPfn` (a page shared by fork): the rmap walk of
 * try_to_migrate. Found by a scan of the VMAs of every process, only when the page has more than
 * one reference (refcounts are per mapping). Each is trylocked (the PTL); one that is busy makes
 * the migration take the faulting PTE alone, as it did before.
 */
function otherDevicePrivateMappings(k: Kernel, p: Process, vpn: number, devPfn: number): { p: Process; vpn: number; lock: number }[] | null {
  const others: { p: Process; vpn: number; lock: number }[] = [];
  if (k.devicePages.refs(devPfn) <= 1) return others;
  for (const q of k.procs.values()) {
    if (!q.alive) continue;
    for (const vma of q.vmas.list) {
      q.pt.forEach(vma.start, vma.end, (v, f, val) => {
        if ((f & PTE_KIND_MASK) === PTE_DEVICE_PRIVATE && val === devPfn && !(q === p && v === vpn)) others.push({ p: q, vpn: v, lock: -1 });
      });
    }
  }
  for (const o of others) {
    o.lock = o.p.locks.tryLock(o.vpn, o.vpn + 1, 'try_to_migrate');
    if (o.lock < 0) {
      for (const u of others) if (u.lock >= 0) u.p.locks.unlock(u.lock);
      return null;
    }
  }
  return others;
}

/**
 * do_swap_page on a device-private entry → pgmap->ops->migrate_to_ram: the owner copies the page
 * out (its migrate_vma_setup on the faulting PTE), and try_to_migrate / remove_migration_ptes
 * (mm/migrate_device.c, mm/rmap.c v6.15) move every other mapping of the page with it: all of
 * them end up on the one new RAM page, each told by MMU_NOTIFY_MIGRATE first.
 */
function migrateToRam(k: Kernel, p: Process, vpn: number, done: FaultDone): void {
  const devPfn = p.pt.value(vpn);
  const owner = k.devicePages.owner(devPfn);
  if (owner === undefined) return done(EFAULT);
  const others = otherDevicePrivateMappings(k, p, vpn, devPfn) ?? [];
  const unlockOthers = () => others.forEach((o) => o.p.locks.unlock(o.lock));
  const all = [{ p, vpn }, ...others];
  const writes = all.map((m) => (m.p.pt.flags(m.vpn) & PTE_WRITE) !== 0);
  // One MMU_NOTIFY_MIGRATE per mapping: the faulting one with the owner (migrate_vma_collect),
  // the others with none (try_to_migrate_one: their mirrors must drop the device page).
  const invs: Invalidation[] = [];
  const start = (i: number): void => {
    if (i === all.length) return copy();
    const m = all[i];
    const range = { start: m.vpn * PAGE_SIZE, end: (m.vpn + 1) * PAGE_SIZE, event: 'MMU_NOTIFY_MIGRATE' as const, blockable: true, owner: i === 0 ? owner : null, task: processTask(p), caller: i === 0 ? 'migrate_vma_collect' : 'try_to_migrate_one' };
    mmu_notifier_invalidate_range_start(k, m.p, range, (_r, inv) => {
      invs.push(inv);
      start(i + 1);
    });
  };
  const end = (ret: number) => {
    for (const inv of invs) mmu_notifier_invalidate_range_end(k, inv);
    unlockOthers();
    done(ret);
  };
  const copy = () => {
    k.call(owner, { type: 'migrate_to_ram', pid: p.pid, addr: vpn * PAGE_SIZE, dev_pfn: devPfn }, (reply) => {
      const r = reply as MigrateToRamResult;
      if (reply.type !== 'migrate_to_ram_result' || r.ret < 0) return end(EFAULT); // VM_FAULT_SIGBUS
      const pfn = k.pm.alloc(true);
      if (pfn < 0) return end(ENOMEM);
      k.pm.flags[pfn] |= PG_ANON;
      k.pm.content[pfn] = r.value;
      // Every mapping is locked, so each still holds the entry; assert it rather than hope.
      for (const m of all) assert((m.p.pt.flags(m.vpn) & PTE_KIND_MASK) === PTE_DEVICE_PRIVATE && m.p.pt.value(m.vpn) === devPfn, `migrate_to_ram: pid ${m.p.pid} vpn ${m.vpn} lost its device-private entry under its lock`);
      // Exclusive (and writable, if it was) only when one PTE takes it; shared after fork the
      // entries were read-only, and stay so: COW from here.
      const alone = all.length === 1;
      all.forEach((m, i) => {
        k.zapPte(m.p, m.vpn);
        k.mapPresent(m.p, m.vpn, pfn, alone && writes[i], alone && writes[i]);
      });
      k.pm.anonExclusive[pfn] = alone ? 1 : 0;
      k.pm.put(pfn);
      k.stats.migrations++;
      end(0);
    });
  };
  start(0);
}

export function make_device_exclusive(k: Kernel, env: Envelope<Message>, m: MakeDeviceExclusive): void {
  const p = k.proc(m.pid);
  const npages = (m.end - m.start) / PAGE_SIZE;
  const pfns = new Float64Array(Math.max(0, npages | 0)).fill(-1);
  const reply = (ret: number) => k.ctx.reply(env, { type: 'make_device_exclusive_result', ret, pfns });
  if (!p) return reply(ESRCH);
  if (m.start % PAGE_SIZE !== 0 || m.end % PAGE_SIZE !== 0 || npages <= 0 || !Number.isInteger(npages)) return reply(EINVAL);
  const start = m.start / PAGE_SIZE;
  let faults = 0;
  // First every page is faulted in for write (make_device_exclusive faults with FOLL_WRITE)...
  const faultIn = (i: number): void => {
    for (; i < npages; i++) {
      const vpn = start + i;
      const f = p.pt.flags(vpn);
      if ((f & PTE_KIND_MASK) === PTE_PRESENT && f & PTE_WRITE && p.pt.value(vpn) !== ZERO_PFN) continue;
      if (++faults > 16 * npages) return reply(EFAULT);
      const at = i;
      handle_mm_fault(k, p, vpn, FAULT_FLAG_WRITE, (ret) => (ret < 0 ? reply(ret) : k.bounce(() => faultIn(at))));
      return;
    }
    convert();
  };
  // ...then, holding the range until the reply is sent (so that a later invalidation of these pages
  // reaches the driver after the reply, never before), each present writable page becomes a
  // device-exclusive entry after MMU_NOTIFY_EXCLUSIVE with owner = the caller.
  const convert = () =>
    p.locks.lock(start, start + npages, 'make_device_exclusive', (lock) => {
      const range = { start: m.start, end: m.end, event: 'MMU_NOTIFY_EXCLUSIVE' as const, blockable: true, owner: m.owner, task: processTask(p), caller: 'make_device_exclusive' };
      mmu_notifier_invalidate_range_start(k, p, range, (_r, inv) => {
        let done = 0;
        for (let i = 0; i < npages; i++) {
          const vpn = start + i;
          const g = p.pt.flags(vpn);
          // folio_make_device_exclusive: anonymous pages only.
          const v = p.pt.value(vpn);
          if ((g & PTE_KIND_MASK) === PTE_PRESENT && g & PTE_WRITE && v !== ZERO_PFN && k.pm.flags[v] & PG_ANON) {
            p.pt.setFlags(vpn, PTE_DEVICE_EXCLUSIVE | PTE_WAS_WRITE | (g & ~PTE_KIND_MASK & ~PTE_WRITE));
            pfns[i] = p.pt.value(vpn);
            done++;
          }
        }
        mmu_notifier_invalidate_range_end(k, inv);
        reply(done > 0 ? done : EFAULT);
        p.locks.unlock(lock);
      });
    });
  faultIn(0);
}

/** remove_device_exclusive_entry: tell the owner (EXCLUSIVE, owner NULL), restore the PTE. */
function restoreExclusive(k: Kernel, p: Process, vpn: number, done: FaultDone): void {
  const range = { start: vpn * PAGE_SIZE, end: (vpn + 1) * PAGE_SIZE, event: 'MMU_NOTIFY_EXCLUSIVE' as const, blockable: true, owner: null, task: processTask(p), caller: 'remove_device_exclusive_entry' };
  mmu_notifier_invalidate_range_start(k, p, range, (_r, inv) => {
    const f = p.pt.flags(vpn);
    if ((f & PTE_KIND_MASK) === PTE_DEVICE_EXCLUSIVE) {
      p.pt.setFlags(vpn, PTE_PRESENT | (f & PTE_WAS_WRITE ? PTE_WRITE : 0) | (f & ~PTE_KIND_MASK & ~PTE_WAS_WRITE));
    }
    mmu_notifier_invalidate_range_end(k, inv);
    done(0);
  });
}

export function installDeviceFaults(): void {
  deviceFaultHooks.migrateToRam = migrateToRam;
  deviceFaultHooks.restoreExclusive = restoreExclusive;
}
