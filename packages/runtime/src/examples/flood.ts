// One-way throughput: the flooder sends `count` messages to the sink, `chunk` per turn (yielding
// between chunks with a zero-delay timer); the sink ends the run when all have arrived.
import type { Actor } from '../types.js';

export type FloodMsg = { type: 'data'; n: number } | { type: 'more' };

export function createFlooder(config: unknown): Actor<FloodMsg> {
  const cfg = config as { to: string; count: number; chunk?: number };
  const chunk = cfg.chunk ?? 4096;
  let sent = 0;
  return {
    start(ctx) {
      ctx.after(0, { type: 'more' });
    },
    receive(env, ctx) {
      if (env.msg.type !== 'more') return;
      const end = Math.min(cfg.count, sent + chunk);
      while (sent < end) ctx.send(cfg.to, { type: 'data', n: sent++ });
      if (sent < cfg.count) ctx.after(0, { type: 'more' });
    },
    summary: () => ({ sent }),
  };
}

export function createSink(config: unknown): Actor<FloodMsg> {
  const cfg = config as { count: number };
  let received = 0;
  return {
    receive(env, ctx) {
      if (env.msg.type === 'data' && ++received === cfg.count) ctx.stopRun(`${received} received`);
    },
    summary: () => ({ received }),
  };
}
