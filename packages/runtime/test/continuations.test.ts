// Continuations under LocalScheduler: a request's answer, a timer, a cancelled timer, a request
// that times out, and fireAll each run exactly the continuation they complete, once.
import { describe, expect, it } from 'vitest';
import { Continuations, LocalScheduler, type Actor, type Ctx, type Message } from '@svmsim/runtime';

type Msg = Message & { n?: number };

/** Answers `ask` with n + 1; never answers `ignore`. */
const server: Actor<Message> = {
  receive(env, ctx) {
    const m = env.msg as Msg;
    if (m.type === 'ask') ctx.reply(env, { type: 'answer', n: (m.n ?? 0) + 1 } as Msg);
  },
  summary: () => ({}),
};

function client(log: string[]): Actor<Message> {
  let ctx!: Ctx<Message>;
  const waits = new Continuations<Msg>(() => ctx, 'client_timer');
  let dying = false;
  return {
    start(c: Ctx<Message>) {
      ctx = c;
      waits.request('server', { type: 'ask', n: 41 } as Msg, (r) => log.push(`answer ${r.type} ${r.n} at ${ctx.now()}`));
      waits.after(500, () => log.push(`timer 500 at ${ctx.now()}`));
      const cancelled = waits.after(300, () => log.push('cancelled timer ran'));
      log.push(`cancel ${waits.cancel(cancelled)} ${waits.cancel(cancelled)}`);
      waits.sleep(0, () => log.push(`sleep 0 ran at once, ${waits.pendingRequests} request and ${waits.pendingTimers} timer pending`));
      waits.after(10_000, () => {
        log.push(`timer 10000 at ${ctx.now()}`);
        dying = true;
        waits.request('server', { type: 'ignore' } as Msg, (r) => log.push(`answer ${r.type} at ${ctx.now()}`), 1_000);
        waits.after(50_000, () => log.push(`fired early at ${ctx.now()}`));
      });
    },
    receive(env, c) {
      ctx = c;
      if (waits.resume(env)) {
        // The unanswered request timed out: cut the last sleep short, end.
        if (dying && waits.pendingRequests === 0 && waits.pendingTimers === 1) {
          waits.fireAll();
          ctx.stopRun('done');
        }
        return;
      }
      log.push(`not ours: ${env.msg.type}`);
    },
    summary: () => ({}),
  } as Actor<Message>;
}

describe('Continuations', () => {
  it('run each continuation once, when its answer or timer comes; cancel and fireAll', async () => {
    const log: string[] = [];
    await new LocalScheduler().run({ actors: [{ id: 'server', actor: server }, { id: 'client', actor: client(log) }], seed: 1 });
    expect(log.slice(0, 2)).toEqual(['cancel true false', 'sleep 0 ran at once, 1 request and 1 timer pending']);
    expect(log).toContain('timer 500 at 500');
    expect(log).toContain('timer 10000 at 10000');
    expect(log.some((l) => /^answer answer 42 at \d+$/.test(l))).toBe(true);
    expect(log).toContain('answer request_timeout at 11000');
    expect(log).toContain('fired early at 11000');
    expect(log).not.toContain('cancelled timer ran');
  });
});

describe('Continuations.forget', () => {
  it('a forgotten request no longer counts as pending, and its answer completes nothing', async () => {
    const log: string[] = [];
    let ctx!: Ctx<Message>;
    const waits = new Continuations<Msg>(() => ctx, 'client_timer');
    const c: Actor<Message> = {
      start(x) {
        ctx = x;
        const id = waits.request('server', { type: 'ask', n: 1 } as Msg, () => log.push('forgotten one ran'));
        log.push(`forget ${waits.forget(id)} ${waits.forget(id)}, ${waits.pendingRequests} pending`);
        waits.request('server', { type: 'ask', n: 2 } as Msg, (r) => log.push(`answer ${r.n}`));
      },
      receive(env, x) {
        ctx = x;
        if (!waits.resume(env)) log.push(`not ours: ${(env.msg as Msg).n}`);
      },
      summary: () => ({}),
    };
    await new LocalScheduler().run({ actors: [{ id: 'server', actor: server }, { id: 'client', actor: c }], seed: 1 });
    expect(log[0]).toBe('forget true false, 0 pending');
    expect(log.slice(1).sort()).toEqual(['answer 3', 'not ours: 2']);
  });
});
