// mm_struct.mmap_lock: a reader/writer semaphore per process (include/linux/mmap_lock.h over
// kernel/locking/rwsem.c, read in the latest tree). mmap / munmap / mprotect and the madvise
// advices for which madvise_need_mmap_write() is true take it for write; a driver walking user
// pages (amdgpu_ttm_tt_get_user_pages around hmm_range_fault) takes it for read by asking mm.
//
// States: free; R readers (R > 0); one writer. Moves:
//   mmap_read_lock    granted if no writer holds it AND nobody waits (writer-fair: a waiting writer
//                     blocks new readers, as rwsem_down_read_slowpath queues behind a waiter);
//                     else queued.
//   mmap_write_lock   granted if free and nobody waits; else queued.
//   *_unlock          then the queue head is granted: a writer alone, or the run of readers at
//                     the head together (rwsem_mark_wake wakes the readers it finds first).
//   mmap_write_downgrade  the writer becomes a reader of the same owner; the readers at the head
//                     of the queue are woken with it (downgrade_write → rwsem_downgrade_wake).
//   mmap_lock_drop_owner  (actor_died) every lock the dead driver held is released and its
//                     queued requests dropped: a driver that died mid-walk must not wedge munmap.
//
// Protocol with a driver (protocol.ts MmapReadLock / MmapReadUnlock): request mmap_read_lock,
// the reply comes when it is granted; then any number of requests (hmm_range_fault); then
// mmap_read_unlock. A driver may take it for write too (MmapWriteLock / MmapWriteDowngrade /
// MmapWriteUnlock): kfd's svm_range_restore_pages does, to create a range with its notifier, and
// downgrades before faulting; its deferred list worker holds it while it removes ranges. The interleaving the write side must survive:
//   gpu (amdgpu CS)                    app thread
//   mmap_read_lock → granted
//   hmm_range_fault (65536 pages, ms)
//                                      munmap → mmap_write_lock: queued (start_locking)
//   ← hmm_range_fault_result
//   mmap_read_unlock                   → granted (acquire_returned, waited = the rest of the walk)
//                                      unmap_region: the UNMAP invalidation, the zap
// Trace events are the kernel's tracepoints (include/trace/events/mmap_lock.h):
// mmap_lock_start_locking, mmap_lock_acquire_returned (with waitedNs), mmap_lock_released.
import type { Kernel } from './kernel.js';
import { assert } from './physmem.js';
import type { Process } from './process.js';

/** A bound on queued lock requests per mm: past it the run is wrong, not slow. */
const MMAP_LOCK_WAITERS_MAX = 1 << 16;

interface Waiter {
  write: boolean;
  owner: string;
  since: number;
  grant: () => void;
}

export class MmapLock {
  readers = 0;
  writer = false;
  /** Who holds the write lock: a driver actor, or '' for mm's own threads (munmap, mprotect…). */
  writerOwner = '';
  /** Read locks held per owner (a driver actor, or '' for mm's own threads). */
  readonly readersBy = new Map<string, number>();
  readonly waiting: Waiter[] = [];
}

function trace(k: Kernel, p: Process, ev: string, write: boolean, fields: Record<string, unknown> = {}): void {
  if (k.ctx.tracing) k.ctx.trace(ev, { pid: p.pid, write, ...fields });
}

function lock(k: Kernel, p: Process, write: boolean, owner: string, granted: (waitedNs: number) => void): void {
  const l = p.mmapLock;
  const since = k.ctx.now();
  trace(k, p, 'mmap_lock_start_locking', write);
  const grant = () => {
    const waitedNs = k.ctx.now() - since;
    if (write) k.stats.mmapWriteLockWaitNs.push(waitedNs);
    trace(k, p, 'mmap_lock_acquire_returned', write, { waitedNs, success: true });
    granted(waitedNs);
  };
  const free = write ? !l.writer && l.readers === 0 : !l.writer;
  if (free && l.waiting.length === 0) {
    take(l, write, owner);
    return grant();
  }
  assert(l.waiting.length < MMAP_LOCK_WAITERS_MAX, `mmap_lock of pid ${p.pid}: more than ${MMAP_LOCK_WAITERS_MAX} waiters`);
  l.waiting.push({ write, owner, since, grant });
}

function take(l: MmapLock, write: boolean, owner: string): void {
  if (write) {
    assert(!l.writer && l.readers === 0, 'mmap_write_lock granted while held');
    l.writer = true;
    l.writerOwner = owner;
  } else {
    assert(!l.writer, 'mmap_read_lock granted under a writer');
    l.readers++;
    l.readersBy.set(owner, (l.readersBy.get(owner) ?? 0) + 1);
  }
}

/** Grant the queue head: a writer alone, or the run of readers at the head. */
function wake(k: Kernel, p: Process): void {
  const l = p.mmapLock;
  const ready: Waiter[] = [];
  while (l.waiting.length > 0) {
    const w = l.waiting[0];
    if (w.write ? l.writer || l.readers > 0 : l.writer) break;
    l.waiting.shift();
    take(l, w.write, w.owner);
    ready.push(w);
    if (w.write) break;
  }
  // Every grant is recorded before a callback runs (one that unlocks at once must not reorder).
  for (const w of ready) k.bounce(w.grant);
}

export function mmap_read_lock(k: Kernel, p: Process, owner: string, granted: (waitedNs: number) => void): void {
  lock(k, p, false, owner, granted);
}

/**
 * mmap_read_trylock (down_read_trylock): fails if a writer holds the lock or anyone waits
 * (RWSEM_READ_FAILED_MASK has RWSEM_FLAG_WAITERS); never queues.
 */
export function mmap_read_trylock(k: Kernel, p: Process, owner: string): boolean {
  const l = p.mmapLock;
  if (l.writer || l.waiting.length > 0) return false;
  take(l, false, owner);
  trace(k, p, 'mmap_lock_acquire_returned', false, { waitedNs: 0, success: true, trylock: true });
  return true;
}

export function mmap_write_lock(k: Kernel, p: Process, granted: (waitedNs: number) => void, owner = ''): void {
  lock(k, p, true, owner, granted);
}

/** Returns false if `owner` holds no read lock on p (a driver's unbalanced unlock: the caller says -EINVAL). */
export function mmap_read_unlock(k: Kernel, p: Process, owner: string): boolean {
  const l = p.mmapLock;
  const n = l.readersBy.get(owner) ?? 0;
  if (n === 0) return false;
  if (n === 1) l.readersBy.delete(owner);
  else l.readersBy.set(owner, n - 1);
  assert(l.readers > 0, 'mmap_lock reader count negative');
  l.readers--;
  trace(k, p, 'mmap_lock_released', false);
  wake(k, p);
  return true;
}

export function mmap_write_unlock(k: Kernel, p: Process): void {
  const l = p.mmapLock;
  assert(l.writer, `mmap_write_unlock of pid ${p.pid} that is not write-locked`);
  l.writer = false;
  l.writerOwner = '';
  trace(k, p, 'mmap_lock_released', true);
  wake(k, p);
}

/** A driver's write lock: false if `owner` does not hold it (the caller says -EINVAL). */
export function mmap_write_held_by(p: Process, owner: string): boolean {
  return p.mmapLock.writer && p.mmapLock.writerOwner === owner;
}

/**
 * mmap_assert_locked (include/linux/mmap_lock.h, latest tree): does `owner` hold mm's mmap_lock,
 * for read or for write? hmm_range_fault (mm/hmm.c → walk_page_range, which asserts it) and
 * migrate_vma_setup (mm/migrate_device.c: "the caller must hold mmap_read_lock", its page walk
 * asserts it) run only under it; mm checks it for the requester (hmm-range-fault.ts,
 * migrate-device.ts). Per actor: a driver's concurrent commands share its holds.
 */
export function mmap_assert_locked(p: Process, owner: string): boolean {
  return (p.mmapLock.readersBy.get(owner) ?? 0) > 0 || mmap_write_held_by(p, owner);
}

/**
 * The contract check of a driver's request that needs the lock held: null if `owner` holds it;
 * else the violation is counted (MmStats.mmapLockContractViolations, by requester and request),
 * traced (`mmap_assert_locked`, where lockdep would splat) and the one-line error to reply with
 * returned. The kernel has no error return here (a lockdep splat, or a walk racing munmap); a
 * precise -EINVAL says what the driver got wrong.
 */
export function mmap_lock_contract(k: Kernel, p: Process, owner: string, request: string): string | null {
  if (mmap_assert_locked(p, owner)) return null;
  k.stats.mmapLockContractViolations++;
  const key = `${owner}:${request}`;
  k.stats.mmapLockContractViolationsBy[key] = (k.stats.mmapLockContractViolationsBy[key] ?? 0) + 1;
  const error = `mm: ${request}: ${owner} does not hold mmap_lock of pid ${p.pid} (mmap_assert_locked: take mmap_read_lock around it)`;
  k.ctx.trace('mmap_assert_locked', { pid: p.pid, owner, request, error });
  return error;
}

/** downgrade_write: the write lock becomes a read lock of the same owner; queued readers at the head join it. */
export function mmap_write_downgrade(k: Kernel, p: Process): void {
  const l = p.mmapLock;
  assert(l.writer, `mmap_write_downgrade of pid ${p.pid} that is not write-locked`);
  const owner = l.writerOwner;
  l.writer = false;
  l.writerOwner = '';
  take(l, false, owner);
  trace(k, p, 'mmap_lock_released', true, { downgraded: true });
  wake(k, p);
}

/** actor_died: release every lock `owner` held on any mm and drop its queued requests. */
export function mmap_lock_drop_owner(k: Kernel, owner: string): void {
  for (const p of k.procs.values()) {
    const l = p.mmapLock;
    const before = l.waiting.length;
    for (let i = l.waiting.length - 1; i >= 0; i--) if (l.waiting[i].owner === owner) l.waiting.splice(i, 1);
    if (mmap_write_held_by(p, owner)) mmap_write_unlock(k, p);
    const n = l.readersBy.get(owner) ?? 0;
    if (n === 0 && l.waiting.length === before) continue;
    l.readersBy.delete(owner);
    l.readers -= n;
    if (n > 0) trace(k, p, 'mmap_lock_released', false, { owner, dropped: n });
    wake(k, p);
  }
}
