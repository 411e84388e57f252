// mmu_interval_notifier: the per-mm state of mm/mmu_notifier.c (struct mmu_notifier_subscriptions)
// and the operations on it. Followed: mm/mmu_notifier.c as of v6.6–v6.15 (the seq logic is the
// same since v5.10).
//
// The protocol, as the comment above mn_itree_is_invalidating states it:
//
//   invalidate_seq is ONE counter per mm. Even: idle, or only invalidations that overlap no
//   subscription are running. Odd: at least one running invalidation overlaps a subscription; the
//   tree is then frozen (inserts and removes are deferred to the end of the epoch).
//
//   mn_itree_inv_start_range  active_invalidate_ranges++; if the range overlaps any subscription,
//                             invalidate_seq |= 1 and every overlapping subscription is called
//                             with cur_seq = the (odd) invalidate_seq.
//   mn_itree_inv_end          active_invalidate_ranges--; at 0, if odd: invalidate_seq++ (even),
//                             apply deferred inserts/removes, wake every waiter.
//   read_begin(sub)           seq = sub->invalidate_seq; if seq == mm's invalidate_seq this sub was
//                             invalidated in the running epoch: sleep until the mm's seq changes.
//                             Return seq (the value read before sleeping).
//
// The race read_begin closes (a device faulting while the CPU unmaps):
//
//      device                               mm
//      seq = read_begin(sub)  (even epoch)
//      hmm_range_fault → pfns               invalidate_range_start: seq odd, invalidate(sub, cur_seq)
//                                           driver: lock; set_seq(sub, cur_seq); zap; unlock; ack
//      lock; read_retry(sub, seq) → true    PTEs change; invalidate_range_end: seq even
//      unlock; goto again                   (without the retry the device would map freed pages)
//
// Here the subscription's invalidate_seq is written by the driver only (protocol.ts
// mmu_interval_set_seq: its own copy under its update lock, and an `mmu_interval_set_seq` message
// that mm stores in Subscription.invalidate_seq before the driver's ack arrives, FIFO). mm writes it
// only at insert, as __mmu_interval_notifier_insert does. A driver that skips set_seq leaves it
// unchanged, exactly as in Linux: read_begin does not wait for it and hmm_range_fault does not
// return -EBUSY, so only the driver's own read_retry (also unchanged) could have caught the race.
import type { ActorId } from '@svmsim/runtime';
import { IntervalTree, type IntervalNode } from './interval-tree.js';
import { assert } from './physmem.js';

export interface Subscription {
  readonly id: number;
  readonly pid: number;
  /** Byte addresses, closed interval [start, last] as in struct mmu_interval_notifier. */
  readonly start: number;
  readonly last: number;
  /** The driver actor whose invalidate callback this is. */
  readonly owner: ActorId;
  /** ops->invalidate_multipass is set (the two-pass RFC): used only under notifierPasses 2. */
  readonly multipass: boolean;
  /** sub->invalidate_seq: set at insert, then only by the driver's mmu_interval_set_seq. */
  invalidate_seq: number;
  node: IntervalNode<Subscription> | undefined;
  /** Inserted but waiting for the epoch to end (deferred_list). */
  deferredInsert: boolean;
  /** Remove requested during an epoch: removed at its end. */
  deferredRemove: boolean;
  removed: boolean;
}

export class MmuNotifierSubscriptions {
  /** Starts at 2 (even: idle), as __mmu_notifier_register sets it. */
  invalidate_seq = 2;
  active_invalidate_ranges = 0;
  readonly itree = new IntervalTree<Subscription>();
  private deferred: Subscription[] = [];
  /** The wait queue `wq`: woken at the end of each odd epoch. */
  private wq: (() => void)[] = [];

  /** mn_itree_is_invalidating */
  isInvalidating(): boolean {
    return (this.invalidate_seq & 1) === 1;
  }

  /** mn_itree_inv_start_range: the overlapping subscriptions and the cur_seq they are called with. */
  invStartRange(start: number, end: number): { subs: Subscription[]; cur_seq: number } {
    this.active_invalidate_ranges++;
    const subs: Subscription[] = [];
    this.itree.forEachOverlap(start, end - 1, (node) => subs.push(node.value));
    if (subs.length > 0) this.invalidate_seq |= 1;
    // Each subscription's copy of its seq is set when its callback is called (invalidate.ts): a
    // non-blockable invalidation that stops at a refusal calls some of them only.
    return { subs, cur_seq: this.invalidate_seq };
  }

  /** mn_itree_inv_end */
  invEnd(): void {
    assert(this.active_invalidate_ranges > 0, 'mn_itree_inv_end without a running invalidation');
    this.active_invalidate_ranges--;
    if (this.active_invalidate_ranges > 0 || !this.isInvalidating()) return;
    this.invalidate_seq++;
    assert(!this.isInvalidating(), 'invalidate_seq must be even after the epoch ends');
    for (const sub of this.deferred) {
      if (sub.deferredRemove) {
        if (sub.node) this.itree.remove(sub.node);
        sub.node = undefined;
        sub.removed = true;
      } else if (sub.deferredInsert) {
        sub.node = this.itree.insert(sub.start, sub.last, sub);
      }
      sub.deferredInsert = sub.deferredRemove = false;
    }
    this.deferred = [];
    const woken = this.wq;
    this.wq = [];
    for (const wake of woken) wake();
  }

  /** __mmu_interval_notifier_insert */
  insert(sub: Subscription): void {
    if (this.active_invalidate_ranges > 0) {
      if (this.isInvalidating()) {
        // The tree is frozen: insert at the end of the epoch; the first read_begin waits for it.
        sub.deferredInsert = true;
        this.deferred.push(sub);
        sub.invalidate_seq = this.invalidate_seq;
        return;
      }
      // Only non-overlapping invalidations are running, but which ranges is unknown: assume ours.
      this.invalidate_seq |= 1;
      sub.node = this.itree.insert(sub.start, sub.last, sub);
      sub.invalidate_seq = this.invalidate_seq;
      return;
    }
    assert(!this.isInvalidating(), 'seq odd with no running invalidation');
    sub.node = this.itree.insert(sub.start, sub.last, sub);
    // Odd and different from the mm's seq: read_begin will not wait.
    sub.invalidate_seq = this.invalidate_seq - 1;
  }

  /** mmu_interval_notifier_remove: `done` runs once callbacks can no longer be called. */
  remove(sub: Subscription, done: () => void): void {
    assert(!sub.removed && !sub.deferredRemove, `subscription ${sub.id} removed twice`);
    if (this.isInvalidating()) {
      if (sub.deferredInsert) {
        // Never reached the tree: just drop it from the deferred list.
        this.deferred.splice(this.deferred.indexOf(sub), 1);
        sub.deferredInsert = false;
        sub.removed = true;
        done();
        return;
      }
      sub.deferredRemove = true;
      this.deferred.push(sub);
      const seq = this.invalidate_seq;
      this.waitSeqChange(seq, done);
      return;
    }
    if (sub.node) this.itree.remove(sub.node);
    sub.node = undefined;
    sub.removed = true;
    done();
  }

  /** mmu_interval_read_begin: `done(seq)` now, or once the epoch that invalidated `sub` ends. */
  readBegin(sub: Subscription, done: (seq: number) => void): boolean {
    const seq = sub.invalidate_seq;
    if (seq !== this.invalidate_seq) {
      done(seq);
      return false;
    }
    this.waitSeqChange(seq, () => done(seq));
    return true;
  }

  /** mmu_interval_check_retry, as mm sees the subscription. */
  checkRetry(sub: Subscription, seq: number): boolean {
    return sub.invalidate_seq !== seq;
  }

  /** wait_event(wq, invalidate_seq != seq) */
  private waitSeqChange(seq: number, then: () => void): void {
    const wait = () => {
      if (this.invalidate_seq !== seq) then();
      else this.wq.push(wait);
    };
    wait();
  }

  waiters(): number {
    return this.wq.length;
  }
}
