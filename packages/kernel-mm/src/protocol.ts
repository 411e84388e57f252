// The public interface of `mm`: every message a process, a driver or the harness exchanges with it,
// and the kernel's constants. Drivers import this file and nothing else of the package, as real
// drivers include <linux/mmu_notifier.h>, <linux/hmm.h> and <linux/mm.h>.
//
// Versions followed: FOLL_* from include/linux/mm_types.h and mm/internal.h (v6.6–v6.15);
// mmu_notifier_event from include/linux/mmu_notifier.h (v6.15); HMM_PFN_* from include/linux/hmm.h;
// MIGRATE_* from include/linux/migrate.h; errno values from include/uapi/asm-generic/errno*.h.
//
// Addresses are byte addresses (numbers; every simulated address is below 2^52). Page contents
// are one word per page, held as an integer-valued double (exact below 2^53).

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;

// ---- errno (negated, as the kernel returns them) ----
export const EPERM = -1;
export const ENOENT = -2;
export const ESRCH = -3;
export const EINTR = -4;
export const EIO = -5;
export const EBADF = -9;
export const EAGAIN = -11;
export const ENOMEM = -12;
export const EFAULT = -14;
export const EBUSY = -16;
export const EEXIST = -17;
export const EINVAL = -22;
export const EOVERFLOW = -75;
export const EOPNOTSUPP = -95;
/** A P2P mapping or pin the PCI topology or the queue refuses (drivers/pci/p2pdma.c, mm/gup.c). */
export const EREMOTEIO = -121;
export const ERRNO_NAMES: Record<number, string> = {
  [EPERM]: 'EPERM', [ENOENT]: 'ENOENT', [ESRCH]: 'ESRCH', [EINTR]: 'EINTR', [EIO]: 'EIO', [EBADF]: 'EBADF', [EAGAIN]: 'EAGAIN', [ENOMEM]: 'ENOMEM',
  [EFAULT]: 'EFAULT', [EBUSY]: 'EBUSY', [EEXIST]: 'EEXIST', [EINVAL]: 'EINVAL', [EOVERFLOW]: 'EOVERFLOW', [EOPNOTSUPP]: 'EOPNOTSUPP', [EREMOTEIO]: 'EREMOTEIO',
};

// ---- mmap / mprotect / madvise (include/uapi/asm-generic/mman-common.h, mman.h) ----
export const PROT_NONE = 0x0;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const PROT_EXEC = 0x4;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_POPULATE = 0x8000;
export const MADV_DONTNEED = 4;
export const MADV_FREE = 8;
export const MADV_MERGEABLE = 12;
export const MADV_UNMERGEABLE = 13;
export const MADV_PAGEOUT = 21;
export const MREMAP_MAYMOVE = 1;
export const MREMAP_FIXED = 2;
export const MREMAP_DONTUNMAP = 4;

// ---- gup flags (include/linux/mm_types.h; FOLL_PIN is internal, mm/internal.h) ----
export const FOLL_WRITE = 1 << 0;
export const FOLL_GET = 1 << 1;
export const FOLL_DUMP = 1 << 2;
export const FOLL_FORCE = 1 << 3;
export const FOLL_NOWAIT = 1 << 4;
export const FOLL_NOFAULT = 1 << 5;
export const FOLL_HWPOISON = 1 << 6;
export const FOLL_ANON = 1 << 7;
export const FOLL_LONGTERM = 1 << 8;
export const FOLL_SPLIT_PMD = 1 << 9;
export const FOLL_PCI_P2PDMA = 1 << 10;
export const FOLL_INTERRUPTIBLE = 1 << 11;
export const FOLL_HONOR_NUMA_FAULT = 1 << 12;
/** Internal (mm/internal.h, __FOLL_PRIVATE_BASE = 16): set by pin_user_pages*(), never by callers. */
export const FOLL_PIN = 1 << 19;
/** include/linux/mm.h: a pin adds this to the refcount of a small folio. */
export const GUP_PIN_COUNTING_BIAS = 1 << 10;

// ---- mmu_notifier_event (include/linux/mmu_notifier.h) ----
export const MMU_NOTIFY_EVENTS = [
  'MMU_NOTIFY_UNMAP',
  'MMU_NOTIFY_CLEAR',
  'MMU_NOTIFY_PROTECTION_VMA',
  'MMU_NOTIFY_PROTECTION_PAGE',
  'MMU_NOTIFY_SOFT_DIRTY',
  'MMU_NOTIFY_RELEASE',
  'MMU_NOTIFY_MIGRATE',
  'MMU_NOTIFY_EXCLUSIVE',
] as const;
export type MmuNotifyEvent = (typeof MMU_NOTIFY_EVENTS)[number];

// ---- hmm_range_fault pfn flags (include/linux/hmm.h) ----
// The kernel packs flags into the top bits of each 64-bit pfn entry (HMM_PFN_VALID = bit 63 …).
// A double cannot hold bit 63 beside a pfn, so here each entry is two arrays: `pfns` (Float64Array)
// and `flags` (Uint8Array) with these bits. Input requests use the same bits, as in the kernel
// (HMM_PFN_REQ_FAULT == HMM_PFN_VALID, HMM_PFN_REQ_WRITE == HMM_PFN_WRITE).
export const HMM_PFN_VALID = 1 << 0;
export const HMM_PFN_WRITE = 1 << 1;
export const HMM_PFN_ERROR = 1 << 2;
export const HMM_PFN_REQ_FAULT = HMM_PFN_VALID;
export const HMM_PFN_REQ_WRITE = HMM_PFN_WRITE;
/**
 * svmsim's own bit, not a kernel flag: the v6.15 include/linux/hmm.h has none (the first
 * test_hmm.c, 2020, read a per-range `range->flags[SVMSIM_PFN_DEVICE_PRIVATE]`, a table the later
 * pfn format dropped). The pfn is a device-private page of the caller (`dev_private_owner`), in
 * the device's own pfn space. Kernel drivers derive it from the page,
 * is_device_private_page(hmm_pfn_to_page(pfn)) (test_hmm.c dmirror_mkentry, nouveau's
 * nouveau_hmm_convert_pfn); here a pfn is a number in one of two spaces (frames or device pages),
 * so mm says which.
 */
export const SVMSIM_PFN_DEVICE_PRIVATE = 1 << 7;

// ---- migrate_vma (include/linux/migrate.h) ----
export const MIGRATE_VMA_SELECT_SYSTEM = 1 << 0;
export const MIGRATE_VMA_SELECT_DEVICE_PRIVATE = 1 << 1;
export const MIGRATE_VMA_SELECT_DEVICE_COHERENT = 1 << 2;
export const MIGRATE_PFN_VALID = 1 << 0;
export const MIGRATE_PFN_MIGRATE = 1 << 1;
export const MIGRATE_PFN_WRITE = 1 << 3;

/** The shared zero page: the pfn every anonymous read fault maps until the first write. */
export const ZERO_PFN = -1;

// =====================================================================================
// Messages. Requests name their reply type; every reply carries `ret` (>= 0 or -errno).
// =====================================================================================

export type Pid = number;

// ---- process: syscalls and CPU accesses (from `app`) ----

/** Create an empty process (exec of a new program) named `comm`. Reply: syscall_result, ret = pid. */
export interface ProcessCreate { type: 'process_create'; comm?: string }
export interface Mmap {
  type: 'mmap';
  pid: Pid;
  /** Hint, or the exact address with MAP_FIXED; 0 lets mm choose. */
  addr: number;
  length: number;
  prot: number;
  flags: number;
  /** File id for a file mapping (without MAP_ANONYMOUS). */
  file?: number;
  /** Byte offset in the file, page aligned. */
  offset?: number;
  /**
   * The file is a PCI device's /sys/bus/pci/devices/<p2pmem>/p2pmem/allocate: the VMA maps pages
   * of that provider's published p2pmem (p2pmem_alloc_mmap, drivers/pci/p2pdma.c v6.2+), which mm
   * asks the provider for (p2pmem_alloc). MAP_SHARED only, offset 0.
   */
  p2pmem?: string;
}
export interface Munmap { type: 'munmap'; pid: Pid; addr: number; length: number }
export interface Mprotect { type: 'mprotect'; pid: Pid; addr: number; length: number; prot: number }
export interface Madvise { type: 'madvise'; pid: Pid; addr: number; length: number; advice: number }
/** mremap(addr, old_len, new_len, flags, new_addr): ret the new address or -errno. */
export interface Mremap { type: 'mremap'; pid: Pid; addr: number; old_len: number; new_len: number; flags: number; new_addr?: number }
/** Reply: syscall_result, ret = the child's pid. */
export interface Fork { type: 'fork'; pid: Pid }
export interface Exit { type: 'exit'; pid: Pid }
/** A CPU load or store by one of the process's threads. Reply: cpu_access_result. */
export interface CpuAccess {
  type: 'cpu_access';
  pid: Pid;
  addr: number;
  write: boolean;
  /** The word stored (stores only). */
  value?: number;
}
export interface SyscallResult {
  type: 'syscall_result';
  ret: number;
  /** With some refusals: one line saying why (clear_refs of a value not modelled). */
  error?: string;
}
export interface CpuAccessResult {
  type: 'cpu_access_result';
  /** 0, or -EFAULT for an access the process may not make (SIGSEGV). */
  ret: number;
  /** The word loaded (loads), or stored. */
  value: number;
  /** Faults taken to complete the access (0 when the PTE allowed it). */
  faults: number;
}

// ---- files (setup, from the harness) ----
/** Reply: syscall_result, ret = the file id. */
export interface FileCreate { type: 'file_create'; name: string; pages: number }

// ---- mmu_interval_notifier (from a driver) ----
export interface MmuIntervalNotifierInsert {
  type: 'mmu_interval_notifier_insert';
  pid: Pid;
  start: number;
  length: number;
  /**
   * The driver's mmu_interval_notifier_ops has `invalidate_multipass` (the two-pass RFC, below): under
   * `notifierPasses: 2` mm calls it with `invalidate_multipass` instead of `invalidate`. Absent/false:
   * `invalidate` only, as every driver of a mainline kernel.
   */
  multipass?: boolean;
}
/** Reply to insert: `sub` identifies the subscription in every later message. */
export interface MmuIntervalNotifierInsertResult { type: 'mmu_interval_notifier_insert_result'; ret: number; sub: number }
/** Waits, like the kernel, until no invalidation is running (the callbacks will not be called again). */
export interface MmuIntervalNotifierRemove { type: 'mmu_interval_notifier_remove'; sub: number }
/** Reply: read_begin_result. Waits while this subscription is invalidated in the current epoch. */
export interface MmuIntervalReadBegin { type: 'mmu_interval_read_begin'; sub: number }
export interface MmuIntervalReadBeginResult { type: 'read_begin_result'; ret: number; seq: number }
/**
 * The store of mmu_interval_set_seq (include/linux/mmu_notifier.h, v6.15: WRITE_ONCE of cur_seq into
 * sub->invalidate_seq), made visible to mm. In Linux that field is shared memory that read_begin and
 * hmm_range_fault's mmu_interval_check_retry read; here the driver tells mm, from its invalidate
 * callback, before its ack (FIFO per pair: mm sees it before the ack and before any later request of
 * the driver). mm never writes the field itself when it calls the callback: a driver that skips
 * set_seq (as test_hmm.c and nouveau do on purpose for their own MIGRATE / EXCLUSIVE) leaves it as it
 * was, so read_begin does not wait and hmm_range_fault does not answer -EBUSY. No reply.
 */
export interface MmuIntervalSetSeq { type: 'mmu_interval_set_seq'; sub: number; cur_seq: number }

/**
 * mm → driver: the `invalidate` callback of an mmu_interval_notifier (sent as a request).
 * The driver takes its update lock, calls mmu_interval_set_seq(sub, cur_seq), stops using
 * [start, end) and replies invalidate_ack. ok=false (the callback returning false) is allowed only
 * when !blockable; mm then ends the invalidation with -EAGAIN.
 */
export interface Invalidate {
  type: 'invalidate';
  sub: number;
  pid: Pid;
  start: number;
  end: number;
  event: MmuNotifyEvent;
  blockable: boolean;
  /** range->owner: the pgmap owner for MIGRATE / EXCLUSIVE started by a driver, else null. */
  owner: string | null;
  cur_seq: number;
}
export interface InvalidateAck { type: 'invalidate_ack'; sub: number; ok: boolean }

/*
 * The two-pass invalidation of the RFC "mm/mmu_notifier: Allow multiple struct mmu_interval_notifier
 * passes" (Thomas Hellström, v1 of 2025-08-09, <20250809135137.259427-2-thomas.hellstrom@linux.intel.com>;
 * its users: Matthew Brost's xe_svm patch, and the xe userptr conversion of the later revisions, whose
 * ops were renamed invalidate_start / invalidate_finish). Followed: v1's mm/mmu_notifier.c, with
 * passes limited to two as review asked and v2 did (a pass's answer may still name another, as v1).
 * Enforced by kernel-mm invalidate.ts (mn_itree_invalidate with `notifierPasses: 2`):
 *
 *   first pass   for each overlapping subscription in turn: a multipass one gets
 *                `invalidate_multipass` (the driver sets its seq, zaps, STARTS its TLB invalidation or
 *                preemption and answers at once with a pass cookie, or pass null when it finished
 *                everything itself: v1's GFP_NOWAIT-failed fallback); any other gets `invalidate` and
 *                blocks until its ack, as in a one-pass kernel.
 *   second pass  after every first pass was issued: each cookie, in the order collected, gets
 *                `invalidate_pass`; the driver WAITS for what it started, then answers
 *                invalidate_pass_done (next: another pass or null). No error is reported here.
 *   only then    the caller may change the PTEs (every subscription has stopped using the range).
 *
 * A multipass subscription has stopped using the range when its last pass answers, not at its first
 * pass: the oracle's invalidate_ack is recorded then. On a non-blockable refusal the core still runs
 * the second passes collected so far before it ends the invalidation (v1: mn_itree_additional_passes
 * before mn_itree_inv_end on -EAGAIN).
 */
/** mm → driver, first pass of a multipass subscription (ops->invalidate_multipass). Same fields as `invalidate`. */
export interface InvalidateMultipass extends Omit<Invalidate, 'type'> { type: 'invalidate_multipass' }
/** Reply to invalidate_multipass: ok as invalidate's; `pass` the cookie of the second pass (struct mmu_interval_notifier_pass), or null: done already. */
export interface InvalidateMultipassAck { type: 'invalidate_multipass_ack'; sub: number; ok: boolean; pass: number | null }
/** mm → driver, an additional pass (pass->pass(pass, range, cur_seq)): wait for what the first pass started. */
export interface InvalidatePass { type: 'invalidate_pass'; sub: number; pass: number; cur_seq: number }
/** Reply to invalidate_pass: `next` another pass to call, or null: this subscription is done. */
export interface InvalidatePassDone { type: 'invalidate_pass_done'; sub: number; next: number | null }

// ---- hmm_range_fault (from a driver, holding mmap_read_lock of the mm: else -EINVAL with `error`) ----
export interface HmmRangeFault {
  type: 'hmm_range_fault';
  sub: number;
  notifier_seq: number;
  start: number;
  end: number;
  default_flags: number;
  pfn_flags_mask: number;
  /** Per-page input flags (HMM_PFN_REQ_*), one per page; may be omitted when pfn_flags_mask is 0. */
  flags_in?: Uint8Array;
  /** Device-private pages of this owner are reported, not faulted. */
  dev_private_owner: string | null;
}
export interface HmmRangeFaultResult {
  type: 'hmm_range_fault_result';
  /** 0, -EBUSY (redo read_begin), -EFAULT, -EPERM, -EINVAL. */
  ret: number;
  pfns: Float64Array;
  flags: Uint8Array;
  /** With -EINVAL for a caller not holding mmap_read_lock of the mm: what it got wrong (mmap_assert_locked). */
  error?: string;
}

// ---- mmap_read_lock / mmap_read_unlock (from a driver: mmap-lock.ts states the protocol) ----
/** mmap_read_lock(mm) of pid: the reply (syscall_result, ret 0) comes when the lock is granted; -ESRCH if no such process. */
export interface MmapReadLock { type: 'mmap_read_lock'; pid: Pid }
/** mmap_read_unlock(mm): ret 0, or -EINVAL if the sender holds no read lock on pid. */
export interface MmapReadUnlock { type: 'mmap_read_unlock'; pid: Pid }
/** mmap_write_lock(mm) of pid for a driver: the reply (syscall_result, ret 0) comes when granted; -ESRCH if no such process. */
export interface MmapWriteLock { type: 'mmap_write_lock'; pid: Pid }
/** mmap_write_downgrade(mm): the sender's write lock becomes its read lock; ret 0, or -EINVAL if it holds no write lock on pid. */
export interface MmapWriteDowngrade { type: 'mmap_write_downgrade'; pid: Pid }
/** mmap_write_unlock(mm): ret 0, or -EINVAL if the sender holds no write lock on pid. */
export interface MmapWriteUnlock { type: 'mmap_write_unlock'; pid: Pid }

// ---- vma_lookup (from a driver, under mmap_read_lock: vma-lookup.ts) ----
/** The VMA containing addr of pid, as a driver reads it (vma->vm_file, vm_flags). */
export interface VmaLookup { type: 'vma_lookup'; pid: Pid; addr: number }
/** ret 0, or -EFAULT when no VMA contains addr; `file`: vma->vm_file is set (a file mapping or shared anonymous memory). */
export interface VmaLookupResult { type: 'vma_lookup_result'; ret: number; file: boolean; prot: number; start: number; end: number }

// ---- gup (from a driver) ----
export interface GetUserPages {
  type: 'get_user_pages';
  pid: Pid;
  start: number;
  nr_pages: number;
  gup_flags: number;
  /** pin_user_pages* (FOLL_PIN) rather than get_user_pages* (FOLL_GET). */
  pin: boolean;
  /** The _fast variant: gup_fast's lockless walk first, the usual walk from the first page it refuses. */
  fast?: boolean;
}
export interface GetUserPagesResult {
  type: 'get_user_pages_result';
  /** Pages pinned (may be fewer than asked), or -errno if none. */
  ret: number;
  pfns: Float64Array;
  /** The pages are P2P memory of a PCI device (FOLL_PCI_P2PDMA was given): whose, and where. */
  p2pdma?: GupP2pdma;
}
/**
 * What a driver reads from a returned MEMORY_DEVICE_PCI_P2PDMA page (is_pci_p2pdma_page;
 * to_p2p_pgmap(page->pgmap)->provider and the page's offset in the provider's p2pmem). Set on a
 * get_user_pages_result whose pages are p2pdma pages: gup never mixes them with others (a bio
 * never mixes pgmaps), so one provider and the first page's offset describe them all.
 */
export interface GupP2pdma { provider: string; page: number }
/** unpin_user_pages_dirty_lock (pin=true) or put_page on each (pin=false). Fire and forget. */
export interface UnpinUserPages { type: 'unpin_user_pages'; pfns: Float64Array; make_dirty: boolean; pin: boolean }

// ---- DMA: a device reading or writing memory through a translation ----
/** How the device got the frame it accesses: a pin/gup reference, or a mirror (hmm_range_fault). */
export type Translation = { via: 'pin' } | { via: 'mirror'; sub: number; seq: number };
/** Reply (reads only): dma_read_result. Writes are fire and forget, applied in arrival order. */
export interface DmaAccess {
  type: 'dma_access';
  dev: string;
  pid: Pid;
  addr: number;
  pfn: number;
  write: boolean;
  value?: number;
  tr: Translation;
  /**
   * A bio's DMA (direct I/O, BIO_PAGE_PINNED): the pages are pinned for the bio until its end, so
   * the checker requires the frame to be pinned at this access (rule unpinned_dma).
   */
  bio?: boolean;
}
export interface DmaReadResult { type: 'dma_read_result'; ret: number; value: number }

// ---- device-private memory and migration (from a driver; lib/test_hmm.c's uses) ----
// migrate_vma_setup needs the caller to hold mmap_read_lock of the mm (else -EINVAL with `error`).
export interface MigrateVmaSetup {
  type: 'migrate_vma_setup';
  pid: Pid;
  start: number;
  end: number;
  flags: number;
  pgmap_owner: string;
}
export interface MigrateVmaSetupResult {
  type: 'migrate_vma_setup_result';
  ret: number;
  /** Handle for migrate_vma_pages / migrate_vma_finalize. */
  migration: number;
  /** Per page: MIGRATE_PFN_* flags of the source. */
  src_flags: Uint8Array;
  /** Per page: the source content (what the driver copies). */
  src_data: Float64Array;
  cpages: number;
  /** With -EINVAL for a caller not holding mmap_read_lock of the mm: what it got wrong (mmap_assert_locked). */
  error?: string;
}
/**
 * The driver has copied: dst_pfns[i] >= 0 names the destination (a device-private pfn of the
 * caller for SELECT_SYSTEM; ignored for a migration to system memory), -1 leaves the page.
 * For a migration to system memory `dst_data` holds the content to install.
 */
export interface MigrateVmaFinalize {
  type: 'migrate_vma_finalize';
  migration: number;
  dst_pfns: Float64Array;
  dst_data?: Float64Array;
}
/** `src_flags`: the setup's, with MIGRATE_PFN_MIGRATE cleared where migrate_vma_pages refused the page (the driver reads args.src after it). */
export interface MigrateVmaFinalizeResult { type: 'migrate_vma_finalize_result'; ret: number; migrated: number; src_flags?: Uint8Array }
/** mm → owning driver: a CPU touched a device-private page (dev_pagemap_ops.migrate_to_ram). */
export interface MigrateToRam { type: 'migrate_to_ram'; pid: Pid; addr: number; dev_pfn: number }
/**
 * The page's content, copied out of device memory. The device page is not freed by this: mm sends
 * device_page_free when its last mapping goes (after fork another PTE may still map it).
 * ret < 0: VM_FAULT_SIGBUS.
 */
export interface MigrateToRamResult { type: 'migrate_to_ram_result'; ret: number; value: number }
/** devm_memremap_pages(MEMORY_DEVICE_PRIVATE): a driver's device memory gets struct pages. Reply: memremap_pages_result. */
export interface MemremapPages { type: 'memremap_pages'; nr_pages: number }
/** `base` is the first device pfn of the range; device pfns never collide with RAM pfns. */
export interface MemremapPagesResult { type: 'memremap_pages_result'; ret: number; base: number }
/**
 * mm → a p2pmem provider, from mmap of its p2pmem/allocate file (p2pmem_alloc_mmap:
 * gen_pool_alloc_owner from the provider's pool). Reply: p2pmem_alloc_result, `page` the first
 * page of `nr_pages` contiguous ones of its p2pmem, or ret -ENOMEM.
 */
export interface P2pmemAlloc { type: 'p2pmem_alloc'; nr_pages: number }
export interface P2pmemAllocResult { type: 'p2pmem_alloc_result'; ret: number; page: number }
/** mm → a p2pmem provider: the last reference to one of its pages is gone (p2pdma_page_free → gen_pool_free_owner). */
export interface P2pdmaPageFree { type: 'p2pdma_page_free'; page: number }
/** mm → owning driver: the last reference to a device-private page is gone (dev_pagemap_ops.page_free). */
export interface DevicePageFree { type: 'device_page_free'; dev_pfn: number }
export interface MakeDeviceExclusive { type: 'make_device_exclusive'; pid: Pid; start: number; end: number; owner: string }
export interface MakeDeviceExclusiveResult { type: 'make_device_exclusive_result'; ret: number; pfns: Float64Array }

// ---- /proc/PID/clear_refs and /proc/PID/pagemap (clear-refs.ts) ----
/**
 * A write of `value` to /proc/PID/clear_refs. "4" (CLEAR_REFS_SOFT_DIRTY) is modelled; 1, 2, 3, 5
 * are valid in the kernel and refused here with -EOPNOTSUPP and `error`; anything else is -EINVAL,
 * as clear_refs_write. Reply: syscall_result.
 */
export interface ClearRefs { type: 'clear_refs'; pid: Pid; value: string }
/** A read of /proc/PID/pagemap for nr_pages pages from addr. Reply: pagemap_result. */
export interface PagemapRead { type: 'pagemap_read'; pid: Pid; addr: number; nr_pages: number }
/**
 * Per page, the flags of its 64-bit pagemap entry (Documentation/admin-guide/mm/pagemap.rst) in a
 * byte: PM_PRESENT (bit 63), PM_SWAP (62), PM_FILE (61), PM_MMAP_EXCLUSIVE (56), PM_SOFT_DIRTY (55);
 * `pfns` the PFN field (bits 0-54, as CAP_SYS_ADMIN reads it; -1 when not present).
 */
export interface PagemapResult { type: 'pagemap_result'; ret: number; entries: Uint8Array; pfns: Float64Array }
export const PM_PRESENT = 1 << 0;
export const PM_SWAP = 1 << 1;
export const PM_FILE = 1 << 2;
export const PM_MMAP_EXCLUSIVE = 1 << 3;
export const PM_SOFT_DIRTY = 1 << 4;

// ---- full mmu_notifier (mmu_notifier_register, mmu-notifier-young.ts) ----
/**
 * mmu_notifier_register(subscription, mm) of a secondary MMU with the accessed-bit ops it
 * implements (struct mmu_notifier_ops: clear_flush_young, clear_young, test_young; KVM has all
 * three). Interval notifiers have none of them. Reply: mmu_notifier_register_result.
 */
export interface MmuNotifierRegister { type: 'mmu_notifier_register'; pid: Pid; clear_flush_young: boolean; clear_young: boolean; test_young: boolean }
export interface MmuNotifierRegisterResult { type: 'mmu_notifier_register_result'; ret: number; id: number }
/** mmu_notifier_unregister. Reply: syscall_result. */
export interface MmuNotifierUnregister { type: 'mmu_notifier_unregister'; id: number }
/**
 * mm → the registrant: ops->clear_flush_young for each page address of `addrs` (folio_referenced
 * asks once per reclaim scan for all the candidates it found old in the CPU's PTEs). The reply,
 * mmu_notifier_young_result, says per address whether the secondary MMU had it accessed (and
 * clears its accessed bit).
 */
export interface MmuNotifierClearFlushYoung { type: 'mmu_notifier_clear_flush_young'; id: number; pid: Pid; addrs: Float64Array }
export interface MmuNotifierYoungResult { type: 'mmu_notifier_young_result'; young: Uint8Array }

// ---- operations a scenario triggers ----
/** One task_numa_work pass over pid now (numa-balancing.ts), whether or not the periodic scan is on. Reply: op_result, ret = PTEs updated. */
export interface NumaScan { type: 'numa_scan'; pid: Pid }
export interface ReclaimTrigger { type: 'reclaim'; nr_pages: number }
export interface MigratePages { type: 'migrate_pages'; pid: Pid; addr: number; nr_pages: number }
export interface KsmScan { type: 'ksm_scan' }
export interface Writeback { type: 'writeback' }
/** Reply: dump_result: the content of every mapped virtual page of every live process. */
export interface Dump { type: 'dump' }
export interface DumpResult { type: 'dump_result'; ret: number; pages: DumpedPage[] }
export interface DumpedPage {
  pid: Pid;
  addr: number;
  value: number;
  /**
   * Where the content was found. 'migrating': under a migration entry, so a migration
   * (migrate_pages, migrate_vma) was still open at the dump and the content is not final.
   */
  where: 'ram' | 'zero' | 'swap' | 'file' | 'device' | 'migrating';
}
export interface OpResult { type: 'op_result'; ret: number; [figure: string]: number | string }

// ---- block I/O (mm → a block device: the ramdisk today, nvme later) ----
/** A bio of one page. Reply: bio_done. */
export interface BioSubmit { type: 'bio_submit'; op: 'read' | 'write'; dev: string; block: number; value?: number }
export interface BioDone { type: 'bio_done'; ret: number; value: number }

export type MmRequest =
  | ProcessCreate | Mmap | Munmap | Mprotect | Madvise | Mremap | Fork | Exit | CpuAccess | FileCreate
  | MmuIntervalNotifierInsert | MmuIntervalNotifierRemove | MmuIntervalReadBegin | MmuIntervalSetSeq | HmmRangeFault | VmaLookup
  | MmapReadLock | MmapReadUnlock | MmapWriteLock | MmapWriteDowngrade | MmapWriteUnlock | GetUserPages | UnpinUserPages | DmaAccess | MigrateVmaSetup | MigrateVmaFinalize | MakeDeviceExclusive | MemremapPages
  | ReclaimTrigger | MigratePages | KsmScan | Writeback | Dump
  | ClearRefs | PagemapRead | MmuNotifierRegister | MmuNotifierUnregister | NumaScan;

export type MmReply =
  | SyscallResult | CpuAccessResult | MmuIntervalNotifierInsertResult | MmuIntervalReadBeginResult
  | HmmRangeFaultResult | VmaLookupResult | GetUserPagesResult | DmaReadResult | MigrateVmaSetupResult | MigrateVmaFinalizeResult
  | MakeDeviceExclusiveResult | MemremapPagesResult | DumpResult | OpResult | PagemapResult | MmuNotifierRegisterResult;

/** What mm sends to drivers and block devices. */
export type MmToDevice = Invalidate | InvalidateMultipass | InvalidatePass | MigrateToRam | BioSubmit | DevicePageFree | P2pmemAlloc | P2pdmaPageFree;
export type DeviceToMm = InvalidateAck | InvalidateMultipassAck | InvalidatePassDone | MigrateToRamResult | BioDone | P2pmemAllocResult;

/** What mm sends a secondary MMU registered with mmu_notifier_register, and its answer. */
export type MmToSecondaryMmu = MmuNotifierClearFlushYoung;
export type SecondaryMmuToMm = MmuNotifierYoungResult;

export type MmMessage = MmRequest | MmReply | MmToDevice | DeviceToMm | MmToSecondaryMmu | SecondaryMmuToMm;

// =====================================================================================
// Driver-side helpers: the inline functions of <linux/mmu_notifier.h>. The driver keeps its own
// copy of the subscription's invalidate_seq (written under its update lock, read by read_retry) and
// mmu_interval_set_seq also sends the store to mm (MmuIntervalSetSeq), which holds the copy that
// read_begin and hmm_range_fault read. Only the driver writes it after insert, as in Linux.
// =====================================================================================

export interface MmuIntervalNotifier {
  sub: number;
  invalidate_seq: number;
}

/** Whatever can send a message to mm: the driver's ctx. */
export interface SetSeqSender { send(to: string, msg: MmuIntervalSetSeq): unknown }

/**
 * Call under the driver's update lock from the invalidate callback (mmu_notifier.h asks for it
 * unconditionally; a driver that skips it for its own events, as test_hmm.c does for its own
 * MIGRATE, must know why). `mm` is the actor whose `invalidate` this answers (the envelope's from).
 */
export function mmu_interval_set_seq(ctx: SetSeqSender, mm: string, mni: MmuIntervalNotifier, cur_seq: number): void {
  mni.invalidate_seq = cur_seq;
  ctx.send(mm, { type: 'mmu_interval_set_seq', sub: mni.sub, cur_seq });
}

/** Under the update lock: true if an invalidation intervened since read_begin returned `seq`. */
export function mmu_interval_read_retry(mni: MmuIntervalNotifier, seq: number): boolean {
  return mni.invalidate_seq !== seq;
}

export const pageAlign = (addr: number) => addr - (addr % PAGE_SIZE);
export const isPageAligned = (addr: number) => addr % PAGE_SIZE === 0;
