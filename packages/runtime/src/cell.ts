// ActorCell: one actor and the context it sees, independent of the scheduler that drives it.
//
// The cell owns everything a scheduler must not get wrong twice: envelope ids, the table of pending
// requests and their timeouts, cancelled timers, late replies, and the trace lines of the actor.
// A scheduler supplies a Transport (how an envelope reaches another actor or the future) and calls
// `deliver` for every envelope it hands to this actor.
//
// Request life cycle (exactly one answer reaches the actor):
//
//   request()  ──► pending[id] ──► reply arrives        → pending deleted, reply delivered
//                            ├──► timeout timer fires  → pending deleted, request_timeout delivered
//                            └──► target dies          → pending deleted, actor_died delivered
//   any later answer for id   → traced as late_reply and dropped
//
// After a death the run may go on (an injected kill: faults.ts). The cell then knows the target is
// gone: a send to it is dropped (traced as send_to_dead), a request to it is answered at once with
// actor_died, so nobody waits on an actor that will never answer.
import type { ActorTracer } from './trace.js';
import type { Actor, ActorId, Ctx, Envelope, Message, RequestTimeout, Rng } from './types.js';

export interface Transport {
  /** Hand an envelope to another actor (or to oneself, for a zero-delay send). */
  post(env: Envelope): void;
  /** Deliver `env` back to its sender at simulated time `env.t`. */
  schedule(env: Envelope): void;
  now(): number;
  stopRun(actor: ActorId, reason: string): void;
  /** Throws if no actor has this id. */
  checkTarget(to: ActorId): void;
}

interface PendingRequest {
  to: ActorId;
  type: string;
}

export class ActorCell implements Ctx<Message> {
  private nextId = 1;
  private readonly pending = new Map<number, PendingRequest>();
  private readonly liveTimers = new Set<number>();
  /** Actors that died while the run went on, with their error. */
  private readonly dead = new Map<ActorId, string>();
  received = 0;
  sent = 0;
  lateReplies = 0;

  constructor(
    readonly self: ActorId,
    readonly actor: Actor<Message>,
    private readonly transport: Transport,
    readonly rng: Rng,
    private readonly tracer: ActorTracer | undefined,
  ) {}

  get tracing(): boolean {
    return this.tracer !== undefined;
  }

  // ---- Ctx ----

  send(to: ActorId, msg: Message): void {
    this.emit(to, msg, 0, false);
  }

  request(to: ActorId, msg: Message, timeoutNs?: number): number {
    const id = this.emit(to, msg, 0, true);
    this.pending.set(id, { to, type: msg.type });
    const error = this.dead.get(to);
    if (error !== undefined) {
      // Answered now, as a death would have answered it had it been pending (delivered in a later turn).
      this.transport.schedule({ from: to, to: this.self, id: 0, replyTo: id, t: this.transport.now(), msg: { type: 'actor_died', actor: to, error } as Message });
      return id;
    }
    if (timeoutNs !== undefined) {
      if (!(timeoutNs >= 0) || !Number.isFinite(timeoutNs)) throw new RangeError(`request timeout must be a finite ns count >= 0, got ${timeoutNs}`);
      const timeout: RequestTimeout = { type: 'request_timeout', to, requestType: msg.type, timeoutNs };
      const t = this.transport.now() + timeoutNs;
      this.transport.schedule({ from: this.self, to: this.self, id: this.nextId++, replyTo: id, t, msg: timeout });
    }
    return id;
  }

  reply(env: Envelope<Message>, msg: Message): void {
    this.emit(env.from, msg, env.id, false);
  }

  after(delayNs: number, msg: Message): number {
    if (!(delayNs >= 0) || !Number.isFinite(delayNs)) throw new RangeError(`after() needs a finite delay >= 0 ns, got ${delayNs}`);
    checkMessage(msg);
    const env: Envelope = { from: this.self, to: this.self, id: this.nextId++, replyTo: 0, t: this.transport.now() + delayNs, msg };
    this.liveTimers.add(env.id);
    this.tracer?.timerSet(env);
    this.transport.schedule(env);
    return env.id;
  }

  cancel(timerId: number): boolean {
    return this.liveTimers.delete(timerId);
  }

  now(): number {
    return this.transport.now();
  }

  trace(ev: string, fields?: Record<string, unknown>): void {
    this.tracer?.event(ev, fields);
  }

  stopRun(reason: string): void {
    this.transport.stopRun(this.self, reason);
  }

  // ---- driven by the scheduler ----

  start(): void {
    this.actor.start?.(this);
  }

  /** A message from another actor (or a zero-delay self-send): apply the request rules above. */
  deliver(env: Envelope): void {
    if (env.replyTo !== 0 && !this.pending.delete(env.replyTo)) {
      // An answer to a request that already timed out or whose target died: nobody waits for it.
      this.lateReplies++;
      this.tracer?.event('late_reply', { from: env.from, id: env.id, replyTo: env.replyTo, type: env.msg.type });
      return;
    }
    this.received++;
    this.tracer?.received(env);
    this.actor.receive(env as Envelope<never>, this);
  }

  /** An envelope from the timer queue reached its time: a timer set by `after`, or a request timeout. */
  fire(env: Envelope): void {
    if (env.replyTo !== 0) {
      const pending = this.pending.get(env.replyTo);
      if (pending === undefined) return; // answered in time
      this.pending.delete(env.replyTo);
      if (env.msg.type === 'actor_died') this.tracer?.event('actor_died', { dead: pending.to, replyTo: env.replyTo, type: pending.type });
      else this.tracer?.event('request_timeout', { to: pending.to, replyTo: env.replyTo, type: pending.type });
    } else if (!this.liveTimers.delete(env.id)) {
      return; // cancelled
    } else {
      this.tracer?.received(env);
    }
    this.received++;
    this.actor.receive(env as Envelope<never>, this);
  }

  /** `target` died: answer every request pending on it, then tell the actor. */
  actorDied(target: ActorId, error: string): void {
    this.dead.set(target, error);
    for (const [id, p] of this.pending) {
      if (p.to !== target) continue;
      this.pending.delete(id);
      this.tracer?.event('actor_died', { dead: target, replyTo: id, type: p.type });
      this.actor.receive({ from: target, to: this.self, id: 0, replyTo: id, t: this.now(), msg: { type: 'actor_died', actor: target, error } }, this);
    }
    this.actor.receive({ from: target, to: this.self, id: 0, replyTo: 0, t: this.now(), msg: { type: 'actor_died', actor: target, error } }, this);
  }

  pendingRequests(): number {
    return this.pending.size;
  }

  // ---- internals ----

  /** `request`: the trace marks the send as a request, so analysis knows an answer is owed. */
  private emit(to: ActorId, msg: Message, replyTo: number, request: boolean): number {
    this.transport.checkTarget(to);
    checkMessage(msg);
    const env: Envelope = { from: this.self, to, id: this.nextId++, replyTo, t: this.transport.now(), msg };
    this.sent++;
    this.tracer?.sent(env, request);
    if (this.dead.has(to)) {
      this.tracer?.event('send_to_dead', { to, id: env.id, type: msg.type });
      return env.id;
    }
    this.transport.post(env);
    return env.id;
  }
}

function checkMessage(msg: Message): void {
  if (msg === null || typeof msg !== 'object' || typeof msg.type !== 'string') {
    throw new TypeError(`a message must be a plain object with a string 'type', got ${JSON.stringify(msg)}`);
  }
}
