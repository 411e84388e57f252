// FIFO per pair: senders number their messages 1, 2, 3…; the checker verifies that each sender's
// numbers arrive in order and records the interleaving of senders (to show that different seeds
// order different pairs differently). A sender sends `chunk` messages per turn, yielding between
// chunks through a zero-delay timer, so that several senders really interleave.
import type { Actor } from '../types.js';

export type SequenceMsg = { type: 'seq'; n: number } | { type: 'more' } | { type: 'done'; count: number };

export interface SequenceSenderConfig {
  to: string;
  count: number;
  chunk?: number;
}

export interface SequenceCheckerConfig {
  /** Stop the run once this many senders have sent `done` and everything they sent has arrived. */
  senders: number;
  /** Keep the order of arrivals (sender ids) up to this many. Default 64. */
  keepOrder?: number;
}

export function createSequenceSender(config: unknown): Actor<SequenceMsg> {
  const cfg = config as SequenceSenderConfig;
  const chunk = cfg.chunk ?? 1;
  let sent = 0;
  return {
    start(ctx) {
      ctx.after(0, { type: 'more' });
    },
    receive(env, ctx) {
      if (env.msg.type !== 'more') return;
      for (let i = 0; i < chunk && sent < cfg.count; i++) ctx.send(cfg.to, { type: 'seq', n: ++sent });
      if (sent < cfg.count) ctx.after(0, { type: 'more' });
      else ctx.send(cfg.to, { type: 'done', count: sent });
    },
    summary: () => ({ sent }),
  };
}

export function createSequenceChecker(config: unknown): Actor<SequenceMsg> {
  const cfg = config as SequenceCheckerConfig;
  const keep = cfg.keepOrder ?? 64;
  const last = new Map<string, number>();
  let outOfOrder = 0;
  let received = 0;
  let done = 0;
  let order = '';
  return {
    receive(env, ctx) {
      const m = env.msg;
      if (m.type === 'seq') {
        received++;
        const prev = last.get(env.from) ?? 0;
        if (m.n !== prev + 1) outOfOrder++;
        last.set(env.from, m.n);
        if (order.length < keep) order += env.from.slice(-1);
      } else if (m.type === 'done') {
        if (last.get(env.from) !== m.count) outOfOrder++;
        if (++done === cfg.senders) ctx.stopRun(`${received} in sequence`);
      }
    },
    summary: () => ({ received, outOfOrder, order, perSender: Object.fromEntries(last) }),
  };
}
