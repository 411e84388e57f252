// VRAM under svm-fault: the GPU's device-private pages and the migrations into and out of them, as
// amdgpu with XNACK on does them (drivers/gpu/drm/amd/amdkfd/kfd_migrate.c, v6.6–v6.8; research/
// drivers.md §2c) and nouveau (nouveau_dmem.c, §3); lib/test_hmm.c's devmem does the same for a test
// device (kernel-mm/dmirror.ts).
//
//   register      kgd2kfd_init_zone_device: `memremap_pages` of `vramPages` device-private pages at
//                 first use.
//   to VRAM       svm_migrate_vma_to_vram, under prange->migrate_mutex:
//                 migrate_vma_setup(MIGRATE_VMA_SELECT_SYSTEM, pgmap_owner = this GPU), copy
//                 (`migratePerPageNs` per page, the SDMA copy), migrate_vma_pages +
//                 migrate_vma_finalize (one message here). No free VRAM page → first evict the
//                 least-recently-migrated range.
//   evict         svm_migrate_vram_to_ram: migrate_vma_setup(MIGRATE_VMA_SELECT_DEVICE_PRIVATE);
//                 under the notifier lock zap each page's GPUVM entry and copy it out; TLB flush;
//                 migrate_vma_finalize with the content. mm sends device_page_free for each page
//                 before the finalize reply.
//   GPU access    an access through a device-pfn entry never reaches mm (mm has no frame for it): the
//                 GPU reads or writes its own copy of the page, and a write traces a `dev_write`
//                 oracle event, as dmirror does.
//   migrate_to_ram dev_pagemap_ops.migrate_to_ram (svm_migrate_to_ram / nouveau_dmem_migrate_to_ram):
//                 mm sends `migrate_to_ram` after an MMU_NOTIFY_MIGRATE with our owner; under the
//                 lock zap the GPUVM entry of the page, flush, and answer with its content.
//   page_free     dev_pagemap_ops.page_free (svm_migrate_page_free): `device_page_free` returns the
//                 page to the free list.
//   devmemRead    not kernel: the end of a run resolving mm's dump (gpu_devmem_read) reads the
//                 content of VRAM pages.
//
// migrate_mutex serializes the GPU's own migrations (to VRAM, evictions) and the BO teardown
// (policy-svm-fault.ts freeBo): a migration holds it from migrate_vma_setup to finalize, so the
// teardown never finds the BO's pages under migration entries. It is never held with the notifier
// lock across a message to mm. Once a BO is closing, migrations queued for it do nothing.
//
// Departures: hotness (GPU faults + accesses of a page while in system memory, `hotThreshold`)
// decides migration, where nouveau migrates only on request and kfd by range attributes; heat does
// not decay. Pages made hot by accesses migrate in the background, at most
// BACKGROUND_MIGRATIONS_MAX queued on migrate_mutex at once (more are skipped: migrationsSkipped);
// a skipped page, or one hot while a migration of it was pending, tries again at its next access,
// and one migrate_vma_setup did not select (a file or KSM page, a pinned one) does not.
import {
  EFAULT, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_VALID, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM, PAGE_SIZE,
  type DevicePageFree, type MemremapPagesResult, type MigrateToRam, type MigrateToRamResult, type MigrateVmaFinalizeResult,
  type MigrateVmaSetupResult, type Pid,
} from '@svmsim/kernel-mm';
import { Mutex, type Envelope, type Message } from '@svmsim/runtime';
import { boFirstVpn, type Bo } from './bo.js';
import type { GpuPte } from './gpuvm.js';
import type { Job } from './job.js';
import { retOf, withMmapReadLock, type GpuHost } from './policy.js';

/** Background migrations (pages hot through accesses) queued on migrate_mutex at most; more are skipped. */
const BACKGROUND_MIGRATIONS_MAX = 32;
/** Simulation bound: evictions tried to make room for one migration. */
const EVICTIONS_PER_MIGRATION_MAX = 64;

/** A VRAM page in use: its content (the device's copy) and the virtual page it backs. */
interface VramPage {
  value: number;
  pid: Pid;
  vpn: number;
}

/** A range migrated to VRAM in one migrate_vma, kept in migration order for eviction. */
interface VramRange {
  pid: Pid;
  startVpn: number;
  endVpn: number;
}

export const pageKey = (pid: Pid, vpn: number): number => pid * 2 ** 40 + vpn;

export interface SvmVramOptions {
  /** Device-private pages registered with memremap_pages at first use; 0 disables VRAM. */
  vramPages: number;
  /** GPU faults + accesses of a page after which it is migrated to VRAM. */
  hotThreshold: number;
  /** Pages per fault window (the aligned window a background migration moves). */
  window: number;
  /** BOs being torn down (policy-svm-fault.ts freeBo): migrations queued for them do nothing. */
  closing: WeakSet<Bo>;
  /**
   * kfd: a CPU fault's migrate_to_ram takes migrate_mutex (kfd_migrate.c svm_migrate_to_ram:
   * mutex_lock(&prange->migrate_mutex) around svm_migrate_vram_to_ram; torvalds/linux at 8f8cc3fb),
   * so CPU threads faulting device pages back queue behind each other and behind GPU migrations.
   * nouveau_dmem_migrate_to_ram takes no such lock.
   */
  migrateToRamUnderMutex?: boolean;
  /**
   * uvm: evict whole chunks of this many pages (512: UVM's 2 MiB root chunks, uvm_pmm_gpu.c
   * pick_root_chunk_to_evict → evict_root_chunk). Here the chunk is the 2 MiB-aligned VA block of
   * the least recently migrated range: every page of the process there that is in VRAM goes back
   * together. Unset: the range alone (kfd's svm_bo, nouveau's chunk of the migration).
   */
  evictChunkPages?: number;
  /**
   * Called under the notifier lock when a VRAM page's GPUVM entry is cleared because the page
   * leaves VRAM (eviction, migrate_to_ram): a policy that maps ranges (gpusvm) invalidates the
   * page's whole range there. Returns the further entries it cleared (for the TLB flush).
   */
  onVramPageZap?: (pid: Pid, vpn: number) => number;
}

export interface SvmVram {
  readonly enabled: boolean;
  readonly stats: SvmVramStats;
  /** One more GPU fault or access of a page in system memory; returns its heat. */
  bump(pid: Pid, vpn: number): number;
  /** The page is in VRAM (until migrate_to_ram or device_page_free). */
  has(pid: Pid, vpn: number): boolean;
  /** svm_migrate_vma_to_vram of [ws, we) (pages) of the BO under migrate_mutex; `done` always runs. */
  /** `locked`: the caller holds mmap_read_lock of bo.pid already (kfd's restore path). */
  /**
   * `allOrNothing` (drm_pagemap_migrate_to_devmem): unless VRAM has room for every page and
   * migrate_vma_setup selects every page, nothing moves. done(migrated) with the pages moved.
   */
  migrateToVram(bo: Bo, ws: number, we: number, done: (migrated: number) => void, locked?: boolean, allOrNothing?: boolean): void;
  /**
   * svm_migrate_vram_to_ram of one page of the BO (the fault handler's read-only VRAM page) under
   * migrate_mutex; done(false) without moving anything if the BO is closing.
   */
  /** `locked`: the caller holds mmap_read_lock of bo.pid already (kfd's fault). */
  evictPage(bo: Bo, vpn: number, done: (ok: boolean) => void, locked?: boolean): void;
  /** A GPU access through a GPUVM entry: true if VRAM served it (the entry maps a VRAM page). */
  access(job: Job, bo: Bo, page: number, pte: GpuPte, value: number): boolean;
  /** mutex_lock(migrate_mutex) for the BO teardown; `unlock` releases it. */
  lockMigrate(then: (unlock: () => void) => void): void;
  migrateToRam(env: Envelope<Message>, m: MigrateToRam): void;
  pageFree(m: DevicePageFree): void;
  devmemRead(devPfns: number[]): (number | null)[];
  summary(): Record<string, number>;
  /** VRAM pages backing process memory now. */
  pagesInUse(): number;
}

export interface SvmVramStats {
  vramRegistered: number;
  migratedToVram: number;
  /** Migrations to VRAM queued for a BO that was freed before their turn: not done. */
  migrationsDropped: number;
  migrationsSkipped: number;
  /** Most migrations to VRAM waiting for migrate_mutex at once. */
  migrateWaitersMax: number;
  migratedToRam: number;
  /** kfd: CPU faults' migrate_to_ram that found migrate_mutex held, the time they waited for it (total, max), ns. */
  cpuMigrateWaits: number;
  cpuMigrateWaitNs: number;
  cpuMigrateWaitNsMax: number;
  vramEvictions: number;
  vramPagesEvicted: number;
  /** uvm: evictions that took a whole root chunk (evictChunkPages). */
  vramChunksEvicted: number;
  vramReads: number;
  vramWrites: number;
}

export function createSvmVram(host: GpuHost, opts: SvmVramOptions): SvmVram {
  const { vramPages, hotThreshold, window, closing } = opts;
  const lock = host.notifierLock;
  const tracing = () => host.ctx.tracing;
  const s: SvmVramStats = {
    vramRegistered: 0, migratedToVram: 0, migrationsDropped: 0, migrationsSkipped: 0, migrateWaitersMax: 0,
    migratedToRam: 0, cpuMigrateWaits: 0, cpuMigrateWaitNs: 0, cpuMigrateWaitNsMax: 0, vramEvictions: 0, vramPagesEvicted: 0, vramChunksEvicted: 0, vramReads: 0, vramWrites: 0,
  };

  const enabled = vramPages > 0;
  let vramState: 'none' | 'registering' | 'ready' | 'failed' = 'none';
  const vramWaiters: (() => void)[] = [];
  const vramFree: number[] = [];
  const vram = new Map<number, VramPage>();
  /** (pid, vpn) → the VRAM page backing it (until migrate_to_ram or device_page_free). */
  const vramAt = new Map<number, number>();
  const vramRanges: VramRange[] = [];
  /** GPU faults + accesses per page, while it is in system memory. */
  const heat = new Map<number, number>();
  /** Pages with a migration to VRAM queued or running. */
  const migrating = new Set<number>();
  /** Pages migrate_vma_setup did not select (a file or KSM page, a pinned or locked one): accesses do not try them again. */
  const unmovable = new Set<number>();
  /** prange->migrate_mutex: one migration at a time (never held with notifierLock across a message to mm). */
  const migrateMutex = new Mutex('gpu svm migrate_mutex');
  /** Migrations to VRAM waiting for migrate_mutex. */
  let migrateWaiters = 0;
  /**
   * mutex_unlock of migrate_mutex. Mutex.unlock runs the next waiter at once, and a waiter that
   * finishes without waiting for mm (a dropped migration) unlocks again from inside: thousands of
   * them queued behind a freeBo would nest that deep. So unlocks are counted and done in a loop.
   */
  let migrateUnlocksPending = 0;
  let migrateUnlocking = false;
  const migrateUnlock = (): void => {
    migrateUnlocksPending++;
    if (migrateUnlocking) return;
    migrateUnlocking = true;
    while (migrateUnlocksPending > 0) {
      migrateUnlocksPending--;
      migrateMutex.unlock();
    }
    migrateUnlocking = false;
  };

  const bump = (pid: Pid, vpn: number): number => {
    const k = pageKey(pid, vpn);
    const h = (heat.get(k) ?? 0) + 1;
    heat.set(k, h);
    return h;
  };

  /** kgd2kfd_init_zone_device: memremap_pages of all VRAM, at first use. */
  const ensureVram = (then: () => void): void => {
    if (vramState === 'ready' || vramState === 'failed') return then();
    vramWaiters.push(then);
    if (vramState === 'registering') return;
    vramState = 'registering';
    host.call({ type: 'memremap_pages', nr_pages: vramPages }, (r) => {
      const ret = retOf(r);
      if (ret < 0 || r.type !== 'memremap_pages_result') {
        vramState = 'failed';
        host.warn(`memremap_pages of ${vramPages} VRAM pages failed (${ret})`);
      } else {
        const base = (r as MemremapPagesResult).base;
        for (let i = vramPages - 1; i >= 0; i--) vramFree.push(base + i);
        vramState = 'ready';
        s.vramRegistered = vramPages;
        if (tracing()) host.ctx.trace('gpu_vram_registered', { base, pages: vramPages });
      }
      for (const w of vramWaiters.splice(0)) w();
    });
  };

  /**
   * svm_migrate_vma_to_vram of [ws, we) (pages) of the BO, under migrate_mutex. Evicts the
   * least-recently-migrated ranges first if VRAM is short. Always calls `done` (a page that could
   * not move stays in system memory and is mapped from there). Nothing moves once the BO is closing:
   * freeBo waits for migrate_mutex, so a migration queued behind it must not start after the BO is gone.
   */
  const migrateToVram = (bo: Bo, ws: number, we: number, done: (migrated: number) => void, locked = false, allOrNothing = false): void => {
    const pid = bo.pid;
    const keys: number[] = [];
    for (let v = ws; v < we; v++) if (!migrating.has(pageKey(pid, v))) keys.push(pageKey(pid, v));
    if (keys.length === 0 || (allOrNothing && keys.length < we - ws)) return done(0);
    for (const k of keys) migrating.add(k);
    let moved = 0;
    const finish = (): void => {
      for (const k of keys) migrating.delete(k);
      migrateUnlock();
      done(moved);
    };
    migrateWaiters++;
    s.migrateWaitersMax = Math.max(s.migrateWaitersMax, migrateWaiters);
    migrateMutex.lock(() => {
      migrateWaiters--;
      if (closing.has(bo)) {
        s.migrationsDropped++;
        return finish();
      }
      ensureVram(() => {
        if (vramState !== 'ready') return finish();
        // Make room before setup: an eviction's migrate_vma must not wait on the range our setup locks.
        makeRoom(we - ws, 0, locked ? pid : null, () => {
          // svm_migrate_to_vram / nouveau_dmem_migrate_vma: the caller holds mmap_read_lock from
          // migrate_vma_setup to finalize (mm checks it: mmap_assert_locked).
          mmapReadLocked(locked ? pid : null, pid, () => finish(), (unlock) => {
          const unlocked = () => unlock(finish);
          host.call({ type: 'migrate_vma_setup', pid, start: ws * PAGE_SIZE, end: we * PAGE_SIZE, flags: MIGRATE_VMA_SELECT_SYSTEM, pgmap_owner: host.id }, (r) => {
            const ret = retOf(r);
            if (ret < 0 || r.type !== 'migrate_vma_setup_result') return unlocked();
            const su = r as MigrateVmaSetupResult;
            const n = we - ws;
            const dst = new Float64Array(n).fill(-1);
            let copies = 0;
            // drm_pagemap_migrate_to_devmem: "we want to migrate all or nothing" (cpages != npages
            // → -EBUSY), and xe_bo_create of the whole range failing leaves everything in place.
            let all = vramFree.length >= n;
            for (let i = 0; all && i < n; i++) if (!(su.src_flags[i] & MIGRATE_PFN_MIGRATE)) all = false;
            for (let i = 0; i < n && (all || !allOrNothing); i++) {
              if (!(su.src_flags[i] & MIGRATE_PFN_MIGRATE)) {
                unmovable.add(pageKey(pid, ws + i));
                continue;
              }
              const dpfn = vramFree.pop();
              if (dpfn === undefined) break;
              // No VALID: pte_none or the zero page, cleared in VRAM.
              vram.set(dpfn, { value: su.src_flags[i] & MIGRATE_PFN_VALID ? su.src_data[i] : 0, pid, vpn: ws + i });
              dst[i] = dpfn;
              copies++;
            }
            host.sleep(copies * host.costs.migratePerPageNs, () => {
              host.call({ type: 'migrate_vma_finalize', migration: su.migration, dst_pfns: dst }, (fr) => {
                const fret = retOf(fr);
                if (fret < 0 || fr.type !== 'migrate_vma_finalize_result') {
                  for (let i = 0; i < n; i++) if (dst[i] >= 0 && vram.delete(dst[i])) vramFree.push(dst[i]);
                  return unlocked();
                }
                for (let i = 0; i < n; i++) {
                  if (dst[i] < 0) continue;
                  vramAt.set(pageKey(pid, ws + i), dst[i]);
                  heat.delete(pageKey(pid, ws + i));
                  unmovable.delete(pageKey(pid, ws + i));
                }
                const migrated = (fr as MigrateVmaFinalizeResult).migrated;
                moved = migrated;
                s.migratedToVram += migrated;
                if (migrated > 0) vramRanges.push({ pid, startVpn: ws, endVpn: we });
                if (tracing()) host.ctx.trace('gpu_migrate_to_vram', { pid, start: ws * PAGE_SIZE, end: we * PAGE_SIZE, migrated });
                unlocked();
              });
            });
          });
          });
        });
      });
    });
  };

  /**
   * mmap_read_lock of `pid` around `body`, unless the caller holds it already (`heldPid`): a second
   * read lock behind a queued writer would deadlock, as in the kernel.
   */
  const mmapReadLocked = (heldPid: Pid | null, pid: Pid, failed: () => void, body: (unlock: (then: () => void) => void) => void): void => {
    if (heldPid === pid) return body((then) => then());
    withMmapReadLock(host, pid, failed, body);
  };

  /** Evict least-recently-migrated ranges until `need` VRAM pages are free (or nothing is left to evict). */
  const makeRoom = (need: number, tries: number, heldPid: Pid | null, done: () => void): void => {
    // Ranges whose pages all left VRAM already (CPU faults, munmap) have nothing to evict.
    while (vramRanges.length > 0 && !stillInVram(vramRanges[0])) vramRanges.shift();
    if (vramFree.length >= need || vramRanges.length === 0 || tries >= EVICTIONS_PER_MIGRATION_MAX) return done();
    s.vramEvictions++;
    const victim = vramRanges.shift()!;
    let r = victim;
    const chunk = opts.evictChunkPages;
    if (chunk !== undefined) {
      // The root chunk: the victim's 2 MiB-aligned block, as far as the process's ranges in VRAM reach.
      const c0 = Math.floor(victim.startVpn / chunk) * chunk;
      let lo = victim.startVpn;
      let hi = victim.endVpn;
      for (const o of vramRanges) {
        if (o.pid === victim.pid && o.startVpn >= c0 && o.endVpn <= c0 + chunk) {
          lo = Math.min(lo, o.startVpn);
          hi = Math.max(hi, o.endVpn);
        }
      }
      r = { pid: victim.pid, startVpn: lo, endVpn: hi };
      s.vramChunksEvicted++;
    }
    evictRange(r, heldPid, () => makeRoom(need, tries + 1, heldPid, done));
  };

  const stillInVram = (r: VramRange): boolean => {
    for (let v = r.startVpn; v < r.endVpn; v++) if (vramAt.has(pageKey(r.pid, v))) return true;
    return false;
  };

  /**
   * svm_migrate_vram_to_ram of a range: migrate_vma_setup(SELECT_DEVICE_PRIVATE); under the lock,
   * zap each page's GPUVM entry and copy it out; flush; migrate_vma_finalize with the content. The
   * pages come back to the free list by device_page_free (sent by mm before the finalize reply).
   */
  const evictRange = (r: VramRange, heldPid: Pid | null, done: () => void): void => {
    // svm_range_evict_svm_bo_worker: mmap_read_lock(mm) around svm_migrate_vram_to_ram.
    mmapReadLocked(heldPid, r.pid, () => done(), (unlock) => {
    const unlocked = () => unlock(done);
    host.call(
      { type: 'migrate_vma_setup', pid: r.pid, start: r.startVpn * PAGE_SIZE, end: r.endVpn * PAGE_SIZE, flags: MIGRATE_VMA_SELECT_DEVICE_PRIVATE, pgmap_owner: host.id },
      (sr) => {
        const ret = retOf(sr);
        if (ret < 0 || sr.type !== 'migrate_vma_setup_result') return unlocked();
        const su = sr as MigrateVmaSetupResult;
        const n = r.endVpn - r.startVpn;
        const dst = new Float64Array(n).fill(-1);
        const dstData = new Float64Array(n);
        lock.lock(() => {
          let zapped = 0;
          let copies = 0;
          for (let i = 0; i < n; i++) {
            if (!(su.src_flags[i] & MIGRATE_PFN_VALID) || !(su.src_flags[i] & MIGRATE_PFN_MIGRATE)) continue;
            const vpn = r.startVpn + i;
            const dpfn = vramAt.get(pageKey(r.pid, vpn));
            const page = dpfn === undefined ? undefined : vram.get(dpfn);
            if (!page) continue;
            const pte = host.vm.lookup(r.pid, vpn * PAGE_SIZE);
            if (pte?.vram && pte.pfn === dpfn) zapped += host.vm.clear(r.pid, vpn * PAGE_SIZE, (vpn + 1) * PAGE_SIZE);
            zapped += opts.onVramPageZap?.(r.pid, vpn) ?? 0;
            vramAt.delete(pageKey(r.pid, vpn));
            dstData[i] = page.value;
            dst[i] = 0; // any destination: mm allocates the system page
            copies++;
          }
          host.flushTlb(zapped, () => {
            lock.unlock();
            host.sleep(copies * host.costs.migratePerPageNs, () => {
              host.call({ type: 'migrate_vma_finalize', migration: su.migration, dst_pfns: dst, dst_data: dstData }, (fr) => {
                const migrated = retOf(fr) < 0 ? 0 : (fr as MigrateVmaFinalizeResult).migrated;
                s.vramPagesEvicted += migrated;
                if (tracing()) host.ctx.trace('gpu_vram_evict', { pid: r.pid, start: r.startVpn * PAGE_SIZE, end: r.endVpn * PAGE_SIZE, migrated });
                unlocked();
              });
            });
          });
        });
      },
    );
    });
  };

  const answer = (env: Envelope<Message>, r: MigrateToRamResult): void => host.ctx.reply(env, r as unknown as Message);

  return {
    enabled,
    stats: s,
    bump,
    has: (pid, vpn) => vramAt.has(pageKey(pid, vpn)),
    migrateToVram,

    evictPage(bo: Bo, vpn: number, done: (ok: boolean) => void, locked = false): void {
      // Under migrate_mutex like every migration of ours: a teardown must not find this page
      // between migrate_vma_setup and finalize (b2e9a51's lost write, by another path).
      migrateMutex.lock(() => {
        if (closing.has(bo)) {
          migrateUnlock();
          return done(false);
        }
        evictRange({ pid: bo.pid, startVpn: vpn, endVpn: vpn + 1 }, locked ? bo.pid : null, () => {
          migrateUnlock();
          done(true);
        });
      });
    },

    access(job: Job, bo: Bo, page: number, pte: GpuPte, value: number): boolean {
      const vpn = boFirstVpn(bo) + page;
      if (!pte.vram) {
        const k = pageKey(bo.pid, vpn);
        // Hot through accesses alone: migrate in the background (the next access faults and maps
        // VRAM). Every access of a hot page not in VRAM and not already on its way tries, so a page
        // skipped at the limit, or hot while another migration of it was pending, tries again; one
        // that migrate_vma_setup would not select does not (each try is an MMU_NOTIFY_MIGRATE that
        // zaps the page's GPUVM entry).
        if (enabled && bump(bo.pid, vpn) >= hotThreshold && !vramAt.has(k) && !migrating.has(k) && !unmovable.has(k)) {
          if (migrateWaiters >= BACKGROUND_MIGRATIONS_MAX) {
            s.migrationsSkipped++;
            return false;
          }
          const first = boFirstVpn(bo);
          const ws = Math.max(first, vpn - (vpn % window));
          const we = Math.min(first + bo.pages, ws + window);
          migrateToVram(bo, ws, we, () => {});
        }
        return false;
      }
      // A VRAM page: the access stays in the GPU.
      const p = vram.get(pte.pfn);
      if (!p) {
        host.warn('GPUVM maps a VRAM page not in use', { pid: bo.pid, addr: vpn * PAGE_SIZE, dev_pfn: pte.pfn });
        return true;
      }
      if (job.pattern.write) {
        p.value = value;
        s.vramWrites++;
        if (tracing()) host.ctx.trace('dev_write', { pid: bo.pid, addr: vpn * PAGE_SIZE, dev_pfn: pte.pfn, value }); // the checker's oracle event
      } else s.vramReads++;
      return true;
    },

    lockMigrate(then: (unlock: () => void) => void): void {
      migrateMutex.lock(() => then(migrateUnlock));
    },

    /** dev_pagemap_ops.migrate_to_ram: a CPU touched one of our pages. Zap its entry, flush, hand the content over. */
    migrateToRam(env: Envelope<Message>, m: MigrateToRam): void {
      const page = vram.get(m.dev_pfn);
      if (!page) {
        host.warn('migrate_to_ram of a VRAM page not in use', { dev_pfn: m.dev_pfn });
        return answer(env, { type: 'migrate_to_ram_result', ret: EFAULT, value: 0 });
      }
      const migrate = (done: () => void): void =>
        lock.lock(() => {
          const vpn = Math.floor(m.addr / PAGE_SIZE);
          const pte = host.vm.lookup(m.pid, m.addr);
          let zapped = pte?.vram && pte.pfn === m.dev_pfn ? host.vm.clear(m.pid, vpn * PAGE_SIZE, (vpn + 1) * PAGE_SIZE) : 0;
          zapped += opts.onVramPageZap?.(m.pid, vpn) ?? 0;
          if (vramAt.get(pageKey(m.pid, vpn)) === m.dev_pfn) vramAt.delete(pageKey(m.pid, vpn));
          host.flushTlb(zapped, () => {
            lock.unlock();
            s.migratedToRam++;
            host.sleep(host.costs.migratePerPageNs, () => {
              answer(env, { type: 'migrate_to_ram_result', ret: 0, value: page.value });
              done();
            });
          });
        });
      if (!opts.migrateToRamUnderMutex) return migrate(() => {});
      // kfd: the copy runs under migrate_mutex; a CPU fault behind another migration waits its turn.
      const t0 = host.ctx.now();
      if (migrateMutex.locked) s.cpuMigrateWaits++;
      migrateMutex.lock(() => {
        const waited = host.ctx.now() - t0;
        s.cpuMigrateWaitNs += waited;
        s.cpuMigrateWaitNsMax = Math.max(s.cpuMigrateWaitNsMax, waited);
        migrate(migrateUnlock);
      });
    },

    /** dev_pagemap_ops.page_free */
    pageFree(m: DevicePageFree): void {
      const page = vram.get(m.dev_pfn);
      if (!page) return host.warn('page_free of a VRAM page not in use', { dev_pfn: m.dev_pfn });
      vram.delete(m.dev_pfn);
      if (vramAt.get(pageKey(page.pid, page.vpn)) === m.dev_pfn) vramAt.delete(pageKey(page.pid, page.vpn));
      vramFree.push(m.dev_pfn);
    },

    devmemRead(devPfns: number[]): (number | null)[] {
      return devPfns.map((pfn) => vram.get(pfn)?.value ?? null);
    },

    summary(): Record<string, number> {
      return { ...s, vramPagesInUse: vram.size, vramPagesFree: vramFree.length };
    },
    pagesInUse: () => vram.size,
  };
}
