// The interval notifiers' calling order: mainline's one pass (each invalidate() in turn, blocking)
// and the two-pass RFC (invalidate_multipass to every opted-in subscription, then invalidate_pass
// to each): kernel-mm invalidate.ts, protocol.ts above InvalidateMultipass.
import { describe, expect, it } from 'vitest';
import { MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '@svmsim/kernel-mm';
import type { Actor, Message } from '@svmsim/runtime';
import { runMm, type Step } from '@svmsim/kernel-mm/testing/mm-harness';

const A = 16 * 1024 * 1024;
const PAGES = 8;
const FLUSH_NS = 10_000;
const ISSUE_NS = 1_000;

interface Seen { dev: string; type: string; t: number }

/**
 * A minimal mirroring device: it subscribes when the script asks, and answers its callbacks as a
 * GPU whose TLB flush takes FLUSH_NS, ISSUE_NS of it to issue: one pass blocks for all of it; a
 * first pass answers after issuing, its second pass when the flush is done.
 */
function flushDevice(id: string, multipass: boolean, log: Seen[]): Actor<Message> {
  let subscriber: { env: never } | undefined;
  const flushDoneAt = new Map<number, number>();
  const timers = new Map<number, () => void>();
  let nextPass = 1;
  return {
    receive(env, ctx) {
      const m = env.msg as unknown as { type: string; sub: number; cur_seq: number; pass: number };
      const later = (ns: number, fn: () => void) => timers.set(ctx.after(ns, { type: 'dev_timer' } as never), fn);
      switch (m.type) {
        case 'dev_subscribe':
          subscriber = { env: env as never };
          ctx.request('mm', { type: 'mmu_interval_notifier_insert', pid: 1, start: A, length: PAGES * PAGE_SIZE, ...(multipass && { multipass: true }) } as never);
          return;
        case 'mmu_interval_notifier_insert_result':
          ctx.reply(subscriber!.env, { type: 'syscall_result', ret: 0 } as never);
          return;
        case 'dev_timer':
          timers.get(env.id)!();
          timers.delete(env.id);
          return;
        case 'invalidate':
          log.push({ dev: id, type: m.type, t: ctx.now() });
          ctx.send('mm', { type: 'mmu_interval_set_seq', sub: m.sub, cur_seq: m.cur_seq } as never);
          later(FLUSH_NS, () => ctx.reply(env as never, { type: 'invalidate_ack', sub: m.sub, ok: true } as never));
          return;
        case 'invalidate_multipass': {
          log.push({ dev: id, type: m.type, t: ctx.now() });
          ctx.send('mm', { type: 'mmu_interval_set_seq', sub: m.sub, cur_seq: m.cur_seq } as never);
          const pass = nextPass++;
          flushDoneAt.set(pass, ctx.now() + FLUSH_NS);
          later(ISSUE_NS, () => ctx.reply(env as never, { type: 'invalidate_multipass_ack', sub: m.sub, ok: true, pass } as never));
          return;
        }
        case 'invalidate_pass': {
          log.push({ dev: id, type: m.type, t: ctx.now() });
          const wait = Math.max(0, flushDoneAt.get(m.pass)! - ctx.now());
          flushDoneAt.delete(m.pass);
          later(wait, () => ctx.reply(env as never, { type: 'invalidate_pass_done', sub: m.sub, next: null } as never));
          return;
        }
        default:
          return;
      }
    },
    summary: () => ({}),
  };
}

const steps: Step[] = [
  { msg: { type: 'process_create' } as never },
  { msg: { type: 'mmap', pid: 1, addr: 0, length: PAGES * PAGE_SIZE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS } as never },
  { to: 'dev0', msg: { type: 'dev_subscribe' } as never },
  { to: 'dev1', msg: { type: 'dev_subscribe' } as never },
  { msg: { type: 'munmap', pid: 1, addr: A, length: PAGES * PAGE_SIZE } as never },
];

async function run(notifierPasses: 1 | 2, multipass: [boolean, boolean]) {
  const log: Seen[] = [];
  const { mm } = await runMm(steps, {
    mm: { notifierPasses },
    extra: [
      { id: 'dev0', actor: flushDevice('dev0', multipass[0], log) },
      { id: 'dev1', actor: flushDevice('dev1', multipass[1], log) },
    ],
  });
  return { log, mm };
}

describe('interval notifiers: one pass vs two', () => {
  it('one pass (mainline): the second device is called only after the first acked, so the wait is the sum', async () => {
    const { log, mm } = await run(1, [true, true]);
    // notifierPasses 1 ignores the opt-in: both get the one-pass callback.
    expect(log.map((s) => `${s.dev} ${s.type}`)).toEqual(['dev0 invalidate', 'dev1 invalidate']);
    expect(log[1].t - log[0].t).toBeGreaterThanOrEqual(FLUSH_NS);
    expect(mm.notifierWaitNsMax).toBeGreaterThanOrEqual(2 * FLUSH_NS);
  });

  it('two passes: every flush is started before any is waited for, so the wait is about the longest', async () => {
    const { log, mm } = await run(2, [true, true]);
    expect(log.map((s) => `${s.dev} ${s.type}`)).toEqual(['dev0 invalidate_multipass', 'dev1 invalidate_multipass', 'dev0 invalidate_pass', 'dev1 invalidate_pass']);
    expect(log[1].t - log[0].t).toBeLessThan(FLUSH_NS);
    expect(mm.notifierWaitNsMax).toBeGreaterThanOrEqual(FLUSH_NS);
    expect(mm.notifierWaitNsMax).toBeLessThan(FLUSH_NS + 2 * ISSUE_NS + 1_000);
    const one = await run(1, [true, true]);
    expect(mm.munmapNsP50).toBeLessThan(one.mm.munmapNsP50 - FLUSH_NS / 2);
  });

  it('two passes with one device that has no invalidate_multipass: it is called the one-pass way, in turn, and blocks the loop', async () => {
    const { log, mm } = await run(2, [false, true]);
    expect(log.map((s) => `${s.dev} ${s.type}`)).toEqual(['dev0 invalidate', 'dev1 invalidate_multipass', 'dev1 invalidate_pass']);
    expect(log[1].t - log[0].t).toBeGreaterThanOrEqual(FLUSH_NS);
    expect(mm.notifierWaitNsMax).toBeGreaterThanOrEqual(2 * FLUSH_NS);
  });
});
