// Who may change a process's PTEs in a range, and when. The kernel serialises PTE changes with the
// mmap lock (munmap, mprotect, fork take it for write), the page-table lock and the folio lock
// (reclaim, migration, KSM, a fault in progress). Here every operation that changes PTEs holds a
// range lock over the pages it changes, from before its invalidation until its PTE changes are done;
// a fault (CPU, gup or hmm_range_fault) on a page under such a lock waits for it, as a fault on a
// page under migration or reclaim waits on the folio lock.
//
// Readers of a present PTE (a CPU access that needs no fault, an hmm_range_fault snapshot, gup of a
// present page) do not take the lock: in the kernel they may run until the PTE actually changes, and
// the notifier sequence is what makes their results safe.
//
// Grants are FIFO among overlapping waiters: a waiter is never overtaken by a later one that
// overlaps it (no starvation of a large munmap by a stream of single-page faults).
import { assert } from './physmem.js';

interface Held {
  id: number;
  start: number;
  end: number;
  what: string;
}

interface Waiter {
  start: number;
  end: number;
  what: string;
  grant: (id: number) => void;
}

export class RangeLocks {
  private held: Held[] = [];
  private waiting: Waiter[] = [];
  private nextId = 1;

  /** Calls `grant(lockId)` once [start, end) (page numbers) is free of other holders. */
  lock(start: number, end: number, what: string, grant: (id: number) => void): void {
    assert(start < end, `range lock of an empty range [${start}, ${end})`);
    const w: Waiter = { start, end, what, grant };
    if (this.canGrant(w, this.waiting.length)) this.grant(w);
    else this.waiting.push(w);
  }

  /** folio_trylock: the lock id, or -1 if [start, end) is held or waited for (reclaim never waits). */
  tryLock(start: number, end: number, what: string): number {
    const w: Waiter = { start, end, what, grant: () => {} };
    if (!this.canGrant(w, this.waiting.length)) return -1;
    const id = this.nextId++;
    this.held.push({ id, start, end, what });
    return id;
  }

  unlock(id: number): void {
    const i = this.held.findIndex((h) => h.id === id);
    assert(i >= 0, `range unlock of lock ${id} that is not held`);
    this.held.splice(i, 1);
    this.grantWaiters();
  }

  /**
   * Keep only `runs` ([start, end) page ranges inside lock `id`) of a held lock, at once, and let
   * waiters into the rest: a walk that held a whole range while it looked at every PTE keeps the
   * pages it left under migration entries (migrate_vma_collect: the PTL is dropped after the walk,
   * the folio locks stay). Returns the new locks' ids, one per run, in order.
   */
  narrow(id: number, runs: [number, number][], what: string): number[] {
    const i = this.held.findIndex((h) => h.id === id);
    assert(i >= 0, `range narrow of lock ${id} that is not held`);
    const h = this.held[i];
    for (const [s, e] of runs) assert(s < e && s >= h.start && e <= h.end, `range narrow of [${h.start}, ${h.end}) to [${s}, ${e})`);
    this.held.splice(i, 1);
    const ids = runs.map(([start, end]) => this.record({ start, end, what, grant: () => {} }));
    this.grantWaiters();
    return ids;
  }

  private grantWaiters(): void {
    // Grant, in order, every waiter that overlaps neither a holder nor an earlier waiter.
    const still: Waiter[] = [];
    const ready: Waiter[] = [];
    for (const w of this.waiting) {
      const blocked = this.held.some((h) => overlaps(h, w)) || still.some((e) => overlaps(e, w)) || ready.some((e) => overlaps(e, w));
      (blocked ? still : ready).push(w);
    }
    this.waiting = still;
    // Every grant is recorded before any callback runs: a callback that unlocks at once must not
    // let a later waiter in over one of these.
    const granted = ready.map((w) => ({ w, id: this.record(w) }));
    for (const { w, id } of granted) w.grant(id);
  }

  isLocked(vpn: number): boolean {
    return this.held.some((h) => vpn >= h.start && vpn < h.end);
  }

  holders(): string[] {
    return this.held.map((h) => `${h.what} [${h.start}, ${h.end})`);
  }

  get nrWaiting(): number {
    return this.waiting.length;
  }

  get nrHeld(): number {
    return this.held.length;
  }

  private canGrant(w: Waiter, waitersBefore: number): boolean {
    if (this.held.some((h) => overlaps(h, w))) return false;
    for (let i = 0; i < waitersBefore; i++) if (overlaps(this.waiting[i], w)) return false;
    return true;
  }

  private grant(w: Waiter): void {
    w.grant(this.record(w));
  }

  private record(w: Waiter): number {
    const id = this.nextId++;
    this.held.push({ id, start: w.start, end: w.end, what: w.what });
    return id;
  }
}

function overlaps(a: { start: number; end: number }, b: { start: number; end: number }): boolean {
  return a.start < b.end && b.start < a.end;
}
