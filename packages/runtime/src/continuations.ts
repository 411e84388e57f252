// Continuations: how an actor waits without blocking. It sends a request and says what to do with
// the answer, or sets a timer and says what to do when it fires; its receive() hands every
// envelope to resume() first, which runs the continuation the envelope completes.
//
// The answer to a request is exactly one of (types.ts): the reply, a request_timeout, or an
// actor_died; whichever comes is what the continuation gets. A timer is a message of `timerType`
// to the actor itself, told apart by its envelope id.
import type { Ctx, Envelope, Message } from './types.js';

export class Continuations<Reply extends Message = Message> {
  /** Request id → what to do with its answer. */
  private readonly replies = new Map<number, (r: Reply) => void>();
  /** Timer id → what to do when it fires. */
  private readonly timers = new Map<number, () => void>();

  /** ctxOf: the current delivery's ctx. timerType: the type of this actor's timer messages. */
  constructor(
    private readonly ctxOf: () => Ctx<Message>,
    private readonly timerType: string,
  ) {}

  /** Send `msg` to `to`; `then` runs with its answer. Returns the request id. */
  request(to: string, msg: Message, then: (r: Reply) => void, timeoutNs?: number): number {
    const id = this.ctxOf().request(to, msg, timeoutNs);
    this.replies.set(id, then);
    return id;
  }

  /** `then` runs `ns` of simulated time from now, never before this delivery ends (also for 0). Returns the timer id. */
  after(ns: number, then: () => void): number {
    const id = this.ctxOf().after(Math.max(0, ns), { type: this.timerType });
    this.timers.set(id, then);
    return id;
  }

  /** `then` runs after `ns` of simulated time, or at once (synchronously) when ns <= 0. */
  sleep(ns: number, then: () => void): void {
    if (ns <= 0) return then();
    this.after(ns, then);
  }

  /** Give up waiting for request `id`: its continuation will not run (resume returns false for its answer). False if it was not pending. */
  forget(id: number): boolean {
    return this.replies.delete(id);
  }

  /** Cancel a timer of `after`; false if it already fired or was cancelled. */
  cancel(timer: number): boolean {
    if (!this.timers.delete(timer)) return false;
    return this.ctxOf().cancel(timer);
  }

  /** Run the continuation `env` completes (an answer or a timer of ours); false if it completes none. */
  resume(env: Envelope<Message>): boolean {
    if (env.replyTo !== 0) {
      const then = this.replies.get(env.replyTo);
      if (!then) return false;
      this.replies.delete(env.replyTo);
      then(env.msg as Reply);
      return true;
    }
    if (env.msg.type === this.timerType) {
      const then = this.timers.get(env.id);
      if (!then) return false;
      this.timers.delete(env.id);
      then();
      return true;
    }
    return false;
  }

  /** Fire every timer now (a run that is ending cuts its sleeps short). */
  fireAll(): void {
    for (const [id, then] of [...this.timers]) {
      this.ctxOf().cancel(id);
      this.timers.delete(id);
      then();
    }
  }

  /** Requests whose answer has not come. */
  get pendingRequests(): number {
    return this.replies.size;
  }

  /** Timers that have not fired. */
  get pendingTimers(): number {
    return this.timers.size;
  }
}
