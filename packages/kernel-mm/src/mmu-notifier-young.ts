// Accessed bits of secondary MMUs: the full `struct mmu_notifier` (mm/mmu_notifier.c
// mmu_notifier_register, __mmu_notifier_clear_flush_young; include/linux/mmu_notifier.h
// ptep_clear_flush_young_notify; mm/rmap.c folio_referenced_one — v6.15).
//
// folio_referenced_one asks, for each PTE mapping a folio, ptep_clear_flush_young_notify: the CPU's
// young bit OR every full notifier's ops->clear_flush_young over the page. A secondary MMU that
// registered one (KVM: the accessed bits of its EPT/stage-2 entries) thereby keeps the pages it
// uses off reclaim's list. `struct mmu_interval_notifier_ops` has only `invalidate`: a driver that
// mirrors with an interval notifier (dmirror, amdgpu, nouveau, mlx5 ODP: all ours) cannot report
// accesses, and pages only its device touches look idle to reclaim.
//
// Modelled: registration with the ops a notifier implements, and reclaim's use of
// clear_flush_young. Asked once per reclaim scan (shrink_lruvec) for every candidate the CPU's PTEs
// call old, in one request per notifier (the kernel calls each notifier per PTE, synchronously);
// pages reported young are rotated like PTE-young ones. Not modelled: clear_young and test_young
// (their callers — page_idle, DAMON, MGLRU's lru_gen_look_around — are not here), and every other
// op of a full notifier (invalidate_range_start/end, release): a full notifier gets only the
// young callbacks.
import type { Envelope, Message } from '@svmsim/runtime';
import type { Kernel } from './kernel.js';
import { EINVAL, ENOENT, PAGE_SIZE, type MmuNotifierClearFlushYoung, type MmuNotifierRegister, type MmuNotifierUnregister, type MmuNotifierYoungResult, type Pid } from './protocol.js';

/** A registered `struct mmu_notifier`: its mm, its owner actor, the young ops it implements. */
export interface FullMmuNotifier {
  id: number;
  pid: Pid;
  owner: string;
  clear_flush_young: boolean;
  clear_young: boolean;
  test_young: boolean;
}

/** A bound on registered full notifiers (each is a request per reclaim scan). */
const FULL_NOTIFIERS_MAX = 64;

export function mmu_notifier_register(k: Kernel, env: Envelope<Message>, m: MmuNotifierRegister): void {
  const p = k.proc(m.pid);
  if (!p || k.fullNotifiers.size >= FULL_NOTIFIERS_MAX) return k.ctx.reply(env, { type: 'mmu_notifier_register_result', ret: EINVAL, id: 0 });
  const n: FullMmuNotifier = { id: k.nextFullNotifierId++, pid: p.pid, owner: env.from, clear_flush_young: m.clear_flush_young, clear_young: m.clear_young, test_young: m.test_young };
  k.fullNotifiers.set(n.id, n);
  k.ctx.trace('mmu_notifier_register', { id: n.id, pid: n.pid, dev: n.owner, clear_flush_young: n.clear_flush_young });
  k.ctx.reply(env, { type: 'mmu_notifier_register_result', ret: 0, id: n.id });
}

export function mmu_notifier_unregister(k: Kernel, env: Envelope<Message>, m: MmuNotifierUnregister): void {
  const n = k.fullNotifiers.get(m.id);
  if (!n || n.owner !== env.from) return k.ctx.reply(env, { type: 'syscall_result', ret: ENOENT });
  k.fullNotifiers.delete(n.id);
  k.ctx.reply(env, { type: 'syscall_result', ret: 0 });
}

/** actor_died: a dead secondary MMU's registrations go (mmu_notifier_unregister at its teardown). */
export function mmu_notifier_drop_owner(k: Kernel, owner: string): void {
  for (const [id, n] of k.fullNotifiers) if (n.owner === owner) k.fullNotifiers.delete(id);
}

/**
 * mmu_notifier_clear_flush_young over the mappings of `pfns` (reclaim candidates): calls
 * `then(young)` with the pfns some full notifier reported young. At once when no notifier with
 * clear_flush_young covers any of their mms.
 */
export function mmu_notifier_clear_flush_young(k: Kernel, pfns: number[], then: (young: Set<number>) => void): void {
  const young = new Set<number>();
  const asks: { n: FullMmuNotifier; addrs: number[]; pfnOf: number[] }[] = [];
  for (const n of k.fullNotifiers.values()) {
    if (!n.clear_flush_young || !k.proc(n.pid)) continue;
    const ask = { n, addrs: [] as number[], pfnOf: [] as number[] };
    for (const pfn of pfns) {
      for (const m of k.pm.mappings(pfn)) {
        if (m.pid !== n.pid) continue;
        ask.addrs.push(m.vpn * PAGE_SIZE);
        ask.pfnOf.push(pfn);
      }
    }
    if (ask.addrs.length > 0) asks.push(ask);
  }
  if (asks.length === 0) return then(young);
  let waiting = asks.length;
  for (const a of asks) {
    const msg: MmuNotifierClearFlushYoung = { type: 'mmu_notifier_clear_flush_young', id: a.n.id, pid: a.n.pid, addrs: Float64Array.from(a.addrs) };
    k.call(a.n.owner, msg, (reply) => {
      // A notifier that died or answered something else reports nothing young.
      if (reply.type === 'mmu_notifier_young_result') {
        const r = reply as MmuNotifierYoungResult;
        for (let i = 0; i < a.pfnOf.length; i++) if (r.young[i]) young.add(a.pfnOf[i]);
      }
      if (--waiting === 0) {
        k.stats.secondaryMmuYoung += young.size;
        then(young);
      }
    });
  }
}
