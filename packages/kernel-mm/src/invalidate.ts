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
// Two passes (`notifierPasses: 2`, the RFC "mm/mmu_notifier: Allow multiple struct
// mmu_interval_notifier passes", v1 of 2025-08-09; the protocol is stated in protocol.ts above
// InvalidateMultipass): the loop above calls a subscription whose driver has invalidate_multipass
// with `invalidate_multipass`, which returns as soon as the driver has STARTED its work (zap, TLB
// invalidation issued) with a pass cookie; the loop goes on at once to the next subscription. Once
// every subscription has been called, mn_itree_additional_passes calls each cookie in turn
// (`invalidate_pass`), and each waits for its own work. The devices' flushes overlap: the wait is
// about the LONGEST of them instead of their sum.
//
//      mm                                gpu0                       gpu1
//      invalidate_multipass(sub0) ─────▶ lock; set_seq; zap; issue TLB inval; unlock
//      ◀──────────────────────────────── ack {pass: c0}             (flush 0 running)
//      invalidate_multipass(sub1) ──────────────────────────────────▶ the same
//      ◀──────────────────────────────────────────────────────────── ack {pass: c1}  (both running)
//      invalidate_pass(c0) ────────────▶ wait for flush 0; done
//      invalidate_pass(c1) ─────────────────────────────────────────▶ (flush 1 done by now) done
//      then(0): the caller changes the PTEs
//
// A subscription without the op, under either setting, is called the one-pass way in the first
// loop and blocks it, as in the RFC. The oracle's `invalidate_ack` of a multipass subscription is
// its last pass's answer: only then has its device stopped using the range.
//
// Followed for `owner`: mmu_notifier_range_init_owner (MIGRATE / EXCLUSIVE started by a driver).
import {
  EAGAIN, type DeviceToMm, type Invalidate, type InvalidateAck, type InvalidateMultipass, type InvalidateMultipassAck, type InvalidatePass, type InvalidatePassDone, type MmuNotifyEvent,
} from './protocol.js';
import { assert } from './physmem.js';
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
  /** The second passes the first loop collected (the RFC's additional_passes list), in order. */
  const passes: SecondPass[] = [];
  // Once every first pass has been issued (or the loop stopped at a refusal): the second passes,
  // then the end. ret: 0, or -EAGAIN when a non-blockable callback refused.
  const afterFirstPasses = (ret: number) =>
    mn_itree_additional_passes(k, inv, passes, () => {
      if (ret === 0) {
        acked();
        then(0, inv);
        return;
      }
      // The core undoes its own state; the caller must not call _end.
      p.notifiers.invEnd();
      inv.ended = true;
      k.oracle('invalidate_end', { inv: inv.inv });
      then(EAGAIN, inv);
    });
  const next = (i: number) => {
    if (i === subs.length) return afterFirstPasses(0);
    const sub = subs[i];
    const called = (ok: boolean, pass: number | null) => {
      if (ok && pass !== null) passes.push({ sub, pass });
      if (ok) return next(i + 1);
      if (range.blockable) {
        // WARN_ON(mmu_notifier_range_blockable(range)): continue with the next subscription.
        k.ctx.trace('warn', { what: `${sub.owner} refused a blockable invalidation (invalidate() returned false)`, inv: inv.inv, sub: sub.id });
        return next(i + 1);
      }
      afterFirstPasses(EAGAIN);
    };
    if (k.notifierPasses === 2 && sub.multipass) return callInvalidateMultipass(k, inv, sub, called);
    callInvalidate(k, inv, sub, (ok) => called(ok, null));
  };
  next(0);
  return inv;
}

/** A subscription's pending second pass: its cookie (struct mmu_interval_notifier_pass *). */
interface SecondPass {
  sub: Subscription;
  pass: number;
}

/**
 * mn_itree_additional_passes (RFC v1): call each pending pass in turn; a pass may name another,
 * which goes to the tail. Bounded: a driver naming passes forever is a bug, reported as one.
 */
function mn_itree_additional_passes(k: Kernel, inv: Invalidation, passes: SecondPass[], done: () => void): void {
  let called = 0;
  const limit = ADDITIONAL_PASSES_PER_SUB_MAX * Math.max(1, passes.length);
  const next = () => {
    const p = passes.shift();
    if (p === undefined) return done();
    assert(++called <= limit, `invalidation ${inv.inv}: more than ${ADDITIONAL_PASSES_PER_SUB_MAX} additional passes per subscription`);
    callInvalidatePass(k, inv, p, (more) => {
      if (more !== null) passes.push({ sub: p.sub, pass: more });
      next();
    });
  };
  next();
}

/** The most passes after the first one subscription may ask for (the RFC v2 limits them to one). */
export const ADDITIONAL_PASSES_PER_SUB_MAX = 4;

export function mmu_notifier_invalidate_range_end(k: Kernel, inv: Invalidation): void {
  if (inv.ended) throw new Error(`invalidation ${inv.inv} ended twice`);
  inv.ended = true;
  inv.p.notifiers.invEnd();
  k.oracle('invalidate_end', { inv: inv.inv });
}

/** The callback's range, clipped to the subscription (see the README's departures). */
function invalidateFields(inv: Invalidation, sub: Subscription): Omit<Invalidate, 'type'> {
  const r = inv.range;
  return {
    sub: sub.id, pid: inv.p.pid, start: Math.max(r.start, sub.start), end: Math.min(r.end, sub.last + 1),
    event: r.event, blockable: r.blockable, owner: r.owner, cur_seq: inv.cur_seq,
  };
}

/** One subscription's invalidate() callback, as a request to its driver. */
function callInvalidate(k: Kernel, inv: Invalidation, sub: Subscription, done: (ok: boolean) => void): void {
  const msg: Invalidate = { type: 'invalidate', ...invalidateFields(inv, sub) };
  // sub->invalidate_seq is not touched here: in Linux only the driver's mmu_interval_set_seq writes
  // it (mn_itree_invalidate just passes cur_seq, mm/mmu_notifier.c v6.15); the driver's store
  // reaches mm as an `mmu_interval_set_seq` message before its ack (hmm-range-fault.ts).
  callDriver(k, inv, sub, msg, (reply) => {
    const ok = reply ? (reply as InvalidateAck).ok : true;
    k.oracle('invalidate_ack', { inv: inv.inv, sub: sub.id, dev: sub.owner, ok });
    done(ok);
  });
}

/** The first pass of a multipass subscription (ops->invalidate_multipass). */
function callInvalidateMultipass(k: Kernel, inv: Invalidation, sub: Subscription, done: (ok: boolean, pass: number | null) => void): void {
  const msg: InvalidateMultipass = { type: 'invalidate_multipass', ...invalidateFields(inv, sub) };
  callDriver(k, inv, sub, msg, (reply) => {
    const a = reply as InvalidateMultipassAck | null;
    const ok = a ? a.ok : true;
    const pass = a && a.ok ? a.pass : null;
    if (pass === null) k.oracle('invalidate_ack', { inv: inv.inv, sub: sub.id, dev: sub.owner, ok });
    else k.ctx.trace('invalidate_first_pass', { inv: inv.inv, sub: sub.id, dev: sub.owner, pass });
    done(ok, pass);
  });
}

/** An additional pass: its answer names the next one, or null (the subscription is done: its ack). */
function callInvalidatePass(k: Kernel, inv: Invalidation, p: SecondPass, done: (next: number | null) => void): void {
  const msg: InvalidatePass = { type: 'invalidate_pass', sub: p.sub.id, pass: p.pass, cur_seq: inv.cur_seq };
  callDriver(k, inv, p.sub, msg, (reply) => {
    const next = reply ? (reply as InvalidatePassDone).next : null;
    if (next === null) k.oracle('invalidate_ack', { inv: inv.inv, sub: p.sub.id, dev: p.sub.owner, ok: true });
    done(next);
  });
}

/**
 * A request to the subscription's driver, watched by khungtaskd (a blocked task is reported, not
 * killed; the wait goes on). `done(null)` when the driver died: nobody is left to use the range.
 */
function callDriver(k: Kernel, inv: Invalidation, sub: Subscription, msg: Invalidate | InvalidateMultipass | InvalidatePass, done: (reply: DeviceToMm | null) => void): void {
  const r = inv.range;
  const sentNs = k.ctx.now();
  const hung = k.ctx.after(k.hungTaskTimeoutNs, { type: 'mm_hung_task_check' });
  k.hungChecks.set(hung, () => {
    k.stats.hungTaskWarnings++;
    k.ctx.trace('hung_task', { what: `invalidation ${inv.inv} (${r.event}) waits for ${sub.owner}`, task: r.task, inv: inv.inv, sub: sub.id, waitedNs: k.ctx.now() - sentNs });
  });
  const answers = ANSWER_OF[msg.type];
  k.call(sub.owner, msg, (reply) => {
    k.ctx.cancel(hung);
    k.hungChecks.delete(hung);
    if (reply.type === answers) return done(reply as DeviceToMm);
    // actor_died: nobody is left to use the range.
    k.ctx.trace('warn', { what: `${sub.owner} did not answer ${msg.type} of invalidation ${inv.inv}: ${reply.type}`, sub: sub.id });
    done(null);
  });
}

/** The reply each callback request gets. */
const ANSWER_OF = {
  invalidate: 'invalidate_ack',
  invalidate_multipass: 'invalidate_multipass_ack',
  invalidate_pass: 'invalidate_pass_done',
} as const;

export const bytes = (vpn: number) => vpn * PAGE_SIZE;
