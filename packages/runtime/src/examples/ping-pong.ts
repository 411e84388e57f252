// Ping-pong with plain sends: the opener sends ping 1; whoever receives ping n answers pong n; the
// opener answers pong n with ping n+1 until `rounds`, then ends the run.
import type { Actor } from '../types.js';

export type PingPongMsg = { type: 'ping'; n: number } | { type: 'pong'; n: number };

export interface PingPongConfig {
  peer: string;
  /** Set on the side that opens and counts. */
  rounds?: number;
}

export function createPingPong(config: unknown): Actor<PingPongMsg> {
  const cfg = config as PingPongConfig;
  let pings = 0;
  let pongs = 0;
  let outOfOrder = 0;
  return {
    start(ctx) {
      if (cfg.rounds !== undefined) ctx.send(cfg.peer, { type: 'ping', n: 1 });
    },
    receive(env, ctx) {
      const m = env.msg;
      switch (m.type) {
        case 'ping':
          pings++;
          ctx.send(env.from, { type: 'pong', n: m.n });
          return;
        case 'pong':
          pongs++;
          if (m.n !== pongs) outOfOrder++;
          if (m.n < (cfg.rounds ?? 0)) ctx.send(env.from, { type: 'ping', n: m.n + 1 });
          else ctx.stopRun(`${pongs} rounds`);
          return;
      }
    },
    summary: () => ({ pings, pongs, outOfOrder }),
  };
}
