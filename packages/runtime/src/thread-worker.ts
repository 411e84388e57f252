// The worker side of ThreadScheduler: hosts one actor in its own thread, as one long-lived piscina
// task (see thread-protocol.ts for the conversation with the main thread).
//
// A "turn" is one entry into the actor's code: a batch of envelopes from a peer, due timers, or a
// control message. During a turn, outgoing envelopes collect in one batch per destination; at the
// end of the turn (or when a batch reaches MAX_BATCH_ENVELOPES) each batch is packed and its
// buffer transferred. Sends to oneself go through a local FIFO drained in the same turn.
// Time is the wall clock since the run's common epoch, times `timeScale`, in ns.
// Message faults (faults.ts) apply to what this actor sends: a dropped envelope is traced and
// discarded, a delayed one waits in its peer's `held` queue (FIFO, arrival times non-decreasing)
// until the wall clock reaches its arrival, then goes out in a batch like any other.
import { performance } from 'node:perf_hooks';
import type { MessagePort } from 'node:worker_threads';
import { ActorCell, type Transport } from './cell.js';
import { describeError } from './errors.js';
import { MessageFaults } from './faults.js';
import { Fifo } from './fifo.js';
import { loadActor } from './load.js';
import { actorRng } from './rng.js';
import type { ActorTask, FromWorker, ToWorker } from './thread-protocol.js';
import { TimerHeap } from './timer-heap.js';
import { ActorTracer, TraceSink } from './trace.js';
import type { ActorId, Envelope } from './types.js';
import { packBatch, unpackBatch } from './wire.js';

/** A batch is sent as soon as it holds this many envelopes, even mid-turn. */
const MAX_BATCH_ENVELOPES = 512;
/** Self-sends delivered in one turn before yielding to the event loop (a bound on self-loops). */
const MAX_SELF_PER_TURN = 10_000;
/** Timers fired in one turn before yielding. */
const MAX_TIMERS_PER_TURN = 10_000;
/** Timers due within this many ms are polled with setImmediate: setTimeout cannot wait less than 1 ms. */
const TIMER_POLL_MS = 1;

function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

interface Peer {
  id: ActorId;
  port: MessagePort;
  batch: Envelope[];
  /** Envelopes the fault plan delays, with their arrival (simulated ns), in order. */
  held: Fifo<{ at: number; env: Envelope }>;
  heldTimer: NodeJS.Timeout | undefined;
}

class WorkerHost implements Transport {
  private cell!: ActorCell;
  private readonly peers = new Map<ActorId, Peer>();
  private readonly dirty: Peer[] = [];
  private readonly selfQueue = new Fifo<Envelope>();
  private readonly timers = new TimerHeap();
  private readonly sink: TraceSink | undefined;
  private epochMs = NaN;
  private dead = false;
  private stopped = false;
  private wakeTimer: NodeJS.Timeout | undefined;
  private wakeImmediate: NodeJS.Immediate | undefined;
  private wakeAtMs = Infinity;
  private resolveDone!: () => void;

  constructor(private readonly task: ActorTask) {
    for (const [id, port] of Object.entries(task.peers)) this.peers.set(id, { id, port, batch: [], held: new Fifo(), heldTimer: undefined });
    this.sink = task.traceFile === null ? undefined : new TraceSink(task.traceFile);
    this.faults = new MessageFaults(task.faults, task.seed);
  }

  private readonly faults: MessageFaults;

  async serve(): Promise<void> {
    const { spec, control } = this.task;
    process.on('exit', () => this.sink?.close());
    // A module that does not load rejects the task: the main thread reports it as a setup error.
    const actor = await loadActor(spec).finally(() => this.sink?.flush());
    const tracer = this.sink && new ActorTracer(this.sink, spec.id, () => this.now());
    this.cell = new ActorCell(spec.id, actor, this, actorRng(this.task.seed, spec.id), tracer);
    const done = new Promise<void>((resolve) => (this.resolveDone = resolve));
    control.on('message', (m: ToWorker) => this.onControl(m));
    this.toMain({ kind: 'ready' });
    await done;
  }

  // ---- Transport ----

  post(env: Envelope): void {
    if (env.to === this.task.spec.id) {
      this.selfQueue.push(env);
      return;
    }
    const peer = this.peers.get(env.to)!;
    if (this.faults.active && this.faultPost(peer, env)) return;
    this.toBatch(peer, env);
  }

  private toBatch(peer: Peer, env: Envelope): void {
    if (peer.batch.length === 0) this.dirty.push(peer);
    peer.batch.push(env);
    if (peer.batch.length >= MAX_BATCH_ENVELOPES) this.flushPeer(peer);
  }

  /** The message faults: true if `env` was dropped or is held back. */
  private faultPost(peer: Peer, env: Envelope): boolean {
    const now = this.now();
    if (this.faults.matchDrop(env, now) !== undefined) {
      this.faults.dropped++;
      this.cell.trace('fault_drop', { to: env.to, id: env.id, type: env.msg.type });
      return true;
    }
    const at = this.faults.arrival(env, now);
    if (at <= now && peer.held.length === 0) return false;
    peer.held.push({ at, env });
    this.armHeld(peer);
    return true;
  }

  private armHeld(peer: Peer): void {
    if (peer.heldTimer !== undefined || peer.held.length === 0 || this.dead || this.stopped) return;
    const dueMs = this.epochMs + peer.held.peek()!.at / 1e6 / this.task.timeScale;
    peer.heldTimer = setTimeout(() => {
      peer.heldTimer = undefined;
      if (this.dead || this.stopped) return;
      const now = this.now();
      while (peer.held.length > 0 && peer.held.peek()!.at <= now) this.toBatch(peer, peer.held.shift()!.env);
      this.flushAll();
      this.armHeld(peer);
    }, Math.max(0, dueMs - wallMs()));
  }

  schedule(env: Envelope): void {
    this.timers.push(env);
  }

  now(): number {
    // Whole ns: sub-ns fractions of a wall clock mean nothing, and integers print faster in the trace.
    return Number.isNaN(this.epochMs) ? 0 : Math.round((wallMs() - this.epochMs) * 1e6 * this.task.timeScale);
  }

  stopRun(_actor: ActorId, reason: string): void {
    this.toMain({ kind: 'stopRun', reason });
  }

  checkTarget(to: ActorId): void {
    if (to !== this.task.spec.id && !this.peers.has(to)) {
      throw new Error(`no actor '${to}' in this run (actors: ${[this.task.spec.id, ...this.peers.keys()].join(', ')})`);
    }
  }

  // ---- turns ----

  private onControl(m: ToWorker): void {
    switch (m.kind) {
      case 'start':
        this.epochMs = m.epochMs;
        for (const peer of this.peers.values()) peer.port.on('message', (buf: Uint8Array) => this.turn('batch', () => this.onBatch(peer, buf)));
        this.turn('start', () => this.cell.start());
        return;
      case 'actorDied':
        this.turn('actor_died', () => this.cell.actorDied(m.actor, m.error));
        return;
      case 'kill':
        // Fault injection: the thread really ends, mid-run, with whatever it had in flight.
        this.dead = true;
        this.cell.trace('actor_died', { error: m.error, during: 'fault_kill' });
        this.sink?.close();
        process.exit(1);
        return;
      case 'stop':
        this.stop();
        return;
      default: {
        const never: never = m;
        throw new Error(`unknown control message ${JSON.stringify(never)}`);
      }
    }
  }

  private onBatch(peer: Peer, buf: Uint8Array): void {
    for (const env of unpackBatch(buf, peer.id)) {
      this.during = env.msg.type;
      this.cell.deliver(env);
    }
  }

  private during = '';

  private turn(what: string, fn: () => void): void {
    if (this.dead || this.stopped) return;
    this.during = what;
    try {
      fn();
      this.drainSelf();
    } catch (e) {
      this.die(e);
      return;
    }
    this.flushAll();
    this.armWake();
  }

  private drainSelf(): void {
    for (let n = 0; n < MAX_SELF_PER_TURN && this.selfQueue.length > 0; n++) {
      const env = this.selfQueue.shift()!;
      this.during = env.msg.type;
      this.cell.deliver(env);
    }
    if (this.selfQueue.length > 0) setImmediate(() => this.turn('self', () => {}));
  }

  private fireDue(): void {
    this.wakeTimer = undefined;
    this.wakeImmediate = undefined;
    this.wakeAtMs = Infinity;
    this.turn('timer', () => {
      const now = this.now();
      for (let n = 0; n < MAX_TIMERS_PER_TURN && this.timers.peekT() <= now; n++) {
        const env = this.timers.pop()!;
        this.during = env.msg.type;
        this.cell.fire(env);
      }
    });
  }

  private armWake(): void {
    if (this.timers.size === 0 || this.dead || this.stopped) return;
    const dueMs = this.epochMs + this.timers.peekT() / 1e6 / this.task.timeScale;
    if (dueMs >= this.wakeAtMs) return; // an earlier wake is already armed
    this.clearWake();
    this.wakeAtMs = dueMs;
    const delayMs = dueMs - wallMs();
    if (delayMs < TIMER_POLL_MS) this.wakeImmediate = setImmediate(() => this.pollTimers());
    else this.wakeTimer = setTimeout(() => this.fireDue(), delayMs - TIMER_POLL_MS / 2);
  }

  /** setImmediate polling for a timer due in under a millisecond. */
  private pollTimers(): void {
    this.wakeImmediate = undefined;
    if (this.now() >= this.timers.peekT()) {
      this.fireDue();
      return;
    }
    this.wakeImmediate = setImmediate(() => this.pollTimers());
  }

  private clearWake(): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    if (this.wakeImmediate) clearImmediate(this.wakeImmediate);
    this.wakeTimer = undefined;
    this.wakeImmediate = undefined;
    this.wakeAtMs = Infinity;
  }

  private flushPeer(peer: Peer): void {
    const buf = packBatch(peer.batch);
    peer.batch = [];
    peer.port.postMessage(buf, [buf.buffer as ArrayBuffer]);
  }

  private flushAll(): void {
    for (const peer of this.dirty) if (peer.batch.length > 0) this.flushPeer(peer);
    this.dirty.length = 0;
  }

  private die(e: unknown): void {
    this.dead = true;
    this.clearWake();
    const { message, stack } = describeError(e);
    this.cell.trace('actor_died', { error: message, during: this.during });
    this.sink?.flush();
    this.toMain({ kind: 'died', error: message, during: this.during, stack });
  }

  private stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.clearWake();
    for (const peer of this.peers.values()) clearTimeout(peer.heldTimer);
    if (!this.dead) this.flushAll();
    let summary: Record<string, unknown>;
    try {
      summary = this.cell.actor.summary();
    } catch (e) {
      summary = { summaryError: describeError(e).message };
    }
    const c = this.cell;
    const endNs = this.now();
    // The trace is closed before answering: once answered, the main thread may terminate this worker.
    this.sink?.close();
    this.toMain({
      kind: 'stopped',
      summary,
      counters: { sent: c.sent, received: c.received, lateReplies: c.lateReplies, pendingRequests: c.pendingRequests(), faultDrops: this.faults.dropped, faultHolds: this.faults.held },
      endNs,
    });
    for (const peer of this.peers.values()) peer.port.close();
    this.task.control.close();
    this.resolveDone();
  }

  private toMain(m: FromWorker): void {
    this.task.control.postMessage(m);
  }
}

export default async function runActorTask(task: ActorTask): Promise<string> {
  await new WorkerHost(task).serve();
  return task.spec.id;
}
