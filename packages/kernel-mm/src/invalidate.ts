// mmu_notifier_invalidate_range_start / _end (include/linux/mmu_notifier.h, mm/mmu_notifier.c
// __mmu_notifier_invalidate_range_start → mn_itree_invalidate, mn_itree_inv_end). v6.6–v6.15.
//
//   start  mn_itree_inv_start_range (seq odd if any subscription overlaps), then each overlapping
//          subscription's invalidate() — here an `invalidate` request to its driver, answered by
//          `invalidate_ack` once the driver has stopped using the range.
//   ...    the caller changes the PTEs (only after every ack: that is the whole point)
//   end    mn_itree_inv_end (seq even at the end of the last overlapping invalidation, wake waiters)
//
// The callbacks are called in turn, as mn_itree_invalidate does (v6.15): the `invalidate` of the
// next overlapping subscription is sent only once the previous one has acked, because in the
// kernel each callback blocks (on its fences, its TLB flush) before the loop calls the next. With
// several devices on one range the wait is therefore the SUM of their callbacks. `then(0)` runs
// after the last ack.
//
//      mm (mn_itree_invalidate)          gpu0                       gpu1
//      invalidate(sub0) ───────────────▶ lock; set_seq; zap;
//                                        TLB flush … done; ack
//      ◀──────────────────────────────── invalidate_ack
//      invalidate(sub1) ──────────────────────────────────────────▶ lock; set_seq; zap;
//                                                                   TLB flush … done; ack
//      ◀─────────────────────────────────────────────────────────── invalidate_ack
//      then(0): the caller changes the PTEs
//
// Blockable ranges: a driver answering ok=false is a driver bug: the kernel WARNs and goes on to
// the next. Non-blockable ranges (the OOM reaper, mmu_notifier_invalidate_range_start_nonblock):
// the first ok=false (the callback returning false because it would have to sleep) makes the core
// end the invalidation itself (mn_itree_inv_end), skip the rest and return -EAGAIN; the caller must
// then not call _end.
//
// Followed for `owner`: mmu_notifier_range_init_owner (MIGRATE / EXCLUSIVE started by a driver).
import { EAGAIN, type Invalidate, type InvalidateAck, type MmuNotifyEvent } from './protocol.js';
import type { Kernel } from './kernel.js';
import type { Process } from './process.js';
import type { Subscription } from './interval-notifier.js';
import { PAGE_SIZE } from './protocol.js';

export interface MmuNotifierRange {
  /** Byte addresses, end exclusive. */
  start: number;
  end: number;
  event: MmuNotifyEvent;
  blockable: boolean;
  owner: string | null;
  /** The task that waits for the drivers (task.ts) and the kernel function that started it: traced, for analysis. */
  task: string;
  caller: string;
}

export interface Invalidation {
  inv: number;
  p: Process;
  range: MmuNotifierRange;
  cur_seq: number;
  subs: Subscription[];
  startNs: number;
  ended: boolean;
}

/** Start an invalidation; `then(0)` once every driver has acked, or `then(-EAGAIN)` (non-blockable). */
export function mmu_notifier_invalidate_range_start(k: Kernel, p: Process, range: MmuNotifierRange, then: (ret: number, inv: Invalidation) => void): Invalidation {
  const { subs, cur_seq } = p.notifiers.invStartRange(range.start, range.end);
  const inv: Invalidation = { inv: k.nextInvId++, p, range, cur_seq, subs, startNs: k.ctx.now(), ended: false };
  k.stats.invalidations++;
  k.stats.invalidationsByEvent[range.event] = (k.stats.invalidationsByEvent[range.event] ?? 0) + 1;
  k.oracle('invalidate_start', {
    inv: inv.inv, pid: p.pid, start: range.start, end: range.end, event: range.event, blockable: range.blockable,
    owner: range.owner, cur_seq, subs: subs.map((s) => s.id), task: range.task, caller: range.caller,
  });
  if (subs.length === 0) {
    then(0, inv);
    return inv;
  }
  const acked = () => k.stats.notifierWaitNs.push(k.ctx.now() - inv.startNs);
  const next = (i: number) => {
    if (i === subs.length) {
      acked();
      then(0, inv);
      return;
    }
    callInvalidate(k, inv, subs[i], (ok) => {
      if (ok) return next(i + 1);
      if (range.blockable) {
        // WARN_ON(mmu_notifier_range_blockable(range)): continue with the next subscription.
        k.ctx.trace('warn', { what: `${subs[i].owner} refused a blockable invalidation (invalidate() returned false)`, inv: inv.inv, sub: subs[i].id });
        return next(i + 1);
      }
      // The core undoes its own state; the caller must not call _end.
      p.notifiers.invEnd();
      inv.ended = true;
      k.oracle('invalidate_end', { inv: inv.inv });
      then(EAGAIN, inv);
    });
  };
  next(0);
  return inv;
}

export function mmu_notifier_invalidate_range_end(k: Kernel, inv: Invalidation): void {
  if (inv.ended) throw new Error(`invalidation ${inv.inv} ended twice`);
  inv.ended = true;
  inv.p.notifiers.invEnd();
  k.oracle('invalidate_end', { inv: inv.inv });
}

/** One subscription's invalidate() callback, as a request to its driver. */
function callInvalidate(k: Kernel, inv: Invalidation, sub: Subscription, done: (ok: boolean) => void): void {
  const r = inv.range;
  const msg: Invalidate = {
    type: 'invalidate', sub: sub.id, pid: inv.p.pid, start: Math.max(r.start, sub.start), end: Math.min(r.end, sub.last + 1),
    event: r.event, blockable: r.blockable, owner: r.owner, cur_seq: inv.cur_seq,
  };
  const sentNs = k.ctx.now();
  // sub->invalidate_seq is not touched here: in Linux only the driver's mmu_interval_set_seq writes
  // it (mn_itree_invalidate just passes cur_seq, mm/mmu_notifier.c v6.15); the driver's store
  // reaches mm as an `mmu_interval_set_seq` message before its ack (hmm-range-fault.ts).
  // khungtaskd: a blocked task is reported, not killed; the wait goes on.
  const hung = k.ctx.after(k.hungTaskTimeoutNs, { type: 'mm_hung_task_check' });
  k.hungChecks.set(hung, () => {
    k.stats.hungTaskWarnings++;
    k.ctx.trace('hung_task', { what: `invalidation ${inv.inv} (${r.event}) waits for ${sub.owner}`, task: r.task, inv: inv.inv, sub: sub.id, waitedNs: k.ctx.now() - sentNs });
  });
  k.call(sub.owner, msg, (reply) => {
    k.ctx.cancel(hung);
    k.hungChecks.delete(hung);
    let ok: boolean;
    if (reply.type === 'invalidate_ack') ok = (reply as InvalidateAck).ok;
    else {
      // actor_died: nobody is left to use the range.
      ok = true;
      k.ctx.trace('warn', { what: `${sub.owner} did not ack invalidation ${inv.inv}: ${reply.type}`, sub: sub.id });
    }
    k.oracle('invalidate_ack', { inv: inv.inv, sub: sub.id, dev: sub.owner, ok });
    done(ok);
  });
}

export const bytes = (vpn: number) => vpn * PAGE_SIZE;
