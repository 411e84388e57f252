// Requests and sleeps in continuation-passing style: a thread of the process sends a request and
// says what to do with the reply; it sleeps and says what to do on waking. The actor hands every
// reply and timer to `resume`. `idle` tells the end-of-run protocol that nothing is in flight.
import type { MmRequest } from '@svmsim/kernel-mm';
import type { DmirrorRequest } from '@svmsim/kernel-mm/dmirror';
import type { GpuRequest } from '@svmsim/gpu-driver';
import type { Ctx, Envelope, Message } from '@svmsim/runtime';

/** What the app sends: mm's requests, the dmirror devices' and the gpu devices' ioctls. */
export type Request = MmRequest | DmirrorRequest | GpuRequest;

/** A reply from mm or a device: every one carries `ret` (>= 0 or -errno); the rest depends on its type. */
export type Reply = Message & { ret: number } & Record<string, unknown>;

/** The timer message of a sleep. */
export const SLEEP_DONE = 'app_sleep_done';

export class Requests {
  /** Request id → what to do with its reply. */
  private readonly calls = new Map<number, (r: Reply) => void>();
  /** Timer id → what to do when it fires. */
  private readonly sleeps = new Map<number, () => void>();

  constructor(private readonly ctxOf: () => Ctx<Message>) {}

  /** Send `msg` to `to`; `then` runs with the reply. */
  call(to: string, msg: Request, then: (r: Reply) => void): void {
    this.calls.set(this.ctxOf().request(to, msg), then);
  }

  /** Fire and forget (unpin_user_pages). */
  send(to: string, msg: Request): void {
    this.ctxOf().send(to, msg);
  }

  /** `then` runs after `ns` of simulated time. */
  sleep(ns: number, then: () => void): void {
    this.sleeps.set(this.ctxOf().after(Math.max(0, ns), { type: SLEEP_DONE }), then);
  }

  /** Run the continuation `env` answers (a reply or a sleep's timer); false if it is none of ours. */
  resume(env: Envelope<Message>): boolean {
    if (env.replyTo !== 0) {
      const then = this.calls.get(env.replyTo);
      if (!then) return false;
      this.calls.delete(env.replyTo);
      then(env.msg as Reply);
      return true;
    }
    if (env.msg.type === SLEEP_DONE) {
      const then = this.sleeps.get(env.id);
      if (!then) return false;
      this.sleeps.delete(env.id);
      then();
      return true;
    }
    return false;
  }

  /** Wake every sleeper now (the run is ending: sleeps are cut short, requests are waited for). */
  wakeAll(): void {
    for (const [id, then] of [...this.sleeps]) {
      this.ctxOf().cancel(id);
      this.sleeps.delete(id);
      then();
    }
  }

  /** Nothing in flight: no request unanswered, no sleeper. */
  get idle(): boolean {
    return this.calls.size === 0 && this.sleeps.size === 0;
  }
}
