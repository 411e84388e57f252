// The state of the simulated kernel that every mechanism file works on, and the primitives they
// share: calling another actor with a continuation, replying after a cost, installing and zapping
// PTEs with their rmap and refcount bookkeeping (mm/memory.c set_pte_at / zap_pte_range,
// mm/rmap.c), and the trace of the data oracle.
//
// mm never blocks its thread: an operation that waits (for acks, I/O, a lock, memory) is a
// continuation stored here and resumed by the message or timer it waits for.
import { ReclaimWaits } from './reclaim-waits.js';
import type { ActorId, Ctx, Envelope, Message } from '@svmsim/runtime';
import { DevicePages } from './device-memory.js';
import type { Subscription } from './interval-notifier.js';
import type { OracleEvents } from './oracle-events.js';
import { PTE_DEVICE_EXCLUSIVE, PTE_DEVICE_PRIVATE, PTE_DIRTY, PTE_MKDIRTY, PTE_KIND_MASK, PTE_MIGRATION, PTE_PRESENT, PTE_SWAP, PTE_WRITE, PTE_YOUNG } from './page-table.js';
import { PG_ANON, PG_DIRTY, PG_LRU, PG_REFERENCED, PG_SWAPCACHE, Physmem, assert } from './physmem.js';
import type { Process } from './process.js';
import { ZERO_PFN, type MmMessage, type Pid } from './protocol.js';
import { SwapSpace } from './swap.js';
import type { NumaBalancingConfig } from './numa-balancing.js';
import type { FullMmuNotifier } from './mmu-notifier-young.js';

/** Costs in simulated ns, overridable per scenario. Rough figures of a current x86 server. */
export interface MmCosts {
  /** Entering and leaving a page fault or a syscall. */
  faultNs: number;
  syscallNs: number;
  /** clear_page / copy_page of 4 KiB. */
  zeroPageNs: number;
  copyPageNs: number;
  /** Per page walked by get_user_pages / hmm_range_fault. */
  gupPerPageNs: number;
  hmmPerPageNs: number;
  /** One reclaim scan step per page. */
  reclaimScanNs: number;
  /**
   * One migrate_pages pass over a page that answered -EAGAIN, before the next (the unmap, TLB
   * flush, refcount check and restore of the failed attempt; mm/migrate.c has no wait between
   * passes). Not a kernel figure: the model's, overridable per scenario.
   */
  migratePassNs: number;
}

export const DEFAULT_COSTS: MmCosts = {
  faultNs: 1_000,
  syscallNs: 500,
  zeroPageNs: 400,
  copyPageNs: 600,
  gupPerPageNs: 50,
  hmmPerPageNs: 40,
  reclaimScanNs: 100,
  migratePassNs: 2_000,
};

export interface MmConfig {
  frames: number;
  movableStart?: number;
  wmarkMin?: number;
  wmarkLow?: number;
  wmarkHigh?: number;
  /** Swap slots (pages); 0 = no swap. */
  swapPages?: number;
  /** The block device actor behind files and swap. */
  blockdev?: ActorId;
  costs?: Partial<MmCosts>;
  /** khungtaskd: warn when an operation waits longer than this for a device (ns). Default 120 s. */
  hungTaskTimeoutNs?: number;
  /** kswapd runs when free memory falls under the low watermark. Default true. */
  kswapd?: boolean;
  /** Check every frame and PTE after each message (invariants.ts): small machines only. */
  checkInvariants?: boolean;
  /** The periodic flusher writes dirty file pages back every this many ns (0/absent: only on `writeback`). */
  writebackIntervalNs?: number;
  /**
   * Automatic NUMA balancing (numa-balancing.ts): off when absent (the kernel's
   * numa_balancing=0 of a one-node machine); `{}` turns it on with the kernel's defaults.
   */
  numaBalancing?: NumaBalancingConfig;
  /** get_user_pages gives up after this many faults per page asked for (a page unmapped as fast as it is faulted). Default 16. */
  gupFaultsPerPageMax?: number;
  /**
   * 1 (default): mainline mn_itree_invalidate, every subscription's invalidate() in turn, each
   * blocking. 2: the two-pass RFC (protocol.ts, invalidate.ts): subscriptions whose driver has
   * invalidate_multipass are started in a first pass and waited for in a second.
   */
  notifierPasses?: 1 | 2;
}

/** An I/O error: -EIO where a pfn was expected. */
export const EIO_RET = -5;

export interface FileObj {
  id: number;
  name: string;
  pages: number;
  /** Page cache: file index → pfn, -1 when not cached. */
  cache: Int32Array;
}

/** Counters reported in mm's summary. Names carry their unit or are counts. */
export class MmStats {
  cpuFaults = 0;
  cpuFaultsByKind: Record<string, number> = {};
  gupPages = 0;
  pinPages = 0;
  /** Pages the _fast variants took locklessly (gup_fast), of gupPages + pinPages. */
  gupFastPages = 0;
  /** mremap calls that moved a VMA (move_vma). */
  mremapMoves = 0;
  /** Pages MADV_FREE marked lazyfree, and those reclaim then discarded (not written since). */
  lazyfreePages = 0;
  lazyfreeDiscarded = 0;
  /** gup calls that met a MEMORY_DEVICE_PCI_P2PDMA page without FOLL_PCI_P2PDMA (-EREMOTEIO). */
  gupEremoteio = 0;
  hmmRangeFaults = 0;
  hmmPages = 0;
  hmmEbusy = 0;
  invalidations = 0;
  invalidationsByEvent: Record<string, number> = {};
  /** Time from invalidate_range_start to the last ack, per invalidation that called a device. */
  notifierWaitNs: number[] = [];
  /** munmap syscalls: from the request to the reply (mmap_lock wait, the UNMAP invalidation, the zap), ns. */
  munmapNs: number[] = [];
  dmaWrites = 0;
  dmaReads = 0;
  swapOuts = 0;
  swapIns = 0;
  reclaimed = 0;
  kswapdRuns = 0;
  directReclaims = 0;
  /** Time allocations spent in the slow path (direct reclaim, throttling, OOM), each allocation that got there (ns). */
  directReclaimNs: number[] = [];
  oomKills = 0;
  writebacks = 0;
  ksmMerged = 0;
  migrations = 0;
  /** migrate_pages passes after a page's first (-EAGAIN: retried, up to NR_MAX_MIGRATE_PAGES_RETRY passes in all). */
  migrationRetries = 0;
  /** Pages migrate_pages attempted and gave up on (-EAGAIN after the last pass, -EBUSY, -ENOMEM). */
  migrationsFailed = 0;
  /** Pages migrated on a retry pass: the -EAGAIN (a short pin, a locked page) was gone by then. */
  migratedAfterRetry = 0;
  /** Pages the migrate_pages trigger did not attempt: maybe DMA-pinned in a COW mapping (NUMA balancing's prot_numa skip). */
  migrationsSkippedPinned = 0;
  cowCopies = 0;
  hungTaskWarnings = 0;
  /** NUMA balancing (numa-balancing.ts): task_numa_work passes, and those skipped (mmap_read_trylock failed). */
  numaScans = 0;
  numaScansSkippedLocked = 0;
  /** vmstat numa_pte_updates: PTEs made NUMA hinting entries. */
  numaPteUpdates = 0;
  /** vmstat numa_hint_faults / numa_hint_faults_local (one node: all local). */
  numaHintFaults = 0;
  numaHintFaultsLocal = 0;
  /** VMAs task_numa_work skipped, by its reason (NUMAB_SKIP_*); PTEs change_pte_range skipped, by reason. */
  numaVmaSkips: Record<string, number> = {};
  numaPteSkips: Record<string, number> = {};
  /** clear_refs writes of 4 (CLEAR_REFS_SOFT_DIRTY) done. */
  clearRefsSoftDirty = 0;
  /** folio_referenced: pages a full mmu_notifier's clear_flush_young reported young (kept by reclaim). */
  secondaryMmuYoung = 0;
  /** hmm_range_fault / migrate_vma_setup requests from a driver not holding the mmap lock (mmap-lock.ts mmap_lock_contract), refused. */
  mmapLockContractViolations = 0;
  mmapLockContractViolationsBy: Record<string, number> = {};
  /** How long each mmap_write_lock (munmap, mprotect, mmap, madvise) waited for mmap_lock (ns). */
  mmapWriteLockWaitNs: number[] = [];

  countFault(kind: string): void {
    this.cpuFaults++;
    this.cpuFaultsByKind[kind] = (this.cpuFaultsByKind[kind] ?? 0) + 1;
  }
}

type Continuation = (msg: Message, env: Envelope<Message>) => void;

/** Messages mm sends itself (timers and deferred work). */
export type MmInternal =
  | { type: 'mm_reply_due' }
  | { type: 'mm_later' }
  | { type: 'mm_hung_task_check' }
  | { type: 'mm_sleep_done' }
  | { type: 'mm_writeback_tick' }
  | { type: 'mm_numa_tick' };
/** Everything mm sends. */
export type MmOutgoing = MmMessage | MmInternal;

export class Kernel {
  readonly pm: Physmem;
  readonly costs: MmCosts;
  readonly procs = new Map<Pid, Process>();
  readonly files = new Map<number, FileObj>();
  readonly subs = new Map<number, Subscription>();
  readonly swap: SwapSpace;
  readonly blockdev: ActorId;
  readonly stats = new MmStats();
  /** How long kswapd and direct reclaim waited in notifiers, waits still open included. */
  readonly reclaimWaits = new ReclaimWaits();
  readonly hungTaskTimeoutNs: number;
  ctx!: Ctx<MmOutgoing>;

  kswapdRunning = false;
  /** KSM's stable tree: content → KSM page. */
  readonly ksmStable = new Map<number, number>();
  /** migrate_vma operations between setup and finalize (migrate-device.ts), by handle. */
  readonly migrations = new Map<number, unknown>();
  nextMigrationId = 1;
  nextPid = 1;
  nextFileId = 1;
  nextShmId = -1;
  nextSubId = 1;
  nextInvId = 1;
  /** MmConfig.notifierPasses: 2 calls multipass subscriptions the two-pass way. */
  readonly notifierPasses: 1 | 2;
  /** Requests mm made, by request id: resumed by the reply. */
  private readonly calls = new Map<number, Continuation>();
  /** The swap cache: slot → pfn, for slots shared by several PTEs while one of them is swapped in. */
  readonly swapCache = new Map<number, number>();
  /** Waiters for a locked page, by pfn (folio_wait_locked). */
  readonly pageWaiters = new Map<number, (() => void)[]>();
  /** Work deferred to a later turn of mm (cond_resched / a retry loop yielding), run in order. */
  private readonly laterQueue: (() => void)[] = [];
  private readonly bounced: (() => void)[] = [];
  private bouncing = false;
  /** Sleeping retry loops, by timer id. */
  private readonly sleepers = new Map<number, () => void>();
  /** khungtaskd checks armed while waiting for a driver, by timer id. */
  readonly hungChecks = new Map<number, () => void>();
  /** Replies held back by a cost timer, by timer id. */
  private readonly deferredReplies = new Map<number, { env: Envelope<Message>; msg: MmOutgoing }>();

  constructor(readonly cfg: MmConfig) {
    this.pm = new Physmem({ nrFrames: cfg.frames, movableStart: cfg.movableStart, wmarkMin: cfg.wmarkMin, wmarkLow: cfg.wmarkLow, wmarkHigh: cfg.wmarkHigh });
    this.costs = { ...DEFAULT_COSTS, ...cfg.costs };
    this.swap = new SwapSpace(cfg.swapPages ?? 0);
    this.blockdev = cfg.blockdev ?? 'ramdisk';
    this.hungTaskTimeoutNs = cfg.hungTaskTimeoutNs ?? 120e9;
    this.notifierPasses = cfg.notifierPasses ?? 1;
    if (this.notifierPasses !== 1 && this.notifierPasses !== 2) throw new Error(`mm: notifierPasses ${String(cfg.notifierPasses)} is not 1 or 2`);
  }

  // ---- messaging ----

  /** Send a request and resume `then` with its reply (or request_timeout / actor_died). */
  call(to: ActorId, msg: MmOutgoing, then: Continuation, timeoutNs?: number): number {
    const id = this.ctx.request(to, msg, timeoutNs);
    this.calls.set(id, then);
    return id;
  }

  /** Route a reply to the continuation waiting for it; false if nobody waits. */
  resume(env: Envelope<Message>): boolean {
    const then = this.calls.get(env.replyTo);
    if (then === undefined) return false;
    this.calls.delete(env.replyTo);
    then(env.msg, env);
    return true;
  }

  /** Run `fn` in a later turn: lets other messages in first (a retry loop must not starve them). */
  later(fn: () => void): void {
    this.laterQueue.push(fn);
    if (this.laterQueue.length === 1) this.ctx.send(this.ctx.self, { type: 'mm_later' });
  }

  /**
   * Continue a loop whose step may finish synchronously (a fault that needed no I/O, an
   * invalidation with no subscriber): inside a bounce, `fn` runs once the current step has
   * returned, so a chain of synchronous continuations is a loop, not a growing stack. Only for
   * resuming loops: the caller must return right after.
   */
  bounce(fn: () => void): void {
    this.bounced.push(fn);
    if (this.bouncing) return;
    this.bouncing = true;
    try {
      for (let f = this.bounced.shift(); f !== undefined; f = this.bounced.shift()) f();
    } finally {
      this.bouncing = false;
      this.bounced.length = 0;
    }
  }

  /** Run `fn` after `delayNs` of simulated time (a sleep in a retry loop: schedule_timeout). */
  afterNs(delayNs: number, fn: () => void): void {
    this.sleepers.set(this.ctx.after(delayNs, { type: 'mm_sleep_done' }), fn);
  }

  /** The `mm_sleep_done` timer fired. */
  wake(timerId: number): void {
    const fn = this.sleepers.get(timerId);
    this.sleepers.delete(timerId);
    fn?.();
  }

  /** The `mm_later` self-message: run what was queued before it was sent. */
  runLater(): void {
    const batch = this.laterQueue.splice(0);
    for (const fn of batch) fn();
  }

  get pendingCalls(): number {
    return this.calls.size;
  }

  /** Reply once `costNs` of simulated time has passed (the work's duration). */
  replyAfter(env: Envelope<Message>, msg: MmOutgoing, costNs: number): void {
    if (costNs <= 0) {
      this.ctx.reply(env, msg);
      return;
    }
    const timer = this.ctx.after(costNs, { type: 'mm_reply_due' });
    this.deferredReplies.set(timer, { env, msg });
  }

  /** The `mm_reply_due` timer fired. */
  replyDue(timerId: number): void {
    const r = this.deferredReplies.get(timerId);
    assert(r !== undefined, `mm_reply_due for unknown timer ${timerId}`);
    this.deferredReplies.delete(timerId);
    this.ctx.reply(r.env, r.msg);
  }

  get pendingReplies(): number {
    return this.deferredReplies.size;
  }

  /** An oracle event (oracle-events.ts): typed so that the checker's contract is kept. */
  oracle<E extends keyof OracleEvents>(ev: E, fields: OracleEvents[E]): void {
    if (this.ctx.tracing) this.ctx.trace(ev, fields as unknown as Record<string, unknown>);
  }

  proc(pid: Pid): Process | undefined {
    const p = this.procs.get(pid);
    return p && p.alive ? p : undefined;
  }

  // ---- PTE primitives ----

  /** set_pte_at for a present page: maps pfn at vpn, taking a mapping reference (zero page: none). */
  mapPresent(p: Process, vpn: number, pfn: number, write: boolean, dirty: boolean): void {
    assert(p.pt.kind(vpn) !== PTE_PRESENT, `mapPresent: pid ${p.pid} vpn ${vpn} already present`);
    if (pfn !== ZERO_PFN) {
      this.pm.addRmap(pfn, p.pid, vpn);
      if (this.pm.flags[pfn] & PG_ANON) p.rssAnon++;
      else p.rssFile++;
      if (!(this.pm.flags[pfn] & PG_LRU)) this.pm.lruAdd(pfn);
    }
    p.pt.set(vpn, PTE_PRESENT | (write ? PTE_WRITE : 0) | (dirty ? PTE_MKDIRTY : 0) | PTE_YOUNG, pfn);
  }

  /**
   * zap_pte_range for one entry: drop whatever vpn maps, carrying the PTE's dirty and young bits to
   * the page first. Frees the frame when that was its last reference.
   */
  zapPte(p: Process, vpn: number): void {
    const f = p.pt.flags(vpn);
    const v = p.pt.value(vpn);
    switch (f & PTE_KIND_MASK) {
      case PTE_PRESENT:
        if (v !== ZERO_PFN) this.unmapFrame(p, vpn, v, f);
        break;
      case PTE_DEVICE_EXCLUSIVE:
        this.unmapFrame(p, vpn, v, f);
        break;
      case PTE_SWAP:
        this.swapFree(v);
        break;
      case PTE_DEVICE_PRIVATE:
        this.devicePagePut(v);
        break;
      case PTE_MIGRATION:
        assert(false, `zapPte: pid ${p.pid} vpn ${vpn} is under migration (callers hold the range lock)`);
    }
    p.pt.clear(vpn);
  }

  private unmapFrame(p: Process, vpn: number, pfn: number, pteFlags: number): void {
    if (pteFlags & PTE_DIRTY) this.pm.flags[pfn] |= PG_DIRTY;
    if (pteFlags & PTE_YOUNG) this.pm.flags[pfn] |= PG_REFERENCED;
    if (this.pm.flags[pfn] & PG_ANON) p.rssAnon--;
    else p.rssFile--;
    this.pm.removeRmap(pfn, p.pid, vpn);
  }

  /** add_to_swap_cache: the page stands for the slot's content; it holds a reference. */
  swapCacheAdd(slot: number, pfn: number): void {
    assert(!this.swapCache.has(slot), `swap cache slot ${slot} already holds frame ${this.swapCache.get(slot)}`);
    this.swapCache.set(slot, pfn);
    this.pm.flags[pfn] |= PG_SWAPCACHE;
    this.pm.swapSlot[pfn] = slot;
    this.pm.get(pfn);
  }

  /** delete_from_swap_cache */
  swapCacheDel(slot: number): void {
    const pfn = this.swapCache.get(slot);
    if (pfn === undefined) return;
    this.swapCache.delete(slot);
    this.pm.flags[pfn] &= ~PG_SWAPCACHE;
    this.pm.swapSlot[pfn] = -1;
    this.pm.put(pfn);
  }

  /** swap_free, dropping the swap cache's page with the slot's last user. */
  swapFree(slot: number): void {
    this.swap.put(slot);
    if (this.swap.swapMap[slot] === 0) this.swapCacheDel(slot);
  }

  /** Device-private pages are refcounted by their mappings; the owner frees the last one. */
  devicePagePut(devPfn: number): void {
    this.devicePages.put(this, devPfn);
  }

  /** Full mmu_notifiers (mmu_notifier_register), by id (mmu-notifier-young.ts). */
  readonly fullNotifiers = new Map<number, FullMmuNotifier>();
  nextFullNotifierId = 1;

  /** Device-private memory's struct pages (device-memory.ts). */
  readonly devicePages = new DevicePages();
}
