// A flood sink that also says when messages arrived, for the bench: the simulated time (ns) at
// which message number `warmup` and the last one arrived. With ThreadScheduler and timeScale 1,
// simulated ns are wall ns since the run's epoch, so (count - warmup) / (lastNs - warmNs) is the
// steady delivery rate with the workers' JIT warm-up and the run's setup left out.
import type { Actor } from '../types.js';
import type { FloodMsg } from './flood.js';

export interface TimedSinkConfig {
  count: number;
  /** Arrival number whose time starts the measured window (0: the epoch). */
  warmup?: number;
}

export function createTimedSink(config: unknown): Actor<FloodMsg> {
  const cfg = config as TimedSinkConfig;
  const warmup = cfg.warmup ?? 0;
  let received = 0;
  let warmNs = 0;
  let lastNs = 0;
  return {
    receive(env, ctx) {
      if (env.msg.type !== 'data') return;
      if (++received === warmup) warmNs = ctx.now();
      if (received === cfg.count) {
        lastNs = ctx.now();
        ctx.stopRun(`${received} received`);
      }
    },
    summary: () => ({ received, warmNs, lastNs }),
  };
}
