// Test harness for mm under LocalScheduler: a script actor that sends requests one after another
// (or a group at once) and keeps every reply.
import { LocalScheduler, readTrace, type Actor, type Message } from '@svmsim/runtime';
import { createMm, createRamdisk, type MmConfig } from '@svmsim/kernel-mm';
import { checkTrace, type FinalPage } from '@svmsim/kernel-mm/checker';

export type Step = { to?: string; msg: Message } | { group: { to?: string; msg: Message }[] } | ((results: Message[]) => Step | Step[] | undefined);

/** Runs `steps` in order; each step waits for the previous one's reply. Functions build steps from results so far. */
export function scriptActor(steps: Step[], opts: { dumpAtEnd?: boolean } = {}): Actor<Message> & { results: Message[]; dump?: FinalPage[] } {
  const queue = [...steps];
  const results: Message[] = [];
  const self = {
    results,
    dump: undefined as FinalPage[] | undefined,
    start(ctx: Parameters<NonNullable<Actor<Message>['start']>>[0]) {
      next(ctx);
    },
    receive(env: { msg: Message; replyTo: number }, ctx: Parameters<Actor<Message>['receive']>[1]) {
      if (env.replyTo === 0) return;
      if (env.msg.type === 'dump_result') {
        self.dump = (env.msg as unknown as { pages: { pid: number; addr: number; value: number }[] }).pages.map(({ pid, addr, value }) => ({ pid, addr, value }));
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
      const group = 'group' in s ? s.group : [s];
      outstanding = group.length;
      for (const g of group) ctx.request(g.to ?? 'mm', g.msg);
      return;
    }
  };
  return self as unknown as Actor<Message> & { results: Message[]; dump?: FinalPage[] };
}

export async function runMm(steps: Step[], opts: { mm?: Partial<MmConfig>; seed?: number; traceDir?: string; extra?: { id: string; actor: Actor<any> }[]; dumpAtEnd?: boolean } = {}) {
  const script = scriptActor(steps, { dumpAtEnd: opts.dumpAtEnd });
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
  return { r, results: script.results, mm: r.summaries.mm as Record<string, any>, dump: script.dump, check };
}

export const ret = (m: Message) => (m as unknown as { ret: number }).ret;
export const val = (m: Message) => (m as unknown as { value: number }).value;
