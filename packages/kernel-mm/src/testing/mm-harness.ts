// A test harness for mm under LocalScheduler, shared by the tests of mm and of its drivers: a
// script actor that sends requests one after another (or a group at once) and keeps every reply;
// it also answers invalidations as a minimal driver would.
import { LocalScheduler, readTrace, type Actor, type Message } from '@svmsim/runtime';
import { createMm } from '../mm-actor.js';
import { createRamdisk } from '../ramdisk.js';
import type { MmConfig } from '../kernel.js';
import { checkTrace, type FinalPage } from '../checker.js';
import type { DumpedPage, DumpResult } from '../protocol.js';

export type Step =
  | { to?: string; msg: Message }
  /** Sent at once, or a member `afterNs` later (to land inside another member's work); the step ends when all have replied. */
  | { group: { to?: string; msg: Message; afterNs?: number; noReply?: boolean }[] }
  | { sleepNs: number }
  /** Sent without waiting for a reply (a message that has none: unpin_user_pages). */
  | { send: { to?: string; msg: Message } }
  | ((results: Message[]) => Step | Step[] | undefined);

/** Runs `steps` in order; each step waits for the previous one's reply. Functions build steps from results so far. */
export interface ScriptOptions {
  dumpAtEnd?: boolean;
  /** The script also plays a driver: it acks every `invalidate` after this delay (ns; default 0). */
  ackDelayNs?: number;
  /** Answer ok=false to non-blockable invalidations (a driver that would have to sleep). */
  refuseNonblocking?: boolean;
  /** Ack without mmu_interval_set_seq (a driver bug, or a driver ignoring its own event on purpose). */
  skipSetSeq?: boolean;
}

export interface Recorded {
  event: string;
  start: number;
  end: number;
  blockable: boolean;
  owner: string | null;
  cur_seq: number;
  t: number;
}

export function scriptActor(steps: Step[], opts: ScriptOptions = {}): Actor<Message> & { results: Message[]; dump?: FinalPage[]; dumped?: DumpedPage[]; invalidations: Recorded[]; signals: Message[] } {
  const queue = [...steps];
  const results: Message[] = [];
  const invalidations: Recorded[] = [];
  const signals: Message[] = [];
  const pendingAcks = new Map<number, { env: never; ok: boolean }>();
  const delayedSends = new Map<number, { to?: string; msg: Message; noReply?: boolean }>();
  const self = {
    results,
    invalidations,
    signals,
    dump: undefined as FinalPage[] | undefined,
    /** mm's dump as it came (with where each page was found). */
    dumped: undefined as DumpedPage[] | undefined,
    start(ctx: Parameters<NonNullable<Actor<Message>['start']>>[0]) {
      next(ctx);
    },
    receive(env: { msg: Message; replyTo: number; id: number; from: string }, ctx: Parameters<Actor<Message>['receive']>[1]) {
      const m = env.msg as unknown as Recorded & { type: string; sub: number };
      if (m.type === 'invalidate') {
        invalidations.push({ event: m.event, start: m.start, end: m.end, blockable: m.blockable, owner: m.owner, cur_seq: m.cur_seq, t: ctx.now() });
        const ok = !(opts.refuseNonblocking && !m.blockable);
        // mmu_interval_set_seq first, under the (notional) update lock; a refusal returns before it.
        if (ok && !opts.skipSetSeq) ctx.send(env.from, { type: 'mmu_interval_set_seq', sub: m.sub, cur_seq: m.cur_seq } as never);
        // A refusal is immediate: the callback returns false instead of sleeping.
        if (!opts.ackDelayNs || !ok) ctx.reply(env as never, { type: 'invalidate_ack', sub: m.sub, ok } as never);
        else pendingAcks.set(ctx.after(opts.ackDelayNs, { type: 'ack_due' }), { env: env as never, ok });
        return;
      }
      if (m.type === 'ack_due') {
        const a = pendingAcks.get(env.id)!;
        pendingAcks.delete(env.id);
        ctx.reply(a.env, { type: 'invalidate_ack', sub: (a.env as { msg: { sub: number } }).msg.sub, ok: a.ok } as never);
        return;
      }
      if (m.type === 'script_wake') return next(ctx);
      if (m.type === 'script_send') {
        const d = delayedSends.get(env.id)!;
        delayedSends.delete(env.id);
        if (d.noReply) ctx.send(d.to ?? 'mm', d.msg);
        else ctx.request(d.to ?? 'mm', d.msg);
        return;
      }
      if (m.type === 'signal') {
        signals.push(env.msg);
        return;
      }
      if (env.replyTo === 0) return;
      if (env.msg.type === 'dump_result') {
        self.dumped = (env.msg as unknown as DumpResult).pages;
        self.dump = self.dumped.map(({ pid, addr, value }) => ({ pid, addr, value }));
        ctx.stopRun('dumped');
        return;
      }
      results.push(env.msg);
      if (--outstanding === 0) next(ctx);
    },
    summary: () => ({ results: results.length }),
  };
  let outstanding = 0;
  const next = (ctx: Parameters<Actor<Message>['receive']>[1]) => {
    for (;;) {
      const s = queue.shift();
      if (s === undefined) {
        if (opts.dumpAtEnd) ctx.request('mm', { type: 'dump' });
        else ctx.stopRun('script done');
        return;
      }
      if (typeof s === 'function') {
        const made = s(results);
        if (made !== undefined) queue.unshift(...(Array.isArray(made) ? made : [made]));
        continue;
      }
      if ('send' in s) {
        ctx.send(s.send.to ?? 'mm', s.send.msg);
        continue;
      }
      if ('sleepNs' in s) {
        ctx.after(s.sleepNs, { type: 'script_wake' });
        return;
      }
      const group: { to?: string; msg: Message; afterNs?: number; noReply?: boolean }[] = 'group' in s ? s.group : [s];
      // A member without a reply (noReply: unpin_user_pages) is only sent: the step waits for the others.
      outstanding = group.filter((g) => !g.noReply).length;
      for (const g of group) {
        if (g.afterNs) delayedSends.set(ctx.after(g.afterNs, { type: 'script_send' } as never), g);
        else if (g.noReply) ctx.send(g.to ?? 'mm', g.msg);
        else ctx.request(g.to ?? 'mm', g.msg);
      }
      return;
    }
  };
  return self as unknown as Actor<Message> & { results: Message[]; dump?: FinalPage[]; dumped?: DumpedPage[]; invalidations: Recorded[]; signals: Message[] };
}

export async function runMm(
  steps: Step[],
  opts: { mm?: Partial<MmConfig>; seed?: number; traceDir?: string; extra?: { id: string; actor: Actor<any> }[] } & ScriptOptions = {},
) {
  const script = scriptActor(steps, opts);
  const r = await new LocalScheduler().run({
    actors: [
      { id: 'mm', actor: createMm({ frames: 256, swapPages: 128, ...opts.mm }, 'mm') },
      { id: 'ramdisk', actor: createRamdisk({}) },
      { id: 'app', actor: script },
      ...(opts.extra ?? []),
    ],
    seed: opts.seed ?? 1,
    traceDir: opts.traceDir,
  });
  const check = opts.traceDir !== undefined ? checkTrace(readTrace(opts.traceDir), script.dump ?? null) : undefined;
  return { r, results: script.results, mm: r.summaries.mm as Record<string, any>, dump: script.dump, dumped: script.dumped, check, invalidations: script.invalidations, signals: script.signals };
}

export const ret = (m: Message) => (m as unknown as { ret: number }).ret;
export const val = (m: Message) => (m as unknown as { value: number }).value;
