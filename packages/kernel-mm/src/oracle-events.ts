// The data oracle's vocabulary: the trace events (`ctx.trace(ev, fields)`) from which the checker
// (checker.ts) proves that no acknowledged write was lost and no device used a stale translation.
// `mm` emits them at the moment the change takes effect (after every ack, when the PTEs change),
// so the order of mm's lines is the order in which memory changed. Devices emit `dev_write` for
// writes to their own device-private memory, which never passes through mm.
//
// Identities the checker follows (its own model, rebuilt from these events, never from mm's state):
//   - a private anonymous page: (pid, page address); fork copies it to the child;
//   - a file page: (file, page index); MAP_SHARED mappings of the file alias it; a MAP_PRIVATE
//     mapping aliases it until the process first writes the page (then it is the process's own);
//   - a shared anonymous mapping is a file of its own (`file` = its shm id), shared by fork.
import type { MmuNotifyEvent, Pid } from './protocol.js';

/** A new VMA. `file` is set for file and shared anonymous mappings (shm ids are negative). */
export interface EvMmap { pid: Pid; start: number; end: number; prot: number; shared: boolean; file: number | null; pgoff: number }
/**
 * mremap moved [old_start, old_end) to [new_start, new_end) (a copy of the VMA there, every entry
 * moved with its content); the old range stays as an empty VMA with `dontunmap`, else a munmap of
 * it follows. new_start == old_start: the VMA grew in place.
 */
export interface EvMremap { pid: Pid; old_start: number; old_end: number; new_start: number; new_end: number; dontunmap: boolean }
/** The VMAs in [start, end) are gone (munmap, or a MAP_FIXED mapping replacing them). */
export interface EvMunmap { pid: Pid; start: number; end: number }
export interface EvMprotect { pid: Pid; start: number; end: number; prot: number }
/** MADV_DONTNEED: private anonymous pages read as zero again; private file pages revert to the file. */
export interface EvZap { pid: Pid; start: number; end: number }
/**
 * A private file page became the process's own copy without a write (a COW break by a write pin,
 * FOLL_WRITE gup, or a write fault whose store has not happened yet): from now on it no longer
 * follows the file.
 */
export interface EvCow { pid: Pid; addr: number }
/**
 * The child starts with a copy of every mapping of the parent (shared ones still shared). With
 * `start`/`end` (bytes): the private pages of [start, end) only, copied at this instant (fork
 * copies VMA by VMA, copy_page_range; the first event for a child also makes it, with the
 * parent's VMAs); without them, every page at once.
 */
export interface EvFork { pid: Pid; child: Pid; start?: number; end?: number }
export interface EvProcessExit { pid: Pid }
export interface EvFileCreate { file: number; pages: number }

/** A CPU store that completed: the word is in the page. `pfn` is the frame written. */
export interface EvCpuStore { pid: Pid; addr: number; pfn: number; value: number }
/** A CPU load that completed, and the word it returned. */
export interface EvCpuLoad { pid: Pid; addr: number; pfn: number; value: number }

/**
 * A device access, applied by mm when the message arrived. Facts mm observed at that moment:
 *   pte_ok   — the process's PTE at addr maps pfn;
 *   writable — that PTE allows writes;
 *   pinned   — the frame holds a pin or gup reference;
 *   file/idx — the frame is the page-cache page idx of file (else null).
 */
export interface EvDmaAccess {
  dev: string;
  pid: Pid;
  addr: number;
  pfn: number;
  value: number;
  via: 'pin' | 'mirror';
  sub: number | null;
  seq: number | null;
  pte_ok: boolean;
  writable: boolean;
  pinned: boolean;
  file: number | null;
  idx: number | null;
  /** A bio's DMA (direct I/O): the frame must be pinned (BIO_PAGE_PINNED until bio_release_pages). */
  bio?: boolean;
}

/** invalidate_range_start over the interval-notifier subscriptions `subs` that overlap. */
export interface EvInvalidateStart {
  inv: number;
  pid: Pid;
  start: number;
  end: number;
  event: MmuNotifyEvent;
  blockable: boolean;
  owner: string | null;
  cur_seq: number;
  subs: number[];
  /** Who waits (task.ts) and the kernel function that started it; absent in traces before they were recorded. */
  task?: string;
  caller?: string;
}
/** mm received a subscription's answer to `inv`. */
export interface EvInvalidateAck { inv: number; sub: number; dev: string; ok: boolean }
/** invalidate_range_end: the PTE changes are done. */
export interface EvInvalidateEnd { inv: number }

/** A device wrote its own device-private page that mirrors (pid, addr). Emitted by the device. */
export interface EvDevWrite { pid: Pid; addr: number; dev_pfn: number; value: number }

/**
 * dma-buf (emitted by the exporter, not mm): a buffer `buf` of `exporter` moved to a new placement,
 * after every dynamic importer answered move_notify; `gen` names the new placement.
 */
export interface EvDmabufMove { exporter: string; buf: number; gen: number }
/** An importer device's DMA to page `page` of the buffer, through a mapping of placement `gen`, as it reached the exporter. */
export interface EvP2pAccess { dev: string; exporter: string; buf: number; page: number; gen: number; write: boolean; value: number }

/**
 * A block device's media (emitted by the nvme controller for its direct I/O namespace): a request's
 * final completion. A read gives the words it found; a write with ret 0 is acknowledged and its
 * words are on the media; a write with ret < 0 failed (reported to the caller as failed) and leaves
 * the blocks' content unknown: either the old words or the new ones.
 */
export interface EvBlk { dev: string; nsid: number; slba: number; nlb: number; ret: number; attempts: number; values?: number[] }

export interface OracleEvents {
  mmap: EvMmap;
  munmap: EvMunmap;
  mremap: EvMremap;
  mprotect: EvMprotect;
  zap: EvZap;
  cow: EvCow;
  fork: EvFork;
  process_exit: EvProcessExit;
  file_create: EvFileCreate;
  cpu_store: EvCpuStore;
  cpu_load: EvCpuLoad;
  dma_write: EvDmaAccess;
  dma_read: EvDmaAccess;
  invalidate_start: EvInvalidateStart;
  invalidate_ack: EvInvalidateAck;
  invalidate_end: EvInvalidateEnd;
  dev_write: EvDevWrite;
  dmabuf_move: EvDmabufMove;
  p2p_access: EvP2pAccess;
  blk_read: EvBlk;
  blk_write: EvBlk;
}
