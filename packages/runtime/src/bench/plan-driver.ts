// A sequential driver for the device benches (gpu-driver's, rdma-odp's): an actor that runs a plan
// (a generator of requests) one step at a time under LocalScheduler, timing only the marked parts,
// and a meter counting every actor's deliveries in those parts.
import type { Actor, Ctx, Message } from '../types.js';

/** Deliveries (timers included) to every actor of the run while `on`: the timed part's message count. */
export interface Meter {
  on: boolean;
  deliveries: number;
}

/** The actor, counting its deliveries into `meter` (one more call per delivery). */
export function metered(actor: Actor<Message>, meter: Meter): Actor<Message> {
  return {
    start: actor.start ? (ctx) => actor.start!(ctx) : undefined,
    receive(env, ctx) {
      if (meter.on) meter.deliveries++;
      actor.receive(env, ctx);
    },
    summary: () => actor.summary(),
  };
}

export type PlanReply = Message & { ret: number } & Record<string, unknown>;
export type PlanCall = { to: string; msg: Message };
/** What a plan yields: one call (answered with its reply), a group sent at once (answered with no reply), or a timing mark. */
export type PlanStep = PlanCall | { group: PlanCall[] } | { mark: 'start' | 'stop' };
export type Plan = Generator<PlanStep, void, PlanReply | undefined>;

/**
 * The app: runs `plan` one step at a time, each call waiting for its reply (a reply with ret < 0
 * ends the run with an error). Wall time is summed between each `start` mark and the next `stop`:
 * what is not marked (setup, populating, teardown) is not timed.
 */
export function planDriver(plan: Plan, meter: Meter, name = 'bench'): Actor<Message> & { measuredSec: () => number; error: () => Error | undefined } {
  let outstanding = 0;
  let t0 = 0;
  let totalMs = 0;
  let error: Error | undefined;
  const step = (ctx: Ctx<Message>, reply: PlanReply | undefined): void => {
    for (;;) {
      let it: IteratorResult<PlanStep, void>;
      try {
        it = plan.next(reply);
      } catch (e) {
        error = e instanceof Error ? e : new Error(String(e));
        return void ctx.stopRun('plan failed');
      }
      reply = undefined;
      if (it.done) return void ctx.stopRun('done');
      const s = it.value;
      if ('mark' in s) {
        meter.on = s.mark === 'start';
        if (s.mark === 'start') t0 = performance.now();
        else totalMs += performance.now() - t0;
        continue;
      }
      const calls = 'group' in s ? s.group : [s];
      outstanding = calls.length;
      for (const c of calls) ctx.request(c.to, c.msg);
      return;
    }
  };
  return {
    measuredSec: () => totalMs / 1e3,
    error: () => error,
    start: (ctx) => step(ctx, undefined),
    receive(env, ctx) {
      if (env.replyTo === 0) return; // nothing but replies is expected
      const r = env.msg as PlanReply;
      if (typeof r.ret === 'number' && r.ret < 0) {
        error = new Error(`${name}: ${r.type} returned ${r.ret}`);
        return void ctx.stopRun('error');
      }
      if (--outstanding === 0) step(ctx, r);
    },
    summary: () => ({}),
  };
}
