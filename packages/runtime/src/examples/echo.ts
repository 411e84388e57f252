// Request/reply: a client keeps `window` requests in flight to a server until `count` replies have
// come back, checking that each reply answers the request it names. Used by tests and the bench.
import type { Actor, Ctx, Incoming } from '../types.js';

export type EchoMsg = { type: 'echo'; n: number } | { type: 'echo_reply'; n: number } | { type: 'kick' } | { type: 'echo_due'; n: number };

export interface EchoClientConfig {
  server: string;
  count: number;
  /** Requests in flight at once. Default 1 (a strict round trip). */
  window?: number;
  timeoutNs?: number;
  /** Record every round trip's simulated time (ns). */
  recordRtt?: boolean;
}

/** `delayNs`: each reply is sent that long after its request (a timer), so that time passes. */
export function createEchoServer(config?: unknown): Actor<EchoMsg> {
  const delayNs = (config as { delayNs?: number } | undefined)?.delayNs ?? 0;
  const due = new Map<number, Incoming<EchoMsg>>();
  let served = 0;
  return {
    receive(env, ctx) {
      if (env.msg.type === 'echo') {
        served++;
        if (delayNs === 0) return ctx.reply(env, { type: 'echo_reply', n: env.msg.n });
        due.set(ctx.after(delayNs, { type: 'echo_due', n: env.msg.n }), env);
      } else if (env.msg.type === 'echo_due') {
        const req = due.get(env.id)!;
        due.delete(env.id);
        ctx.reply(req, { type: 'echo_reply', n: env.msg.n });
      }
    },
    summary: () => ({ served }),
  };
}

export function createEchoClient(config: unknown): Actor<EchoMsg> {
  const cfg = config as EchoClientConfig;
  const window = cfg.window ?? 1;
  const inflight = new Map<number, { n: number; sentNs: number }>();
  const rttNs: number[] = [];
  let nextN = 0;
  let replies = 0;
  let mismatches = 0;
  let timeouts = 0;
  let died = 0;
  const issue = (ctx: Ctx<EchoMsg>) => {
    while (inflight.size < window && nextN < cfg.count) {
      const n = nextN++;
      const id = ctx.request(cfg.server, { type: 'echo', n }, cfg.timeoutNs);
      inflight.set(id, { n, sentNs: ctx.now() });
    }
    if (inflight.size === 0) ctx.stopRun(`${replies} replies`);
  };
  return {
    start(ctx) {
      ctx.send(ctx.self, { type: 'kick' });
    },
    receive(env: Incoming<EchoMsg>, ctx) {
      const m = env.msg;
      if (m.type === 'kick') return issue(ctx);
      if (m.type === 'actor_died' && env.replyTo === 0) return; // the notice; pending requests had their own answers
      const req = inflight.get(env.replyTo);
      if (req === undefined) {
        mismatches++;
        return;
      }
      inflight.delete(env.replyTo);
      switch (m.type) {
        case 'echo_reply':
          if (m.n !== req.n) mismatches++;
          replies++;
          if (cfg.recordRtt) rttNs.push(ctx.now() - req.sentNs);
          break;
        case 'request_timeout':
          timeouts++;
          break;
        case 'actor_died':
          died++;
          break;
        default:
          mismatches++;
      }
      issue(ctx);
    },
    summary: () => ({ replies, mismatches, timeouts, died, ...(cfg.recordRtt ? { rttNs } : {}) }),
  };
}
