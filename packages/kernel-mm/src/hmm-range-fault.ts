// hmm_range_fault (mm/hmm.c; read in a >= v6.15 copy and a ~v5.13 copy, same logic) and the
// mmu_interval_notifier requests a driver makes.
//
// The walk, as in the kernel:
//   loop: if mmu_interval_check_retry(notifier, notifier_seq) → -EBUSY (the caller must redo
//         read_begin); walk the range from `last`; a page that needs a fault (per
//         hmm_pte_need_fault: (flags_in[i] & pfn_flags_mask) | default_flags) is faulted with
//         handle_mm_fault(FAULT_FLAG_REMOTE [| WRITE]) and the walk restarts at that page, checking
//         the sequence again first — so a fault that itself invalidated the range (a COW break)
//         returns -EBUSY, as in the kernel.
//   Per page: present → VALID (+WRITE if the PTE is writable); the zero page is a valid read-only
//   page; a device-private page of dev_private_owner → VALID(+WRITE) with its device pfn, never
//   faulted; swap / other device's private / device-exclusive / none → faulted if requested, else
//   0. No VMA, or a VMA without read permission → -EFAULT if a fault was requested, else ERROR.
//   A write request on a VMA without write permission → -EPERM.
// hmm_range_fault takes no page references: the pfns are good only until the next invalidation.
import type { Envelope, Message } from '@svmsim/runtime';
import { FAULT_FLAG_REMOTE, FAULT_FLAG_WRITE, handle_mm_fault } from './fault.js';
import type { Subscription } from './interval-notifier.js';
import type { Kernel } from './kernel.js';
import { mmap_lock_contract } from './mmap-lock.js';
import { PTE_DEVICE_PRIVATE, PTE_KIND_MASK, PTE_MIGRATION, PTE_PRESENT, PTE_PROTNONE, PTE_WRITE } from './page-table.js';
import {
  EBUSY, EFAULT, EINVAL, ENOENT, EPERM, SVMSIM_PFN_DEVICE_PRIVATE, HMM_PFN_ERROR, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE,
  PAGE_SIZE, type HmmRangeFault, type HmmRangeFaultResult, type MmuIntervalNotifierInsert, type MmuIntervalNotifierRemove, type MmuIntervalReadBegin, type MmuIntervalSetSeq,
} from './protocol.js';
import { vmaReadable, vmaWritable } from './vma.js';

/** One request's range is bounded: a page table walk of 2^20 pages at most (4 GiB). */
const HMM_RANGE_PAGES_MAX = 1 << 20;

export function hmm_range_fault(k: Kernel, env: Envelope<Message>, m: HmmRangeFault): void {
  const sub = k.subs.get(m.sub);
  const npages = (m.end - m.start) / PAGE_SIZE;
  const pfns = new Float64Array(Math.max(0, npages | 0));
  const flags = new Uint8Array(Math.max(0, npages | 0));
  const reply = (ret: number, walked: number) => {
    const r: HmmRangeFaultResult = { type: 'hmm_range_fault_result', ret, pfns, flags };
    k.replyAfter(env, r, walked * k.costs.hmmPerPageNs);
  };
  if (!sub || sub.removed) return reply(ENOENT, 0);
  if (!Number.isInteger(npages) || npages > HMM_RANGE_PAGES_MAX) return reply(EINVAL, 0);
  // No check of [start, end) against the notifier's interval: mm/hmm.c (v6.15) hmm_range_fault
  // walks whatever range it is given; pages outside the interval are simply not covered by its
  // invalidations (the caller's problem, as in the kernel).
  if (m.start % PAGE_SIZE !== 0 || m.end % PAGE_SIZE !== 0 || m.end <= m.start) return reply(EINVAL, 0);
  if (m.flags_in !== undefined && m.flags_in.length !== npages) return reply(EINVAL, 0);
  const p = k.proc(sub.pid);
  if (!p) return reply(EFAULT, 0);
  // walk_page_range → mmap_assert_locked: the caller holds mmap_read_lock (Documentation/mm/hmm.rst).
  const unlocked = mmap_lock_contract(k, p, env.from, 'hmm_range_fault');
  if (unlocked !== null) return k.ctx.reply(env, { type: 'hmm_range_fault_result', ret: EINVAL, pfns, flags, error: unlocked });
  k.stats.hmmRangeFaults++;
  const startVpn = m.start / PAGE_SIZE;
  let walked = 0;
  const walk = (from: number): void => {
    if (p.notifiers.checkRetry(sub, m.notifier_seq)) {
      k.stats.hmmEbusy++;
      return reply(EBUSY, walked);
    }
    for (let i = from; i < npages; i++) {
      walked++;
      const vpn = startVpn + i;
      const req = ((m.flags_in ? m.flags_in[i] : 0) & m.pfn_flags_mask) | m.default_flags;
      const wantFault = (req & HMM_PFN_REQ_FAULT) !== 0;
      const wantWrite = wantFault && (req & HMM_PFN_REQ_WRITE) !== 0;
      const vma = p.vmas.find(vpn);
      if (!vma || !vmaReadable(vma)) {
        if (wantFault) return reply(EFAULT, walked);
        flags[i] = HMM_PFN_ERROR;
        continue;
      }
      if (wantWrite && !vmaWritable(vma)) return reply(EPERM, walked);
      const f = p.pt.flags(vpn);
      const kind = f & PTE_KIND_MASK;
      // pte_to_hmm_pfn_flags: a NUMA hinting (protnone) entry has no flags: faulted if asked, else 0.
      if (kind === PTE_PRESENT && !(f & PTE_PROTNONE) && (!wantWrite || f & PTE_WRITE)) {
        pfns[i] = p.pt.value(vpn);
        flags[i] = HMM_PFN_VALID | (f & PTE_WRITE ? HMM_PFN_WRITE : 0);
        continue;
      }
      if (kind === PTE_DEVICE_PRIVATE && m.dev_private_owner !== null && k.devicePages.owner(p.pt.value(vpn)) === m.dev_private_owner) {
        pfns[i] = p.pt.value(vpn);
        flags[i] = HMM_PFN_VALID | SVMSIM_PFN_DEVICE_PRIVATE | (f & PTE_WRITE ? HMM_PFN_WRITE : 0);
        continue;
      }
      if (!wantFault) {
        flags[i] = 0;
        continue;
      }
      if (kind === PTE_MIGRATION) {
        // migration_entry_wait, then walk again: the page may be device-private of our owner now.
        p.locks.lock(vpn, vpn + 1, 'migration_entry_wait', (id) => {
          p.locks.unlock(id);
          k.bounce(() => walk(i));
        });
        return;
      }
      // hmm_vma_fault → handle_mm_fault, then walk again from this page.
      handle_mm_fault(k, p, vpn, FAULT_FLAG_REMOTE | (wantWrite ? FAULT_FLAG_WRITE : 0), (ret) => {
        // hmm_vma_fault: any VM_FAULT_ERROR is -EFAULT to the caller.
        if (ret < 0) return reply(EFAULT, walked);
        k.bounce(() => walk(i));
      });
      return;
    }
    k.stats.hmmPages += npages;
    reply(0, walked);
  };
  walk(0);
}

export function mmu_interval_notifier_insert(k: Kernel, env: Envelope<Message>, m: MmuIntervalNotifierInsert): void {
  const p = k.proc(m.pid);
  const fail = (ret: number) => k.ctx.reply(env, { type: 'mmu_interval_notifier_insert_result', ret, sub: 0 });
  if (!p) return fail(EINVAL); // mm_users == 0
  if (!Number.isInteger(m.start) || !Number.isInteger(m.length) || m.length <= 0 || m.start + m.length > Number.MAX_SAFE_INTEGER) return fail(-75 /* EOVERFLOW */);
  const sub: Subscription = {
    id: k.nextSubId++, pid: p.pid, start: m.start, last: m.start + m.length - 1, owner: env.from, multipass: m.multipass === true,
    invalidate_seq: 0, node: undefined, deferredInsert: false, deferredRemove: false, removed: false,
  };
  p.notifiers.insert(sub);
  k.subs.set(sub.id, sub);
  k.ctx.trace('mmu_interval_notifier_insert', { sub: sub.id, pid: p.pid, start: m.start, last: sub.last, dev: env.from, seq: sub.invalidate_seq, multipass: sub.multipass });
  k.ctx.reply(env, { type: 'mmu_interval_notifier_insert_result', ret: 0, sub: sub.id });
}

export function mmu_interval_notifier_remove(k: Kernel, env: Envelope<Message>, m: MmuIntervalNotifierRemove): void {
  const sub = k.subs.get(m.sub);
  if (!sub || sub.removed || sub.deferredRemove) return k.ctx.reply(env, { type: 'syscall_result', ret: ENOENT });
  const p = k.procs.get(sub.pid)!;
  p.notifiers.remove(sub, () => {
    k.subs.delete(sub.id);
    k.ctx.trace('mmu_interval_notifier_remove', { sub: sub.id });
    k.ctx.reply(env, { type: 'syscall_result', ret: 0 });
  });
}

export function mmu_interval_read_begin(k: Kernel, env: Envelope<Message>, m: MmuIntervalReadBegin): void {
  const sub = k.subs.get(m.sub);
  if (!sub || sub.removed) return k.ctx.reply(env, { type: 'read_begin_result', ret: ENOENT, seq: 0 });
  const p = k.procs.get(sub.pid)!;
  const t0 = k.ctx.now();
  let sync = true;
  p.notifiers.readBegin(sub, (seq) => {
    if (!sync) k.ctx.trace('read_begin_waited', { sub: sub.id, waitedNs: k.ctx.now() - t0 });
    k.ctx.reply(env, { type: 'read_begin_result', ret: 0, seq });
  });
  sync = false;
}

/**
 * The driver's mmu_interval_set_seq (include/linux/mmu_notifier.h, v6.15), arriving before the ack
 * of the invalidate it answers. The only writer of sub->invalidate_seq after insert. A store from
 * another actor, to a removed subscription, or of a value that is not odd or goes backwards is a
 * driver bug: warned and ignored.
 */
export function mmu_interval_set_seq(k: Kernel, env: Envelope<Message>, m: MmuIntervalSetSeq): void {
  const sub = k.subs.get(m.sub);
  if (!sub || sub.removed) return; // removed while the store was in flight: nothing reads it any more
  const bad = sub.owner !== env.from ? `from ${env.from}, not the owner ${sub.owner}`
    : !Number.isInteger(m.cur_seq) || (m.cur_seq & 1) !== 1 ? `cur_seq ${m.cur_seq} is not odd`
    : m.cur_seq < sub.invalidate_seq ? `cur_seq ${m.cur_seq} older than ${sub.invalidate_seq}`
    : m.cur_seq > (k.procs.get(sub.pid)?.notifiers.invalidate_seq ?? Infinity) ? `cur_seq ${m.cur_seq} was never handed out`
    : null;
  if (bad !== null) {
    k.ctx.trace('warn', { what: `mmu_interval_set_seq ignored: ${bad}`, sub: sub.id });
    return;
  }
  sub.invalidate_seq = m.cur_seq;
}
