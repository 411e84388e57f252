// A driver that dies (its actor's thread exits, or a fault kills it) leaves behind what it held in
// mm: page pins and gup references, interval notifiers, mmap read locks (mmap-lock.ts), open
// device migrations (migrate-device.ts). Nobody is left to release them, so mm does, when it hears
// actor_died: the model of a driver unbound while it held them (the driver's remove path:
// amdgpu_mn_unregister / ib_umem_release → mmu_interval_notifier_remove and unpin_user_pages).
// In the kernel a driver that crashes in its own code takes the kernel with it; svmsim's actors
// die alone, and this is what keeps everyone else from waiting on them forever.
//
//   pins     every get_user_pages_result that granted pages (ret > 0) is recorded per requester,
//            every unpin_user_pages it sends takes them off; at its death the rest are unpinned
//            (make_dirty: the device may have written through them), traced as unpin_user_pages
//            `by` the dead actor, so pin analysis sees them released.
//   notifiers every subscription it owns is removed (mmu_interval_notifier_remove: deferred to the
//            end of a running epoch, as for any remove). Invalidations that were waiting for its
//            ack were answered by the runtime (actor_died in place of the ack: invalidate.ts).
import type { ActorId, Ctx, Envelope, Message } from '@svmsim/runtime';
import { unpin_user_pages } from './gup.js';
import type { Kernel, MmOutgoing } from './kernel.js';
import { ZERO_PFN, type GetUserPages, type GetUserPagesResult, type UnpinUserPages } from './protocol.js';

/** Per actor, per pfn: references held (pins and gup references counted apart). */
export class DriverRefs {
  private readonly pins = new Map<ActorId, Map<number, number>>();
  private readonly gets = new Map<ActorId, Map<number, number>>();
  private wrapped: Ctx<MmOutgoing> | undefined;
  private wrappedOf: Ctx<MmOutgoing> | undefined;

  /** mm's ctx with its replies seen on the way out (the gup replies that grant references). */
  wrap(ctx: Ctx<MmOutgoing>): Ctx<MmOutgoing> {
    if (this.wrappedOf === ctx) return this.wrapped!;
    const refs = this;
    this.wrappedOf = ctx;
    this.wrapped = {
      get self() { return ctx.self; },
      get tracing() { return ctx.tracing; },
      get rng() { return ctx.rng; },
      send: (to, msg) => ctx.send(to, msg),
      request: (to, msg, timeoutNs) => ctx.request(to, msg, timeoutNs),
      reply: (env, msg) => {
        if (msg.type === 'get_user_pages_result') refs.granted(env, msg as GetUserPagesResult);
        ctx.reply(env, msg);
      },
      after: (ns, msg) => ctx.after(ns, msg),
      cancel: (id) => ctx.cancel(id),
      now: () => ctx.now(),
      trace: (ev, fields) => ctx.trace(ev, fields),
      stopRun: (reason) => ctx.stopRun(reason),
    };
    return this.wrapped;
  }

  private granted(env: Envelope<Message>, r: GetUserPagesResult): void {
    if (r.ret <= 0 || env.msg.type !== 'get_user_pages') return;
    const table = this.table((env.msg as GetUserPages).pin ? this.pins : this.gets, env.from);
    for (let i = 0; i < r.ret; i++) if (r.pfns[i] !== ZERO_PFN) table.set(r.pfns[i], (table.get(r.pfns[i]) ?? 0) + 1);
  }

  /** `from` released these (before unpin_user_pages applies them). */
  released(from: ActorId, m: UnpinUserPages): void {
    const table = (m.pin ? this.pins : this.gets).get(from);
    if (!table) return;
    for (const pfn of m.pfns) {
      const n = table.get(pfn);
      if (n === undefined) continue;
      if (n <= 1) table.delete(pfn);
      else table.set(pfn, n - 1);
    }
  }

  /** References `actor` holds: pins, gup references. */
  held(actor: ActorId): { pins: number; gets: number } {
    const sum = (t: Map<number, number> | undefined) => [...(t?.values() ?? [])].reduce((a, b) => a + b, 0);
    return { pins: sum(this.pins.get(actor)), gets: sum(this.gets.get(actor)) };
  }

  private table(of: Map<ActorId, Map<number, number>>, actor: ActorId): Map<number, number> {
    let t = of.get(actor);
    if (!t) of.set(actor, (t = new Map()));
    return t;
  }

  /** actor_died: drop every pin, reference and notifier `actor` held. */
  releaseAll(k: Kernel, actor: ActorId): void {
    const { pins, gets } = this.held(actor);
    for (const [of, pin] of [[this.pins, true], [this.gets, false]] as const) {
      const t = of.get(actor);
      if (!t || t.size === 0) continue;
      const pfns: number[] = [];
      for (const [pfn, n] of t) for (let i = 0; i < n; i++) pfns.push(pfn);
      of.delete(actor);
      const env: Envelope<Message> = { from: actor, to: k.ctx.self, id: 0, replyTo: 0, t: k.ctx.now(), msg: { type: 'unpin_user_pages' } };
      unpin_user_pages(k, env, { type: 'unpin_user_pages', pfns: Float64Array.from(pfns), make_dirty: pin, pin });
    }
    let subs = 0;
    for (const sub of [...k.subs.values()]) {
      if (sub.owner !== actor || sub.removed || sub.deferredRemove) continue;
      const p = k.procs.get(sub.pid);
      if (!p) continue;
      subs++;
      p.notifiers.remove(sub, () => {
        k.subs.delete(sub.id);
        k.ctx.trace('mmu_interval_notifier_remove', { sub: sub.id, by: 'actor_died' });
      });
    }
    k.ctx.trace('dead_driver_released', { dead: actor, pins, gets, subs });
  }
}
