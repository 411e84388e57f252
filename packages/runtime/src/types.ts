// The actor contract shared by every subsystem and both schedulers.
//
// An actor is state plus one entry point, `receive(env, ctx)`. It never blocks: work that must wait
// (an ack, an I/O, a fence) is kept as pending state and finished by a later message or timer.
// Messages are plain data (a discriminated union on `type`) so that they can cross threads: no
// functions, classes, Maps or BigInts; typed arrays are allowed.
//
// Ordering: both schedulers keep FIFO order per (sender, receiver) pair and no order across pairs.
// Time: simulated nanoseconds in a double (exact to 104 days).

export type ActorId = string;

/** Every message is a plain object discriminated on `type`. */
export interface Message {
  readonly type: string;
}

/**
 * A message in flight. `id` is unique per sender (it counts from 1); `replyTo` is the `id` of the
 * request this envelope answers, or 0 when it answers nothing. `t` is the simulated time at which
 * it was sent (for a timer: the time at which it fires).
 */
export interface Envelope<M extends Message = Message> {
  from: ActorId;
  to: ActorId;
  id: number;
  replyTo: number;
  t: number;
  msg: M;
}

/** Delivered in place of a reply when a request's timeout expires first. `replyTo` = the request. */
export interface RequestTimeout {
  readonly type: 'request_timeout';
  /** The actor that did not answer. */
  readonly to: ActorId;
  /** The type of the request that was not answered. */
  readonly requestType: string;
  readonly timeoutNs: number;
}

/**
 * An actor's thread threw or exited. Delivered in place of a reply to every request pending on
 * it (`replyTo` = the request), and once with `replyTo` 0 to every other actor.
 */
export interface ActorDied {
  readonly type: 'actor_died';
  readonly actor: ActorId;
  readonly error: string;
}

export type RuntimeMessage = RequestTimeout | ActorDied;

/** What every actor may receive besides its own protocol. */
export type Incoming<M extends Message> = Envelope<M | RuntimeMessage>;

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
}

export interface Ctx<M extends Message = Message> {
  readonly self: ActorId;
  /** Fire and forget. */
  send(to: ActorId, msg: M): void;
  /**
   * Send a request; returns its id. The answer arrives later as an envelope whose `replyTo` is that
   * id: the reply, or a `request_timeout` after `timeoutNs` of simulated time (none if omitted),
   * or an `actor_died` if the target dies. Exactly one of them arrives.
   */
  request(to: ActorId, msg: M, timeoutNs?: number): number;
  /** Answer a request. Replies to a request that already timed out are traced and dropped. */
  reply(env: Envelope<Message>, msg: M): void;
  /** A timer is a message to oneself, delivered `delayNs` of simulated time from now. */
  after(delayNs: number, msg: M): number;
  /** Cancel a timer set with `after`; false if it already fired or was cancelled. */
  cancel(timerId: number): boolean;
  /** Simulated time, ns. */
  now(): number;
  /** Is the trace on? Check before building costly trace fields. */
  readonly tracing: boolean;
  /** A domain event in the trace: `{t, actor, ev, ...fields}`. */
  trace(ev: string, fields?: Record<string, unknown>): void;
  /** Seeded per actor: the same seed and actor id give the same sequence. */
  readonly rng: Rng;
  /** End the whole run (the workload is done, or a fatal condition). */
  stopRun(reason: string): void;
}

export interface Actor<M extends Message = Message> {
  /** Called once before any message is delivered. */
  start?(ctx: Ctx<M>): void;
  receive(env: Incoming<M>, ctx: Ctx<M>): void;
  /** Final figures, returned by the run. Plain data. */
  summary(): Record<string, unknown>;
}

/** A module that hosts an actor exports a factory under `exportName` (default `create`). */
export type ActorFactory = (config: unknown, id: ActorId) => Actor<any>;

/**
 * How to build an actor in any thread: the module's file URL or absolute path (compiled
 * JavaScript), the factory's export name, and a plain-data config.
 */
export interface ActorSpec {
  id: ActorId;
  module: string;
  exportName?: string;
  config?: unknown;
}

export interface RunOptions {
  actors: ActorSpec[];
  seed: number;
  /** Directory for the trace; no trace when omitted. */
  traceDir?: string;
  /** Stop when simulated time reaches this (ns). */
  durationNs?: number;
  /**
   * Thread mode: stop the run when this aborts (Ctrl-C), as a duration would, with endedBy
   * 'interrupted'. The LocalScheduler runs synchronously and does not look at it.
   */
  signal?: AbortSignal;
  /** Faults to inject (faults.ts): kills, message delays, reorderings, drops. */
  faults?: import('./faults.js').FaultPlan;
}

export interface RunResult {
  /** Why the run ended. */
  endedBy: 'stopRun' | 'duration' | 'quiescent' | 'steps' | 'interrupted';
  reason: string;
  /** Simulated time at the end, ns. */
  endNs: number;
  summaries: Record<ActorId, Record<string, unknown>>;
  /** Messages delivered (timers included). */
  delivered: number;
  /** Actors that died while the run went on (injected kills), in the order they died. */
  died?: import('./faults.js').DeadActor[];
  /** Envelopes the fault plan discarded (drop) and held back (reorder). */
  faultDrops?: number;
  faultHolds?: number;
  /** LocalScheduler with traceInMemory: the trace, for forEachTraceLine. */
  memoryTrace?: import('./trace.js').MemoryTrace;
}
