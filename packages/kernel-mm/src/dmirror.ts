// `dmirror`: the mirror device of the kernel's own HMM selftest driver, lib/test_hmm.c (with its uapi
// lib/test_hmm_uapi.h and its user tools/testing/selftests/mm/hmm-tests.c). Followed: test_hmm.c as
// of v6.15 (page_pgmap(), make_device_exclusive(mm, addr, NULL, &folio), HMM_DMIRROR_RELEASE; no
// HMM_DMIRROR_FLAGS yet), the same through v6.18 for everything modelled here.
//
// One actor is one `struct dmirror_device` (/dev/hmm_dmirrorN). A process opens it (`dmirror_open`,
// one `struct dmirror` per open file) and drives it with one request per ioctl (`dmirror_cmd`), with
// the kernel's names, arguments, results and error codes. The driver talks to `mm` only through
// protocol.ts, as a real driver only through <linux/hmm.h> and <linux/mmu_notifier.h>.
//
// Kernel functions modelled (test_hmm.c):
//   dmirror_fops_open / _release    mmu_interval_notifier_insert over the whole address space
//                                   ([0, 2^32) bytes here: every simulated address) / _remove
//   dmirror_fops_unlocked_ioctl     argument checks (-EINVAL), dispatch, cpages / faults
//   dmirror_interval_invalidate     mutex_lock (mutex_trylock when !blockable: false if busy),
//                                   mmu_interval_set_seq, dmirror_do_update (zap the mirror's table)
//                                   unless MMU_NOTIFY_MIGRATE with range->owner == this device (then
//                                   the entries stay). test_hmm.c returns before set_seq in that
//                                   case; mmu_notifier.h asks for it unconditionally: set here.
//   dmirror_read / dmirror_write    loop: dmirror_do_read / _do_write under the mutex (-ENOENT at the
//                                   first page not mirrored, or not writable for a write), then
//                                   dmirror_fault from that page to the end, cmd->faults++
//   dmirror_fault                   64-page hmm_ranges (pfns[64]), each by dmirror_range_fault
//   dmirror_range_fault             mmu_interval_read_begin → hmm_range_fault (-EBUSY: again) →
//                                   mmap_read_unlock, a seeded scheduling gap (an invalidation
//                                   can run to its ack in it) →
//                                   mutex_lock; mmu_interval_read_retry (again) → dmirror_do_fault
//                                   (program the mirror's table) → mutex_unlock; bounded by
//                                   HMM_RANGE_DEFAULT_TIMEOUT (1000 ms) → -EBUSY, as the kernel
//   dmirror_snapshot                64-page ranges, each by dmirror_range_snapshot: a temporary
//                                   interval notifier (dmirror_snapshot_invalidate: set_seq only),
//                                   hmm_range_fault without HMM_PFN_REQ_FAULT, dmirror_mkentry
//   dmirror_migrate_to_device       64-page migrate_vma_setup(SELECT_SYSTEM) →
//                                   dmirror_migrate_alloc_and_copy → migrate_vma_pages + _finalize
//                                   (one message) → dmirror_migrate_finalize_and_map; then a bounce
//                                   read of the range (-ENOENT if a page did not move: hmm-tests'
//                                   migrate_shared, migrate_mixed)
//   dmirror_migrate_to_system       migrate_vma_setup(SELECT_DEVICE_PRIVATE) →
//                                   dmirror_devmem_fault_alloc_and_copy → migrate_vma_finalize;
//                                   cpages = dmirror_successful_migrated_pages
//   dmirror_exclusive               make_device_exclusive per page → dmirror_atomic_map, then a bounce read
//   dmirror_check_atomic            -EPERM if any page of the range is still mapped atomic
//   dmirror_device_remove_chunks    HMM_DMIRROR_RELEASE: every device page in use back to system memory
//   dmirror_allocate_chunk          memremap_pages of DMIRROR_CHUNK_PAGES, on demand
//   dmirror_devmem_alloc_page       the free list of device pages
//   dmirror_devmem_fault / _free    dev_pagemap_ops.migrate_to_ram / page_free (the migrate_to_ram
//                                   and device_page_free messages)
// A device page's content lives here (the kernel's backing `rpage`); a WRITE to it is a `dev_write`
// oracle event, and `dmirror_devmem_read` lets a harness resolve the device pages of mm's dump.
//
// dmirror_migrate_to_device and dmirror_migrate_to_system check vma_lookup(addr) and VM_READ
// (-EINVAL for a hole or a PROT_NONE range) and cut each migrate_vma at the VMA's end, with mm's
// vma_lookup request.
//
// The ioctl's range check is the kernel's u64 one (an empty or wrapping range: -EINVAL); a READ,
// WRITE or migration's bounce buffer larger than the machine's RAM fails vmalloc (-ENOMEM); the
// user buffer at cmd.ptr has `ptrPages` (a copy past it: -EFAULT; SNAPSHOT copies each 64-page
// range as it is done, so a failure leaves the earlier ones copied).
//
// How the kernel's locking maps onto an actor:
//   - dmirror->mutex is `Mutex` below. An actor's state changes atomically between messages, so code
//     that runs in one turn holds any lock it takes; the mutex matters when the holder waits across
//     turns: the DMA copy of dmirror_do_read/_do_write (which the kernel does under the mutex) takes
//     `costs.dmaPageNs` per page and waits for mm's dma_read_result. An invalidation arriving then
//     waits for the mutex (its ack is held back) exactly as the kernel's callback sleeps in
//     mutex_lock; a non-blockable one fails mutex_trylock and answers ok=false.
//   - migrate_vma_pages + migrate_vma_finalize are one message here, so dmirror_migrate_finalize_and_map
//     comes after them, under the mutex (as test_hmm.c takes it for finalize_and_map). The PTEs
//     then hold the device pages before their mirror entries exist (in the kernel the migration
//     entries hide them until finalize): a CPU fault in between moves a page back to RAM
//     (migrate_to_ram), and finalize_and_map makes no entry for a page that went
//     (mapsAfterMigrateBack), or its writes would be lost.
//   - the DMA itself is `dma_access` to mm with translation {via:'mirror', sub, seq}: seq is the
//     notifier sequence that read_retry validated when the mirror entry was programmed.
//   - mmu_interval_read_retry compares the driver's own copy of the subscription's invalidate_seq
//     (written by mmu_interval_set_seq in the callback, protocol.ts). The insert reply does not tell
//     the initial value, so until the first invalidate for a subscription the driver adopts the seq
//     its read_begin returned (no invalidate received ⇒ none acked ⇒ no PTE changed under the pfns).
//
// `unsafe: 'skip-read-retry'` makes the driver program its table without mmu_interval_read_retry:
// the classic mirror bug (pfns from hmm_range_fault used after an invalidation of them was acked),
// which the data oracle (checker.ts) must catch as stale_translation. `unsafe: 'skip-set-seq'` zaps
// and acks without mmu_interval_set_seq (outside its own MIGRATE): the same stale pfns then pass
// read_retry, and mm (which never writes the seq itself, as in Linux) gives no -EBUSY either.
// `unsafe: 'skip-owner-check'` treats MMU_NOTIFY_MIGRATE of its own migrations like any other
// invalidation (zap): the entries of its pages already in device memory are lost, so a migration
// of a range partly on the device reads it back with -ENOENT (hmm-tests' migrate_fault).
import { Continuations, Mutex, type Actor, type ActorId, type Ctx, type Envelope, type Incoming, type Message } from '@svmsim/runtime';
import { AckedInvalidations } from './acked-invalidations.js';
import {
  EBADF, EBUSY, EFAULT, EINVAL, EIO, ENOENT, ENOMEM, EPERM, ERRNO_NAMES, ESRCH, SVMSIM_PFN_DEVICE_PRIVATE, HMM_PFN_ERROR, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE,
  HMM_PFN_VALID, HMM_PFN_WRITE, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_VALID, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM, PAGE_SIZE, PROT_READ, ZERO_PFN, mmu_interval_read_retry, mmu_interval_set_seq,
  type DevicePageFree, type DmaAccess, type DmaReadResult, type HmmRangeFault, type HmmRangeFaultResult, type Invalidate,
  type InvalidateAck, type MakeDeviceExclusive, type MakeDeviceExclusiveResult, type MemremapPagesResult, type MigrateToRam,
  type MigrateToRamResult, type MigrateVmaFinalize, type MigrateVmaFinalizeResult, type MigrateVmaSetup, type MigrateVmaSetupResult,
  type MmRequest, type MmuIntervalNotifier, type MmuIntervalNotifierInsert, type MmuIntervalNotifierInsertResult,
  type MmuIntervalNotifierRemove, type MmuIntervalReadBegin, type MmuIntervalReadBeginResult, type Pid, type VmaLookupResult,
} from './protocol.js';

// =====================================================================================
// uapi: lib/test_hmm_uapi.h
// =====================================================================================

/** The ioctls of /dev/hmm_dmirrorN, in uapi order (_IOWR('H', 0x00 …)). */
export const HMM_DMIRROR_CMDS = [
  'HMM_DMIRROR_READ',
  'HMM_DMIRROR_WRITE',
  'HMM_DMIRROR_MIGRATE_TO_DEV',
  'HMM_DMIRROR_MIGRATE_TO_SYS',
  'HMM_DMIRROR_SNAPSHOT',
  'HMM_DMIRROR_EXCLUSIVE',
  'HMM_DMIRROR_CHECK_EXCLUSIVE',
  'HMM_DMIRROR_RELEASE',
] as const;
export type HmmDmirrorCmdName = (typeof HMM_DMIRROR_CMDS)[number];

/** Values returned per page by HMM_DMIRROR_SNAPSHOT. */
export const HMM_DMIRROR_PROT_ERROR = 0xff;
export const HMM_DMIRROR_PROT_NONE = 0x00;
export const HMM_DMIRROR_PROT_READ = 0x01;
export const HMM_DMIRROR_PROT_WRITE = 0x02;
export const HMM_DMIRROR_PROT_PMD = 0x04;
export const HMM_DMIRROR_PROT_PUD = 0x08;
export const HMM_DMIRROR_PROT_ZERO = 0x10;
export const HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL = 0x20;
export const HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE = 0x30;

// =====================================================================================
// Messages (a test or scenario actor → dmirror, and back)
// =====================================================================================

/** open("/dev/hmm_dmirrorN") by process `pid`. Reply: dmirror_open_result, ret = the fd (>= 0) or -errno. */
export interface DmirrorOpen { type: 'dmirror_open'; pid: Pid }
export interface DmirrorOpenResult { type: 'dmirror_open_result'; ret: number }
/** close(fd): dmirror_fops_release, once no ioctl on the file is running. Reply: dmirror_close_result. */
export interface DmirrorClose { type: 'dmirror_close'; fd: number }
export interface DmirrorCloseResult { type: 'dmirror_close_result'; ret: number }

/**
 * ioctl(fd, cmd, &struct hmm_dmirror_cmd). The file is `fd`, or the first file `pid` opened when
 * `fd` is omitted. `data` (HMM_DMIRROR_WRITE) is the bounce buffer: one word per page.
 * Reply: dmirror_result.
 */
export interface DmirrorCmd {
  type: 'dmirror_cmd';
  cmd: HmmDmirrorCmdName;
  pid: Pid;
  fd?: number;
  addr: number;
  npages: number;
  data?: number[];
  /**
   * The length of the user buffer at cmd.ptr, in pages (one word per page; one byte per page for a
   * snapshot): a copy_to_user / copy_from_user past it fails with -EFAULT. Default: npages.
   */
  ptrPages?: number;
}
/**
 * The ioctl's return value and the struct copied back. As in the kernel, `data` (READ,
 * MIGRATE_TO_DEV, EXCLUSIVE: the words read) and `snapshot` (SNAPSHOT: one HMM_DMIRROR_PROT_* per
 * page) are only given when ret is 0; cpages and faults are the driver's counts either way (the
 * kernel copies them back only on success).
 */
export interface DmirrorResult {
  type: 'dmirror_result';
  ret: number;
  cpages: number;
  faults: number;
  data?: number[];
  /** SNAPSHOT: the bytes copied to the user buffer, also on an error (each 64-page range is copied as it is done). */
  snapshot?: number[];
}

/**
 * Not an ioctl: the harness's question for the pages mm's dump reports as `where: 'device'` (their
 * `value` is the device pfn): the words those device pages hold. Reply: dmirror_devmem_result,
 * with null for a pfn that is not one of this device's pages in use (and then ret -ENOENT).
 */
export interface DmirrorDevmemRead { type: 'dmirror_devmem_read'; dev_pfns: number[] }
export interface DmirrorDevmemResult { type: 'dmirror_devmem_result'; ret: number; values: (number | null)[] }

/**
 * Not an ioctl: the driver's counters now (its summary's numbers: calloc, cfree, devicePagesInUse,
 * migratedToDevice, faults…), for a scenario's `counters` step, as the kernel's debug counters read.
 */
export interface DmirrorStats { type: 'dmirror_stats' }
export interface DmirrorStatsResult { type: 'dmirror_stats_result'; ret: number; counters: Record<string, number> }

export type DmirrorRequest = DmirrorOpen | DmirrorClose | DmirrorCmd | DmirrorDevmemRead | DmirrorStats;
export type DmirrorReply = DmirrorOpenResult | DmirrorCloseResult | DmirrorResult | DmirrorDevmemResult | DmirrorStatsResult;

// =====================================================================================
// Configuration
// =====================================================================================

/** Deliberate bugs, for checking that the data oracle catches them. */
export type DmirrorUnsafe = 'skip-read-retry' | 'skip-set-seq' | 'skip-owner-check';

export interface DmirrorCosts {
  /** One page of DMA (the device copying 4 KiB to or from memory), during which the mutex is held. */
  dmaPageNs: number;
  /**
   * The longest scheduling gap of dmirror_range_fault between mmap_read_unlock and
   * mutex_lock(&dmirror->mutex) (the thread preempted there): each gap is drawn in [0, this] from
   * the seeded rng, and is a timer even at 0, so an invalidation already sent is delivered in it
   * on some seeds.
   */
  unlockToMutexGapNsMax: number;
}
export const DEFAULT_DMIRROR_COSTS: DmirrorCosts = { dmaPageNs: 100, unlockToMutexGapNsMax: 1000 };

export interface DmirrorConfig {
  /** The mm actor. Default 'mm'. */
  mm?: string;
  /** This device's dev_pagemap owner (test_hmm.c: dmirror->mdevice). Default: the actor id. */
  owner?: string;
  /** Device-private pages the device can hold, memremapped in chunks of DMIRROR_CHUNK_PAGES on demand. Default 4096. */
  devicePages?: number;
  costs?: Partial<DmirrorCosts>;
  unsafe?: DmirrorUnsafe;
  /** Timeout of each request to mm (ns); none by default (the kernel waits). Expiry: -ETIMEDOUT. */
  requestTimeoutNs?: number;
  /** dmirror_range_fault's time bound (HMM_RANGE_DEFAULT_TIMEOUT). Default 1000 ms. */
  rangeFaultTimeoutNs?: number;
  /** Simulation bound on attempts of one dmirror_range_fault (a zero-cost loop never reaches the time bound). */
  rangeFaultMaxAttempts?: number;
  /** Simulation bound on the do_read/do_write → dmirror_fault rounds of one command (unbounded in the kernel). */
  maxFaultRounds?: number;
  /** The machine's RAM in pages: vmalloc of a READ/WRITE bounce buffer larger than it fails (-ENOMEM). Default 2^20. */
  ramPages?: number;
}

/** include/linux/hmm.h: HMM_RANGE_DEFAULT_TIMEOUT = 1000 ms; dmirror_range_fault returns -EBUSY after it. */
export const HMM_RANGE_DEFAULT_TIMEOUT_NS = 1000e6;
/** Attempts (read_begin … read_retry) of one dmirror_range_fault before -EBUSY, whatever the time. */
export const DMIRROR_RANGE_FAULT_MAX_ATTEMPTS = 1000;
/** Rounds of one READ/WRITE (each faults the rest of the range) before -EBUSY. */
export const DMIRROR_MAX_FAULT_ROUNDS = 1000;
/** DEVMEM_CHUNK_SIZE (256 MiB in the kernel), scaled down: the pages of one memremap_pages. */
export const DMIRROR_CHUNK_PAGES = 256;
/** unsigned long pfns[64]: the pages of one hmm_range / migrate_vma. */
export const DMIRROR_RANGE_PAGES = 64;
/** mmu_interval_notifier_insert(&dmirror->notifier, mm, 0, ULONG_MAX & PAGE_MASK): every simulated address is below 2^32. */
export const DMIRROR_NOTIFIER_LENGTH = 2 ** 32;
/** Answers to requests to mm that never came. */
export const ETIMEDOUT = -110;
/** Default of DmirrorConfig.ramPages (4 GiB). */
export const DMIRROR_RAM_PAGES = 2 ** 20;

/**
 * The ioctl's range check, in the kernel's u64 arithmetic: `cmd.addr >= cmd.addr + (cmd.npages <<
 * PAGE_SHIFT)` is -EINVAL, so an empty range and one whose end wraps past 2^64 are refused.
 */
export function dmirrorRangeWraps(addr: number, npages: number): boolean {
  const U64 = (1n << 64n) - 1n;
  const a = BigInt(addr) & U64;
  return a >= ((a + ((BigInt(npages) << 12n) & U64)) & U64);
}

// =====================================================================================
// State
// =====================================================================================

/** An xarray entry of dmirror->pt, with its tag (DPT_XA_TAG_WRITE / DPT_XA_TAG_ATOMIC, or none). */
interface PtEntry {
  /** A system pfn (ZERO_PFN for the zero page), or a device pfn of this device when `dev`. */
  pfn: number;
  tag: 'read' | 'write' | 'atomic';
  /** The pfn is a device-private page of this device: accessed in device memory, not through mm. */
  dev: boolean;
  /** The notifier sequence the entry was programmed under (the translation's `seq`). */
  seq: number;
}

/** struct dmirror: one open file. */
interface Mirror {
  fd: number;
  pid: Pid;
  notifier: Notifier;
  /** dmirror->pt: page number → entry. */
  pt: Map<number, PtEntry>;
  mutex: Mutex;
  /** ioctls running on the file; release waits for them (the file's refcount). */
  inflight: number;
  closing: (() => void) | null;
}

/** A subscription of this driver: the file's own, or a snapshot's temporary one (struct dmirror_interval). */
interface Notifier extends MmuIntervalNotifier {
  kind: 'mirror' | 'snapshot';
  file: Mirror;
  /** An invalidate has set invalidate_seq (else it is adopted from read_begin, see the header). */
  known: boolean;
}

/** A device-private page in use: its content and the virtual page it backs. */
interface DevPage {
  value: number;
  pid: Pid;
  vpn: number;
  /** migrate_to_ram has handed its content to a RAM page: no mirror entry may point at it any more. */
  migratedOut?: boolean;
}

interface Cmd {
  env: Envelope<Message>;
  m: DmirrorCmd;
  file: Mirror;
  cpages: number;
  faults: number;
  data?: number[];
  snapshot?: number[];
}

type Reply = Message & { ret?: number };

const errName = (ret: number): string => ERRNO_NAMES[ret] ?? (ret === ETIMEDOUT ? 'ETIMEDOUT' : String(ret));

export function createDmirror(config: unknown, id: ActorId): Actor<Message> {
  return new Dmirror(validateConfig(config), id);
}

function validateConfig(config: unknown): DmirrorConfig {
  const c = (config ?? {}) as DmirrorConfig;
  if (c.devicePages !== undefined && (!Number.isInteger(c.devicePages) || c.devicePages < 0)) {
    throw new Error(`dmirror config: devicePages must be an integer >= 0, got ${JSON.stringify(c.devicePages)}`);
  }
  if (c.unsafe !== undefined && c.unsafe !== 'skip-read-retry' && c.unsafe !== 'skip-set-seq' && c.unsafe !== 'skip-owner-check') throw new Error(`dmirror config: unknown unsafe mode ${JSON.stringify(c.unsafe)}`);
  return c;
}

class Dmirror implements Actor<Message> {
  private ctx!: Ctx<Message>;
  private readonly mm: string;
  private readonly owner: string;
  private readonly costs: DmirrorCosts;
  private readonly rangeFaultTimeoutNs: number;
  private readonly rangeFaultMaxAttempts: number;
  private readonly maxFaultRounds: number;
  private readonly skipReadRetry: boolean;
  private readonly skipSetSeq: boolean;
  private readonly skipOwnerCheck: boolean;
  /** An unsafe mode's own count of the accesses its bug makes (acked-invalidations.ts); null when safe. */
  private readonly ackedInvalidations: AckedInvalidations | null;
  private readonly requestTimeoutNs: number | undefined;
  private readonly ramPages: number;

  private readonly files = new Map<number, Mirror>();
  private nextFd = 3;
  private readonly notifiers = new Map<number, Notifier>();
  /** Requests to mm and timers in flight, with what to do when each completes. */
  private readonly waits = new Continuations<Reply>(() => this.ctx, 'dmirror_timer');

  // Device memory (dmirror_device: devmem_chunks, free_pages, calloc, cfree).
  private readonly deviceCapacity: number;
  private readonly chunks: { base: number; pages: number }[] = [];
  private chunkPending = false;
  private readonly chunkWaiters: (() => void)[] = [];
  private devmemFailed = false;
  private readonly devFree: number[] = [];
  /** Device pages in use, by device pfn. */
  private readonly devMem = new Map<number, DevPage>();

  private readonly stats = {
    opens: 0,
    closes: 0,
    commands: {} as Record<string, number>,
    errors: {} as Record<string, number>,
    /** cmd->faults summed: dmirror_fault calls that succeeded. */
    faults: 0,
    rangeFaults: 0,
    hmmRangeFaults: 0,
    /** hmm_range_fault answered -EBUSY: again. */
    ebusyRetries: 0,
    /** mmu_interval_read_retry said the pfns are stale: again. */
    readRetries: 0,
    /** read_retry skipped (unsafe) where it would have said stale. */
    readRetriesSkipped: 0,
    /** Unsafe modes: DMAs through an entry whose page's invalidation was acked at a newer seq (the bug's act). */
    unsafeBugPaths: 0,
    /** A retry bound was hit (-EBUSY). */
    retryBoundHits: 0,
    invalidations: 0,
    invalidationsByEvent: {} as Record<string, number>,
    /** Non-blockable invalidations refused because the mutex was held (mutex_trylock failed). */
    invalidationsRefused: 0,
    /** Own MMU_NOTIFY_MIGRATE invalidations whose zap was skipped. */
    migrateZapsSkipped: 0,
    zappedEntries: 0,
    dmaReads: 0,
    dmaWrites: 0,
    devReads: 0,
    devWrites: 0,
    snapshots: 0,
    migratedToDevice: 0,
    migratedToSystem: 0,
    migrateToRam: 0,
    /** Device entries finalize_and_map did not make: the page had gone back to RAM in between. */
    mapsAfterMigrateBack: 0,
    calloc: 0,
    cfree: 0,
    warnings: 0,
  };

  constructor(cfg: DmirrorConfig, readonly id: ActorId) {
    this.mm = cfg.mm ?? 'mm';
    this.owner = cfg.owner ?? id;
    this.costs = { ...DEFAULT_DMIRROR_COSTS, ...cfg.costs };
    this.rangeFaultTimeoutNs = cfg.rangeFaultTimeoutNs ?? HMM_RANGE_DEFAULT_TIMEOUT_NS;
    this.rangeFaultMaxAttempts = cfg.rangeFaultMaxAttempts ?? DMIRROR_RANGE_FAULT_MAX_ATTEMPTS;
    this.maxFaultRounds = cfg.maxFaultRounds ?? DMIRROR_MAX_FAULT_ROUNDS;
    this.skipReadRetry = cfg.unsafe === 'skip-read-retry';
    this.skipSetSeq = cfg.unsafe === 'skip-set-seq';
    this.skipOwnerCheck = cfg.unsafe === 'skip-owner-check';
    this.ackedInvalidations = cfg.unsafe !== undefined ? new AckedInvalidations() : null;
    this.requestTimeoutNs = cfg.requestTimeoutNs;
    this.deviceCapacity = cfg.devicePages ?? 4096;
    this.ramPages = cfg.ramPages ?? DMIRROR_RAM_PAGES;
  }

  // ---- Actor ----

  start(ctx: Ctx<Message>): void {
    this.ctx = ctx;
  }

  receive(env: Incoming<Message>, ctx: Ctx<Message>): void {
    this.ctx = ctx;
    if (this.waits.resume(env)) return;
    const m = env.msg as DmirrorRequest | Invalidate | MigrateToRam | DevicePageFree | { type: 'actor_died'; actor: string } | { type: 'request_timeout' };
    switch (m.type) {
      case 'dmirror_open':
        return this.open(env, m);
      case 'dmirror_close':
        return this.close(env, m);
      case 'dmirror_cmd':
        return this.ioctl(env, m);
      case 'invalidate':
        return this.invalidate(env, m);
      case 'migrate_to_ram':
        return this.migrateToRam(env, m);
      case 'device_page_free':
        return this.pageFree(m);
      case 'dmirror_devmem_read':
        return this.devmemRead(env, m);
      case 'dmirror_stats': {
        const counters: Record<string, number> = {};
        for (const [k, v] of Object.entries(this.summary())) if (typeof v === 'number') counters[k] = v;
        return this.answer(env, { type: 'dmirror_stats_result', ret: 0, counters });
      }
      case 'actor_died':
        // The notice (replyTo 0): requests pending on the dead actor were answered already.
        if (ctx.tracing) ctx.trace('dmirror_peer_died', { peer: m.actor });
        return;
      case 'request_timeout':
        return;
      default:
        throw new Error(`${this.id}: unknown message '${(m as Message).type}' from ${env.from}`);
    }
  }

  summary(): Record<string, unknown> {
    let entries = 0;
    for (const f of this.files.values()) entries += f.pt.size;
    return {
      ...this.stats,
      openFiles: this.files.size,
      mirrorEntries: entries,
      devicePagesInUse: this.devMem.size,
      devicePagesMapped: this.chunks.reduce((n, ch) => n + ch.pages, 0),
      pendingCalls: this.waits.pendingRequests,
      unsafe: this.skipReadRetry ? 'skip-read-retry' : this.skipSetSeq ? 'skip-set-seq' : this.skipOwnerCheck ? 'skip-owner-check' : null,
    };
  }

  // ---- messaging helpers ----

  private answer(env: Envelope<Message>, msg: DmirrorReply | InvalidateAck | MigrateToRamResult): void {
    if (this.ackedInvalidations && msg.type === 'invalidate_ack' && msg.ok) this.ackedInvalidations.acked(env.msg as Invalidate);
    this.ctx.reply(env, msg);
  }

  /** Unsafe modes: a DMA about to go through an entry the checker will call stale is the bug's act. */
  private countBugPath(sub: number, addr: number, seq: number): void {
    if (this.ackedInvalidations?.stale(sub, addr, seq)) this.stats.unsafeBugPaths++;
  }

  /** A request to mm, resumed with its reply, a request_timeout or an actor_died. */
  private call(msg: MmRequest, then: (reply: Reply) => void): void {
    this.waits.request(this.mm, msg, then, this.requestTimeoutNs);
  }

  /**
   * mmap_read_lock(mm) … mmap_read_unlock(mm) around `body`, which ends with `unlock(then)`;
   * `failed(ret)` when the lock cannot be had (the process is gone: mmget_not_zero failing).
   */
  private withMmapReadLock(pid: Pid, failed: (ret: number) => void, body: (unlock: (then: () => void) => void) => void): void {
    this.call({ type: 'mmap_read_lock', pid }, (l) => {
      const ret = retOf(l);
      if (ret < 0) return failed(ret);
      body((then) => this.call({ type: 'mmap_read_unlock', pid }, () => then()));
    });
  }

  /** Resume after `ns` of simulated time (now when ns is 0). */
  private sleep(ns: number, then: () => void): void {
    this.waits.sleep(ns, then);
  }

  private warn(what: string, fields: Record<string, unknown> = {}): void {
    this.stats.warnings++;
    if (this.ctx.tracing) this.ctx.trace('warn', { what: `${this.id}: ${what}`, ...fields });
  }

  // ---- open / release ----

  /** dmirror_fops_open */
  private open(env: Envelope<Message>, m: DmirrorOpen): void {
    const insert: MmuIntervalNotifierInsert = { type: 'mmu_interval_notifier_insert', pid: m.pid, start: 0, length: DMIRROR_NOTIFIER_LENGTH };
    this.call(insert, (r) => {
      const ret = retOf(r);
      if (ret < 0) return this.answer(env, { type: 'dmirror_open_result', ret });
      const file: Mirror = { fd: this.nextFd++, pid: m.pid, notifier: undefined as unknown as Notifier, pt: new Map(), mutex: new Mutex('dmirror->mutex'), inflight: 0, closing: null };
      file.notifier = this.newNotifier('mirror', file, r as MmuIntervalNotifierInsertResult);
      this.files.set(file.fd, file);
      this.stats.opens++;
      if (this.ctx.tracing) this.ctx.trace('dmirror_open', { pid: m.pid, fd: file.fd, sub: file.notifier.sub });
      this.answer(env, { type: 'dmirror_open_result', ret: file.fd });
    });
  }

  private newNotifier(kind: Notifier['kind'], file: Mirror, r: MmuIntervalNotifierInsertResult): Notifier {
    // Should mm ever report the subscription's initial invalidate_seq in the reply, take it.
    const seq = (r as unknown as { seq?: unknown }).seq;
    const n: Notifier = { kind, file, sub: r.sub, invalidate_seq: typeof seq === 'number' ? seq : 0, known: typeof seq === 'number' };
    this.notifiers.set(n.sub, n);
    return n;
  }

  /** dmirror_fops_release: once no ioctl runs on the file. */
  private close(env: Envelope<Message>, m: DmirrorClose): void {
    const file = this.files.get(m.fd);
    if (!file || file.closing) return this.answer(env, { type: 'dmirror_close_result', ret: EBADF });
    file.closing = () => {
      const remove: MmuIntervalNotifierRemove = { type: 'mmu_interval_notifier_remove', sub: file.notifier.sub };
      this.call(remove, (r) => {
        this.notifiers.delete(file.notifier.sub);
        file.pt.clear(); // xa_destroy
        this.files.delete(file.fd);
        this.stats.closes++;
        this.answer(env, { type: 'dmirror_close_result', ret: Math.min(0, retOf(r)) });
      });
    };
    if (file.inflight === 0) file.closing();
  }

  private fileFor(m: DmirrorCmd): Mirror | undefined {
    if (m.fd !== undefined) {
      const f = this.files.get(m.fd);
      return f && !f.closing ? f : undefined;
    }
    for (const f of this.files.values()) if (f.pid === m.pid && !f.closing) return f;
    return undefined;
  }

  // ---- ioctl ----

  /** dmirror_fops_unlocked_ioctl */
  private ioctl(env: Envelope<Message>, m: DmirrorCmd): void {
    this.stats.commands[m.cmd] = (this.stats.commands[m.cmd] ?? 0) + 1;
    const file = this.fileFor(m);
    const early = (ret: number) => {
      this.stats.errors[errName(ret)] = (this.stats.errors[errName(ret)] ?? 0) + 1;
      this.answer(env, { type: 'dmirror_result', ret, cpages: 0, faults: 0 });
    };
    if (!file) return early(EBADF); // fget of a file never opened (or closed)
    // if (cmd.addr & ~PAGE_MASK) return -EINVAL; if (cmd.addr >= cmd.addr + (cmd.npages << PAGE_SHIFT)) return -EINVAL;
    if (!Number.isSafeInteger(m.addr) || m.addr < 0 || m.addr % PAGE_SIZE !== 0) return early(EINVAL);
    if (!Number.isSafeInteger(m.npages) || m.npages < 0 || dmirrorRangeWraps(m.addr, m.npages)) return early(EINVAL);
    if (m.ptrPages !== undefined && (!Number.isSafeInteger(m.ptrPages) || m.ptrPages < 0)) return early(EFAULT);
    const c: Cmd = { env, m, file, cpages: 0, faults: 0 };
    file.inflight++;
    switch (m.cmd) {
      case 'HMM_DMIRROR_READ':
        return this.readWrite(c, false);
      case 'HMM_DMIRROR_WRITE':
        return this.readWrite(c, true);
      case 'HMM_DMIRROR_MIGRATE_TO_DEV':
        return this.migrateToDevice(c);
      case 'HMM_DMIRROR_MIGRATE_TO_SYS':
        return this.migrateToSystem(c);
      case 'HMM_DMIRROR_SNAPSHOT':
        return this.snapshot(c);
      case 'HMM_DMIRROR_EXCLUSIVE':
        return this.exclusive(c);
      case 'HMM_DMIRROR_CHECK_EXCLUSIVE':
        return this.finish(c, this.checkAtomic(file, m.addr, m.addr + m.npages * PAGE_SIZE));
      case 'HMM_DMIRROR_RELEASE':
        return this.removeChunks(c);
      default:
        file.inflight--;
        return early(EINVAL);
    }
  }

  private finish(c: Cmd, ret: number): void {
    // copy_to_user(cmd->ptr, bounce.ptr, bounce.size) of what was read, once all of it was.
    if (ret === 0 && c.data && c.m.cmd !== 'HMM_DMIRROR_WRITE' && (c.m.ptrPages ?? c.m.npages) < c.m.npages) ret = EFAULT;
    const r: DmirrorResult = { type: 'dmirror_result', ret, cpages: c.cpages, faults: c.faults };
    if (ret === 0 && c.data) r.data = c.data;
    if (c.snapshot && (ret === 0 || c.cpages > 0)) r.snapshot = c.snapshot.slice(0, c.cpages);
    if (ret < 0) this.stats.errors[errName(ret)] = (this.stats.errors[errName(ret)] ?? 0) + 1;
    this.stats.faults += c.faults;
    if (this.ctx.tracing) {
      this.ctx.trace('dmirror_cmd_done', { cmd: c.m.cmd, pid: c.m.pid, fd: c.file.fd, addr: c.m.addr, npages: c.m.npages, ret, cpages: c.cpages, faults: c.faults });
    }
    this.answer(c.env, r);
    if (--c.file.inflight === 0 && c.file.closing) c.file.closing();
  }

  // ---- READ / WRITE ----

  /** dmirror_read / dmirror_write */
  private readWrite(c: Cmd, write: boolean): void {
    const { m, file } = c;
    const end = m.addr + m.npages * PAGE_SIZE;
    // dmirror_bounce_init: vmalloc(size) of a buffer as large as the range.
    if (m.npages > this.ramPages) return this.finish(c, ENOMEM);
    if (write) {
      // copy_from_user(bounce.ptr, cmd->ptr, size)
      if ((m.ptrPages ?? m.npages) < m.npages) return this.finish(c, EFAULT);
      if (!Array.isArray(m.data) || m.data.length < m.npages || !m.data.slice(0, m.npages).every((v) => typeof v === 'number' && Number.isFinite(v))) {
        return this.finish(c, EFAULT);
      }
    } else {
      c.data = new Array<number>(m.npages).fill(0);
    }
    let rounds = 0;
    const round = (): void => {
      file.mutex.lock(() => {
        this.doReadWrite(c, write, (ret) => {
          file.mutex.unlock();
          if (ret !== ENOENT) return this.finish(c, ret);
          if (++rounds > this.maxFaultRounds) {
            this.stats.retryBoundHits++;
            this.warn(`${m.cmd} faulted ${this.maxFaultRounds} times without completing`, { addr: m.addr, npages: m.npages });
            return this.finish(c, EBUSY);
          }
          const start = m.addr + c.cpages * PAGE_SIZE;
          this.fault(file, start, end, write, (r) => {
            if (r) return this.finish(c, r);
            c.faults++;
            round();
          });
        });
      });
    };
    round();
  }

  /**
   * dmirror_do_read / dmirror_do_write from the first page not copied yet, with the mutex held:
   * done(0) when every page is copied, done(-ENOENT) at the first page not mirrored (or not
   * writable, for a write), done(-errno) if a DMA failed. The caller unlocks.
   */
  private doReadWrite(c: Cmd, write: boolean, done: (ret: number) => void): void {
    const { m, file } = c;
    const first = m.addr / PAGE_SIZE;
    const loop = (): void => {
      while (c.cpages < m.npages) {
        const i = c.cpages;
        const vpn = first + i;
        const e = file.pt.get(vpn);
        if (!e || (write && e.tag !== 'write')) return done(ENOENT);
        const addr = vpn * PAGE_SIZE;
        if (e.dev) {
          const page = this.devMem.get(e.pfn);
          if (!page) {
            this.warn('mirror entry names a device page not in use', { pid: file.pid, addr, dev_pfn: e.pfn });
            return done(EFAULT);
          }
          if (write) {
            page.value = m.data![i];
            this.stats.devWrites++;
            if (this.ctx.tracing) this.ctx.trace('dev_write', { pid: file.pid, addr, dev_pfn: e.pfn, value: page.value });
          } else {
            c.data![i] = page.value;
            this.stats.devReads++;
          }
          c.cpages++;
        } else if (write) {
          this.countBugPath(file.notifier.sub, addr, e.seq);
          const dma: DmaAccess = { type: 'dma_access', dev: this.id, pid: file.pid, addr, pfn: e.pfn, write: true, value: m.data![i], tr: { via: 'mirror', sub: file.notifier.sub, seq: e.seq } };
          this.ctx.send(this.mm, dma);
          this.stats.dmaWrites++;
          c.cpages++;
        } else {
          this.countBugPath(file.notifier.sub, addr, e.seq);
          const dma: DmaAccess = { type: 'dma_access', dev: this.id, pid: file.pid, addr, pfn: e.pfn, write: false, tr: { via: 'mirror', sub: file.notifier.sub, seq: e.seq } };
          this.stats.dmaReads++;
          this.call(dma, (r) => {
            const ret = retOf(r);
            if (ret < 0) return done(ret);
            c.data![i] = (r as DmaReadResult).value;
            c.cpages++;
            this.sleep(this.costs.dmaPageNs, loop);
          });
          return;
        }
        if (this.costs.dmaPageNs > 0) return this.sleep(this.costs.dmaPageNs, loop);
      }
      done(0);
    };
    loop();
  }

  // ---- faulting ----

  /** dmirror_fault: [start, end) in hmm_ranges of DMIRROR_RANGE_PAGES pages. */
  private fault(file: Mirror, start: number, end: number, write: boolean, done: (ret: number) => void): void {
    const defaultFlags = HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0);
    const next = (addr: number): void => {
      if (addr >= end) return done(0);
      const rend = Math.min(addr + DMIRROR_RANGE_PAGES * PAGE_SIZE, end);
      this.rangeFault(file, addr, rend, defaultFlags, (ret) => (ret ? done(ret) : next(rend)));
    };
    next(start);
  }

  /**
   * The read_begin / hmm_range_fault / lock + read_retry loop shared by dmirror_range_fault and
   * dmirror_range_snapshot. `locked(res, seq)` runs with the mutex held once the pfns are known to
   * be current; it returns the result and the mutex is released after it.
   */
  private hmmLoop(n: Notifier, start: number, end: number, defaultFlags: number, locked: (res: HmmRangeFaultResult, seq: number) => number, done: (ret: number) => void): void {
    const file = n.file;
    const deadline = this.ctx.now() + this.rangeFaultTimeoutNs;
    let attempts = 0;
    const again = (): void => {
      // if (time_after(jiffies, timeout)) { ret = -EBUSY; goto out; }
      if (this.ctx.now() > deadline || ++attempts > this.rangeFaultMaxAttempts) {
        this.stats.retryBoundHits++;
        this.warn(`hmm_range_fault of [0x${start.toString(16)}, 0x${end.toString(16)}) found no stable sequence after ${attempts - 1} attempts`, { sub: n.sub });
        return done(EBUSY);
      }
      const rb: MmuIntervalReadBegin = { type: 'mmu_interval_read_begin', sub: n.sub };
      this.call(rb, (r) => {
        const ret = retOf(r);
        if (ret < 0) return done(ret);
        const seq = (r as MmuIntervalReadBeginResult).seq;
        if (!n.known) n.invalidate_seq = seq; // no invalidate seen yet: adopt (see the header)
        const hrf: HmmRangeFault = {
          type: 'hmm_range_fault', sub: n.sub, notifier_seq: seq, start, end, default_flags: defaultFlags, pfn_flags_mask: 0,
          dev_private_owner: this.owner,
        };
        this.stats.hmmRangeFaults++;
        // mmap_read_lock(mm); hmm_range_fault(range); mmap_read_unlock(mm)
        // A process that is gone (mmget_not_zero failing): -EFAULT, what hmm_range_fault says of it.
        this.withMmapReadLock(file.pid, (lret) => done(lret === ESRCH ? EFAULT : lret), (unlock) => this.call(hrf, (h) => unlock(() => {
          const hret = retOf(h);
          if (hret === EBUSY) {
            this.stats.ebusyRetries++;
            return again();
          }
          if (hret < 0) return done(hret);
          this.unlockToMutexGap(() => file.mutex.lock(() => {
            if (mmu_interval_read_retry(n, seq)) {
              if (!this.skipReadRetry) {
                file.mutex.unlock();
                this.stats.readRetries++;
                if (this.ctx.tracing) this.ctx.trace('dmirror_read_retry', { sub: n.sub, seq, invalidate_seq: n.invalidate_seq, start, end });
                return again();
              }
              this.stats.readRetriesSkipped++;
              // Where the stale pfns go: a test picks the runs whose skip lands where a read copies it.
              if (this.ctx.tracing) this.ctx.trace('dmirror_read_retry_skipped', { sub: n.sub, seq, invalidate_seq: n.invalidate_seq, start, end });
            }
            const res = locked(h as HmmRangeFaultResult, seq);
            file.mutex.unlock();
            done(res);
          }));
        })));
      });
    };
    again();
  }

  /**
   * The window of dmirror_range_fault (test_hmm.c v6.15) between mmap_read_unlock(mm) and
   * mutex_lock(&dmirror->mutex): nothing holds an invalidation off there, so one can run to its
   * ack in between. That is what mmu_interval_read_retry is for:
   *
   *   dmirror_range_fault                    munmap (or any invalidation)
   *   hmm_range_fault → pfns, seq
   *   mmap_read_unlock                       mmap_write_lock
   *   (preempted)                            invalidate_range_start: callback takes the mutex,
   *                                          set_seq, zaps, unlocks; PTEs cleared, frames freed
   *   mutex_lock
   *   read_retry(seq): true → again          (skip it: the freed frames are mirrored)
   *
   * In the actor model the reply to mmap_read_unlock comes before anything mm sends after it
   * (FIFO), so without a gap the mutex would always be taken first. The gap is a seeded timer.
   */
  private unlockToMutexGap(then: () => void): void {
    this.waits.after(this.ctx.rng.int(this.costs.unlockToMutexGapNsMax + 1), then);
  }

  /** dmirror_range_fault */
  private rangeFault(file: Mirror, start: number, end: number, defaultFlags: number, done: (ret: number) => void): void {
    this.stats.rangeFaults++;
    this.hmmLoop(file.notifier, start, end, defaultFlags, (res, seq) => this.doFault(file, start, defaultFlags, res, seq), done);
  }

  /** dmirror_do_fault, under the mutex: program the mirror's table from the pfns. */
  private doFault(file: Mirror, start: number, defaultFlags: number, res: HmmRangeFaultResult, seq: number): number {
    const first = start / PAGE_SIZE;
    for (let i = 0; i < res.flags.length; i++) {
      const f = res.flags[i];
      // "Since we asked for hmm_range_fault() to populate pages, it shouldn't return an error entry on success."
      if (f & HMM_PFN_ERROR || !(f & HMM_PFN_VALID)) {
        this.warn('WARN_ON: hmm_range_fault succeeded with an invalid pfn', { addr: (first + i) * PAGE_SIZE, flags: f });
        return EFAULT;
      }
      const writable = (f & HMM_PFN_WRITE) !== 0;
      if (!writable && defaultFlags & HMM_PFN_REQ_WRITE) {
        this.warn('WARN_ON: write fault gave a read-only pfn', { addr: (first + i) * PAGE_SIZE });
        return EFAULT;
      }
      file.pt.set(first + i, { pfn: res.pfns[i], tag: writable ? 'write' : 'read', dev: (f & SVMSIM_PFN_DEVICE_PRIVATE) !== 0, seq });
    }
    return 0;
  }

  // ---- the invalidate callbacks ----

  /** dmirror_interval_invalidate, or dmirror_snapshot_invalidate for a snapshot's notifier. */
  private invalidate(env: Envelope<Message>, m: Invalidate): void {
    const ack = (ok: boolean) => this.answer(env, { type: 'invalidate_ack', sub: m.sub, ok });
    this.stats.invalidations++;
    this.stats.invalidationsByEvent[m.event] = (this.stats.invalidationsByEvent[m.event] ?? 0) + 1;
    const n = this.notifiers.get(m.sub);
    if (!n) {
      // Not ours (any more): nothing is mirrored under it.
      this.warn('invalidate for an unknown subscription', { sub: m.sub });
      return ack(true);
    }
    const mutex = n.file.mutex;
    if (n.kind === 'mirror' && m.event === 'MMU_NOTIFY_MIGRATE' && m.owner === this.owner && !this.skipOwnerCheck) {
      // Our own migration: test_hmm.c returns at once, without the mutex (the migration holds it
      // across migrate_vma_pages, which sends this for pages that had no source). The seq is set
      // all the same, so a concurrent dmirror_range_fault retries; the entries are kept.
      mmu_interval_set_seq(this.ctx, env.from, n, m.cur_seq);
      n.known = true;
      this.keep(n.file, m.start, m.end, m.cur_seq);
      return ack(true);
    }
    const run = (): void => {
      // unsafe 'skip-set-seq': zap and ack, but leave sub->invalidate_seq alone. A range fault
      // whose hmm_range_fault read the PTEs before this invalidation changed them then passes
      // read_retry (and mm saw no store, so no -EBUSY and no read_begin wait either).
      if (!this.skipSetSeq) {
        mmu_interval_set_seq(this.ctx, env.from, n, m.cur_seq);
        n.known = true;
      }
      if (n.kind === 'mirror') this.doUpdate(n.file, m.start, m.end);
      mutex.unlock();
      ack(true);
    };
    if (m.blockable) return mutex.lock(run);
    if (!mutex.trylock()) {
      this.stats.invalidationsRefused++;
      return ack(false);
    }
    run();
  }

  /**
   * Our own migration (migrate_vma_setup, or a CPU fault on our page: migrate_to_ram follows): the
   * entries stay, as test_hmm.c keeps them (the migration itself replaces or erases those of the
   * pages that move; the others get their PTE back). They are re-validated at cur_seq: the
   * translation's seq says the device checked them against this invalidation.
   */
  private keep(file: Mirror, start: number, end: number, _curSeq: number): void {
    this.stats.migrateZapsSkipped++;
    const s = Math.floor(start / PAGE_SIZE);
    const e = Math.ceil(end / PAGE_SIZE);
    // Entries of system pages are dropped all the same: between this ack and the end of the
    // migration those pages sit behind migration entries, and a DMA through the old frame would
    // be a stale access (a WRITE would be lost). The device faults them again. Device-private
    // entries stay: the migration moves them ("handled as part of the migration process").
    const drop = (vpn: number, entry: PtEntry | undefined) => {
      if (entry && !entry.dev) file.pt.delete(vpn);
    };
    if (e - s <= file.pt.size) for (let vpn = s; vpn < e; vpn++) drop(vpn, file.pt.get(vpn));
    else for (const [vpn, entry] of [...file.pt]) if (vpn >= s && vpn < e) drop(vpn, entry);
  }

  /**
   * dmirror_do_update: erase the entries of [start, end). Like the kernel's
   * xa_for_each_range(start >> PAGE_SHIFT, end >> PAGE_SHIFT), whose last index is inclusive, this
   * also erases the page at `end` (harmless: the device faults it again).
   */
  private doUpdate(file: Mirror, start: number, end: number): void {
    const s = Math.floor(start / PAGE_SIZE);
    const e = Math.floor(end / PAGE_SIZE) + 1;
    const pt = file.pt;
    const before = pt.size;
    if (e - s <= pt.size) for (let vpn = s; vpn < e; vpn++) pt.delete(vpn);
    else for (const vpn of pt.keys()) if (vpn >= s && vpn < e) pt.delete(vpn);
    this.stats.zappedEntries += before - pt.size;
  }

  // ---- SNAPSHOT ----

  /** dmirror_snapshot */
  private snapshot(c: Cmd): void {
    const { m } = c;
    const end = m.addr + m.npages * PAGE_SIZE;
    const room = m.ptrPages ?? m.npages;
    c.snapshot = [];
    this.stats.snapshots++;
    const next = (addr: number): void => {
      if (addr >= end) return this.finish(c, 0);
      const rend = Math.min(addr + DMIRROR_RANGE_PAGES * PAGE_SIZE, end);
      this.rangeSnapshot(c.file, addr, rend, (ret, perm) => {
        if (ret) return this.finish(c, ret);
        // copy_to_user(uptr, perm, n) of this range: past the user's buffer it faults.
        if (c.cpages + perm.length > room) return this.finish(c, EFAULT);
        for (let i = 0; i < perm.length; i++) c.snapshot!.push(perm[i]);
        c.cpages += perm.length;
        next(rend);
      });
    };
    next(m.addr);
  }

  /** dmirror_range_snapshot: under a temporary interval notifier over [start, end). */
  private rangeSnapshot(file: Mirror, start: number, end: number, done: (ret: number, perm: number[]) => void): void {
    const insert: MmuIntervalNotifierInsert = { type: 'mmu_interval_notifier_insert', pid: file.pid, start, length: end - start };
    this.call(insert, (r) => {
      const ret = retOf(r);
      if (ret < 0) return done(ret, []);
      const n = this.newNotifier('snapshot', file, r as MmuIntervalNotifierInsertResult);
      let perm: number[] = [];
      this.hmmLoop(n, start, end, 0, (res) => {
        perm = Array.from(res.flags, (f, i) => this.mkentry(f, res.pfns[i]));
        return 0;
      }, (ret2) => {
        // out: mmu_interval_notifier_remove(range->notifier)
        this.call({ type: 'mmu_interval_notifier_remove', sub: n.sub }, () => {
          this.notifiers.delete(n.sub);
          done(ret2, perm);
        });
      });
    });
  }

  /** dmirror_mkentry. mm reports SVMSIM_PFN_DEVICE_PRIVATE only for this device's pages (dev_private_owner). */
  private mkentry(flags: number, pfn: number): number {
    if (flags & HMM_PFN_ERROR) return HMM_DMIRROR_PROT_ERROR;
    if (!(flags & HMM_PFN_VALID)) return HMM_DMIRROR_PROT_NONE;
    let perm: number;
    if (flags & SVMSIM_PFN_DEVICE_PRIVATE) perm = this.isLocalDevPfn(pfn) ? HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL : HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE;
    else if (pfn === ZERO_PFN) perm = HMM_DMIRROR_PROT_ZERO;
    else perm = HMM_DMIRROR_PROT_NONE;
    return perm | (flags & HMM_PFN_WRITE ? HMM_DMIRROR_PROT_WRITE : HMM_DMIRROR_PROT_READ);
  }

  // ---- device memory ----

  private isLocalDevPfn(pfn: number): boolean {
    return this.chunks.some((ch) => pfn >= ch.base && pfn < ch.base + ch.pages);
  }

  /**
   * dmirror_allocate_chunk: memremap_pages of chunks until `n` device pages are free or the device
   * is full (`devicePages`). The kernel maps the first chunk at module init and the others on
   * demand; here every chunk is mapped on demand.
   */
  private ensureFree(n: number, then: () => void): void {
    const mapped = this.chunks.reduce((s, ch) => s + ch.pages, 0);
    if (this.devFree.length >= n || mapped >= this.deviceCapacity || this.devmemFailed) return then();
    if (this.chunkPending) {
      this.chunkWaiters.push(() => this.ensureFree(n, then));
      return;
    }
    this.chunkPending = true;
    const pages = Math.min(DMIRROR_CHUNK_PAGES, this.deviceCapacity - mapped);
    this.call({ type: 'memremap_pages', nr_pages: pages }, (r) => {
      this.chunkPending = false;
      const ret = retOf(r);
      if (ret < 0 || r.type !== 'memremap_pages_result') {
        this.devmemFailed = true;
        this.warn(`memremap_pages of ${pages} pages failed (${errName(ret)})`);
      } else {
        const base = (r as MemremapPagesResult).base;
        this.chunks.push({ base, pages });
        for (let i = pages - 1; i >= 0; i--) this.devFree.push(base + i);
        if (this.ctx.tracing) this.ctx.trace('dmirror_chunk', { base, pages });
      }
      for (const w of this.chunkWaiters.splice(0)) w();
      this.ensureFree(n, then);
    });
  }

  /** dmirror_devmem_alloc_page: a free device page, or undefined (the device is full). */
  private allocDevPage(): number | undefined {
    const pfn = this.devFree.pop();
    if (pfn !== undefined) this.stats.calloc++;
    return pfn;
  }

  /** A device page mm never took (its migration failed): straight back to the free list. */
  private freeUnmapped(dpfn: number): void {
    if (this.devMem.delete(dpfn)) this.devFree.push(dpfn);
  }

  /** dmirror_devmem_free (dev_pagemap_ops.page_free). */
  private pageFree(m: DevicePageFree): void {
    if (!this.devMem.delete(m.dev_pfn)) {
      this.warn('page_free of a device page not in use', { dev_pfn: m.dev_pfn });
      return;
    }
    this.stats.cfree++;
    this.devFree.push(m.dev_pfn);
  }

  /** The device page backing (pid, vpn): the mirror's entry, else a search of device memory. */
  private devPageAt(file: Mirror, vpn: number): number | undefined {
    const e = file.pt.get(vpn);
    if (e?.dev && this.devMem.has(e.pfn)) return e.pfn;
    for (const [pfn, p] of this.devMem) if (p.pid === file.pid && p.vpn === vpn) return pfn;
    return undefined;
  }

  /**
   * dmirror_devmem_fault (dev_pagemap_ops.migrate_to_ram): mm has started MMU_NOTIFY_MIGRATE on the
   * page with our owner (our callback kept the entry) and asks for the content; we drop the entry
   * (xa_erase, under the xarray's own lock in the kernel, not dmirror->mutex) and hand it over.
   * The page itself is freed by the device_page_free that follows.
   */
  private migrateToRam(env: Envelope<Message>, m: MigrateToRam): void {
    const page = this.devMem.get(m.dev_pfn);
    if (!page) {
      this.warn('migrate_to_ram of a device page not in use', { dev_pfn: m.dev_pfn });
      return this.answer(env, { type: 'migrate_to_ram_result', ret: EFAULT, value: 0 });
    }
    const vpn = Math.floor(m.addr / PAGE_SIZE);
    for (const f of this.files.values()) {
      const e = f.pid === m.pid ? f.pt.get(vpn) : undefined;
      if (e && e.dev && e.pfn === m.dev_pfn) f.pt.delete(vpn);
    }
    this.stats.migrateToRam++;
    page.migratedOut = true;
    this.answer(env, { type: 'migrate_to_ram_result', ret: 0, value: page.value });
  }

  /** The harness's question for mm's dump (`where: 'device'`): the content of device pages. */
  private devmemRead(env: Envelope<Message>, m: DmirrorDevmemRead): void {
    let ret = 0;
    const values = m.dev_pfns.map((pfn) => {
      const p = this.devMem.get(pfn);
      if (!p) ret = ENOENT;
      return p ? p.value : null;
    });
    this.answer(env, { type: 'dmirror_devmem_result', ret, values });
  }

  // ---- MIGRATE_TO_DEV / MIGRATE_TO_SYS ----

  /** dmirror_migrate_to_device */
  private migrateToDevice(c: Cmd): void {
    const { m, file } = c;
    const end = m.addr + m.npages * PAGE_SIZE;
    const next = (addr: number): void => {
      if (addr >= end) return this.bounceRead(c);
      // test_hmm.c v6.15: vma_lookup(mm, addr); no VMA, or one without VM_READ → -EINVAL; each
      // migrate_vma stops at 64 pages and at the VMA's end. Under mmap_read_lock (taken here per
      // migrate_vma; test_hmm.c holds it over the whole loop).
      this.withMmapReadLock(file.pid, (ret) => this.finish(c, ret), (unlock) => {
      const fail = (ret: number) => unlock(() => this.finish(c, ret));
      this.call({ type: 'vma_lookup', pid: file.pid, addr }, (vr) => {
      const vma = vr as VmaLookupResult;
      if (vr.type !== 'vma_lookup_result' || vma.ret < 0 || !(vma.prot & PROT_READ)) return fail(EINVAL);
      const rend = Math.min(addr + DMIRROR_RANGE_PAGES * PAGE_SIZE, end, vma.end);
      const setup: MigrateVmaSetup = { type: 'migrate_vma_setup', pid: file.pid, start: addr, end: rend, flags: MIGRATE_VMA_SELECT_SYSTEM, pgmap_owner: this.owner };
      this.call(setup, (r) => {
        const ret = retOf(r);
        if (ret < 0 || r.type !== 'migrate_vma_setup_result') return fail(ret < 0 ? ret : EIO);
        const s = r as MigrateVmaSetupResult;
        const n = (rend - addr) / PAGE_SIZE;
        const first = addr / PAGE_SIZE;
        let wanted = 0;
        for (let i = 0; i < n; i++) if (s.src_flags[i] & MIGRATE_PFN_MIGRATE) wanted++;
        this.ensureFree(wanted, () => {
          // dmirror_migrate_alloc_and_copy
          const dst = new Float64Array(n).fill(-1);
          const made: DevPage[] = [];
          for (let i = 0; i < n; i++) {
            if (!(s.src_flags[i] & MIGRATE_PFN_MIGRATE)) continue;
            const dpfn = this.allocDevPage();
            if (dpfn === undefined) continue;
            // No VALID: pte_none or the zero page, copied as zeroes (clear_highpage).
            made[i] = { value: s.src_flags[i] & MIGRATE_PFN_VALID ? s.src_data[i] : 0, pid: file.pid, vpn: first + i };
            this.devMem.set(dpfn, made[i]);
            dst[i] = dpfn;
          }
          // migrate_vma_pages + migrate_vma_finalize are one message; dmirror_migrate_finalize_and_map
          // follows it under the mutex, as in test_hmm.c. Not before: migrate_vma_pages tells every
          // notifier of the range (MMU_NOTIFY_MIGRATE for pages that had no source), and this
          // device's snapshot notifiers take the mutex in their callback. Entries of the pages on
          // the move were dropped when our own MIGRATE came (keep()), so nothing uses them meanwhile.
          {
            const fin: MigrateVmaFinalize = { type: 'migrate_vma_finalize', migration: s.migration, dst_pfns: dst };
            this.call(fin, (fr) => file.mutex.lock(() => {
              const fret = retOf(fr);
              if (fret < 0 || fr.type !== 'migrate_vma_finalize_result') {
                for (let i = 0; i < n; i++) if (dst[i] >= 0) this.freeUnmapped(dst[i]);
                file.mutex.unlock();
                return fail(fret < 0 ? fret : EIO);
              }
              // dmirror_migrate_finalize_and_map maps the pages migrate_vma_pages kept MIGRATE on;
              // migrate_vma_finalize frees the device pages of the others.
              const after = (fr as MigrateVmaFinalizeResult).src_flags ?? s.src_flags;
              for (let i = 0; i < n; i++) {
                if (dst[i] < 0) continue;
                if (!(after[i] & MIGRATE_PFN_MIGRATE)) {
                  this.freeUnmapped(dst[i]);
                  continue;
                }
                // finalize_and_map runs after mm's PTEs already hold the device page (one message
                // here, where the kernel maps before migrate_vma_finalize makes the PTE visible): a
                // CPU fault meanwhile may have moved the page back to RAM. Its entry is not made.
                const page = this.devMem.get(dst[i]);
                if (page !== made[i] || page.migratedOut) {
                  this.stats.mapsAfterMigrateBack++;
                  continue;
                }
                file.pt.set(first + i, { pfn: dst[i], tag: s.src_flags[i] & MIGRATE_PFN_WRITE ? 'write' : 'read', dev: true, seq: file.notifier.invalidate_seq });
              }
              this.stats.migratedToDevice += (fr as MigrateVmaFinalizeResult).migrated;
              file.mutex.unlock();
              unlock(() => next(rend));
            }));
          }
        });
      });
      });
      });
    };
    next(m.addr);
  }

  /**
   * One migrate_vma of [addr, rend) from this device to system memory (dmirror_migrate_to_system's
   * loop body, and dmirror_device_evict_chunk's): dmirror_devmem_fault_alloc_and_copy under the
   * mutex (copy each of our pages out, erase its entry), then migrate_vma_pages + _finalize.
   * done(ret, pages migrated).
   */
  private migrateRangeToSystem(file: Mirror, addr: number, rend: number, done: (ret: number, migrated: number) => void): void {
    const setup: MigrateVmaSetup = { type: 'migrate_vma_setup', pid: file.pid, start: addr, end: rend, flags: MIGRATE_VMA_SELECT_DEVICE_PRIVATE, pgmap_owner: this.owner };
    // Under mmap_read_lock, per migrate_vma (test_hmm.c holds it over dmirror_migrate_to_system's
    // loop; its chunk eviction uses migrate_device_range, which needs none: here it goes through
    // migrate_vma_setup, so it takes the lock too).
    this.withMmapReadLock(file.pid, (ret) => done(ret, 0), (unlock) => this.call(setup, (r) => {
      const finish = (ret: number, migrated: number) => unlock(() => done(ret, migrated));
      const ret = retOf(r);
      if (ret < 0 || r.type !== 'migrate_vma_setup_result') return finish(ret < 0 ? ret : EIO, 0);
      const s = r as MigrateVmaSetupResult;
      const n = (rend - addr) / PAGE_SIZE;
      const first = addr / PAGE_SIZE;
      const dst = new Float64Array(n).fill(-1);
      const dstData = new Float64Array(n);
      file.mutex.lock(() => {
        let migrated = 0;
        for (let i = 0; i < n; i++) {
          if (!(s.src_flags[i] & MIGRATE_PFN_VALID) || !(s.src_flags[i] & MIGRATE_PFN_MIGRATE)) continue;
          const dpfn = this.devPageAt(file, first + i);
          if (dpfn === undefined) continue;
          file.pt.delete(first + i);
          dstData[i] = this.devMem.get(dpfn)!.value;
          dst[i] = 0; // any destination: mm allocates the system page
          migrated++; // dmirror_successful_migrated_pages
        }
        file.mutex.unlock();
        const fin: MigrateVmaFinalize = { type: 'migrate_vma_finalize', migration: s.migration, dst_pfns: dst, dst_data: dstData };
        this.call(fin, (fr) => {
          const fret = retOf(fr);
          if (fret < 0) return finish(fret, 0);
          this.stats.migratedToSystem += migrated;
          finish(0, migrated);
        });
      });
    }));
  }

  private orphanMirror(pid: Pid): Mirror {
    const f: Mirror = { fd: -1, pid, notifier: undefined as unknown as Notifier, pt: new Map(), mutex: new Mutex('dmirror->mutex'), inflight: 0, closing: null };
    return f;
  }

  /** dmirror_migrate_to_system: the same VMA checks as migrate_to_device (test_hmm.c v6.15). */
  private migrateToSystem(c: Cmd): void {
    const { m, file } = c;
    const end = m.addr + m.npages * PAGE_SIZE;
    const next = (addr: number): void => {
      if (addr >= end) return this.finish(c, 0);
      this.call({ type: 'vma_lookup', pid: file.pid, addr }, (vr) => {
        const vma = vr as VmaLookupResult;
        if (vr.type !== 'vma_lookup_result' || vma.ret < 0 || !(vma.prot & PROT_READ)) return this.finish(c, EINVAL);
        const rend = Math.min(addr + DMIRROR_RANGE_PAGES * PAGE_SIZE, end, vma.end);
        this.migrateRangeToSystem(file, addr, rend, (ret, migrated) => {
          if (ret < 0) return this.finish(c, ret);
          c.cpages += migrated;
          next(rend);
        });
      });
    };
    next(m.addr);
  }

  // ---- EXCLUSIVE / CHECK_EXCLUSIVE ----

  /** dmirror_exclusive */
  private exclusive(c: Cmd): void {
    const { m, file } = c;
    const end = m.addr + m.npages * PAGE_SIZE;
    const next = (addr: number): void => {
      if (addr >= end) return this.bounceRead(c);
      const req: MakeDeviceExclusive = { type: 'make_device_exclusive', pid: file.pid, start: addr, end: addr + PAGE_SIZE, owner: this.owner };
      this.call(req, (r) => {
        const ret = retOf(r);
        if (ret < 0 || r.type !== 'make_device_exclusive_result') return this.finish(c, ret < 0 ? ret : EIO);
        const pfn = (r as MakeDeviceExclusiveResult).pfns[0];
        if (ret === 0 || !(pfn >= 0)) return this.finish(c, EBUSY); // the page changed under it: no entry made
        // dmirror_atomic_map. Its seq: our copy, which the EXCLUSIVE invalidation has just set.
        file.mutex.lock(() => {
          file.pt.set(addr / PAGE_SIZE, { pfn, tag: 'atomic', dev: false, seq: file.notifier.invalidate_seq });
          file.mutex.unlock();
          next(addr + PAGE_SIZE);
        });
      });
    };
    next(m.addr);
  }

  /** dmirror_check_atomic */
  private checkAtomic(file: Mirror, start: number, end: number): number {
    for (let vpn = start / PAGE_SIZE; vpn < end / PAGE_SIZE; vpn++) if (file.pt.get(vpn)?.tag === 'atomic') return EPERM;
    return 0;
  }

  /** "Return the migrated data for verification": dmirror_do_read of the whole range under the mutex. */
  private bounceRead(c: Cmd): void {
    if (c.m.npages > this.ramPages) return this.finish(c, ENOMEM); // dmirror_bounce_init
    c.data = new Array<number>(c.m.npages).fill(0);
    c.cpages = 0;
    c.file.mutex.lock(() => {
      this.doReadWrite(c, false, (ret) => {
        c.file.mutex.unlock();
        this.finish(c, ret);
      });
    });
  }

  // ---- RELEASE ----

  /**
   * dmirror_device_remove_chunks → dmirror_device_evict_chunk: every device page in use goes back
   * to system memory. The kernel's migrate_device_range works from device pfns; here each page is
   * migrated through the mapping it was created for, with migrate_vma (SELECT_DEVICE_PRIVATE). The
   * chunks stay memremapped (no message unmaps them) and are reused. Returns 0, as the kernel.
   */
  private removeChunks(c: Cmd): void {
    const pages = [...this.devMem.values()];
    const next = (i: number): void => {
      if (i === pages.length) {
        if (this.devMem.size > 0) this.warn(`HMM_DMIRROR_RELEASE left ${this.devMem.size} device pages in use`);
        return this.finish(c, 0);
      }
      const p = pages[i];
      // The page's process may have no open file any more: migrate it all the same.
      const file = [...this.files.values()].find((f) => f.pid === p.pid) ?? this.orphanMirror(p.pid);
      this.migrateRangeToSystem(file, p.vpn * PAGE_SIZE, (p.vpn + 1) * PAGE_SIZE, () => next(i + 1));
    };
    next(0);
  }
}

/** The errno of a reply from mm: its `ret`, or the runtime's answer when mm never answered. */
function retOf(r: Reply): number {
  if (r.type === 'request_timeout') return ETIMEDOUT;
  if (r.type === 'actor_died') return EIO;
  return typeof r.ret === 'number' ? r.ret : EIO;
}
