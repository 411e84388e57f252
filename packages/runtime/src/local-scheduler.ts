// LocalScheduler: every actor in this thread, deterministic.
//
// Channels: one FIFO per (sender, receiver) pair, self included; a channel is "ready" while it
// holds envelopes. Each step the seeded PRNG picks one ready channel uniformly and delivers its
// head, so per-pair FIFO holds and every seed explores another interleaving across pairs.
// Time is virtual: messages take no time; timers (after, request timeouts) sit in a heap, and when
// no channel is ready the clock jumps to the earliest timer. A timer that is due joins its actor's
// self channel, so it races with messages like any other delivery.
//
// The same seed and actors give the same sequence of deliveries and the same trace, byte for byte:
// nothing here reads the wall clock or iterates in an order that depends on anything but the run.
//
// Faults (faults.ts): a delayed or held envelope waits in `transit` (a heap by arrival time) and
// joins its channel when the clock reaches it; a dropped one is traced and discarded; a kill at t
// happens once the clock reaches t, before any delivery at t: the actor's channels and timers are
// emptied, the others are told (ActorCell.actorDied), and nothing is delivered to it again.
import path from 'node:path';
import { ActorCell, type Transport } from './cell.js';
import { ActorDiedError, RunSetupError, describeError } from './errors.js';
import { Fifo } from './fifo.js';
import { MessageFaults, checkFaultPlan, killedError, type DeadActor, type KillFault } from './faults.js';
import { checkSpecs, loadActor } from './load.js';
import { Sfc32, actorRng } from './rng.js';
import { TimerHeap } from './timer-heap.js';
import { ActorTracer, TraceSink } from './trace.js';
import { TRACE_EXT } from './trace-format.js';
import type { Actor, ActorId, ActorSpec, Envelope, Message, RunOptions, RunResult } from './types.js';

/** An actor given as a live object: only LocalScheduler can run these (tests, in-process tools). */
export interface LocalActor {
  id: ActorId;
  actor: Actor<any>;
}

export interface LocalRunOptions extends Omit<RunOptions, 'actors'> {
  actors: (ActorSpec | LocalActor)[];
  /** Stop after this many deliveries (a bound on runaway actors). Default 1e9. */
  maxSteps?: number;
  /**
   * Keep the trace in memory (RunResult.memoryTrace) instead of writing it in `traceDir`: for a
   * run whose trace is checked once and dropped (a seed sweep; `svmsim replay` writes it again).
   */
  traceInMemory?: boolean;
}

/** The trace file a LocalScheduler run writes in its trace directory. */
export const LOCAL_TRACE_FILE = `trace${TRACE_EXT}`;

interface Channel {
  queue: Fifo<Envelope>;
  /** Position in the ready list, or -1 when empty. */
  readyIndex: number;
  /** Receiver's index. */
  to: number;
  /** True for the self channel, whose envelopes may be timers. */
  self: boolean;
}

/** Envelope tagged as a timer firing when it reaches the self channel. */
const TIMER = Symbol('timer');
type QueuedEnvelope = Envelope & { [TIMER]?: true };

export class LocalScheduler {
  async run(opts: LocalRunOptions): Promise<RunResult> {
    checkSpecs(opts.actors);
    const actors = await Promise.all(opts.actors.map((a) => ('actor' in a ? a.actor : loadActor(a))));
    return new LocalRun(opts, actors).run();
  }
}

class LocalRun implements Transport {
  private readonly ids: ActorId[];
  private readonly index = new Map<ActorId, number>();
  private readonly cells: ActorCell[];
  private readonly channels: Channel[];
  private readonly ready: Channel[] = [];
  private readonly timers = new TimerHeap();
  private readonly rng: Sfc32;
  private readonly sink: TraceSink | undefined;
  private clockNs = 0;
  private stopped: { actor: ActorId; reason: string } | undefined;
  /** Index of the actor being delivered to: the sender of whatever it posts. */
  private current = -1;
  /** Envelopes delayed or held by the fault plan, by arrival time; each knows its channel. */
  private readonly transit = new TimerHeap();
  private readonly transitOf = new WeakMap<Envelope, { k: number; env: Envelope }>();
  private readonly faults: MessageFaults;
  private readonly kills: KillFault[];
  private readonly deadIndex = new Set<number>();
  private readonly died: DeadActor[] = [];

  constructor(
    private readonly opts: LocalRunOptions,
    actors: Actor<Message>[],
  ) {
    this.ids = opts.actors.map((a) => a.id);
    this.ids.forEach((id, i) => this.index.set(id, i));
    const n = this.ids.length;
    this.channels = Array.from({ length: n * n }, (_, k) => ({ queue: new Fifo<Envelope>(), readyIndex: -1, to: k % n, self: Math.floor(k / n) === k % n }));
    this.rng = new Sfc32(opts.seed, 0);
    checkFaultPlan(opts.faults, this.ids);
    this.faults = new MessageFaults(opts.faults, opts.seed);
    this.kills = [...(opts.faults?.kills ?? [])].sort((a, b) => a.atNs - b.atNs);
    this.sink = opts.traceInMemory ? new TraceSink(undefined) : opts.traceDir === undefined ? undefined : new TraceSink(path.join(opts.traceDir, LOCAL_TRACE_FILE));
    const clock = () => this.clockNs;
    this.cells = actors.map(
      (actor, i) => new ActorCell(this.ids[i], actor, this, actorRng(opts.seed, this.ids[i]), this.sink && new ActorTracer(this.sink, this.ids[i], clock)),
    );
  }

  run(): RunResult {
    const maxSteps = this.opts.maxSteps ?? 1e9;
    const durationNs = this.opts.durationNs ?? Infinity;
    let delivered = 0;
    let endedBy: RunResult['endedBy'] = 'quiescent';
    try {
      this.cells.forEach((cell, i) => this.guard(i, 'start', () => cell.start()));
      while (this.stopped === undefined) {
        if (delivered >= maxSteps) {
          endedBy = 'steps';
          break;
        }
        if (this.kills.length > 0 && this.kills[0].atNs <= this.clockNs) {
          this.kill(this.kills.shift()!);
          continue;
        }
        if (this.transit.peekT() <= this.clockNs) this.releaseTransit();
        if (this.timers.peekT() <= this.clockNs) {
          this.releaseDueTimers();
        } else if (this.ready.length === 0) {
          const next = Math.min(this.timers.peekT(), this.transit.peekT(), this.kills.length > 0 ? this.kills[0].atNs : Infinity);
          if (next === Infinity) break;
          if (next > durationNs) {
            this.clockNs = durationNs;
            endedBy = 'duration';
            break;
          }
          this.clockNs = next;
          continue;
        }
        if (this.ready.length === 0) continue; // only dead actors' timers were due
        const ch = this.ready[this.ready.length === 1 ? 0 : this.rng.int(this.ready.length)];
        const env = ch.queue.shift() as QueuedEnvelope;
        if (ch.queue.length === 0) this.unready(ch);
        delivered++;
        const cell = this.cells[ch.to];
        this.guard(ch.to, env.msg.type, () => (env[TIMER] ? cell.fire(env) : cell.deliver(env)));
      }
      if (this.stopped !== undefined) endedBy = 'stopRun';
      const summaries: RunResult['summaries'] = {};
      this.cells.forEach((cell, i) => {
        const dead = this.died.find((d) => d.actor === this.ids[i]);
        // A killed actor's thread is gone in thread mode: its summary is the same here.
        summaries[this.ids[i]] = dead ? { died: dead.error, diedAtNs: dead.atNs } : this.guard(i, 'summary', () => cell.actor.summary());
      });
      const reason = this.stopped ? `${this.stopped.actor}: ${this.stopped.reason}` : endedBy;
      this.sink?.event(this.clockNs, 'scheduler', 'run_end', { endedBy, reason, delivered });
      const result: RunResult = { endedBy, reason, endNs: this.clockNs, summaries, delivered };
      if (this.died.length > 0) result.died = this.died;
      if (this.faults.active) Object.assign(result, { faultDrops: this.faults.dropped, faultHolds: this.faults.held });
      if (this.opts.traceInMemory) result.memoryTrace = this.sink!.memoryTrace();
      return result;
    } finally {
      this.sink?.close();
    }
  }

  // ---- Transport ----

  post(env: Envelope): void {
    const k = this.current * this.ids.length + this.index.get(env.to)!;
    if (this.faults.active) {
      const drop = this.faults.matchDrop(env, this.clockNs);
      if (drop !== undefined) {
        this.faults.dropped++;
        this.sink?.event(this.clockNs, 'scheduler', 'fault_drop', { from: env.from, to: env.to, id: env.id, type: env.msg.type });
        return;
      }
      const at = this.faults.arrival(env, this.clockNs);
      if (at > this.clockNs) {
        // The envelope keeps its send time; the heap orders by arrival, on a copy of the key.
        const held = { ...env, t: at };
        this.transitOf.set(held, { k, env });
        this.transit.push(held);
        return;
      }
    }
    this.enqueue(k, env);
  }

  schedule(env: Envelope): void {
    this.timers.push(env);
  }

  now(): number {
    return this.clockNs;
  }

  stopRun(actor: ActorId, reason: string): void {
    this.stopped ??= { actor, reason };
  }

  checkTarget(to: ActorId): void {
    if (!this.index.has(to)) throw new RunSetupError(`no actor '${to}' in this run (actors: ${this.ids.join(', ')})`);
  }

  // ---- internals ----

  private releaseTransit(): void {
    while (this.transit.peekT() <= this.clockNs) {
      const { k, env } = this.transitOf.get(this.transit.pop()!)!;
      if (this.deadIndex.has(this.channels[k].to)) continue;
      this.enqueue(k, env);
    }
  }

  /** An injected kill: the actor is gone, its queues emptied, everyone else told. */
  private kill(k: KillFault): void {
    const i = this.index.get(k.actor)!;
    if (this.deadIndex.has(i)) return;
    const error = killedError(k.atNs);
    this.deadIndex.add(i);
    this.died.push({ actor: k.actor, error, atNs: this.clockNs, injected: true });
    this.sink?.event(this.clockNs, 'scheduler', 'actor_died', { dead: k.actor, error });
    this.sink?.event(this.clockNs, k.actor, 'actor_died', { error, during: 'fault_kill' });
    const n = this.ids.length;
    for (let j = 0; j < n; j++) {
      for (const ch of [this.channels[j * n + i], this.channels[i * n + j]]) {
        if (ch.queue.length === 0) continue;
        while (ch.queue.length > 0) ch.queue.shift();
        this.unready(ch);
      }
    }
    this.cells.forEach((cell, j) => {
      if (j !== i && !this.deadIndex.has(j)) this.guard(j, 'actor_died', () => cell.actorDied(k.actor, error));
    });
  }

  private releaseDueTimers(): void {
    const n = this.ids.length;
    while (this.timers.peekT() <= this.clockNs) {
      const env = this.timers.pop()! as QueuedEnvelope;
      if (this.deadIndex.has(this.index.get(env.to)!)) continue;
      env[TIMER] = true;
      const i = this.index.get(env.to)!;
      this.enqueue(i * n + i, env);
    }
  }

  private enqueue(k: number, env: Envelope): void {
    const ch = this.channels[k];
    ch.queue.push(env);
    if (ch.readyIndex < 0) {
      ch.readyIndex = this.ready.length;
      this.ready.push(ch);
    }
  }

  private unready(ch: Channel): void {
    const last = this.ready.pop()!;
    if (last !== ch) {
      this.ready[ch.readyIndex] = last;
      last.readyIndex = ch.readyIndex;
    }
    ch.readyIndex = -1;
  }

  private guard<T>(i: number, during: string, fn: () => T): T {
    const prev = this.current;
    this.current = i;
    try {
      return fn();
    } catch (e) {
      if (e instanceof ActorDiedError) throw e;
      const { message, stack } = describeError(e);
      this.sink?.event(this.clockNs, this.ids[i], 'actor_died', { error: message, during });
      throw new ActorDiedError(this.ids[i], message, during, stack);
    } finally {
      this.current = prev;
    }
  }
}
