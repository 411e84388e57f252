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
import path from 'node:path';
import { ActorCell, type Transport } from './cell.js';
import { ActorDiedError, RunSetupError, describeError } from './errors.js';
import { Fifo } from './fifo.js';
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

  constructor(
    private readonly opts: LocalRunOptions,
    actors: Actor<Message>[],
  ) {
    this.ids = opts.actors.map((a) => a.id);
    this.ids.forEach((id, i) => this.index.set(id, i));
    const n = this.ids.length;
    this.channels = Array.from({ length: n * n }, (_, k) => ({ queue: new Fifo<Envelope>(), readyIndex: -1, to: k % n, self: Math.floor(k / n) === k % n }));
    this.rng = new Sfc32(opts.seed, 0);
    this.sink = opts.traceDir === undefined ? undefined : new TraceSink(path.join(opts.traceDir, LOCAL_TRACE_FILE));
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
        if (this.timers.peekT() <= this.clockNs) {
          this.releaseDueTimers();
        } else if (this.ready.length === 0) {
          const next = this.timers.peekT();
          if (next === Infinity) break;
          if (next > durationNs) {
            this.clockNs = durationNs;
            endedBy = 'duration';
            break;
          }
          this.clockNs = next;
          continue;
        }
        const ch = this.ready[this.ready.length === 1 ? 0 : this.rng.int(this.ready.length)];
        const env = ch.queue.shift() as QueuedEnvelope;
        if (ch.queue.length === 0) this.unready(ch);
        delivered++;
        const cell = this.cells[ch.to];
        this.guard(ch.to, env.msg.type, () => (env[TIMER] ? cell.fire(env) : cell.deliver(env)));
      }
      if (this.stopped !== undefined) endedBy = 'stopRun';
      const summaries: RunResult['summaries'] = {};
      this.cells.forEach((cell, i) => (summaries[this.ids[i]] = this.guard(i, 'summary', () => cell.actor.summary())));
      const reason = this.stopped ? `${this.stopped.actor}: ${this.stopped.reason}` : endedBy;
      this.sink?.event(this.clockNs, 'scheduler', 'run_end', { endedBy, reason, delivered });
      return { endedBy, reason, endNs: this.clockNs, summaries, delivered };
    } finally {
      this.sink?.close();
    }
  }

  // ---- Transport ----

  post(env: Envelope): void {
    this.enqueue(this.current * this.ids.length + this.index.get(env.to)!, env);
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

  private releaseDueTimers(): void {
    const n = this.ids.length;
    while (this.timers.peekT() <= this.clockNs) {
      const env = this.timers.pop()! as QueuedEnvelope;
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
