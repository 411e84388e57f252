// The driver's side of the two-pass invalidation (kernel-mm protocol.ts above InvalidateMultipass:
// the RFC "mm/mmu_notifier: Allow multiple struct mmu_interval_notifier passes", v1 of 2025-08-09).
// A policy whose driver the RFC converts answers `invalidate_multipass` once it has STARTED its
// work, with a pass cookie, and `invalidate_pass` once that work is done:
//
//   first pass   (xe_svm_invalidate_twopass): notifier lock; mmu_interval_set_seq; zap the GPUVM
//                entries; issue the TLB invalidation with a fence per GT
//                (xe_vm_range_tilemask_tlb_invalidation(vm, fences, …)); unlock; *p = &pass->p.
//                Nothing zapped: no fence, no second pass (pass null), as xe's tile_mask == 0 path.
//   second pass  (xe_svm_invalidate_second): wait for those fences
//                (xe_gt_tlb_invalidation_fence_wait), then the range's event_end; return NULL.
//
// The TLB invalidation's cost is split in two (policy.ts GpuCosts): `tlbInvalIssueNs`, the driver
// writing the request (the GuC CT message / MMIO write), spent in the first pass; and the rest of
// `tlbFlushNs`, the hardware's walk of its TLBs, which runs on its own and the second pass waits
// for. A one-pass callback spends `tlbFlushNs` in all, as before.
import type { Envelope, Message } from '@svmsim/runtime';
import type { InvalidatePass } from '@svmsim/kernel-mm';
import type { GpuHost } from './policy.js';

/** A TLB invalidation that has been issued: done once the hardware has finished it (its fence). */
export class TlbInvalFence {
  signalled = false;
  private waiters: (() => void)[] = [];

  /** The hardware finished: the cached translations are gone (the caller flushed GPUVM's TLB). */
  signal(): void {
    if (this.signalled) throw new Error('a TLB invalidation fence signalled twice');
    this.signalled = true;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** xe_gt_tlb_invalidation_fence_wait: `then` now if done, else when it is. */
  wait(then: () => void): void {
    if (this.signalled) return then();
    this.waiters.push(then);
  }
}

/** Pass cookies (struct mmu_interval_notifier_pass *) and what each second pass needs. */
export class PassTable<T> {
  private readonly passes = new Map<number, T>();
  private next = 1;
  /** Second passes handed out, and the most pending at once. */
  issued = 0;
  pendingMax = 0;

  add(state: T): number {
    const cookie = this.next++;
    this.passes.set(cookie, state);
    this.issued++;
    this.pendingMax = Math.max(this.pendingMax, this.passes.size);
    return cookie;
  }

  /** The pass mm calls now: each cookie is called exactly once (mn_itree_additional_passes). */
  take(cookie: number): T | undefined {
    const s = this.passes.get(cookie);
    this.passes.delete(cookie);
    return s;
  }

  get pending(): number {
    return this.passes.size;
  }
}

/**
 * The second pass mm calls (`invalidate_pass`): its state; or, for a cookie this GPU never handed
 * out, a warning and the pass answered done at once (undefined).
 */
export function takeSecondPass<T>(host: Pick<GpuHost, 'reply' | 'warn'>, passes: PassTable<T>, env: Envelope<Message>, m: InvalidatePass): T | undefined {
  const p = passes.take(m.pass);
  if (p === undefined) {
    host.warn('invalidate_pass for a pass this GPU did not hand out', { sub: m.sub, pass: m.pass });
    host.reply(env, { type: 'invalidate_pass_done', sub: m.sub, next: null });
  }
  return p;
}
